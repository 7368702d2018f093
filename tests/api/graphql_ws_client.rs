//! The `graphql-ws` npm client (the one Apollo Client and urql use), unmodified, against a
//! real server: it subscribes to `bookingChanged` and receives the changes, and a bad token
//! ends its connection with 4403 (Forbidden, as the protocol recommends for a refused
//! `connection_init`; the client would retry a 4403, unlike a 4401, but the script turns
//! retries off). The client runs in Node (`tests/js/subscribe.mjs`); its packages are
//! installed from `tests/js/package-lock.json` (see `prima_tests::node`).

use std::time::Duration;

use prima_tests::{Pricing, Role, TestApp};
use serde_json::{Value, json};

/// `node tests/js/subscribe.mjs <args>`, its stdout and stderr piped, killed if dropped.
fn subscribe_mjs(args: &[&str]) -> tokio::process::Child {
    prima_tests::node::script("subscribe.mjs", args)
}

fn url(app: &TestApp) -> String {
    format!("ws://{}/graphql/ws", app.addr)
}

#[tokio::test]
async fn the_graphql_ws_client_receives_the_changes_of_a_booking() {
    prima_tests::node::ready().await;
    let app = TestApp::empty().await;
    // gm's only venue; its bookings wait for approval.
    let venue = app
        .venue()
        .requiring_approval()
        .with_pricing(Pricing::default())
        .create()
        .await;
    let admin = app.admin().await.token.clone();
    let gm = app.user_with_role(&venue, Role::Admin).await.token;

    let mut child = subscribe_mjs(&[&url(&app), &gm, &venue, "2"]);
    // Its stderr: wait for `subscribed`, then keep the rest for failure messages.
    let rest =
        prima_tests::node::until_stderr_line(&mut child, "subscribed", Duration::from_secs(20))
            .await;
    // The `subscribe` message is sent; wait for the server to start the feed (a
    // subscription without `after` begins with the changes committed after it starts).
    app.subscribers_at_least(1).await;

    // A booking at gm's venue, made by the admin (PENDING), then confirmed by gm.
    let guest = app
        .query_ok(
            &admin,
            "mutation($input: CreateGuestInput!) { createGuest(input: $input) { guest { id } } }",
            json!({ "input": { "venueId": venue, "firstName": "Lee", "lastName": "Park",
                               "email": format!("{}@example.com", uuid::Uuid::new_v4()) } }),
        )
        .await["createGuest"]["guest"]["id"]
        .clone();
    let time = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    let booking = app
        .query_ok(
            &admin,
            "mutation($input: CreateBookingInput!) { createBooking(input: $input) { booking { id status } } }",
            json!({ "input": { "venueId": venue, "guestId": guest, "type": "NON_PRIME",
                               "diners": 4, "bookingTime": time } }),
        )
        .await["createBooking"]["booking"]
        .clone();
    assert_eq!(booking["status"], "PENDING", "{booking}");
    let booking = booking["id"].as_str().unwrap().to_owned();
    app.query_ok(
        &gm,
        "mutation($input: ConfirmBookingInput!) { confirmBooking(input: $input) { booking { id } } }",
        json!({ "input": { "bookingId": booking } }),
    )
    .await;

    // It gives up by itself after 20 s.
    let stdout =
        prima_tests::node::finish("subscribe.mjs", child, Some(rest), Duration::from_secs(30))
            .await;
    let payloads: Vec<Value> = stdout
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|err| panic!("not a JSON line ({err}): {line:?}\n{stdout}"))
        })
        .collect();
    assert_eq!(payloads.len(), 2, "exactly two events:\n{stdout}");
    let cursor = |payload: &Value| -> i64 {
        payload["data"]["bookingChanged"]["cursor"]
            .as_str()
            .and_then(|cursor| cursor.parse().ok())
            .unwrap_or_else(|| panic!("a cursor: {payload}"))
    };
    let (created, confirmed) = (cursor(&payloads[0]), cursor(&payloads[1]));
    assert!(created < confirmed, "{stdout}");
    // The whole payloads, exactly (no `errors`, nothing else).
    assert_eq!(
        payloads,
        [
            json!({ "data": { "bookingChanged": {
                "cursor": created.to_string(), "action": "CREATED", "previousStatus": null,
                "booking": { "id": booking, "status": "PENDING" } } } }),
            json!({ "data": { "bookingChanged": {
                "cursor": confirmed.to_string(), "action": "STATUS_CHANGED",
                "previousStatus": "PENDING",
                "booking": { "id": booking, "status": "CONFIRMED" } } } }),
        ]
    );
}

#[tokio::test]
async fn the_graphql_ws_client_is_refused_with_4403_without_a_valid_token() {
    prima_tests::node::ready().await;
    let app = TestApp::empty().await;
    let url = url(&app);
    for args in [
        vec!["--unauthorized", &url, "not-a-token"],
        vec!["--unauthorized", &url],
    ] {
        let closed =
            prima_tests::node::run_json("subscribe.mjs", &args, Duration::from_secs(30)).await;
        assert_eq!(closed["code"], 4403, "{args:?}: {closed}");
        assert!(
            !closed["reason"].as_str().unwrap_or_default().is_empty(),
            "{args:?}: {closed}"
        );
    }
}
