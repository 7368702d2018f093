//! graphql-transport-ws by the protocol (graphql-ws PROTOCOL.md), as an attacker would try
//! it: every close code it prescribes, the `connection_init` timeout, the caps on operations
//! per socket and per user, the message size limit and the keepalive. A raw WebSocket
//! client, so that each test sends exactly the bytes it means to (and answers no ping it
//! does not mean to).

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use prima_server::config::{ServeArgs, WsArgs};
use prima_tests::{Frame, Pricing, Role, TestApp, User};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// With `after: "0"` (the outbox of a fresh database is empty) a subscription gets every
/// change from its start on, however long it takes to start.
const BOOKING_CHANGED: &str = "subscription($venues: [ID!], $after: String) {
    bookingChanged(venueIds: $venues, after: $after) { cursor action booking { id } } }";

/// A WebSocket to `/graphql/ws` that sends only what the test tells it to.
struct Raw {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Raw {
    /// Connects offering the graphql-transport-ws sub-protocol; sends nothing.
    async fn open(app: &TestApp) -> Raw {
        Raw::open_offering(app, Some("graphql-transport-ws")).await
    }

    /// Connects offering this sub-protocol (or none).
    async fn open_offering(app: &TestApp, protocol: Option<&str>) -> Raw {
        Raw::open_with(app, protocol, None).await
    }

    /// Connects offering this sub-protocol (or none), the upgrade request sending this
    /// `x-request-id` (or none).
    async fn open_with(app: &TestApp, protocol: Option<&str>, request_id: Option<&str>) -> Raw {
        let mut request = format!("ws://{}/graphql/ws", app.addr)
            .into_client_request()
            .expect("a WebSocket request");
        for (name, value) in [
            ("sec-websocket-protocol", protocol),
            ("x-request-id", request_id),
        ] {
            if let Some(value) = value {
                request
                    .headers_mut()
                    .insert(name, value.parse().expect("a header value"));
            }
        }
        // Without Nagle's algorithm, each message leaves when sent (not once the server
        // acknowledges the one before).
        let (socket, _) = tokio_tungstenite::connect_async_with_config(request, None, true)
            .await
            .expect("connecting the WebSocket");
        Raw { socket }
    }

    /// Connects, sends `connection_init` with the token and waits for `connection_ack`.
    async fn acknowledged(app: &TestApp, token: &str) -> Raw {
        Raw::acknowledged_as(app, token, None).await
    }

    /// [`Raw::acknowledged`], the upgrade request sending this `x-request-id`.
    async fn acknowledged_as(app: &TestApp, token: &str, request_id: Option<&str>) -> Raw {
        let mut raw = Raw::open_with(app, Some("graphql-transport-ws"), request_id).await;
        raw.send(json!({ "type": "connection_init",
                         "payload": { "authorization": format!("Bearer {token}") } }))
            .await;
        raw.expect_type("connection_ack").await;
        raw
    }

    async fn send(&mut self, message: Value) {
        self.send_text(&message.to_string()).await;
    }

    async fn send_text(&mut self, text: &str) {
        self.socket
            .send(Message::Text(text.into()))
            .await
            .expect("sending a message");
    }

    async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({ "id": id, "type": "subscribe",
                          "payload": { "query": query, "variables": variables } }))
            .await;
    }

    /// Waits until the server has handled every message sent so far: it handles them in
    /// order, so the `pong` of a `ping` sent now comes after. Nothing else may arrive first.
    async fn barrier(&mut self) {
        self.send(json!({ "type": "ping", "payload": { "barrier": true } }))
            .await;
        assert_eq!(
            self.next_json().await,
            json!({ "type": "pong", "payload": { "barrier": true } })
        );
    }

    /// The next frame within 10 s (server pings included, unanswered).
    async fn next(&mut self) -> Frame {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let Ok(message) = tokio::time::timeout_at(deadline, self.socket.next()).await else {
                panic!("nothing arrived within 10 s");
            };
            match message {
                None | Some(Err(_)) => return Frame::Closed(1006, "gone".into()),
                Some(Ok(Message::Text(text))) => {
                    return Frame::Json(serde_json::from_str(&text).expect("JSON from the server"));
                }
                Some(Ok(Message::Close(frame))) => {
                    return match frame {
                        Some(frame) => Frame::Closed(frame.code.into(), frame.reason.to_string()),
                        None => Frame::Closed(1005, String::new()),
                    };
                }
                Some(Ok(_)) => continue,
            }
        }
    }

    /// The next protocol message, failing on a close.
    async fn next_json(&mut self) -> Value {
        match self.next().await {
            Frame::Json(value) => value,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    /// The next message, which must be of this type.
    async fn expect_type(&mut self, kind: &str) -> Value {
        let message = self.next_json().await;
        assert_eq!(message["type"], kind, "{message}");
        message
    }

    /// The close the server ends the socket with (messages before it fail the test).
    async fn closed(&mut self) -> (u16, String) {
        match self.next().await {
            Frame::Closed(code, reason) => (code, reason),
            Frame::Json(message) => panic!("expected a close, got {message}"),
        }
    }

    /// Closes the socket and waits until the server has closed its end.
    async fn close(mut self) {
        let _ = self.socket.close(None).await;
        while let Some(Ok(_)) = self.socket.next().await {}
    }
}

/// An empty server with these WebSocket limits.
async fn app_with(ws: WsArgs) -> TestApp {
    TestApp::empty_with(ServeArgs {
        ws,
        ..ServeArgs::default()
    })
    .await
}

/// A venue whose bookings wait for approval, with prices, and its venue ADMIN ("gm"):
/// `(admin token, gm, venue)`, the admin being the global ADMIN.
async fn gm_world(app: &TestApp) -> (String, User, String) {
    let venue = app
        .venue()
        .requiring_approval()
        .with_pricing(Pricing::default())
        .create()
        .await;
    let gm = app.user_with_role(&venue, Role::Admin).await;
    (app.admin().await.token.clone(), gm, venue)
}

/// A read-only user (a global VIEWER) of a new venue.
async fn viewer(app: &TestApp) -> User {
    let venue = app.venue().create().await;
    app.user_with_role(&venue, Role::Viewer).await
}

/// A booking at `venue` for a new guest, made by the admin; its id.
async fn book(app: &TestApp, admin: &str, venue: &str) -> String {
    let guest = app
        .query_ok(
            admin,
            "mutation($input: CreateGuestInput!) { createGuest(input: $input) { guest { id } } }",
            json!({ "input": { "venueId": venue, "firstName": "Lee", "lastName": "Park",
                               "email": format!("{}@example.com", uuid::Uuid::new_v4()) } }),
        )
        .await["createGuest"]["guest"]["id"]
        .clone();
    let time = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    app.query_ok(
        admin,
        "mutation($input: CreateBookingInput!) { createBooking(input: $input) { booking { id } } }",
        json!({ "input": { "venueId": venue, "guestId": guest, "type": "NON_PRIME",
                           "diners": 2, "bookingTime": time } }),
    )
    .await["createBooking"]["booking"]["id"]
        .as_str()
        .expect("a booking id")
        .to_owned()
}

/// The `(id, booking id)` of a `next` message of `bookingChanged`.
fn change(message: &Value) -> (String, String) {
    assert_eq!(message["type"], "next", "{message}");
    (
        message["id"].as_str().unwrap_or_default().to_owned(),
        message["payload"]["data"]["bookingChanged"]["booking"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("a booking change: {message}"))
            .to_owned(),
    )
}

/// The one error of an `error` message for `id`: its `extensions`, but for the
/// `requestId` that every error names (checked here, then left out).
fn refusal(message: &Value, id: &str) -> Value {
    assert_eq!(message["type"], "error", "{message}");
    assert_eq!(message["id"], id, "{message}");
    let errors = message["payload"].as_array().expect("an array of errors");
    assert_eq!(errors.len(), 1, "{message}");
    assert!(
        !errors[0]["message"].as_str().unwrap_or_default().is_empty(),
        "{message}"
    );
    let mut extensions = errors[0]["extensions"].clone();
    let request_id = extensions
        .as_object_mut()
        .and_then(|extensions| extensions.remove("requestId"));
    assert!(
        request_id
            .as_ref()
            .and_then(Value::as_str)
            .is_some_and(|id| !id.is_empty()),
        "every error names the socket's request: {message}"
    );
    extensions
}

#[tokio::test]
async fn every_error_on_a_socket_names_its_upgrade_request_shared_subscriptions_too() {
    let app = TestApp::empty().await;
    let (admin, _, venue) = gm_world(&app).await;
    // A COORDINATOR reads bookings but not what their promoter earns: each push of this
    // subscription carries a FORBIDDEN error. Two sockets of the same user share it.
    let coordinator = app.user_with_role(&venue, Role::Coordinator).await.token;
    let query = r#"subscription($venues: [ID!]) {
        bookingChanged(venueIds: $venues) {
            booking { id promoterCommission { amount } } } }"#;
    let mut sockets = Vec::new();
    for id in ["dash-ws-1", "dash-ws-2"] {
        let mut ws = Raw::acknowledged_as(&app, &coordinator, Some(id)).await;
        ws.subscribe("s", query, json!({ "venues": [venue] })).await;
        ws.barrier().await;
        sockets.push((id, ws));
    }
    app.subscribers_at_least(2).await;
    assert_eq!(
        prima_tests::gauge(&app.url("/metrics"), "prima_event_feeds").await,
        1,
        "the two subscriptions share one feed, and its payloads"
    );
    book(&app, &admin, &venue).await;
    for (request_id, ws) in &mut sockets {
        let pushed = ws.expect_type("next").await;
        let error = &pushed["payload"]["errors"][0]["extensions"];
        assert_eq!(error["code"], "FORBIDDEN", "{pushed}");
        assert_eq!(error["requestId"], *request_id, "{pushed}");
        // Refused before execution, on the socket's own execution.
        ws.subscribe("v", "{ noSuchField }", json!({})).await;
        let refused = ws.expect_type("error").await;
        assert_eq!(
            refused["payload"][0]["extensions"]["requestId"], *request_id,
            "{refused}"
        );
    }
}

#[tokio::test]
async fn an_invalid_message_closes_the_socket_with_4400() {
    let app = TestApp::empty().await;
    let token = viewer(&app).await.token;
    let query = json!({ "query": "{ __typename }" });
    let invalid = [
        "not JSON at all".to_owned(),
        json!(["connection_init"]).to_string(),
        json!({ "payload": {} }).to_string(),
        json!({ "type": "hello" }).to_string(),
        // The legacy subscriptions-transport-ws protocol.
        json!({ "type": "start", "id": "1", "payload": query }).to_string(),
        json!({ "type": "connection_terminate" }).to_string(),
        // The server's own types.
        json!({ "type": "next", "id": "1", "payload": { "data": null } }).to_string(),
        // Fields of the wrong shape.
        json!({ "type": "subscribe", "payload": query }).to_string(),
        json!({ "type": "subscribe", "id": "", "payload": query }).to_string(),
        json!({ "type": "subscribe", "id": 7, "payload": query }).to_string(),
        json!({ "type": "subscribe", "id": "1" }).to_string(),
        json!({ "type": "subscribe", "id": "1", "payload": { "query": ["{ me }"] } }).to_string(),
        json!({ "type": "subscribe", "id": "1",
                "payload": { "query": "{ __typename }", "variables": "x" } })
        .to_string(),
        json!({ "type": "complete" }).to_string(),
        json!({ "type": "ping", "payload": "hello" }).to_string(),
    ];
    for text in invalid {
        let mut ws = Raw::acknowledged(&app, &token).await;
        ws.send_text(&text).await;
        let (code, reason) = ws.closed().await;
        assert_eq!(code, 4400, "{text}: {reason}");
        assert!(!reason.is_empty(), "{text}");
    }
    // Before connection_init too.
    let mut ws = Raw::open(&app).await;
    ws.send(json!({ "type": "connection_init", "payload": "Bearer x" }))
        .await;
    assert_eq!(ws.closed().await.0, 4400);
}

#[tokio::test]
async fn subscribing_before_the_connection_is_acknowledged_closes_the_socket_with_4401() {
    let app = TestApp::empty().await;
    let mut ws = Raw::open(&app).await;
    ws.subscribe("1", "{ __typename }", json!({})).await;
    let (code, reason) = ws.closed().await;
    assert_eq!((code, reason.as_str()), (4401, "Unauthorized"));
}

#[tokio::test]
async fn a_refused_connection_init_closes_the_socket_with_4403() {
    let app = TestApp::empty().await;
    let user = viewer(&app).await;
    let viewer = user.token.clone();
    let id: uuid::Uuid = user.id.parse().expect("a user id");
    let secret = app.args.token_secret.as_ref().expect("the test secret");
    let expired = prima_service::auth::Tokens::new(
        prima_service::auth::TokenSecret::new(secret.0.as_bytes()),
        chrono::Duration::hours(1),
    )
    .issue(id, chrono::Utc::now() - chrono::Duration::hours(2))
    .0;
    let init = |payload: Value| json!({ "type": "connection_init", "payload": payload });
    let refused = [
        json!({ "type": "connection_init" }),
        init(json!({})),
        init(json!({ "authorization": "Bearer not-a-token" })),
        init(json!({ "token": expired })),
    ];
    for message in refused {
        let mut ws = Raw::open(&app).await;
        ws.send(message.clone()).await;
        let (code, reason) = ws.closed().await;
        assert_eq!(code, 4403, "{message}: {reason}");
        assert!(reason.starts_with("Forbidden: "), "{message}: {reason}");
    }
    // A suspended user's token is refused too: the same connection_init got in before.
    let suspended = init(json!({ "Authorization": format!("Bearer {viewer}") }));
    let mut ws = Raw::open(&app).await;
    ws.send(suspended.clone()).await;
    ws.expect_type("connection_ack").await;
    ws.close().await;
    app.suspend(&user).await;
    let mut ws = Raw::open(&app).await;
    ws.send(suspended).await;
    assert_eq!(ws.closed().await.0, 4403);
}

#[tokio::test]
async fn a_socket_that_sends_no_connection_init_in_time_is_closed_with_4408() {
    let app = app_with(WsArgs {
        init_timeout_ms: 200,
        ..WsArgs::default()
    })
    .await;
    let venue = app.venue().create().await;
    let viewer = app.user_with_role(&venue, Role::Viewer).await;
    let (email, token) = (viewer.email, viewer.token);
    // Acknowledged first, so that its own timeout would have passed when the other's has.
    let mut initialised = Raw::acknowledged(&app, &token).await;
    let mut ws = Raw::open(&app).await;
    // Pings do not stand for connection_init.
    ws.send(json!({ "type": "ping" })).await;
    ws.expect_type("pong").await;
    let (code, reason) = ws.closed().await;
    assert_eq!(
        (code, reason.as_str()),
        (4408, "Connection initialisation timeout")
    );
    // The socket that sent connection_init in time is not closed by the timeout.
    initialised
        .subscribe("q", "{ me { user { email } } }", json!({}))
        .await;
    assert_eq!(
        initialised.expect_type("next").await["payload"]["data"]["me"]["user"]["email"],
        email
    );
    initialised.expect_type("complete").await;
}

#[tokio::test]
async fn subscribing_again_with_the_id_of_a_running_operation_closes_the_socket_with_4409() {
    let app = TestApp::empty().await;
    let gm = gm_world(&app).await.1.token;
    let mut ws = Raw::acknowledged(&app, &gm).await;
    ws.subscribe("feed", BOOKING_CHANGED, json!({})).await;
    ws.subscribe("feed", BOOKING_CHANGED, json!({})).await;
    let (code, reason) = ws.closed().await;
    assert_eq!(
        (code, reason.as_str()),
        (4409, "Subscriber for feed already exists")
    );
}

#[tokio::test]
async fn a_second_connection_init_closes_the_socket_with_4429() {
    let app = TestApp::empty().await;
    let token = viewer(&app).await.token;
    let mut ws = Raw::acknowledged(&app, &token).await;
    ws.send(json!({ "type": "connection_init",
                    "payload": { "authorization": format!("Bearer {token}") } }))
        .await;
    let (code, reason) = ws.closed().await;
    assert_eq!(
        (code, reason.as_str()),
        (4429, "Too many initialisation requests")
    );
}

#[tokio::test]
async fn a_socket_without_the_graphql_transport_ws_subprotocol_is_closed_with_4406() {
    let app = TestApp::empty().await;
    let mut ws = Raw::open_offering(&app, None).await;
    assert_eq!(ws.closed().await.0, 4406);
}

#[tokio::test]
async fn after_complete_the_id_is_free_again_and_nothing_more_is_sent_for_it() {
    let app = TestApp::empty().await;
    let (admin, gm, venue) = gm_world(&app).await;
    let gm = gm.token;
    let mut ws = Raw::acknowledged(&app, &gm).await;
    let variables = json!({ "venues": [venue], "after": "0" });
    ws.subscribe("1", BOOKING_CHANGED, variables.clone()).await;
    ws.send(json!({ "type": "complete", "id": "1" })).await;
    // The same id again is a new subscription, not a 4409; a `complete` for an id that
    // runs nothing is ignored.
    ws.subscribe("1", BOOKING_CHANGED, variables).await;
    ws.send(json!({ "type": "complete", "id": "never-used" }))
        .await;
    // Each booking reaches the socket once: the completed subscription sends nothing (not
    // even a `complete`), the new one everything.
    ws.barrier().await;
    let first = book(&app, &admin, &venue).await;
    assert_eq!(change(&ws.next_json().await), ("1".to_owned(), first));
    let second = book(&app, &admin, &venue).await;
    assert_eq!(change(&ws.next_json().await), ("1".to_owned(), second));
}

#[tokio::test]
async fn one_operation_beyond_the_cap_of_a_socket_is_refused_and_the_socket_stays_open() {
    let app = app_with(WsArgs {
        max_subscriptions_per_socket: 2,
        ..WsArgs::default()
    })
    .await;
    let (admin, gm, venue) = gm_world(&app).await;
    let gm = gm.token;
    let mut ws = Raw::acknowledged(&app, &gm).await;
    let venues = json!({ "venues": [venue], "after": "0" });
    ws.subscribe("a", BOOKING_CHANGED, venues.clone()).await;
    ws.subscribe("b", BOOKING_CHANGED, venues.clone()).await;
    ws.subscribe("c", BOOKING_CHANGED, venues.clone()).await;
    let extensions = refusal(&ws.next_json().await, "c");
    assert_eq!(
        extensions,
        json!({ "code": "LIMIT_EXCEEDED", "limit": "PRIMA_WS_MAX_SUBSCRIPTIONS_PER_SOCKET",
                "max": 2 })
    );
    // A query counts while it runs: refused as well.
    ws.subscribe("q", "{ me { user { email } } }", json!({}))
        .await;
    assert_eq!(
        refusal(&ws.next_json().await, "q")["limit"],
        "PRIMA_WS_MAX_SUBSCRIPTIONS_PER_SOCKET"
    );
    // The two still run; once one completes there is room again, for the refused id too.
    ws.send(json!({ "type": "complete", "id": "a" })).await;
    ws.subscribe("c", BOOKING_CHANGED, venues).await;
    ws.barrier().await;
    let booking = book(&app, &admin, &venue).await;
    let mut seen = vec![change(&ws.next_json().await), change(&ws.next_json().await)];
    seen.sort();
    assert_eq!(
        seen,
        [("b".to_owned(), booking.clone()), ("c".to_owned(), booking)]
    );
}

#[tokio::test]
async fn one_operation_beyond_the_cap_of_a_user_is_refused_across_their_sockets() {
    let app = app_with(WsArgs {
        max_subscriptions_per_user: 2,
        ..WsArgs::default()
    })
    .await;
    let (_, gm, venue) = gm_world(&app).await;
    let (gm_email, gm) = (gm.email, gm.token);
    let viewer = app.user_with_role(&venue, Role::Viewer).await.token;
    let mut first = Raw::acknowledged(&app, &gm).await;
    let mut second = Raw::acknowledged(&app, &gm).await;
    first.subscribe("1", BOOKING_CHANGED, json!({})).await;
    second.subscribe("1", BOOKING_CHANGED, json!({})).await;
    second.subscribe("2", BOOKING_CHANGED, json!({})).await;
    assert_eq!(
        refusal(&second.next_json().await, "2"),
        json!({ "code": "LIMIT_EXCEEDED", "limit": "PRIMA_WS_MAX_SUBSCRIPTIONS_PER_USER",
                "max": 2 })
    );
    // Another user's operations are theirs to count.
    let mut other = Raw::acknowledged(&app, &viewer).await;
    for id in ["1", "2"] {
        other.subscribe(id, BOOKING_CHANGED, json!({})).await;
    }
    other
        .subscribe("q", "{ me { user { email } } }", json!({}))
        .await;
    assert_eq!(
        refusal(&other.next_json().await, "q")["limit"],
        "PRIMA_WS_MAX_SUBSCRIPTIONS_PER_USER",
        "the viewer's own two subscriptions fill the viewer's cap"
    );
    // Closing a socket gives its operations back.
    first.close().await;
    second
        .subscribe("q", "{ me { user { email } } }", json!({}))
        .await;
    let answer = second.expect_type("next").await;
    assert_eq!(answer["id"], "q");
    assert_eq!(answer["payload"]["data"]["me"]["user"]["email"], gm_email);
    second.expect_type("complete").await;
}

#[tokio::test]
async fn a_message_over_the_size_limit_closes_the_socket_with_1009() {
    let app = app_with(WsArgs {
        max_message_bytes: 1024,
        ..WsArgs::default()
    })
    .await;
    let venue = app.venue().create().await;
    let viewer = app.user_with_role(&venue, Role::Viewer).await;
    let (email, token) = (viewer.email, viewer.token);
    let mut ws = Raw::acknowledged(&app, &token).await;
    // Just under the limit is fine.
    let query =
        |padding: usize| format!("{{ me {{ user {{ email }} }} }} #{}", "x".repeat(padding));
    ws.subscribe("fits", &query(900), json!({})).await;
    assert_eq!(
        ws.expect_type("next").await["payload"]["data"]["me"]["user"]["email"],
        email
    );
    ws.expect_type("complete").await;
    ws.subscribe("big", &query(2048), json!({})).await;
    let (code, reason) = ws.closed().await;
    assert_eq!(code, 1009, "{reason}");
}

#[tokio::test]
async fn a_ping_is_answered_with_a_pong_carrying_its_payload() {
    let app = TestApp::empty().await;
    let token = viewer(&app).await.token;
    let mut ws = Raw::open(&app).await;
    // Before connection_init...
    ws.send(json!({ "type": "ping", "payload": { "sent": 1 } }))
        .await;
    assert_eq!(
        ws.expect_type("pong").await,
        json!({ "type": "pong", "payload": { "sent": 1 } })
    );
    ws.send(json!({ "type": "connection_init", "payload": { "token": token } }))
        .await;
    ws.expect_type("connection_ack").await;
    // ...and after, with or without a payload.
    ws.send(json!({ "type": "ping" })).await;
    assert_eq!(ws.expect_type("pong").await, json!({ "type": "pong" }));
    ws.send(json!({ "type": "ping", "payload": { "sent": 2 } }))
        .await;
    assert_eq!(ws.expect_type("pong").await["payload"]["sent"], 2);
    // An unsolicited pong is a heartbeat: nothing answers it, nothing breaks.
    ws.send(json!({ "type": "pong" })).await;
    ws.send(json!({ "type": "ping", "payload": { "sent": 3 } }))
        .await;
    assert_eq!(ws.expect_type("pong").await["payload"]["sent"], 3);
}

#[tokio::test]
async fn the_server_pings_an_idle_socket_and_closes_it_when_nothing_answers() {
    let app = app_with(WsArgs {
        keepalive_ms: 300,
        ..WsArgs::default()
    })
    .await;
    let venue = app.venue().create().await;
    let token = app.user_with_role(&venue, Role::Viewer).await.token;
    let mut ws = Raw::acknowledged(&app, &token).await;
    // Answered, a ping is followed by another ping, not by a close.
    assert_eq!(ws.expect_type("ping").await, json!({ "type": "ping" }));
    ws.send(json!({ "type": "pong" })).await;
    ws.expect_type("ping").await;
    // Unanswered, the socket is closed once two intervals pass in silence: one more ping
    // at most, then the close.
    let mut unanswered = 1;
    let (code, reason) = loop {
        match ws.next().await {
            Frame::Json(message) if message["type"] == "ping" => unanswered += 1,
            Frame::Json(message) => panic!("expected a ping or a close, got {message}"),
            Frame::Closed(code, reason) => break (code, reason),
        }
    };
    assert_eq!(code, 3008, "{reason}");
    assert!(
        unanswered <= 2,
        "{unanswered} pings unanswered before the close"
    );
}

#[tokio::test]
async fn queries_and_mutations_run_over_the_socket_and_an_invalid_one_gets_an_error_message() {
    let app = TestApp::empty().await;
    let (admin, _gm, venue) = gm_world(&app).await;
    let mut ws = Raw::acknowledged(&app, &admin).await;
    ws.subscribe(
        "m",
        "mutation($input: CreateGuestInput!) { createGuest(input: $input) { guest { firstName } } }",
        json!({ "input": { "venueId": venue, "firstName": "Ada", "lastName": "Byron",
                           "email": format!("{}@example.com", uuid::Uuid::new_v4()) } }),
    )
    .await;
    let created = ws.expect_type("next").await;
    assert_eq!(created["id"], "m");
    assert_eq!(
        created["payload"],
        json!({ "data": { "createGuest": { "guest": { "firstName": "Ada" } } } })
    );
    assert_eq!(ws.expect_type("complete").await["id"], "m");

    // Refused before execution: an `error` message with the errors, and no `complete`.
    ws.subscribe("v", "{ noSuchField }", json!({})).await;
    let refused = ws.expect_type("error").await;
    assert_eq!(refused["id"], "v");
    let errors = refused["payload"].as_array().expect("an array of errors");
    assert!(!errors.is_empty(), "{refused}");
    assert_eq!(
        errors[0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED",
        "{refused}"
    );
    ws.send(json!({ "type": "ping", "payload": { "after": "v" } }))
        .await;
    assert_eq!(
        ws.expect_type("pong").await["payload"]["after"],
        "v",
        "no complete follows an error"
    );
    // Its id is free again; an error of a resolver is a result (`next`), then `complete`.
    ws.subscribe(
        "v",
        "query($id: ID!) { venue(id: $id) { name } }",
        json!({ "id": uuid::Uuid::new_v4() }),
    )
    .await;
    let missing = ws.expect_type("next").await;
    assert_eq!(missing["id"], "v");
    assert!(missing["payload"].get("data").is_some(), "{missing}");
    ws.expect_type("complete").await;
}
