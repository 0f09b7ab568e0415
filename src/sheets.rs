//! Provisioning sheets (SPEC §5): YAML files imported onto the template.

use std::path::Path;

use crate::state::AppState;

/// Imports every sheet of `dir` onto the template; returns a one-line summary.
pub async fn import_directory(
    _state: &AppState,
    dir: &Path,
    _dry_run: bool,
    _prune: bool,
) -> anyhow::Result<String> {
    Ok(format!("no sheet importer yet ({})", dir.display()))
}
