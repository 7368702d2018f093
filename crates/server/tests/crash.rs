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

/// `prima serve` on a free port, ready when `/healthz` answers.
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
    let seeded = std::process::Command::new(env!("CARGO_BIN_EXE_prima"))
        .args(["seed", "--bookings", "60"])
        .env("DATABASE_URL", &url)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(seeded.status.success(), "{seeded:?}");
    let channel = format!("prima:test:{}", uuid::Uuid::new_v4());

    // Two replicas whose relays publish nothing: A will die, B has the subscriber.
    let mut a = serve(&url, true, &channel).await;
    let b = serve(&url, true, &channel).await;
    let token = graphql(
        a.addr,
        None,
        "mutation { login(email: \"admin@prima.demo\", password: \"prima-demo\") { token } }",
        json!({}),
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

    // A booking through A commits (at the venue where bookings wait for approval); A's
    // held relay publishes nothing.
    let venues = graphql(
        a.addr,
        Some(&token),
        "{ venues(first: 10) { edges { node { id requireApproval } } } }",
        json!({}),
    )
    .await;
    let venue = venues["venues"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|edge| edge["node"]["requireApproval"] == true)
        .expect("the demo venue that needs approval")["node"]["id"]
        .clone();
    let guest = graphql(
        a.addr,
        Some(&token),
        "mutation($input: CreateGuestInput!) { createGuest(input: $input) { guest { id } } }",
        json!({ "input": { "venueId": venue, "firstName": "Cy", "lastName": "Crash",
                           "email": "cy.crash@example.com" } }),
    )
    .await["createGuest"]["guest"]["id"]
        .clone();
    tokio::time::sleep(Duration::from_millis(300)).await;
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
