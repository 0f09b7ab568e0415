//! Ordering by several columns and keyset cursors (issue #14 item 6), on both read paths (the
//! planned one, and a replica with `FORKLIFT_PLANNED_READS=off`) and both databases; `tenants`
//! ordered and paged the same way; ids that name other nodes are global ids, and a
//! membership's id is enough to change or remove it (item 5).

use std::cmp::Ordering;

use serde_json::{Value, json};

use crate::harness::{TestApp, code};

/// Applications of tenant `acme`: (code, name, vertical, navOrder). Verticals and nav orders
/// repeat so that the second column and then the id must break ties; some verticals are null.
const APPS: &[(&str, &str, Option<&str>, i64)] = &[
    ("a01", "Kilo", Some("b"), 2),
    ("a02", "Alpha", None, 1),
    ("a03", "Echo", Some("a"), 2),
    ("a04", "Bravo", Some("b"), 1),
    ("a05", "Delta", None, 2),
    ("a06", "Hotel", Some("a"), 1),
    ("a07", "Golf", Some("b"), 2),
    ("a08", "India", Some("a"), 2),
    ("a09", "Juliet", None, 1),
    ("a10", "Foxtrot", Some("b"), 1),
];

async fn create_app(app: &TestApp, code: &str, name: &str, vertical: Option<&str>, nav: i64) {
    app.ok(
        &app.admin(),
        Some("acme"),
        "mutation($input: CreateApplicationInput!) { createApplication(input: $input) { id } }",
        json!({ "input": {
            "code": code, "name": name, "routeNamespace": code,
            "vertical": vertical, "navOrder": nav,
        } }),
    )
    .await;
}

async fn seed(app: &TestApp) {
    app.create_tenant("acme").await;
    for (code, name, vertical, nav) in APPS {
        create_app(app, code, name, *vertical, *nav).await;
    }
}

const FIELDS: &str = "id code name vertical navOrder";

/// Every application, read whole, in id order.
async fn all(app: &TestApp) -> Vec<Value> {
    let data = app
        .ok(
            &app.admin(),
            Some("acme"),
            &format!("{{ applications(first: 1000) {{ nodes {{ {FIELDS} }} }} }}"),
            json!({}),
        )
        .await;
    data["applications"]["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// `a` against `b` on `field`, null after every value, reversed for descending.
fn by(field: &str, descending: bool) -> impl Fn(&Value, &Value) -> Ordering + '_ {
    move |a, b| {
        let o = match (&a[field], &b[field]) {
            (Value::Null, Value::Null) => Ordering::Equal,
            (Value::Null, _) => Ordering::Greater,
            (_, Value::Null) => Ordering::Less,
            (Value::Number(x), Value::Number(y)) => x.as_i64().cmp(&y.as_i64()),
            (x, y) => x.as_str().cmp(&y.as_str()),
        };
        if descending { o.reverse() } else { o }
    }
}

/// The row ids' UUIDs (global ids of one type order as their UUIDs do only once decoded).
fn uuid(row: &Value) -> uuid::Uuid {
    crate::harness::uuid_of(row["id"].as_str().unwrap_or_default())
}

fn codes(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|r| r["code"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// A page of `applications(args)` on `app`: its rows and its `pageInfo` and `totalCount`.
async fn page(app: &TestApp, args: &str) -> Value {
    let query = format!(
        "{{ applications({args}) {{ totalCount nodes {{ {FIELDS} }} edges {{ cursor }} \
         pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }} }} }}"
    );
    app.ok(&app.admin(), Some("acme"), &query, json!({})).await["applications"].clone()
}

fn nodes(page: &Value) -> Vec<Value> {
    page["nodes"].as_array().cloned().unwrap_or_default()
}

crate::both!(order_by_several_columns_breaks_ties_by_the_next_then_id);

async fn order_by_several_columns_breaks_ties_by_the_next_then_id(app: TestApp) {
    seed(&app).await;
    let executor = app.replica(|c| c.planned_reads = false).await;
    let rows = all(&app).await;
    assert_eq!(rows.len(), APPS.len());
    for (order, keys) in [
        (
            "[VERTICAL_ASC, NAV_ORDER_DESC]",
            [("vertical", false), ("navOrder", true)],
        ),
        (
            "[VERTICAL_DESC, NAV_ORDER_ASC]",
            [("vertical", true), ("navOrder", false)],
        ),
        (
            "[NAV_ORDER_ASC, VERTICAL_ASC]",
            [("navOrder", false), ("vertical", false)],
        ),
    ] {
        let mut expected = rows.clone();
        // Then by id, in the first item's direction.
        let id_descending = keys[0].1;
        expected.sort_by(|a, b| {
            by(keys[0].0, keys[0].1)(a, b)
                .then_with(|| by(keys[1].0, keys[1].1)(a, b))
                .then_with(|| {
                    let o = uuid(a).cmp(&uuid(b));
                    if id_descending { o.reverse() } else { o }
                })
        });
        for server in [&app, &executor] {
            let got = nodes(&page(server, &format!("orderBy: {order}")).await);
            assert_eq!(codes(&got), codes(&expected), "orderBy: {order}");
        }
    }
    // One item is still accepted (list input coercion), and a variable holds a list.
    let one = nodes(&page(&app, "orderBy: NAME_DESC").await);
    let mut names: Vec<String> = APPS.iter().map(|a| a.1.to_string()).collect();
    names.sort();
    names.reverse();
    let got: Vec<&str> = one.iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(got, names);
    let data = app
        .ok(
            &app.admin(),
            Some("acme"),
            "query($o: [ApplicationOrderBy!]) { applications(orderBy: $o, first: 3) { nodes { code } } }",
            json!({ "o": ["VERTICAL_ASC", "NAV_ORDER_DESC"] }),
        )
        .await;
    let first3: Vec<&str> = data["applications"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["code"].as_str())
        .collect();
    // vertical "a": navOrder 2 (a03, a08 by id), then navOrder 1 (a06).
    assert_eq!(first3, ["a03", "a08", "a06"]);
}

crate::both!(keyset_pages_survive_an_insert_and_a_delete_between_pages);

/// Paging by name: between two pages a row is inserted before the cursor and one of the first
/// page's rows is deleted (an offset cursor would then repeat a row and skip another), and a
/// row is inserted after the cursor (it must appear). The later pages are exactly the rows
/// after the first page's last one.
async fn keyset_pages_survive_an_insert_and_a_delete_between_pages(app: TestApp) {
    seed(&app).await;
    let executor = app.replica(|c| c.planned_reads = false).await;
    let mut round = 0;
    for server in [&app, &executor] {
        round += 1;
        let first = page(server, "first: 4, orderBy: [NAME_ASC]").await;
        let first_rows = nodes(&first);
        assert_eq!(codes(&first_rows).len(), 4, "first page: {first:#}");
        assert_eq!(first["pageInfo"]["hasNextPage"], json!(true));
        assert_eq!(first["pageInfo"]["hasPreviousPage"], json!(false));
        let cursor = first["pageInfo"]["endCursor"]
            .as_str()
            .expect("endCursor")
            .to_string();
        assert_eq!(
            first["edges"][3]["cursor"].as_str(),
            Some(cursor.as_str()),
            "the last edge's cursor is the end cursor"
        );

        // Between the pages: one row before the cursor, one after, one of page 1 deleted.
        create_app(server, &format!("b{round}0"), "Aardvark", None, 0).await;
        create_app(server, &format!("b{round}1"), "Zulu", None, 0).await;
        let deleted = first_rows[1]["id"].as_str().expect("id").to_string();
        server
            .ok(
                &server.admin(),
                Some("acme"),
                "mutation($id: ID!) { deleteApplication(id: $id) }",
                json!({ "id": deleted }),
            )
            .await;

        let mut seen: Vec<String> = Vec::new();
        let mut after = cursor.clone();
        let mut pages = 0;
        loop {
            let next = page(
                server,
                &format!("first: 3, after: \"{after}\", orderBy: [NAME_ASC]"),
            )
            .await;
            pages += 1;
            assert_eq!(next["pageInfo"]["hasPreviousPage"], json!(true));
            let total = all(server).await.len() as u64;
            assert_eq!(next["totalCount"].as_u64(), Some(total));
            seen.extend(codes(&nodes(&next)));
            if next["pageInfo"]["hasNextPage"] != json!(true) {
                break;
            }
            after = next["pageInfo"]["endCursor"]
                .as_str()
                .expect("endCursor")
                .to_string();
            assert!(pages < 10, "paging ends");
        }
        // What follows the first page's last name now, read whole.
        let last_name = first_rows[3]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mut now = all(server).await;
        now.sort_by(by("name", false));
        let expected: Vec<String> = codes(
            &now.into_iter()
                .filter(|r| r["name"].as_str().unwrap_or_default() > last_name.as_str())
                .collect::<Vec<_>>(),
        );
        assert_eq!(seen, expected, "no duplicate, no skip");
        assert!(
            seen.contains(&format!("b{round}1")),
            "the row inserted after the cursor"
        );
        assert!(
            !seen.contains(&format!("b{round}0")),
            "the row inserted before it"
        );
        for row in &first_rows {
            let code = row["code"].as_str().unwrap_or_default().to_string();
            assert!(!seen.contains(&code), "{code} came again");
        }
        // The cursor still works for its row's place though the row behind it is gone.
        let still = page(
            server,
            &format!("first: 1, after: \"{cursor}\", orderBy: [NAME_ASC]"),
        )
        .await;
        assert_eq!(codes(&nodes(&still)), expected[..1]);
    }
}

crate::both!(last_and_before_page_backwards);

async fn last_and_before_page_backwards(app: TestApp) {
    seed(&app).await;
    let executor = app.replica(|c| c.planned_reads = false).await;
    let mut rows = all(&app).await;
    rows.sort_by(|a, b| by("navOrder", true)(a, b).then_with(|| uuid(b).cmp(&uuid(a))));
    let expected = codes(&rows);
    for server in [&app, &executor] {
        let order = "orderBy: [NAV_ORDER_DESC]";
        let tail = page(server, &format!("last: 3, {order}")).await;
        assert_eq!(codes(&nodes(&tail)), expected[7..]);
        assert_eq!(tail["pageInfo"]["hasNextPage"], json!(false));
        assert_eq!(tail["pageInfo"]["hasPreviousPage"], json!(true));
        let start = tail["pageInfo"]["startCursor"]
            .as_str()
            .expect("cursor")
            .to_string();
        let before = page(server, &format!("last: 3, before: \"{start}\", {order}")).await;
        assert_eq!(codes(&nodes(&before)), expected[4..7]);
        assert_eq!(before["pageInfo"]["hasPreviousPage"], json!(true));
        assert_eq!(before["pageInfo"]["hasNextPage"], json!(true));
        let start = before["pageInfo"]["startCursor"]
            .as_str()
            .expect("cursor")
            .to_string();
        let head = page(server, &format!("last: 10, before: \"{start}\", {order}")).await;
        assert_eq!(codes(&nodes(&head)), expected[..4]);
        assert_eq!(head["pageInfo"]["hasPreviousPage"], json!(false));
        // Between two cursors.
        let a = before["edges"][0]["cursor"]
            .as_str()
            .expect("cursor")
            .to_string();
        let b = tail["edges"][1]["cursor"]
            .as_str()
            .expect("cursor")
            .to_string();
        let between = page(server, &format!("after: \"{a}\", before: \"{b}\", {order}")).await;
        assert_eq!(codes(&nodes(&between)), expected[5..8]);
        assert_eq!(between["totalCount"].as_u64(), Some(10));
    }
}

crate::both!(bad_and_foreign_cursors_are_bad_user_input);

async fn bad_and_foreign_cursors_are_bad_user_input(app: TestApp) {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    seed(&app).await;
    let executor = app.replica(|c| c.planned_reads = false).await;
    let by_name = page(&app, "first: 2, orderBy: [NAME_ASC]").await;
    let name_cursor = by_name["pageInfo"]["endCursor"]
        .as_str()
        .expect("cursor")
        .to_string();
    let tenants = app
        .ok(
            &app.admin(),
            None,
            "{ tenants(first: 1) { pageInfo { endCursor } } }",
            json!({}),
        )
        .await;
    let tenant_cursor = tenants["tenants"]["pageInfo"]["endCursor"]
        .as_str()
        .expect("cursor")
        .to_string();
    let offset = URL_SAFE_NO_PAD.encode("cursor:3");
    let tampered = {
        let mut json: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&name_cursor).expect("base64"))
                .expect("json");
        json["v"] = json!(99);
        URL_SAFE_NO_PAD.encode(json.to_string())
    };
    for server in [&app, &executor] {
        for (args, why) in [
            ("after: \"nope\"".to_string(), "garbage"),
            (
                format!("after: \"{offset}\""),
                "an offset cursor of the old format",
            ),
            (
                format!("after: \"{name_cursor}\", orderBy: [CODE_ASC]"),
                "another order",
            ),
            (
                format!("before: \"{name_cursor}\""),
                "the default order is another order",
            ),
            (
                format!("after: \"{tenant_cursor}\", orderBy: [NAME_ASC]"),
                "another list",
            ),
            (
                format!("after: \"{tampered}\", orderBy: [NAME_ASC]"),
                "another version",
            ),
        ] {
            let body = server
                .gql(
                    &server.admin(),
                    Some("acme"),
                    &format!("{{ applications({args}) {{ nodes {{ id }} }} }}"),
                    json!({}),
                )
                .await;
            assert_eq!(
                code(&body).as_deref(),
                Some("BAD_USER_INPUT"),
                "{why}: {body}"
            );
            let text = body.to_string().to_lowercase();
            assert!(!text.contains("select") && !text.contains("sql"), "{text}");
        }
        // The same cursor in its own order is fine.
        let ok = page(
            server,
            &format!("first: 2, after: \"{name_cursor}\", orderBy: [NAME_ASC]"),
        )
        .await;
        assert_eq!(nodes(&ok).len(), 2);
    }
}

crate::both!(tenants_take_order_by_and_keyset_cursors);

async fn tenants_take_order_by_and_keyset_cursors(app: TestApp) {
    for slug in ["delta", "alpha", "echo", "bravo", "charlie"] {
        app.create_tenant(slug).await;
    }
    let admin = app.admin();
    let all = app
        .ok(
            &admin,
            None,
            "{ tenants(first: 100) { nodes { slug status } } }",
            json!({}),
        )
        .await;
    let mut slugs: Vec<String> = all["tenants"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["slug"].as_str().map(str::to_string))
        .collect();
    slugs.sort();
    slugs.reverse();
    let query = "query($after: String) { tenants(first: 2, after: $after, orderBy: [SLUG_DESC]) { \
                 totalCount nodes { slug } pageInfo { hasNextPage hasPreviousPage endCursor } } }";
    let mut seen = Vec::new();
    let mut after = Value::Null;
    let mut late = 0;
    loop {
        let data = app.ok(&admin, None, query, json!({ "after": after })).await;
        let t = &data["tenants"];
        assert_eq!(t["totalCount"].as_u64(), Some(slugs.len() as u64 + late));
        assert_eq!(t["pageInfo"]["hasPreviousPage"], json!(!seen.is_empty()));
        seen.extend(
            t["nodes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| n["slug"].as_str().map(str::to_string)),
        );
        if t["pageInfo"]["hasNextPage"] != json!(true) {
            break;
        }
        after = t["pageInfo"]["endCursor"].clone();
        // A tenant created between two pages, sorting before the cursor, does not shift them.
        if seen.len() == 2 {
            app.create_tenant("zz-late").await;
            late = 1;
        }
    }
    assert_eq!(seen, slugs, "every tenant once, by slug descending");
    // Several columns: status, then slug.
    let data = app
        .ok(
            &admin,
            None,
            "{ tenants(orderBy: [STATUS_ASC, SLUG_ASC]) { nodes { slug status } } }",
            json!({}),
        )
        .await;
    let rows: Vec<(String, String)> = data["tenants"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| {
            (
                n["status"].as_str().unwrap_or_default().to_string(),
                n["slug"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let mut sorted = rows.clone();
    sorted.sort();
    assert_eq!(rows, sorted);
    let body = app
        .gql(
            &admin,
            None,
            "{ tenants(after: \"nope\") { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&body).as_deref(), Some("BAD_USER_INPUT"));
}
