//! Request limits (issue "Hardening"): nothing an anonymous or low-role caller sends can
//! crash the server or make it do unbounded work. Every refusal comes before any SQL.

use prima_tests::{Role, TestApp, error_codes};
use serde_json::{Value, json};

/// A server with one venue and its owner: `(app, venue, owner's token)`.
async fn owner_of_a_venue(app: TestApp) -> (TestApp, String, String) {
    let venue = app.venue().create().await;
    let owner = app.user_with_role(&venue, Role::Owner).await.token;
    (app, venue, owner)
}

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

/// Sends `body` as a chunked HTTP/1.1 request (no Content-Length) and returns the status.
async fn chunked_status(app: &TestApp, body: &[u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /graphql HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n",
        app.addr
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.chunks(64 * 1024) {
        let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
        // The server may answer and close before the whole body is sent.
        if stream.write_all(&framed).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {answer:?}"))
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

    // Streamed without a Content-Length (chunked): cut off as it arrives.
    assert_eq!(chunked_status(&app, huge.as_bytes()).await, 413);
    still_serving(&app).await;
}

#[tokio::test]
async fn a_document_too_long_or_with_too_many_tokens_is_refused() {
    let app = TestApp::empty().await;
    let long = format!("{{ __typename }} # {}", "x".repeat(70 * 1024));
    let response = app.graphql(None, &long, json!({})).await;
    assert_eq!(limit(&response), "documentBytes", "{response}");
    let many = format!("{{ {} }}", "a ".repeat(11_000));
    let response = app.graphql(None, &many, json!({})).await;
    assert_eq!(limit(&response), "tokens", "{response}");
}

#[tokio::test]
async fn plain_lists_count_in_the_cost_so_the_payout_loop_is_refused_before_any_sql() {
    // A payout of a promoter's commissions at the owner's venue.
    let app = TestApp::empty().await;
    let venue = app.bookable_venue().await;
    let token = app.user_with_role(&venue, Role::Owner).await.token;
    let promoter = app
        .promoter(&venue)
        .with_commission("FLAT_RATE", "15")
        .create()
        .await;
    let guest = app.guest(&venue).await;
    let booking = app.booking_by(&venue, &guest, &promoter).await;
    let id = app.payout(&venue, &promoter, &[booking]).await;
    // The owner sees it, with its item.
    let payout = app
        .query_ok(
            &token,
            "query($id: ID!) { payout(id: $id) { items(first: 10) { nodes { id } } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        payout["payout"]["items"]["nodes"].as_array().unwrap().len(),
        1,
        "{payout}"
    );
    // The loop that ran 61 s and answered 329 MB as plain lists, now with full pages.
    let query = "query($id: ID!) { payout(id: $id) { items(first: 100) { nodes { transaction {
        payout { items(first: 100) { nodes { transaction { payout { items(first: 100) {
        nodes { id } } } } } } } } } } } }";
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
        .graphql(None, &format!("{{ me {{ {aliases} }} }}"), json!({}))
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
    let app = TestApp::empty().await;
    let email = app.staff().await.email;
    let started = std::time::Instant::now();
    let logins: String = (0..1000)
        .map(|i| format!("l{i}: login(email: \"{email}\", password: \"wrong\") {{ token }} "))
        .collect();
    let response = app
        .graphql(None, &format!("mutation {{ {logins} }}"), json!({}))
        .await;
    assert_eq!(error_codes(&response), ["LIMIT_EXCEEDED"], "{response}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let two = format!(
        "mutation {{ a: login(email: \"{email}\", password: \"x\") {{ token }} \
         b: login(email: \"{email}\", password: \"y\") {{ token }} }}"
    );
    let response = app.graphql(None, &two, json!({})).await;
    assert_eq!(limit(&response), "logins", "{response}");
    let through_fragments = "mutation { ...L ...M } \
        fragment L on Mutation { login(email: \"a@b.c\", password: \"x\") { token } } \
        fragment M on Mutation { again: login(email: \"a@b.c\", password: \"y\") { token } }";
    let response = app.graphql(None, through_fragments, json!({})).await;
    assert_eq!(limit(&response), "logins", "{response}");
}

#[tokio::test]
async fn a_huge_search_string_is_bad_user_input_naming_the_field() {
    let (app, _, token) = owner_of_a_venue(TestApp::empty().await).await;
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
    let (app, venue, token) = owner_of_a_venue(TestApp::empty().await).await;
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
    let (app, _, token) = owner_of_a_venue(TestApp::empty().await).await;
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
    // Introspection nested on itself costs what it returns; five copies of a deep one
    // are more than the budget, and refused rather than answered.
    let nested = "{ __schema { a: types { ...T } b: types { ...T } c: types { ...T }
        d: types { ...T } e: types { ...T } } }
        fragment T on __Type { fields { type { ofType { fields { type { ofType {
        fields { type { ofType { fields { name } } } } } } } } } } }";
    let response = app.graphql(None, nested, json!({})).await;
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

#[tokio::test]
async fn each_user_spends_a_budget_of_cost_points_and_is_throttled_when_it_runs_out() {
    let mut args = prima_server::config::ServeArgs::default();
    args.limits.rate_limit_points = 100;
    args.limits.rate_limit_refill_per_sec = 1;
    let (app, venue, owner) = owner_of_a_venue(TestApp::empty_with(args).await).await;
    let manager = app.user_with_role(&venue, Role::Manager).await.token;
    // 1 + 20 + 20 points.
    let query = "{ venues { nodes { id } } }";
    let first = app.graphql(Some(&owner), query, json!({})).await;
    assert!(first["errors"].is_null(), "{first}");
    let throttle = &first["extensions"]["cost"]["throttle"];
    assert_eq!(throttle["capacity"], 100);
    assert_eq!(throttle["refillPerSecond"], 1);
    assert!(throttle["remaining"].as_u64().unwrap() <= 59, "{throttle}");
    let second = app.graphql(Some(&owner), query, json!({})).await;
    assert!(second["errors"].is_null(), "{second}");

    let before = app.statements();
    let response = reqwest::Client::new()
        .post(app.url("/graphql"))
        .bearer_auth(&owner)
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap();
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let third: Value = response.json().await.unwrap();
    assert_eq!(error_codes(&third), ["THROTTLED"], "{third}");
    let told = third["errors"][0]["extensions"]["retryAfter"]
        .as_u64()
        .unwrap();
    assert_eq!(told, retry_after);
    assert!((1..=41).contains(&told), "{third}");
    assert!(third["data"].is_null());
    assert!(app.statements() - before <= 2, "only authentication ran");

    // Another user has a budget of their own.
    let other = app.graphql(Some(&manager), query, json!({})).await;
    assert!(other["errors"].is_null(), "{other}");
}
