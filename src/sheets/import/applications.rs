//! Application sheets: the spine of every application (its row and actions) first, then the
//! rest of each application (entities, presentation, placements, navigation, …), and the
//! pruning of rows its sheet no longer declares.

use std::collections::BTreeMap;

use sea_orm::{
    ConnectionTrait,
    sea_query::{Alias, Expr, ExprTrait, Query},
};
use serde_json::json;
use uuid::Uuid;

use super::{SheetSummary, Writer, application_tables, json_or, opt_text, text};
use crate::{
    registry::Registry,
    rows::Cell,
    sheets::{
        check::Parsed,
        format::{NavItem, Sheet},
    },
};

impl<'a> Writer<'a> {
    /// Writes the application row and its actions of every application sheet (so adapters can
    /// place each other's actions whatever the file order).
    pub(super) async fn spines(
        &mut self,
        parsed: &[Parsed],
    ) -> anyhow::Result<BTreeMap<String, SheetSummary>> {
        self.load_vocabulary().await?;
        let mut out = BTreeMap::new();
        for p in parsed {
            let Some(identity) = &p.sheet.identity else {
                continue;
            };
            self.summary = SheetSummary {
                file: p.file.clone(),
                application: identity.code.value.clone(),
                ..Default::default()
            };
            let app = self
                .upsert(
                    "applications",
                    vec![("code", text(&identity.code.value))],
                    vec![
                        ("name", text(&identity.name)),
                        ("description", opt_text(&identity.description)),
                        ("icon", opt_text(&identity.icon)),
                        ("nav_order", Cell::Int(identity.nav_order.into())),
                        ("is_active", Cell::Bool(identity.is_active)),
                        ("route_namespace", text(&identity.route_namespace.value)),
                        ("vertical", opt_text(&identity.vertical)),
                        ("features", json_or(&identity.features, json!({}))),
                    ],
                )
                .await?;
            self.applications.insert(identity.code.value.clone(), app);
            for action in &p.sheet.actions {
                let entity = match &action.entity {
                    Some(e) => Cell::Uuid(self.vocab("entity_schemas", &e.value)?),
                    None => Cell::Null,
                };
                let id = self
                    .upsert(
                        "actions",
                        vec![
                            ("application_id", Cell::Uuid(app)),
                            ("key", text(&action.key.value)),
                        ],
                        vec![
                            ("label", text(&action.label)),
                            ("description", opt_text(&action.description)),
                            ("entity_schema_id", entity),
                            ("parameters", json_or(&action.parameters, json!([]))),
                            ("side_effects", json_or(&action.side_effects, json!([]))),
                            ("public_submit", Cell::Bool(action.public_submit)),
                            ("public_vote", Cell::Bool(action.public_vote)),
                        ],
                    )
                    .await?;
                self.actions
                    .insert((identity.code.value.clone(), action.key.value.clone()), id);
            }
            out.insert(p.file.clone(), std::mem::take(&mut self.summary));
        }
        // Actions of applications the batch does not carry, for adapters pointing at them.
        let rows = self
            .tx
            .query_all_raw(sea_orm::Statement::from_sql_and_values(
                self.tx.get_database_backend(),
                match self.tx.get_database_backend() {
                    sea_orm::DbBackend::Postgres => {
                        "SELECT a.code AS code, x.key AS key, x.id AS id FROM actions x JOIN applications a ON a.id = x.application_id WHERE x.tenant_id = $1"
                    }
                    _ => "SELECT a.code AS code, x.key AS key, x.id AS id FROM actions x JOIN applications a ON a.id = x.application_id WHERE x.tenant_id = ?",
                },
                [self.template.into()],
            ))
            .await?;
        for row in rows {
            let code: String = row.try_get("", "code")?;
            let key: String = row.try_get("", "key")?;
            self.actions
                .entry((code, key))
                .or_insert(row.try_get("", "id")?);
        }
        Ok(out)
    }

    pub(super) async fn navigation(
        &mut self,
        app: Uuid,
        items: &[NavItem],
        parent: Option<Uuid>,
        pages: &BTreeMap<String, Uuid>,
    ) -> anyhow::Result<()> {
        for (position, item) in items.iter().enumerate() {
            let page = item
                .page
                .as_ref()
                .and_then(|p| pages.get(&p.value))
                .copied();
            let id = self
                .upsert(
                    "navigation_items",
                    vec![("key", text(&item.key.value))],
                    vec![
                        ("parent_id", parent.map_or(Cell::Null, Cell::Uuid)),
                        ("application_id", Cell::Uuid(app)),
                        ("portal_page_id", page.map_or(Cell::Null, Cell::Uuid)),
                        ("label", text(&item.label)),
                        ("route", opt_text(&item.route)),
                        ("icon", opt_text(&item.icon)),
                        ("position", Cell::Int(position as i64)),
                    ],
                )
                .await?;
            Box::pin(self.navigation(app, &item.children, Some(id), pages)).await?;
        }
        Ok(())
    }

    /// Everything else of one application sheet.
    pub(super) async fn application(&mut self, sheet: &Sheet, code: &str) -> anyhow::Result<()> {
        let app = self.applications[code];
        for (position, entity) in sheet.entities.iter().enumerate() {
            let schema = self.vocab("entity_schemas", &entity.value)?;
            self.upsert(
                "application_entities",
                vec![
                    ("application_id", Cell::Uuid(app)),
                    ("entity_schema_id", Cell::Uuid(schema)),
                ],
                vec![("position", Cell::Int(position as i64))],
            )
            .await?;
        }
        // The action rows were written with the spines; count them as seen here.
        for action in &sheet.actions {
            let id = self.actions[&(code.to_string(), action.key.value.clone())];
            self.seen.entry("actions").or_default().insert(id);
            for placement in &action.placements {
                let surface = self.vocab("surface_types", &placement.surface.value)?;
                self.upsert(
                    "action_placements",
                    vec![
                        ("action_id", Cell::Uuid(id)),
                        ("application_id", Cell::Uuid(app)),
                        ("surface_type_id", Cell::Uuid(surface)),
                    ],
                    vec![("position", Cell::Int(placement.position.into()))],
                )
                .await?;
            }
        }
        for placement in &sheet.placements {
            let (other, key) = placement.action.value.split_once('/').unwrap_or_default();
            let action = *self
                .actions
                .get(&(other.to_string(), key.to_string()))
                .ok_or_else(|| anyhow::anyhow!("action {} is missing", placement.action.value))?;
            let surface = self.vocab("surface_types", &placement.surface.value)?;
            self.upsert(
                "action_placements",
                vec![
                    ("action_id", Cell::Uuid(action)),
                    ("application_id", Cell::Uuid(app)),
                    ("surface_type_id", Cell::Uuid(surface)),
                ],
                vec![("position", Cell::Int(placement.position.into()))],
            )
            .await?;
        }
        for view in &sheet.views {
            let schema = self.vocab("entity_schemas", &view.entity.value)?;
            self.upsert(
                "views",
                vec![
                    ("application_id", Cell::Uuid(app)),
                    ("key", text(&view.key.value)),
                ],
                vec![
                    ("name", text(&view.name)),
                    ("entity_schema_id", Cell::Uuid(schema)),
                    ("aggregate", text(&view.aggregate)),
                    ("field", opt_text(&view.field)),
                    ("filter", json_or(&view.filter, json!({}))),
                ],
            )
            .await?;
        }
        for n in &sheet.notifications {
            let event = self.vocab("event_types", &n.event.value)?;
            let template = self
                .upsert(
                    "notification_templates",
                    vec![
                        ("application_id", Cell::Uuid(app)),
                        ("key", text(&n.key.value)),
                    ],
                    vec![
                        ("event_type_id", Cell::Uuid(event)),
                        ("channel", text(&n.channel)),
                        ("subject", text(&n.subject)),
                        ("body", text(&n.body)),
                    ],
                )
                .await?;
            for rule in &n.rules {
                let rule_id = self
                    .upsert(
                        "notification_rules",
                        vec![
                            ("template_id", Cell::Uuid(template)),
                            ("key", text(&rule.key.value)),
                        ],
                        vec![
                            ("recipients", json_or(&rule.recipients, json!([]))),
                            ("conditions", json_or(&rule.conditions, json!({}))),
                        ],
                    )
                    .await?;
                for sub in &rule.subscriptions {
                    self.upsert(
                        "notification_subscriptions",
                        vec![
                            ("rule_id", Cell::Uuid(rule_id)),
                            ("channel", text(&sub.channel)),
                            ("audience", text(&sub.audience)),
                        ],
                        vec![("team_id", Cell::Null)],
                    )
                    .await?;
                }
            }
        }
        for r in &sheet.reports {
            self.upsert(
                "report_templates",
                vec![
                    ("application_id", Cell::Uuid(app)),
                    ("key", text(&r.key.value)),
                ],
                vec![
                    ("name", text(&r.name)),
                    ("format", text(&r.format)),
                    ("definition", json_or(&r.definition, json!({}))),
                ],
            )
            .await?;
        }
        let mut pages = BTreeMap::new();
        for page in &sheet.portal_pages {
            let surface = match &page.surface {
                Some(s) => Cell::Uuid(self.vocab("surface_types", &s.value)?),
                None => Cell::Null,
            };
            let id = self
                .upsert(
                    "portal_pages",
                    vec![
                        ("application_id", Cell::Uuid(app)),
                        ("slug", text(&page.slug.value)),
                    ],
                    vec![
                        ("title", text(&page.title)),
                        ("surface_type_id", surface),
                        ("is_public", Cell::Bool(page.is_public)),
                        ("content", json_or(&page.content, json!({}))),
                    ],
                )
                .await?;
            pages.insert(page.slug.value.clone(), id);
        }
        self.navigation(app, &sheet.navigation, None, &pages)
            .await?;
        let pr = &sheet.presentation;
        for l in &pr.list_layouts {
            let schema = self.vocab("entity_schemas", &l.entity.value)?;
            self.upsert(
                "list_layouts",
                vec![
                    ("application_id", Cell::Uuid(app)),
                    ("key", text(&l.key.value)),
                ],
                vec![
                    ("entity_schema_id", Cell::Uuid(schema)),
                    ("columns", json_or(&l.columns, json!([]))),
                    ("default_sort", opt_text(&l.default_sort)),
                ],
            )
            .await?;
        }
        for d in &pr.dashboards {
            self.upsert(
                "dashboards",
                vec![
                    ("application_id", Cell::Uuid(app)),
                    ("key", text(&d.key.value)),
                ],
                vec![
                    ("title", text(&d.title)),
                    ("widgets", json_or(&d.widgets, json!([]))),
                ],
            )
            .await?;
        }
        for c in &pr.child_collections {
            let parent = self.vocab("entity_schemas", &c.parent.value)?;
            let child = self.vocab("entity_schemas", &c.child.value)?;
            self.upsert(
                "child_collections",
                vec![
                    ("application_id", Cell::Uuid(app)),
                    ("key", text(&c.key.value)),
                ],
                vec![
                    ("label", text(&c.label)),
                    ("parent_schema_id", Cell::Uuid(parent)),
                    ("child_schema_id", Cell::Uuid(child)),
                ],
            )
            .await?;
        }
        for record in &sheet.records {
            let custom = self.vocab("custom_types", &record.custom_type.value)?;
            self.upsert(
                "custom_records",
                vec![
                    ("custom_type_id", Cell::Uuid(custom)),
                    ("key", text(&record.key.value)),
                ],
                vec![
                    ("application_id", Cell::Uuid(app)),
                    ("data", json_or(&record.data, json!({}))),
                ],
            )
            .await?;
        }
        self.prune_application(app).await
    }

    /// Counts (and with `prune`, deletes) rows of the application its sheet no longer declares.
    pub(super) async fn prune_application(&mut self, app: Uuid) -> anyhow::Result<()> {
        let registry: &'a Registry = self.registry;
        let mut stale: Vec<(&'a str, Uuid)> = Vec::new();
        // Rules and subscriptions hang off the application's notification templates.
        let templates = self
            .ids_where("notification_templates", "application_id", &[app])
            .await?;
        let rules = self
            .ids_where("notification_rules", "template_id", &templates)
            .await?;
        let subscriptions = self
            .ids_where("notification_subscriptions", "rule_id", &rules)
            .await?;
        for (table, ids) in [
            ("notification_subscriptions", subscriptions),
            ("notification_rules", rules),
        ] {
            stale.extend(
                ids.into_iter()
                    .filter(|id| !self.seen.get(table).is_some_and(|s| s.contains(id)))
                    .map(|id| (table, id)),
            );
        }
        for table in application_tables(registry) {
            let ids = self.ids_where(table, "application_id", &[app]).await?;
            stale.extend(
                ids.into_iter()
                    .filter(|id| !self.seen.get(table).is_some_and(|s| s.contains(id)))
                    .map(|id| (table, id)),
            );
        }
        self.summary.pruned += stale.len() as u64;
        if self.prune {
            for (table, id) in stale {
                let mut delete = Query::delete();
                delete
                    .from_table(Alias::new(table))
                    .and_where(Expr::col(Alias::new("id")).eq(id))
                    .and_where(Expr::col(Alias::new("tenant_id")).eq(self.template));
                self.tx.execute(&delete).await?;
            }
        }
        Ok(())
    }

    pub(super) async fn ids_where(
        &self,
        table: &str,
        column: &str,
        values: &[Uuid],
    ) -> anyhow::Result<Vec<Uuid>> {
        if values.is_empty() {
            return Ok(Vec::new());
        }
        let mut select = Query::select();
        select
            .column(Alias::new("id"))
            .from(Alias::new(table))
            .and_where(Expr::col(Alias::new("tenant_id")).eq(self.template))
            .and_where(Expr::col(Alias::new(column)).is_in(values.iter().copied()));
        Ok(self
            .tx
            .query_all(&select)
            .await?
            .iter()
            .map(|r| r.try_get::<Uuid>("", "id"))
            .collect::<Result<_, _>>()?)
    }
}
