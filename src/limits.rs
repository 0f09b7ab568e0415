//! Limits checked before execution, on every transport: the document's length, its nesting, its
//! aliases and its cost after fragment expansion. The document is parsed once, here, and handed
//! to the executor already parsed.
//!
//! Order matters: the length and the nesting are checked on the raw text by iterative scans
//! (`nesting.rs`) before the recursive parser runs, so no input can make a recursive step go
//! deep. Then the parsed document's expanded cost is computed with one visit per fragment, so
//! a document of fragments that each spread the previous one twice is refused in microseconds
//! instead of being expanded. Depth, complexity and directives are limited by the schema as
//! well (`graphql.rs`).

use std::collections::HashMap;

use async_graphql::{
    Name, Value as ConstValue, Variables,
    parser::{
        parse_query,
        types::{DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet},
    },
};
use async_graphql_value::Value;

use crate::{error::AppError, nesting};

/// Longest accepted query text, in bytes.
pub const MAX_QUERY_BYTES: usize = 50_000;
/// Deepest bracket nesting of a document: selection sets, lists, input objects and argument
/// lists together (`{ a(b: [{c: 1}]) { d } }` is 4 deep). Far below what a 2 MiB stack holds.
pub const MAX_DOCUMENT_NESTING: usize = 64;
/// Deepest nesting of a JSON text: a request body, a GET request's variables, a WebSocket
/// message; every object and array counts, the envelope included.
pub const MAX_JSON_NESTING: usize = 64;
/// Most aliases in one document.
pub const MAX_ALIASES: usize = 15;
/// Most fields a document may select once fragments are expanded, a list field counting its
/// selection once per row it may return (its `first`, `last` or `ids` count).
pub const MAX_EXPANDED_FIELDS: u64 = 50_000;
/// Longest chain of fragment spreads followed while costing a document.
const MAX_SPREAD_CHAIN: usize = MAX_DOCUMENT_NESTING;

/// What the transports need to know about a document before executing it.
#[derive(Default)]
pub struct Inspection {
    /// The kind of the operation that would run (`None` when it cannot be told: no query text,
    /// an unparsable one, or an unknown operation name).
    pub kind: Option<OperationType>,
    /// The root fields of the operation that would run, in document order.
    pub root_fields: Vec<String>,
}

impl Inspection {
    /// True when the operation that would run is not a query.
    pub fn is_mutation(&self) -> bool {
        self.kind.is_some_and(|k| k != OperationType::Query)
    }

    /// The name the metrics and logs use for the operation: its first root field.
    pub fn label(&self) -> &str {
        self.root_fields
            .first()
            .map(String::as_str)
            .unwrap_or("invalid")
    }
}

/// Checks `request` against every limit and, when its text parses, attaches the parsed
/// document so the executor does not parse it again. Unparsable text passes through, so the
/// executor reports the syntax error in its usual form (with the nesting already bounded, the
/// parser cannot go deep).
pub fn inspect(request: &mut async_graphql::Request) -> Result<Inspection, AppError> {
    let query = &request.query;
    if query.len() > MAX_QUERY_BYTES {
        return Err(AppError::input(
            "query",
            format!("the query is longer than {MAX_QUERY_BYTES} bytes"),
        ));
    }
    if let Err(depth) = nesting::graphql(query, MAX_DOCUMENT_NESTING) {
        return Err(AppError::input(
            "query",
            format!(
                "the query nests deeper than {MAX_DOCUMENT_NESTING} levels (reached {depth}); \
                 selection sets, lists, input objects and arguments count together"
            ),
        ));
    }
    let Ok(doc) = parse_query(query) else {
        return Ok(Inspection::default());
    };
    let aliases = count_aliases(&doc);
    if aliases > MAX_ALIASES {
        return Err(AppError::input(
            "query",
            format!("the query uses {aliases} aliases; at most {MAX_ALIASES} are allowed"),
        ));
    }
    let cost = expanded_cost(&doc, &request.variables)?;
    if cost > MAX_EXPANDED_FIELDS {
        return Err(AppError::input(
            "query",
            format!(
                "the query selects up to {cost} fields once fragments are expanded and lists \
                 counted by their `first`/`ids`; at most {MAX_EXPANDED_FIELDS} are allowed"
            ),
        ));
    }
    let inspection = describe(&doc, request.operation_name.as_deref());
    request.set_parsed_query(doc);
    Ok(inspection)
}

/// Refuses a JSON text nested deeper than [`MAX_JSON_NESTING`], before it is deserialized.
pub fn check_json(field: &str, text: &[u8]) -> Result<(), AppError> {
    nesting::json(text, MAX_JSON_NESTING)
        .map(|_| ())
        .map_err(|depth| {
            AppError::input(
                field,
                format!("the JSON nests deeper than {MAX_JSON_NESTING} levels (reached {depth})"),
            )
        })
}

fn describe(doc: &ExecutableDocument, operation: Option<&str>) -> Inspection {
    let selected = match (&doc.operations, operation) {
        (DocumentOperations::Single(op), None) => Some(op),
        (DocumentOperations::Single(_), Some(_)) => None,
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next(),
        (DocumentOperations::Multiple(_), None) => None,
    };
    let Some(op) = selected else {
        return Inspection::default();
    };
    Inspection {
        kind: Some(op.node.ty),
        root_fields: op
            .node
            .selection_set
            .node
            .items
            .iter()
            .filter_map(|item| match &item.node {
                Selection::Field(field) => Some(field.node.name.node.to_string()),
                _ => None,
            })
            .collect(),
    }
}

fn count_aliases(doc: &ExecutableDocument) -> usize {
    fn walk(set: &SelectionSet, count: &mut usize) {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    if field.node.alias.is_some() {
                        *count += 1;
                    }
                    walk(&field.node.selection_set.node, count);
                }
                Selection::InlineFragment(fragment) => {
                    walk(&fragment.node.selection_set.node, count)
                }
                Selection::FragmentSpread(_) => {}
            }
        }
    }
    let mut count = 0;
    for (_, op) in doc.operations.iter() {
        walk(&op.node.selection_set.node, &mut count);
    }
    for fragment in doc.fragments.values() {
        walk(&fragment.node.selection_set.node, &mut count);
    }
    count
}

/// The number of fields every operation of `doc` selects once its fragments are expanded, a
/// field with `first`, `last` or `ids` counting its selection that many times. Each fragment is
/// costed once (memoized), so the work is linear in the document whatever it expands to.
fn expanded_cost(doc: &ExecutableDocument, variables: &Variables) -> Result<u64, AppError> {
    let mut costing = Costing {
        doc,
        variables,
        defaults: HashMap::new(),
        memo: HashMap::new(),
        chain: Vec::new(),
    };
    let mut total = 0u64;
    for (_, op) in doc.operations.iter() {
        costing.defaults = op
            .node
            .variable_definitions
            .iter()
            .filter_map(|d| {
                let value = d.node.default_value.as_ref()?;
                Some((d.node.name.node.clone(), value.node.clone()))
            })
            .collect();
        total = total.saturating_add(costing.selection(&op.node.selection_set.node, 0)?);
    }
    Ok(total)
}

struct Costing<'a> {
    doc: &'a ExecutableDocument,
    variables: &'a Variables,
    defaults: HashMap<Name, ConstValue>,
    memo: HashMap<Name, u64>,
    chain: Vec<Name>,
}

impl Costing<'_> {
    fn selection(&mut self, set: &SelectionSet, depth: usize) -> Result<u64, AppError> {
        if depth > MAX_DOCUMENT_NESTING + MAX_SPREAD_CHAIN {
            return Err(too_deep());
        }
        let mut total = 0u64;
        for item in &set.items {
            let cost = match &item.node {
                Selection::Field(field) => {
                    let rows = field
                        .node
                        .arguments
                        .iter()
                        .filter_map(|(name, value)| self.rows(name.node.as_str(), &value.node))
                        .max()
                        .unwrap_or(1);
                    let inner = self.selection(&field.node.selection_set.node, depth + 1)?;
                    1u64.saturating_add(rows.saturating_mul(inner))
                }
                Selection::InlineFragment(fragment) => {
                    self.selection(&fragment.node.selection_set.node, depth + 1)?
                }
                Selection::FragmentSpread(spread) => {
                    self.fragment(&spread.node.fragment_name.node, depth + 1)?
                }
            };
            total = total.saturating_add(cost);
        }
        Ok(total)
    }

    fn fragment(&mut self, name: &Name, depth: usize) -> Result<u64, AppError> {
        if let Some(cost) = self.memo.get(name) {
            return Ok(*cost);
        }
        // A cycle is a validation error; the executor reports it. Costing stops here.
        if self.chain.contains(name) || self.chain.len() >= MAX_SPREAD_CHAIN {
            return if self.chain.contains(name) {
                Ok(0)
            } else {
                Err(too_deep())
            };
        }
        let Some(fragment) = self.doc.fragments.get(name) else {
            return Ok(0);
        };
        self.chain.push(name.clone());
        let cost = self.selection(&fragment.node.selection_set.node, depth);
        self.chain.pop();
        let cost = cost?;
        self.memo.insert(name.clone(), cost);
        Ok(cost)
    }

    /// How many rows an argument says a list field may return: `first`/`last` by value, `ids`
    /// by length (variables resolved from the request, then their defaults); `None` for any
    /// other argument, or one whose variable is not given.
    fn rows(&self, argument: &str, value: &Value) -> Option<u64> {
        if !matches!(argument, "first" | "last" | "ids") {
            return None;
        }
        let value = value
            .clone()
            .into_const_with(|name| {
                self.variables
                    .get(&name)
                    .or_else(|| self.defaults.get(&name))
                    .cloned()
                    .ok_or(())
            })
            .ok()?;
        size_of(argument, &value)
    }
}

fn size_of(argument: &str, value: &ConstValue) -> Option<u64> {
    match (argument, value) {
        ("first" | "last", ConstValue::Number(n)) => n.as_u64().map(|n| n.max(1)),
        ("ids", ConstValue::List(items)) => Some((items.len() as u64).max(1)),
        _ => None,
    }
}

fn too_deep() -> AppError {
    AppError::input(
        "query",
        format!("fragment spreads chain deeper than {MAX_SPREAD_CHAIN} levels"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost(query: &str) -> Result<u64, AppError> {
        let doc = parse_query(query).expect("parses");
        expanded_cost(&doc, &Variables::default())
    }

    #[test]
    fn fragments_cost_what_they_expand_to() {
        assert_eq!(cost("{ a b { c } }").ok(), Some(3));
        assert_eq!(
            cost("{ ...F ...F } fragment F on Query { a b }").ok(),
            Some(4)
        );
        assert_eq!(cost("{ a(first: 10) { b c } }").ok(), Some(21));
        assert_eq!(cost("{ nodes(ids: [\"x\", \"y\"]) { id } }").ok(), Some(3));
    }

    #[test]
    fn fragment_doubling_is_costed_without_expanding() {
        let mut text = String::from("query { ...F25 }\nfragment F0 on Query { __typename }\n");
        for level in 1..=25 {
            let previous = level - 1;
            text.push_str(&format!(
                "fragment F{level} on Query {{ ...F{previous} ...F{previous} }}\n"
            ));
        }
        assert_eq!(cost(&text).ok(), Some(1 << 25));
    }

    #[test]
    fn variables_and_defaults_set_list_sizes() {
        let doc = parse_query("query($n: Int = 7) { a(first: $n) { b } }").expect("parses");
        assert_eq!(expanded_cost(&doc, &Variables::default()).ok(), Some(8));
        let vars = Variables::from_json(serde_json::json!({"n": 100}));
        assert_eq!(expanded_cost(&doc, &vars).ok(), Some(101));
    }

    #[test]
    fn the_operation_that_would_run_is_described() {
        let doc = parse_query("query A { a } mutation B { b c }").expect("parses");
        let b = describe(&doc, Some("B"));
        assert!(b.is_mutation());
        assert_eq!(b.root_fields, vec!["b", "c"]);
        assert_eq!(describe(&doc, None).kind, None);
    }
}
