//! Bad input gets a clear error, never a 500 or a panic. The caller is the owner of a venue
//! the test builds.

use prima_tests::{Role, TestApp, error_codes};
use serde_json::json;

/// A server with one venue and its owner's token.
async fn owner_of_a_venue() -> (TestApp, String) {
    let app = TestApp::empty().await;
    let venue = app.venue().create().await;
    let owner = app.user_with_role(&venue, Role::Owner).await.token;
    (app, owner)
}

#[tokio::test]
async fn malformed_and_unknown_queries_get_clear_errors() {
    let (app, token) = owner_of_a_venue().await;
    let malformed = app
        .graphql(Some(&token), "{ venues { edges { node { id }", json!({}))
        .await;
    assert!(
        malformed["errors"][0]["message"].as_str().unwrap().len() > 10,
        "{malformed}"
    );
    let unknown = app
        .graphql(
            Some(&token),
            "{ venues { edges { node { nope } } } }",
            json!({}),
        )
        .await;
    let message = unknown["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("nope"), "{message}");
}

#[tokio::test]
async fn a_query_deeper_than_the_limit_is_refused() {
    let (app, token) = owner_of_a_venue().await;
    // Page sizes of 1 keep the complexity low: only the depth is over its limit.
    let mut query = String::from("{ me { user { id } } venues(first: 1) { edges { node { id ");
    for _ in 0..6 {
        query.push_str("bookings(first: 1) { edges { node { venue { ");
    }
    query.push_str("id ");
    query.push_str(&"} } } } ".repeat(6));
    query.push_str("} } } }");
    let response = app.graphql(Some(&token), &query, json!({})).await;
    let message = response["errors"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("nested too deep"), "{response}");
    assert_eq!(
        response["errors"][0]["extensions"]["code"],
        "LIMIT_EXCEEDED"
    );
    assert_eq!(response["errors"][0]["extensions"]["limit"], "depth");
    assert!(response["data"].is_null());
}

#[tokio::test]
async fn a_page_over_one_hundred_is_bad_user_input_naming_the_argument() {
    let (app, token) = owner_of_a_venue().await;
    let response = app
        .graphql(
            Some(&token),
            "{ venues(first: 1000) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(error_codes(&response), ["BAD_USER_INPUT"]);
    assert_eq!(response["errors"][0]["extensions"]["field"], "first");
    let response = app
        .graphql(
            Some(&token),
            "{ venues(first: 2) { edges { node { bookings(first: 101) { totalCount } } } } }",
            json!({}),
        )
        .await;
    // Nested under the owner's venue, so the page is asked for.
    let codes = error_codes(&response);
    assert!(!codes.is_empty(), "{response}");
    assert!(codes.iter().all(|c| c == "BAD_USER_INPUT"), "{response}");
}

#[tokio::test]
async fn a_malformed_id_or_cursor_is_bad_user_input() {
    let (app, token) = owner_of_a_venue().await;
    let response = app
        .graphql(
            Some(&token),
            "{ venue(id: \"not-a-uuid\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(error_codes(&response), ["BAD_USER_INPUT"]);
    assert_eq!(response["errors"][0]["extensions"]["field"], "id");
    let response = app
        .graphql(
            Some(&token),
            "{ venues(after: \"garbage\") { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(error_codes(&response), ["BAD_USER_INPUT"]);
    assert_eq!(response["errors"][0]["extensions"]["field"], "after");
}

#[tokio::test]
async fn a_body_that_is_not_graphql_gets_a_400_in_graphql_error_shape() {
    let app = TestApp::empty().await;
    let response = reqwest::Client::new()
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body("{ this is not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_REQUEST");
}

#[tokio::test]
async fn a_query_too_costly_for_its_page_sizes_is_refused_before_any_sql() {
    let (app, token) = owner_of_a_venue().await;
    let before = app.statements();
    let response = app
        .graphql(
            Some(&token),
            "{ venues(first: 100) { edges { node { bookings(first: 100) { edges { node {
                id diners status totalFee { amount currency } guest { id firstName lastName }
            } } } } } } }",
            json!({}),
        )
        .await;
    let message = response["errors"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("costs more than"), "{response}");
    assert_eq!(
        response["errors"][0]["extensions"]["code"],
        "LIMIT_EXCEEDED"
    );
    assert_eq!(response["errors"][0]["extensions"]["limit"], "cost");
    // Only authentication ran (the caller is loaded before the query is validated).
    assert!(app.statements() - before <= 2);
}
