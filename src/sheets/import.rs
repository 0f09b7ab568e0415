//! Writing checked sheets onto the template, in one transaction: rows are found by their
//! natural key and updated in place when they changed, created when missing, and left alone
//! when equal. Rows of an application that its sheet no longer declares are counted as pruned,
//! and deleted only when asked.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::Utc;
use sea_orm::{
    ConnectionTrait, DatabaseTransaction,
    sea_query::{Alias, Expr, ExprTrait, Query},
};
use serde_json::{Value as Json, json};
use uuid::Uuid;

use super::{
    check::{Known, Parsed},
    format::{NavItem, Sheet, Vocabulary},
};
use crate::{
    registry::{Registry, RowClass},
    rows::{Cell, Row},
};

/// What one sheet changed.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SheetSummary {
    pub file: String,
    /// The application's code, or `vocabulary`.
    pub application: String,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// Rows the sheet no longer declares: deleted with `--prune`, reported otherwise.
    pub pruned: u64,
}

/// Tables owned by an application through its `application_id`, children first (for pruning):
/// every class the fork copies with a same-tenant reference `application_id → applications`.
fn application_tables(registry: &Registry) -> Vec<&str> {
    let mut tables: Vec<&str> = registry
        .copied_classes()
        .into_iter()
        .filter(|class| {
            class
                .references
                .iter()
                .any(|r| r.column == "application_id" && r.table == "applications" && r.same_tenant)
        })
        .map(|class| class.table.as_str())
        .collect();
    tables.reverse();
    tables
}

fn text(v: impl Into<String>) -> Cell {
    Cell::Text(v.into())
}

fn opt_text(v: &Option<String>) -> Cell {
    v.clone().map_or(Cell::Null, Cell::Text)
}

fn json_or(v: &Option<Json>, default: Json) -> Cell {
    Cell::Json(v.clone().unwrap_or(default))
}

/// Loads what the template and vocabulary already hold, for references a batch omits.
pub async fn known(db: &impl ConnectionTrait, template: Uuid) -> anyhow::Result<Known> {
    let mut known = Known::default();
    for (table, into) in [
        ("entity_schemas", &mut known.entity_schemas),
        ("event_types", &mut known.event_types),
        ("surface_types", &mut known.surface_types),
        ("custom_types", &mut known.custom_types),
    ] {
        let mut select = Query::select();
        select.column(Alias::new("key")).from(Alias::new(table));
        for row in db.query_all(&select).await? {
            into.insert(row.try_get::<String>("", "key")?);
        }
    }
    let sql_rows = db
        .query_all_raw(sea_orm::Statement::from_sql_and_values(
            db.get_database_backend(),
            match db.get_database_backend() {
                sea_orm::DbBackend::Postgres => {
                    "SELECT a.code AS code, x.key AS key FROM actions x JOIN applications a ON a.id = x.application_id WHERE x.tenant_id = $1"
                }
                _ => "SELECT a.code AS code, x.key AS key FROM actions x JOIN applications a ON a.id = x.application_id WHERE x.tenant_id = ?",
            },
            [template.into()],
        ))
        .await?;
    for row in sql_rows {
        let code: String = row.try_get("", "code")?;
        let key: String = row.try_get("", "key")?;
        known.actions.entry(code).or_default().insert(key);
    }
    Ok(known)
}

/// Writes one batch.
pub struct Writer<'a> {
    tx: &'a DatabaseTransaction,
    registry: &'a Registry,
    template: Uuid,
    prune: bool,
    summary: SheetSummary,
    /// Ids written (or found equal) per table, for pruning.
    seen: HashMap<&'static str, HashSet<Uuid>>,
    /// `application code → id` and `(code, action key) → id`, across the batch.
    applications: BTreeMap<String, Uuid>,
    actions: BTreeMap<(String, String), Uuid>,
    vocabulary: BTreeMap<(&'static str, String), Uuid>,
}

impl<'a> Writer<'a> {
    /// A writer for one transaction.
    pub fn new(
        tx: &'a DatabaseTransaction,
        registry: &'a Registry,
        template: Uuid,
        prune: bool,
    ) -> Self {
        Self {
            tx,
            registry,
            template,
            prune,
            summary: SheetSummary::default(),
            seen: HashMap::new(),
            applications: BTreeMap::new(),
            actions: BTreeMap::new(),
            vocabulary: BTreeMap::new(),
        }
    }

    fn class(&self, table: &str) -> anyhow::Result<&'a RowClass> {
        self.registry
            .by_table(table)
            .ok_or_else(|| anyhow::anyhow!("no row class for {table}"))
    }

    /// Finds the row of `table` with natural key `key` (in the template when tenant-owned),
    /// then creates it, updates the columns that differ, or leaves it.
    async fn upsert(
        &mut self,
        table: &'static str,
        key: Vec<(&str, Cell)>,
        values: Vec<(&str, Cell)>,
    ) -> anyhow::Result<Uuid> {
        let class = self.class(table)?;
        let mut select = Query::select();
        select
            .columns(class.columns.iter().map(|c| Alias::new(&c.name)))
            .from(Alias::new(table));
        if class.tenant_owned {
            select.and_where(Expr::col(Alias::new("tenant_id")).eq(self.template));
        }
        for (column, value) in &key {
            let kind = class
                .columns
                .iter()
                .find(|c| c.name == *column)
                .map(|c| c.kind);
            select.and_where(match value {
                Cell::Null => Expr::col(Alias::new(*column)).is_null(),
                v => Expr::col(Alias::new(*column))
                    .eq(v.to_value(kind.unwrap_or(crate::registry::ColumnKind::Text))),
            });
        }
        let existing = match self.tx.query_one(&select).await? {
            Some(r) => Some(Row::read(&r, class)?),
            None => None,
        };
        let now = Utc::now();
        let kind_of = |column: &str| {
            class
                .columns
                .iter()
                .find(|c| c.name == column)
                .map_or(crate::registry::ColumnKind::Text, |c| c.kind)
        };
        let id = match existing {
            Some(row) => {
                let changed: Vec<&(&str, Cell)> =
                    values.iter().filter(|(c, v)| row.get(c) != v).collect();
                if changed.is_empty() {
                    self.summary.unchanged += 1;
                } else {
                    let mut update = Query::update();
                    update.table(Alias::new(table));
                    for (column, value) in changed {
                        update.value(Alias::new(*column), value.to_value(kind_of(column)));
                    }
                    if class.columns.iter().any(|c| c.name == "updated_at") {
                        update.value(Alias::new("updated_at"), now);
                    }
                    update.and_where(Expr::col(Alias::new("id")).eq(row.id()));
                    self.tx.execute(&update).await?;
                    self.summary.updated += 1;
                }
                row.id()
            }
            None => {
                let id = Uuid::now_v7();
                let mut all: Vec<(String, Cell)> = vec![("id".into(), Cell::Uuid(id))];
                if class.tenant_owned {
                    all.push(("tenant_id".into(), Cell::Uuid(self.template)));
                }
                all.extend(key.into_iter().map(|(c, v)| (c.to_string(), v)));
                all.extend(values.into_iter().map(|(c, v)| (c.to_string(), v)));
                for stamp in ["created_at", "updated_at"] {
                    if class.columns.iter().any(|c| c.name == stamp) {
                        all.push((stamp.into(), Cell::Timestamp(now)));
                    }
                }
                let mut insert = Query::insert();
                insert
                    .into_table(Alias::new(table))
                    .columns(all.iter().map(|(c, _)| Alias::new(c)))
                    .values(
                        all.iter()
                            .map(|(c, v)| Expr::val(v.to_value(kind_of(c))))
                            .collect::<Vec<_>>(),
                    )?;
                self.tx.execute(&insert).await?;
                self.summary.created += 1;
                id
            }
        };
        self.seen.entry(table).or_default().insert(id);
        Ok(id)
    }

    fn vocab(&self, table: &'static str, key: &str) -> anyhow::Result<Uuid> {
        self.vocabulary
            .get(&(table, key.to_string()))
            .copied()
            .ok_or_else(|| anyhow::anyhow!("{table} `{key}` is missing"))
    }

    /// Loads the vocabulary ids (after vocabulary sheets were written).
    async fn load_vocabulary(&mut self) -> anyhow::Result<()> {
        for table in [
            "entity_schemas",
            "event_types",
            "surface_types",
            "custom_types",
        ] {
            let mut select = Query::select();
            select
                .columns([Alias::new("id"), Alias::new("key")])
                .from(Alias::new(table));
            for row in self.tx.query_all(&select).await? {
                self.vocabulary
                    .insert((table, row.try_get("", "key")?), row.try_get("", "id")?);
            }
        }
        Ok(())
    }

    /// Writes a vocabulary sheet.
    pub async fn vocabulary(&mut self, file: &str, v: &Vocabulary) -> anyhow::Result<SheetSummary> {
        self.summary = SheetSummary {
            file: file.into(),
            application: "vocabulary".into(),
            ..Default::default()
        };
        for s in &v.entity_schemas {
            let fields = serde_json::to_value(&s.fields)?;
            self.upsert(
                "entity_schemas",
                vec![("key", text(&s.key.value))],
                vec![
                    ("name", text(&s.name)),
                    ("description", opt_text(&s.description)),
                    ("fields", Cell::Json(fields)),
                ],
            )
            .await?;
        }
        for e in &v.event_types {
            self.upsert(
                "event_types",
                vec![("key", text(&e.key.value))],
                vec![
                    ("name", text(&e.name)),
                    ("description", opt_text(&e.description)),
                ],
            )
            .await?;
        }
        for s in &v.surface_types {
            self.upsert(
                "surface_types",
                vec![("key", text(&s.key.value))],
                vec![
                    ("name", text(&s.name)),
                    ("is_public", Cell::Bool(s.is_public)),
                ],
            )
            .await?;
        }
        for k in &v.template_kinds {
            self.upsert(
                "template_kinds",
                vec![("key", text(&k.key.value))],
                vec![
                    ("name", text(&k.name)),
                    ("description", opt_text(&k.description)),
                ],
            )
            .await?;
        }
        for a in &v.control_plane_applications {
            self.upsert(
                "control_plane_applications",
                vec![("code", text(&a.code.value))],
                vec![
                    ("name", text(&a.name)),
                    ("description", opt_text(&a.description)),
                    ("icon", opt_text(&a.icon)),
                    ("route_namespace", text(&a.route_namespace.value)),
                    ("nav_order", Cell::Int(a.nav_order.into())),
                ],
            )
            .await?;
        }
        for t in &v.custom_types {
            let fields = serde_json::to_value(&t.fields)?;
            self.upsert(
                "custom_types",
                vec![("key", text(&t.key.value))],
                vec![
                    ("name", text(&t.name)),
                    ("description", opt_text(&t.description)),
                    ("forkable", Cell::Bool(t.forkable)),
                    ("fields", Cell::Json(fields)),
                ],
            )
            .await?;
        }
        Ok(std::mem::take(&mut self.summary))
    }

    /// Writes the application row and its actions of every application sheet (so adapters can
    /// place each other's actions whatever the file order).
    async fn spines(
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

    async fn navigation(
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
    async fn application(&mut self, sheet: &Sheet, code: &str) -> anyhow::Result<()> {
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
    async fn prune_application(&mut self, app: Uuid) -> anyhow::Result<()> {
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

    async fn ids_where(
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

    /// Writes a checked batch; returns a summary per sheet, in file order.
    pub async fn write(&mut self, parsed: &[Parsed]) -> anyhow::Result<Vec<SheetSummary>> {
        let mut summaries: BTreeMap<String, SheetSummary> = BTreeMap::new();
        for p in parsed {
            if let Some(v) = &p.sheet.vocabulary {
                summaries.insert(p.file.clone(), self.vocabulary(&p.file, v).await?);
            }
        }
        let spines = self.spines(parsed).await?;
        for p in parsed {
            let Some(identity) = &p.sheet.identity else {
                continue;
            };
            self.summary = spines.get(&p.file).cloned().unwrap_or_default();
            self.application(&p.sheet, &identity.code.value).await?;
            summaries.insert(p.file.clone(), std::mem::take(&mut self.summary));
        }
        Ok(parsed
            .iter()
            .filter_map(|p| summaries.remove(&p.file))
            .collect())
    }
}
