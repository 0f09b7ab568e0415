//! Unit tests of the parent module.

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

/// graphql-js's `getIntrospectionQuery` with every option, as tools send it.
const STANDARD_INTROSPECTION: &str = include_str!("../../../tests/fixtures/introspection.graphql");

fn measures(query: &str) -> Measures {
    measure(&parse_query(query).expect("parses")).expect("measured")
}

#[test]
fn introspection_is_measured_apart() {
    let m = measures(STANDARD_INTROSPECTION);
    assert_eq!((m.depth, m.fields), (0, 0), "{m:?}");
    assert_eq!(m.introspection.roots, 1);
    assert_eq!(m.introspection.lists, 3);
    assert_eq!(m.introspection.depth, 15);
    assert!(m.introspection.fields < MAX_INTROSPECTION_FIELDS, "{m:?}");
    let doc = parse_query(STANDARD_INTROSPECTION).expect("parses");
    assert!(check_budget(&doc, true).is_ok());
    assert!(check_budget(&doc, false).is_err(), "off means off");
    // Beside an ordinary query, introspection adds nothing to its budget.
    let m = measures("{ a { b { c } } __type(name: \"A\") { name fields { name } } }");
    assert_eq!((m.depth, m.fields), (3, 3));
    assert_eq!(m.introspection.fields, 4);
    // `__typename` is an ordinary field.
    assert_eq!(measures("{ __typename }").fields, 1);
}

#[test]
fn introspection_cannot_multiply_the_schema() {
    let cycle =
        "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }";
    let doc = parse_query(cycle).expect("parses");
    assert_eq!(measure(&doc).expect("measured").introspection.lists, 4);
    assert!(check_budget(&doc, true).is_err());
    let aliases = "{ a: __schema { queryType { name } } b: __schema { queryType { name } } \
                   c: __schema { queryType { name } } d: __schema { queryType { name } } }";
    assert!(check_budget(&parse_query(aliases).expect("parses"), true).is_err());
}

#[test]
fn depth_and_complexity_inline_fragments() {
    let m = measures("{ ...F } fragment F on Query { a { ...G } } fragment G on A { b { c } }");
    assert_eq!((m.depth, m.fields), (3, 3));
    let mut deep = String::from("x");
    for _ in 0..MAX_DEPTH {
        deep = format!("x {{ {deep} }}");
    }
    let doc = parse_query(format!("{{ {deep} }}")).expect("parses");
    assert_eq!(measure(&doc).expect("measured").depth, MAX_DEPTH + 1);
    assert!(check_budget(&doc, true).is_err());
}

#[test]
fn the_operation_that_would_run_is_described() {
    let doc = parse_query("query A { a } mutation B { b c }").expect("parses");
    let b = describe(&doc, Some("B"));
    assert!(b.is_mutation());
    assert_eq!(b.root_fields, vec!["b", "c"]);
    assert_eq!(describe(&doc, None).kind, None);
}
