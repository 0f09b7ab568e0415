//! Every GraphQL document the README shows is valid against the live schema: a ```graphql block,
//! or the `"query"` of a `curl -d '…'` example. Run as a platform admin, each may fail at
//! execution (placeholders such as `<the run id>` name nothing), but none may be refused as a
//! document (a parse or validation error, which has no `path`).

use serde_json::{Value, json};

use crate::harness::TestApp;

/// The documents of the README, with where they come from.
fn documents() -> Vec<(String, String, Value)> {
    let readme = include_str!("../../README.md");
    let mut docs = Vec::new();
    let mut block: Option<String> = None;
    for (n, line) in readme.lines().enumerate() {
        match (&mut block, line.trim_start()) {
            (None, l) if l.starts_with("```graphql") => block = Some(String::new()),
            (Some(text), l) if l.starts_with("```") => {
                docs.push((
                    format!("README.md block ending at line {}", n + 1),
                    text.clone(),
                    json!({}),
                ));
                block = None;
            }
            (Some(text), _) => {
                text.push_str(line);
                text.push('\n');
            }
            (None, _) => {
                // `-d '{"query": …}'` bodies of curl examples.
                let mut rest = line;
                while let Some(start) = rest.find("-d '") {
                    let after = &rest[start + 4..];
                    let Some(end) = after.find('\'') else { break };
                    if let Ok(body) = serde_json::from_str::<Value>(&after[..end])
                        && let Some(query) = body["query"].as_str()
                    {
                        docs.push((
                            format!("README.md line {}", n + 1),
                            query.to_string(),
                            body.get("variables").cloned().unwrap_or_else(|| json!({})),
                        ));
                    }
                    rest = &after[end + 1..];
                }
            }
        }
    }
    docs
}

crate::both!(every_readme_document_is_valid);
async fn every_readme_document_is_valid(app: TestApp) {
    let docs = documents();
    assert!(
        docs.len() >= 10,
        "the README's examples were found: {}",
        docs.len()
    );
    let admin = app.admin();
    for (place, query, variables) in docs {
        let body = app.gql(&admin, None, &query, variables).await;
        let refused: Vec<&Value> = body["errors"]
            .as_array()
            .map(|errors| errors.iter().filter(|e| e.get("path").is_none()).collect())
            .unwrap_or_default();
        assert!(
            refused.is_empty(),
            "{place}: the document is refused: {query}\n{body}"
        );
    }
}
