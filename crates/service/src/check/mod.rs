//! `prima check`: verifies, from the stored data alone, the invariants of DOMAIN.md that tie
//! the derived columns to what they are derived from: the ledger to the bookings' fees, the
//! promoter and guest aggregates (and the guests' per-venue rows, `guest_venue_stats`) to the
//! bookings, the paid-out amounts to the payouts, and incentive progress and counters to the bookings and participants.
//!
//! Policy:
//! - It reads and never writes, and never stops at the first problem: every disagreement is
//!   one [`Discrepancy`] per checked row and invariant, naming what disagrees (stored against
//!   expected, money as decimals).
//! - Every invariant is one function whose doc comment states the rule, in the file of its
//!   family: [`ledger`], [`promoters`], [`guests`] (with the per-venue rows), [`payouts`], [`incentives`] (progress against bookings, finalised counters).
//!   Each is a few set-based statements (`GROUP BY` with `CASE` sums) that bring back only
//!   the rows that disagree, or one row per promoter (there are few); never a statement per
//!   row, so a million bookings take seconds.
//! - The recomputations use exactly the definitions the write path keeps and the demo seed
//!   documents (the ratios from [`crate::promoters::metrics`]: `cancel_rate` over all
//!   statuses, PENDING included, rounded half away from zero; module [`crate::seed`]: month
//!   fields over the current calendar month of the venue's time zone), so a freshly seeded
//!   database reports nothing.
//! - For one answer on a database in use, run it inside one snapshot (REPEATABLE READ on
//!   PostgreSQL), as `prima check` does: otherwise a booking confirmed between two statements
//!   can show up as a false discrepancy.
//!
//! The statements are plain SQL that PostgreSQL and SQLite (3.39 or later, for
//! `IS DISTINCT FROM`) both run; parameters are `$n` on both. On PostgreSQL `SUM(bigint)` is
//! NUMERIC, hence the `CAST(COALESCE(SUM(x), 0) AS BIGINT)` everywhere.

pub mod guests;
pub mod incentives;
pub mod ledger;
pub mod payouts;
pub mod promoters;

#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult, Statement, Value};
use uuid::Uuid;

use crate::error::Result;
use guests::{
    guest_aggregates_match_bookings, guest_venue_aggregates_match_bookings,
    guest_venue_aggregates_sum_to_guest,
};
use ledger::ledger_matches_fees;
use payouts::{paid_out_amounts_unchanged, payout_claims_hold};
use promoters::promoter_aggregates_match_bookings;

/// One disagreement between a stored value and what the invariant says it must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discrepancy {
    /// Which invariant: `ledger`, `promoter_aggregate`, `guest_aggregate`,
    /// `guest_venue_aggregate`, `guest_venue_sum`, `ledger_amount_changed`, `payout_item`,
    /// `payout_amount`, `payout_claim`, `incentive_progress` or `incentive_counters`.
    pub kind: &'static str,
    /// What `id` is: `booking`, `promoter`, `guest`, `transaction`, `payout`,
    /// `incentive_progress` or `incentive`.
    pub entity: &'static str,
    /// The row that disagrees.
    pub id: Uuid,
    /// What disagrees: stored against expected, money in decimals.
    pub message: String,
}

/// What [`run`] looked at and what it found.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// Bookings whose ledger was checked.
    pub bookings_checked: u64,
    /// Promoters whose aggregates were recomputed.
    pub promoters_checked: u64,
    /// Guests whose aggregates were recomputed.
    pub guests_checked: u64,
    /// Transactions of the venue checked (every transaction without a venue).
    pub transactions_checked: u64,
    /// Everything that disagrees, invariant by invariant, each ordered by id.
    pub discrepancies: Vec<Discrepancy>,
}

/// Verifies the invariants for the whole database, or one venue's bookings, promoters and
/// guests who booked there (and that venue's transactions and payouts), as of now.
#[tracing::instrument(skip_all, fields(venue = ?venue))]
pub async fn run(db: &impl ConnectionTrait, venue: Option<Uuid>) -> Result<CheckReport> {
    run_at(db, venue, crate::time::now()).await
}

/// [`run`] with the instant that decides the promoters' current month (`month_*` fields).
pub async fn run_at(
    db: &impl ConnectionTrait,
    venue: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<CheckReport> {
    let mut report = counts(db, venue).await?;
    report
        .discrepancies
        .extend(ledger_matches_fees(db, venue).await?);
    report
        .discrepancies
        .extend(promoter_aggregates_match_bookings(db, venue, now).await?);
    report
        .discrepancies
        .extend(guest_aggregates_match_bookings(db, venue).await?);
    report
        .discrepancies
        .extend(guest_venue_aggregates_match_bookings(db, venue).await?);
    report
        .discrepancies
        .extend(guest_venue_aggregates_sum_to_guest(db, venue).await?);
    report
        .discrepancies
        .extend(paid_out_amounts_unchanged(db, venue).await?);
    report
        .discrepancies
        .extend(payout_claims_hold(db, venue).await?);
    report
        .discrepancies
        .extend(incentives::progress_matches_bookings(db, venue).await?);
    report
        .discrepancies
        .extend(incentives::finalised_counters_match(db, venue).await?);
    tracing::info!(
        bookings = report.bookings_checked,
        discrepancies = report.discrepancies.len(),
        "invariants checked"
    );
    Ok(report)
}

// ---------------------------------------------------------------------------------------
// Statements
// ---------------------------------------------------------------------------------------

/// A statement's parameters; the venue, when there is one, is always `$1`.
struct Params {
    backend: DbBackend,
    venue: bool,
    values: Vec<Value>,
}

impl Params {
    fn new(backend: DbBackend, venue: Option<Uuid>) -> Self {
        Params {
            backend,
            venue: venue.is_some(),
            values: venue.into_iter().map(Value::from).collect(),
        }
    }

    /// `column = $1` when checking one venue, else a condition that always holds.
    fn venue_is(&self, column: &str) -> String {
        if self.venue {
            format!("{column} = $1")
        } else {
            "1 = 1".to_owned()
        }
    }

    /// `column IN (the guests who booked at the venue)`, or always true.
    fn guest_in_scope(&self, column: &str) -> String {
        if self.venue {
            format!("{column} IN (SELECT sb.guest_id FROM bookings sb WHERE sb.venue_id = $1)")
        } else {
            "1 = 1".to_owned()
        }
    }

    /// Adds a parameter and returns its placeholder.
    fn bind(&mut self, value: impl Into<Value>) -> String {
        self.values.push(value.into());
        format!("${}", self.values.len())
    }

    fn statement(self, sql: String) -> Statement {
        Statement::from_sql_and_values(self.backend, sql, self.values)
    }
}

async fn fetch<M: FromQueryResult>(
    db: &impl ConnectionTrait,
    params: Params,
    sql: String,
) -> Result<Vec<M>> {
    let rows = db.query_all_raw(params.statement(sql)).await?;
    Ok(rows
        .iter()
        .map(|row| M::from_query_result(row, ""))
        .collect::<std::result::Result<_, _>>()?)
}

#[derive(Debug, FromQueryResult)]
struct Counts {
    bookings: i64,
    promoters: i64,
    guests: i64,
    transactions: i64,
}

/// How many rows of each kind are in scope.
async fn counts(db: &impl ConnectionTrait, venue: Option<Uuid>) -> Result<CheckReport> {
    let params = Params::new(db.get_database_backend(), venue);
    let sql = format!(
        "SELECT \
           (SELECT COUNT(*) FROM bookings b WHERE {bookings}) AS bookings, \
           (SELECT COUNT(*) FROM promoters p WHERE {promoters}) AS promoters, \
           (SELECT COUNT(*) FROM guests g WHERE {guests}) AS guests, \
           (SELECT COUNT(*) FROM transactions t WHERE {transactions}) AS transactions",
        bookings = params.venue_is("b.venue_id"),
        promoters = params.venue_is("p.venue_id"),
        guests = params.guest_in_scope("g.id"),
        transactions = params.venue_is("t.venue_id"),
    );
    let counts: Vec<Counts> = fetch(db, params, sql).await?;
    let counts = counts.into_iter().next().unwrap_or(Counts {
        bookings: 0,
        promoters: 0,
        guests: 0,
        transactions: 0,
    });
    Ok(CheckReport {
        bookings_checked: counts.bookings as u64,
        promoters_checked: counts.promoters as u64,
        guests_checked: counts.guests as u64,
        transactions_checked: counts.transactions as u64,
        discrepancies: Vec::new(),
    })
}

/// The fields where two sources of one row disagree, each said as "field: stored 3,
/// recomputed 2" (the two sources named by the caller), money in decimals.
struct Differences {
    first: &'static str,
    second: &'static str,
    found: Vec<String>,
}

impl Differences {
    fn new(first: &'static str, second: &'static str) -> Self {
        Differences {
            first,
            second,
            found: Vec::new(),
        }
    }

    /// Notes `field` when `a` (the first source) and `b` differ, shown by `show`.
    fn compare<T: PartialEq>(&mut self, field: &str, a: T, b: T, show: impl Fn(T) -> String) {
        if a != b {
            let (first, second) = (self.first, self.second);
            let (a, b) = (show(a), show(b));
            self.found
                .push(format!("{field}: {first} {a}, {second} {b}"));
        }
    }

    /// A counter.
    fn count(&mut self, field: &str, a: i64, b: i64) {
        self.compare(field, a, b, |n| n.to_string());
    }

    /// An amount in minor units, shown in decimals.
    fn money(&mut self, field: &str, a: i64, b: i64) {
        self.compare(field, a, b, |units| crate::money::cents(units).to_string());
    }

    /// A moment, or its absence.
    fn time(&mut self, field: &str, a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) {
        self.compare(field, a, b, |at| {
            at.map_or("none".to_owned(), |at| at.to_rfc3339())
        });
    }

    /// A problem that is not a pair of values.
    fn note(&mut self, problem: String) {
        self.found.push(problem);
    }

    /// What was found.
    fn into_vec(self) -> Vec<String> {
        self.found
    }

    /// What was found, for a row the database already said differs: when every value
    /// compares equal here (a timestamp stored in another text form on SQLite), says so,
    /// as that is still worth a look.
    fn or_form_only(mut self) -> Vec<String> {
        if self.found.is_empty() {
            let (first, second) = (self.first, self.second);
            self.found
                .push(format!("{first} and {second} values differ in form only"));
        }
        self.found
    }
}
