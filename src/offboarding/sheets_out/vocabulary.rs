//! The vocabulary sheet of an export: every term of the shared vocabulary (an importing
//! database needs the terms the application sheets name), and the [`Lookups`] from ids to keys
//! the application sheets are written with.

use std::collections::HashMap;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::Serialize;
use serde_json::Value as Json;
use uuid::Uuid;

use super::{Lookups, is_false, is_zero, key_of, non_empty, tenant_applications, yaml};

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
