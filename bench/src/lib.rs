//! What the benchmarks share: settings from the environment, timing figures, one-value SQL
//! reads and a GraphQL-over-HTTP client.

use std::time::Duration;

use anyhow::{Context, bail};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::{Value, json};
use uuid::Uuid;

/// The number in environment variable `name`, or `default` when it is unset or not one.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A duration in milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The `p` quantile of sorted samples (NaN when there are none).
pub fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// The integer in the first column of the first row of `sql`.
pub async fn scalar(conn: &DatabaseConnection, sql: &str) -> anyhow::Result<i64> {
    let row = conn
        .query_one_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await?
        .context("no row")?;
    Ok(row.try_get_by_index::<i64>(0)?)
}

/// The id in the first column of the first row of `sql`.
pub async fn first(conn: &DatabaseConnection, sql: &str) -> anyhow::Result<Uuid> {
    let row = conn
        .query_one_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await?
        .with_context(|| format!("no row for {sql}"))?;
    Ok(row.try_get_by_index(0)?)
}

/// GraphQL over HTTP.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    endpoint: String,
}

impl Api {
    /// A client of the API listening at `addr`.
    pub fn new(addr: std::net::SocketAddr) -> Api {
        Api {
            http: reqwest::Client::new(),
            endpoint: format!("http://{addr}/graphql"),
        }
    }

    /// `data` of a query, failing on any error; `token` empty for none.
    pub async fn query(&self, token: &str, query: &str, variables: Value) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .post(&self.endpoint)
            .json(&json!({ "query": query, "variables": variables }));
        if !token.is_empty() {
            request = request.bearer_auth(token);
        }
        let body: Value = request.send().await?.json().await?;
        if let Some(errors) = body.get("errors") {
            bail!("`{query}` failed: {errors}");
        }
        Ok(body["data"].clone())
    }

    /// A token of demo user `email`.
    pub async fn login(&self, email: &str) -> anyhow::Result<String> {
        let data = self
            .query(
                "",
                "mutation($email: String!, $password: String!) { login(email: $email, password: $password) { token } }",
                json!({ "email": email, "password": prima_service::seed::DEMO_PASSWORD }),
            )
            .await
            .with_context(|| format!("logging in as {email}: is the database the demo's?"))?;
        Ok(data["login"]["token"]
            .as_str()
            .context("no token")?
            .to_owned())
    }
}
