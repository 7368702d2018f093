//! Payout generation benchmark: `generateVenuePayouts` (the service call behind it) for one
//! venue with 100 promoters over the last full month of a 1,000,000-booking history, on
//! PostgreSQL. See bench/README.md "Payout generation".
//!
//! It builds its history in a scratch database (`DATABASE_URL`, which it migrates, seeds
//! with the demo data, then grows): 100 promoters at the first demo venue and `BOOKINGS`
//! (default 1,000,000) COMPLETED bookings spread evenly over the 365 days before now, each
//! with a CONFIRMED BOOKING_FEE and PROMOTER_COMMISSION, copied in bulk from a demo booking
//! and its ledger (`INSERT .. SELECT .. FROM generate_series`). Then it times the venue run
//! for last month and counts its SQL statements, runs it again (every answer EXISTING),
//! and checks the payout invariants of `prima check` (the aggregates of this synthetic
//! history are not maintained, so the rest of `prima check` does not apply).

/// The server's allocator, so the bench costs what `prima serve` does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use chrono::{Datelike, TimeZone, Utc};
use prima_bench::{first, scalar};
use prima_service::access::Actor;
use prima_service::db::{self, PoolSettings};
use prima_service::payouts::generate::{Outcome, generate_venue_payouts_at};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, TransactionTrait};
use uuid::Uuid;

const PROMOTERS: usize = 100;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("DATABASE_URL")
        .context("set DATABASE_URL to a scratch PostgreSQL database")?;
    let bookings: i64 = std::env::var("BOOKINGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let db = db::connect(&url, &PoolSettings::default()).await?;
    if db.backend() != sea_orm::DbBackend::Postgres {
        bail!("this benchmark runs on PostgreSQL");
    }
    db::migrate(&db).await?;
    let conn = db.conn.clone();
    if scalar(&conn, "SELECT COUNT(*) FROM users").await? == 0 {
        prima_service::seed::seed(&conn, &prima_service::seed::SeedOptions::default()).await?;
    }
    let now = prima_service::time::now();
    let venue = build(&conn, bookings, now).await?;
    let admin: Uuid = first(
        &conn,
        "SELECT id FROM users WHERE email = 'admin@prima.demo'",
    )
    .await?;
    let actor = Actor {
        user_id: admin,
        name: "Bench Admin".into(),
        role: prima_entity::enums::UserRole::Admin,
        venues: Arc::new(HashMap::new()),
    };
    // The venue's month just ended, in its time zone: the period of the demo's latest
    // payouts there (the seed pays that month), else the last UTC calendar month.
    let (last_month, this_month) = match latest_period(&conn, venue).await? {
        Some(period) => period,
        None => utc_last_month(now)?,
    };
    clear(&conn, venue, last_month).await?;
    let in_month = scalar(
        &conn,
        &format!(
            "SELECT COUNT(*) FROM transactions WHERE venue_id = '{venue}' \
             AND type = 'PROMOTER_COMMISSION' AND status = 'CONFIRMED' AND payout_id IS NULL \
             AND created_at >= '{}' AND created_at < '{}'",
            last_month.to_rfc3339(),
            this_month.to_rfc3339()
        ),
    )
    .await?;
    println!(
        "history: {} bookings, {} transactions; last month [{last_month}, {this_month}) holds {in_month} unpaid commissions of the venue",
        scalar(&conn, "SELECT COUNT(*) FROM bookings").await?,
        scalar(&conn, "SELECT COUNT(*) FROM transactions").await?,
    );
    for pass in ["first run", "again (idempotent)"] {
        let wal_before = wal(&conn).await?;
        let before = db.stats.statements();
        let started = Instant::now();
        let run =
            generate_venue_payouts_at(&db, &actor, venue, (last_month, this_month), None, now)
                .await
                .map_err(|err| anyhow::anyhow!("{err:?}"))?;
        let elapsed = started.elapsed();
        let statements = db.stats.statements() - before;
        let wal_after = wal(&conn).await?;
        let count = |o: Outcome| run.results.iter().filter(|r| r.outcome == o).count();
        println!(
            "generateVenuePayouts, {pass}: {} promoters in {:.0} ms ({} created, {} existing, {} carried, {} nothing); {statements} SQL statements, {:.1} per promoter",
            run.results.len(),
            elapsed.as_secs_f64() * 1000.0,
            count(Outcome::Created),
            count(Outcome::Existing),
            count(Outcome::CarriedNegative),
            count(Outcome::Nothing),
            statements as f64 / run.results.len().max(1) as f64,
        );
        println!(
            "  WAL written (the whole cluster's, pg_stat_wal): {:.0} MB, {} full-page images",
            (wal_after.0 - wal_before.0) as f64 / 1e6,
            wal_after.1 - wal_before.1,
        );
    }
    let mut found =
        prima_service::check::payouts::paid_out_amounts_unchanged(&conn, Some(venue)).await?;
    found.extend(prima_service::check::payouts::payout_claims_hold(&conn, Some(venue)).await?);
    println!(
        "payout invariants of prima check: {} discrepancies",
        found.len()
    );
    if !found.is_empty() {
        bail!("{found:#?}");
    }
    Ok(())
}

/// Undoes an earlier run over a reused history: the bench promoters' payouts of the month
/// (all DRAFT) go, and their transactions are unpaid again.
async fn clear(
    conn: &DatabaseConnection,
    venue: Uuid,
    from: chrono::DateTime<Utc>,
) -> anyhow::Result<()> {
    let ours = format!(
        "SELECT p.id FROM payouts p JOIN promoters r ON r.id = p.promoter_id \
         WHERE p.venue_id = '{venue}' AND p.period_from = '{}' AND r.email LIKE 'bench-%'",
        from.to_rfc3339()
    );
    // No index of `transactions` has `payout_id` (migration 13): the claimed rows are found
    // through the items, and the deletion skips the foreign-key checks, which would scan the
    // ledger once per payout (the rows no longer point at these payouts; the application
    // itself never deletes a payout).
    let txn = conn.begin().await?;
    for sql in [
        "SET LOCAL session_replication_role = replica".to_owned(),
        format!(
            "UPDATE transactions SET payout_id = NULL WHERE id IN \
             (SELECT transaction_id FROM payout_items WHERE payout_id IN ({ours}))"
        ),
        format!("DELETE FROM payout_items WHERE payout_id IN ({ours})"),
        format!("DELETE FROM payout_audit WHERE payout_id IN ({ours})"),
        format!("DELETE FROM payouts WHERE id IN ({ours})"),
    ] {
        txn.execute_unprepared(&sql).await?;
    }
    txn.commit().await?;
    conn.execute_unprepared("VACUUM ANALYZE transactions")
        .await?;
    Ok(())
}

async fn latest_period(
    conn: &DatabaseConnection,
    venue: Uuid,
) -> anyhow::Result<Option<(chrono::DateTime<Utc>, chrono::DateTime<Utc>)>> {
    let row = conn
        .query_one_raw(Statement::from_string(
            conn.get_database_backend(),
            format!(
                "SELECT period_from, period_to FROM payouts WHERE venue_id = '{venue}' \
                 ORDER BY period_to DESC LIMIT 1"
            ),
        ))
        .await?;
    Ok(match row {
        Some(row) => Some((row.try_get_by_index(0)?, row.try_get_by_index(1)?)),
        None => None,
    })
}

fn utc_last_month(
    now: chrono::DateTime<Utc>,
) -> anyhow::Result<(chrono::DateTime<Utc>, chrono::DateTime<Utc>)> {
    let this_month = Utc
        .with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .single()
        .context("the month's start")?;
    let last_month = if now.month() == 1 {
        Utc.with_ymd_and_hms(now.year() - 1, 12, 1, 0, 0, 0)
    } else {
        Utc.with_ymd_and_hms(now.year(), now.month() - 1, 1, 0, 0, 0)
    }
    .single()
    .context("last month's start")?;
    Ok((last_month, this_month))
}

/// Grows the demo data to the benchmark's history (once: a second run reuses it) and
/// returns the venue.
async fn build(
    conn: &DatabaseConnection,
    bookings: i64,
    now: chrono::DateTime<Utc>,
) -> anyhow::Result<Uuid> {
    let venue: Uuid = first(conn, "SELECT id FROM venues ORDER BY name, id LIMIT 1").await?;
    let bench = format!(
        "SELECT COUNT(*) FROM promoters WHERE email LIKE 'bench-%' AND venue_id = '{venue}'"
    );
    if scalar(conn, &bench).await? >= PROMOTERS as i64 {
        println!("reusing the benchmark's history");
        return Ok(venue);
    }
    let started = Instant::now();
    let template_promoter: Uuid = first(
        conn,
        &format!("SELECT id FROM promoters WHERE venue_id = '{venue}' ORDER BY id LIMIT 1"),
    )
    .await?;
    let (booking, commission, fee): (Uuid, Uuid, Uuid) = {
        let row = conn
            .query_one_raw(Statement::from_string(
                conn.get_database_backend(),
                format!(
                    "SELECT b.id, c.id, f.id FROM bookings b \
                     JOIN transactions c ON c.booking_id = b.id AND c.type = 'PROMOTER_COMMISSION' \
                     JOIN transactions f ON f.booking_id = b.id AND f.type = 'BOOKING_FEE' \
                     WHERE b.venue_id = '{venue}' AND b.status = 'COMPLETED' ORDER BY b.id LIMIT 1"
                ),
            ))
            .await?
            .context("a completed demo booking with a commission")?;
        (
            row.try_get_by_index(0)?,
            row.try_get_by_index(1)?,
            row.try_get_by_index(2)?,
        )
    };
    let promoter = |g: &str| format!("md5('bench-p' || (1 + {g} % {PROMOTERS}))::uuid");
    copy(
        conn,
        "promoters",
        &format!("id = '{template_promoter}'"),
        PROMOTERS as i64,
        &[
            ("id", promoter("(g - 1)")),
            ("last_name", "'Bench ' || g".into()),
            ("email", "'bench-' || g || '@example.com'".into()),
        ],
    )
    .await?;
    // Evenly over the 365 days before now: booking g at start + g * step.
    let start = (now - chrono::Duration::days(366)).to_rfc3339();
    let time = format!(
        "('{start}'::timestamptz + g * interval '{} microseconds')",
        365 * 86_400_000_000 / bookings
    );
    copy(
        conn,
        "bookings",
        &format!("id = '{booking}'"),
        bookings,
        &[
            ("id", "md5('bench-b' || g)::uuid".into()),
            ("promoter_id", promoter("g")),
            ("booking_time", time.clone()),
            ("created_at", format!("{time} - interval '2 days'")),
            ("confirmed_at", format!("{time} - interval '2 days'")),
            ("completed_at", format!("{time} + interval '2 hours'")),
            ("updated_at", format!("{time} + interval '2 hours'")),
        ],
    )
    .await?;
    for (template, salt) in [(commission, "c"), (fee, "f")] {
        copy(
            conn,
            "transactions",
            &format!("id = '{template}'"),
            bookings,
            &[
                ("id", format!("md5('bench-{salt}' || g)::uuid")),
                ("booking_id", "md5('bench-b' || g)::uuid".into()),
                ("promoter_id", promoter("g")),
                ("status", "'CONFIRMED'".into()),
                ("payout_id", "NULL".into()),
                ("settled_at", "NULL".into()),
                ("created_at", format!("{time} - interval '2 days'")),
                ("updated_at", format!("{time} + interval '2 hours'")),
            ],
        )
        .await?;
    }
    // What autovacuum does to a live table (statistics, and the visibility map that lets
    // the generation read its partial indexes without the heap), done once at once.
    conn.execute_unprepared("VACUUM ANALYZE").await?;
    println!(
        "built the history ({bookings} bookings, {} ledger rows) in {:.1} s",
        2 * bookings,
        started.elapsed().as_secs_f64()
    );
    Ok(venue)
}

/// `INSERT INTO table SELECT <each column, or its override> FROM table t,
/// generate_series(1, n) g WHERE t.<filter>`: n copies of one row.
async fn copy(
    conn: &DatabaseConnection,
    table: &str,
    filter: &str,
    n: i64,
    overrides: &[(&str, String)],
) -> anyhow::Result<()> {
    let rows = conn
        .query_all_raw(Statement::from_string(
            conn.get_database_backend(),
            format!(
                "SELECT column_name::text FROM information_schema.columns \
                 WHERE table_name = '{table}' AND table_schema = current_schema() ORDER BY ordinal_position"
            ),
        ))
        .await?;
    let columns: Vec<String> = rows
        .iter()
        .map(|r| r.try_get_by_index::<String>(0))
        .collect::<Result<_, _>>()?;
    let values: Vec<String> = columns
        .iter()
        .map(|c| match overrides.iter().find(|(name, _)| name == c) {
            Some((_, expr)) => expr.clone(),
            None => format!("t.\"{c}\""),
        })
        .collect();
    let names: Vec<String> = columns.iter().map(|c| format!("\"{c}\"")).collect();
    let sql = format!(
        "INSERT INTO {table} ({}) SELECT {} FROM {table} t, generate_series(1, {n}) g WHERE t.{filter}",
        names.join(", "),
        values.join(", ")
    );
    conn.execute_unprepared(&sql)
        .await
        .with_context(|| format!("copying {n} rows into {table}"))?;
    Ok(())
}

/// The cluster's WAL bytes and full-page images so far (`pg_stat_wal`, PostgreSQL 14+).
async fn wal(conn: &DatabaseConnection) -> anyhow::Result<(i64, i64)> {
    let row = conn
        .query_one_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT wal_bytes::BIGINT, wal_fpi FROM pg_stat_wal",
        ))
        .await?
        .context("no row")?;
    Ok((row.try_get_by_index(0)?, row.try_get_by_index(1)?))
}
