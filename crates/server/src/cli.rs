//! The subcommands of `prima`.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use prima_service::db::{self, Db, PoolSettings};

use crate::config::{Cli, Command, CreateUserArgs, ServeArgs};

/// Runs one command.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let pool = PoolSettings {
        max_connections: cli.db_pool_size,
        ..PoolSettings::default()
    };
    match cli.command {
        Command::ExportSchema => {
            print!("{}", prima_graphql::sdl());
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => {
            let db = open(&cli.database_url, &pool).await?;
            tracing::info!("migrations applied");
            drop(db);
            Ok(ExitCode::SUCCESS)
        }
        Command::Seed(args) => {
            let db = open(&cli.database_url, &pool).await?;
            let started = std::time::Instant::now();
            let written = AtomicU64::new(0);
            let options = prima_service::seed::SeedOptions {
                bookings: args.bookings,
                now: prima_service::time::now(),
            };
            let seeding = prima_service::seed::seed_counting(&db.conn, &options, &written);
            let report = with_progress(args.bookings, &written, seeding).await?;
            println!(
                "seeded in {:.1}s: {report:?}\nlog in as admin@prima.demo, owner@prima.demo, manager@prima.demo, gm@prima.demo, coordinator@prima.demo or viewer@prima.demo with the password {} (README.md says what each may do)",
                started.elapsed().as_secs_f64(),
                prima_service::seed::DEMO_PASSWORD
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::CreateUser(args) => {
            let db = open(&cli.database_url, &pool).await?;
            create_user(&db, args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(args) => {
            let db = open(&cli.database_url, &pool).await?;
            serve(db, args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check(args) => check(&cli.database_url, &pool, args).await,
    }
}

async fn open(url: &str, pool: &PoolSettings) -> anyhow::Result<Db> {
    let db = db::connect(url, pool).await?;
    db::migrate(&db).await?;
    Ok(db)
}

async fn serve(db: Db, args: ServeArgs) -> anyhow::Result<()> {
    if args.seed_demo {
        if prima_service::users::exists(&db.conn, "admin@prima.demo").await? {
            tracing::info!("demo data already present");
        } else {
            let report = prima_service::seed::seed(
                &db.conn,
                &prima_service::seed::SeedOptions {
                    bookings: 2_000,
                    now: prima_service::time::now(),
                },
            )
            .await
            .context("loading the demo portfolio")?;
            tracing::info!(
                ?report,
                "demo portfolio loaded; password for every demo user: prima-demo"
            );
        }
    }
    let maintenance = tokio::spawn(maintain(db.clone()));
    let finalising = tokio::spawn(prima_service::incentives::finalize::run_scheduler(
        db.conn.clone(),
        FINALIZE_EVERY,
    ));
    let mut running = crate::app::spawn(db, &args).await?;
    let _stop_maintenance = AbortOnDrop(maintenance);
    let _stop_finalising = AbortOnDrop(finalising);
    tracing::info!(
        "PRIMA Partner API on http://{addr}/graphql (GraphiQL), WebSocket ws://{addr}/graphql/ws",
        addr = running.addr
    );
    tokio::select! {
        result = running.wait() => result,
        _ = shutdown_signal() => {
            tracing::info!("shutting down: draining requests");
            running.shutdown().await
        }
    }
}

/// How often the incentive scheduler looks for programmes whose period has ended
/// (`prima_service::incentives::finalize::run_scheduler`): a programme is finalised within
/// this long of its `period_end`, once, whichever replica gets there first.
const FINALIZE_EVERY: std::time::Duration = std::time::Duration::from_secs(15);

/// How often [`maintain`] runs.
const MAINTENANCE_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// Background upkeep while serving, at start-up and then every [`MAINTENANCE_EVERY`]:
/// promoters' `month_*` metrics are recomputed (a month that turns makes them stale without
/// any booking change) and expired idempotency keys are deleted. Both are idempotent, so
/// every replica may run them. A failure is logged and retried next time.
async fn maintain(db: Db) {
    let mut every = tokio::time::interval(MAINTENANCE_EVERY);
    loop {
        every.tick().await;
        let now = prima_service::time::now();
        match prima_service::bookings::aggregates::refresh_month_fields(&db.conn, now).await {
            Ok(promoters) => tracing::debug!(promoters, "month metrics refreshed"),
            Err(err) => tracing::warn!(error = ?err, "refreshing month metrics failed"),
        }
        match prima_service::idempotency::purge_expired(&db.conn, now).await {
            Ok(keys) => tracing::debug!(keys, "expired idempotency keys deleted"),
            Err(err) => tracing::warn!(error = ?err, "deleting expired idempotency keys failed"),
        }
    }
}

/// Aborts a background task when dropped (the server stopped).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut signal) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            signal.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

async fn create_user(db: &Db, args: CreateUserArgs) -> anyhow::Result<()> {
    use sea_orm::ActiveEnum;
    let role = prima_entity::enums::UserRole::try_from_value(&args.role.to_uppercase())
        .map_err(|_| anyhow::anyhow!("--role must be ADMIN, MANAGER, COORDINATOR or VIEWER"))?;
    let mut venues = Vec::new();
    for grant in &args.venues {
        let (venue, venue_role) = grant
            .split_once(':')
            .ok_or_else(|| anyhow::anyhow!("--venue takes <venue id>:<ROLE>, got {grant}"))?;
        let venue = venue
            .parse()
            .map_err(|_| anyhow::anyhow!("{venue} is not a venue id"))?;
        let venue_role = prima_entity::enums::VenueRole::try_from_value(&venue_role.to_uppercase())
            .map_err(|_| {
                anyhow::anyhow!(
                    "a venue role is OWNER, ADMIN, MANAGER or COORDINATOR, got {venue_role}"
                )
            })?;
        venues.push((venue, venue_role));
    }
    // One hash: the machine's limits are plenty, and it goes through the same hasher as
    // every other argon2 computation.
    let hasher = prima_service::auth::Hasher::new(prima_service::auth::HashLimits::for_machine());
    let user = prima_service::users::create_user(
        &db.conn,
        &hasher,
        prima_service::users::NewUser {
            email: args.email,
            password: args.password.0,
            first_name: args.first_name,
            last_name: args.last_name,
            role,
            venues,
        },
    )
    .await
    .map_err(|err| anyhow::anyhow!("{err}"))?;
    println!("created user {} ({})", user.email, user.id);
    Ok(())
}

/// `prima check`: one line per discrepancy (kind, entity, id, what disagrees), then a
/// summary line; exit code 1 when anything disagrees.
///
/// It connects without applying migrations (a check never changes the database it checks)
/// and runs every statement in one read-only transaction, REPEATABLE READ on PostgreSQL, so
/// the invariants are checked against one snapshot even while the API writes.
async fn check(
    url: &str,
    pool: &PoolSettings,
    args: crate::config::CheckArgs,
) -> anyhow::Result<ExitCode> {
    use sea_orm::{AccessMode, DbBackend, IsolationLevel, TransactionTrait};
    let db = db::connect(url, pool).await?;
    let started = std::time::Instant::now();
    let snapshot = match db.backend() {
        DbBackend::Postgres => {
            db.conn
                .begin_with_config(
                    Some(IsolationLevel::RepeatableRead),
                    Some(AccessMode::ReadOnly),
                )
                .await
        }
        // A SQLite transaction reads one snapshot already; it has no isolation settings.
        _ => db.conn.begin().await,
    }
    .context("starting the read-only snapshot")?;
    let report = prima_service::check::run(&snapshot, args.venue)
        .await
        .map_err(|err| match err {
            prima_service::Error::Internal(inner) => {
                anyhow::anyhow!("checking the invariants: {inner:#}")
            }
            other => anyhow::anyhow!("checking the invariants: {other}"),
        })?;
    snapshot
        .rollback()
        .await
        .context("closing the read-only snapshot")?;
    for found in &report.discrepancies {
        println!(
            "{} {} {}: {}",
            found.kind, found.entity, found.id, found.message
        );
    }
    println!(
        "checked {} bookings, {} promoters, {} guests, {} transactions in {:.1}s: {} discrepancies found",
        report.bookings_checked,
        report.promoters_checked,
        report.guests_checked,
        report.transactions_checked,
        started.elapsed().as_secs_f64(),
        report.discrepancies.len()
    );
    Ok(if report.discrepancies.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// An error and its causes on one line, `outer: cause: root cause`, each said once: many
/// errors (sea-orm's, sqlx's) repeat their source's text in their own, which `{:#}` would
/// print twice.
pub fn describe(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Runs `work` while a progress bar on standard error (only on a terminal) shows `done` of
/// `total` bookings, with the rate and the time left.
async fn with_progress<T>(
    total: u64,
    done: &AtomicU64,
    work: impl std::future::Future<Output = T>,
) -> T {
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {human_pos}/{human_len} bookings, {rate}/s, {eta} left",
        )
        .expect("a valid template")
        .with_key(
            "rate",
            |state: &indicatif::ProgressState, out: &mut dyn std::fmt::Write| {
                let _ = write!(out, "{:.0}", state.per_sec());
            },
        ),
    );
    let mut work = std::pin::pin!(work);
    let mut ticks = tokio::time::interval(std::time::Duration::from_millis(200));
    let out = loop {
        tokio::select! {
            out = &mut work => break out,
            _ = ticks.tick() => bar.set_position(done.load(Ordering::Relaxed)),
        }
    };
    bar.finish_and_clear();
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_error_names_each_cause_once() {
        #[derive(Debug)]
        struct Repeats(std::io::Error);
        impl std::fmt::Display for Repeats {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "Connection Error: {}", self.0)
            }
        }
        impl std::error::Error for Repeats {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let err = anyhow::Error::new(Repeats(refused)).context("connecting to postgres://db");
        assert_eq!(
            super::describe(&err),
            "connecting to postgres://db: Connection Error: refused"
        );
    }
}
