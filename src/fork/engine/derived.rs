//! The domain's derived phases (3–5): rows the engine owns and recomputes from the target's
//! own configuration after the copy, never copied from the source.
//!
//! Each phase is a [`DerivedPhase`] value that knows its name, the table and kinds of row it
//! owns, and how to compute the rows that should exist. [`Engine::derive`] adds the missing
//! ones and removes the stale ones (see `docs/fork.md`, "Derived rows").

use std::collections::{HashMap, HashSet};

use sea_orm::{
    ConnectionTrait,
    sea_query::{Alias, ExprTrait, Query},
};
use uuid::Uuid;

use super::{ClassCount, Engine, MAX_BATCH_ROWS, Progress, col};
use crate::rows::{Cell, Row};

/// One derived phase, in run order ([`DerivedPhase::ALL`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DerivedPhase {
    /// Phase 3: a geo layer per geometry field of each entity of a `map` application.
    GeospatialLayers,
    /// Phase 4: `CITIZEN_READ` grants for public portal pages and actions on public surfaces.
    CitizenReadAccess,
    /// Phase 5: `CITIZEN_SUBMIT` and `CITIZEN_VOTE` grants for actions marked so.
    CitizenSubmitVoteAccess,
}

impl DerivedPhase {
    /// The derived phases in the order a run takes them.
    pub const ALL: [DerivedPhase; 3] = [
        DerivedPhase::GeospatialLayers,
        DerivedPhase::CitizenReadAccess,
        DerivedPhase::CitizenSubmitVoteAccess,
    ];

    /// The phase's name, as events, run records and the `ForkPhase` enum show it.
    pub const fn name(self) -> &'static str {
        match self {
            DerivedPhase::GeospatialLayers => "GEOSPATIAL_LAYERS",
            DerivedPhase::CitizenReadAccess => "CITIZEN_READ_ACCESS",
            DerivedPhase::CitizenSubmitVoteAccess => "CITIZEN_SUBMIT_VOTE_ACCESS",
        }
    }

    /// The table whose rows the phase owns.
    const fn table(self) -> &'static str {
        match self {
            DerivedPhase::GeospatialLayers => "geo_layers",
            _ => "access_grants",
        }
    }

    /// The target's copied tables the phase computes from (`Engine::target_rows` reads
    /// only these).
    const fn inputs(self) -> &'static [&'static str] {
        match self {
            DerivedPhase::GeospatialLayers => &["applications", "application_entities"],
            DerivedPhase::CitizenReadAccess => &["portal_pages", "action_placements"],
            DerivedPhase::CitizenSubmitVoteAccess => &["actions"],
        }
    }

    /// True when some derived phase computes from the copied `table`: a dry run keeps the rows
    /// it would create there, so the derived phases plan from the target as it would be.
    pub(super) fn reads(table: &str) -> bool {
        DerivedPhase::ALL
            .iter()
            .any(|phase| phase.inputs().contains(&table))
    }

    /// The `kind`s of row the phase owns in its table (empty: every row of the tenant).
    const fn kinds(self) -> &'static [&'static str] {
        match self {
            DerivedPhase::GeospatialLayers => &[],
            DerivedPhase::CitizenReadAccess => &["CITIZEN_READ"],
            DerivedPhase::CitizenSubmitVoteAccess => &["CITIZEN_SUBMIT", "CITIZEN_VOTE"],
        }
    }
}

impl<C: ConnectionTrait> Engine<'_, C> {
    /// Runs one derived phase: computes the rows that should exist, then reconciles the
    /// target's rows of the phase with them.
    pub(super) async fn derive(
        &mut self,
        phase: DerivedPhase,
        progress: &mut dyn Progress,
    ) -> anyhow::Result<()> {
        // A dry run plans these from the target plus the rows it would have created.
        let desired = match phase {
            DerivedPhase::GeospatialLayers => self.geo_layers().await?,
            DerivedPhase::CitizenReadAccess => self.citizen_read().await?,
            DerivedPhase::CitizenSubmitVoteAccess => self.citizen_submit_vote().await?,
        };
        self.reconcile_derived(phase, desired, progress).await
    }

    /// The target's rows of `table`, one of `phase`'s inputs, with a dry run's planned rows.
    async fn target_rows(&self, phase: DerivedPhase, table: &str) -> anyhow::Result<Vec<Row>> {
        debug_assert!(
            phase.inputs().contains(&table),
            "{} reads {table} without declaring it",
            phase.name()
        );
        let class = self
            .registry
            .by_table(table)
            .ok_or_else(|| anyhow::anyhow!("registry has no {table}"))?;
        let mut select = Query::select();
        select
            .columns(class.columns.iter().map(|c| Alias::new(&c.name)))
            .from(Alias::new(table))
            .and_where(col("tenant_id").eq(self.target));
        let mut rows = Row::query_all(self.db, &select, class).await?;
        if let Some(planned) = self.planned.get(table) {
            rows.extend(planned.iter().cloned());
        }
        Ok(rows)
    }

    async fn vocabulary(&self, table: &str) -> anyhow::Result<HashMap<Uuid, Row>> {
        let class = self
            .registry
            .by_table(table)
            .ok_or_else(|| anyhow::anyhow!("registry has no {table}"))?;
        let mut select = Query::select();
        select
            .columns(class.columns.iter().map(|c| Alias::new(&c.name)))
            .from(Alias::new(table));
        Ok(self
            .db
            .query_all(&select)
            .await?
            .iter()
            .map(|r| Row::read(r, class).map(|row| (row.id(), row)))
            .collect::<Result<HashMap<_, _>, _>>()?)
    }

    fn derived_row(&self, table: &str, key: &str, values: Vec<(&str, Cell)>) -> (String, Row) {
        let mut row = Row::default();
        row.set(
            "id",
            Cell::Uuid(Uuid::new_v5(
                &self.target,
                format!("{table}:{key}").as_bytes(),
            )),
        );
        row.set("tenant_id", Cell::Uuid(self.target));
        let now = chrono::Utc::now();
        row.set("created_at", Cell::Timestamp(now));
        row.set("updated_at", Cell::Timestamp(now));
        for (k, v) in values {
            row.set(k, v);
        }
        (table.to_string(), row)
    }

    /// Phase 3: a layer per geometry field of each entity of a `map` application.
    async fn geo_layers(&self) -> anyhow::Result<Vec<(String, Row)>> {
        let schemas = self.vocabulary("entity_schemas").await?;
        let apps: HashMap<Uuid, Row> = self
            .target_rows(DerivedPhase::GeospatialLayers, "applications")
            .await?
            .into_iter()
            .map(|r| (r.id(), r))
            .collect();
        let mut out = Vec::new();
        for membership in self
            .target_rows(DerivedPhase::GeospatialLayers, "application_entities")
            .await?
        {
            let (Some(app_id), Some(schema_id)) = (
                membership.get("application_id").as_uuid(),
                membership.get("entity_schema_id").as_uuid(),
            ) else {
                continue;
            };
            let Some(app) = apps.get(&app_id) else {
                continue;
            };
            let has_map = matches!(app.get("features"), Cell::Json(f) if f.get("map") == Some(&serde_json::Value::Bool(true)));
            if !has_map {
                continue;
            }
            let Some(schema) = schemas.get(&schema_id) else {
                continue;
            };
            let Cell::Json(serde_json::Value::Array(fields)) = schema.get("fields") else {
                continue;
            };
            for field in fields {
                let geometry = field.get("geometry").and_then(|g| g.as_bool()) == Some(true)
                    || field.get("type").and_then(|t| t.as_str()).is_some_and(|t| {
                        matches!(t, "geometry" | "point" | "polygon" | "line" | "geojson")
                    });
                let Some(name) = field.get("name").and_then(|n| n.as_str()) else {
                    continue;
                };
                if !geometry {
                    continue;
                }
                let schema_key = schema.get("key").as_text().unwrap_or_default();
                let key = format!(
                    "{}.{}.{}",
                    app.get("code").as_text().unwrap_or_default(),
                    schema_key,
                    name
                );
                out.push(self.derived_row(
                    "geo_layers",
                    &format!("{app_id}:{schema_id}:{name}"),
                    vec![
                        ("application_id", Cell::Uuid(app_id)),
                        ("entity_schema_id", Cell::Uuid(schema_id)),
                        ("field", Cell::Text(name.to_string())),
                        ("key", Cell::Text(key)),
                    ],
                ));
            }
        }
        Ok(out)
    }

    fn grant(
        &self,
        kind: &str,
        app: Uuid,
        page: Option<Uuid>,
        action: Option<Uuid>,
        resource: String,
    ) -> (String, Row) {
        self.derived_row(
            "access_grants",
            &format!("{kind}:{resource}"),
            vec![
                ("kind", Cell::Text(kind.into())),
                ("application_id", Cell::Uuid(app)),
                ("portal_page_id", page.map_or(Cell::Null, Cell::Uuid)),
                ("action_id", action.map_or(Cell::Null, Cell::Uuid)),
                ("resource", Cell::Text(resource)),
                ("audience", Cell::Text("CITIZEN".into())),
            ],
        )
    }

    /// Phase 4: citizens read public portal pages and actions placed on public surfaces.
    async fn citizen_read(&self) -> anyhow::Result<Vec<(String, Row)>> {
        let surfaces = self.vocabulary("surface_types").await?;
        let mut out = Vec::new();
        for page in self
            .target_rows(DerivedPhase::CitizenReadAccess, "portal_pages")
            .await?
        {
            let public_surface = page
                .get("surface_type_id")
                .as_uuid()
                .and_then(|s| surfaces.get(&s))
                .is_some_and(|s| s.get("is_public").as_bool());
            if !(page.get("is_public").as_bool() || public_surface) {
                continue;
            }
            let Some(app) = page.get("application_id").as_uuid() else {
                continue;
            };
            out.push(self.grant(
                "CITIZEN_READ",
                app,
                Some(page.id()),
                None,
                format!("portal_page:{}", page.id()),
            ));
        }
        for placement in self
            .target_rows(DerivedPhase::CitizenReadAccess, "action_placements")
            .await?
        {
            let public = placement
                .get("surface_type_id")
                .as_uuid()
                .and_then(|s| surfaces.get(&s))
                .is_some_and(|s| s.get("is_public").as_bool());
            let (Some(app), Some(action)) = (
                placement.get("application_id").as_uuid(),
                placement.get("action_id").as_uuid(),
            ) else {
                continue;
            };
            if public {
                out.push(self.grant(
                    "CITIZEN_READ",
                    app,
                    None,
                    Some(action),
                    format!("action:{action}"),
                ));
            }
        }
        dedup(&mut out);
        Ok(out)
    }

    /// Phase 5: citizens submit to and vote on actions marked public submit / public vote.
    async fn citizen_submit_vote(&self) -> anyhow::Result<Vec<(String, Row)>> {
        let mut out = Vec::new();
        for action in self
            .target_rows(DerivedPhase::CitizenSubmitVoteAccess, "actions")
            .await?
        {
            let Some(app) = action.get("application_id").as_uuid() else {
                continue;
            };
            for (flag, kind) in [
                ("public_submit", "CITIZEN_SUBMIT"),
                ("public_vote", "CITIZEN_VOTE"),
            ] {
                if action.get(flag).as_bool() {
                    let resource = format!("action:{}", action.id());
                    out.push(self.grant(kind, app, None, Some(action.id()), resource));
                }
            }
        }
        Ok(out)
    }

    /// Adds missing derived rows and removes stale ones of the kinds this phase owns.
    async fn reconcile_derived(
        &mut self,
        phase: DerivedPhase,
        desired: Vec<(String, Row)>,
        progress: &mut dyn Progress,
    ) -> anyhow::Result<()> {
        let (table, kinds) = (phase.table(), phase.kinds());
        let phase = phase.name();
        let class = self
            .registry
            .by_table(table)
            .ok_or_else(|| anyhow::anyhow!("registry has no {table}"))?
            .clone();
        let mut count = ClassCount {
            class_name: class.name.to_string(),
            phase: phase.to_string(),
            rows: desired.len() as u64,
            ..ClassCount::default()
        };
        let mut select = Query::select();
        select
            .column(Alias::new("id"))
            .from(Alias::new(table))
            .and_where(col("tenant_id").eq(self.target));
        if !kinds.is_empty() {
            select.and_where(col("kind").is_in(kinds.iter().copied()));
        }
        let existing: HashSet<Uuid> = self
            .db
            .query_all(&select)
            .await?
            .iter()
            .map(|r| r.try_get::<Uuid>("", "id"))
            .collect::<Result<_, _>>()?;
        let wanted: HashSet<Uuid> = desired.iter().map(|(_, r)| r.id()).collect();
        let missing: Vec<Row> = desired
            .into_iter()
            .map(|(_, r)| r)
            .filter(|r| !existing.contains(&r.id()))
            .collect();
        let stale: Vec<Uuid> = existing.difference(&wanted).copied().collect();
        count.matched = (wanted.len() - missing.len()) as u64;
        count.created = missing.len() as u64;
        count.removed = stale.len() as u64;
        if !self.dry_run {
            for chunk in missing.chunks(Self::batch_rows(&class)) {
                self.insert_rows(&class, chunk).await?;
            }
            for chunk in stale.chunks(MAX_BATCH_ROWS) {
                let mut delete = Query::delete();
                delete
                    .from_table(Alias::new(table))
                    .and_where(col("tenant_id").eq(self.target))
                    .and_where(col("id").is_in(chunk.iter().copied()));
                self.db.execute(&delete).await?;
            }
        }
        progress.rows_copied(phase, &count);
        self.outcome.counts.push(count);
        Ok(())
    }
}

fn dedup(rows: &mut Vec<(String, Row)>) {
    let mut seen = HashSet::new();
    rows.retain(|(_, r)| seen.insert(r.id()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fork::engine::{CopyPhase, PHASES};

    #[test]
    fn derived_phases_follow_the_copy_in_order() {
        assert_eq!(PHASES[..2], CopyPhase::ALL.map(CopyPhase::name));
        assert_eq!(PHASES[2..], DerivedPhase::ALL.map(DerivedPhase::name));
    }

    #[test]
    fn each_derived_phase_owns_its_own_rows() {
        let grants: Vec<&str> = DerivedPhase::ALL
            .into_iter()
            .filter(|p| p.table() == "access_grants")
            .flat_map(|p| p.kinds().iter().copied())
            .collect();
        let mut distinct = grants.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(
            grants.len(),
            distinct.len(),
            "two phases own one kind: {grants:?}"
        );
        assert!(DerivedPhase::GeospatialLayers.kinds().is_empty());
    }
}
