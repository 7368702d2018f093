//! The HTTP surface besides /graphql POST: GraphiQL, health, readiness, metrics, WebSocket.

use futures::{SinkExt, StreamExt};
use prima_tests::{Role, TestApp};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[tokio::test]
async fn graphiql_is_served_with_the_websocket_endpoint() {
    let app = TestApp::empty().await;
    let page = reqwest::get(app.url("/graphql"))
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
