//! GraphQL over HTTP as its spec has it: the `graphql-http` audit suite (npm, the spec's
//! own conformance checks) with no failure and no warning, content negotiation and its
//! status codes, GET for queries only, and bounded batches.

use prima_tests::{Role, TestApp};
use reqwest::StatusCode;
use serde_json::{Value, json};

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

fn content_type(response: &reqwest::Response) -> String {
    response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned()
}

async fn post(app: &TestApp, accept: Option<&str>, body: Value) -> reqwest::Response {
    let mut request = reqwest::Client::new().post(app.url("/graphql")).json(&body);
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn the_graphql_http_audit_finds_no_failure_and_no_warning() {
    prima_tests::node::ready().await;
    let app = TestApp::empty().await;
    let counts = prima_tests::node::run_json(
        "audit.mjs",
        &[&app.url("/graphql")],
        std::time::Duration::from_secs(60),
    )
    .await;
    eprintln!("graphql-http audit: {counts}");
    assert_eq!(counts["error"], 0, "{counts:#}");
    assert_eq!(counts["warn"], 0, "{counts:#}");
    assert!(counts["pass"].as_u64().unwrap() >= 50, "{counts:#}");
}

#[tokio::test]
async fn the_answer_is_in_the_media_type_asked_for_with_its_status_rules() {
    let app = TestApp::empty().await;
    for accept in [None, Some("application/json"), Some("*/*")] {
        let answer = post(&app, accept, json!({ "query": "{ __typename }" })).await;
        assert_eq!(answer.status(), StatusCode::OK);
        assert!(
            content_type(&answer).starts_with("application/json"),
            "{accept:?}"
        );
    }
    // A request error: 200 with application/json, 400 with the new media type, and no
    // `data` entry either way.
    let bad = json!({ "query": "{ noSuchField }" });
    let answer = post(&app, Some("application/json"), bad.clone()).await;
    assert_eq!(answer.status(), StatusCode::OK);
    let body: Value = answer.json().await.unwrap();
    assert!(
        body.get("data").is_none() && body["errors"].is_array(),
        "{body}"
    );
    let answer = post(&app, Some(GRAPHQL_RESPONSE), bad).await;
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    assert!(content_type(&answer).starts_with(GRAPHQL_RESPONSE));
    let body: Value = answer.json().await.unwrap();
    assert!(body.get("data").is_none(), "{body}");
    // A field error is not a request error: data, and 200.
    let answer = post(
        &app,
        Some(GRAPHQL_RESPONSE),
        json!({ "query": "{ me { user { id } } }" }),
    )
    .await;
    assert_eq!(answer.status(), StatusCode::OK);
    let body: Value = answer.json().await.unwrap();
    assert!(body.get("data").is_some(), "{body}");
    // Neither type acceptable; not JSON; no body type.
    let answer = post(
        &app,
        Some("text/plain"),
        json!({ "query": "{ __typename }" }),
    )
    .await;
    assert_eq!(answer.status(), StatusCode::NOT_ACCEPTABLE);
    let answer = reqwest::Client::new()
        .post(app.url("/graphql"))
        .header("content-type", "text/plain")
        .body(r#"{"query":"{ __typename }"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "UNSUPPORTED_MEDIA_TYPE"
    );
}

#[tokio::test]
async fn a_get_runs_a_query_and_never_a_mutation() {
    let app = TestApp::empty().await;
    let venue = app.venue().create().await;
    let manager = app.user_with_role(&venue, Role::Manager).await;
    let client = reqwest::Client::new();
    let get = |query: &str, operation: Option<&str>| {
        let mut params = vec![("query", query.to_owned())];
        if let Some(name) = operation {
            params.push(("operationName", name.to_owned()));
        }
        client
            .get(app.url("/graphql"))
            .query(&params)
            .header("accept", "application/json")
            .bearer_auth(&manager.token)
    };
    let answer = get(
        "{ venue(id: \"%\") { id } }".replace('%', &venue).as_str(),
        None,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["data"]["venue"]["id"], venue.as_str(), "{body}");
    let guests = || async {
        app.query_ok(
            &manager.token,
            "query($v: ID!) { venue(id: $v) { guests(first: 5) { totalCount } } }",
            json!({ "v": venue }),
        )
        .await["venue"]["guests"]["totalCount"]
            .clone()
    };
    let before = guests().await;
    let mutation = format!(
        "query Q {{ __typename }} mutation M {{ createGuest(input: {{ venueId: \"{venue}\", \
         firstName: \"Get\", lastName: \"Request\", email: \"get@example.com\" }}) {{ guest {{ id }} }} }}"
    );
    let answer = get(&mutation, Some("M")).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::METHOD_NOT_ALLOWED);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "METHOD_NOT_ALLOWED",
        "{body}"
    );
    assert_eq!(guests().await, before, "nothing was created");
    // The same document's query runs.
    let answer = get(&mutation, Some("Q")).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_batch_runs_each_operation_in_order_under_the_limits_and_is_bounded() {
    let app = TestApp::empty().await;
    let venue = app.venue().named("Before").create().await;
    let owner = app.user_with_role(&venue, Role::Owner).await;
    let name = "query($v: ID!) { venue(id: $v) { name } }";
    let rename = "mutation($v: ID!) { updateVenue(input: { venueId: $v, name: \"After\" }) { venue { name } } }";
    let batch = json!([
        { "query": name, "variables": { "v": venue } },
        { "query": rename, "variables": { "v": venue } },
        { "query": name, "variables": { "v": venue } },
        { "query": "{ noSuchField }" },
    ]);
    let answer = reqwest::Client::new()
        .post(app.url("/graphql"))
        .bearer_auth(&owner.token)
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let answers: Vec<Value> = answer.json().await.unwrap();
    assert_eq!(answers.len(), 4);
    let named = |answer: &Value| answer["data"]["venue"]["name"].clone();
    assert_eq!(named(&answers[0]), "Before", "{answers:?}");
    assert_eq!(
        answers[1]["data"]["updateVenue"]["venue"]["name"], "After",
        "{answers:?}"
    );
    assert_eq!(
        named(&answers[2]),
        "After",
        "the later query sees the mutation"
    );
    assert!(answers[3].get("data").is_none() && answers[3]["errors"].is_array());
    // Each is charged on its own.
    for answer in &answers[..3] {
        assert!(
            answer["extensions"]["cost"]["requested"].is_number(),
            "{answer}"
        );
    }
    let over: Vec<Value> = (0..=prima_server::over_http::MAX_BATCH)
        .map(|_| json!({ "query": "{ __typename }" }))
        .collect();
    let answer = post(&app, None, Value::Array(over)).await;
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    let answer = post(&app, None, json!([])).await;
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
}
