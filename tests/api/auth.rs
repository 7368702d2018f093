//! Logging in, and who gets in: users the tests make, each with the standing it needs.

use prima_tests::{PASSWORD, Role, TestApp, error_codes};
use serde_json::json;

const ME: &str = "{ me { user { email role } venueRoles { role venue { id name } } } }";

#[tokio::test]
async fn a_demo_user_logs_in_and_me_shows_their_venue_roles() {
    let app = TestApp::empty().await;
    let venues = [
        app.venue().create().await,
        app.venue().create().await,
        app.venue().create().await,
    ];
    let owner = app.user_with_role(&venues[0], Role::Owner).await;
    for venue in &venues[1..] {
        app.grant(&owner, venue, Role::Owner).await;
    }
    let token = app.login(&owner.email).await;
    let data = app.query_ok(&token, ME, json!({})).await;
    assert_eq!(data["me"]["user"]["email"], owner.email.as_str());
    let roles = data["me"]["venueRoles"].as_array().unwrap();
    let mut seen: Vec<&str> = roles
        .iter()
        .map(|r| r["venue"]["id"].as_str().unwrap())
        .collect();
    seen.sort_unstable();
    let mut owned: Vec<&str> = venues.iter().map(String::as_str).collect();
    owned.sort_unstable();
    assert_eq!(
        seen, owned,
        "the owner owns each of the three venues: {data}"
    );
    assert!(roles.iter().all(|r| r["role"] == "OWNER"));
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_answer() {
    let app = TestApp::empty().await;
    let user = app.staff().await;
    let login = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }";
    let wrong_password = app
        .graphql(
            None,
            login,
            json!({"e": user.email, "p": "not-the-password"}),
        )
        .await;
    let unknown_email = app
        .graphql(
            None,
            login,
            json!({"e": "nobody@prima.test", "p": PASSWORD}),
        )
        .await;
    assert_eq!(error_codes(&wrong_password), ["UNAUTHENTICATED"]);
    assert_eq!(error_codes(&unknown_email), ["UNAUTHENTICATED"]);
    assert_eq!(
        wrong_password["errors"][0]["message"], unknown_email["errors"][0]["message"],
        "the answer must not reveal whether the email exists"
    );
}

#[tokio::test]
async fn a_suspended_user_cannot_log_in() {
    let app = TestApp::empty().await;
    let venue = app.venue().create().await;
    let user = app.user_with_role(&venue, Role::Coordinator).await;
    app.suspend(&user).await;
    let response = app
        .graphql(
            None,
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
            json!({"e": user.email, "p": PASSWORD}),
        )
        .await;
    assert_eq!(error_codes(&response), ["UNAUTHENTICATED"]);
    assert!(
        response["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("suspended")
    );
}

#[tokio::test]
async fn every_field_but_login_needs_a_token_while_introspection_stays_open() {
    let app = TestApp::empty().await;
    let response = app.graphql(None, ME, json!({})).await;
    assert_eq!(error_codes(&response), ["UNAUTHENTICATED"]);
    let response = app
        .graphql(None, "{ venues { totalCount } }", json!({}))
        .await;
    assert_eq!(error_codes(&response), ["UNAUTHENTICATED"]);
    let response = app
        .graphql(None, "{ __schema { queryType { name } } }", json!({}))
        .await;
    assert_eq!(response["data"]["__schema"]["queryType"]["name"], "Query");
}

#[tokio::test]
async fn a_forged_or_malformed_token_is_unauthenticated() {
    let app = TestApp::empty().await;
    let token = app.staff().await.token;
    // The genuine token gets in; only the tampered ones are refused.
    app.query_ok(&token, ME, json!({})).await;
    let mut forged = token.clone();
    forged.pop();
    forged.push(if token.ends_with('A') { 'B' } else { 'A' });
    for bad in [forged.as_str(), "not-a-token", "v1.e30.AAAA"] {
        let response = app.graphql(Some(bad), ME, json!({})).await;
        assert_eq!(error_codes(&response), ["UNAUTHENTICATED"], "token {bad}");
    }
}

#[tokio::test]
async fn an_expired_token_is_unauthenticated_and_says_so() {
    let app = TestApp::empty().await;
    let tokens = prima_service::auth::Tokens::new(
        prima_service::auth::TokenSecret::new("a-test-secret-of-enough-length"),
        chrono::Duration::seconds(-5),
    );
    let user = app.staff().await;
    // A fresh token of the same user gets in.
    app.query_ok(&user.token, ME, json!({})).await;
    let id: uuid::Uuid = user.id.parse().unwrap();
    let (expired, _) = tokens.issue(id, prima_service::time::now());
    let response = app.graphql(Some(&expired), ME, json!({})).await;
    assert_eq!(error_codes(&response), ["UNAUTHENTICATED"]);
    assert!(
        response["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
}

#[tokio::test]
async fn a_user_suspended_after_login_is_refused_on_the_next_request() {
    let app = TestApp::empty().await;
    let venue = app.venue().create().await;
    let manager = app.user_with_role(&venue, Role::Manager).await;
    app.query_ok(&manager.token, ME, json!({})).await;
    app.suspend(&manager).await;
    let response = app.graphql(Some(&manager.token), ME, json!({})).await;
    assert_eq!(error_codes(&response), ["UNAUTHENTICATED"]);
}

#[tokio::test]
async fn introspection_can_be_turned_off_for_production() {
    let args = prima_server::config::ServeArgs {
        introspection: false,
        ..Default::default()
    };
    let app = TestApp::empty_with(args).await;
    let user = app.staff().await;
    let response = app
        .graphql(None, "{ __schema { queryType { name } } }", json!({}))
        .await;
    assert!(
        response["data"].is_null() || response["data"]["__schema"].is_null(),
        "{response}"
    );
    // Logging in still works.
    app.login(&user.email).await;
}
