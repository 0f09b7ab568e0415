//! Provisioning sheets (`docs/sheets.md`): YAML files that declare the vocabulary and each application of
//! the template, checked with locations, and imported onto the template idempotently.
//!
//! - [`format`]: the types, and the JSON Schema generated from them;
//! - [`check`]: parsing with limits and every semantic rule, as `file:line:column: message`;
//! - [`import`]: writing a checked batch in one transaction, by natural key.

pub mod check;
pub mod format;
pub mod import;

use std::path::{Path, PathBuf};

pub use check::{SheetError, SheetFile};
pub use import::SheetSummary;

use crate::{error::AppError, state::AppState, tenants};

/// How to import.
#[derive(Copy, Clone, Debug, Default)]
pub struct ImportOptions {
    /// Check and compute the summary, write nothing.
    pub dry_run: bool,
    /// Delete rows the sheets no longer declare (otherwise they are only reported).
    pub prune: bool,
    /// Whether the importer may write the shared vocabulary (the `vocabulary:author` grant, or
    /// the operator at the command line). A batch with a vocabulary section is refused with
    /// `FORBIDDEN` without it, as `updateSurfaceType` would be.
    pub vocabulary_author: bool,
}

/// The outcome of an import: summaries when it went through, errors when it did not.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ImportReport {
    pub ok: bool,
    pub dry_run: bool,
    pub sheets: Vec<SheetSummary>,
    pub errors: Vec<SheetError>,
}

/// The sheet files under `paths` (files as given; directories: their `*.yaml`/`*.yml`, sorted).
pub fn read_paths(paths: &[PathBuf]) -> anyhow::Result<Vec<SheetFile>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect();
            entries.sort();
            for entry in entries {
                files.push(read_file(&entry)?);
            }
        } else {
            files.push(read_file(path)?);
        }
    }
    Ok(files)
}

/// Reads one sheet: only a regular file (not a device such as `/dev/zero`, a FIFO or a socket,
/// which could be read without end), of at most `check::MAX_SHEET_BYTES`, read through a
/// bounded reader so a file that grows while it is read is refused too.
fn read_file(path: &Path) -> anyhow::Result<SheetFile> {
    use std::io::Read;
    let too_large = || {
        anyhow::anyhow!(
            "{}: larger than {} KiB",
            path.display(),
            check::MAX_SHEET_BYTES / 1024
        )
    };
    let not_regular = || anyhow::anyhow!("{}: not a regular file", path.display());
    // Checked before opening: opening a FIFO would wait for a writer.
    let meta = std::fs::metadata(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(not_regular());
    }
    let file = std::fs::File::open(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let meta = file
        .metadata()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(not_regular());
    }
    if meta.len() > check::MAX_SHEET_BYTES as u64 {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    file.take(check::MAX_SHEET_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if bytes.len() > check::MAX_SHEET_BYTES {
        return Err(too_large());
    }
    let content = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("{}: not UTF-8 text", path.display()))?;
    Ok(SheetFile {
        name: path.display().to_string(),
        content,
    })
}

/// Parses and checks a batch against `known`; returns the parsed sheets or every problem.
pub fn parse_and_check(
    files: &[SheetFile],
    known: &check::Known,
) -> Result<Vec<check::Parsed>, Vec<SheetError>> {
    let mut parsed = Vec::new();
    let mut errors = Vec::new();
    for file in files {
        match check::parse(file) {
            Ok(p) => parsed.push(p),
            Err(e) => errors.push(e),
        }
    }
    errors.extend(check::check(&parsed, known));
    errors.sort();
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(errors)
    }
}

/// Checks sheets without a database: references must resolve within the batch itself.
pub fn validate(files: &[SheetFile]) -> Vec<SheetError> {
    parse_and_check(files, &check::Known::default())
        .err()
        .unwrap_or_default()
}

/// Imports a batch onto the template: all of it or, when any sheet is invalid, nothing.
pub async fn import(
    state: &AppState,
    files: &[SheetFile],
    options: ImportOptions,
) -> Result<ImportReport, AppError> {
    let template = tenants::ensure::ensure_template(state).await?;
    let known = import::known(&state.db, template.id).await?;
    let parsed = match parse_and_check(files, &known) {
        Ok(parsed) => parsed,
        Err(errors) => {
            return Ok(ImportReport {
                ok: false,
                dry_run: options.dry_run,
                sheets: Vec::new(),
                errors,
            });
        }
    };
    let tx = crate::db::begin_write(&state.db).await?;
    let sheets = import::Writer::new(&tx, &state.registry, template.id, options.prune)
        .write(&parsed)
        .await?;
    // The vocabulary is shared by every tenant: changing it needs its own grant, whatever the
    // entry point. A vocabulary sheet that changes nothing is fine for any template author.
    if !options.vocabulary_author
        && let Some(changed) = sheets
            .iter()
            .find(|s| s.application == "vocabulary" && s.created + s.updated + s.pruned > 0)
    {
        tx.rollback().await?;
        return Err(AppError::forbidden(format!(
            "{}: changing the vocabulary needs the vocabulary:author grant",
            changed.file
        )));
    }
    if options.dry_run {
        tx.rollback().await?;
    } else {
        // A batch that changed the template is its next version.
        crate::fork::versions::record(
            &tx,
            &state.registry,
            template.id,
            crate::fork::versions::origin::SHEETS,
            "sheets import",
        )
        .await?;
        tx.commit().await?;
    }
    Ok(ImportReport {
        ok: true,
        dry_run: options.dry_run,
        sheets,
        errors: Vec::new(),
    })
}

/// Imports every sheet of `dir` (the bootstrap's step); a one-line summary.
pub async fn import_directory(
    state: &AppState,
    dir: &Path,
    dry_run: bool,
    prune: bool,
) -> anyhow::Result<String> {
    if !dir.is_dir() {
        return Ok(format!("no sheets directory at {}", dir.display()));
    }
    let files = read_paths(&[dir.to_path_buf()])?;
    let report = import(
        state,
        &files,
        ImportOptions {
            dry_run,
            prune,
            vocabulary_author: true,
        },
    )
    .await
    .map_err(AppError::into_anyhow)?;
    if !report.ok {
        let lines: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
        anyhow::bail!(
            "the sheets in {} are invalid:\n{}",
            dir.display(),
            lines.join("\n")
        );
    }
    let total = |f: fn(&SheetSummary) -> u64| report.sheets.iter().map(f).sum::<u64>();
    Ok(format!(
        "{} sheets: {} created, {} updated, {} unchanged, {} no longer declared",
        report.sheets.len(),
        total(|s| s.created),
        total(|s| s.updated),
        total(|s| s.unchanged),
        total(|s| s.pruned)
    ))
}

/// Prints a report as a table (the CLI's output).
pub fn print_report(report: &ImportReport) {
    if !report.ok {
        for error in &report.errors {
            eprintln!("{error}");
        }
        eprintln!("{} problem(s); nothing was written", report.errors.len());
        return;
    }
    println!(
        "{:<40} {:<22} {:>8} {:>8} {:>10} {:>8}",
        "sheet", "application", "created", "updated", "unchanged", "pruned"
    );
    for s in &report.sheets {
        println!(
            "{:<40} {:<22} {:>8} {:>8} {:>10} {:>8}",
            s.file, s.application, s.created, s.updated, s.unchanged, s.pruned
        );
    }
    let changed: u64 = report.sheets.iter().map(|s| s.created + s.updated).sum();
    if report.dry_run {
        println!("dry run: nothing was written");
    } else if changed == 0 {
        println!("nothing changed");
    }
}
