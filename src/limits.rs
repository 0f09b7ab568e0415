//! Limits checked before execution: query length, aliases, and the operation type (for GET).
//! Depth, complexity and directives are limited by the schema itself.

use async_graphql::parser::{
    parse_query,
    types::{ExecutableDocument, OperationType, Selection, SelectionSet},
};

use crate::error::AppError;

/// Longest accepted query text, in bytes.
pub const MAX_QUERY_BYTES: usize = 50_000;
/// Most aliases in one document.
pub const MAX_ALIASES: usize = 15;

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

/// Refuses documents that are too long or use too many aliases. Unparsable documents pass
/// through, so the executor reports the syntax error in its usual form.
pub fn check(query: &str, _operation: Option<&str>) -> Result<(), AppError> {
    if query.len() > MAX_QUERY_BYTES {
        return Err(AppError::input(
            "query",
            format!("the query is longer than {MAX_QUERY_BYTES} bytes"),
        ));
    }
    if let Ok(doc) = parse_query(query) {
        let aliases = count_aliases(&doc);
        if aliases > MAX_ALIASES {
            return Err(AppError::input(
                "query",
                format!("the query uses {aliases} aliases; at most {MAX_ALIASES} are allowed"),
            ));
        }
    }
    Ok(())
}

/// True when the operation that would run is a mutation (or a subscription).
pub fn is_mutation(query: &str, operation: Option<&str>) -> bool {
    let Ok(doc) = parse_query(query) else {
        return false;
    };
    doc.operations.iter().any(|(name, op)| {
        let selected = match (operation, name) {
            (Some(wanted), Some(name)) => wanted == name.as_str(),
            (Some(_), None) => false,
            (None, _) => true,
        };
        selected && op.node.ty != OperationType::Query
    })
}

/// The root fields of the operation that would run, of any kind (empty for unparsable text).
pub fn root_fields(query: &str, operation: Option<&str>) -> Vec<String> {
    fields_of(query, operation, None)
}

/// The root fields of the mutation that would run (empty for queries and unparsable text).
pub fn mutation_fields(query: &str, operation: Option<&str>) -> Vec<String> {
    fields_of(query, operation, Some(OperationType::Mutation))
}

fn fields_of(query: &str, operation: Option<&str>, kind: Option<OperationType>) -> Vec<String> {
    use async_graphql::parser::types::Selection;
    let Ok(doc) = parse_query(query) else {
        return Vec::new();
    };
    doc.operations
        .iter()
        .filter(|(name, op)| {
            let selected = match (operation, name) {
                (Some(wanted), Some(name)) => wanted == name.as_str(),
                (Some(_), None) => false,
                (None, _) => true,
            };
            selected && kind.is_none_or(|k| op.node.ty == k)
        })
        .flat_map(|(_, op)| {
            op.node
                .selection_set
                .node
                .items
                .iter()
                .filter_map(|item| match &item.node {
                    Selection::Field(field) => Some(field.node.name.node.to_string()),
                    _ => None,
                })
                .collect::<Vec<_>>()
        })
        .collect()
}
