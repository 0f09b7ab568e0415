//! Where the template's sheets come from when bootstrapping: the `sheets/` directory of the
//! working directory when there is one, else the example template compiled into the binary, so
//! `forklift serve` anywhere (an empty directory, a container without the repository) comes up
//! with the demo applications. The log says which source was used.

use std::path::Path;

use crate::{
    error::AppError,
    sheets::{ImportOptions, SheetFile, SheetSummary},
    state::AppState,
};

/// The repository's `sheets/`, compiled in: (file name, content). A test checks that it lists
/// every sheet of the directory.
pub const EMBEDDED: &[(&str, &str)] = &[
    ("vocabulary.yaml", include_str!("../sheets/vocabulary.yaml")),
    (
        "citizen-portal.yaml",
        include_str!("../sheets/citizen-portal.yaml"),
    ),
    (
        "participatory-budget.yaml",
        include_str!("../sheets/participatory-budget.yaml"),
    ),
    ("permits.yaml", include_str!("../sheets/permits.yaml")),
    (
        "service-requests.yaml",
        include_str!("../sheets/service-requests.yaml"),
    ),
];

/// Where a bootstrap's sheets came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A directory of sheet files.
    Directory(std::path::PathBuf),
    /// [`EMBEDDED`]: no directory was found at the given path.
    Embedded { missing: std::path::PathBuf },
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Directory(dir) => write!(f, "the directory {}", dir.display()),
            Source::Embedded { missing } => write!(
                f,
                "the example template built into this binary (no directory at {})",
                missing.display()
            ),
        }
    }
}

/// The sheets to bootstrap from: the files of `dir` when it is a directory, else [`EMBEDDED`].
pub fn sheets(dir: &Path) -> anyhow::Result<(Vec<SheetFile>, Source)> {
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    if dir.is_dir() {
        let files = crate::sheets::read_paths(&[dir.to_path_buf()])?;
        return Ok((files, Source::Directory(absolute)));
    }
    let files = EMBEDDED
        .iter()
        .map(|(name, content)| SheetFile {
            name: format!("(built in) sheets/{name}"),
            content: (*content).to_string(),
        })
        .collect();
    Ok((files, Source::Embedded { missing: absolute }))
}

/// Imports the template's sheets (see [`sheets`]) onto the template, as the operator; logs and
/// returns a one-line summary that names the source.
pub async fn import(state: &AppState, dir: &Path) -> anyhow::Result<String> {
    let (files, source) = sheets(dir)?;
    tracing::info!(template.source = %source, sheets = files.len(), "template sheets from {source}");
    let options = ImportOptions {
        vocabulary_author: true,
        ..ImportOptions::default()
    };
    let report = crate::sheets::import(state, &files, options)
        .await
        .map_err(AppError::into_anyhow)?;
    if !report.ok {
        let lines: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
        anyhow::bail!("the sheets of {source} are invalid:\n{}", lines.join("\n"));
    }
    let total = |f: fn(&SheetSummary) -> u64| report.sheets.iter().map(f).sum::<u64>();
    Ok(format!(
        "{} sheets from {source}: {} created, {} updated, {} unchanged, {} no longer declared",
        report.sheets.len(),
        total(|s| s.created),
        total(|s| s.updated),
        total(|s| s.unchanged),
        total(|s| s.pruned)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sheet_of_the_directory_is_built_in() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sheets");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .expect("sheets/")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml"))
            .collect();
        on_disk.sort();
        let mut built_in: Vec<String> = EMBEDDED.iter().map(|(n, _)| n.to_string()).collect();
        built_in.sort();
        assert_eq!(on_disk, built_in, "add the new sheet to template::EMBEDDED");
        let (files, source) = sheets(&dir.join("absent")).expect("built in");
        assert!(matches!(source, Source::Embedded { .. }));
        assert!(
            crate::sheets::validate(&files).is_empty(),
            "the built-in sheets are valid"
        );
    }
}
