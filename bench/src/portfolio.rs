//! Portfolio-query benchmark: starts the API in-process over an already seeded database
//! (`DATABASE_URL`, default the embedded `prima.db`), logs in as `owner@prima.demo`, and runs
//! the dashboard's portfolio query `ROUNDS` times (default 50) one after another, printing
//! latency percentiles and SQL statements per query. See bench/README.md.

/// The server's allocator (see crates/server/src/main.rs), so the in-process server costs
/// what `prima serve` does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use anyhow::{Context, bail};
use prima_server::config::ServeArgs;
use prima_service::db::{self, PoolSettings};
use serde_json::{Value, json};

const PORTFOLIO: &str = "{ venues(first: 10) { edges { node { bookings(first: 50) { edges { node { guest { id } promoter { id } transactions { payout { id } } } } } } } } }";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://prima.db?mode=rwc".into());
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(50);
    let db = db::connect(&url, &PoolSettings::default()).await?;
    db::migrate(&db).await?;
    let stats = db.stats.clone();
    // The per-user rate limit off: one user running the query back to back is the point
    // here (the query costs ~37,500 points; the default budget refills 100,000 a second).
    let mut args = ServeArgs::default();
    args.limits.rate_limit_points = 0;
    let server = prima_server::app::spawn(db, &args).await?;
    let endpoint = format!("http://{}/graphql", server.addr);
    let http = reqwest::Client::new();
    let post = |token: Option<String>, query: &str| {
        let mut request = http.post(&endpoint).json(&json!({ "query": query }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            let body: Value = request.send().await?.json().await?;
            anyhow::Ok(body)
        }
    };
    let login = post(
        None,
        r#"mutation { login(email: "owner@prima.demo", password: "prima-demo") { token } }"#,
    )
    .await?;
    let token = login["data"]["login"]["token"]
        .as_str()
        .context("login failed: is the database seeded (`prima seed`)?")?
        .to_owned();
    let warm = post(Some(token.clone()), PORTFOLIO).await?;
    if warm.get("errors").is_some() {
        bail!("the portfolio query failed: {warm}");
    }
    let mut latencies = Vec::with_capacity(rounds);
    let statements_before = stats.statements();
    let sql_before = stats.seconds();
    for _ in 0..rounds {
        let started = Instant::now();
        let body = post(Some(token.clone()), PORTFOLIO).await?;
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        if body.get("errors").is_some() {
            bail!("the portfolio query failed: {body}");
        }
    }
    let statements = (stats.statements() - statements_before) as f64 / rounds as f64;
    let sql_ms = (stats.seconds() - sql_before) * 1000.0 / rounds as f64;
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "portfolio query x{rounds} on {}: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {statements:.1} SQL statements and {sql_ms:.1} ms in SQL per query",
        db::redact(&url),
        pct(0.5),
        pct(0.9),
        pct(0.99),
        latencies[latencies.len() - 1],
    );
    server.shutdown().await
}
