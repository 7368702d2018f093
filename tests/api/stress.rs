//! The booking write path under concurrent load (issue 8, defect 9): 16 writers make,
//! edit, confirm, cancel, complete, no-show and refund bookings of the same few promoters,
//! who all take part in the same incentive programmes (BOOKING_COUNT, REVENUE_TARGET and
//! the TOP_N NEW_GUESTS challenge of the demo portfolio), over HTTP as the dashboard would,
//! for `PRIMA_STRESS_SECS` seconds (10 by default).
//!
//! Every answer is a success, a CONFLICT (two writers raced for one booking, or a booking's
//! time came while a request was on its way) or a BAD_USER_INPUT a racing refund earned;
//! never INTERNAL: a deadlock or serialization failure is retried inside the service. At the
//! end `prima check` finds nothing, and every incentive progress row equals its
//! recomputation from the bookings (no update was lost). The figures go to stderr:
//!
//! ```sh
//! PRIMA_STRESS_SECS=60 TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!   cargo nextest run -p prima-tests --no-capture stress
//! ```

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use prima_entity::enums::{IncentiveStatus, IncentiveType, PromoterStatus};
use prima_entity::{incentive_progress, incentives, promoters, venues};
use prima_tests::{TestApp, error_codes};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Statement};
use serde_json::{Value, json};
use uuid::Uuid;

/// Concurrent writers.
const WRITERS: usize = 16;
/// How long the writers run without `PRIMA_STRESS_SECS`: short enough for CI.
const DEFAULT_SECS: u64 = 10;

/// What the writers read back of a booking they changed.
const FIELDS: &str = "id status bookingTime totalFee { amount }";

/// One booking as the writers last saw it.
#[derive(Debug, Clone)]
struct Tracked {
    id: String,
    status: String,
    time: DateTime<Utc>,
    /// Cents that can still be refunded (when COMPLETED).
    refundable: i64,
}

/// A venue the writers hammer: its staff token, the promoters who share its programmes, a
/// few guests, and every booking made so far.
struct Venue {
    id: Uuid,
    token: String,
    approval: bool,
    promoters: Vec<Uuid>,
    guests: Vec<String>,
    bookings: Mutex<Vec<Tracked>>,
}

/// A booking change a writer sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Create,
    Edit,
    Confirm,
    Cancel,
    Complete,
    NoShow,
    Refund,
}

impl Op {
    const ALL: [Op; 7] = [
        Op::Create,
        Op::Edit,
        Op::Confirm,
        Op::Cancel,
        Op::Complete,
        Op::NoShow,
        Op::Refund,
    ];

    fn mutation(self) -> &'static str {
        match self {
            Op::Create => "createBooking",
            Op::Edit => "updateBooking",
            Op::Confirm => "confirmBooking",
            Op::Cancel => "cancelBooking",
            Op::Complete => "completeBooking",
            Op::NoShow => "markNoShow",
            Op::Refund => "refundBooking",
        }
    }

    /// How often it is picked when it has a booking to act on.
    fn weight(self) -> u64 {
        match self {
            Op::Create => 4,
            Op::Edit => 1,
            Op::Confirm => 4,
            Op::Cancel => 1,
            Op::Complete => 3,
            Op::NoShow => 1,
            Op::Refund => 2,
        }
    }

    fn query(self) -> String {
        let name = self.mutation();
        let input = format!("{}{}Input", name[..1].to_uppercase(), &name[1..]);
        let extra = if self == Op::Refund {
            " refundable { amount }"
        } else {
            ""
        };
        format!(
            "mutation($input: {input}!) {{ {name}(input: $input) {{ booking {{ {FIELDS} }}{extra} }} }}"
        )
    }
}

/// The figures of a run.
#[derive(Debug, Default)]
struct Tally {
    attempted: u64,
    succeeded: u64,
    conflicts: u64,
    refused: u64,
    internal: u64,
    replays: u64,
    /// Answers of any other kind, in full: each one fails the test.
    unexpected: Vec<String>,
    /// Per change: (attempted, succeeded).
    by_op: BTreeMap<Op, (u64, u64)>,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.attempted += other.attempted;
        self.succeeded += other.succeeded;
        self.conflicts += other.conflicts;
        self.refused += other.refused;
        self.internal += other.internal;
        self.replays += other.replays;
        self.unexpected.extend(other.unexpected);
        for (op, (attempted, succeeded)) in other.by_op {
            let entry = self.by_op.entry(op).or_default();
            entry.0 += attempted;
            entry.1 += succeeded;
        }
    }

    /// Counts one answer; whether it succeeded.
    fn count(&mut self, op: Op, response: &Value) -> bool {
        self.attempted += 1;
        let entry = self.by_op.entry(op).or_default();
        entry.0 += 1;
        let codes = error_codes(response);
        match codes.first().map(String::as_str) {
            None => {
                self.succeeded += 1;
                entry.1 += 1;
                return true;
            }
            Some("CONFLICT") => self.conflicts += 1,
            // A refund racing another for the last cents of a booking.
            Some("BAD_USER_INPUT")
                if op == Op::Refund && response["errors"][0]["extensions"]["field"] == "amount" =>
            {
                self.refused += 1
            }
            Some("INTERNAL") => {
                self.internal += 1;
                eprintln!("stress: INTERNAL answer to {}: {response}", op.mutation());
            }
            Some(_) => self
                .unexpected
                .push(format!("{}: {response}", op.mutation())),
        }
        false
    }
}

/// A small deterministic generator (splitmix64): each writer has its own stream.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, one_in: u64) -> bool {
        self.next().is_multiple_of(one_in)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// "12.5" or "40" as cents.
fn cents(amount: &Value) -> i64 {
    let text = amount.as_str().expect("a Decimal amount");
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let fraction = format!("{fraction:0<2}");
    whole.parse::<i64>().expect("whole units") * 100 + fraction[..2].parse::<i64>().expect("cents")
}

impl Venue {
    /// What the writers know of a booking after an answer carrying it.
    fn observe(&self, booking: &Value, refundable: Option<i64>) {
        let id = booking["id"].as_str().expect("a booking id").to_owned();
        let status = booking["status"].as_str().expect("a status").to_owned();
        let time = booking["bookingTime"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .expect("a booking time")
            .with_timezone(&Utc);
        let mut bookings = self.bookings.lock().expect("the booking pool");
        let known = bookings.iter_mut().find(|b| b.id == id);
        let refundable = refundable.unwrap_or_else(|| match &known {
            Some(b) if status == "COMPLETED" && b.status == "COMPLETED" => b.refundable,
            _ => cents(&booking["totalFee"]["amount"]),
        });
        let tracked = Tracked {
            id,
            status,
            time,
            refundable,
        };
        match known {
            Some(b) => *b = tracked,
            None => bookings.push(tracked),
        }
        // Bookings nothing more can happen to leave the pool.
        bookings.retain(|b| match b.status.as_str() {
            "PENDING" | "CONFIRMED" => true,
            "COMPLETED" => b.refundable > 0,
            _ => false,
        });
    }

    /// The next change to send: an operation that has a booking to act on, picked by
    /// weight, and its input.
    fn next_change(&self, rng: &mut Rng, now: DateTime<Utc>) -> (Op, Value) {
        let bookings = self.bookings.lock().expect("the booking pool");
        let ahead = |b: &Tracked, by: i64| b.time > now + chrono::Duration::milliseconds(by);
        let candidates = |op: Op| -> Vec<&Tracked> {
            bookings
                .iter()
                .filter(|b| match op {
                    Op::Create => false,
                    Op::Edit => {
                        matches!(b.status.as_str(), "PENDING" | "CONFIRMED") && ahead(b, 1500)
                    }
                    Op::Confirm => b.status == "PENDING",
                    Op::Cancel => {
                        matches!(b.status.as_str(), "PENDING" | "CONFIRMED") && ahead(b, 300)
                    }
                    Op::Complete | Op::NoShow => b.status == "CONFIRMED" && b.time < now,
                    Op::Refund => b.status == "COMPLETED" && b.refundable > 0,
                })
                .collect()
        };
        let live = bookings
            .iter()
            .filter(|b| matches!(b.status.as_str(), "PENDING" | "CONFIRMED"))
            .count();
        let mut choices: Vec<(Op, u64, Vec<&Tracked>)> = Vec::new();
        for op in Op::ALL {
            let found = candidates(op);
            let weight = match op {
                // Keep a few dozen bookings in flight, not thousands.
                Op::Create if live > 64 => 1,
                Op::Create => op.weight(),
                _ if found.is_empty() => 0,
                _ => op.weight(),
            };
            if weight > 0 {
                choices.push((op, weight, found));
            }
        }
        let mut roll = rng.next() % choices.iter().map(|(_, weight, _)| weight).sum::<u64>();
        let (op, _, found) = choices
            .into_iter()
            .find(|(_, weight, _)| {
                let here = roll < *weight;
                roll = roll.saturating_sub(*weight);
                here
            })
            .expect("a weighted choice");
        let target = (!found.is_empty()).then(|| (*rng.pick(&found)).clone());
        drop(bookings);
        let input = match (op, target) {
            (Op::Create, _) => {
                let lead = 1500 + rng.below(2500) as i64;
                let mut input = json!({
                    "venueId": self.id,
                    "guestId": rng.pick(&self.guests),
                    "type": if rng.chance(2) { "PRIME" } else { "NON_PRIME" },
                    "diners": 1 + rng.below(4),
                    "bookingTime": rfc3339(now + chrono::Duration::milliseconds(lead)),
                });
                if !rng.chance(8) {
                    input["promoterId"] = json!(rng.pick(&self.promoters));
                }
                if rng.chance(4) {
                    input["idempotencyKey"] = json!(Uuid::new_v4().to_string());
                }
                input
            }
            (Op::Edit, Some(b)) => {
                if rng.chance(2) {
                    json!({ "bookingId": b.id, "diners": 1 + rng.below(4) })
                } else {
                    let moved = b.time + chrono::Duration::milliseconds(rng.below(2000) as i64);
                    json!({ "bookingId": b.id, "bookingTime": rfc3339(moved) })
                }
            }
            (Op::Cancel, Some(b)) => json!({ "bookingId": b.id, "reason": "stress test" }),
            (Op::NoShow, Some(b)) => json!({ "bookingId": b.id, "reason": "stress test" }),
            (Op::Refund, Some(b)) if b.refundable > 200 && rng.chance(2) => {
                json!({ "bookingId": b.id, "amount": "1.00", "reason": "stress test" })
            }
            (Op::Refund, Some(b)) => json!({ "bookingId": b.id, "reason": "stress test" }),
            (_, Some(b)) => json!({ "bookingId": b.id }),
            (op, None) => unreachable!("{op:?} is only picked with a booking"),
        };
        (op, input)
    }
}

/// One writer: sends changes to `venue` until `until`, keeping the pool of bookings current
/// with every answer.
async fn writer(app: &TestApp, venue: &Venue, seed: u64, until: Instant) -> Tally {
    let mut rng = Rng(seed);
    let mut tally = Tally::default();
    let read = format!("query($id: ID!) {{ booking(id: $id) {{ {FIELDS} }} }}");
    while Instant::now() < until {
        let (op, input) = venue.next_change(&mut rng, Utc::now());
        let response = app
            .graphql(Some(&venue.token), &op.query(), json!({ "input": input }))
            .await;
        let data = &response["data"][op.mutation()];
        if tally.count(op, &response) {
            let refundable = (op == Op::Refund).then(|| cents(&data["refundable"]["amount"]));
            venue.observe(&data["booking"], refundable);
            if op == Op::Create && input.get("idempotencyKey").is_some() {
                // The same request again answers with the same booking, whatever the load.
                let again = app
                    .graphql(Some(&venue.token), &op.query(), json!({ "input": input }))
                    .await;
                assert_eq!(
                    again["data"][op.mutation()]["booking"]["id"],
                    data["booking"]["id"],
                    "a retry with the same idempotency key: {again}"
                );
                tally.replays += 1;
            }
        } else if let Some(id) = input.get("bookingId") {
            // Someone else moved it: look at it again.
            let current = app
                .graphql(Some(&venue.token), &read, json!({ "id": id }))
                .await;
            if current["data"]["booking"].is_object() {
                let refundable = (op == Op::Refund).then_some(0);
                venue.observe(&current["data"]["booking"], refundable);
            }
        }
    }
    tally
}

/// The promoters of `venue` who are ACTIVE and take part in at least two of its ACTIVE
/// programmes (so their changes lock several programmes), and those programmes' types.
async fn busy_promoters(app: &TestApp, venue: Uuid) -> (Vec<Uuid>, Vec<IncentiveType>) {
    let conn = &app.db.db.conn;
    let programmes = incentives::Entity::find()
        .filter(incentives::Column::VenueId.eq(venue))
        .filter(incentives::Column::Status.eq(IncentiveStatus::Active))
        .all(conn)
        .await
        .unwrap();
    let progress = incentive_progress::Entity::find()
        .filter(incentive_progress::Column::IncentiveId.is_in(programmes.iter().map(|p| p.id)))
        .all(conn)
        .await
        .unwrap();
    let active: Vec<Uuid> = promoters::Entity::find()
        .filter(promoters::Column::VenueId.eq(venue))
        .filter(promoters::Column::Status.eq(PromoterStatus::Active))
        .all(conn)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    let busy = active
        .into_iter()
        .filter(|p| progress.iter().filter(|row| row.promoter_id == *p).count() >= 2)
        .collect();
    (busy, programmes.into_iter().map(|p| p.r#type).collect())
}

/// The venue, its staff token and three new guests registered through the API.
async fn venue(app: &TestApp, id: Uuid, approval: bool, staff: &str) -> Venue {
    let token = app.login(staff).await;
    let (promoters, _) = busy_promoters(app, id).await;
    let mut guests = Vec::new();
    for n in 0..3 {
        let data = app
            .query_ok(
                &token,
                "mutation($input: CreateGuestInput!) { createGuest(input: $input) { guest { id } } }",
                json!({ "input": {
                    "venueId": id, "firstName": "Stress", "lastName": format!("Guest {n}"),
                    "email": format!("stress-{}@example.com", Uuid::new_v4()),
                } }),
            )
            .await;
        guests.push(
            data["createGuest"]["guest"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    Venue {
        id,
        token,
        approval,
        promoters,
        guests,
        bookings: Mutex::new(Vec::new()),
    }
}

/// Transactions the server retried so far, from `/metrics` (0 before the metric existed).
async fn retries(app: &TestApp) -> u64 {
    let page = reqwest::get(app.url("/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("the metrics page");
    page.lines()
        .find_map(|line| line.strip_prefix("prima_db_transaction_retries_total "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// Every progress row of the venues' ACTIVE programmes against its recomputation from the
/// bookings (the definitions of `incentives::progress`); the rows that disagree.
async fn progress_disagreements(app: &TestApp, venues: &[Uuid]) -> Vec<String> {
    let conn = &app.db.db.conn;
    let backend = conn.get_database_backend();
    let mut wrong = Vec::new();
    for &venue in venues {
        let programmes = incentives::Entity::find()
            .filter(incentives::Column::VenueId.eq(venue))
            .filter(incentives::Column::Status.eq(IncentiveStatus::Active))
            .all(conn)
            .await
            .unwrap();
        for programme in programmes {
            let rows = incentive_progress::Entity::find()
                .filter(incentive_progress::Column::IncentiveId.eq(programme.id))
                .all(conn)
                .await
                .unwrap();
            for row in rows {
                let counted = "b.promoter_id = $1 AND b.venue_id = $2 AND b.booking_time >= $3 \
                               AND b.booking_time < $4 AND b.status IN ('CONFIRMED', 'COMPLETED')";
                let sql = match programme.r#type {
                    IncentiveType::BookingCount => {
                        format!("SELECT 100 * COUNT(*) AS v FROM bookings b WHERE {counted}")
                    }
                    IncentiveType::RevenueTarget => format!(
                        "SELECT CAST(COALESCE(SUM(b.total_fee), 0) AS BIGINT) AS v FROM bookings b WHERE {counted}"
                    ),
                    IncentiveType::NewGuests => "SELECT 100 * COUNT(*) AS v FROM ( \
                           SELECT b.guest_id, MIN(b.booking_time) AS first_at FROM bookings b \
                           WHERE b.promoter_id = $1 AND b.venue_id = $2 GROUP BY b.guest_id \
                         ) f WHERE f.first_at >= $3 AND f.first_at < $4"
                        .to_owned(),
                    IncentiveType::ConversionRate => continue,
                };
                let found = conn
                    .query_one_raw(Statement::from_sql_and_values(
                        backend,
                        sql,
                        [
                            row.promoter_id.into(),
                            venue.into(),
                            programme.period_start.into(),
                            programme.period_end.into(),
                        ],
                    ))
                    .await
                    .unwrap()
                    .expect("one row");
                let expected: i64 = found.try_get("", "v").unwrap();
                if expected != row.current_value {
                    wrong.push(format!(
                        "{} programme {}, promoter {}: current_value {} but the bookings say {}",
                        programme.r#type,
                        programme.id,
                        row.promoter_id,
                        row.current_value,
                        expected
                    ));
                }
            }
        }
    }
    wrong
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_writers_on_shared_promoters_and_programmes_get_no_internal_error() {
    let secs = std::env::var("PRIMA_STRESS_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(DEFAULT_SECS);
    let app = TestApp::demo(200).await;
    let all = venues::Entity::find().all(&app.db.db.conn).await.unwrap();
    let approval = all
        .iter()
        .find(|v| v.require_approval)
        .expect("the demo's approval venue");
    let mut auto = Vec::new();
    for v in all
        .iter()
        .filter(|v| v.auto_confirm_bookings && !v.require_approval)
    {
        auto.push((busy_promoters(&app, v.id).await.0.len(), v.id));
    }
    let (_, auto) = auto.into_iter().max().expect("an auto-confirming venue");
    // The auto-confirming venue (its OWNER makes bookings CONFIRMED at once) and the
    // approval venue (its venue ADMIN confirms them).
    let venues = [
        venue(&app, auto, false, "owner@prima.demo").await,
        venue(&app, approval.id, true, "gm@prima.demo").await,
    ];
    for v in &venues {
        let (busy, programmes) = busy_promoters(&app, v.id).await;
        assert!(
            busy.len() >= 2,
            "venue {} needs two promoters sharing programmes {programmes:?}, has {busy:?}",
            v.id
        );
        eprintln!(
            "stress: venue {} ({}): promoters {busy:?} in programmes {programmes:?}",
            v.id,
            if v.approval {
                "approval"
            } else {
                "auto-confirm"
            }
        );
    }

    let retries_before = retries(&app).await;
    let started = Instant::now();
    let until = started + Duration::from_secs(secs);
    let writers = (0..WRITERS).map(|i| writer(&app, &venues[i % 2], 1 + i as u64, until));
    let mut tally = Tally::default();
    for one in futures::future::join_all(writers).await {
        tally.add(one);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let retried = retries(&app).await - retries_before;

    let backend = if app.db.is_postgres() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    eprintln!(
        "stress: {WRITERS} writers for {elapsed:.1} s on {backend}: {} changes attempted, {} succeeded, \
         {} CONFLICT, {} refused refunds, {} retries, {} INTERNAL, {:.0} changes/s ({} idempotent replays)",
        tally.attempted,
        tally.succeeded,
        tally.conflicts,
        tally.refused,
        retried,
        tally.internal,
        tally.attempted as f64 / elapsed,
        tally.replays,
    );
    for (op, (attempted, succeeded)) in &tally.by_op {
        eprintln!(
            "stress:   {:<16} {attempted:>7} attempted {succeeded:>7} succeeded",
            op.mutation()
        );
    }

    let report = prima_service::check::run(&app.db.db.conn, None)
        .await
        .expect("prima check runs");
    let wrong_progress = progress_disagreements(&app, &venues.map(|v| v.id)).await;
    assert_eq!(tally.internal, 0, "INTERNAL answers under load");
    assert!(tally.unexpected.is_empty(), "{:#?}", tally.unexpected);
    assert!(
        report.discrepancies.is_empty(),
        "prima check after the run: {:#?}",
        report.discrepancies
    );
    assert!(wrong_progress.is_empty(), "{wrong_progress:#?}");
    if secs >= 5 {
        for op in Op::ALL {
            let (_, succeeded) = tally.by_op.get(&op).copied().unwrap_or_default();
            assert!(succeeded > 0, "no {} succeeded in {secs} s", op.mutation());
        }
    }
    app.stop().await;
}
