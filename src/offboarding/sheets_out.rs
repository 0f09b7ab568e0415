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

#[derive(Serialize)]
struct VocabularySheet {
    vocabulary: VocabularyOut,
}

#[derive(Serialize)]
struct VocabularyOut {
    entity_schemas: Vec<Keyed>,
    event_types: Vec<Keyed>,
    surface_types: Vec<SurfaceOut>,
    template_kinds: Vec<Keyed>,
    control_plane_applications: Vec<ControlPlaneOut>,
    custom_types: Vec<CustomTypeOut>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    onboarding_steps: Vec<OnboardingStepOut>,
}

#[derive(Serialize)]
struct OnboardingStepOut {
    key: String,
    title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<String>,
    order: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    check: Option<&'static str>,
}

#[derive(Serialize)]
struct Keyed {
    key: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fields: Option<Json>,
}

#[derive(Serialize)]
struct SurfaceOut {
    key: String,
    name: String,
    #[serde(skip_serializing_if = "is_false")]
    is_public: bool,
}

#[derive(Serialize)]
struct ControlPlaneOut {
    code: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icon: Option<String>,
    route_namespace: String,
    #[serde(skip_serializing_if = "is_zero")]
    nav_order: i32,
}

#[derive(Serialize)]
struct CustomTypeOut {
    key: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    forkable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    fields: Option<Json>,
}

/// The vocabulary sheet (every term: the vocabulary is shared, and an importing database needs
/// the terms the application sheets name), and the lookups the application sheets use.
pub async fn vocabulary(
    db: &impl ConnectionTrait,
    tenant: Uuid,
) -> anyhow::Result<(String, Lookups)> {
    use entity::{
        control_plane_applications as cpa, custom_types, entity_schemas, event_types,
        onboarding_steps, surface_types, template_kinds,
    };
    let schemas = entity_schemas::Entity::find()
        .order_by_asc(entity_schemas::Column::Key)
        .all(db)
        .await?;
    let events = event_types::Entity::find()
        .order_by_asc(event_types::Column::Key)
        .all(db)
        .await?;
    let surfaces = surface_types::Entity::find()
        .order_by_asc(surface_types::Column::Key)
        .all(db)
        .await?;
    let kinds = template_kinds::Entity::find()
        .order_by_asc(template_kinds::Column::Key)
        .all(db)
        .await?;
    let control = cpa::Entity::find()
        .order_by_asc(cpa::Column::NavOrder)
        .order_by_asc(cpa::Column::Code)
        .all(db)
        .await?;
    let customs = custom_types::Entity::find()
        .order_by_asc(custom_types::Column::Key)
        .all(db)
        .await?;
    let steps = onboarding_steps::Entity::find()
        .order_by_asc(onboarding_steps::Column::Position)
        .order_by_asc(onboarding_steps::Column::Key)
        .all(db)
        .await?;
    let sheet = VocabularySheet {
        vocabulary: VocabularyOut {
            entity_schemas: schemas
                .iter()
                .map(|s| Keyed {
                    key: s.key.clone(),
                    name: s.name.clone(),
                    description: s.description.clone(),
                    fields: non_empty(&s.fields),
                })
                .collect(),
            event_types: events
                .iter()
                .map(|e| Keyed {
                    key: e.key.clone(),
                    name: e.name.clone(),
                    description: e.description.clone(),
                    fields: None,
                })
                .collect(),
            surface_types: surfaces
                .iter()
                .map(|s| SurfaceOut {
                    key: s.key.clone(),
                    name: s.name.clone(),
                    is_public: s.is_public,
                })
                .collect(),
            template_kinds: kinds
                .iter()
                .map(|k| Keyed {
                    key: k.key.clone(),
                    name: k.name.clone(),
                    description: k.description.clone(),
                    fields: None,
                })
                .collect(),
            control_plane_applications: control
                .iter()
                .map(|a| ControlPlaneOut {
                    code: a.code.clone(),
                    name: a.name.clone(),
                    description: a.description.clone(),
                    icon: a.icon.clone(),
                    route_namespace: a.route_namespace.clone(),
                    nav_order: a.nav_order,
                })
                .collect(),
            custom_types: customs
                .iter()
                .map(|t| CustomTypeOut {
                    key: t.key.clone(),
                    name: t.name.clone(),
                    description: t.description.clone(),
                    forkable: t.forkable,
                    fields: non_empty(&t.fields),
                })
                .collect(),
            // A check this server does not know is left out: the step reads as manual here too.
            onboarding_steps: steps
                .into_iter()
                .map(|s| OnboardingStepOut {
                    check: s
                        .server_check
                        .as_deref()
                        .and_then(crate::sheets::format::StepCheck::parse)
                        .map(crate::sheets::format::StepCheck::as_str),
                    key: s.key,
                    title: s.title,
                    hint: s.hint,
                    order: s.position,
                })
                .collect(),
        },
    };
    let text = yaml(
        "The shared vocabulary, as exported with the tenant.",
        &sheet,
    )?;
    let applications = tenant_applications(db, tenant).await?;
    let codes: HashMap<Uuid, String> = applications
        .iter()
        .map(|a| (a.id, a.code.clone()))
        .collect();
    let mut actions = HashMap::new();
    for a in entity::actions::Entity::find()
        .filter(entity::actions::Column::TenantId.eq(tenant))
        .all(db)
        .await?
    {
        let code = key_of(&codes, a.application_id)?;
        actions.insert(a.id, (code, a.key));
    }
    let lookups = Lookups {
        entity_schemas: schemas.into_iter().map(|s| (s.id, s.key)).collect(),
        event_types: events.into_iter().map(|e| (e.id, e.key)).collect(),
        surface_types: surfaces.into_iter().map(|s| (s.id, s.key)).collect(),
        custom_types: customs.into_iter().map(|t| (t.id, t.key)).collect(),
        actions,
    };
    Ok((text, lookups))
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

#[derive(Serialize)]
struct ApplicationSheet {
    identity: IdentityOut,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    entities: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    actions: Vec<ActionOut>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    placements: Vec<ForeignOut>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    views: Vec<ViewOut>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    notifications: Vec<NotificationOut>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    reports: Vec<ReportOut>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    portal_pages: Vec<PageOut>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    navigation: Vec<NavOut>,
    #[serde(skip_serializing_if = "PresentationOut::is_empty")]
    presentation: PresentationOut,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    records: Vec<RecordOut>,
}

#[derive(Serialize)]
struct IdentityOut {
    code: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icon: Option<String>,
    nav_order: i32,
    is_active: bool,
    route_namespace: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    vertical: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    features: Option<Json>,
}

#[derive(Serialize)]
struct ActionOut {
    key: String,
    label: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    entity: Option<String>,
    parameters: Json,
    side_effects: Json,
    #[serde(skip_serializing_if = "is_false")]
    public_submit: bool,
    #[serde(skip_serializing_if = "is_false")]
    public_vote: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    placements: Vec<PlacementOut>,
}

#[derive(Serialize)]
struct PlacementOut {
    surface: String,
    position: i32,
}

#[derive(Serialize)]
struct ForeignOut {
    action: String,
    surface: String,
    position: i32,
}

#[derive(Serialize)]
struct ViewOut {
    key: String,
    name: String,
    entity: String,
    aggregate: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    filter: Json,
}

#[derive(Serialize)]
struct NotificationOut {
    key: String,
    event: String,
    channel: String,
    subject: String,
    body: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    rules: Vec<RuleOut>,
}

#[derive(Serialize)]
struct RuleOut {
    key: String,
    recipients: Json,
    conditions: Json,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    subscriptions: Vec<SubscriptionOut>,
}

#[derive(Serialize)]
struct SubscriptionOut {
    channel: String,
    audience: String,
}

#[derive(Serialize)]
struct ReportOut {
    key: String,
    name: String,
    format: String,
    definition: Json,
}

#[derive(Serialize)]
struct PageOut {
    slug: String,
    title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    surface: Option<String>,
    is_public: bool,
    content: Json,
}

#[derive(Serialize)]
struct NavOut {
    key: String,
    label: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    route: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icon: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    page: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    children: Vec<NavOut>,
}

#[derive(Serialize, Default)]
struct PresentationOut {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    list_layouts: Vec<LayoutOut>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    dashboards: Vec<DashboardOut>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    child_collections: Vec<ChildOut>,
}

impl PresentationOut {
    fn is_empty(&self) -> bool {
        self.list_layouts.is_empty()
            && self.dashboards.is_empty()
            && self.child_collections.is_empty()
    }
}

#[derive(Serialize)]
struct LayoutOut {
    key: String,
    entity: String,
    columns: Json,
    #[serde(skip_serializing_if = "Option::is_none")]
    default_sort: Option<String>,
}

#[derive(Serialize)]
struct DashboardOut {
    key: String,
    title: String,
    widgets: Json,
}

#[derive(Serialize)]
struct ChildOut {
    key: String,
    label: String,
    parent: String,
    child: String,
}

#[derive(Serialize)]
struct RecordOut {
    #[serde(rename = "type")]
    custom_type: String,
    key: String,
    data: Json,
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
