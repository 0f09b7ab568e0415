//! Fleet upgrades: every tenant forked from the template upgraded to the template's latest
//! version, a few at a time (`forklift upgrade --all`, the `upgradeAllTenants` mutation).
//!
//! Each tenant's upgrade is an ordinary run of kind `UPGRADE` ([`crate::fork::upgrade`]): one
//! transaction, serialized with the tenant's other runs, streamed by `forkProgress`. The fleet
//! records every run at once (`PENDING`) and lets [`FleetOptions::concurrency`] of them work
//! at a time ([`ForkPlanInput::turns`]). A tenant whose upgrade cannot start (its preconditions
//! fail) is reported and the others go on; a run that fails rolls back its own tenant only.

use std::sync::Arc;

use entity::tenants::{self, ProvisioningState, TenantKind};
use futures::{StreamExt, stream};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::Serialize;
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::{
    error::{AppError, AppResult},
    fork::{
        engine::ForkOutcome,
        runs::{self, ForkPlanInput, ForkRequest},
        upgrade::UpgradeOptions,
    },
    state::AppState,
};

/// How a fleet upgrade runs.
#[derive(Clone, Debug)]
pub struct FleetOptions {
    /// Plan every tenant's upgrade and write nothing.
    pub dry_run: bool,
    /// How many tenants upgrade at once (at least 1).
    pub concurrency: usize,
    /// Re-create copies the tenants deleted.
    pub restore_deleted: bool,
    /// Remove copies whose source the template removed, where the tenant left them untouched.
    pub remove_deleted: bool,
    /// Who asked (the JWT subject, or `cli`).
    pub actor: String,
    /// Only these tenants (slugs or ids); empty: every tenant of [`tenants`].
    pub only: Vec<String>,
    /// Every run of the fleet waits for this, and for every run to be recorded, before it
    /// starts (see [`ForkPlanInput::start_after`]).
    pub start_after: Option<runs::StartSignal>,
}

/// What became of one tenant of the fleet.
#[derive(Debug)]
pub enum Started {
    /// Its upgrade run, recorded and queued for its turn.
    Run(Box<entity::fork_runs::Model>),
    /// A dry run's plan.
    Planned(Box<ForkPlanInput>, ForkOutcome),
    /// Its upgrade could not start: the error says why (a client-safe message).
    Refused(AppError),
}

/// One tenant of the fleet and what became of it.
#[derive(Debug)]
pub struct FleetEntry {
    pub tenant: tenants::Model,
    pub started: Started,
}

/// The tenants a fleet upgrade covers: tenants (not templates) whose provisioning finished,
/// by slug.
pub async fn tenants(state: &AppState) -> AppResult<Vec<tenants::Model>> {
    Ok(tenants::Entity::find()
        .filter(tenants::Column::Kind.eq(TenantKind::Tenant))
        .filter(tenants::Column::ProvisioningState.eq(ProvisioningState::Ready))
        .order_by_asc(tenants::Column::Slug)
        .all(&state.db)
        .await?)
}

/// Starts (or, dry, plans) the upgrade of every tenant of [`tenants`]; returns one entry per
/// tenant, in slug order. Runs go on in the background; follow them by their ids.
pub async fn upgrade_all(
    state: Arc<AppState>,
    options: &FleetOptions,
) -> AppResult<Vec<FleetEntry>> {
    let turns = Arc::new(Semaphore::new(options.concurrency.max(1)));
    let mut fleet = tenants(&state).await?;
    if !options.only.is_empty() {
        let named = |t: &tenants::Model, key: &str| {
            t.slug == key.to_lowercase() || Uuid::parse_str(key).is_ok_and(|id| id == t.id)
        };
        if let Some(missing) = options
            .only
            .iter()
            .find(|key| !fleet.iter().any(|t| named(t, key)))
        {
            return Err(AppError::input(
                "tenant",
                format!("`{missing}` is not a tenant forked from the template"),
            ));
        }
        fleet.retain(|t| options.only.iter().any(|key| named(t, key)));
    }
    // No run starts before every run is recorded (and the caller's own signal fired): on
    // SQLite a started run is the only writer until it ends, and the next record would wait.
    let (all_recorded, recorded) = tokio::sync::oneshot::channel::<()>();
    let caller = options.start_after.clone();
    let start = runs::StartSignal::new(async move {
        let _ = recorded.await;
        if let Some(caller) = caller {
            caller.wait().await;
        }
    });
    let entries = stream::iter(fleet)
        .map(|tenant| {
            let state = state.clone();
            let turns = turns.clone();
            let start = start.clone();
            async move {
                let started = match prepare(&state, &tenant, options, turns, start).await {
                    Err(err) => refused(&tenant, err),
                    Ok(input) if options.dry_run => match runs::plan(&state, &input).await {
                        Ok(outcome) => Started::Planned(Box::new(input), outcome),
                        Err(err) => refused(&tenant, err),
                    },
                    Ok(input) => match runs::start(state.clone(), input).await {
                        Ok(run) => Started::Run(Box::new(run)),
                        Err(err) => refused(&tenant, err),
                    },
                };
                FleetEntry { tenant, started }
            }
        })
        // Plans run a few at a time too; starting a run only records it.
        .buffered(options.concurrency.max(1))
        .collect()
        .await;
    drop(all_recorded);
    Ok(entries)
}

/// `tenant`'s upgrade could not start; an internal cause is logged here (the report carries
/// only the client-safe message).
fn refused(tenant: &tenants::Model, err: AppError) -> Started {
    if let AppError::Internal(cause) = &err {
        tracing::error!(tenant = %tenant.slug, error = %cause, "fleet upgrade: a tenant failed");
    }
    Started::Refused(err)
}

/// The checked upgrade of `tenant`.
async fn prepare(
    state: &AppState,
    tenant: &tenants::Model,
    options: &FleetOptions,
    turns: Arc<Semaphore>,
    start: runs::StartSignal,
) -> AppResult<ForkPlanInput> {
    let mut input = runs::check(
        &state.db,
        ForkRequest {
            target: tenant.id.to_string(),
            source: None,
            dry_run: options.dry_run,
            actor: options.actor.clone(),
        },
    )
    .await?;
    input.restore_deleted = options.restore_deleted;
    input.upgrade = Some(UpgradeOptions {
        remove_deleted: options.remove_deleted,
    });
    input.turns = Some(turns);
    input.start_after = Some(start);
    Ok(input)
}

/// A run's totals over its classes, for a report.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Totals {
    pub updated: u64,
    pub created: u64,
    pub removed: u64,
    pub conflicts: u64,
}

impl Totals {
    /// The totals of a run's stored `counts` (a list of per-class counts).
    pub fn of_counts(counts: &serde_json::Value) -> Totals {
        let sum = |key: &str| {
            counts
                .as_array()
                .map(|classes| {
                    classes
                        .iter()
                        .filter_map(|c| c.get(key).and_then(serde_json::Value::as_u64))
                        .sum()
                })
                .unwrap_or(0)
        };
        Totals {
            updated: sum("updated"),
            created: sum("created"),
            removed: sum("removed"),
            conflicts: sum("conflicts"),
        }
    }

    /// The totals of a plan.
    pub fn of_outcome(outcome: &ForkOutcome) -> Totals {
        outcome
            .counts
            .iter()
            .fold(Totals::default(), |t, c| Totals {
                updated: t.updated + c.updated,
                created: t.created + c.created,
                removed: t.removed + c.removed,
                conflicts: t.conflicts + c.conflicts,
            })
    }
}

/// Waits until none of `runs` is live; returns their records as they ended.
pub async fn wait(state: &AppState, runs: &[Uuid]) -> AppResult<Vec<entity::fork_runs::Model>> {
    use entity::fork_runs;
    loop {
        let records = fork_runs::Entity::find()
            .filter(fork_runs::Column::Id.is_in(runs.iter().copied()))
            .all(&state.db)
            .await?;
        if records.iter().all(|r| !r.status.is_live()) {
            return Ok(records);
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
