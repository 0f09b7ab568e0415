//! `schema.graphql` is generated from the code; this fails when it drifts.

#[test]
fn schema_graphql_matches_the_running_schema() {
    let registry = forklift::registry::Registry::default();
    let generated = forklift::graphql::sdl(&registry).expect("schema builds");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "schema.graphql is out of date: regenerate it with `cargo run -q -- schema > schema.graphql`"
    );
}
