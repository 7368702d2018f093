//! The black-box test harness: each test gets its own database and a real server on a
//! random port, and talks to it over HTTP and WebSocket as the dashboard would.
//! Databases come from `prima_service::testing`: SQLite in memory by default, a fresh
//! PostgreSQL database per test with `TEST_DATABASE_URL`.

use std::net::SocketAddr;

use anyhow::Context;
use prima_server::app::Running;
use prima_server::config::ServeArgs;
use serde_json::{Value, json};

pub use prima_service::testing::TestDb;

/// Every demo user's password.
pub const PASSWORD: &str = prima_service::seed::DEMO_PASSWORD;

/// A running server over its own database.
pub struct TestApp {
    /// Where the server listens.
    pub addr: SocketAddr,
    server: Option<Running>,
    http: reqwest::Client,
    /// The database (dropped with the app).
    pub db: TestDb,
}

impl TestApp {
    /// A server over an empty, migrated database.
    pub async fn empty() -> TestApp {
        init_logs();
        Self::start(TestDb::new().await).await
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
        let args = ServeArgs {
            token_secret: Some("a-test-secret-of-enough-length".parse().expect("secret")),
            ..args
        };
        let server = prima_server::app::spawn(db.db.clone(), &args)
            .await
            .expect("starting the server");
        TestApp {
            addr: server.addr,
            server: Some(server),
            http: reqwest::Client::new(),
            db,
        }
    }

    /// `http://127.0.0.1:port/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
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
            .graphql(
                None,
                "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
                json!({ "e": email, "p": PASSWORD }),
            )
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
