//! A tenant's configuration written back as provisioning sheets (`docs/sheets.md`): one
//! vocabulary sheet (the shared vocabulary its configuration refers to) and one application
//! sheet per application, in exactly the format `importSheets` and `forklift sheets import`
//! read, so an export can be imported as a template.
//!
//! Rows are read from the transaction the export holds (the request pool naming the tenant),
//! one application at a time. What a sheet cannot say is counted in [`Omitted`]: navigation
//! entries and custom records that belong to no application, and a notification
//! subscription's team (teams are runtime rows).

use std::collections::{BTreeMap, HashMap};

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, sea_query::IntoCondition,
};
use serde::Serialize;
use serde_json::Value as Json;
use uuid::Uuid;

mod application_shapes;
mod vocabulary;

use application_shapes::*;
pub use vocabulary::vocabulary;

/// What the sheets could not carry, by kind.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Omitted {
    /// Navigation entries with no application.
    pub navigation_items_without_application: u64,
    /// Custom records with no application.
    pub custom_records_without_application: u64,
    /// Notification subscriptions that named a team (kept, without the team).
    pub subscription_teams: u64,
}

/// The keys of the vocabulary and of the tenant's actions, by id.
pub struct Lookups {
    entity_schemas: HashMap<Uuid, String>,
    event_types: HashMap<Uuid, String>,
    surface_types: HashMap<Uuid, String>,
    custom_types: HashMap<Uuid, String>,
    /// action id → (application code, action key)
    actions: HashMap<Uuid, (String, String)>,
}

fn key_of(map: &HashMap<Uuid, String>, id: Uuid) -> anyhow::Result<String> {
    map.get(&id)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("a reference to {id} has no row"))
}

fn non_empty(v: &Json) -> Option<Json> {
    match v {
        Json::Null => None,
        Json::Array(a) if a.is_empty() => None,
        Json::Object(o) if o.is_empty() => None,
        other => Some(other.clone()),
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

/// The first line of every sheet: editors find the JSON Schema beside it.
pub const SCHEMA_LINE: &str = "# yaml-language-server: $schema=./sheet.schema.json\n";

fn yaml(comment: &str, value: &impl Serialize) -> anyhow::Result<String> {
    let body = serde_saphyr::to_string(value)?;
    Ok(format!("{SCHEMA_LINE}# {comment}\n{body}"))
}

/// The tenant's applications, in navigation order.
pub async fn tenant_applications(
    db: &impl ConnectionTrait,
    tenant: Uuid,
) -> anyhow::Result<Vec<entity::applications::Model>> {
    use entity::applications;
    Ok(applications::Entity::find()
        .filter(applications::Column::TenantId.eq(tenant))
        .order_by_asc(applications::Column::NavOrder)
        .order_by_asc(applications::Column::Code)
        .all(db)
        .await?)
}

/// The rows of `E` owned by `tenant` and matching `condition`, ordered by id (creation order:
/// ids are UUIDv7).
async fn rows<E>(
    db: &impl ConnectionTrait,
    tenant: Uuid,
    tenant_column: E::Column,
    id_column: E::Column,
    condition: impl IntoCondition,
) -> anyhow::Result<Vec<E::Model>>
where
    E: EntityTrait,
{
    Ok(E::find()
        .filter(tenant_column.eq(tenant))
        .filter(condition)
        .order_by_asc(id_column)
        .all(db)
        .await?)
}

/// One application's sheet.
pub async fn application(
    db: &impl ConnectionTrait,
    tenant: Uuid,
    app: &entity::applications::Model,
    lookups: &Lookups,
    omitted: &mut Omitted,
) -> anyhow::Result<String> {
    use entity::{
        action_placements as ap, actions, application_entities as ae, child_collections as cc,
        custom_records as cr, dashboards, list_layouts as ll, navigation_items as nav,
        notification_rules as nr, notification_subscriptions as ns, notification_templates as nt,
        portal_pages as pp, report_templates as rt, views,
    };
    let id = app.id;
    let mut entities = ae::Entity::find()
        .filter(ae::Column::TenantId.eq(tenant))
        .filter(ae::Column::ApplicationId.eq(id))
        .all(db)
        .await?;
    entities.sort_by_key(|e| (e.position, e.id));
    let placements = rows::<ap::Entity>(
        db,
        tenant,
        ap::Column::TenantId,
        ap::Column::Id,
        ap::Column::ApplicationId.eq(id),
    )
    .await?;
    let mut own: BTreeMap<Uuid, Vec<PlacementOut>> = BTreeMap::new();
    let mut foreign = Vec::new();
    for p in &placements {
        let surface = key_of(&lookups.surface_types, p.surface_type_id)?;
        let (code, key) = lookups
            .actions
            .get(&p.action_id)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("placement of a missing action"))?;
        if code == app.code {
            own.entry(p.action_id).or_default().push(PlacementOut {
                surface,
                position: p.position,
            });
        } else {
            foreign.push(ForeignOut {
                action: format!("{code}/{key}"),
                surface,
                position: p.position,
            });
        }
    }
    let mut action_rows = Vec::new();
    for a in rows::<actions::Entity>(
        db,
        tenant,
        actions::Column::TenantId,
        actions::Column::Id,
        actions::Column::ApplicationId.eq(id),
    )
    .await?
    {
        action_rows.push(ActionOut {
            entity: a
                .entity_schema_id
                .map(|e| key_of(&lookups.entity_schemas, e))
                .transpose()?,
            placements: own.remove(&a.id).unwrap_or_default(),
            key: a.key,
            label: a.label,
            description: a.description,
            parameters: a.parameters,
            side_effects: a.side_effects,
            public_submit: a.public_submit,
            public_vote: a.public_vote,
        });
    }
    let mut view_rows = Vec::new();
    for v in rows::<views::Entity>(
        db,
        tenant,
        views::Column::TenantId,
        views::Column::Id,
        views::Column::ApplicationId.eq(id),
    )
    .await?
    {
        view_rows.push(ViewOut {
            entity: key_of(&lookups.entity_schemas, v.entity_schema_id)?,
            key: v.key,
            name: v.name,
            aggregate: v.aggregate,
            field: v.field,
            filter: v.filter,
        });
    }
    let mut notifications = Vec::new();
    for t in rows::<nt::Entity>(
        db,
        tenant,
        nt::Column::TenantId,
        nt::Column::Id,
        nt::Column::ApplicationId.eq(id),
    )
    .await?
    {
        let mut rules = Vec::new();
        for r in rows::<nr::Entity>(
            db,
            tenant,
            nr::Column::TenantId,
            nr::Column::Id,
            nr::Column::TemplateId.eq(t.id),
        )
        .await?
        {
            let mut subscriptions = Vec::new();
            for s in rows::<ns::Entity>(
                db,
                tenant,
                ns::Column::TenantId,
                ns::Column::Id,
                ns::Column::RuleId.eq(r.id),
            )
            .await?
            {
                if s.team_id.is_some() {
                    omitted.subscription_teams += 1;
                }
                subscriptions.push(SubscriptionOut {
                    channel: s.channel,
                    audience: s.audience,
                });
            }
            rules.push(RuleOut {
                key: r.key,
                recipients: r.recipients,
                conditions: r.conditions,
                subscriptions,
            });
        }
        notifications.push(NotificationOut {
            event: key_of(&lookups.event_types, t.event_type_id)?,
            key: t.key,
            channel: t.channel,
            subject: t.subject,
            body: t.body,
            rules,
        });
    }
    let reports = rows::<rt::Entity>(
        db,
        tenant,
        rt::Column::TenantId,
        rt::Column::Id,
        rt::Column::ApplicationId.eq(id),
    )
    .await?
    .into_iter()
    .map(|r| ReportOut {
        key: r.key,
        name: r.name,
        format: r.format,
        definition: r.definition,
    })
    .collect();
    let mut pages = Vec::new();
    let mut page_slugs = HashMap::new();
    for p in rows::<pp::Entity>(
        db,
        tenant,
        pp::Column::TenantId,
        pp::Column::Id,
        pp::Column::ApplicationId.eq(id),
    )
    .await?
    {
        page_slugs.insert(p.id, p.slug.clone());
        pages.push(PageOut {
            surface: p
                .surface_type_id
                .map(|s| key_of(&lookups.surface_types, s))
                .transpose()?,
            slug: p.slug,
            title: p.title,
            is_public: p.is_public,
            content: p.content,
        });
    }
    let items = rows::<nav::Entity>(
        db,
        tenant,
        nav::Column::TenantId,
        nav::Column::Id,
        nav::Column::ApplicationId.eq(id),
    )
    .await?;
    let navigation = nav_tree(&items, &page_slugs);
    let mut presentation = PresentationOut::default();
    for l in rows::<ll::Entity>(
        db,
        tenant,
        ll::Column::TenantId,
        ll::Column::Id,
        ll::Column::ApplicationId.eq(id),
    )
    .await?
    {
        presentation.list_layouts.push(LayoutOut {
            entity: key_of(&lookups.entity_schemas, l.entity_schema_id)?,
            key: l.key,
            columns: l.columns,
            default_sort: l.default_sort,
        });
    }
    for d in rows::<dashboards::Entity>(
        db,
        tenant,
        dashboards::Column::TenantId,
        dashboards::Column::Id,
        dashboards::Column::ApplicationId.eq(id),
    )
    .await?
    {
        presentation.dashboards.push(DashboardOut {
            key: d.key,
            title: d.title,
            widgets: d.widgets,
        });
    }
    for c in rows::<cc::Entity>(
        db,
        tenant,
        cc::Column::TenantId,
        cc::Column::Id,
        cc::Column::ApplicationId.eq(id),
    )
    .await?
    {
        presentation.child_collections.push(ChildOut {
            parent: key_of(&lookups.entity_schemas, c.parent_schema_id)?,
            child: key_of(&lookups.entity_schemas, c.child_schema_id)?,
            key: c.key,
            label: c.label,
        });
    }
    let mut records = Vec::new();
    for r in rows::<cr::Entity>(
        db,
        tenant,
        cr::Column::TenantId,
        cr::Column::Id,
        cr::Column::ApplicationId.eq(id),
    )
    .await?
    {
        records.push(RecordOut {
            custom_type: key_of(&lookups.custom_types, r.custom_type_id)?,
            key: r.key,
            data: r.data,
        });
    }
    let sheet = ApplicationSheet {
        identity: IdentityOut {
            code: app.code.clone(),
            name: app.name.clone(),
            description: app.description.clone(),
            icon: app.icon.clone(),
            nav_order: app.nav_order,
            is_active: app.is_active,
            route_namespace: app.route_namespace.clone(),
            vertical: app.vertical.clone(),
            features: non_empty(&app.features),
        },
        entities: entities
            .iter()
            .map(|e| key_of(&lookups.entity_schemas, e.entity_schema_id))
            .collect::<anyhow::Result<_>>()?,
        actions: action_rows,
        placements: foreign,
        views: view_rows,
        notifications,
        reports,
        portal_pages: pages,
        navigation,
        presentation,
        records,
    };
    yaml(
        &format!("Application `{}`, as exported with the tenant.", app.code),
        &sheet,
    )
}

/// The navigation items of one application as a tree: roots are items whose parent is not an
/// item of the application; siblings in `position` order.
fn nav_tree(
    items: &[entity::navigation_items::Model],
    pages: &HashMap<Uuid, String>,
) -> Vec<NavOut> {
    let ids: std::collections::HashSet<Uuid> = items.iter().map(|i| i.id).collect();
    let mut children: HashMap<Option<Uuid>, Vec<&entity::navigation_items::Model>> = HashMap::new();
    for item in items {
        let parent = item.parent_id.filter(|p| ids.contains(p));
        children.entry(parent).or_default().push(item);
    }
    fn build(
        parent: Option<Uuid>,
        children: &HashMap<Option<Uuid>, Vec<&entity::navigation_items::Model>>,
        pages: &HashMap<Uuid, String>,
        depth: usize,
    ) -> Vec<NavOut> {
        let mut level = children.get(&parent).cloned().unwrap_or_default();
        level.sort_by_key(|i| (i.position, i.id));
        level
            .into_iter()
            .map(|i| NavOut {
                key: i.key.clone(),
                label: i.label.clone(),
                route: i.route.clone(),
                icon: i.icon.clone(),
                page: i.portal_page_id.and_then(|p| pages.get(&p).cloned()),
                // A cycle cannot be stored (a tree by reference), but never loop on one.
                children: if depth < 64 {
                    build(Some(i.id), children, pages, depth + 1)
                } else {
                    Vec::new()
                },
            })
            .collect()
    }
    build(None, &children, pages, 0)
}

/// Counts what no sheet can carry: navigation entries and custom records of no application.
pub async fn count_omitted(
    db: &impl ConnectionTrait,
    tenant: Uuid,
    omitted: &mut Omitted,
) -> anyhow::Result<()> {
    use entity::{custom_records as cr, navigation_items as nav};
    use sea_orm::PaginatorTrait;
    omitted.navigation_items_without_application = nav::Entity::find()
        .filter(nav::Column::TenantId.eq(tenant))
        .filter(nav::Column::ApplicationId.is_null())
        .count(db)
        .await?;
    omitted.custom_records_without_application = cr::Entity::find()
        .filter(cr::Column::TenantId.eq(tenant))
        .filter(cr::Column::ApplicationId.is_null())
        .count(db)
        .await?;
    Ok(())
}
