//! `forklift upgrade`: runs a fleet upgrade ([`crate::fork::fleet`]) and prints its report;
//! `forklift diff`: prints a tenant's three-way diff against the template, per class.

use std::sync::Arc;

use crate::{
    error::AppError,
    fork::fleet::{self, FleetOptions, Started, Totals},
    state::AppState,
};

/// Upgrades (or plans) the fleet, waits for every run and prints one line per tenant; true
/// when every tenant's upgrade finished (or was planned).
pub(super) async fn run(state: Arc<AppState>, options: &FleetOptions) -> anyhow::Result<bool> {
    let entries = fleet::upgrade_all(state.clone(), options)
        .await
        .map_err(AppError::into_anyhow)?;
    let runs: Vec<uuid::Uuid> = entries
        .iter()
        .filter_map(|e| match &e.started {
            Started::Run(run) => Some(run.id),
            _ => None,
        })
        .collect();
    let ended = fleet::wait(&state, &runs)
        .await
        .map_err(AppError::into_anyhow)?;
    println!(
        "{:<24} {:<12} {:>8} {:>8} {:>8} {:>9}  detail",
        "tenant", "status", "updated", "created", "removed", "conflicts"
    );
    let mut ok = true;
    for entry in &entries {
        let (status, totals, detail) = match &entry.started {
            Started::Planned(_, outcome) => (
                "PLANNED".to_string(),
                Totals::of_outcome(outcome),
                String::new(),
            ),
            Started::Refused(err) => {
                ok = false;
                (err.code().to_string(), Totals::default(), err.message())
            }
            Started::Run(run) => match ended.iter().find(|r| r.id == run.id) {
                Some(end) => {
                    let finished = end.status == entity::fork_runs::RunStatus::Finished;
                    ok &= finished;
                    let detail = end
                        .error
                        .clone()
                        .unwrap_or_else(|| format!("run {}", end.id));
                    (
                        end.status.to_string(),
                        Totals::of_counts(&end.counts),
                        detail,
                    )
                }
                None => {
                    ok = false;
                    (
                        "UNKNOWN".into(),
                        Totals::default(),
                        format!("run {} has no record", run.id),
                    )
                }
            },
        };
        println!(
            "{:<24} {:<12} {:>8} {:>8} {:>8} {:>9}  {}",
            entry.tenant.slug,
            status,
            totals.updated,
            totals.created,
            totals.removed,
            totals.conflicts,
            detail
        );
    }
    println!("{} tenant(s)", entries.len());
    Ok(ok)
}

/// Prints the diff of tenant `key` (slug or id) against the template: one line per class with
/// any difference.
pub(super) async fn print_diff(state: &AppState, key: &str) -> anyhow::Result<()> {
    use entity::tenants::{self, TenantKind};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let template = tenants::Entity::find()
        .filter(tenants::Column::Kind.eq(TenantKind::Template))
        .one(&state.db)
        .await?
        .ok_or_else(|| anyhow::anyhow!("there is no template tenant (run `forklift bootstrap`)"))?;
    let tenant = crate::fork::runs::tenant_by_key(&state.db, key)
        .await
        .map_err(AppError::into_anyhow)?
        .ok_or_else(|| anyhow::anyhow!("no tenant `{key}`"))?;
    let placed = crate::placement::pool_of_tenant(state, tenant.id)
        .await
        .map_err(AppError::into_anyhow)?;
    let diff = crate::fork::diff::diff(
        &state.db,
        placed.as_ref(),
        &state.registry,
        template.id,
        tenant.id,
    )
    .await?;
    println!(
        "{} against the template: template version {}, the tenant's {}",
        tenant.slug,
        diff.template_version,
        diff.tenant_version
            .map_or_else(|| "none (never forked)".to_string(), |v| v.to_string())
    );
    println!(
        "{:<26} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "class", "added", "changed", "removed", "tenant", "deleted", "conflicts"
    );
    for class in &diff.classes {
        println!(
            "{:<26} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9}",
            class.class_name,
            class.added_in_template.len(),
            class.changed_in_template.len(),
            class.removed_from_template.len(),
            class.changed_by_tenant.len(),
            class.deleted_by_tenant.len(),
            class.conflicts.len()
        );
    }
    if diff.classes.is_empty() {
        println!("(no differences)");
    }
    Ok(())
}
