//! The shapes of an application sheet as an export writes it: the same keys and nesting as
//! `sheets::format` reads, with empty parts left out.

use serde::Serialize;
use serde_json::Value as Json;

#[derive(Serialize)]
pub(super) struct ApplicationSheet {
    pub(super) identity: IdentityOut,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) entities: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) actions: Vec<ActionOut>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) placements: Vec<ForeignOut>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) views: Vec<ViewOut>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) notifications: Vec<NotificationOut>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) reports: Vec<ReportOut>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) portal_pages: Vec<PageOut>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) navigation: Vec<NavOut>,
    #[serde(skip_serializing_if = "PresentationOut::is_empty")]
    pub(super) presentation: PresentationOut,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) records: Vec<RecordOut>,
}

#[derive(Serialize)]
pub(super) struct IdentityOut {
    pub(super) code: String,
    pub(super) name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) icon: Option<String>,
    pub(super) nav_order: i32,
    pub(super) is_active: bool,
    pub(super) route_namespace: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) vertical: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) features: Option<Json>,
}

#[derive(Serialize)]
pub(super) struct ActionOut {
    pub(super) key: String,
    pub(super) label: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) entity: Option<String>,
    pub(super) parameters: Json,
    pub(super) side_effects: Json,
    #[serde(skip_serializing_if = "super::is_false")]
    pub(super) public_submit: bool,
    #[serde(skip_serializing_if = "super::is_false")]
    pub(super) public_vote: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) placements: Vec<PlacementOut>,
}

#[derive(Serialize)]
pub(super) struct PlacementOut {
    pub(super) surface: String,
    pub(super) position: i32,
}

#[derive(Serialize)]
pub(super) struct ForeignOut {
    pub(super) action: String,
    pub(super) surface: String,
    pub(super) position: i32,
}

#[derive(Serialize)]
pub(super) struct ViewOut {
    pub(super) key: String,
    pub(super) name: String,
    pub(super) entity: String,
    pub(super) aggregate: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) field: Option<String>,
    pub(super) filter: Json,
}

#[derive(Serialize)]
pub(super) struct NotificationOut {
    pub(super) key: String,
    pub(super) event: String,
    pub(super) channel: String,
    pub(super) subject: String,
    pub(super) body: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) rules: Vec<RuleOut>,
}

#[derive(Serialize)]
pub(super) struct RuleOut {
    pub(super) key: String,
    pub(super) recipients: Json,
    pub(super) conditions: Json,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) subscriptions: Vec<SubscriptionOut>,
}

#[derive(Serialize)]
pub(super) struct SubscriptionOut {
    pub(super) channel: String,
    pub(super) audience: String,
}

#[derive(Serialize)]
pub(super) struct ReportOut {
    pub(super) key: String,
    pub(super) name: String,
    pub(super) format: String,
    pub(super) definition: Json,
}

#[derive(Serialize)]
pub(super) struct PageOut {
    pub(super) slug: String,
    pub(super) title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) surface: Option<String>,
    pub(super) is_public: bool,
    pub(super) content: Json,
}

#[derive(Serialize)]
pub(super) struct NavOut {
    pub(super) key: String,
    pub(super) label: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) route: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) icon: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) page: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) children: Vec<NavOut>,
}

#[derive(Serialize, Default)]
pub(super) struct PresentationOut {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) list_layouts: Vec<LayoutOut>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) dashboards: Vec<DashboardOut>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) child_collections: Vec<ChildOut>,
}

impl PresentationOut {
    pub(super) fn is_empty(&self) -> bool {
        self.list_layouts.is_empty()
            && self.dashboards.is_empty()
            && self.child_collections.is_empty()
    }
}

#[derive(Serialize)]
pub(super) struct LayoutOut {
    pub(super) key: String,
    pub(super) entity: String,
    pub(super) columns: Json,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) default_sort: Option<String>,
}

#[derive(Serialize)]
pub(super) struct DashboardOut {
    pub(super) key: String,
    pub(super) title: String,
    pub(super) widgets: Json,
}

#[derive(Serialize)]
pub(super) struct ChildOut {
    pub(super) key: String,
    pub(super) label: String,
    pub(super) parent: String,
    pub(super) child: String,
}

#[derive(Serialize)]
pub(super) struct RecordOut {
    #[serde(rename = "type")]
    pub(super) custom_type: String,
    pub(super) key: String,
    pub(super) data: Json,
}
