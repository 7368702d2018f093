//! The black-box test harness: each test gets its own database and a real server on a
//! random port, and talks to it over HTTP and WebSocket as the dashboard would.
//! Databases come from `prima_service::testing`: SQLite in memory by default, a fresh
//! PostgreSQL database per test with `TEST_DATABASE_URL`.

use std::net::SocketAddr;

use anyhow::Context;
use prima_server::app::Running;
use prima_server::config::ServeArgs;
use serde_json::{Value, json};

pub use fixtures::{IncentiveBuilder, Pricing, PromoterBuilder, Role, User, VenueBuilder};
pub use prima_service::testing::TestDb;

mod fixtures;
pub mod node;

/// The document [`TestApp::login`] sends (a trusted-documents manifest must hold it).
pub const LOGIN: &str =
    "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }";

/// Every demo user's password.
pub const PASSWORD: &str = prima_service::seed::DEMO_PASSWORD;

/// A running server over its own database.
pub struct TestApp {
    /// Where the server listens.
    pub addr: SocketAddr,
    server: Option<Running>,
    http: reqwest::Client,
    /// The settings it runs with (replicas share them).
    pub args: ServeArgs,
    /// The database (dropped with the app).
    pub db: TestDb,
    /// The global ADMIN who builds fixtures (see [`TestApp::admin`]).
    admin: tokio::sync::OnceCell<User>,
}

/// A second server over the same database (and, with Redis, the same event channel): a
/// replica.
pub struct Replica {
    /// Where it listens.
    pub addr: SocketAddr,
    server: Option<Running>,
}

impl Replica {
    /// Stops it, draining requests.
    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.expect("stopping the replica");
        }
    }
}

impl TestApp {
    /// A server over an empty, migrated database.
    pub async fn empty() -> TestApp {
        init_logs();
        Self::start(TestDb::new().await).await
    }

    /// A server over an empty, migrated database, with settings.
    pub async fn empty_with(args: ServeArgs) -> TestApp {
        Self::start_with(TestDb::new().await, args).await
    }

    /// A server over the demo portfolio with `bookings` bookings.
    pub async fn demo(bookings: u64) -> TestApp {
        Self::demo_with(bookings, ServeArgs::default()).await
    }

    /// A server over the demo portfolio, with settings.
    pub async fn demo_with(bookings: u64, args: ServeArgs) -> TestApp {
        let db = TestDb::new().await;
        prima_service::seed::seed(
            &db.db.conn,
            &prima_service::seed::SeedOptions {
                bookings,
                now: prima_service::time::now(),
            },
        )
        .await
        .expect("seeding the demo portfolio");
        Self::start_with(db, args).await
    }

    async fn start(db: TestDb) -> TestApp {
        Self::start_with(db, ServeArgs::default()).await
    }

    async fn start_with(db: TestDb, args: ServeArgs) -> TestApp {
        init_logs();
        // With TEST_REDIS_URL the events go through Redis, on a channel of this test's own,
        // and the limiter's counters under a prefix of its own (tests run in parallel on
        // one Redis).
        let redis_url = std::env::var("TEST_REDIS_URL")
            .ok()
            .filter(|url| !url.is_empty());
        let test = uuid::Uuid::new_v4();
        let args = ServeArgs {
            token_secret: Some("a-test-secret-of-enough-length".parse().expect("secret")),
            redis_url: args.redis_url.clone().or(redis_url),
            events_channel: format!("prima:test:{test}"),
            login: prima_server::config::LoginArgs {
                limiter_prefix: format!("prima:test:{test}:limit"),
                ..args.login
            },
            ..args
        };
        let server = prima_server::app::spawn(db.db.clone(), &args)
            .await
            .expect("starting the server");
        TestApp {
            addr: server.addr,
            server: Some(server),
            http: reqwest::Client::new(),
            args,
            db,
            admin: tokio::sync::OnceCell::new(),
        }
    }

    /// Starts a replica: another server (its own relay, hub and listener) over the same
    /// database and event channel.
    pub async fn replica(&self) -> Replica {
        let server = prima_server::app::spawn(self.db.db.clone(), &self.args)
            .await
            .expect("starting a replica");
        Replica {
            addr: server.addr,
            server: Some(server),
        }
    }

    /// Opens a graphql-transport-ws connection and sends `connection_init` with the token.
    pub async fn ws(&self, token: Option<&str>) -> Ws {
        Ws::connect(self.addr, token).await
    }

    /// `http://127.0.0.1:port/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Waits until at least `n` subscriptions (event feeds) listen on this server, as its
    /// `/metrics` counts them. A feed without `after` receives the changes committed after
    /// it starts, so a test waits for this before making the change it expects.
    pub async fn subscribers_at_least(&self, n: usize) {
        eventually(
            &format!("{n} live subscription(s) on the server"),
            std::time::Duration::from_secs(10),
            async || (subscribers(&self.url("/metrics")).await >= n).then_some(()),
        )
        .await
    }

    /// SQL statements the server's pool has executed so far.
    pub fn statements(&self) -> u64 {
        self.db.db.stats.statements()
    }

    /// POSTs a GraphQL request and returns the whole JSON response.
    pub async fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self
            .http
            .post(self.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("sending a GraphQL request");
        assert!(
            response.status().is_success(),
            "GraphQL over HTTP answers 200 even for errors, got {}",
            response.status()
        );
        response.json().await.expect("a JSON response")
    }

    /// Logs in and returns the token (panics if the login fails).
    pub async fn login(&self, email: &str) -> String {
        let response = self
            .graphql(None, LOGIN, json!({ "e": email, "p": PASSWORD }))
            .await;
        response["data"]["login"]["token"]
            .as_str()
            .with_context(|| format!("login of {email} failed: {response}"))
            .unwrap()
            .to_owned()
    }

    /// Runs a query as `token` and returns `data`, failing the test on any error.
    pub async fn query_ok(&self, token: &str, query: &str, variables: Value) -> Value {
        let response = self.graphql(Some(token), query, variables).await;
        assert!(
            response.get("errors").is_none(),
            "unexpected errors: {response}"
        );
        response["data"].clone()
    }

    /// Stops the server, draining requests.
    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.expect("stopping the server");
        }
    }
}

/// A graphql-transport-ws client connection, as the dashboard's `graphql-ws` client opens
/// it.
pub struct Ws {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

/// What arrived on a WebSocket.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A protocol message (`connection_ack`, `next`, `error`, `complete`, `ping`...).
    Json(Value),
    /// The server closed the connection with this code and reason.
    Closed(u16, String),
}

impl Ws {
    /// Connects to `addr` and sends `connection_init` (with the token when given).
    pub async fn connect(addr: SocketAddr, token: Option<&str>) -> Ws {
        use futures::SinkExt;
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = format!("ws://{addr}/graphql/ws")
            .into_client_request()
            .expect("a WebSocket request");
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().expect("a header value"),
        );
        let (socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("connecting the WebSocket");
        let mut ws = Ws { socket };
        let payload = match token {
            Some(token) => json!({ "authorization": format!("Bearer {token}") }),
            None => json!({}),
        };
        ws.socket
            .send(ws_text(
                json!({ "type": "connection_init", "payload": payload }),
            ))
            .await
            .expect("sending connection_init");
        ws
    }

    /// Sends `subscribe` with this id.
    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        use futures::SinkExt;
        self.socket
            .send(ws_text(json!({
                "id": id, "type": "subscribe",
                "payload": { "query": query, "variables": variables },
            })))
            .await
            .expect("sending subscribe");
    }

    /// The next frame within `timeout` (pings are answered and skipped); `None` on timeout.
    pub async fn next_within(&mut self, timeout: std::time::Duration) -> Option<Frame> {
        use futures::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let message = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .ok()?;
            match message {
                None | Some(Err(_)) => return Some(Frame::Closed(1006, "gone".into())),
                Some(Ok(Message::Text(text))) => {
                    let value: Value = serde_json::from_str(&text).expect("JSON from the server");
                    if value["type"] == "ping" {
                        let _ = self.socket.send(ws_text(json!({ "type": "pong" }))).await;
                        continue;
                    }
                    return Some(Frame::Json(value));
                }
                Some(Ok(Message::Close(frame))) => {
                    return Some(match frame {
                        Some(frame) => Frame::Closed(frame.code.into(), frame.reason.to_string()),
                        None => Frame::Closed(1005, String::new()),
                    });
                }
                Some(Ok(_)) => continue,
            }
        }
    }

    /// The next JSON message within 10 s, failing the test otherwise.
    pub async fn next_json(&mut self) -> Value {
        match self.next_within(std::time::Duration::from_secs(10)).await {
            Some(Frame::Json(value)) => value,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    /// Closes the connection.
    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}

fn ws_text(value: Value) -> tokio_tungstenite::tungstenite::Message {
    tokio_tungstenite::tungstenite::Message::Text(value.to_string().into())
}

/// Polls `probe` every 20 ms until it returns `Some`, and returns that; panics naming
/// `what` when `timeout` passes first. The way a test waits for something to happen.
pub async fn eventually<T>(
    what: &str,
    timeout: std::time::Duration,
    mut probe: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited {timeout:?} for {what}, in vain"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The `prima_subscribers` gauge of a `/metrics` page at `url`.
pub async fn subscribers(url: &str) -> usize {
    gauge(url, "prima_subscribers").await
}

/// A gauge of a `/metrics` page at `url`.
pub async fn gauge(url: &str, name: &str) -> usize {
    let page = reqwest::get(url)
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("the metrics page");
    let prefix = format!("{name} ");
    page.lines()
        .find_map(|line| line.strip_prefix(prefix.as_str()))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} gauge in /metrics:\n{page}"))
}

/// The `extensions.code` of each error of a response, in order.
pub fn error_codes(response: &Value) -> Vec<String> {
    response["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    e["extensions"]["code"]
                        .as_str()
                        .unwrap_or("<none>")
                        .to_owned()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Logs stay silent in tests unless `PRIMA_TEST_LOG` holds a filter, e.g.
/// `PRIMA_TEST_LOG=prima::sql=trace` to see every SQL statement.
fn init_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Ok(filter) = std::env::var("PRIMA_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        }
    });
}
