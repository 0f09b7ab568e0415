//! The pages the server serves itself: GraphiQL (`/`, `/graphiql`) and the provisioning monitor
//! (`/monitor`). Everything they load is compiled into the binary, so they work offline, from
//! any directory, with nothing installed: GraphiQL and React are vendored gzipped in `ui/vendor/`
//! (from the npm registry, MIT; `npm ci && npm run vendor` in `ui/` refreshes them), and the
//! monitor is plain HTML and JavaScript.

use axum::{
    extract::Path as UrlPath,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Response},
};

/// One vendored asset: the name it is served under, its content type and its gzipped bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    gzipped: &'static [u8],
}

/// The assets GraphiQL's page loads, gzipped at vendoring time (`ui/vendor.mjs`).
const ASSETS: &[Asset] = &[
    Asset {
        name: "graphiql.min.js",
        content_type: "text/javascript; charset=utf-8",
        gzipped: include_bytes!("../../ui/vendor/graphiql.min.js.gz"),
    },
    Asset {
        name: "graphiql.min.css",
        content_type: "text/css; charset=utf-8",
        gzipped: include_bytes!("../../ui/vendor/graphiql.min.css.gz"),
    },
    Asset {
        name: "react.production.min.js",
        content_type: "text/javascript; charset=utf-8",
        gzipped: include_bytes!("../../ui/vendor/react.production.min.js.gz"),
    },
    Asset {
        name: "react-dom.production.min.js",
        content_type: "text/javascript; charset=utf-8",
        gzipped: include_bytes!("../../ui/vendor/react-dom.production.min.js.gz"),
    },
];

/// True unless the request's `Accept-Encoding` rules gzip out. No `Accept-Encoding` at all
/// means any coding is acceptable (RFC 9110 §12.5.3); every browser sends `gzip`.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    let values: Vec<&str> = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if values.is_empty() {
        return true;
    }
    values.iter().flat_map(|v| v.split(',')).any(|part| {
        let mut pieces = part.split(';');
        let coding = pieces
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let refused = pieces.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q == 0.0)
        });
        (coding == "gzip" || coding == "*") && !refused
    })
}

/// `GET /assets/{name}`: a vendored asset, sent gzipped (`Content-Encoding: gzip`) and cached
/// for a day; 406 for a client that refuses gzip, 404 for any other name.
pub async fn asset(UrlPath(name): UrlPath<String>, headers: HeaderMap) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    if !accepts_gzip(&headers) {
        return (
            StatusCode::NOT_ACCEPTABLE,
            "this asset is only served gzip-encoded (Accept-Encoding: gzip)",
        )
            .into_response();
    }
    let mut response = asset.gzipped.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    response
}

/// `GET /` and `/graphiql`: GraphiQL against `/graphql` and `/graphql/ws`. A token in the URL
/// fragment (`#token=…&tenant=…&query=…`) is sent as `Authorization` (and `X-Tenant`).
pub async fn graphiql() -> Html<&'static str> {
    Html(GRAPHIQL)
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
<link rel="stylesheet" href="/assets/graphiql.min.css">
<style>html, body, #graphiql { height: 100%; margin: 0; }</style>
</head>
<body>
<div id="graphiql">Loading GraphiQL…</div>
<script src="/assets/react.production.min.js"></script>
<script src="/assets/react-dom.production.min.js"></script>
<script src="/assets/graphiql.min.js"></script>
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
      defaultQuery: '# Paste a token after #token= in the address bar, then:\n{ me { subject memberships { slug role } } }\n',
      // A query in the address (#query=…) replaces whatever the editor kept from last time.
      ...(params.get('query') ? { query: params.get('query') } : {}),
      defaultHeaders: JSON.stringify(headers, null, 2),
      defaultEditorToolsVisibility: true,
    }),
  );
</script>
</body>
</html>
"#;

const MONITOR: &str = include_str!("ui/monitor.html");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_vendored_asset_is_gzip_and_named_on_the_page() {
        for asset in ASSETS {
            assert_eq!(&asset.gzipped[..2], &[0x1f, 0x8b], "{} is gzip", asset.name);
            assert!(
                GRAPHIQL.contains(&format!("/assets/{}", asset.name)),
                "{}",
                asset.name
            );
        }
    }

    #[test]
    fn gzip_is_refused_only_explicitly() {
        let mut headers = HeaderMap::new();
        assert!(accepts_gzip(&headers));
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip, deflate, br"),
        );
        assert!(accepts_gzip(&headers));
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("identity"),
        );
        assert!(!accepts_gzip(&headers));
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip;q=0, br"),
        );
        assert!(!accepts_gzip(&headers));
    }
}
