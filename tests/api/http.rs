//! The HTTP surface besides /graphql POST: GraphiQL, health, readiness, metrics, WebSocket.

use futures::{SinkExt, StreamExt};
use prima_tests::{Role, TestApp};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[tokio::test]
async fn graphiql_is_served_with_the_websocket_endpoint() {
    let app = TestApp::empty().await;
    let page = reqwest::Client::new()
        .get(app.url("/graphql"))
        .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.to_lowercase().contains("graphiql"));
    assert!(
        page.contains("/graphql/ws"),
        "subscriptions go to the WebSocket endpoint"
    );
}

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let app = TestApp::empty().await;
    let health = reqwest::get(app.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = reqwest::get(app.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    app.graphql(None, "{ __typename }", json!({})).await;
    let metrics = reqwest::get(app.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("prima_db_statements_total"), "{metrics}");
    assert!(
        metrics.contains(
            "prima_http_requests_total{method=\"POST\",path=\"/graphql\",status=\"200\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("prima_http_request_duration_seconds_bucket"),
        "{metrics}"
    );
    assert!(metrics.contains("prima_subscribers 0"), "{metrics}");
    assert!(metrics.contains("prima_events_delivered 0"), "{metrics}");
    assert!(
        metrics.contains("prima_db_background_statements_total"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_query_runs_over_graphql_transport_ws_with_the_token_in_connection_init() {
    let app = TestApp::empty().await;
    let venue = app.venue().create().await;
    let owner = app.user_with_role(&venue, Role::Owner).await;
    let token = owner.token.clone();
    let mut request = format!("ws://{}/graphql/ws", app.addr)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        "graphql-transport-ws"
    );
    let send = |v: Value| Message::Text(v.to_string().into());
    socket
        .send(send(json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {token}")}})))
        .await
        .unwrap();
    let ack = next_json(&mut socket).await;
    assert_eq!(ack["type"], "connection_ack");
    socket
        .send(send(json!({"id": "1", "type": "subscribe", "payload": {"query": "{ me { user { email } } }"}})))
        .await
        .unwrap();
    let next = next_json(&mut socket).await;
    assert_eq!(next["type"], "next", "{next}");
    assert_eq!(
        next["payload"]["data"]["me"]["user"]["email"],
        owner.email.as_str()
    );
    let complete = next_json(&mut socket).await;
    assert_eq!(complete["type"], "complete");
}

async fn next_json<S>(socket: &mut S) -> Value
where
    S: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let message = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
            .await
            .expect("a message within 10 s")
            .expect("the socket stays open")
            .expect("a valid frame");
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

/// A portfolio-sized answer: every type's fields, as GraphiQL's schema explorer asks.
const LARGE_QUERY: &str = "{ __schema { types { name fields { name description } } } }";

async fn post_with(app: &TestApp, headers: &[(&str, &str)], query: &str) -> reqwest::Response {
    let mut request = reqwest::Client::new().post(app.url("/graphql"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request
        .json(&json!({ "query": query }))
        .send()
        .await
        .expect("answered")
}

#[tokio::test]
async fn answers_are_compressed_in_the_encoding_the_client_asks_for() {
    use std::io::Read;
    let app = TestApp::empty().await;
    let plain = post_with(&app, &[], LARGE_QUERY).await;
    assert!(plain.headers().get("content-encoding").is_none());
    let plain = plain.bytes().await.unwrap();
    assert!(plain.len() > 20_000, "{} bytes", plain.len());
    for encoding in ["gzip", "br", "zstd"] {
        let answer = post_with(&app, &[("accept-encoding", encoding)], LARGE_QUERY).await;
        assert_eq!(
            answer
                .headers()
                .get("content-encoding")
                .map(|v| v.to_str().unwrap()),
            Some(encoding)
        );
        let body = answer.bytes().await.unwrap();
        assert!(
            body.len() * 4 < plain.len(),
            "{encoding}: {} bytes of {}",
            body.len(),
            plain.len()
        );
        if encoding == "gzip" {
            let mut text = Vec::new();
            flate2::read::GzDecoder::new(&body[..])
                .read_to_end(&mut text)
                .expect("valid gzip");
            // The same data (the cost extension's remaining budget moves between requests).
            let (text, plain): (Value, Value) = (
                serde_json::from_slice(&text).expect("JSON"),
                serde_json::from_slice(&plain).expect("JSON"),
            );
            assert!(text["data"] == plain["data"], "the same answer, compressed");
        }
    }
}

#[tokio::test]
async fn each_request_gets_an_id_echoed_in_its_answer_and_named_by_its_errors() {
    let app = TestApp::empty().await;
    let id_of = |answer: &reqwest::Response| {
        answer
            .headers()
            .get("x-request-id")
            .map(|v| v.to_str().unwrap().to_owned())
            .expect("every answer names its request")
    };
    // None sent: a new UUID each time.
    let first = post_with(&app, &[], "{ __typename }").await;
    let second = post_with(&app, &[], "{ __typename }").await;
    let (a, b) = (id_of(&first), id_of(&second));
    assert!(uuid::Uuid::parse_str(&a).is_ok() && a != b, "{a} {b}");
    // The client's own id is kept and named by every error of the request.
    let answer = post_with(&app, &[("x-request-id", "dash-42:7")], "{ nope }").await;
    assert_eq!(id_of(&answer), "dash-42:7");
    let body: Value = answer.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["requestId"], "dash-42:7",
        "{body}"
    );
    // A body that is not a request, too.
    let answer = reqwest::Client::new()
        .post(app.url("/graphql"))
        .header("x-request-id", "dash-43")
        .header("content-type", "application/json")
        .body("[")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["requestId"], "dash-43",
        "{body}"
    );
    // An id that is too long or holds other characters is replaced, never logged.
    let long = "x".repeat(prima_server::app::MAX_REQUEST_ID_BYTES + 1);
    for bad in [long.as_str(), "a b", "line\"break"] {
        let answer = post_with(&app, &[("x-request-id", bad)], "{ __typename }").await;
        let id = id_of(&answer);
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{bad:?} became {id}");
    }
}

#[tokio::test]
async fn graphiqls_assets_come_from_the_server_itself_cached_and_locked_to_it() {
    let app = TestApp::empty().await;
    let page = reqwest::Client::new()
        .get(app.url("/graphql"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let html = page.text().await.unwrap();
    let assets: Vec<&str> = html
        .split('"')
        .filter(|value| value.starts_with(prima_server::graphiql::ASSETS_PATH))
        .collect();
    assert_eq!(
        assets.len(),
        6,
        "a stylesheet, four scripts, the licences: {assets:?}"
    );
    for asset in assets {
        let answer = reqwest::get(app.url(asset)).await.unwrap();
        assert_eq!(answer.status(), 200, "{asset}");
        let kind = answer.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        let expected = match asset.rsplit('.').next() {
            Some("js") => "text/javascript",
            Some("css") => "text/css",
            _ => "text/plain",
        };
        assert!(kind.starts_with(expected), "{asset}: {kind}");
        assert!(
            answer.headers()["cache-control"]
                .to_str()
                .unwrap()
                .contains("immutable")
        );
        assert!(!answer.bytes().await.unwrap().is_empty(), "{asset}");
    }
    let missing =
        reqwest::get(app.url(&format!("{}/nope.js", prima_server::graphiql::ASSETS_PATH)))
            .await
            .unwrap();
    assert_eq!(missing.status(), 404);
}
