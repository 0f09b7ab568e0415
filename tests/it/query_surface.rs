//! The query surface of a connection: `where` with operators per column type, combined with
//! `and`/`or`/`not`, on both databases. Each answer is checked against the same rows read whole
//! and filtered here.

use serde_json::{Value, json};

use crate::harness::TestApp;

/// Every application of tenant `bench` (50, from the nested query's data), with the fields the
/// conditions below look at.
async fn applications(app: &TestApp, condition: &str) -> Vec<Value> {
    let query = format!(
        "{{ applications(first: 1000{condition}) {{ totalCount nodes {{ id code name description navOrder isActive createdAt }} }} }}"
    );
    let data = app.ok(&app.admin(), Some("bench"), &query, json!({})).await;
    let nodes = data["applications"]["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        data["applications"]["totalCount"].as_u64(),
        Some(nodes.len() as u64),
        "totalCount counts what `where` keeps: {condition}"
    );
    nodes
}

fn ids(rows: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = rows
        .iter()
        .map(|r| r["id"].as_str().unwrap_or_default().to_string())
        .collect();
    ids.sort();
    ids
}

crate::both!(where_operators_combine_like_the_rows_say);

async fn where_operators_combine_like_the_rows_say(app: TestApp) {
    forklift::synthetic::nested_query_tenant(&app.state)
        .await
        .expect("seeded");
    let all = applications(&app, "").await;
    assert_eq!(all.len(), 50);
    let pick = |f: &dyn Fn(&Value) -> bool| -> Vec<String> {
        ids(&all.iter().filter(|r| f(r)).cloned().collect::<Vec<_>>())
    };
    let code = |i: usize| all[i]["code"].as_str().unwrap_or_default().to_string();
    let (a, b) = (code(3), code(7));

    let cases: Vec<(String, Vec<String>)> = vec![
        (
            format!(r#"{{ code: {{ in: ["{a}", "{b}"] }} }}"#),
            pick(&|r| r["code"] == a || r["code"] == b),
        ),
        (
            format!(r#"{{ code: {{ notIn: ["{a}"] }} }}"#),
            pick(&|r| r["code"] != a),
        ),
        (
            format!(r#"{{ or: [{{ code: {{ eq: "{a}" }} }}, {{ code: {{ eq: "{b}" }} }}] }}"#),
            pick(&|r| r["code"] == a || r["code"] == b),
        ),
        (
            format!(r#"{{ not: {{ code: {{ eq: "{a}" }} }} }}"#),
            pick(&|r| r["code"] != a),
        ),
        (
            format!(
                r#"{{ and: [{{ code: {{ startsWith: "{}" }} }}, {{ code: {{ ne: "{a}" }} }}] }}"#,
                &a[..a.len() - 1]
            ),
            pick(&|r| {
                let c = r["code"].as_str().unwrap_or_default();
                c.starts_with(&a[..a.len() - 1]) && c != a
            }),
        ),
        (
            format!(r#"{{ code: {{ contains: "{}" }} }}"#, &a[2..a.len() - 1]),
            pick(&|r| {
                r["code"]
                    .as_str()
                    .unwrap_or_default()
                    .contains(&a[2..a.len() - 1])
            }),
        ),
        (
            format!(
                r#"{{ code: {{ containsInsensitive: "{}" }} }}"#,
                a.to_uppercase()
            ),
            pick(&|r| {
                r["code"]
                    .as_str()
                    .unwrap_or_default()
                    .to_lowercase()
                    .contains(&a.to_lowercase())
            }),
        ),
        // Wildcards are text: `%` and `_` match only themselves.
        (r#"{ code: { contains: "%" } }"#.to_string(), Vec::new()),
        (r#"{ code: { startsWith: "_" } }"#.to_string(), Vec::new()),
        (
            r#"{ navOrder: { gte: 10, lt: 20 } }"#.to_string(),
            pick(&|r| (10..20).contains(&r["navOrder"].as_i64().unwrap_or(-1))),
        ),
        (
            r#"{ description: { isNull: true } }"#.to_string(),
            pick(&|r| r["description"].is_null()),
        ),
        (
            r#"{ description: { isNull: false }, isActive: { eq: true } }"#.to_string(),
            pick(&|r| !r["description"].is_null() && r["isActive"] == true),
        ),
        (
            format!(r#"{{ createdAt: {{ lte: {} }} }}"#, all[0]["createdAt"]),
            pick(&|r| r["createdAt"].as_str() <= all[0]["createdAt"].as_str()),
        ),
        // A null operand adds no condition; an empty `or` holds for nothing.
        (r#"{ code: { eq: null } }"#.to_string(), ids(&all)),
        (r#"{ or: [] }"#.to_string(), Vec::new()),
    ];
    for (condition, expected) in cases {
        let got = ids(&applications(&app, &format!(", where: {condition}")).await);
        assert_eq!(got, expected, "where: {condition}");
    }

    // Together with `filter`, both hold.
    let got = ids(&applications(
        &app,
        &format!(r#", filter: {{ code: "{a}" }}, where: {{ code: {{ eq: "{b}" }} }}"#),
    )
    .await);
    assert!(got.is_empty());

    // A value of the wrong type is the caller's error.
    let body = app
        .gql(
            &app.admin(),
            Some("bench"),
            r#"{ applications(where: { navOrder: { lt: "x" } }) { totalCount } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        crate::harness::code(&body).as_deref(),
        Some("BAD_USER_INPUT"),
        "{body}"
    );
}
