//! Which sheets `forklift sheets …` reads.

use std::path::PathBuf;

/// The sheets `sheets validate` checks, and the context they are checked against: for a path
/// that is a file, the other sheets of its directory (the vocabulary and the applications its
/// references may name), whose own problems are not reported.
pub(super) fn validation_batch(
    paths: &[PathBuf],
) -> anyhow::Result<(Vec<crate::sheets::SheetFile>, Vec<crate::sheets::SheetFile>)> {
    let files = crate::sheets::read_paths(paths)?;
    let canonical = |p: &std::path::Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.into());
    let named: std::collections::HashSet<PathBuf> = paths
        .iter()
        .filter(|p| p.is_file())
        .map(|p| canonical(p))
        .chain(
            paths
                .iter()
                .filter(|p| p.is_dir())
                .flat_map(|dir| std::fs::read_dir(dir).into_iter().flatten())
                .filter_map(|e| e.ok().map(|e| canonical(&e.path()))),
        )
        .collect();
    let mut dirs: Vec<PathBuf> = paths
        .iter()
        .filter(|p| p.is_file())
        .map(|p| {
            p.parent()
                .filter(|d| !d.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), PathBuf::from)
        })
        .collect();
    dirs.sort();
    dirs.dedup();
    // Context only: a sheet of the directory that cannot be read (too large, not UTF-8) is left
    // out rather than failing the check of the named file.
    let mut context = Vec::new();
    for dir in dirs {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .filter(|p| !named.contains(&canonical(p)))
            .collect();
        entries.sort();
        for entry in entries {
            if let Ok(files) = crate::sheets::read_paths(&[entry]) {
                context.extend(files);
            }
        }
    }
    Ok((files, context))
}

/// The paths given, or `sheets/` when none.
pub(super) fn sheet_paths(paths: Vec<PathBuf>) -> Vec<PathBuf> {
    if paths.is_empty() {
        vec![PathBuf::from("sheets")]
    } else {
        paths
    }
}
