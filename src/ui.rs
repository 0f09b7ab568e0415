//! The pages the server serves itself: GraphiQL (`/`, `/graphiql`) and the provisioning monitor
//! (`/monitor`). On-premises installs have no CDN, so GraphiQL's assets (GraphiQL, React) are
//! served from `FORKLIFT_UI_DIR` (default `ui/node_modules`, filled by `npm ci` in `ui/`) and the
//! CDN is only the fallback when they are absent. The monitor is plain HTML and JavaScript.

use std::path::{Path, PathBuf};

use axum::{
    extract::{Path as UrlPath, State},
    http::{HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Response},
};

use crate::server::Server;

/// The third-party assets, by the name they are served under: (file under the UI directory,
/// content type, CDN fallback).
const ASSETS: &[(&str, &str, &str, &str)] = &[
    (
        "graphiql.min.js",
        "graphiql/graphiql.min.js",
        "text/javascript; charset=utf-8",
        "https://unpkg.com/graphiql@3.8.3/graphiql.min.js",
    ),
    (
        "graphiql.min.css",
        "graphiql/graphiql.min.css",
        "text/css; charset=utf-8",
        "https://unpkg.com/graphiql@3.8.3/graphiql.min.css",
    ),
    (
        "react.production.min.js",
        "react/umd/react.production.min.js",
        "text/javascript; charset=utf-8",
        "https://unpkg.com/react@18.3.1/umd/react.production.min.js",
    ),
    (
        "react-dom.production.min.js",
        "react-dom/umd/react-dom.production.min.js",
        "text/javascript; charset=utf-8",
        "https://unpkg.com/react-dom@18.3.1/umd/react-dom.production.min.js",
    ),
];

fn local(dir: &Path, file: &str) -> PathBuf {
    dir.join(file)
}

/// Where the page loads `name` from: this server when the file is installed, else the CDN.
fn asset_url(dir: &Path, name: &str) -> String {
    match ASSETS.iter().find(|(n, ..)| *n == name) {
        Some((_, file, _, cdn)) if !local(dir, file).is_file() => (*cdn).to_string(),
        _ => format!("/assets/{name}"),
    }
}

/// `GET /assets/{name}`: an installed third-party asset.
pub async fn asset(State(server): State<Server>, UrlPath(name): UrlPath<String>) -> Response {
    let Some((_, file, content_type, _)) = ASSETS.iter().find(|(n, ..)| *n == name) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    match tokio::fs::read(local(&server.state.config.ui_dir, file)).await {
        Ok(bytes) => {
            let mut response = bytes.into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            headers.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=86400"),
            );
            response
        }
        Err(_) => (
            StatusCode::NOT_FOUND,
            "asset not installed (run `npm ci` in ui/)",
        )
            .into_response(),
    }
}

/// `GET /` and `/graphiql`: GraphiQL against `/graphql` and `/graphql/ws`. A token in the URL
/// fragment (`#token=…&tenant=…&query=…`) is sent as `Authorization` (and `X-Tenant`).
pub async fn graphiql(State(server): State<Server>) -> Html<String> {
    let dir = &server.state.config.ui_dir;
    Html(
        GRAPHIQL
            .replace("{css}", &asset_url(dir, "graphiql.min.css"))
            .replace("{react}", &asset_url(dir, "react.production.min.js"))
            .replace(
                "{react_dom}",
                &asset_url(dir, "react-dom.production.min.js"),
            )
            .replace("{graphiql}", &asset_url(dir, "graphiql.min.js")),
    )
}

/// `GET /monitor`: fork runs, and a live run phase by phase.
pub async fn monitor() -> Html<&'static str> {
    Html(MONITOR)
}

const GRAPHIQL: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Forklift · GraphiQL</title>
<link rel="stylesheet" href="{css}">
<style>html, body, #graphiql { height: 100%; margin: 0; }</style>
</head>
<body>
<div id="graphiql">Loading GraphiQL…</div>
<script src="{react}"></script>
<script src="{react_dom}"></script>
<script src="{graphiql}"></script>
<script>
  const params = new URLSearchParams(location.hash.slice(1));
  if (params.get('token')) localStorage.setItem('forklift.token', params.get('token'));
  const token = localStorage.getItem('forklift.token') || '';
  const headers = {};
  if (token) headers.Authorization = 'Bearer ' + token;
  if (params.get('tenant')) headers['X-Tenant'] = params.get('tenant');
  const wsUrl = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/graphql/ws';
  const fetcher = GraphiQL.createFetcher({
    url: '/graphql',
    subscriptionUrl: wsUrl,
    headers,
    wsConnectionParams: token ? { Authorization: 'Bearer ' + token } : {},
  });
  ReactDOM.createRoot(document.getElementById('graphiql')).render(
    React.createElement(GraphiQL, {
      fetcher,
      defaultQuery: params.get('query') || '# Paste a token after #token= in the address bar, then:\n{ me { subject memberships { slug role } } }\n',
      defaultHeaders: JSON.stringify(headers, null, 2),
      defaultEditorToolsVisibility: true,
    }),
  );
</script>
</body>
</html>
"#;

const MONITOR: &str = include_str!("ui/monitor.html");
