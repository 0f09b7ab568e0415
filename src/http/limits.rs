//! Limits checked before execution, on every transport: the document's length, its nesting, its
//! aliases and its cost after fragment expansion. The document is parsed once, here, and handed
//! to the executor already parsed.
//!
//! Order matters: the length and the nesting are checked on the raw text by iterative scans
//! (`nesting.rs`) before the recursive parser runs, so no input can make a recursive step go
//! deep. Then the parsed document's expanded cost is computed with one visit per fragment, so
//! a document of fragments that each spread the previous one twice is refused in microseconds
//! instead of being expanded.
//!
//! Depth and complexity are measured by [`Budget`], a schema extension, on the parsed document
//! every transport hands the executor (automatic persisted queries included, since it runs
//! after the query text is looked up). Introspection (`__schema`, `__type` and everything under
//! them) does not count against an ordinary query's budget; it has its own bound instead
//! ([`MAX_INTROSPECTION_DEPTH`], [`MAX_INTROSPECTION_LISTS`], [`MAX_INTROSPECTION_FIELDS`],
//! [`MAX_INTROSPECTION_ROOTS`]), wide enough for every standard introspection query (graphql-js
//! `getIntrospectionQuery` with all its options) and narrow enough that no introspection
//! document can ask for more than a few copies of the schema. The number of directives is
//! limited by the schema (`graphql::MAX_DIRECTIVES`).

use std::collections::HashMap;

use async_graphql::{
    Name, ServerResult, Value as ConstValue, Variables,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery},
    parser::{
        parse_query,
        types::{DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet},
    },
};
use async_graphql_value::Value;

use crate::{error::AppError, nesting};

mod budget;

pub use budget::{Budget, IntrospectionMeasures, Measures, check_budget, measure};

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
/// Deepest field nesting of an ordinary query (fragments inlined; introspection not counted).
pub const MAX_DEPTH: usize = 10;
/// Most fields an ordinary query may select, fragments inlined, each field counted once
/// (introspection not counted; lists are costed by [`MAX_EXPANDED_FIELDS`]).
pub const MAX_COMPLEXITY: u64 = 5_000;
/// Deepest field nesting under an introspection field, that field included. graphql-js's
/// standard query reaches 15 (`__schema types fields args type`, nine `ofType`, then `name`), and a
/// chain of `ofType` returns one object per level whatever the schema.
pub const MAX_INTROSPECTION_DEPTH: usize = 20;
/// Most list-valued introspection fields (`types`, `fields`, `args`, …) on one path: the
/// standard query needs 3 (`types fields args`). This is what keeps an introspection document
/// from multiplying the schema by itself (`types { fields { type { fields { … } } } }`).
pub const MAX_INTROSPECTION_LISTS: usize = 3;
/// Most fields selected under introspection fields, fragments inlined (the standard query
/// selects about 130).
pub const MAX_INTROSPECTION_FIELDS: u64 = 1_000;
/// Most `__schema`/`__type` fields in one document, fragments inlined.
pub const MAX_INTROSPECTION_ROOTS: u64 = 3;

/// Introspection fields that return lists, whose nesting [`MAX_INTROSPECTION_LISTS`] bounds.
const INTROSPECTION_LISTS: &[&str] = &[
    "types",
    "fields",
    "args",
    "inputFields",
    "interfaces",
    "possibleTypes",
    "enumValues",
    "directives",
    "locations",
];

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
                // Introspection has its own bound (`Budget`).
                Selection::Field(field) if is_introspection(field.node.name.node.as_str()) => 0,
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

/// True for the root fields of introspection (`__typename` is not one: it costs one field).
fn is_introspection(name: &str) -> bool {
    matches!(name, "__schema" | "__type")
}

fn too_deep() -> AppError {
    AppError::input(
        "query",
        format!("fragment spreads chain deeper than {MAX_SPREAD_CHAIN} levels"),
    )
}

#[cfg(test)]
mod tests;
