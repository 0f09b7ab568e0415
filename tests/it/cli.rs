//! The command line explains itself: every command's `--help` lists the environment variables it
//! reads and says what every flag does; logs carry no colour codes unless written to a terminal;
//! `sheets validate FILE` checks one sheet against the vocabulary of its directory.

use std::process::Command;

fn forklift(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_forklift"))
        .args(args)
        .env_remove("NO_COLOR")
        .output()
        .expect("run forklift")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

#[test]
fn every_help_lists_its_variables_and_explains_every_flag() {
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["serve"],
            &[
                "DATABASE_URL",
                "FORKLIFT_ADDR",
                "FORKLIFT_JWT_SECRET",
                "FORKLIFT_CORS_ORIGINS",
                "FORKLIFT_INTROSPECTION",
                "FORKLIFT_ENV",
                "FORKLIFT_LOG_FORMAT",
                "RUST_LOG",
                "FORKLIFT_SYSTEM_DATABASE_URL",
                "FORKLIFT_JWT_EMAIL_CLAIM",
                "FORKLIFT_TENANT_DATABASES",
                "FORKLIFT_TENANT_DATABASES_FILE",
            ],
        ),
        (
            &["migrate"],
            &[
                "DATABASE_URL",
                "FORKLIFT_MIGRATION_DATABASE_URL",
                "FORKLIFT_TENANT_DATABASES",
                "FORKLIFT_TENANT_DATABASES_FILE",
                "RUST_LOG",
            ],
        ),
        (&["token"], &["FORKLIFT_JWT_SECRET", "FORKLIFT_ENV"]),
        (&["fork"], &["DATABASE_URL", "FORKLIFT_FORK_LEASE_SECS"]),
        (&["upgrade"], &["DATABASE_URL", "FORKLIFT_FORK_LEASE_SECS"]),
        (&["diff"], &["DATABASE_URL"]),
        (&["bootstrap"], &["DATABASE_URL", "FORKLIFT_TRIAL_DAYS"]),
        (&["sheets", "import"], &["DATABASE_URL"]),
        (&["sheets", "validate"], &["RUST_LOG"]),
        (&["schema"], &["FORKLIFT_LOG_FORMAT"]),
    ];
    for (command, variables) in cases {
        let mut args = command.to_vec();
        args.push("--help");
        let output = forklift(&args);
        assert!(output.status.success(), "{command:?}");
        let help = text(&output.stdout);
        for variable in *variables {
            assert!(
                help.contains(&format!("[env: {variable}")),
                "{command:?} lists {variable}:\n{help}"
            );
        }
        // Every option says what it is for: on its line, or (long help) on the next.
        let options: Vec<&str> = help
            .split("Options:")
            .nth(1)
            .unwrap_or_default()
            .lines()
            .collect();
        for (i, line) in options
            .iter()
            .enumerate()
            .filter(|(_, l)| l.trim_start().starts_with('-'))
        {
            let same_line = line
                .trim_start()
                .split_once("  ")
                .map(|(_, rest)| rest.trim())
                .filter(|t| !t.is_empty());
            let next_line = options
                .get(i + 1)
                .map(|l| l.trim())
                .filter(|t| !t.is_empty() && !t.starts_with('-'));
            assert!(
                same_line.or(next_line).is_some(),
                "{command:?}: `{line}` has no help"
            );
        }
        assert!(
            !help.contains("[env: FORKLIFT_JWT_SECRET="),
            "the secret's value is never shown"
        );
    }
}

#[test]
fn one_sheet_is_checked_against_its_directory() {
    let sheets = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sheets");
    let output = forklift(&[
        "sheets",
        "validate",
        sheets.join("permits.yaml").to_str().expect("path"),
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("1 sheet(s) valid"));
    // Alone in a directory, its references to the vocabulary cannot resolve: the check is real.
    let dir =
        std::env::temp_dir().join(format!("forklift-sheet-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::copy(sheets.join("permits.yaml"), dir.join("permits.yaml")).expect("copy");
    let output = forklift(&[
        "sheets",
        "validate",
        dir.join("permits.yaml").to_str().expect("path"),
    ]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("unknown"),
        "{}",
        text(&output.stderr)
    );
    // With the vocabulary beside it, it is valid, and a problem of another sheet there is not its own.
    std::fs::copy(sheets.join("vocabulary.yaml"), dir.join("vocabulary.yaml")).expect("copy");
    std::fs::write(dir.join("broken.yaml"), "identity: [").expect("write");
    let output = forklift(&[
        "sheets",
        "validate",
        dir.join("permits.yaml").to_str().expect("path"),
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn logs_have_no_colour_codes_when_not_on_a_terminal() {
    let dir = std::env::temp_dir().join(format!("forklift-logs-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let output = Command::new(env!("CARGO_BIN_EXE_forklift"))
        .current_dir(&dir)
        .args(["bootstrap"])
        .env(
            "DATABASE_URL",
            format!("sqlite://{}?mode=rwc", dir.join("f.db").display()),
        )
        .env(
            "FORKLIFT_JWT_SECRET",
            "cli-test-secret-0123456789abcdef0123456789",
        )
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .env_remove("FORKLIFT_LOG_FORMAT")
        .output()
        .expect("bootstrap");
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("template sheets from"),
        "a log line was written: {stderr}"
    );
    assert!(!stderr.contains('\u{1b}'), "no escape codes: {stderr:?}");
    let _ = std::fs::remove_dir_all(dir);
}
