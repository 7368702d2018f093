//! Real processes: a replica killed with SIGKILL after a booking committed and before its
//! event was published loses nothing; the event reaches a subscriber of another replica
//! once the killed one is restarted. The relay of the first process is held with the test
//! hook `PRIMA_TEST_HOLD_RELAY`, so "after commit, before publish" is certain rather than a
//! race. PostgreSQL (and Redis) with `TEST_DATABASE_URL` (`TEST_REDIS_URL`), else a SQLite
//! file shared by the processes.

use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const SECRET: &str = "a-crash-test-secret-of-enough-length";
const ADMIN: &str = "ops@prima.test";
const PASSWORD: &str = "a-long-password";

struct Replica {
    child: Child,
    addr: SocketAddr,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (10 s at most) until the replica at `addr` has a live subscription, as its
/// `/metrics` counts them.
async fn subscribed(addr: SocketAddr) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let page = reqwest::get(format!("http://{addr}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if page.lines().any(|line| line == "prima_subscribers 1") {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the subscription did not start on {addr} within 10 s:\n{page}"
        );
        // The poll interval of a wait for a condition, not a wait in itself.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `prima serve` on a free port, ready when `/healthz` answers (polled every 50 ms for
/// 20 s).
async fn serve(url: &str, hold: bool, channel: &str) -> Replica {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_prima"));
    command
        .arg("serve")
        .env("DATABASE_URL", url)
        .env("PRIMA_BIND", addr.to_string())
        .env("PRIMA_TOKEN_SECRET", SECRET)
        .env("PRIMA_EVENTS_CHANNEL", channel)
        .env("PRIMA_TEST_HOLD_RELAY", hold.to_string())
        .env("RUST_LOG", "warn")
        .kill_on_drop(true);
    match std::env::var("TEST_REDIS_URL") {
        Ok(redis) if !redis.is_empty() => command.env("REDIS_URL", redis),
        _ => command.env_remove("REDIS_URL"),
    };
    let child = command.spawn().expect("starting prima serve");
    let http = reqwest::Client::new();
    for _ in 0..400 {
        if let Ok(response) = http.get(format!("http://{addr}/healthz")).send().await
            && response.status().is_success()
        {
            return Replica { child, addr };
        }
        // The poll interval of the wait for `/healthz`, not a wait in itself.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("prima serve did not start on {addr}");
}

async fn graphql(addr: SocketAddr, token: Option<&str>, query: &str, variables: Value) -> Value {
    let mut request = reqwest::Client::new()
        .post(format!("http://{addr}/graphql"))
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let body: Value = request.send().await.unwrap().json().await.unwrap();
    assert!(body.get("errors").is_none(), "{body}");
    body["data"].clone()
}

#[tokio::test]
async fn an_event_committed_by_a_killed_replica_is_delivered_after_its_restart() {
    // The database: a PostgreSQL clone, or a SQLite file.
    let test_db = prima_service::testing::TestDb::new().await;
    let dir = std::env::temp_dir().join(format!("prima-crash-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = test_db
        .url()
        .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", dir.join("prima.db").display()));
    // Its world, as an operator makes it: the schema, then a global ADMIN.
    let prima = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_prima"))
            .args(args)
            .env("DATABASE_URL", &url)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert!(output.status.success(), "prima {args:?}: {output:?}");
    };
    prima(&["migrate"]);
    prima(&[
        "create-user",
        "--email",
        ADMIN,
        "--password",
        PASSWORD,
        "--first-name",
        "Ada",
        "--last-name",
        "Admin",
        "--role",
        "admin",
    ]);
    let channel = format!("prima:test:{}", uuid::Uuid::new_v4());

    // Two replicas whose relays publish nothing: A will die, B has the subscriber.
    let mut a = serve(&url, true, &channel).await;
    let b = serve(&url, true, &channel).await;
    let token = graphql(
        a.addr,
        None,
        "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
        json!({ "e": ADMIN, "p": PASSWORD }),
    )
    .await["login"]["token"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut request = format!("ws://{}/graphql/ws", b.addr)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let send = |v: Value| Message::Text(v.to_string().into());
    socket
        .send(send(json!({ "type": "connection_init",
                           "payload": { "authorization": format!("Bearer {token}") } })))
        .await
        .unwrap();
    socket
        .send(send(json!({ "id": "1", "type": "subscribe", "payload": {
            "query": "subscription { bookingChanged { cursor action booking { id } } }" } })))
        .await
        .unwrap();
    let mut next = async || -> Option<Value> {
        // The next `next` payload within 10 s.
        loop {
            let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
                .await
                .ok()??
                .ok()?;
            if let Message::Text(text) = message {
                let value: Value = serde_json::from_str(&text).unwrap();
                if value["type"] == "next" {
                    return Some(value["payload"]["data"]["bookingChanged"].clone());
                }
            }
        }
    };

    // A venue whose bookings wait for approval, with prices, made by the admin.
    let venue = graphql(
        a.addr,
        Some(&token),
        "mutation($input: CreateVenueInput!) { createVenue(input: $input) { venue { id } } }",
        json!({ "input": { "name": "Crash Kitchen", "type": "RESTAURANT", "tier": "HIGH_END",
                           "addressStreet": "1 Test St", "addressCity": "Boston",
                           "addressState": "MA", "addressZip": "02110", "addressCountry": "US",
                           "timezone": "America/New_York", "currency": "USD",
                           "capacitySeated": 60, "requireApproval": true, "status": "ACTIVE" } }),
    )
    .await["createVenue"]["venue"]["id"]
        .clone();
    graphql(
        a.addr,
        Some(&token),
        "mutation($input: SetVenuePricingInput!) { setVenuePricing(input: $input) { pricing { id } } }",
        json!({ "input": { "venueId": venue, "nonPrimePerDiner": "25.00",
                           "nonPrimePlatformFeePercent": "0.10", "primeBaseFor2": "100.00",
                           "primeAdditionalPerPerson": "40.00", "primePlatformFeePercent": "0.12",
                           "minimumBookingAmount": "30.00", "minimumPartySize": 1,
                           "maximumPartySize": 20 } }),
    )
    .await;
    let guest = graphql(
        a.addr,
        Some(&token),
        "mutation($input: CreateGuestInput!) { createGuest(input: $input) { guest { id } } }",
        json!({ "input": { "venueId": venue, "firstName": "Cy", "lastName": "Crash",
                           "email": "cy.crash@example.com" } }),
    )
    .await["createGuest"]["guest"]["id"]
        .clone();
    // The subscription is live on B before the booking is made (a feed without `after`
    // receives the changes committed after it starts).
    subscribed(b.addr).await;

    // A booking through A commits; A's held relay publishes nothing.
    let time = (chrono::Utc::now() + chrono::Duration::days(3)).to_rfc3339();
    let booking = graphql(
        a.addr,
        Some(&token),
        "mutation($input: CreateBookingInput!) { createBooking(input: $input) { booking { id } } }",
        json!({ "input": { "venueId": venue, "guestId": guest, "type": "NON_PRIME",
                           "diners": 4, "bookingTime": time } }),
    )
    .await["createBooking"]["booking"]["id"]
        .clone();
    let early = tokio::time::timeout(Duration::from_millis(1500), next()).await;
    assert!(
        matches!(early, Err(_) | Ok(None)),
        "nothing is published while A's relay is held: {early:?}"
    );

    // SIGKILL A after the commit, then start it again without the hook.
    a.child.kill().await.unwrap();
    let restarted = serve(&url, false, &channel).await;
    let delivered = next().await.expect("the event after the restart");
    assert_eq!(delivered["booking"]["id"], booking);
    assert_eq!(delivered["action"], "CREATED");

    // Live between the two processes: the booking confirmed through the restarted replica
    // reaches the subscriber of the other.
    graphql(
        restarted.addr,
        Some(&token),
        "mutation($input: ConfirmBookingInput!) { confirmBooking(input: $input) { booking { id } } }",
        json!({ "input": { "bookingId": booking } }),
    )
    .await;
    let confirmed = next().await.expect("the confirmation, live");
    assert_eq!(confirmed["booking"]["id"], booking);
    assert_eq!(confirmed["action"], "STATUS_CHANGED");

    drop(restarted);
    drop(b);
    let _ = std::fs::remove_dir_all(&dir);
}
