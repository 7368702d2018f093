//! Connecting to the database (PostgreSQL, or SQLite as the embedded default), applying
//! migrations, counting SQL statements (the `prima_db_statements_total` metric, and the
//! number the N+1 tests hold), and running transactions again when the database gives up
//! on them for a reason that has nothing to do with the request ([`retry_transient`]).
//!
//! Retry policy:
//! - Transient, and only these: PostgreSQL's deadlock victim (SQLSTATE `40P01`) and
//!   serialization failure (`40001`), SQLite's `SQLITE_BUSY` (the write lock stayed taken
//!   past the busy timeout, or a read snapshot went stale before its first write) and
//!   `SQLITE_LOCKED`, with any extended code. The database rolled the whole transaction
//!   back, so running it again from its first statement is safe: nothing of the failed
//!   attempt remains, idempotency key rows included.
//! - Every mutation that opens a transaction runs it through [`retry_transient`]: up to
//!   [`RETRY`]`.attempts` attempts (5), with an exponential, jittered pause between them
//!   (half of it fixed, half random: at most 10, 20, 40 and 80 ms), so two victims
//!   of one deadlock do not collide again in step.
//! - Anything else (a constraint, a conflict the service decided, a lost connection) is
//!   returned at once. When every attempt failed transiently the answer is CONFLICT
//!   ("try again"), never INTERNAL: the request was fine, the database was busy.
//! - A retried deadlock is logged at WARN (after the documented lock order,
//!   [`crate::bookings`], one means a write path broke it), a serialization failure or a
//!   busy SQLite at DEBUG, an exhausted retry at WARN. [`retry_counts`] feeds the
//!   `prima_db_transaction_retries_total` metric.

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use prima_migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbBackend, DbErr, RuntimeErr};

use crate::error::{Error, Result};

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
    /// The outbox relay's doorbell, which a write rings after it committed outbox rows
    /// ([`crate::events`]; the relay started for this pool listens to it).
    pub relay: crate::events::relay::Doorbell,
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

/// How long a pooled connection may sit idle before it is pinged on its next checkout.
pub const IDLE_BEFORE_PING: Duration = Duration::from_secs(10);

/// Connects to `url` (`postgres://...` or `sqlite://...`), creating a SQLite file if it is
/// missing. SQLite gets WAL, `foreign_keys=ON` and a busy timeout; an in-memory SQLite
/// database keeps exactly one connection forever, since each connection would be its own
/// database.
pub async fn connect(url: &str, settings: &PoolSettings) -> anyhow::Result<Db> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .sqlx_logging(false)
        .acquire_timeout(settings.acquire_timeout)
        .max_connections(settings.max_connections)
        // A connection in use is known to be alive; one that sat idle may have been dropped
        // by the server or a proxy in between. Pinging on every checkout (the default) is a
        // round trip more per statement: under load, most of the sends to the database.
        .test_before_acquire_if_idle_for(IDLE_BEFORE_PING);
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
    let mut conn = match Database::connect(options).await {
        Ok(conn) => conn,
        Err(err) => return Err(why_no_connection(url, err, settings).await),
    };
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
    Ok(Db {
        conn,
        stats,
        relay: Default::default(),
    })
}

/// The error of a failed connect, with its root cause. The pool retries a refused or
/// unreachable server until its acquire timeout and then reports only "pool timed out";
/// one direct connection then says why (connection refused, unknown host, no such role).
async fn why_no_connection(url: &str, err: DbErr, settings: &PoolSettings) -> anyhow::Error {
    use sea_orm::sqlx::Connection as _;
    let place = format!("connecting to {}", redact(url));
    let timed_out = matches!(
        &err,
        DbErr::Conn(RuntimeErr::SqlxError(sqlx)) if matches!(**sqlx, sea_orm::sqlx::Error::PoolTimedOut)
    );
    if timed_out && url.starts_with("postgres") {
        let direct = async {
            let options = sea_orm::sqlx::postgres::PgConnectOptions::from_str(url)?;
            sea_orm::sqlx::PgConnection::connect_with(&options)
                .await?
                .close()
                .await
        };
        if let Err(cause) = direct.await {
            return anyhow::anyhow!(
                "{place}: {cause} (retried for {} s)",
                settings.acquire_timeout.as_secs()
            );
        }
    }
    anyhow::Error::new(err).context(place)
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

// ---------------------------------------------------------------------------------------
// Retrying transient failures
// ---------------------------------------------------------------------------------------

/// Why the database gave up on a transaction that may well succeed when run again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transient {
    /// PostgreSQL chose it as the victim of a deadlock (SQLSTATE `40P01`).
    Deadlock,
    /// PostgreSQL could not serialize it with concurrent transactions (`40001`).
    Serialization,
    /// SQLite's write lock was taken (`SQLITE_BUSY`, `SQLITE_LOCKED` and their extended
    /// codes, such as `SQLITE_BUSY_SNAPSHOT`).
    Busy,
}

/// SQLite's primary result codes for a lock that is taken.
const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;

/// Whether a database error is [`Transient`], from its SQLSTATE (PostgreSQL, five
/// characters) or its extended result code (SQLite, a number whose low byte is the primary
/// code).
pub fn transient(err: &DbErr) -> Option<Transient> {
    let (DbErr::Exec(RuntimeErr::SqlxError(err))
    | DbErr::Query(RuntimeErr::SqlxError(err))
    | DbErr::Conn(RuntimeErr::SqlxError(err))) = err
    else {
        return None;
    };
    let sea_orm::sqlx::Error::Database(err) = &**err else {
        return None;
    };
    let code = err.code()?;
    match code.as_ref() {
        "40P01" => Some(Transient::Deadlock),
        "40001" => Some(Transient::Serialization),
        sqlstate if sqlstate.len() == 5 => None,
        sqlite => match sqlite.parse::<i32>().ok()? & 0xff {
            SQLITE_BUSY | SQLITE_LOCKED => Some(Transient::Busy),
            _ => None,
        },
    }
}

/// Whether a service error is a [`Transient`] database failure (it reaches the service as
/// [`Error::Internal`] wrapping the [`DbErr`]).
pub fn transient_error(err: &Error) -> Option<Transient> {
    let Error::Internal(inner) = err else {
        return None;
    };
    inner
        .chain()
        .find_map(|cause| cause.downcast_ref::<DbErr>())
        .and_then(transient)
}

/// How a transaction is run again after a transient failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The longest pause before the second attempt; it doubles for each further one.
    pub first_pause: Duration,
    /// The longest pause ever.
    pub max_pause: Duration,
}

/// The policy of every mutation: 5 attempts, pauses of at most 10, 20, 40 and 80 ms.
pub const RETRY: RetryPolicy = RetryPolicy {
    attempts: 5,
    first_pause: Duration::from_millis(10),
    max_pause: Duration::from_millis(160),
};

impl RetryPolicy {
    /// The pause after `failures` failed attempts (1 or more): between half of and the
    /// whole of `first_pause * 2^(failures - 1)` (at most `max_pause`), the rest random.
    pub fn pause(&self, failures: u32) -> Duration {
        use rand::Rng;
        let ceiling = self
            .first_pause
            .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
            .min(self.max_pause);
        let half = ceiling / 2;
        let jitter = rand::rng().random_range(0..=(ceiling - half).as_micros() as u64);
        half + Duration::from_micros(jitter)
    }
}

/// The answer when every attempt failed transiently.
pub const BUSY: &str = "the database was too busy with concurrent changes to make this one; nothing was changed, try again";

static RETRIED: AtomicU64 = AtomicU64::new(0);
static EXHAUSTED: AtomicU64 = AtomicU64::new(0);

/// Transactions run again so far by [`retry_transient`], and requests that ran out of
/// attempts. Process-wide (service functions take a bare `DatabaseConnection`, which has no
/// room for counters): one server is one process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryCounts {
    /// Attempts that failed transiently and were run again.
    pub retried: u64,
    /// Requests whose every attempt failed transiently (answered CONFLICT).
    pub exhausted: u64,
}

/// The process's [`RetryCounts`].
pub fn retry_counts() -> RetryCounts {
    RetryCounts {
        retried: RETRIED.load(Ordering::Relaxed),
        exhausted: EXHAUSTED.load(Ordering::Relaxed),
    }
}

/// Runs `attempt` (which opens, fills and commits one transaction) until it succeeds, fails
/// for a reason that is not [`Transient`], or has failed transiently [`RETRY`]`.attempts`
/// times, which answers CONFLICT ([`BUSY`]). `operation` names it in the logs.
///
/// `attempt` runs from scratch each time, so it builds everything it writes inside (fresh
/// ids included) from what it captured: typically `|| async move { let txn =
/// db.begin().await?; ...; txn.commit().await?; Ok(row) }` over references.
pub async fn retry_transient<T, F, Fut>(operation: &'static str, attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    retry_with(&RETRY, operation, attempt).await
}

/// [`retry_transient`] with another policy (the tests use one without pauses).
pub async fn retry_with<T, F, Fut>(
    policy: &RetryPolicy,
    operation: &'static str,
    mut attempt: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut failures = 0;
    loop {
        let err = match attempt().await {
            Ok(value) => return Ok(value),
            Err(err) => err,
        };
        let Some(kind) = transient_error(&err) else {
            return Err(err);
        };
        failures += 1;
        if failures >= policy.attempts {
            EXHAUSTED.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(operation, attempts = failures, ?kind, error = ?err, "transient database failure on every attempt: answering CONFLICT");
            return Err(Error::Conflict(BUSY.into()));
        }
        RETRIED.fetch_add(1, Ordering::Relaxed);
        let pause = policy.pause(failures);
        if kind == Transient::Deadlock {
            tracing::warn!(operation, attempt = failures, ?pause, error = ?err, "deadlock: running the transaction again");
        } else {
            tracing::debug!(
                operation,
                attempt = failures,
                ?kind,
                ?pause,
                "transient database failure: running the transaction again"
            );
        }
        tokio::time::sleep(pause).await;
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

    // --- Retrying ------------------------------------------------------------------------

    use std::borrow::Cow;
    use std::sync::atomic::AtomicU32;

    use sea_orm::sqlx::error::{DatabaseError, ErrorKind};
    use sea_orm::{ConnectionTrait, EntityTrait, TransactionTrait};

    /// A database error that carries only its code, as sqlx reports one.
    #[derive(Debug)]
    struct Coded(&'static str);

    impl std::fmt::Display for Coded {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "database error {}", self.0)
        }
    }

    impl std::error::Error for Coded {}

    impl DatabaseError for Coded {
        fn message(&self) -> &str {
            "database error"
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(self.0.into())
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> ErrorKind {
            ErrorKind::Other
        }
    }

    fn db_error(code: &'static str) -> DbErr {
        DbErr::Exec(RuntimeErr::SqlxError(Arc::new(
            sea_orm::sqlx::Error::Database(Box::new(Coded(code))),
        )))
    }

    #[test]
    fn deadlocks_serialization_failures_and_a_busy_sqlite_are_transient_and_constraints_are_not() {
        assert_eq!(transient(&db_error("40P01")), Some(Transient::Deadlock));
        assert_eq!(
            transient(&db_error("40001")),
            Some(Transient::Serialization)
        );
        // SQLITE_BUSY, SQLITE_BUSY_SNAPSHOT, SQLITE_LOCKED, SQLITE_LOCKED_SHAREDCACHE.
        for busy in ["5", "517", "6", "262"] {
            assert_eq!(transient(&db_error(busy)), Some(Transient::Busy), "{busy}");
        }
        // Unique and foreign key violations, a lock timeout, a query cancelled; SQLite's
        // unique, primary key and foreign key constraints, a read-only database.
        for lasting in [
            "23505", "23503", "55P03", "57014", "2067", "1555", "787", "8",
        ] {
            assert_eq!(transient(&db_error(lasting)), None, "{lasting}");
        }
        assert_eq!(
            transient(&DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout)),
            None
        );

        // As the service sees them: wrapped in Error::Internal, with or without context.
        assert_eq!(
            transient_error(&Error::from(db_error("40P01"))),
            Some(Transient::Deadlock)
        );
        let with_context = anyhow::Error::new(db_error("40001")).context("confirming");
        assert_eq!(
            transient_error(&Error::internal(with_context)),
            Some(Transient::Serialization)
        );
        assert_eq!(transient_error(&Error::from(db_error("23505"))), None);
        assert_eq!(transient_error(&Error::Conflict("taken".into())), None);
        assert_eq!(
            transient_error(&Error::internal(anyhow::anyhow!("40P01"))),
            None
        );
    }

    /// Runs `retry_transient` over a closure that fails with `failures[i]` on attempt `i`
    /// (succeeding once they run out); the result and how many attempts ran.
    async fn attempts_of(failures: Vec<Error>) -> (Result<&'static str>, u32) {
        let runs = AtomicU32::new(0);
        let result = retry_transient("test", || {
            let n = runs.fetch_add(1, Ordering::Relaxed) as usize;
            let outcome = failures.get(n).cloned();
            async move {
                match outcome {
                    Some(err) => Err(err),
                    None => Ok("done"),
                }
            }
        })
        .await;
        (result, runs.into_inner())
    }

    #[tokio::test(start_paused = true)]
    async fn a_closure_failing_twice_with_a_deadlock_runs_three_times_and_succeeds() {
        let before = retry_counts();
        let deadlock = || Error::from(db_error("40P01"));
        let (result, runs) = attempts_of(vec![deadlock(), deadlock()]).await;
        assert_eq!(result.unwrap(), "done");
        assert_eq!(runs, 3);
        assert!(retry_counts().retried >= before.retried + 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lasting_error_is_returned_after_one_attempt() {
        let (result, runs) = attempts_of(vec![Error::from(db_error("23505"))]).await;
        assert_eq!(result.unwrap_err().code(), "INTERNAL");
        assert_eq!(runs, 1);
        let (result, runs) = attempts_of(vec![Error::Conflict("taken".into())]).await;
        assert_eq!(result.unwrap_err().to_string(), "taken");
        assert_eq!(runs, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_on_every_attempt_stop_at_the_bound_with_a_conflict() {
        let before = retry_counts();
        let busy: Vec<Error> = (0..10).map(|_| Error::from(db_error("517"))).collect();
        let started = tokio::time::Instant::now();
        let (result, runs) = attempts_of(busy).await;
        let err = result.unwrap_err();
        assert_eq!(runs, RETRY.attempts);
        assert_eq!(err.code(), "CONFLICT");
        assert_eq!(err.to_string(), BUSY);
        assert!(retry_counts().exhausted > before.exhausted);
        // Four pauses, each at least half of 10, 20, 40, 80 ms and at most all of it.
        let paused = started.elapsed();
        assert!(paused >= Duration::from_millis(75), "{paused:?}");
        assert!(paused <= Duration::from_millis(150), "{paused:?}");
    }

    #[test]
    fn pauses_double_with_jitter_and_stay_under_the_cap() {
        for failures in 1..=8u32 {
            let ceiling = (RETRY.first_pause * 2u32.pow(failures - 1)).min(RETRY.max_pause);
            for _ in 0..50 {
                let pause = RETRY.pause(failures);
                assert!(
                    pause >= ceiling / 2 && pause <= ceiling,
                    "{failures}: {pause:?}"
                );
            }
        }
    }

    /// One transaction that bumps two venue rows in the order given, waiting at `barrier`
    /// between them when one is given.
    async fn bump_both(
        conn: &DatabaseConnection,
        first: uuid::Uuid,
        second: uuid::Uuid,
        barrier: Option<&tokio::sync::Barrier>,
    ) -> Result<()> {
        let bump = |id: uuid::Uuid| {
            sea_orm::Statement::from_sql_and_values(
                DbBackend::Postgres,
                "UPDATE venues SET average_daily_bookings = average_daily_bookings + 1 WHERE id = $1",
                [id.into()],
            )
        };
        let txn = conn.begin().await?;
        txn.execute_raw(bump(first)).await?;
        if let Some(barrier) = barrier {
            barrier.wait().await;
        }
        txn.execute_raw(bump(second)).await?;
        txn.commit().await?;
        Ok(())
    }

    #[tokio::test]
    async fn two_rows_locked_in_opposite_orders_deadlock_on_postgresql_and_the_retry_makes_both_succeed()
     {
        let db = crate::testing::TestDb::new().await;
        if !db.is_postgres() {
            eprintln!("skipped: a deadlock needs PostgreSQL (TEST_DATABASE_URL)");
            return;
        }
        let (a, b) = (
            crate::testing::fixtures::venue(&db).await,
            crate::testing::fixtures::venue(&db).await,
        );
        // Without the retry: PostgreSQL picks a victim, which fails with 40P01.
        let barrier = tokio::sync::Barrier::new(2);
        let (one, other) = tokio::join!(
            bump_both(&db.conn, a, b, Some(&barrier)),
            bump_both(&db.conn, b, a, Some(&barrier)),
        );
        let failed: Vec<Error> = [one, other].into_iter().filter_map(Result::err).collect();
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert_eq!(transient_error(&failed[0]), Some(Transient::Deadlock));

        // With it: the victim runs again (without the barrier) once the winner committed.
        let runs = AtomicU32::new(0);
        let barrier = tokio::sync::Barrier::new(2);
        let retried = |first, second| {
            let (runs, barrier, conn) = (&runs, &barrier, &db.conn);
            retry_transient("test", move || async move {
                let first_run = runs.fetch_add(1, Ordering::Relaxed) < 2;
                bump_both(conn, first, second, first_run.then_some(barrier)).await
            })
        };
        let (one, other) = tokio::join!(retried(a, b), retried(b, a));
        one.unwrap();
        other.unwrap();
        assert_eq!(
            runs.into_inner(),
            3,
            "the victim ran twice, the winner once"
        );
        for venue in [a, b] {
            let row = prima_entity::venues::Entity::find_by_id(venue)
                .one(&db.conn)
                .await
                .unwrap()
                .unwrap();
            // One bump by the winner of the first race, two by the transactions that
            // committed afterwards.
            assert_eq!(row.average_daily_bookings, 3);
        }
    }

    /// A SQLite file of its own, deleted afterwards.
    struct TempSqlite(std::path::PathBuf);

    impl Drop for TempSqlite {
        fn drop(&mut self) {
            for suffix in ["", "-wal", "-shm"] {
                let mut path = self.0.clone().into_os_string();
                path.push(suffix);
                let _ = std::fs::remove_file(path);
            }
        }
    }

    #[tokio::test]
    async fn a_stale_sqlite_snapshot_is_busy_and_the_retry_makes_the_change() {
        let file = TempSqlite(
            std::env::temp_dir().join(format!("prima-busy-{}.db", uuid::Uuid::new_v4().simple())),
        );
        let url = format!("sqlite://{}?mode=rwc", file.0.display());
        let settings = PoolSettings {
            max_connections: 2,
            ..PoolSettings::default()
        };
        let db = connect(&url, &settings).await.unwrap();
        db.conn
            .execute_unprepared(
                "CREATE TABLE counter (n INTEGER NOT NULL); INSERT INTO counter VALUES (0)",
            )
            .await
            .unwrap();
        let n = |conn: &DatabaseConnection| {
            let conn = conn.clone();
            async move {
                conn.query_one_raw(sea_orm::Statement::from_string(
                    DbBackend::Sqlite,
                    "SELECT n FROM counter",
                ))
                .await
                .unwrap()
                .unwrap()
                .try_get::<i64>("", "n")
                .unwrap()
            }
        };
        // A transaction that reads, then writes after another connection committed a write:
        // its snapshot is stale and SQLite refuses at once (SQLITE_BUSY_SNAPSHOT).
        let stale = |interleave: bool| {
            let conn = db.conn.clone();
            async move {
                let txn = conn.begin().await?;
                txn.query_one_raw(sea_orm::Statement::from_string(
                    DbBackend::Sqlite,
                    "SELECT n FROM counter",
                ))
                .await?;
                if interleave {
                    conn.execute_unprepared("UPDATE counter SET n = n + 1")
                        .await?;
                }
                txn.execute_unprepared("UPDATE counter SET n = n + 10")
                    .await?;
                txn.commit().await?;
                Ok::<(), Error>(())
            }
        };
        let err = stale(true).await.unwrap_err();
        assert_eq!(transient_error(&err), Some(Transient::Busy), "{err:?}");
        assert_eq!(n(&db.conn).await, 1);

        let runs = AtomicU32::new(0);
        retry_transient("test", || stale(runs.fetch_add(1, Ordering::Relaxed) == 0))
            .await
            .unwrap();
        assert_eq!(runs.into_inner(), 2);
        assert_eq!(n(&db.conn).await, 1 + 1 + 10);
    }
}
