//! Booking write-path benchmark: booking create + confirm + complete throughput, at the
//! service layer (each operation is one database transaction with its history, ledger,
//! commission, aggregates and outbox rows), against `DATABASE_URL` (seeded with the demo
//! data first if it is empty). See bench/README.md.
//!
//! `WORKERS` tasks (default 8) each run `ROUNDS` bookings (default 250) through
//! create -> confirm -> complete. The bookings are spread over the demo venues' active
//! promoters and non-blocked guests, so promoters' and guests' rows are contended as in real
//! traffic. The clock is injected (`*_at` functions): a booking is made at the real time for
//! two hours later and completed three hours later, so nothing waits. At the end
//! `prima check` runs over the whole database and must find nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use prima_service::access::Actor;
use prima_service::db::{self, PoolSettings};
use prima_service::lifecycle::{self, NewBooking, Transition};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use tokio::sync::Mutex;
use uuid::Uuid;

#[derive(Default)]
struct Timings {
    create: Vec<f64>,
    confirm: Vec<f64>,
    complete: Vec<f64>,
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("DATABASE_URL").context(
        "set DATABASE_URL, e.g. postgres://postgres@127.0.0.1:5432/prima_lifecycle_bench",
    )?;
    let workers = env_usize("WORKERS", 8);
    let rounds = env_usize("ROUNDS", 250);
    let db = db::connect(
        &url,
        &PoolSettings {
            max_connections: (workers as u32 + 2).max(10),
            ..PoolSettings::default()
        },
    )
    .await?;
    db::migrate(&db).await?;
    let conn = db.conn.clone();
    if scalar(&conn, "SELECT COUNT(*) FROM users").await? == 0 {
        let report =
            prima_service::seed::seed(&conn, &prima_service::seed::SeedOptions::default()).await?;
        println!("seeded the demo data: {} bookings", report.bookings);
    }

    // The global admin acts (sees every venue); the work is spread over what it can book.
    let admin: (Uuid, String, String) = one_row(
        &conn,
        "SELECT id, first_name, last_name FROM users WHERE email = 'admin@prima.demo'",
    )
    .await?;
    let actor = Actor {
        user_id: admin.0,
        name: format!("{} {}", admin.1, admin.2),
        role: prima_entity::enums::UserRole::Admin,
        venues: Arc::new(HashMap::new()),
    };
    let targets = targets(&conn).await?;
    if targets.is_empty() {
        bail!("no ACTIVE venue with pricing, guests and promoters to book");
    }
    println!(
        "{} workers x {rounds} bookings over {} (venue, promoter) pairs on {}",
        workers,
        targets.len(),
        db::redact(&url)
    );

    let timings = Arc::new(Mutex::new(Timings::default()));
    let statements_before = db.stats.statements();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..workers {
        let conn = conn.clone();
        let actor = actor.clone();
        let targets = targets.clone();
        let timings = timings.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Timings::default();
            for round in 0..rounds {
                let (venue, promoter, guests) =
                    &targets[(worker + round * workers) % targets.len()];
                let guest = guests[(worker * 7919 + round) % guests.len()];
                let now = prima_service::time::now();
                let t = Instant::now();
                let booking = lifecycle::create_booking_at(
                    &conn,
                    &actor,
                    NewBooking {
                        venue_id: *venue,
                        guest_id: guest,
                        promoter_id: Some(*promoter),
                        booking_type: if round % 3 == 0 {
                            prima_entity::enums::BookingType::Prime
                        } else {
                            prima_entity::enums::BookingType::NonPrime
                        },
                        diners: 2 + (round % 5) as i32,
                        booking_time: now + chrono::Duration::hours(2),
                        duration_minutes: None,
                        special_requests: None,
                        notes: None,
                        source: None,
                        client: Default::default(),
                    },
                    None,
                    now,
                )
                .await?;
                mine.create.push(ms(t.elapsed()));
                if booking.status == prima_entity::enums::BookingStatus::Pending {
                    let t = Instant::now();
                    lifecycle::transition_at(&conn, &actor, booking.id, Transition::Confirm, now)
                        .await?;
                    mine.confirm.push(ms(t.elapsed()));
                }
                let t = Instant::now();
                lifecycle::transition_at(
                    &conn,
                    &actor,
                    booking.id,
                    Transition::Complete,
                    now + chrono::Duration::hours(3),
                )
                .await?;
                mine.complete.push(ms(t.elapsed()));
            }
            let mut all = timings.lock().await;
            all.create.extend(mine.create);
            all.confirm.extend(mine.confirm);
            all.complete.extend(mine.complete);
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut timings = Arc::try_unwrap(timings)
        .map_err(|_| anyhow::anyhow!("workers still running"))?
        .into_inner();
    let operations = timings.create.len() + timings.confirm.len() + timings.complete.len();
    let statements = (db.stats.statements() - statements_before) as f64 / operations as f64;
    println!(
        "{} bookings created, confirmed and completed in {elapsed:.1} s: {:.0} bookings/s end to end, {:.0} operations/s, {statements:.1} SQL statements per operation",
        timings.create.len(),
        timings.create.len() as f64 / elapsed,
        operations as f64 / elapsed,
    );
    for (name, samples) in [
        ("create", &mut timings.create),
        ("confirm", &mut timings.confirm),
        ("complete", &mut timings.complete),
    ] {
        if samples.is_empty() {
            continue;
        }
        samples.sort_by(f64::total_cmp);
        let pct = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize];
        println!(
            "  {name:<8} x{:<6} p50 {:>6.1} ms  p99 {:>6.1} ms  max {:>6.1} ms",
            samples.len(),
            pct(0.5),
            pct(0.99),
            samples[samples.len() - 1],
        );
    }

    let check_started = Instant::now();
    let report = prima_service::check::run(&conn, None).await?;
    println!(
        "prima check: {} bookings, {} promoters, {} guests checked in {:.1} s: {} discrepancies",
        report.bookings_checked,
        report.promoters_checked,
        report.guests_checked,
        check_started.elapsed().as_secs_f64(),
        report.discrepancies.len()
    );
    for d in report.discrepancies.iter().take(10) {
        println!("  {} {} {}: {}", d.kind, d.entity, d.id, d.message);
    }
    if !report.discrepancies.is_empty() {
        bail!("prima check found discrepancies");
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// (venue, ACTIVE promoter, bookable guests of the venue) for every ACTIVE venue with
/// pricing in force.
async fn targets(conn: &DatabaseConnection) -> anyhow::Result<Vec<(Uuid, Uuid, Arc<Vec<Uuid>>)>> {
    let backend = conn.get_database_backend();
    let pairs = conn
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT v.id AS venue, p.id AS promoter FROM venues v \
             JOIN promoters p ON p.venue_id = v.id AND p.status = 'ACTIVE' \
             WHERE v.status = 'ACTIVE' \
               AND EXISTS (SELECT 1 FROM venue_pricing vp WHERE vp.venue_id = v.id \
                           AND vp.is_active AND vp.effective_to IS NULL) \
             ORDER BY v.id, p.id",
        ))
        .await?;
    let mut guests_of: HashMap<Uuid, Arc<Vec<Uuid>>> = HashMap::new();
    let mut out = Vec::new();
    for row in pairs {
        let venue: Uuid = row.try_get("", "venue")?;
        let promoter: Uuid = row.try_get("", "promoter")?;
        let guests = match guests_of.get(&venue) {
            Some(guests) => guests.clone(),
            None => {
                let rows = conn
                    .query_all_raw(Statement::from_sql_and_values(
                        backend,
                        "SELECT DISTINCT g.id FROM guests g JOIN bookings b ON b.guest_id = g.id \
                         WHERE b.venue_id = $1 AND g.status <> 'BLOCKED' ORDER BY g.id LIMIT 500",
                        [venue.into()],
                    ))
                    .await?;
                let ids = rows
                    .iter()
                    .map(|r| r.try_get::<Uuid>("", "id"))
                    .collect::<Result<Vec<_>, _>>()?;
                let ids = Arc::new(ids);
                guests_of.insert(venue, ids.clone());
                ids
            }
        };
        if !guests.is_empty() {
            out.push((venue, promoter, guests));
        }
    }
    Ok(out)
}

async fn scalar(conn: &DatabaseConnection, sql: &str) -> anyhow::Result<i64> {
    let row = conn
        .query_one_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await?
        .context("no row")?;
    Ok(row.try_get_by_index::<i64>(0)?)
}

async fn one_row(conn: &DatabaseConnection, sql: &str) -> anyhow::Result<(Uuid, String, String)> {
    let row = conn
        .query_one_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await?
        .context("admin@prima.demo not found: seed the database first")?;
    Ok((
        row.try_get_by_index(0)?,
        row.try_get_by_index(1)?,
        row.try_get_by_index(2)?,
    ))
}
