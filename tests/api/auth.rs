//! Logging in, and who gets in.

use prima_tests::{PASSWORD, TestApp, error_codes};
use serde_json::json;

const ME: &str = "{ me { user { email role } venueRoles { role venue { id name } } } }";

#[tokio::test]
async fn a_demo_user_logs_in_and_me_shows_their_venue_roles() {
    let app = TestApp::demo(200).await;
    let token = app.login("owner@prima.demo").await;
    let data = app.query_ok(&token, ME, json!({})).await;
    assert_eq!(data["me"]["user"]["email"], "owner@prima.demo");
    let roles = data["me"]["venueRoles"].as_array().unwrap();
    assert!(
        roles.len() >= 2,
        "the owner owns every demo venue but one: {data}"
    );
    assert!(roles.iter().all(|r| r["role"] == "OWNER"));
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_answer() {
    let app = TestApp::demo(50).await;
    let login = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }";
    let wrong_password = app
        .graphql(
            None,
            login,
            json!({"e": "owner@prima.demo", "p": "not-the-password"}),
        )
        .await;
    let unknown_email = app
        .graphql(
            None,
            login,
            json!({"e": "nobody@prima.demo", "p": PASSWORD}),
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
    let app = TestApp::demo(50).await;
    let response = app
        .graphql(
            None,
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
            json!({"e": "suspended@prima.demo", "p": PASSWORD}),
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
    let app = TestApp::demo(50).await;
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
    let app = TestApp::demo(50).await;
    let token = app.login("owner@prima.demo").await;
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
    let app = TestApp::demo(50).await;
    let tokens = prima_service::auth::Tokens::new(
        prima_service::auth::TokenSecret::new("a-test-secret-of-enough-length"),
        chrono::Duration::seconds(-5),
    );
    let me = app
        .query_ok(&app.login("owner@prima.demo").await, ME, json!({}))
        .await;
    let _ = me;
    let owner = prima_service::users::exists(&app.db.db.conn, "owner@prima.demo")
        .await
        .unwrap();
    assert!(owner);
    let id = user_id(&app, "owner@prima.demo").await;
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
    let app = TestApp::demo(50).await;
    let token = app.login("manager@prima.demo").await;
    app.query_ok(&token, ME, json!({})).await;
    set_status(&app, "manager@prima.demo", "SUSPENDED").await;
    let response = app.graphql(Some(&token), ME, json!({})).await;
    assert_eq!(error_codes(&response), ["UNAUTHENTICATED"]);
}

pub(crate) async fn user_id(app: &TestApp, email: &str) -> uuid::Uuid {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    prima_entity::users::Entity::find()
        .filter(prima_entity::users::Column::Email.eq(email))
        .one(&app.db.db.conn)
        .await
        .unwrap()
        .expect("the demo user exists")
        .id
}

async fn set_status(app: &TestApp, email: &str, status: &str) {
    use sea_orm::sea_query::Expr;
    use sea_orm::{ActiveEnum, ColumnTrait, EntityTrait, QueryFilter};
    let status = prima_entity::enums::UserStatus::try_from_value(&status.to_owned()).unwrap();
    prima_entity::users::Entity::update_many()
        .col_expr(prima_entity::users::Column::Status, Expr::value(status))
        .filter(prima_entity::users::Column::Email.eq(email))
        .exec(&app.db.db.conn)
        .await
        .unwrap();
}

#[tokio::test]
async fn introspection_can_be_turned_off_for_production() {
    let args = prima_server::config::ServeArgs {
        introspection: false,
        ..Default::default()
    };
    let app = TestApp::demo_with(20, args).await;
    let response = app
        .graphql(None, "{ __schema { queryType { name } } }", json!({}))
        .await;
    assert!(
        response["data"].is_null() || response["data"]["__schema"].is_null(),
        "{response}"
    );
    // Logging in still works.
    app.login("owner@prima.demo").await;
}
