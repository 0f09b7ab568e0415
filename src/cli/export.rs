//! `forklift export --tenant SLUG --out FILE`: the archive `GET /tenants/{id}/export` streams,
//! written to a file, with progress on standard error.

use std::path::Path;

use crate::{
    offboarding::export::{self, Step},
    state::AppState,
};

/// Exports the tenant `key` (slug or id) to `out`.
pub(super) async fn run(state: &AppState, key: &str, out: &Path) -> anyhow::Result<()> {
    let tenant = match uuid::Uuid::parse_str(key) {
        Ok(id) => crate::tenants::catalog::tenant(&state.db, id).await,
        Err(_) => crate::tenants::catalog::tenant_by_slug(&state.db, key)
            .await
            .map(Some),
    }
    .map_err(|e| anyhow::anyhow!("no tenant `{key}`: {}", e.message()))?
    .ok_or_else(|| anyhow::anyhow!("no tenant `{key}`"))?;
    let mut total = 0u64;
    let mut done = 0u64;
    let progress = move |step: &Step| match step {
        Step::Planned { sheets, rows } => {
            total = rows.values().sum();
            eprintln!("exporting: {sheets} sheet files, {total} runtime rows");
        }
        Step::Wrote { file, rows } => {
            done += rows;
            eprintln!("  {file} ({done}/{total} runtime rows)");
        }
    };
    // Written beside the target and renamed when complete: a cut export leaves no archive
    // that looks whole.
    let partial = out.with_extension("tar.partial");
    let mut file = tokio::fs::File::create(&partial).await?;
    let summary = export::export(state, &tenant, &mut file, progress).await?;
    file.sync_all().await?;
    tokio::fs::rename(&partial, out).await?;
    eprintln!(
        "exported {} to {}: {} sheets, {} runtime rows in {} files, {} bytes",
        tenant.slug,
        out.display(),
        summary.sheets.len(),
        summary.rows.values().sum::<u64>(),
        summary.files,
        summary.bytes
    );
    Ok(())
}
