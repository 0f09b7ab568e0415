//! Text no column can store: a NUL character (U+0000).
//!
//! PostgreSQL refuses NUL in `text` and `jsonb` with a driver error; SQLite stores it and cuts
//! the string at it in some functions. Either way it is the caller's mistake, so it is refused as
//! `BAD_USER_INPUT` before anything runs, in one place per entry point:
//!
//! - GraphQL: [`RefuseNul`], a schema extension, looks at every string of the parsed document
//!   (arguments, nested input objects, directive arguments, variable defaults) and of the
//!   variables once per request. When one holds a NUL, every root field answers
//!   `BAD_USER_INPUT` instead of running, so nothing is written; the audit extension, outside
//!   this one, still records each refused mutation.
//! - Tokens: `auth.rs` refuses claims with a NUL ([`claims_have_nul`]).
//! - `X-Tenant` over a WebSocket payload: `scope.rs`.
//! - Sheets: `sheets/check.rs`.

use std::sync::{Arc, Mutex};

use async_graphql::{
    Pos, ServerResult, Value as ConstValue, Variables,
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextResolve, ResolveInfo,
    },
    parser::types::{Directive, ExecutableDocument, Selection, SelectionSet},
};
use async_graphql_value::Value;

use crate::{auth::Claims, error::AppError};

/// The message of every NUL refusal.
pub const NUL_MESSAGE: &str = "contains a NUL character (U+0000), which no text can hold";

/// True when `text` holds a NUL character.
pub fn has_nul(text: &str) -> bool {
    text.as_bytes().contains(&0)
}

/// The `BAD_USER_INPUT` error for a NUL in `field`.
pub fn nul_error(field: impl Into<String>) -> AppError {
    AppError::input(field, NUL_MESSAGE)
}

/// True when any string claim of a token holds a NUL.
pub fn claims_have_nul(claims: &Claims) -> bool {
    has_nul(&claims.sub)
        || [&claims.iss, &claims.tenant, &claims.platform_role]
            .into_iter()
            .flatten()
            .any(|s| has_nul(s))
        || claims.grants.iter().any(|g| has_nul(g))
}

/// The first NUL in a constant value (a variable, a default), by iteration: the path of the
/// string (or object key) that holds it, below `root`.
fn const_value_nul(root: &str, value: &ConstValue) -> Option<String> {
    let mut stack: Vec<(String, &ConstValue)> = vec![(root.to_string(), value)];
    while let Some((path, value)) = stack.pop() {
        match value {
            ConstValue::String(s) if has_nul(s) => return Some(path),
            ConstValue::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    stack.push((format!("{path}.{i}"), item));
                }
            }
            ConstValue::Object(fields) => {
                for (key, item) in fields {
                    if has_nul(key) {
                        return Some(path);
                    }
                    stack.push((format!("{path}.{key}"), item));
                }
            }
            _ => {}
        }
    }
    None
}

/// As [`const_value_nul`], for a value of the document (which may name variables; those are
/// checked with the variables).
fn value_nul(root: &str, value: &Value) -> Option<String> {
    let mut stack: Vec<(String, &Value)> = vec![(root.to_string(), value)];
    while let Some((path, value)) = stack.pop() {
        match value {
            Value::String(s) if has_nul(s) => return Some(path),
            Value::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    stack.push((format!("{path}.{i}"), item));
                }
            }
            Value::Object(fields) => {
                for (key, item) in fields {
                    stack.push((format!("{path}.{key}"), item));
                }
            }
            _ => {}
        }
    }
    None
}

/// The first NUL among the variables.
pub fn variables_nul(variables: &Variables) -> Option<String> {
    variables.iter().find_map(|(name, value)| {
        if has_nul(name) {
            return Some("variables".to_string());
        }
        const_value_nul(&format!("variables.{name}"), value)
    })
}

fn directives_nul(directives: &[async_graphql::Positioned<Directive>]) -> Option<String> {
    directives.iter().find_map(|d| {
        d.node.arguments.iter().find_map(|(name, value)| {
            value_nul(&format!("@{}.{}", d.node.name.node, name.node), &value.node)
        })
    })
}

/// The first NUL among the strings of `doc`: field and directive arguments, nested input
/// objects and lists, variable defaults, in operations and fragments alike.
pub fn document_nul(doc: &ExecutableDocument) -> Option<String> {
    let mut sets: Vec<&SelectionSet> = Vec::new();
    for (_, op) in doc.operations.iter() {
        for var in &op.node.variable_definitions {
            let var = &var.node;
            if let Some(default) = &var.default_value
                && let Some(path) = const_value_nul(&format!("${}", var.name.node), &default.node)
            {
                return Some(path);
            }
            if let Some(path) = directives_nul(&var.directives) {
                return Some(path);
            }
        }
        if let Some(path) = directives_nul(&op.node.directives) {
            return Some(path);
        }
        sets.push(&op.node.selection_set.node);
    }
    for fragment in doc.fragments.values() {
        if let Some(path) = directives_nul(&fragment.node.directives) {
            return Some(path);
        }
        sets.push(&fragment.node.selection_set.node);
    }
    // Iterative, though `limits::inspect` has already bounded the nesting.
    while let Some(set) = sets.pop() {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    for (name, value) in &field.arguments {
                        let root = format!("{}.{}", field.name.node, name.node);
                        if let Some(path) = value_nul(&root, &value.node) {
                            return Some(path);
                        }
                    }
                    if let Some(path) = directives_nul(&field.directives) {
                        return Some(path);
                    }
                    sets.push(&field.selection_set.node);
                }
                Selection::FragmentSpread(spread) => {
                    if let Some(path) = directives_nul(&spread.node.directives) {
                        return Some(path);
                    }
                }
                Selection::InlineFragment(inline) => {
                    if let Some(path) = directives_nul(&inline.node.directives) {
                        return Some(path);
                    }
                    sets.push(&inline.node.selection_set.node);
                }
            }
        }
    }
    None
}

/// The schema extension that refuses a request with a NUL in any string it carries.
pub struct RefuseNul;

impl ExtensionFactory for RefuseNul {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RefuseNulExtension::default())
    }
}

#[derive(Default)]
struct RefuseNulExtension {
    /// Where the request holds a NUL, once its document is parsed.
    found: Mutex<Option<String>>,
}

#[async_graphql::async_trait::async_trait]
impl Extension for RefuseNulExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        if let Some(path) = variables_nul(variables).or_else(|| document_nul(&doc))
            && let Ok(mut found) = self.found.lock()
        {
            *found = Some(path);
        }
        Ok(doc)
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<ConstValue>> {
        if info.path_node.parent.is_none() {
            let found = self.found.lock().ok().and_then(|f| f.clone());
            if let Some(path) = found {
                // A root field: refused before its resolver runs, so nothing is read or written.
                return Err(nul_error(path)
                    .into_graphql()
                    .into_server_error(Pos::default()));
            }
        }
        next.run(ctx, info).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nul_is_found_wherever_it_is() {
        let doc = |q: &str| async_graphql::parser::parse_query(q).expect("parses");
        assert_eq!(document_nul(&doc("{ a(b: \"x\") { c } }")), None);
        for (query, path) in [
            ("{ a(b: \"x\\u0000\") }", "a.b"),
            ("{ a(input: { n: [\"ok\", \"\\u0000\"] }) }", "a.input.n.1"),
            ("{ a { b { c(d: \"\\u0000\") } } }", "c.d"),
            ("query($v: String = \"\\u0000\") { a(b: $v) }", "$v"),
            ("{ ...F } fragment F on Q { a(b: \"\\u0000\") }", "a.b"),
            (
                "{ a @include(if: true) { ... on Q { b(c: \"\\u0000\") } } }",
                "b.c",
            ),
        ] {
            assert_eq!(document_nul(&doc(query)).as_deref(), Some(path), "{query}");
        }
        let vars = Variables::from_json(serde_json::json!({ "x": { "y": ["a\u{0}"] } }));
        assert_eq!(variables_nul(&vars).as_deref(), Some("variables.x.y.0"));
        let vars = Variables::from_json(serde_json::json!({ "x": { "y": ["fine"] } }));
        assert_eq!(variables_nul(&vars), None);
    }
}
