//! Request limits (issue "Hardening"): nothing an anonymous or low-role caller sends can
//! crash the server or make it do unbounded work. Every refusal comes before any SQL.

use prima_tests::{TestApp, error_codes};
use serde_json::{Value, json};

/// The limit a refused request names.
fn limit(response: &Value) -> &str {
    response["errors"][0]["extensions"]["limit"]
        .as_str()
        .unwrap_or_default()
}

async fn post_raw(app: &TestApp, body: Vec<u8>) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("the server answers")
}

/// The server still answers after whatever was sent.
async fn still_serving(app: &TestApp) {
    let response = app.graphql(None, "{ __typename }", json!({})).await;
    assert_eq!(response["data"]["__typename"], "Query", "{response}");
}

#[tokio::test]
async fn an_argument_nested_fifteen_hundred_deep_is_refused_and_the_server_lives_on() {
    let app = TestApp::empty().await;
    // The 3 KB request that used to overflow a worker's stack and abort the process.
    let list = format!(
        "{{ venue(id: {}1{}) {{ id }} }}",
        "[".repeat(1500),
        "]".repeat(1500)
    );
    let response = app.graphql(None, &list, json!({})).await;
    assert_eq!(error_codes(&response), ["LIMIT_EXCEEDED"], "{response}");
    assert_eq!(limit(&response), "inputDepth");
    let object = format!(
        "mutation {{ createGuest(input: {}1{}) {{ guest {{ id }} }} }}",
        "{a: ".repeat(1500),
        "}".repeat(1500)
    );
    let response = app.graphql(None, &object, json!({})).await;
    assert_eq!(limit(&response), "inputDepth", "{response}");
    still_serving(&app).await;
}

#[tokio::test]
async fn deeply_nested_selections_and_variables_are_refused_before_parsing() {
    let app = TestApp::empty().await;
    let selections = format!("{}{}", "{ me ".repeat(2000), "}".repeat(2000));
    let response = app.graphql(None, &selections, json!({})).await;
    assert_eq!(limit(&response), "depth", "{response}");
    let mut deep = json!(1);
    for _ in 0..100 {
        deep = json!([deep]);
    }
    let response = app
        .graphql(
            None,
            "query($v: ID!) { venue(id: $v) { id } }",
            json!({ "v": deep }),
        )
        .await;
    assert_eq!(limit(&response), "inputDepth", "{response}");
    still_serving(&app).await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_whether_or_not_it_says_its_length() {
    let app = TestApp::empty().await;
    let huge = format!("{{\"query\": \"{{ {} }}\"}}", "__typename ".repeat(200_000));
    assert!(huge.len() > 1024 * 1024);
    let response = post_raw(&app, huge.clone().into_bytes()).await;
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "PAYLOAD_TOO_LARGE");

    // Streamed without a Content-Length: cut off as it arrives.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = huge
        .into_bytes()
        .chunks(64 * 1024)
        .map(|chunk| Ok(chunk.to_vec()))
        .collect();
    let response = reqwest::Client::new()
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    still_serving(&app).await;
}

#[tokio::test]
async fn a_document_too_long_or_with_too_many_tokens_is_refused() {
    let app = TestApp::empty().await;
    let long = format!("{{ __typename }} # {}", "x".repeat(70 * 1024));
    let response = app.graphql(None, &long, json!({})).await;
    assert_eq!(limit(&response), "documentBytes", "{response}");
    let many = format!("{{ {} }}", "__typename ".repeat(11_000));
    let response = app.graphql(None, &many, json!({})).await;
    assert_eq!(limit(&response), "tokens", "{response}");
}

#[tokio::test]
async fn plain_lists_count_in_the_cost_so_the_payout_loop_is_refused_before_any_sql() {
    let app = TestApp::demo(200).await;
    let token = app.login("owner@prima.demo").await;
    let payouts = app
        .query_ok(
            &token,
            "{ venues(first: 10) { edges { node { payouts(first: 1) { edges { node { id } } } } } } }",
            json!({}),
        )
        .await;
    let id = payouts["venues"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|venue| venue["node"]["payouts"]["edges"][0]["node"]["id"].as_str())
        .expect("a demo payout")
        .to_owned();
    // The 238-byte query that ran 61 s and answered 329 MB.
    let query = "query($id: ID!) { payout(id: $id) { items { edges { node { transaction { payout { items { edges { node { transaction { payout { items { edges { node { transaction { payout { id } } } } } } } } } } } } } } } } }";
    let before = app.statements();
    let response = app.graphql(Some(&token), query, json!({ "id": id })).await;
    assert_eq!(error_codes(&response), ["LIMIT_EXCEEDED"], "{response}");
    assert_eq!(limit(&response), "cost");
    assert!(response["data"].is_null());
    assert!(app.statements() - before <= 2, "only authentication ran");
    assert!(
        response["extensions"]["cost"]["requested"]
            .as_u64()
            .unwrap()
            > 100_000,
        "{response}"
    );
}

#[tokio::test]
async fn aliases_and_root_fields_are_capped_per_operation() {
    let app = TestApp::empty().await;
    let aliases: String = (0..101).map(|i| format!("a{i}: __typename ")).collect();
    let response = app
        .graphql(None, &format!("{{ {aliases} }}"), json!({}))
        .await;
    assert_eq!(limit(&response), "aliases", "{response}");
    let roots = "me { user { id } } ".repeat(31);
    let response = app
        .graphql(None, &format!("{{ {roots} }}"), json!({}))
        .await;
    assert_eq!(limit(&response), "rootFields", "{response}");
}

#[tokio::test]
async fn one_login_per_operation_and_a_thousand_aliased_logins_hash_nothing() {
    let app = TestApp::demo(0).await;
    let started = std::time::Instant::now();
    let logins: String = (0..1000)
        .map(|i| {
            format!("l{i}: login(email: \"owner@prima.demo\", password: \"wrong\") {{ token }} ")
        })
        .collect();
    let response = app
        .graphql(None, &format!("mutation {{ {logins} }}"), json!({}))
        .await;
    assert_eq!(error_codes(&response), ["LIMIT_EXCEEDED"], "{response}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let two = "mutation { a: login(email: \"owner@prima.demo\", password: \"x\") { token } \
               b: login(email: \"owner@prima.demo\", password: \"y\") { token } }";
    let response = app.graphql(None, two, json!({})).await;
    assert_eq!(limit(&response), "logins", "{response}");
    let through_fragments = "mutation { ...L ...M } \
        fragment L on Mutation { login(email: \"a@b.c\", password: \"x\") { token } } \
        fragment M on Mutation { again: login(email: \"a@b.c\", password: \"y\") { token } }";
    let response = app.graphql(None, through_fragments, json!({})).await;
    assert_eq!(limit(&response), "logins", "{response}");
}

#[tokio::test]
async fn a_huge_search_string_is_bad_user_input_naming_the_field() {
    let app = TestApp::demo(20).await;
    let token = app.login("owner@prima.demo").await;
    let response = app
        .graphql(
            Some(&token),
            "query($s: String) { venues(filter: {search: $s}) { totalCount } }",
            json!({ "s": "%".repeat(100_000) }),
        )
        .await;
    assert_eq!(error_codes(&response), ["BAD_USER_INPUT"], "{response}");
    assert_eq!(response["errors"][0]["extensions"]["field"], "search");
}

#[tokio::test]
async fn strings_and_lists_longer_than_their_field_allows_are_bad_user_input() {
    let app = TestApp::demo(20).await;
    let token = app.login("owner@prima.demo").await;
    let venues = app
        .query_ok(
            &token,
            "{ venues(first: 1) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    let venue = venues["venues"]["edges"][0]["node"]["id"].clone();
    let guest = |first_name: String, tags: Vec<String>| {
        json!({ "input": {
            "venueId": venue, "firstName": first_name, "lastName": "B",
            "email": "a@example.com", "tags": tags,
        } })
    };
    let create =
        "mutation($input: CreateGuestInput!) { createGuest(input: $input) { guest { id } } }";
    let before = app.statements();
    let response = app
        .graphql(Some(&token), create, guest("n".repeat(2_001), vec![]))
        .await;
    assert_eq!(error_codes(&response), ["BAD_USER_INPUT"], "{response}");
    assert_eq!(response["errors"][0]["extensions"]["field"], "firstName");
    let response = app
        .graphql(
            Some(&token),
            create,
            guest("A".into(), vec!["t".into(); 101]),
        )
        .await;
    assert_eq!(error_codes(&response), ["BAD_USER_INPUT"], "{response}");
    assert_eq!(response["errors"][0]["extensions"]["field"], "tags");
    assert!(app.statements() - before <= 4, "only authentication ran");
}

#[tokio::test]
async fn every_answer_reports_its_cost_and_graphiql_introspection_fits_the_budget() {
    let app = TestApp::demo(50).await;
    let token = app.login("owner@prima.demo").await;
    let response = app
        .graphql(
            Some(&token),
            "{ venues(first: 10) { edges { node { bookings(first: 50) { edges { node {
                guest { id } promoter { id } transactions { id payout { id } } } } } } } } }",
            json!({}),
        )
        .await;
    assert!(response["errors"].is_null(), "{response}");
    let cost = &response["extensions"]["cost"];
    assert_eq!(cost["maximum"], 100_000);
    let requested = cost["requested"].as_u64().unwrap();
    assert!((30_000..100_000).contains(&requested), "{cost}");
    let introspection = app.graphql(None, INTROSPECTION, json!({})).await;
    assert!(
        introspection["errors"].is_null(),
        "{}",
        introspection["errors"]
    );
    let requested = introspection["extensions"]["cost"]["requested"]
        .as_u64()
        .unwrap();
    assert!(requested < 100_000, "introspection costs {requested}");
    // Introspection nested on itself is refused, not answered.
    let mut nested = String::from("{ __schema { types { ");
    for _ in 0..5 {
        nested.push_str("fields { type { ofType { fields { name ");
    }
    nested.push_str(&"} } } } ".repeat(5));
    nested.push_str("} } }");
    let response = app.graphql(None, &nested, json!({})).await;
    assert_eq!(limit(&response), "cost", "{response}");
}

/// The introspection query GraphiQL sends (graphql-js `getIntrospectionQuery()` shape).
const INTROSPECTION: &str = r#"
query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) {
    name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason
  }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name
    ofType { kind name ofType { kind name ofType { kind name } } } } } } }
}
"#;
