//! The dashboard as it really runs: a page in headless Chromium, served from another origin
//! than the API, that logs in, queries and subscribes (`tests/js/browser.mjs`, driving the
//! browser with playwright-core). A page on an origin the server does not allow gets
//! nothing. Skipped without Chromium (see `prima_tests::node::chromium`); `.ci/run`
//! installs it and requires it.

use std::time::Duration;

use prima_server::config::ServeArgs;
use prima_tests::{PASSWORD, Pricing, Role, TestApp};
use serde_json::json;

#[tokio::test]
async fn a_page_on_another_origin_logs_in_queries_and_subscribes() {
    if prima_tests::node::chromium().is_none() {
        return;
    }
    prima_tests::node::ready().await;
    // Pages on 127.0.0.1 (any port) may call; the script's second page, on localhost, may not.
    let app = TestApp::empty_with(ServeArgs {
        cors_origins: Some("http://127.0.0.1:*".parse().expect("origins")),
        ..ServeArgs::default()
    })
    .await;
    let venue = app
        .venue()
        .requiring_approval()
        .with_pricing(Pricing::default())
        .create()
        .await;
    let manager = app.user_with_role(&venue, Role::Manager).await;
    let guest = app.guest(&venue).await;
    let booking = app.booking(&venue, &guest).await;

    let api = format!("http://{}", app.addr);
    let mut child =
        prima_tests::node::script("browser.mjs", &[&api, &manager.email, PASSWORD, &venue]);
    let rest =
        prima_tests::node::until_stderr_line(&mut child, "subscribed", Duration::from_secs(45))
            .await;
    app.subscribers_at_least(1).await;
    app.query_ok(
        &manager.token,
        "mutation($input: ConfirmBookingInput!) { confirmBooking(input: $input) { booking { id } } }",
        json!({ "input": { "bookingId": booking } }),
    )
    .await;

    let stdout =
        prima_tests::node::finish("browser.mjs", child, Some(rest), Duration::from_secs(45)).await;
    let seen = prima_tests::node::json_line("browser.mjs", &stdout);
    assert!(
        seen["origin"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:"),
        "{seen}"
    );
    assert_ne!(
        seen["origin"].as_str(),
        Some(api.as_str()),
        "the page is on another origin"
    );
    assert_eq!(seen["login"]["status"], 200, "{seen}");
    // Readable by the page only because the server exposes it.
    assert!(
        seen["login"]["requestId"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "{seen}"
    );
    assert_eq!(
        seen["venue"]["data"],
        json!({ "venue": { "id": venue, "bookings": { "nodes": [
            { "id": booking, "status": "PENDING" } ] } } }),
        "{seen}"
    );
    assert_eq!(
        seen["event"],
        json!({ "data": { "bookingChanged": { "action": "STATUS_CHANGED",
            "previousStatus": "PENDING", "booking": { "id": booking, "status": "CONFIRMED" } } } }),
        "{seen}"
    );
    assert!(
        seen["refused"]
            .as_str()
            .unwrap()
            .starts_with("refused: TypeError"),
        "a page on an origin not allowed cannot read the API: {seen}"
    );
}

#[tokio::test]
async fn graphiql_renders_and_answers_with_no_request_leaving_the_machine() {
    if prima_tests::node::chromium().is_none() {
        return;
    }
    prima_tests::node::ready().await;
    let app = TestApp::empty().await;
    let api = format!("http://{}", app.addr);
    let shot = std::env::temp_dir().join(format!("prima-graphiql-{}.png", uuid::Uuid::new_v4()));
    let seen = prima_tests::node::run_json(
        "graphiql.mjs",
        &[&api, &shot.to_string_lossy()],
        Duration::from_secs(45),
    )
    .await;
    assert_eq!(seen["elsewhere"], json!([]), "nothing but the API: {seen}");
    // The page, its stylesheet, four scripts and the query.
    assert!(seen["requests"].as_u64().unwrap() >= 7, "{seen}");
    let headers = seen["headers"].as_str().unwrap();
    assert!(
        headers.contains("Authorization") && headers.contains("Bearer"),
        "the headers template is there: {headers}"
    );
    let answer = seen["answer"].as_str().unwrap();
    assert!(answer.contains("\"__typename\": \"Query\""), "{answer}");
    eprintln!("GraphiQL, offline: {}", shot.display());
}
