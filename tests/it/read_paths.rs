//! The two read paths agree: random read operations, generated from the live schema's
//! introspection (nesting, aliases, inline and named fragments, fragments on `Node`, variables,
//! `@skip`/`@include`, filters, ordering, paging in both directions, nulls, and some errors),
//! sent to a server with the planned read path and to a replica over the same database with
//! `FORKLIFT_PLANNED_READS=off`. Every response must be byte-identical, status included, and
//! most must have taken the planned path (`forklift_read_path_total`).
//!
//! `FORKLIFT_DIFF_SEED` and `FORKLIFT_DIFF_CASES` (default 250) choose the operations; a
//! failure names its case, seed, query and variables.

use std::collections::HashMap;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use crate::harness::TestApp;

const STANDARD_INTROSPECTION: &str = include_str!("../fixtures/introspection.graphql");

/// A small deterministic generator (xorshift), so a failure names its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// A field of an object type, from introspection.
#[derive(Clone, Debug)]
struct FieldInfo {
    name: String,
    /// The named type at the bottom of the type reference.
    named: String,
    list: bool,
    has_args: bool,
}

struct Schema {
    types: HashMap<String, Value>,
    /// Root connection fields: (field, object type, connection type).
    connections: Vec<(String, String)>,
    /// Root single lookups: (field, object type).
    lookups: Vec<(String, String)>,
}

fn named(ty: &Value) -> (String, bool) {
    let mut t = ty;
    let mut list = false;
    loop {
        match t["kind"].as_str() {
            Some("NON_NULL") => t = &t["ofType"],
            Some("LIST") => {
                list = true;
                t = &t["ofType"];
            }
            _ => return (t["name"].as_str().unwrap_or_default().to_string(), list),
        }
    }
}

impl Schema {
    fn from(introspection: &Value) -> Schema {
        let mut types = HashMap::new();
        for t in introspection["__schema"]["types"]
            .as_array()
            .expect("types")
        {
            types.insert(t["name"].as_str().expect("name").to_string(), t.clone());
        }
        let mut connections = Vec::new();
        let mut lookups = Vec::new();
        for f in types["Query"]["fields"].as_array().expect("query fields") {
            let name = f["name"].as_str().expect("name").to_string();
            let (ty, _) = named(&f["type"]);
            let args: Vec<&str> = f["args"]
                .as_array()
                .expect("args")
                .iter()
                .filter_map(|a| a["name"].as_str())
                .collect();
            // Connections of the generated surface (`auditLog`'s is hand-written: `AuditLogConnection`).
            if let Some(object) = ty.strip_suffix("Connection")
                && types.contains_key(object)
                && args.contains(&"first")
                && args.contains(&"orderBy")
            {
                connections.push((name, object.to_string()));
            } else if args == ["id"] && types.get(&ty).is_some_and(|t| t["kind"] == "OBJECT") {
                lookups.push((name, ty));
            }
        }
        Schema {
            types,
            connections,
            lookups,
        }
    }

    fn fields(&self, type_name: &str) -> Vec<FieldInfo> {
        self.types[type_name]["fields"]
            .as_array()
            .map(|fields| {
                fields
                    .iter()
                    .map(|f| {
                        let (named, list) = named(&f["type"]);
                        FieldInfo {
                            name: f["name"].as_str().unwrap_or_default().to_string(),
                            named,
                            list,
                            has_args: f["args"].as_array().is_some_and(|a| !a.is_empty()),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn is_leaf(&self, type_name: &str) -> bool {
        matches!(
            self.types[type_name]["kind"].as_str(),
            Some("SCALAR" | "ENUM")
        )
    }

    fn enum_values(&self, type_name: &str) -> Vec<String> {
        self.types[type_name]["enumValues"]
            .as_array()
            .map(|v| {
                v.iter()
                    .filter_map(|e| e["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// One generated operation.
#[derive(Default)]
struct Operation {
    fragments: Vec<String>,
    definitions: Vec<String>,
    variables: serde_json::Map<String, Value>,
    counter: usize,
}

impl Operation {
    fn fresh(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}{}", self.counter)
    }

    fn variable(&mut self, ty: &str, value: Value) -> String {
        let name = self.fresh("v");
        self.definitions.push(format!("${name}: {ty}"));
        self.variables.insert(name.clone(), value);
        format!("${name}")
    }

    fn text(&self, body: &str) -> String {
        let head = if self.definitions.is_empty() {
            "query".to_string()
        } else {
            format!("query Q({})", self.definitions.join(", "))
        };
        let mut text = format!("{head} {{ {body} }}");
        for fragment in &self.fragments {
            text.push('\n');
            text.push_str(fragment);
        }
        text
    }
}

/// A cursor the generator asks for: the text standing in the query until the runner replaces
/// it with the cursor of row `index` of `field` in the order `order` (an `orderBy` literal),
/// fetched from the server; sometimes an order other than the one the query uses (a foreign
/// cursor, `BAD_USER_INPUT` on both paths).
struct CursorWanted {
    placeholder: String,
    field: String,
    order: String,
    index: usize,
}

/// An offset cursor of the old format: no longer a cursor (`BAD_USER_INPUT`).
fn offset_cursor(offset: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("cursor:{offset}"))
}

struct Generator<'a> {
    schema: &'a Schema,
    rng: Rng,
    /// The cursors the current operation needs.
    cursors: Vec<CursorWanted>,
    /// Sample leaf values per object type (from one prefetched page), for filters.
    samples: &'a HashMap<String, Vec<Value>>,
}

impl Generator<'_> {
    /// Wraps a field's text in the ways a client might: a directive, an inline fragment, a
    /// named fragment.
    fn dress(&mut self, op: &mut Operation, on: &str, text: String) -> String {
        let mut text = text;
        match self.rng.below(12) {
            0 => {
                let v = op.variable("Boolean!", json!(self.rng.chance(70)));
                text = format!("{text} @include(if: {v})");
            }
            1 => text = format!("{text} @skip(if: {})", self.rng.chance(30)),
            _ => {}
        }
        match self.rng.below(10) {
            0 => format!("... on {on} {{ {text} }}"),
            1 => format!("... {{ {text} }}"),
            2 => {
                let name = op.fresh("F");
                op.fragments
                    .push(format!("fragment {name} on {on} {{ {text} }}"));
                format!("...{name}")
            }
            _ => text,
        }
    }

    fn key(&mut self, op: &mut Operation, field: &str) -> String {
        if self.rng.chance(15) {
            format!("{}: {field}", op.fresh("a"))
        } else {
            field.to_string()
        }
    }

    fn object(&mut self, op: &mut Operation, type_name: &str, depth: usize) -> String {
        let fields = self.schema.fields(type_name);
        let mut parts = Vec::new();
        let mut used = Vec::new();
        let wanted = 1 + self.rng.below(5);
        for _ in 0..wanted * 2 {
            if parts.len() >= wanted {
                break;
            }
            let f = self.rng.pick(&fields).clone();
            // Nested lists take `first`, `filter` and `orderBy`; other fields with arguments
            // are hand-written and left out.
            if (f.has_args && !f.list) || used.contains(&f.name) {
                continue;
            }
            let text = if self.schema.is_leaf(&f.named) {
                self.key(op, &f.name)
            } else if depth == 0 || (f.list && depth < 2 && self.rng.chance(50)) {
                continue;
            } else {
                let args = if f.list && f.has_args && self.rng.chance(50) {
                    self.nested_args(op, &f.named)
                } else {
                    String::new()
                };
                let inner = self.object(op, &f.named, depth - 1);
                format!("{}{args} {{ {inner} }}", self.key(op, &f.name))
            };
            used.push(f.name.clone());
            parts.push(self.dress(op, type_name, text));
        }
        if self.rng.chance(10) {
            parts.push("... on Node { id }".into());
        }
        if self.rng.chance(10) || parts.is_empty() {
            parts.push("__typename".into());
        }
        parts.join(" ")
    }

    /// Arguments of a nested list of `object`s: some of `first`, `orderBy`, `filter`.
    fn nested_args(&mut self, op: &mut Operation, object: &str) -> String {
        let mut args = Vec::new();
        if self.rng.chance(60) {
            if self.rng.chance(20) {
                let v = op.variable("Int", json!(self.rng.below(3)));
                args.push(format!("first: {v}"));
            } else if self.rng.chance(3) {
                args.push("first: -1".into());
            } else {
                args.push(format!("first: {}", self.rng.below(3)));
            }
        }
        if self.rng.chance(50) {
            let order = self.order(op, object).0;
            args.push(format!("orderBy: {order}"));
        }
        if self.rng.chance(30)
            && let Some(filter) = self.filter(op, object)
        {
            args.push(format!("filter: {filter}"));
        }
        if args.is_empty() {
            String::new()
        } else {
            format!("({})", args.join(", "))
        }
    }

    /// An `orderBy` of 1 to 3 items: one item, a list literal or a `[XOrderBy!]` variable
    /// (holding a list, or one item that input coercion makes a list). Returns the argument's
    /// text and the same order as a literal.
    fn order(&mut self, op: &mut Operation, object: &str) -> (String, String) {
        let items = self.schema.enum_values(&format!("{object}OrderBy"));
        let n = 1 + self.rng.below(3);
        let chosen: Vec<String> = (0..n).map(|_| self.rng.pick(&items).clone()).collect();
        let literal = format!("[{}]", chosen.join(", "));
        let text = match self.rng.below(4) {
            0 if n == 1 => chosen[0].clone(),
            1 => op.variable(&format!("[{object}OrderBy!]"), json!(chosen)),
            2 if n == 1 => op.variable(&format!("[{object}OrderBy!]"), json!(chosen[0])),
            _ => literal.clone(),
        };
        (text, literal)
    }

    /// A cursor of `field` for the order `order` (now and then another order's).
    fn cursor(&mut self, op: &mut Operation, field: &str, object: &str, order: &str) -> String {
        let order = if self.rng.chance(4) {
            self.order(&mut Operation::default(), object).1
        } else {
            order.to_string()
        };
        let placeholder = format!("{}_", op.fresh("CURSOR_"));
        self.cursors.push(CursorWanted {
            placeholder: placeholder.clone(),
            field: field.to_string(),
            order,
            index: self.rng.below(6),
        });
        format!("\"{placeholder}\"")
    }

    fn connection(&mut self, op: &mut Operation, field: &str, object: &str) -> String {
        let mut args = Vec::new();
        let (order_arg, order) = if self.rng.chance(40) {
            let (text, literal) = self.order(op, object);
            (Some(text), literal)
        } else {
            (None, "[]".to_string())
        };
        // Cursors come from the rows of the list: only lists that have some get them.
        let has_rows = self
            .samples
            .get(object)
            .is_some_and(|rows| !rows.is_empty());
        let case = match self.rng.below(10) {
            1 | 2 | 5 | 6 if !has_rows => 7,
            case => case,
        };
        match case {
            0 => args.push(format!("last: {}", self.rng.below(4))),
            1 => {
                args.push(format!("first: {}", self.rng.below(4)));
                let after = self.cursor(op, field, object, &order);
                args.push(format!("after: {after}"));
            }
            2 => {
                let before = self.cursor(op, field, object, &order);
                args.push(format!("before: {before}"));
                args.push(format!("last: {}", 1 + self.rng.below(2)));
            }
            3 => {
                let v = op.variable("Int", json!(self.rng.below(5)));
                args.push(format!("first: {v}"));
            }
            4 => {}
            5 => {
                let after = self.cursor(op, field, object, &order);
                let before = self.cursor(op, field, object, &order);
                args.push(format!("after: {after}, before: {before}"));
                if self.rng.chance(50) {
                    args.push(format!("last: {}", self.rng.below(3)));
                }
            }
            6 => {
                let after = self.cursor(op, field, object, &order);
                let v = op.variable("String", Value::Null);
                args.push(format!("first: 2, last: 1, after: {after}, before: {v}"));
            }
            _ => args.push(format!("first: {}", self.rng.below(5))),
        }
        if let Some(text) = order_arg {
            args.push(format!("orderBy: {text}"));
        }
        if self.rng.chance(30)
            && let Some(filter) = self.filter(op, object)
        {
            args.push(format!("filter: {filter}"));
        }
        // Now and then, an argument the server refuses.
        if self.rng.chance(4) {
            args.push(
                [
                    "first: 5000".to_string(),
                    "after: \"nope\"".to_string(),
                    "last: -1".to_string(),
                    format!("before: \"{}\"", offset_cursor(2)),
                ][self.rng.below(4)]
                .clone(),
            );
        }
        let mut parts = Vec::new();
        let depth = 1 + self.rng.below(2);
        if self.rng.chance(70) {
            let inner = self.object(op, object, depth);
            parts.push(format!("{} {{ {inner} }}", self.key(op, "nodes")));
        }
        if self.rng.chance(30) {
            let inner = self.object(op, object, depth);
            parts.push(format!("edges {{ cursor node {{ {inner} }} }}"));
        }
        if self.rng.chance(40) {
            parts.push(self.key(op, "totalCount"));
        }
        if self.rng.chance(30) {
            parts.push(
                "pageInfo { hasNextPage hasPreviousPage startCursor endCursor __typename }".into(),
            );
        }
        if parts.is_empty() {
            parts.push("__typename".into());
        }
        let args = if args.is_empty() {
            String::new()
        } else {
            format!("({})", args.join(", "))
        };
        format!("{}{args} {{ {} }}", self.key(op, field), parts.join(" "))
    }

    /// A filter on one field, with a value a row has (or a value no row has).
    fn filter(&mut self, op: &mut Operation, object: &str) -> Option<String> {
        let input = &self.schema.types[&format!("{object}Filter")];
        let fields = input["inputFields"].as_array()?;
        let f = self.rng.pick(fields);
        let name = f["name"].as_str()?;
        let (ty, _) = named(&f["type"]);
        let sample = self.samples.get(object).and_then(|rows| {
            let rows: Vec<&Value> = rows.iter().filter(|r| !r[name].is_null()).collect();
            (!rows.is_empty()).then(|| rows[self.rng.below(rows.len())][name].clone())
        });
        let value = match (self.schema.types[&ty]["kind"].as_str()?, sample) {
            ("ENUM", _) => {
                let values = self.schema.enum_values(&ty);
                json!(self.rng.pick(&values))
            }
            (_, Some(v)) if self.rng.chance(80) => v,
            (_, _) if ty == "Boolean" => json!(self.rng.chance(50)),
            (_, _) if ty == "Int" => json!(self.rng.below(3)),
            (_, _) => Value::Null,
        };
        if self.rng.chance(50) {
            let v = op.variable(&format!("{object}Filter"), json!({ name: value }));
            return Some(v);
        }
        let literal = match (&value, self.schema.types[&ty]["kind"].as_str()) {
            (Value::String(s), Some("ENUM")) => s.clone(),
            (other, _) => other.to_string(),
        };
        Some(format!("{{ {name}: {literal} }}"))
    }

    fn operation(&mut self, ids: &[(String, String)]) -> (String, Value) {
        let mut op = Operation::default();
        let mut roots: Vec<String> = Vec::new();
        let mut root_fields = std::collections::HashSet::new();
        for _ in 0..1 + self.rng.below(2) {
            if self.rng.chance(80) || ids.is_empty() {
                let (field, object) = self.rng.pick(&self.schema.connections).clone();
                // A key selected twice with different arguments is a conflict GraphQL validation
                // should refuse; the executor merges it in no fixed order. Not generated.
                if !root_fields.insert(field.clone()) {
                    continue;
                }
                let text = self.connection(&mut op, &field, &object);
                roots.push(self.dress(&mut op, "Query", text));
            } else {
                let (type_name, id) = self.rng.pick(ids).clone();
                let Some((field, _)) = self
                    .schema
                    .lookups
                    .iter()
                    .find(|(_, t)| *t == type_name)
                    .cloned()
                else {
                    continue;
                };
                // The same key twice with different selections: see above.
                if !root_fields.insert(field.clone()) {
                    continue;
                }
                let id_arg = match self.rng.below(6) {
                    0 => "\"bad\"".to_string(),
                    1 => op.variable("ID!", json!(id)),
                    _ => format!("\"{id}\""),
                };
                let inner = self.object(&mut op, &type_name, 2);
                roots.push(format!(
                    "{}(id: {id_arg}) {{ {inner} }}",
                    self.key(&mut op, &field)
                ));
            }
        }
        if self.rng.chance(5) {
            roots.push("__typename".into());
        }
        if roots.is_empty() {
            roots.push("__typename".into());
        }
        (op.text(&roots.join(" ")), Value::Object(op.variables))
    }
}

async fn raw(app: &TestApp, token: &str, tenant: &str, query: &str, vars: &Value) -> (u16, String) {
    let response = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(token)
        .header("X-Tenant", tenant)
        .json(&json!({ "query": query, "variables": vars }))
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

fn errors_sorted(body: &str) -> String {
    let Ok(mut value) = serde_json::from_str::<Value>(body) else {
        return body.to_string();
    };
    if let Some(errors) = value["errors"].as_array_mut() {
        errors.sort_by_key(|e| e.to_string());
    }
    value.to_string()
}

async fn planned_count(app: &TestApp, path: &str) -> u64 {
    let text = app.metrics().await;
    let needle = format!("forklift_read_path_total{{path=\"{path}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&needle))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

crate::both!(planned_and_executor_answers_are_byte_identical);

async fn planned_and_executor_answers_are_byte_identical(app: TestApp) {
    {
        crate::fixture::seeded_template(&app.state, 3).await;
        app.ready_tenant("acme").await;
        let executor = app.replica(|c| c.planned_reads = false).await;
        let admin = app.admin();
        let viewer_email = "viewer@acme.test";
        app.add_member("acme", viewer_email, "VIEWER").await;
        let viewer = app.token(viewer_email, Some("acme"), false, &[]);

        let introspection = app
            .ok(&admin, None, STANDARD_INTROSPECTION, json!({}))
            .await;
        let schema = Schema::from(&introspection);
        assert!(schema.connections.len() > 20, "{:?}", schema.connections);

        // One page of every connection: filter values and ids for single lookups.
        let mut samples = HashMap::new();
        let mut ids = Vec::new();
        for (field, object) in &schema.connections {
            let leaves: Vec<String> = schema
                .fields(object)
                .into_iter()
                .filter(|f| !f.has_args && !f.list && schema.is_leaf(&f.named))
                .map(|f| f.name)
                .collect();
            let body = executor
                .gql(
                    &admin,
                    Some("acme"),
                    &format!(
                        "{{ {field}(first: 5) {{ nodes {{ {} }} }} }}",
                        leaves.join(" ")
                    ),
                    json!({}),
                )
                .await;
            let rows = body["data"][field]["nodes"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for row in &rows {
                if let Some(id) = row["id"].as_str() {
                    ids.push((object.clone(), id.to_string()));
                }
            }
            samples.insert(object.clone(), rows);
        }
        assert!(
            ids.len() > 50,
            "the fork gave the tenant rows to read: {}",
            ids.len()
        );

        let seed = std::env::var("FORKLIFT_DIFF_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0x5eed_f00d_u64);
        let cases: usize = std::env::var("FORKLIFT_DIFF_CASES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(250);
        let mut generator = Generator {
            schema: &schema,
            rng: Rng(seed),
            cursors: Vec::new(),
            samples: &samples,
        };
        // FORKLIFT_DIFF_SHOW_FALLBACKS=1 prints the error-free reads the planner left to the
        // executor (hand-written fields, merged keys it does not merge, …).
        let show_fallbacks = std::env::var("FORKLIFT_DIFF_SHOW_FALLBACKS").is_ok();
        let planned_before = planned_count(&app, "planned").await;
        let callers = [
            (admin.as_str(), "acme"),
            (viewer.as_str(), "acme"),
            (admin.as_str(), "*"),
        ];
        for case in 0..cases {
            let (mut query, vars) = generator.operation(&ids);
            for wanted in std::mem::take(&mut generator.cursors) {
                let body = executor
                    .gql(
                        &admin,
                        Some("acme"),
                        &format!(
                            "{{ {}(first: 6, orderBy: {}) {{ edges {{ cursor }} }} }}",
                            wanted.field, wanted.order
                        ),
                        json!({}),
                    )
                    .await;
                let edges = body["data"][&wanted.field]["edges"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let cursor = edges
                    .get(wanted.index % edges.len().max(1))
                    .and_then(|e| e["cursor"].as_str())
                    .map_or_else(|| offset_cursor(0), str::to_string);
                query = query.replace(&wanted.placeholder, &cursor);
            }
            let (token, tenant) = callers[case % callers.len()];
            let before = if show_fallbacks {
                planned_count(&app, "planned").await
            } else {
                0
            };
            let mut planned = raw(&app, token, tenant, &query, &vars).await;
            if show_fallbacks
                && planned_count(&app, "planned").await == before
                && !planned.1.contains("\"errors\"")
            {
                eprintln!("executor answered ({tenant}): {query}\n  variables: {vars}");
            }
            let mut general = raw(&executor, token, tenant, &query, &vars).await;
            // Root fields run concurrently in the executor, so the order of errors from
            // different root fields varies from run to run (on both servers alike): compare
            // error responses with their errors in a fixed order.
            if planned.1.contains("\"errors\"") {
                planned.1 = errors_sorted(&planned.1);
                general.1 = errors_sorted(&general.1);
            }
            assert_eq!(
                planned, general,
                "case {case} (seed {seed}), as {tenant}:\n{query}\nvariables: {vars}"
            );
        }
        let planned = planned_count(&app, "planned").await - planned_before;
        let fell_back = planned_count(&app, "executor").await;
        // Cases refused before execution (bad cursors, errors the generator means) take
        // neither path; of the rest, the planner must serve most.
        assert!(
            planned * 3 > (planned + fell_back) * 2,
            "at least two thirds of the generated reads that ran take the planned path: \
             {planned} planned, {fell_back} by the executor, of {cases}"
        );
        assert_eq!(
            planned_count(&executor, "planned").await,
            0,
            "off means off"
        );
    }
}

crate::both!(nested_lists_take_first_filter_and_order_per_parent);

/// `first`, `orderBy` and `filter` on a nested list apply to each parent's rows, on both paths:
/// the answer equals what the whole list, sorted and cut per parent, gives.
async fn nested_lists_take_first_filter_and_order_per_parent(app: TestApp) {
    // Tenant `bench`: 50 applications with 10 actions each.
    forklift::synthetic::nested_query_tenant(&app.state)
        .await
        .expect("seeded");
    let executor = app.replica(|c| c.planned_reads = false).await;
    let admin = app.admin();
    let all = app
        .ok(
            &admin,
            Some("bench"),
            "{ applications { nodes { id actions { key label } } } }",
            json!({}),
        )
        .await;
    let apps = all["applications"]["nodes"]
        .as_array()
        .expect("apps")
        .clone();
    assert!(
        apps.iter()
            .any(|a| a["actions"].as_array().is_some_and(|l| l.len() > 2))
    );
    let label = apps
        .iter()
        .flat_map(|a| a["actions"].as_array().cloned().unwrap_or_default())
        .map(|a| a["label"].clone())
        .next()
        .expect("a label");
    let query = "query($label: String) { applications { nodes { id \
                 top: actions(first: 2, orderBy: KEY_DESC) { key } \
                 labelled: actions(filter: { label: $label }) { key } } } }";
    for server in [&app, &executor] {
        let data = server
            .ok(&admin, Some("bench"), query, json!({ "label": label }))
            .await;
        let got = data["applications"]["nodes"].as_array().expect("apps");
        assert_eq!(got.len(), apps.len());
        for (app_row, full) in got.iter().zip(&apps) {
            assert_eq!(app_row["id"], full["id"]);
            let mut keys: Vec<String> = full["actions"]
                .as_array()
                .expect("actions")
                .iter()
                .map(|a| a["key"].as_str().unwrap_or_default().to_string())
                .collect();
            keys.sort();
            keys.reverse();
            let top: Vec<&str> = app_row["top"]
                .as_array()
                .expect("top")
                .iter()
                .map(|a| a["key"].as_str().unwrap_or_default())
                .collect();
            let expected: Vec<&str> = keys.iter().take(2).map(String::as_str).collect();
            assert_eq!(top, expected, "first 2 by key, descending, per application");
            let labelled = app_row["labelled"].as_array().expect("labelled").len();
            let expected = full["actions"]
                .as_array()
                .expect("actions")
                .iter()
                .filter(|a| a["label"] == label)
                .count();
            assert_eq!(labelled, expected, "the filter applies per application");
        }
    }
    let body = app
        .gql(
            &admin,
            Some("bench"),
            "{ applications { nodes { actions(first: 1001) { key } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        crate::harness::code(&body).as_deref(),
        Some("BAD_USER_INPUT")
    );
}
