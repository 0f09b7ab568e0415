//! `forklift serve` where nothing is installed: an empty working directory, no `sheets/`, no
//! `ui/node_modules`, no network, no configured secret. GraphiQL and its assets come from the
//! binary, the demo tenant gets the built-in example template (and the log says so), and a token
//! minted by `forklift token` without `DATABASE_URL` is accepted whatever database the server
//! uses (the development secret lives in one place).

use std::{
    path::PathBuf,
    process::{Command, Stdio},
};

use serde_json::{Value, json};

use crate::harness::{Backend, TestDb};

/// A server process, killed when dropped.
struct Served {
    process: std::process::Child,
    base: String,
    log: PathBuf,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `forklift` in `dir`, with none of the configuration a developer's shell might carry.
fn forklift(dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_forklift"));
    command.current_dir(dir);
    for name in [
        "DATABASE_URL",
        "FORKLIFT_MIGRATION_DATABASE_URL",
        "FORKLIFT_SYSTEM_DATABASE_URL",
        "FORKLIFT_JWT_SECRET",
        "FORKLIFT_JWT_PUBLIC_KEY",
        "FORKLIFT_JWKS",
        "FORKLIFT_ENV",
        "FORKLIFT_ADDR",
        "FORKLIFT_UI_DIR",
        "FORKLIFT_CORS_ORIGINS",
        "FORKLIFT_INTROSPECTION",
    ] {
        command.env_remove(name);
    }
    command
}

async fn serve(dir: &std::path::Path, db: Option<&TestDb>) -> Served {
    let port = free_port();
    let log = dir.join("serve.log");
    let mut command = forklift(dir);
    command
        .arg("serve")
        .env("FORKLIFT_ADDR", format!("localhost:{port}"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"));
    if let Some(db) = db {
        command
            .env("DATABASE_URL", &db.url)
            .env("FORKLIFT_MIGRATION_DATABASE_URL", &db.owner_url)
            .env("FORKLIFT_SYSTEM_DATABASE_URL", &db.system_url);
    }
    let served = Served {
        process: command.spawn().expect("start forklift serve"),
        base: format!("http://127.0.0.1:{port}"),
        log,
    };
    let http = reqwest::Client::new();
    for _ in 0..600 {
        if http
            .get(format!("{}/readyz", served.base))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return served;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "the server did not start: {}",
        std::fs::read_to_string(&served.log).unwrap_or_default()
    );
}

crate::both_backends!(serve_works_in_an_empty_directory);
async fn serve_works_in_an_empty_directory(backend: Backend) {
    let db = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => match TestDb::create(Backend::Postgres).await {
            Some(db) => Some(db),
            None => return,
        },
    };
    let dir =
        std::env::temp_dir().join(format!("forklift-empty-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    // A token minted first, without DATABASE_URL, as a developer would.
    let output = forklift(&dir)
        .args(["token", "--sub", "dev@example.test", "--admin"])
        .output()
        .expect("forklift token");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout)
        .expect("utf-8")
        .trim()
        .to_string();
    let served = serve(&dir, db.as_ref()).await;
    let http = reqwest::Client::new();
    // The token works against this server, whatever its database.
    let body: Value = http
        .post(format!("{}/graphql", served.base))
        .bearer_auth(&token)
        .header("X-Tenant", "demo")
        .json(&json!({ "query": "{ me { subject } applications(first: 50) { totalCount nodes { code } } }" }))
        .send()
        .await
        .expect("query")
        .json()
        .await
        .expect("json");
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(body["data"]["me"]["subject"], "dev@example.test");
    let codes: Vec<&str> = body["data"]["applications"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(|n| n["code"].as_str())
        .collect();
    for code in [
        "service-requests",
        "citizen-portal",
        "permits",
        "participatory-budget",
    ] {
        assert!(
            codes.contains(&code),
            "the demo has the example application {code}: {codes:?}"
        );
    }
    let log = std::fs::read_to_string(&served.log).unwrap_or_default();
    assert!(
        log.contains("example template built into this binary"),
        "the log names the template source: {log}"
    );
    // GraphiQL and every asset it loads come from the binary.
    let page = http
        .get(format!("{}/", served.base))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("text");
    assert!(page.contains("/assets/graphiql.min.js"), "{page}");
    for asset in [
        "graphiql.min.js",
        "graphiql.min.css",
        "react.production.min.js",
        "react-dom.production.min.js",
    ] {
        let response = http
            .get(format!("{}/assets/{asset}", served.base))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .expect("asset");
        assert_eq!(response.status().as_u16(), 200, "{asset}");
    }
    drop(served);
    let _ = std::fs::remove_dir_all(&dir);
}
