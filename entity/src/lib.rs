//! Forklift's sea-orm entities: one module per row class, named after its table.
//!
//! Each entity also implements [`class::ClassInfo`] (plane, fork phase, natural key); the
//! row-class registry (`forklift::registry`) is derived from these definitions and their
//! relations, so there is no second list of tables to keep in step.

pub mod class;
#[macro_use]
mod stored_enum;

pub mod access_grants;
pub mod action_placements;
pub mod actions;
pub mod application_entities;
pub mod applications;
pub mod audit_entries;
pub mod brandings;
pub mod child_collections;
pub mod control_plane_applications;
pub mod custom_records;
pub mod custom_types;
pub mod dashboards;
pub mod domains;
pub mod entity_schemas;
pub mod event_types;
pub mod fork_events;
pub mod fork_runs;
pub mod geo_layers;
pub mod list_layouts;
pub mod memberships;
pub mod navigation_items;
pub mod notification_rules;
pub mod notification_subscriptions;
pub mod notification_templates;
pub mod onboarding_completions;
pub mod onboarding_steps;
pub mod organizations;
pub mod portal_pages;
pub mod report_templates;
pub mod row_lineage;
pub mod surface_types;
pub mod team_members;
pub mod teams;
pub mod template_kinds;
pub mod template_row_states;
pub mod template_versions;
pub mod tenant_features;
pub mod tenants;
pub mod users;
pub mod views;

/// Calls `$m!` with the module name of every entity, in declaration order.
#[macro_export]
macro_rules! for_each_entity {
    ($m:ident) => {
        $m!(
            tenants,
            entity_schemas,
            event_types,
            surface_types,
            template_kinds,
            control_plane_applications,
            custom_types,
            onboarding_steps,
            users,
            applications,
            application_entities,
            actions,
            list_layouts,
            dashboards,
            child_collections,
            action_placements,
            notification_templates,
            notification_rules,
            notification_subscriptions,
            report_templates,
            portal_pages,
            navigation_items,
            views,
            custom_records,
            geo_layers,
            access_grants,
            organizations,
            memberships,
            teams,
            team_members,
            domains,
            brandings,
            tenant_features,
            fork_runs,
            fork_events,
            audit_entries,
            row_lineage,
            template_versions,
            template_row_states,
            onboarding_completions
        )
    };
}
