//! Booking write-path benchmark: booking create + confirm + complete throughput, at the
//! service layer (each operation is one database transaction with its history, ledger,
//! commission, aggregates and outbox rows), against `DATABASE_URL` (seeded with the demo
//! data first if it is empty). See bench/README.md.
//!
//! Three phases, each run by `WORKERS` concurrent tasks (default 8) over `WORKERS * ROUNDS`
//! bookings (`ROUNDS` default 250): create them all, confirm them all, complete them all;
//! each phase reports its throughput and latency percentiles. The bookings are spread over
//! the demo venues' active promoters and guests who booked there, so promoters' and guests'
//! rows are contended as in real traffic. The clock is injected (`*_at` functions): a
//! booking is made now for two hours later and completed three hours later, so nothing
//! waits. It sets `require_approval` on every venue first, so every booking is confirmed
//! explicitly: use a scratch database. At the end `prima check` runs over the whole database
//! and must find nothing.

/// The server's allocator (see crates/server/src/main.rs), so the in-process server costs
/// what `prima serve` does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use prima_bench::{env_usize, ms, scalar};
use prima_service::access::Actor;
use prima_service::bookings::create::{self, NewBooking};
use prima_service::bookings::transition::{self, Transition};
use prima_service::db::{self, PoolSettings};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use tokio::sync::Mutex;
use uuid::Uuid;

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

    // Venues that confirm at creation would skip the confirm phase: on this scratch
    // database every venue requires approval, so each booking is created PENDING.
    conn.execute_raw(Statement::from_string(
        conn.get_database_backend(),
        "UPDATE venues SET require_approval = TRUE",
    ))
    .await?;

    let statements_before = db.stats.statements();
    let total = workers * rounds;
    let started = Instant::now();
    let now = prima_service::time::now();
    let jobs: Vec<usize> = (0..total).collect();
    let (created, create_times, create_secs) = phase(workers, jobs, {
        let db = db.clone();
        let actor = actor.clone();
        let targets = Arc::new(targets);
        move |i| {
            let db = db.clone();
            let actor = actor.clone();
            let targets = targets.clone();
            async move {
                let target = &targets[i % targets.len()];
                let guest = target.guests[(i * 7919) % target.guests.len()];
                let (lo, hi) = target.diners;
                let booking = create::create_booking_at(
                    &db,
                    &actor,
                    NewBooking {
                        venue_id: target.venue,
                        guest_id: guest,
                        promoter_id: Some(target.promoter),
                        booking_type: if i % 3 == 0 {
                            prima_entity::enums::BookingType::Prime
                        } else {
                            prima_entity::enums::BookingType::NonPrime
                        },
                        diners: lo + (i as i32 % (hi - lo + 1).max(1)),
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
                anyhow::Ok(booking.id)
            }
        }
    })
    .await?;
    let transition = |t: Transition, at: chrono::DateTime<chrono::Utc>| {
        let db = db.clone();
        let actor = actor.clone();
        move |id: Uuid| {
            let db = db.clone();
            let actor = actor.clone();
            let t = t.clone();
            async move {
                transition::transition_at(&db, &actor, id, t, at).await?;
                anyhow::Ok(id)
            }
        }
    };
    let after_create = db.stats.statements();
    let (confirmed, confirm_times, confirm_secs) =
        phase(workers, created, transition(Transition::Confirm, now)).await?;
    let after_confirm = db.stats.statements();
    let (_, complete_times, complete_secs) = phase(
        workers,
        confirmed,
        transition(Transition::Complete, now + chrono::Duration::hours(3)),
    )
    .await?;
    let elapsed = started.elapsed().as_secs_f64();
    let after_complete = db.stats.statements();
    let per_op = |from: u64, to: u64| (to - from) as f64 / total as f64;
    let operations = 3 * total;
    let statements = (db.stats.statements() - statements_before) as f64 / operations as f64;
    println!(
        "{total} bookings created, confirmed and completed in {elapsed:.1} s ({:.0} bookings/s \
         end to end), {statements:.1} SQL statements per operation",
        total as f64 / elapsed,
    );
    for (name, mut samples, secs, statements) in [
        (
            "create",
            create_times,
            create_secs,
            per_op(statements_before, after_create),
        ),
        (
            "confirm",
            confirm_times,
            confirm_secs,
            per_op(after_create, after_confirm),
        ),
        (
            "complete",
            complete_times,
            complete_secs,
            per_op(after_confirm, after_complete),
        ),
    ] {
        samples.sort_by(f64::total_cmp);
        let pct = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize];
        println!(
            "  {name:<8} {:>6.0}/s  p50 {:>5.1} ms  p99 {:>5.1} ms  max {:>5.1} ms  \
             {statements:.1} statements each",
            samples.len() as f64 / secs,
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

/// Runs `work` over `jobs` with `workers` concurrent tasks; returns the results, each
/// call's latency (ms) and the phase's wall time (s).
async fn phase<J, T, F, Fut>(
    workers: usize,
    jobs: Vec<J>,
    work: F,
) -> anyhow::Result<(Vec<T>, Vec<f64>, f64)>
where
    J: Send + 'static,
    T: Send + 'static,
    F: Fn(J) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<T>> + Send,
{
    let queue = Arc::new(Mutex::new(jobs));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let queue = queue.clone();
        let work = work.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = Vec::new();
            loop {
                let Some(job) = queue.lock().await.pop() else {
                    break;
                };
                let t = Instant::now();
                let result = work(job).await?;
                done.push((result, t.elapsed()));
            }
            anyhow::Ok(done)
        }));
    }
    let mut results = Vec::new();
    let mut times = Vec::new();
    for task in tasks {
        for (result, took) in task.await?? {
            results.push(result);
            times.push(ms(took));
        }
    }
    Ok((results, times, started.elapsed().as_secs_f64()))
}

/// What a worker books: a venue, one of its ACTIVE promoters, guests who booked there.
#[derive(Clone)]
struct Target {
    venue: Uuid,
    promoter: Uuid,
    guests: Arc<Vec<Uuid>>,
    /// The party sizes the venue's pricing allows.
    diners: (i32, i32),
}

/// A [`Target`] for every ACTIVE promoter of every ACTIVE venue with pricing in force.
async fn targets(conn: &DatabaseConnection) -> anyhow::Result<Vec<Target>> {
    let backend = conn.get_database_backend();
    let pairs = conn
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT v.id AS venue, p.id AS promoter, vp.minimum_party_size AS lo, \
               vp.maximum_party_size AS hi FROM venues v \
             JOIN promoters p ON p.venue_id = v.id AND p.status = 'ACTIVE' \
             JOIN venue_pricing vp ON vp.venue_id = v.id AND vp.is_active \
               AND vp.effective_to IS NULL \
             WHERE v.status = 'ACTIVE' \
             ORDER BY v.id, p.id",
        ))
        .await?;
    let mut guests_of: HashMap<Uuid, Arc<Vec<Uuid>>> = HashMap::new();
    let mut out = Vec::new();
    for row in pairs {
        let venue: Uuid = row.try_get("", "venue")?;
        let promoter: Uuid = row.try_get("", "promoter")?;
        let lo: i32 = row.try_get("", "lo")?;
        let hi: i32 = row.try_get("", "hi")?;
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
            out.push(Target {
                venue,
                promoter,
                guests,
                diners: (lo.max(1), hi.min(50)),
            });
        }
    }
    Ok(out)
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
