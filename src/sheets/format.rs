//! The sheet format: what a provisioning sheet may say, as Rust types. The JSON Schema that
//! editors read (`sheets/sheet.schema.json`) is generated from these types.
//!
//! A sheet is either a **vocabulary sheet** (top-level `vocabulary:`) or an **application
//! sheet** (top-level `identity:` and the application's configuration). Names that point at
//! other rows (an entity schema, a surface, an event type, an action) are spanned so that a
//! dangling one is reported at its line and column.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value as Json;
use serde_saphyr::Spanned;

/// A name with the place it was written.
pub type Name = Spanned<String>;

/// One YAML file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Forklift provisioning sheet")]
pub struct Sheet {
    /// Shared vocabulary (a vocabulary sheet has only this).
    pub vocabulary: Option<Vocabulary>,
    /// The application this sheet declares (an application sheet starts here).
    pub identity: Option<Identity>,
    /// Entity schemas the application works with, by key, in order.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub entities: Vec<Name>,
    /// Actions of the application, with their placements.
    #[serde(default)]
    pub actions: Vec<Action>,
    /// Actions of other applications placed on this application's surfaces (adapters).
    #[serde(default)]
    pub placements: Vec<ForeignPlacement>,
    /// Declared aggregates and KPIs.
    #[serde(default)]
    pub views: Vec<View>,
    /// Notification templates, each bound to an event type, with recipient rules.
    #[serde(default)]
    pub notifications: Vec<Notification>,
    /// Report templates.
    #[serde(default)]
    pub reports: Vec<Report>,
    /// Portal pages (public ones are readable by citizens).
    #[serde(default)]
    pub portal_pages: Vec<PortalPage>,
    /// The application's navigation tree.
    #[serde(default)]
    pub navigation: Vec<NavItem>,
    /// List layouts, dashboards and child collections.
    #[serde(default)]
    pub presentation: Presentation,
    /// Records of custom (forkable) configuration types declared in a vocabulary sheet.
    #[serde(default)]
    pub records: Vec<Record>,
}

/// The application's identity block.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// Unique code (a DNS-label-like slug).
    #[schemars(with = "String")]
    pub code: Name,
    pub name: String,
    pub description: Option<String>,
    pub icon: Option<String>,
    #[serde(default)]
    pub nav_order: i32,
    #[serde(default = "yes")]
    pub is_active: bool,
    /// Where the application's routes live; unique across sheets.
    #[schemars(with = "String")]
    pub route_namespace: Name,
    pub vertical: Option<String>,
    /// Feature switches, e.g. `{ map: true }` (a map application gets geospatial layers).
    #[serde(default)]
    pub features: Option<Json>,
}

fn yes() -> bool {
    true
}

/// An action.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Action {
    #[schemars(with = "String")]
    pub key: Name,
    pub label: String,
    pub description: Option<String>,
    /// The entity schema the action works on.
    #[schemars(with = "Option<String>")]
    pub entity: Option<Name>,
    /// Parameter definitions (free-form JSON).
    #[serde(default)]
    pub parameters: Option<Json>,
    /// Side effects (free-form JSON).
    #[serde(default)]
    pub side_effects: Option<Json>,
    /// Citizens may submit through this action.
    #[serde(default)]
    pub public_submit: bool,
    /// Citizens may vote through this action.
    #[serde(default)]
    pub public_vote: bool,
    /// Where the action appears in this application.
    #[serde(default)]
    pub placements: Vec<Placement>,
}

/// An action placed on a surface of this application.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    /// Surface type key.
    #[schemars(with = "String")]
    pub surface: Name,
    #[serde(default)]
    pub position: i32,
}

/// Another application's action placed on this application's surface.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ForeignPlacement {
    /// `application-code/action-key`.
    #[schemars(with = "String")]
    pub action: Name,
    #[schemars(with = "String")]
    pub surface: Name,
    #[serde(default)]
    pub position: i32,
}

/// A declared aggregate or KPI.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct View {
    #[schemars(with = "String")]
    pub key: Name,
    pub name: String,
    #[schemars(with = "String")]
    pub entity: Name,
    /// `count`, `sum`, `avg`, `min`, `max`, …
    pub aggregate: String,
    pub field: Option<String>,
    #[serde(default)]
    pub filter: Option<Json>,
}

/// A notification template bound to an event type.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Notification {
    #[schemars(with = "String")]
    pub key: Name,
    /// Event type key.
    #[schemars(with = "String")]
    pub event: Name,
    pub channel: String,
    pub subject: String,
    pub body: String,
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// Who gets a notification.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    #[schemars(with = "String")]
    pub key: Name,
    #[serde(default)]
    pub recipients: Option<Json>,
    #[serde(default)]
    pub conditions: Option<Json>,
    #[serde(default)]
    pub subscriptions: Vec<Subscription>,
}

/// A standing subscription to a rule.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    pub channel: String,
    pub audience: String,
}

/// A report template.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Report {
    #[schemars(with = "String")]
    pub key: Name,
    pub name: String,
    pub format: String,
    #[serde(default)]
    pub definition: Option<Json>,
}

/// A portal page.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PortalPage {
    #[schemars(with = "String")]
    pub slug: Name,
    pub title: String,
    /// Surface type key.
    #[schemars(with = "Option<String>")]
    pub surface: Option<Name>,
    #[serde(default)]
    pub is_public: bool,
    #[serde(default)]
    pub content: Option<Json>,
}

/// A navigation entry, with its children.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NavItem {
    /// Unique within the template.
    #[schemars(with = "String")]
    pub key: Name,
    pub label: String,
    pub route: Option<String>,
    pub icon: Option<String>,
    /// A portal page of this application, by slug.
    #[schemars(with = "Option<String>")]
    pub page: Option<Name>,
    #[serde(default)]
    pub children: Vec<NavItem>,
}

/// Presentation configuration.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Presentation {
    #[serde(default)]
    pub list_layouts: Vec<ListLayout>,
    #[serde(default)]
    pub dashboards: Vec<Dashboard>,
    #[serde(default)]
    pub child_collections: Vec<ChildCollection>,
}

/// How a list of an entity is shown.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListLayout {
    #[schemars(with = "String")]
    pub key: Name,
    #[schemars(with = "String")]
    pub entity: Name,
    #[serde(default)]
    pub columns: Option<Json>,
    pub default_sort: Option<String>,
}

/// A dashboard.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Dashboard {
    #[schemars(with = "String")]
    pub key: Name,
    pub title: String,
    #[serde(default)]
    pub widgets: Option<Json>,
}

/// Child records shown under a parent record.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChildCollection {
    #[schemars(with = "String")]
    pub key: Name,
    pub label: String,
    #[schemars(with = "String")]
    pub parent: Name,
    #[schemars(with = "String")]
    pub child: Name,
}

/// A record of a custom configuration type.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Custom type key.
    #[schemars(with = "String")]
    #[serde(rename = "type")]
    pub custom_type: Name,
    #[schemars(with = "String")]
    pub key: Name,
    #[serde(default)]
    pub data: Option<Json>,
}

/// The shared vocabulary.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Vocabulary {
    #[serde(default)]
    pub entity_schemas: Vec<EntitySchema>,
    #[serde(default)]
    pub event_types: Vec<KeyedTerm>,
    #[serde(default)]
    pub surface_types: Vec<SurfaceType>,
    #[serde(default)]
    pub template_kinds: Vec<KeyedTerm>,
    #[serde(default)]
    pub control_plane_applications: Vec<ControlPlaneApplication>,
    /// New forkable configuration types; their records go in application sheets.
    #[serde(default)]
    pub custom_types: Vec<CustomType>,
    /// The onboarding checklist every tenant works through (`Tenant.onboarding`).
    #[serde(default)]
    pub onboarding_steps: Vec<OnboardingStep>,
}

/// A step of the onboarding checklist: checked by the server when `check` names a check,
/// marked done by a tenant's Super User otherwise.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OnboardingStep {
    #[schemars(with = "String")]
    pub key: Name,
    pub title: String,
    /// What to do, shown under the title.
    pub hint: Option<String>,
    /// Where the step appears (ascending).
    #[serde(default)]
    pub order: i32,
    /// What the server checks to complete the step by itself; omitted for a manual step.
    pub check: Option<StepCheck>,
}

/// A server check of an onboarding step.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StepCheck {
    /// The tenant's provisioning is READY (the fork finished).
    Forked,
    /// The tenant has an Owner (the staff administrator `seedStaffAdmin` seeds is one).
    StaffAdminSeeded,
    /// The tenant has a verified custom domain.
    DomainVerified,
    /// The tenant's branding sets any field.
    BrandingSet,
}

impl StepCheck {
    /// Every check.
    pub const ALL: [StepCheck; 4] = [
        StepCheck::Forked,
        StepCheck::StaffAdminSeeded,
        StepCheck::DomainVerified,
        StepCheck::BrandingSet,
    ];

    /// The name sheets and the database use.
    pub fn as_str(self) -> &'static str {
        match self {
            StepCheck::Forked => "forked",
            StepCheck::StaffAdminSeeded => "staff_admin_seeded",
            StepCheck::DomainVerified => "domain_verified",
            StepCheck::BrandingSet => "branding_set",
        }
    }

    /// The check named `name`, if any.
    pub fn parse(name: &str) -> Option<StepCheck> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

/// An entity schema.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EntitySchema {
    #[schemars(with = "String")]
    pub key: Name,
    pub name: String,
    pub description: Option<String>,
    #[serde(default)]
    pub fields: Vec<Field>,
}

/// A field of an entity schema.
#[derive(Debug, Deserialize, JsonSchema, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    pub name: String,
    /// `string`, `number`, `boolean`, `date`, `point`, `polygon`, `line`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// A geometry field: a map application gets a layer for it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub geometry: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
}

/// A key, a name, a description: event types and template kinds.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyedTerm {
    #[schemars(with = "String")]
    pub key: Name,
    pub name: String,
    pub description: Option<String>,
}

/// A surface where actions and pages appear.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SurfaceType {
    #[schemars(with = "String")]
    pub key: Name,
    pub name: String,
    /// Citizens see what is placed here.
    #[serde(default)]
    pub is_public: bool,
}

/// An application of the control plane (shared, never forked).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ControlPlaneApplication {
    #[schemars(with = "String")]
    pub code: Name,
    pub name: String,
    pub description: Option<String>,
    pub icon: Option<String>,
    #[schemars(with = "String")]
    pub route_namespace: Name,
    #[serde(default)]
    pub nav_order: i32,
}

/// A new configuration type; its records are forked with the template only when `forkable` is
/// set (the default is `false`, as for a custom type created through the API).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomType {
    #[schemars(with = "String")]
    pub key: Name,
    pub name: String,
    pub description: Option<String>,
    #[serde(default)]
    pub forkable: bool,
    #[serde(default)]
    pub fields: Vec<Field>,
}

/// The JSON Schema (draft-07) of the sheet format.
pub fn json_schema() -> String {
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    let schema = generator.into_root_schema_for::<Sheet>();
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}
