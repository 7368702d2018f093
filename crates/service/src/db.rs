//! Connecting to the database (PostgreSQL, or SQLite as the embedded default), applying
//! migrations, and counting SQL statements (the `prima_db_statements_total` metric, and the
//! number the N+1 tests hold).

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use prima_migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbBackend};

tokio::task_local! {
    /// Set for background work (the outbox relay, the event hub's poll), whose statements
    /// are counted apart from those of requests.
    static BACKGROUND: ();
}

/// Runs `work` as background work: its SQL statements count in
/// [`Stats::background_statements`], not in [`Stats::statements`], so the per-request
/// statement counts (and the N+1 tests that hold them) are not disturbed by it.
pub async fn background<F: std::future::Future>(work: F) -> F::Output {
    BACKGROUND.scope((), work).await
}

/// Statement counters of one connection pool.
#[derive(Debug, Default)]
pub struct Stats {
    background: AtomicU64,
    statements: AtomicU64,
    failed: AtomicU64,
    micros: AtomicU64,
}

impl Stats {
    /// SQL statements executed so far for requests and commands (including failed ones),
    /// not counting [`background`] work.
    pub fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    /// SQL statements executed by [`background`] work (relay, event hub).
    pub fn background_statements(&self) -> u64 {
        self.background.load(Ordering::Relaxed)
    }
    /// SQL statements that returned an error.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }
    /// Total time spent in SQL statements, in seconds.
    pub fn seconds(&self) -> f64 {
        self.micros.load(Ordering::Relaxed) as f64 / 1e6
    }
}

/// A connection pool with its statement counters.
#[derive(Debug, Clone)]
pub struct Db {
    /// The pool; cheap to clone.
    pub conn: DatabaseConnection,
    /// Counters fed by every statement the pool executes.
    pub stats: Arc<Stats>,
}

impl Db {
    /// Which database this is.
    pub fn backend(&self) -> DbBackend {
        self.conn.get_database_backend()
    }
}

/// Pool settings.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Most connections the pool opens (SQLite in memory always uses one).
    pub max_connections: u32,
    /// How long a request waits for a free connection.
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

/// Connects to `url` (`postgres://...` or `sqlite://...`), creating a SQLite file if it is
/// missing. SQLite gets WAL, `foreign_keys=ON` and a busy timeout; an in-memory SQLite
/// database keeps exactly one connection forever, since each connection would be its own
/// database.
pub async fn connect(url: &str, settings: &PoolSettings) -> anyhow::Result<Db> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .sqlx_logging(false)
        .acquire_timeout(settings.acquire_timeout)
        .max_connections(settings.max_connections);
    if url.starts_with("sqlite:") {
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let parsed = SqliteConnectOptions::from_str(url)
            .with_context(|| format!("parsing the SQLite URL {url}"))?;
        options.map_sqlx_sqlite_opts(move |_| {
            let opts = parsed
                .clone()
                .create_if_missing(true)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            if in_memory {
                opts
            } else {
                opts.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
            }
        });
        if in_memory {
            options
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
        }
    }
    let mut conn = Database::connect(options)
        .await
        .with_context(|| format!("connecting to {}", redact(url)))?;
    let stats = Arc::new(Stats::default());
    let counters = stats.clone();
    conn.set_metric_callback(move |info| {
        if BACKGROUND.try_with(|_| ()).is_ok() {
            counters.background.fetch_add(1, Ordering::Relaxed);
        } else {
            counters.statements.fetch_add(1, Ordering::Relaxed);
        }
        counters
            .micros
            .fetch_add(info.elapsed.as_micros() as u64, Ordering::Relaxed);
        if info.failed {
            counters.failed.fetch_add(1, Ordering::Relaxed);
        }
        tracing::trace!(target: "prima::sql", elapsed = ?info.elapsed, failed = info.failed, "{}", info.statement.sql);
    });
    Ok(Db { conn, stats })
}

/// Applies every pending migration.
pub async fn migrate(db: &Db) -> anyhow::Result<()> {
    Migrator::up(&db.conn, None)
        .await
        .context("applying migrations")
}

/// A database URL with its password replaced, for logs and errors.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_database_urls_are_redacted() {
        assert_eq!(
            redact("postgres://prima:hunter2@db:5432/prima"),
            "postgres://prima:***@db:5432/prima"
        );
        assert_eq!(
            redact("postgres://postgres@127.0.0.1/x"),
            "postgres://postgres@127.0.0.1/x"
        );
        assert_eq!(
            redact("sqlite://prima.db?mode=rwc"),
            "sqlite://prima.db?mode=rwc"
        );
    }
}
