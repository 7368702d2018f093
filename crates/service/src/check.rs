//! `prima check`: verifies, from the stored data alone, the invariants of DOMAIN.md that tie
//! the derived columns to what they are derived from: the ledger to the bookings' fees, the
//! promoter and guest aggregates (and the guests' per-venue rows, `guest_venue_stats`) to the
//! bookings, and the paid-out amounts to the payouts.
//!
//! Policy:
//! - It reads and never writes, and never stops at the first problem: every disagreement is
//!   one [`Discrepancy`] per checked row and invariant, naming what disagrees (stored against
//!   expected, money as decimals).
//! - Every invariant is one function below whose doc comment states the rule. Each is a few
//!   set-based statements (`GROUP BY` with `CASE` sums) that bring back only the rows that
//!   disagree, or one row per promoter (there are few); never a statement per row, so a
//!   million bookings take seconds.
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

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use prima_entity::venues;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, QueryFilter,
    QuerySelect, Statement, Value,
};
use uuid::Uuid;

use crate::error::Result;
use crate::money::{cents, from_units, rate};
use crate::promoters::metrics;

/// One disagreement between a stored value and what the invariant says it must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discrepancy {
    /// Which invariant: `ledger`, `promoter_aggregate`, `guest_aggregate`,
    /// `guest_venue_aggregate`, `guest_venue_sum`, `ledger_amount_changed`, `payout_item` or
    /// `payout_amount`.
    pub kind: &'static str,
    /// What `id` is: `booking`, `promoter`, `guest`, `transaction` or `payout`.
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

// ---------------------------------------------------------------------------------------
// 1. The ledger matches the bookings' fees
// ---------------------------------------------------------------------------------------

#[derive(Debug, FromQueryResult)]
struct LedgerRow {
    id: Uuid,
    status: String,
    base_fee: i64,
    platform_fee: i64,
    total_fee: i64,
    promoter_commission: i64,
    all_rows: i64,
    booking_fee_rows: i64,
    booking_fee_sum: i64,
    platform_fee_rows: i64,
    platform_fee_sum: i64,
    commission_rows: i64,
    commission_sum: i64,
    misplaced: Option<String>,
    bad_total: bool,
    unconfirmed_status: bool,
    stray_rows: bool,
    bad_booking_fee: bool,
    bad_platform_fee: bool,
    bad_commission: bool,
    bad_status: bool,
}

#[derive(Debug, FromQueryResult)]
struct CorrectionRow {
    id: Uuid,
    live_fees: i64,
    refunds: i64,
    positive_refunds: i64,
    live_commission: i64,
    adjustments: i64,
}

/// **The ledger matches the fees, per booking** (DOMAIN.md "Transactions", "Pricing a
/// booking"):
///
/// - `total_fee = base_fee + platform_fee`.
/// - A booking that was ever confirmed (`confirmed_at` set) has exactly one BOOKING_FEE of
///   `base_fee`, exactly one PLATFORM_FEE of `platform_fee`, and one PROMOTER_COMMISSION of
///   `promoter_commission` when that is positive (none when it is 0). A booking never
///   confirmed has no transaction at all, and its status is PENDING or CANCELLED.
/// - The statuses of those rows follow the booking's: CONFIRMED booking, all PENDING;
///   COMPLETED, all CONFIRMED; NO_SHOW, fees CONFIRMED and commission CANCELLED; CANCELLED,
///   all CANCELLED. SETTLED is allowed wherever CONFIRMED is (payouts settle them). A
///   PENDING booking with `confirmed_at` set matches no status.
/// - REFUND and ADJUSTMENT rows of the booking (corrections, negative) do not break the
///   match, but they are bounded: no REFUND is positive and the live (not CANCELLED or
///   FAILED) refunds never exceed the live fees charged (`live fees + refunds >= 0`); the
///   live adjustments (clawbacks) add up to at most 0 and never exceed the live commission
///   (`live commission + adjustments >= 0`).
///
/// Two statements: `bookings` merge-joined to `transactions` and grouped by booking (the
/// status rule is a per-row condition on the joined pair, so one aggregate covers it), and
/// the corrections, grouped only for the bookings that have a REFUND or ADJUSTMENT row. Only
/// the bookings that break a rule come back, one discrepancy each.
#[tracing::instrument(skip_all)]
pub async fn ledger_matches_fees(
    db: &impl ConnectionTrait,
    venue: Option<Uuid>,
) -> Result<Vec<Discrepancy>> {
    let backend = db.get_database_backend();
    let mut problems: std::collections::BTreeMap<Uuid, Vec<String>> = Default::default();

    let params = Params::new(backend, venue);
    let money_sum = |condition: &str| {
        format!("CAST(COALESCE(SUM(CASE WHEN {condition} THEN t.amount END), 0) AS BIGINT)")
    };
    let sql = format!(
        "SELECT * FROM ( \
           SELECT x.*, \
             (x.total_fee <> x.base_fee + x.platform_fee) AS bad_total, \
             (NOT x.confirmed AND x.status IN ('CONFIRMED', 'COMPLETED', 'NO_SHOW')) AS unconfirmed_status, \
             (NOT x.confirmed AND x.all_rows > 0) AS stray_rows, \
             (x.confirmed AND (x.booking_fee_rows <> 1 OR x.booking_fee_sum <> x.base_fee)) AS bad_booking_fee, \
             (x.confirmed AND (x.platform_fee_rows <> 1 OR x.platform_fee_sum <> x.platform_fee)) AS bad_platform_fee, \
             (x.confirmed AND (x.commission_rows <> CASE WHEN x.promoter_commission > 0 THEN 1 ELSE 0 END \
                               OR x.commission_sum <> x.promoter_commission)) AS bad_commission, \
             (x.confirmed AND x.misplaced IS NOT NULL) AS bad_status \
           FROM ( \
             SELECT b.id, b.status, (b.confirmed_at IS NOT NULL) AS confirmed, b.base_fee, \
               b.platform_fee, b.total_fee, b.promoter_commission, \
               COUNT(t.id) AS all_rows, \
               COUNT(CASE WHEN t.\"type\" = 'BOOKING_FEE' THEN 1 END) AS booking_fee_rows, \
               {booking_fee_sum} AS booking_fee_sum, \
               COUNT(CASE WHEN t.\"type\" = 'PLATFORM_FEE' THEN 1 END) AS platform_fee_rows, \
               {platform_fee_sum} AS platform_fee_sum, \
               COUNT(CASE WHEN t.\"type\" = 'PROMOTER_COMMISSION' THEN 1 END) AS commission_rows, \
               {commission_sum} AS commission_sum, \
               MIN(CASE WHEN t.\"type\" IN ('BOOKING_FEE', 'PLATFORM_FEE', 'PROMOTER_COMMISSION') \
                 AND NOT ( \
                      (b.status = 'CONFIRMED' AND t.status = 'PENDING') \
                   OR (b.status = 'COMPLETED' AND t.status IN ('CONFIRMED', 'SETTLED')) \
                   OR (b.status = 'NO_SHOW' AND t.\"type\" <> 'PROMOTER_COMMISSION' \
                       AND t.status IN ('CONFIRMED', 'SETTLED')) \
                   OR (b.status = 'NO_SHOW' AND t.\"type\" = 'PROMOTER_COMMISSION' \
                       AND t.status = 'CANCELLED') \
                   OR (b.status = 'CANCELLED' AND t.status = 'CANCELLED')) \
                 THEN t.\"type\" || ' ' || t.status END) AS misplaced \
             FROM bookings b LEFT JOIN transactions t ON t.booking_id = b.id \
             WHERE {scope} \
             GROUP BY b.id, b.status, b.confirmed_at, b.base_fee, b.platform_fee, b.total_fee, \
               b.promoter_commission \
           ) x \
         ) y \
         WHERE y.bad_total OR y.unconfirmed_status OR y.stray_rows OR y.bad_booking_fee \
           OR y.bad_platform_fee OR y.bad_commission OR y.bad_status",
        booking_fee_sum = money_sum("t.\"type\" = 'BOOKING_FEE'"),
        platform_fee_sum = money_sum("t.\"type\" = 'PLATFORM_FEE'"),
        commission_sum = money_sum("t.\"type\" = 'PROMOTER_COMMISSION'"),
        scope = params.venue_is("b.venue_id"),
    );
    let rows: Vec<LedgerRow> = fetch(db, params, sql).await?;
    for row in &rows {
        problems
            .entry(row.id)
            .or_default()
            .extend(ledger_problems(row));
    }

    let params = Params::new(backend, venue);
    const LIVE: &str = "t.status NOT IN ('CANCELLED', 'FAILED')";
    let sql = format!(
        "SELECT * FROM ( \
           SELECT t.booking_id AS id, \
             {live_fees} AS live_fees, \
             {refunds} AS refunds, \
             COUNT(CASE WHEN t.\"type\" = 'REFUND' AND t.amount > 0 THEN 1 END) AS positive_refunds, \
             {live_commission} AS live_commission, \
             {adjustments} AS adjustments \
           FROM transactions t \
           WHERE t.booking_id IN (SELECT c.booking_id FROM transactions c \
               WHERE c.\"type\" IN ('REFUND', 'ADJUSTMENT') AND c.booking_id IS NOT NULL) \
{scope} \
           GROUP BY t.booking_id \
         ) x \
         WHERE x.positive_refunds > 0 OR x.live_fees + x.refunds < 0 \
           OR x.adjustments > 0 OR x.live_commission + x.adjustments < 0",
        live_fees = money_sum(&format!(
            "t.\"type\" IN ('BOOKING_FEE', 'PLATFORM_FEE') AND {LIVE}"
        )),
        refunds = money_sum(&format!("t.\"type\" = 'REFUND' AND {LIVE}")),
        live_commission = money_sum(&format!("t.\"type\" = 'PROMOTER_COMMISSION' AND {LIVE}")),
        adjustments = money_sum(&format!("t.\"type\" = 'ADJUSTMENT' AND {LIVE}")),
        scope = if venue.is_some() {
            " AND t.booking_id IN (SELECT b.id FROM bookings b WHERE b.venue_id = $1)"
        } else {
            ""
        },
    );
    let rows: Vec<CorrectionRow> = fetch(db, params, sql).await?;
    for row in &rows {
        problems
            .entry(row.id)
            .or_default()
            .extend(correction_problems(row));
    }

    Ok(problems
        .into_iter()
        .map(|(id, problems)| Discrepancy {
            kind: "ledger",
            entity: "booking",
            id,
            message: problems.join("; "),
        })
        .collect())
}

/// What is wrong with one booking's fee and commission rows, from the flags its statement
/// computed.
fn ledger_problems(row: &LedgerRow) -> Vec<String> {
    let mut problems = Vec::new();
    if row.bad_total {
        problems.push(format!(
            "total_fee {} is not base_fee {} + platform_fee {}",
            cents(row.total_fee),
            cents(row.base_fee),
            cents(row.platform_fee)
        ));
    }
    if row.unconfirmed_status {
        problems.push(format!("status {} but confirmed_at is not set", row.status));
    }
    if row.stray_rows {
        problems.push(format!(
            "never confirmed but has {} transaction(s)",
            row.all_rows
        ));
    }
    let rows_of = |kind: &str, expected: i64, rows: i64, sum: i64, column: &str| {
        format!(
            "{kind}: expected one row of {} ({column}), found {rows} row(s) totalling {}",
            cents(expected),
            cents(sum)
        )
    };
    if row.bad_booking_fee {
        problems.push(rows_of(
            "BOOKING_FEE",
            row.base_fee,
            row.booking_fee_rows,
            row.booking_fee_sum,
            "base_fee",
        ));
    }
    if row.bad_platform_fee {
        problems.push(rows_of(
            "PLATFORM_FEE",
            row.platform_fee,
            row.platform_fee_rows,
            row.platform_fee_sum,
            "platform_fee",
        ));
    }
    if row.bad_commission {
        problems.push(if row.promoter_commission > 0 {
            rows_of(
                "PROMOTER_COMMISSION",
                row.promoter_commission,
                row.commission_rows,
                row.commission_sum,
                "promoter_commission",
            )
        } else {
            format!(
                "PROMOTER_COMMISSION: expected none (promoter_commission 0.00), found {} row(s) totalling {}",
                row.commission_rows,
                cents(row.commission_sum)
            )
        });
    }
    if row.bad_status {
        let (fees, commission) = match row.status.as_str() {
            "CONFIRMED" => ("PENDING", "PENDING"),
            "COMPLETED" => ("CONFIRMED or SETTLED", "CONFIRMED or SETTLED"),
            "NO_SHOW" => ("CONFIRMED or SETTLED", "CANCELLED"),
            "CANCELLED" => ("CANCELLED", "CANCELLED"),
            _ => ("absent", "absent"),
        };
        let misplaced = row.misplaced.as_deref().unwrap_or_default();
        let (kind, status) = misplaced.split_once(' ').unwrap_or((misplaced, "?"));
        problems.push(format!(
            "a {} booking's fee rows must be {fees} and its commission {commission}, \
             but its {kind} is {status}",
            row.status
        ));
    }
    problems
}

/// What is wrong with one booking's refunds and adjustments.
fn correction_problems(row: &CorrectionRow) -> Vec<String> {
    let mut problems = Vec::new();
    if row.positive_refunds > 0 || row.live_fees + row.refunds < 0 {
        problems.push(format!(
            "refunds of {} against {} of live fees ({} positive REFUND row(s)): refunds are \
             negative and never exceed what was charged",
            cents(row.refunds),
            cents(row.live_fees),
            row.positive_refunds
        ));
    }
    if row.adjustments > 0 || row.live_commission + row.adjustments < 0 {
        problems.push(format!(
            "adjustments of {} against {} of live commission: clawbacks are negative and never \
             exceed the commission",
            cents(row.adjustments),
            cents(row.live_commission)
        ));
    }
    problems
}

// ---------------------------------------------------------------------------------------
// 2. Promoter aggregates
// ---------------------------------------------------------------------------------------

#[derive(Debug, FromQueryResult)]
struct PromoterRow {
    id: Uuid,
    timezone: String,
    total_bookings: i64,
    total_revenue: i64,
    average_booking_value: i64,
    conversion_rate: i64,
    no_show_rate: i64,
    cancel_rate: i64,
    month_bookings: i64,
    month_revenue: i64,
    month_new_guests: i64,
    month_repeat_guests: i64,
    stored_all_bookings: i64,
    stored_completed_bookings: i64,
    stored_cancelled_bookings: i64,
    stored_no_show_bookings: i64,
    month_known: bool,
    all_bookings: i64,
    counted: i64,
    revenue: i64,
    completed: i64,
    cancelled: i64,
    no_show: i64,
    expected_month_bookings: i64,
    expected_month_revenue: i64,
    new_guests: i64,
    repeat_guests: i64,
}

/// **Promoter aggregates equal a recomputation from the bookings** (DOMAIN.md "Promoter and
/// guest metrics", with the seed's definitions), over all of the promoter's bookings:
///
/// - `total_bookings` counts, and `total_revenue` sums the `total_fee` of, the CONFIRMED and
///   COMPLETED bookings; `average_booking_value = total_revenue / total_bookings`, to the cent.
/// - The counters behind the rates: `all_bookings` counts every status (PENDING included),
///   `completed_bookings`, `cancelled_bookings`, `no_show_bookings` their status.
/// - `cancel_rate = cancelled / all` (every status, PENDING included), `no_show_rate =
///   no_show / (completed + no_show)`, `conversion_rate = completed / (completed + cancelled
///   + no_show)`, each to 4 places; 0 when the divisor is 0.
/// - The month fields cover the bookings whose `booking_time` is in the calendar month of
///   `now` in the time zone of the promoter's venue: `month_bookings` / `month_revenue` as
///   above; `month_new_guests` counts guests whose first booking (earliest `booking_time`,
///   any status) with the promoter is in the month, `month_repeat_guests` guests with a
///   booking (any status) in the month whose first booking with the promoter is earlier.
///   These depend on `now`: a month that has turned since they were written shows up here
///   until they are refreshed.
///
/// Every ratio is rounded once, half away from zero. One statement: the month boundaries of
/// each time zone are computed here and joined in as a `VALUES` list; counts and sums are
/// grouped by promoter, first bookings by (promoter, guest). Promoters are few, so each comes
/// back and the rates are computed in exact decimals, exactly as the seed does.
#[tracing::instrument(skip_all)]
pub async fn promoter_aggregates_match_bookings(
    db: &impl ConnectionTrait,
    venue: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<Vec<Discrepancy>> {
    let mut query = venues::Entity::find()
        .select_only()
        .column(venues::Column::Timezone)
        .distinct();
    if let Some(venue) = venue {
        query = query.filter(venues::Column::Id.eq(venue));
    }
    let zones: Vec<String> = query.into_tuple().all(db).await?;
    if zones.is_empty() {
        return Ok(Vec::new());
    }
    let mut params = Params::new(db.get_database_backend(), venue);
    let months = zones
        .iter()
        .map(|zone| {
            // An unknown time zone gets no bounds: its promoters' month fields are reported
            // as unchecked rather than compared with a guess.
            let (start, end) = match month_bounds(zone, now) {
                Some((start, end)) => (Some(start), Some(end)),
                None => (None, None),
            };
            format!(
                "({}, {}, {})",
                params.bind(zone.clone()),
                params.bind(start),
                params.bind(end)
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    const COUNTED: &str = "b.status IN ('CONFIRMED', 'COMPLETED')";
    const IN_MONTH: &str = "b.booking_time >= s.month_start AND b.booking_time < s.month_end";
    let sql = format!(
        "WITH months (timezone, month_start, month_end) AS (VALUES {months}), \
         scope AS ( \
           SELECT p.id, v.timezone, m.month_start, m.month_end \
           FROM promoters p JOIN venues v ON v.id = p.venue_id \
           LEFT JOIN months m ON m.timezone = v.timezone \
           WHERE {scope} \
         ), \
         counts AS ( \
           SELECT b.promoter_id, \
             COUNT(*) AS all_bookings, \
             COUNT(CASE WHEN {COUNTED} THEN 1 END) AS counted, \
             CAST(COALESCE(SUM(CASE WHEN {COUNTED} THEN b.total_fee END), 0) AS BIGINT) AS revenue, \
             COUNT(CASE WHEN b.status = 'COMPLETED' THEN 1 END) AS completed, \
             COUNT(CASE WHEN b.status = 'CANCELLED' THEN 1 END) AS cancelled, \
             COUNT(CASE WHEN b.status = 'NO_SHOW' THEN 1 END) AS no_show, \
             COUNT(CASE WHEN {COUNTED} AND {IN_MONTH} THEN 1 END) AS month_bookings, \
             CAST(COALESCE(SUM(CASE WHEN {COUNTED} AND {IN_MONTH} THEN b.total_fee END), 0) AS BIGINT) \
               AS month_revenue \
           FROM bookings b JOIN scope s ON s.id = b.promoter_id \
           GROUP BY b.promoter_id \
         ), \
         relationships AS ( \
           SELECT b.promoter_id, MIN(b.booking_time) AS first_at, \
             MAX(CASE WHEN {IN_MONTH} THEN 1 ELSE 0 END) AS this_month \
           FROM bookings b JOIN scope s ON s.id = b.promoter_id \
           GROUP BY b.promoter_id, b.guest_id \
         ), \
         month_guests AS ( \
           SELECT r.promoter_id, \
             COUNT(CASE WHEN r.this_month = 1 AND r.first_at >= s.month_start THEN 1 END) AS new_guests, \
             COUNT(CASE WHEN r.this_month = 1 AND r.first_at < s.month_start THEN 1 END) AS repeat_guests \
           FROM relationships r JOIN scope s ON s.id = r.promoter_id \
           GROUP BY r.promoter_id \
         ) \
         SELECT p.id, s.timezone, \
           CAST(p.total_bookings AS BIGINT) AS total_bookings, p.total_revenue, \
           p.average_booking_value, p.conversion_rate, p.no_show_rate, p.cancel_rate, \
           CAST(p.month_bookings AS BIGINT) AS month_bookings, p.month_revenue, \
           CAST(p.month_new_guests AS BIGINT) AS month_new_guests, \
           CAST(p.month_repeat_guests AS BIGINT) AS month_repeat_guests, \
           CAST(p.all_bookings AS BIGINT) AS stored_all_bookings, \
           CAST(p.completed_bookings AS BIGINT) AS stored_completed_bookings, \
           CAST(p.cancelled_bookings AS BIGINT) AS stored_cancelled_bookings, \
           CAST(p.no_show_bookings AS BIGINT) AS stored_no_show_bookings, \
           (s.month_start IS NOT NULL) AS month_known, \
           COALESCE(c.all_bookings, 0) AS all_bookings, COALESCE(c.counted, 0) AS counted, \
           COALESCE(c.revenue, 0) AS revenue, COALESCE(c.completed, 0) AS completed, \
           COALESCE(c.cancelled, 0) AS cancelled, COALESCE(c.no_show, 0) AS no_show, \
           COALESCE(c.month_bookings, 0) AS expected_month_bookings, \
           COALESCE(c.month_revenue, 0) AS expected_month_revenue, \
           COALESCE(g.new_guests, 0) AS new_guests, COALESCE(g.repeat_guests, 0) AS repeat_guests \
         FROM promoters p JOIN scope s ON s.id = p.id \
         LEFT JOIN counts c ON c.promoter_id = p.id \
         LEFT JOIN month_guests g ON g.promoter_id = p.id \
         ORDER BY p.id",
        scope = params.venue_is("p.venue_id"),
    );
    let rows: Vec<PromoterRow> = fetch(db, params, sql).await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let problems = promoter_problems(&row);
            (!problems.is_empty()).then(|| Discrepancy {
                kind: "promoter_aggregate",
                entity: "promoter",
                id: row.id,
                message: problems.join("; "),
            })
        })
        .collect())
}

/// The fields of one promoter that disagree with the recomputation.
fn promoter_problems(row: &PromoterRow) -> Vec<String> {
    let mut problems = Vec::new();
    let mut compare = |field: &str, stored: i64, expected: i64, show: fn(i64) -> String| {
        if stored != expected {
            problems.push(format!(
                "{field}: stored {}, recomputed {}",
                show(stored),
                show(expected)
            ));
        }
    };
    let count: fn(i64) -> String = |n| n.to_string();
    let money: fn(i64) -> String = |units| cents(units).to_string();
    let fraction: fn(i64) -> String = |units| rate(units).to_string();
    compare("total_bookings", row.total_bookings, row.counted, count);
    compare("total_revenue", row.total_revenue, row.revenue, money);
    compare(
        "all_bookings",
        row.stored_all_bookings,
        row.all_bookings,
        count,
    );
    compare(
        "completed_bookings",
        row.stored_completed_bookings,
        row.completed,
        count,
    );
    compare(
        "cancelled_bookings",
        row.stored_cancelled_bookings,
        row.cancelled,
        count,
    );
    compare(
        "no_show_bookings",
        row.stored_no_show_bookings,
        row.no_show,
        count,
    );
    compare(
        "average_booking_value",
        row.average_booking_value,
        metrics::average_booking_value(row.revenue, row.counted),
        money,
    );
    compare(
        "conversion_rate",
        row.conversion_rate,
        metrics::conversion_rate(row.completed, row.cancelled, row.no_show),
        fraction,
    );
    compare(
        "no_show_rate",
        row.no_show_rate,
        metrics::no_show_rate(row.completed, row.no_show),
        fraction,
    );
    compare(
        "cancel_rate",
        row.cancel_rate,
        metrics::cancel_rate(row.cancelled, row.all_bookings),
        fraction,
    );
    if row.month_known {
        compare(
            "month_bookings",
            row.month_bookings,
            row.expected_month_bookings,
            count,
        );
        compare(
            "month_revenue",
            row.month_revenue,
            row.expected_month_revenue,
            money,
        );
        compare(
            "month_new_guests",
            row.month_new_guests,
            row.new_guests,
            count,
        );
        compare(
            "month_repeat_guests",
            row.month_repeat_guests,
            row.repeat_guests,
            count,
        );
    } else {
        problems.push(format!(
            "month fields not checked: the venue's time zone {:?} is unknown",
            row.timezone
        ));
    }
    problems
}

/// `[start, end)` of the calendar month of `now` in `timezone`, exactly as the write path
/// computes it when it keeps the month fields ([`crate::commissions::month::month_bounds`]: local
/// midnight of the 1st, or the first local minute that exists when midnight does not);
/// `None` for an unknown time zone.
fn month_bounds(timezone: &str, now: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let tz: Tz = timezone.parse().ok()?;
    Some(crate::commissions::month::month_bounds(tz, now))
}

// ---------------------------------------------------------------------------------------
// 3. Guest aggregates
// ---------------------------------------------------------------------------------------

#[derive(Debug, FromQueryResult)]
struct GuestRow {
    id: Uuid,
    total_bookings: i64,
    cancelled_bookings: i64,
    no_show_bookings: i64,
    total_spent: i64,
    average_party_size: i64,
    total_diners: i64,
    last_booking_at: Option<DateTime<Utc>>,
    expected_total_bookings: i64,
    expected_cancelled_bookings: i64,
    expected_no_show_bookings: i64,
    expected_total_spent: i64,
    expected_average_party_size: i64,
    expected_total_diners: i64,
    expected_last_booking_at: Option<DateTime<Utc>>,
}

/// **Guest aggregates equal a recomputation from the bookings** (DOMAIN.md "Promoter and
/// guest metrics", with the seed's definitions), over all of the guest's bookings at every
/// venue: `total_bookings` (every status), `cancelled_bookings`, `no_show_bookings`,
/// `total_spent` (sum of `total_fee` of the COMPLETED bookings), `average_party_size` (mean
/// diners over all bookings in tenths, rounded half away from zero; 2.0, the column default,
/// without bookings), `total_diners` (sum of `diners` over all bookings, every status; 0
/// without bookings) and `last_booking_at` (latest `booking_time`, any status; NULL without
/// bookings).
///
/// Guests are many (one per eight bookings in the demo), so the comparison happens in the
/// database and only the guests that disagree come back. The mean is rounded with integer
/// arithmetic, exact for these non-negative numbers: `round(diners * 10 / n) =
/// (2 * diners * 10 + n) / (2 * n)` in integer division.
#[tracing::instrument(skip_all)]
pub async fn guest_aggregates_match_bookings(
    db: &impl ConnectionTrait,
    venue: Option<Uuid>,
) -> Result<Vec<Discrepancy>> {
    let params = Params::new(db.get_database_backend(), venue);
    let sql = format!(
        "SELECT * FROM ( \
           SELECT g.id, \
             CAST(g.total_bookings AS BIGINT) AS total_bookings, \
             CAST(g.cancelled_bookings AS BIGINT) AS cancelled_bookings, \
             CAST(g.no_show_bookings AS BIGINT) AS no_show_bookings, \
             g.total_spent, g.average_party_size, \
             CAST(g.total_diners AS BIGINT) AS total_diners, g.last_booking_at, \
             COALESCE(e.bookings, 0) AS expected_total_bookings, \
             COALESCE(e.cancelled, 0) AS expected_cancelled_bookings, \
             COALESCE(e.no_show, 0) AS expected_no_show_bookings, \
             COALESCE(e.spent, 0) AS expected_total_spent, \
             CAST(CASE WHEN e.bookings IS NULL THEN 20 \
               ELSE (2 * e.diners * 10 + e.bookings) / (2 * e.bookings) END AS BIGINT) \
               AS expected_average_party_size, \
             COALESCE(e.diners, 0) AS expected_total_diners, \
             e.last_booking_at AS expected_last_booking_at \
           FROM guests g LEFT JOIN ( \
             SELECT b.guest_id, COUNT(*) AS bookings, \
               COUNT(CASE WHEN b.status = 'CANCELLED' THEN 1 END) AS cancelled, \
               COUNT(CASE WHEN b.status = 'NO_SHOW' THEN 1 END) AS no_show, \
               CAST(COALESCE(SUM(CASE WHEN b.status = 'COMPLETED' THEN b.total_fee END), 0) AS BIGINT) AS spent, \
               CAST(SUM(b.diners) AS BIGINT) AS diners, \
               MAX(b.booking_time) AS last_booking_at \
             FROM bookings b WHERE {bookings_scope} \
             GROUP BY b.guest_id \
           ) e ON e.guest_id = g.id \
           WHERE {guests_scope} \
         ) x \
         WHERE x.total_bookings <> x.expected_total_bookings \
           OR x.cancelled_bookings <> x.expected_cancelled_bookings \
           OR x.no_show_bookings <> x.expected_no_show_bookings \
           OR x.total_spent <> x.expected_total_spent \
           OR x.average_party_size <> x.expected_average_party_size \
           OR x.total_diners <> x.expected_total_diners \
           OR x.last_booking_at IS DISTINCT FROM x.expected_last_booking_at \
         ORDER BY x.id",
        bookings_scope = params.guest_in_scope("b.guest_id"),
        guests_scope = params.guest_in_scope("g.id"),
    );
    let rows: Vec<GuestRow> = fetch(db, params, sql).await?;
    Ok(rows
        .into_iter()
        .map(|row| Discrepancy {
            kind: "guest_aggregate",
            entity: "guest",
            id: row.id,
            message: guest_message(&row),
        })
        .collect())
}

/// The fields of one guest that disagree with the recomputation.
fn guest_message(row: &GuestRow) -> String {
    let mut problems = Vec::new();
    let mut compare = |field: &str, stored: i64, expected: i64, show: fn(i64) -> String| {
        if stored != expected {
            problems.push(format!(
                "{field}: stored {}, recomputed {}",
                show(stored),
                show(expected)
            ));
        }
    };
    let count: fn(i64) -> String = |n| n.to_string();
    compare(
        "total_bookings",
        row.total_bookings,
        row.expected_total_bookings,
        count,
    );
    compare(
        "cancelled_bookings",
        row.cancelled_bookings,
        row.expected_cancelled_bookings,
        count,
    );
    compare(
        "no_show_bookings",
        row.no_show_bookings,
        row.expected_no_show_bookings,
        count,
    );
    compare(
        "total_spent",
        row.total_spent,
        row.expected_total_spent,
        |units| cents(units).to_string(),
    );
    compare(
        "average_party_size",
        row.average_party_size,
        row.expected_average_party_size,
        |tenths| from_units(tenths, 1).to_string(),
    );
    compare(
        "total_diners",
        row.total_diners,
        row.expected_total_diners,
        count,
    );
    if row.last_booking_at != row.expected_last_booking_at {
        let show = |at: Option<DateTime<Utc>>| at.map_or("none".to_owned(), |at| at.to_rfc3339());
        problems.push(format!(
            "last_booking_at: stored {}, recomputed {}",
            show(row.last_booking_at),
            show(row.expected_last_booking_at)
        ));
    }
    if problems.is_empty() {
        // Equal values that the database compared as different (a timestamp stored in
        // another text form on SQLite): still worth a look.
        problems.push("stored and recomputed values differ in form only".to_owned());
    }
    problems.join("; ")
}

// ---------------------------------------------------------------------------------------
// 3b. Guest aggregates per venue
// ---------------------------------------------------------------------------------------

/// A guest's counters as two sources give them (stored and expected, or the guest row and
/// the sum of its per-venue rows).
#[derive(Debug, FromQueryResult)]
struct GuestVenueRow {
    guest_id: Uuid,
    venue_id: Option<Uuid>,
    stored: bool,
    total_bookings: i64,
    cancelled_bookings: i64,
    no_show_bookings: i64,
    total_spent: i64,
    total_diners: i64,
    last_booking_at: Option<DateTime<Utc>>,
    expected_total_bookings: i64,
    expected_cancelled_bookings: i64,
    expected_no_show_bookings: i64,
    expected_total_spent: i64,
    expected_total_diners: i64,
    expected_last_booking_at: Option<DateTime<Utc>>,
}

/// The columns of [`GuestVenueRow`] that differ, named and shown as `first` against
/// `second` (e.g. "stored 3, recomputed 2").
fn guest_counter_problems(row: &GuestVenueRow, first: &str, second: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut compare = |field: &str, a: i64, b: i64, show: fn(i64) -> String| {
        if a != b {
            problems.push(format!(
                "{field}: {first} {}, {second} {}",
                show(a),
                show(b)
            ));
        }
    };
    let count: fn(i64) -> String = |n| n.to_string();
    let money: fn(i64) -> String = |units| cents(units).to_string();
    compare(
        "total_bookings",
        row.total_bookings,
        row.expected_total_bookings,
        count,
    );
    compare(
        "cancelled_bookings",
        row.cancelled_bookings,
        row.expected_cancelled_bookings,
        count,
    );
    compare(
        "no_show_bookings",
        row.no_show_bookings,
        row.expected_no_show_bookings,
        count,
    );
    compare(
        "total_spent",
        row.total_spent,
        row.expected_total_spent,
        money,
    );
    compare(
        "total_diners",
        row.total_diners,
        row.expected_total_diners,
        count,
    );
    if row.last_booking_at != row.expected_last_booking_at {
        let show = |at: Option<DateTime<Utc>>| at.map_or("none".to_owned(), |at| at.to_rfc3339());
        problems.push(format!(
            "last_booking_at: {first} {}, {second} {}",
            show(row.last_booking_at),
            show(row.expected_last_booking_at)
        ));
    }
    if problems.is_empty() {
        problems.push(format!("{first} and {second} values differ in form only"));
    }
    problems
}

/// `x.<column> <> x.expected_<column>` for every counter of [`GuestVenueRow`], OR-ed.
const GUEST_COUNTERS_DIFFER: &str = "x.total_bookings <> x.expected_total_bookings \
     OR x.cancelled_bookings <> x.expected_cancelled_bookings \
     OR x.no_show_bookings <> x.expected_no_show_bookings \
     OR x.total_spent <> x.expected_total_spent \
     OR x.total_diners <> x.expected_total_diners \
     OR x.last_booking_at IS DISTINCT FROM x.expected_last_booking_at";

/// **Each guest's per-venue row equals a recomputation from the guest's bookings at that
/// venue** (DOMAIN.md "Promoter and guest metrics": what a user sees of a guest covers only
/// the venues they can read, so the counters are kept per guest and venue, in
/// `guest_venue_stats`): `total_bookings` (every status), `cancelled_bookings`,
/// `no_show_bookings`, `total_spent` (sum of `total_fee` of the COMPLETED bookings),
/// `total_diners` (sum of `diners`, every status) and `last_booking_at` (latest
/// `booking_time`, any status). A (guest, venue) pair with bookings and no row is reported
/// too; a row without bookings must hold zeros.
///
/// Two set-based halves joined by `UNION ALL` (the stored rows against the recomputation,
/// and the recomputed pairs that have no row), so only the pairs that disagree come back.
/// With a venue, only that venue's rows and bookings.
#[tracing::instrument(skip_all)]
pub async fn guest_venue_aggregates_match_bookings(
    db: &impl ConnectionTrait,
    venue: Option<Uuid>,
) -> Result<Vec<Discrepancy>> {
    let params = Params::new(db.get_database_backend(), venue);
    let expected = format!(
        "SELECT b.guest_id, b.venue_id, COUNT(*) AS bookings, \
           COUNT(CASE WHEN b.status = 'CANCELLED' THEN 1 END) AS cancelled, \
           COUNT(CASE WHEN b.status = 'NO_SHOW' THEN 1 END) AS no_show, \
           CAST(COALESCE(SUM(CASE WHEN b.status = 'COMPLETED' THEN b.total_fee END), 0) AS BIGINT) AS spent, \
           CAST(SUM(b.diners) AS BIGINT) AS diners, \
           MAX(b.booking_time) AS last_booking_at \
         FROM bookings b WHERE {scope} \
         GROUP BY b.guest_id, b.venue_id",
        scope = params.venue_is("b.venue_id"),
    );
    let sql = format!(
        "SELECT * FROM ( \
           SELECT s.guest_id, s.venue_id, TRUE AS stored, \
             CAST(s.total_bookings AS BIGINT) AS total_bookings, \
             CAST(s.cancelled_bookings AS BIGINT) AS cancelled_bookings, \
             CAST(s.no_show_bookings AS BIGINT) AS no_show_bookings, \
             s.total_spent, \
             CAST(s.total_diners AS BIGINT) AS total_diners, \
             s.last_booking_at, \
             CAST(COALESCE(e.bookings, 0) AS BIGINT) AS expected_total_bookings, \
             CAST(COALESCE(e.cancelled, 0) AS BIGINT) AS expected_cancelled_bookings, \
             CAST(COALESCE(e.no_show, 0) AS BIGINT) AS expected_no_show_bookings, \
             CAST(COALESCE(e.spent, 0) AS BIGINT) AS expected_total_spent, \
             CAST(COALESCE(e.diners, 0) AS BIGINT) AS expected_total_diners, \
             e.last_booking_at AS expected_last_booking_at \
           FROM guest_venue_stats s LEFT JOIN ({expected}) e \
             ON e.guest_id = s.guest_id AND e.venue_id = s.venue_id \
           WHERE {rows_scope} \
           UNION ALL \
           SELECT e.guest_id, e.venue_id, FALSE AS stored, \
             CAST(0 AS BIGINT), CAST(0 AS BIGINT), CAST(0 AS BIGINT), CAST(0 AS BIGINT), \
             CAST(0 AS BIGINT), NULL, \
             CAST(e.bookings AS BIGINT), CAST(e.cancelled AS BIGINT), \
             CAST(e.no_show AS BIGINT), CAST(e.spent AS BIGINT), CAST(e.diners AS BIGINT), \
             e.last_booking_at \
           FROM ({expected}) e LEFT JOIN guest_venue_stats s \
             ON s.guest_id = e.guest_id AND s.venue_id = e.venue_id \
           WHERE s.guest_id IS NULL \
         ) x \
         WHERE x.stored = FALSE OR {GUEST_COUNTERS_DIFFER} \
         ORDER BY x.guest_id, x.venue_id",
        rows_scope = params.venue_is("s.venue_id"),
    );
    let rows: Vec<GuestVenueRow> = fetch(db, params, sql).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let venue = row.venue_id.map_or("none".to_owned(), |id| id.to_string());
            let message = if row.stored {
                format!(
                    "venue {venue}: {}",
                    guest_counter_problems(&row, "stored", "recomputed").join("; ")
                )
            } else {
                format!(
                    "venue {venue}: no guest_venue_stats row for {} booking(s)",
                    row.expected_total_bookings
                )
            };
            Discrepancy {
                kind: "guest_venue_aggregate",
                entity: "guest",
                id: row.guest_id,
                message,
            }
        })
        .collect())
}

/// **A guest's per-venue rows sum to the guest row**: the counts, `total_spent` and
/// `total_diners` add up, and the latest `last_booking_at` of the rows is the guest's. With
/// [`guest_aggregates_match_bookings`] and [`guest_venue_aggregates_match_bookings`] this
/// says the two stores agree; on its own, scoped to a venue, it also catches a row at
/// another venue that drifted from the guest row. Every guest in scope (those who booked at
/// the venue, with one) over all of their rows.
#[tracing::instrument(skip_all)]
pub async fn guest_venue_aggregates_sum_to_guest(
    db: &impl ConnectionTrait,
    venue: Option<Uuid>,
) -> Result<Vec<Discrepancy>> {
    let params = Params::new(db.get_database_backend(), venue);
    let sql = format!(
        "SELECT * FROM ( \
           SELECT g.id AS guest_id, CAST(NULL AS {uuid}) AS venue_id, TRUE AS stored, \
             CAST(g.total_bookings AS BIGINT) AS total_bookings, \
             CAST(g.cancelled_bookings AS BIGINT) AS cancelled_bookings, \
             CAST(g.no_show_bookings AS BIGINT) AS no_show_bookings, \
             g.total_spent, \
             CAST(g.total_diners AS BIGINT) AS total_diners, \
             g.last_booking_at, \
             CAST(COALESCE(s.bookings, 0) AS BIGINT) AS expected_total_bookings, \
             CAST(COALESCE(s.cancelled, 0) AS BIGINT) AS expected_cancelled_bookings, \
             CAST(COALESCE(s.no_show, 0) AS BIGINT) AS expected_no_show_bookings, \
             CAST(COALESCE(s.spent, 0) AS BIGINT) AS expected_total_spent, \
             CAST(COALESCE(s.diners, 0) AS BIGINT) AS expected_total_diners, \
             s.last_booking_at AS expected_last_booking_at \
           FROM guests g LEFT JOIN ( \
             SELECT r.guest_id, SUM(r.total_bookings) AS bookings, \
               SUM(r.cancelled_bookings) AS cancelled, SUM(r.no_show_bookings) AS no_show, \
               SUM(r.total_spent) AS spent, SUM(r.total_diners) AS diners, \
               MAX(r.last_booking_at) AS last_booking_at \
             FROM guest_venue_stats r WHERE {rows_scope} GROUP BY r.guest_id \
           ) s ON s.guest_id = g.id \
           WHERE {guests_scope} \
         ) x \
         WHERE {GUEST_COUNTERS_DIFFER} \
         ORDER BY x.guest_id",
        uuid = match params.backend {
            DbBackend::Postgres => "UUID",
            _ => "BLOB",
        },
        rows_scope = params.guest_in_scope("r.guest_id"),
        guests_scope = params.guest_in_scope("g.id"),
    );
    let rows: Vec<GuestVenueRow> = fetch(db, params, sql).await?;
    Ok(rows
        .into_iter()
        .map(|row| Discrepancy {
            kind: "guest_venue_sum",
            entity: "guest",
            id: row.guest_id,
            message: guest_counter_problems(&row, "guest row", "sum over venues").join("; "),
        })
        .collect())
}

// ---------------------------------------------------------------------------------------
// 4. Paid-out amounts never changed
// ---------------------------------------------------------------------------------------

#[derive(Debug, FromQueryResult)]
struct PaidTransactionRow {
    id: Uuid,
    payout_id: Uuid,
    kind: String,
    amount: i64,
    item_amount: Option<i64>,
    item_kind: Option<String>,
}

#[derive(Debug, FromQueryResult)]
struct StrayItemRow {
    transaction_id: Uuid,
    payout_id: Uuid,
    amount: i64,
    transaction_payout_id: Option<Uuid>,
    transaction_amount: i64,
}

#[derive(Debug, FromQueryResult)]
struct PayoutRow {
    id: Uuid,
    amount: i64,
    commissions_amount: i64,
    incentives_amount: i64,
    adjustments_amount: i64,
    fees_amount: i64,
    commissions: i64,
    incentives: i64,
    adjustments: i64,
    other_items: i64,
}

/// **No paid-out amount ever changed** (DOMAIN.md "Transactions": amounts never change after
/// they are written; "Payouts": a payout equals its items).
///
/// The schema keeps no history of amounts, so this checks the copies that exist:
/// - every transaction in a payout (`payout_id` set) has a `payout_items` row of that payout
///   with the same amount and type (the item copied the amount when the payout took it);
/// - every item of a payout that did not FAIL points at a transaction that is still in that
///   payout, with the same amount (a FAILED payout released its transactions);
/// - each payout's `commissions_amount`, `incentives_amount`, `adjustments_amount` equal the
///   sums of its PROMOTER_COMMISSION, INCENTIVE_PAYOUT and ADJUSTMENT items, it holds no
///   item of another type, and `amount = commissions + incentives + adjustments - fees`.
///
/// It detects an amount changed on a paid-out transaction, on an item or on a payout alone.
/// It cannot detect a change made before the transaction entered a payout, nor one made
/// consistently to the transaction, its item and the payout totals, nor any change to a
/// transaction never paid out. (Fee and commission rows are also held to the booking's
/// locked-in fees by [`ledger_matches_fees`], which catches a change to any of those.)
#[tracing::instrument(skip_all)]
pub async fn paid_out_amounts_unchanged(
    db: &impl ConnectionTrait,
    venue: Option<Uuid>,
) -> Result<Vec<Discrepancy>> {
    let backend = db.get_database_backend();
    let mut found = Vec::new();

    let params = Params::new(backend, venue);
    let sql = format!(
        "SELECT t.id, t.payout_id, t.\"type\" AS kind, t.amount, \
           i.amount AS item_amount, i.\"type\" AS item_kind \
         FROM transactions t \
         LEFT JOIN payout_items i ON i.transaction_id = t.id AND i.payout_id = t.payout_id \
         WHERE t.payout_id IS NOT NULL AND {scope} \
           AND (i.id IS NULL OR i.amount <> t.amount OR i.\"type\" <> t.\"type\") \
         ORDER BY t.id",
        scope = params.venue_is("t.venue_id"),
    );
    let rows: Vec<PaidTransactionRow> = fetch(db, params, sql).await?;
    for row in rows {
        let (kind, message) = match (row.item_amount, row.item_kind) {
            (None, _) => (
                "payout_item",
                format!(
                    "in payout {} (amount {}) but the payout has no item for it",
                    row.payout_id,
                    cents(row.amount)
                ),
            ),
            (Some(item_amount), Some(item_kind)) if item_amount != row.amount => (
                "ledger_amount_changed",
                format!(
                    "{} amount {} but payout {} paid it out as {} (its item, {item_kind})",
                    row.kind,
                    cents(row.amount),
                    row.payout_id,
                    cents(item_amount)
                ),
            ),
            (Some(_), item_kind) => (
                "payout_item",
                format!(
                    "a {} but its item in payout {} says {}",
                    row.kind,
                    row.payout_id,
                    item_kind.unwrap_or_default()
                ),
            ),
        };
        found.push(Discrepancy {
            kind,
            entity: "transaction",
            id: row.id,
            message,
        });
    }

    let params = Params::new(backend, venue);
    let sql = format!(
        "SELECT i.transaction_id, i.payout_id, i.amount, t.payout_id AS transaction_payout_id, \
           t.amount AS transaction_amount \
         FROM payout_items i \
         JOIN payouts p ON p.id = i.payout_id \
         JOIN transactions t ON t.id = i.transaction_id \
         WHERE p.status <> 'FAILED' AND {scope} \
           AND (t.payout_id IS NULL OR t.payout_id <> i.payout_id) \
         ORDER BY i.transaction_id",
        scope = params.venue_is("p.venue_id"),
    );
    let rows: Vec<StrayItemRow> = fetch(db, params, sql).await?;
    for row in rows {
        let now_in = row
            .transaction_payout_id
            .map_or("no payout".to_owned(), |p| format!("payout {p}"));
        let (kind, message) = if row.amount == row.transaction_amount {
            (
                "payout_item",
                format!(
                    "an item of payout {} ({}) but the transaction is in {now_in}",
                    row.payout_id,
                    cents(row.amount)
                ),
            )
        } else {
            (
                "ledger_amount_changed",
                format!(
                    "paid out in payout {} as {} but the transaction now says {} and is in {now_in}",
                    row.payout_id,
                    cents(row.amount),
                    cents(row.transaction_amount)
                ),
            )
        };
        found.push(Discrepancy {
            kind,
            entity: "transaction",
            id: row.transaction_id,
            message,
        });
    }

    let params = Params::new(backend, venue);
    let sum = |kind: &str| {
        format!("CAST(COALESCE(SUM(CASE WHEN \"type\" = '{kind}' THEN amount END), 0) AS BIGINT)")
    };
    let sql = format!(
        "SELECT * FROM ( \
           SELECT p.id, p.amount, p.commissions_amount, p.incentives_amount, \
             p.adjustments_amount, p.fees_amount, \
             COALESCE(i.commissions, 0) AS commissions, COALESCE(i.incentives, 0) AS incentives, \
             COALESCE(i.adjustments, 0) AS adjustments, COALESCE(i.other_items, 0) AS other_items \
           FROM payouts p LEFT JOIN ( \
             SELECT payout_id, {commissions} AS commissions, {incentives} AS incentives, \
               {adjustments} AS adjustments, \
               COUNT(CASE WHEN \"type\" NOT IN ('PROMOTER_COMMISSION', 'INCENTIVE_PAYOUT', 'ADJUSTMENT') \
                 THEN 1 END) AS other_items \
             FROM payout_items GROUP BY payout_id \
           ) i ON i.payout_id = p.id \
           WHERE {scope} \
         ) x \
         WHERE x.commissions_amount <> x.commissions OR x.incentives_amount <> x.incentives \
           OR x.adjustments_amount <> x.adjustments OR x.other_items > 0 \
           OR x.amount <> x.commissions_amount + x.incentives_amount + x.adjustments_amount - x.fees_amount \
         ORDER BY x.id",
        commissions = sum("PROMOTER_COMMISSION"),
        incentives = sum("INCENTIVE_PAYOUT"),
        adjustments = sum("ADJUSTMENT"),
        scope = params.venue_is("p.venue_id"),
    );
    let rows: Vec<PayoutRow> = fetch(db, params, sql).await?;
    for row in rows {
        found.push(Discrepancy {
            kind: "payout_amount",
            entity: "payout",
            id: row.id,
            message: payout_message(&row),
        });
    }
    Ok(found)
}

/// What disagrees in one payout's totals.
fn payout_message(row: &PayoutRow) -> String {
    let mut problems = Vec::new();
    for (field, stored, items, kind) in [
        (
            "commissions_amount",
            row.commissions_amount,
            row.commissions,
            "PROMOTER_COMMISSION",
        ),
        (
            "incentives_amount",
            row.incentives_amount,
            row.incentives,
            "INCENTIVE_PAYOUT",
        ),
        (
            "adjustments_amount",
            row.adjustments_amount,
            row.adjustments,
            "ADJUSTMENT",
        ),
    ] {
        if stored != items {
            problems.push(format!(
                "{field} {} but its {kind} items sum to {}",
                cents(stored),
                cents(items)
            ));
        }
    }
    if row.other_items > 0 {
        problems.push(format!(
            "{} item(s) of a type a payout never holds",
            row.other_items
        ));
    }
    let expected =
        row.commissions_amount + row.incentives_amount + row.adjustments_amount - row.fees_amount;
    if row.amount != expected {
        problems.push(format!(
            "amount {} but commissions {} + incentives {} + adjustments {} - fees {} = {}",
            cents(row.amount),
            cents(row.commissions_amount),
            cents(row.incentives_amount),
            cents(row.adjustments_amount),
            cents(row.fees_amount),
            cents(expected)
        ));
    }
    problems.join("; ")
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use prima_entity::enums::{BookingStatus, TransactionStatus, TransactionType};
    use prima_entity::{bookings, guest_venue_stats, guests, payouts, promoters, transactions};
    use sea_orm::sea_query::{Expr, ExprTrait};
    use sea_orm::{
        ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter,
        QueryOrder,
    };

    use super::*;
    use crate::seed::{SeedOptions, seed};
    use crate::testing::TestDb;

    /// A fresh database with the demo portfolio of 400 bookings, and the seed's `now`.
    async fn seeded() -> (TestDb, DateTime<Utc>) {
        let db = TestDb::new().await;
        let now = crate::time::now();
        seed(&db.conn, &SeedOptions { bookings: 400, now })
            .await
            .expect("seeding");
        (db, now)
    }

    /// (kind, id) of every discrepancy, for assertions that name exactly what was found.
    fn found(report: &CheckReport) -> Vec<(&'static str, Uuid)> {
        report
            .discrepancies
            .iter()
            .map(|d| (d.kind, d.id))
            .collect()
    }

    async fn platform_fee_rows(db: &TestDb) -> Vec<transactions::Model> {
        transactions::Entity::find()
            .filter(transactions::Column::Type.eq(TransactionType::PlatformFee))
            .order_by_asc(transactions::Column::Id)
            .all(&db.conn)
            .await
            .unwrap()
    }

    async fn add_to_amount(db: &TestDb, transaction: Uuid, cents: i64) {
        transactions::Entity::update_many()
            .col_expr(
                transactions::Column::Amount,
                Expr::col(transactions::Column::Amount).add(cents),
            )
            .filter(transactions::Column::Id.eq(transaction))
            .exec(&db.conn)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn the_seeded_demo_portfolio_has_no_discrepancies() {
        let (db, now) = seeded().await;
        let report = run_at(&db.conn, None, now).await.expect("check");
        assert_eq!(report.discrepancies, Vec::new());
        assert_eq!(report.bookings_checked, 400);
        assert_eq!(report.guests_checked, 50);
        assert_eq!(
            report.promoters_checked,
            promoters::Entity::find().count(&db.conn).await.unwrap()
        );
        assert_eq!(
            report.transactions_checked,
            transactions::Entity::find().count(&db.conn).await.unwrap()
        );
        assert!(report.transactions_checked > 400);
        // And so does every venue on its own.
        let first = bookings::Entity::find()
            .one(&db.conn)
            .await
            .unwrap()
            .unwrap();
        let venue = run_at(&db.conn, Some(first.venue_id), now).await.unwrap();
        assert_eq!(venue.discrepancies, Vec::new());
    }

    #[tokio::test]
    async fn a_changed_fee_promoter_total_and_guest_total_are_each_reported_once() {
        let (db, now) = seeded().await;
        let fee = platform_fee_rows(&db).await.remove(0);
        let booking = fee.booking_id.unwrap();
        add_to_amount(&db, fee.id, 100).await;

        let promoter = promoters::Entity::find()
            .order_by_asc(promoters::Column::Id)
            .one(&db.conn)
            .await
            .unwrap()
            .unwrap();
        promoters::Entity::update_many()
            .col_expr(
                promoters::Column::TotalBookings,
                Expr::col(promoters::Column::TotalBookings).add(1),
            )
            .filter(promoters::Column::Id.eq(promoter.id))
            .exec(&db.conn)
            .await
            .unwrap();

        let guest = guests::Entity::find()
            .order_by_asc(guests::Column::Id)
            .one(&db.conn)
            .await
            .unwrap()
            .unwrap();
        guests::Entity::update_many()
            .col_expr(
                guests::Column::TotalSpent,
                Expr::col(guests::Column::TotalSpent).add(1_050),
            )
            .filter(guests::Column::Id.eq(guest.id))
            .exec(&db.conn)
            .await
            .unwrap();

        let report = run_at(&db.conn, None, now).await.expect("check");
        assert_eq!(
            found(&report),
            vec![
                ("ledger", booking),
                ("promoter_aggregate", promoter.id),
                ("guest_aggregate", guest.id),
                // The guest row no longer agrees with its per-venue rows either.
                ("guest_venue_sum", guest.id),
            ],
            "{:#?}",
            report.discrepancies
        );
        let messages: Vec<_> = report.discrepancies.iter().map(|d| &d.message).collect();
        assert_eq!(
            messages[0],
            &format!(
                "PLATFORM_FEE: expected one row of {} (platform_fee), found 1 row(s) totalling {}",
                cents(fee.amount),
                cents(fee.amount + 100)
            )
        );
        assert_eq!(
            messages[1],
            &format!(
                "total_bookings: stored {}, recomputed {}",
                promoter.total_bookings + 1,
                promoter.total_bookings
            )
        );
        assert_eq!(
            messages[2],
            &format!(
                "total_spent: stored {}, recomputed {}",
                cents(guest.total_spent + 1_050),
                cents(guest.total_spent)
            )
        );
        assert_eq!(
            messages[3],
            &format!(
                "total_spent: guest row {}, sum over venues {}",
                cents(guest.total_spent + 1_050),
                cents(guest.total_spent)
            )
        );
        assert_eq!(report.discrepancies[0].entity, "booking");
        assert_eq!(report.discrepancies[1].entity, "promoter");
        assert_eq!(report.discrepancies[2].entity, "guest");
    }

    #[tokio::test]
    async fn a_corrupted_promoter_counter_and_guest_total_diners_are_reported() {
        let (db, now) = seeded().await;
        let promoter = promoters::Entity::find()
            .order_by_asc(promoters::Column::Id)
            .one(&db.conn)
            .await
            .unwrap()
            .unwrap();
        promoters::Entity::update_many()
            .col_expr(
                promoters::Column::CancelledBookings,
                Expr::col(promoters::Column::CancelledBookings).add(1),
            )
            .filter(promoters::Column::Id.eq(promoter.id))
            .exec(&db.conn)
            .await
            .unwrap();
        let guest = guests::Entity::find()
            .order_by_asc(guests::Column::Id)
            .one(&db.conn)
            .await
            .unwrap()
            .unwrap();
        guests::Entity::update_many()
            .col_expr(
                guests::Column::TotalDiners,
                Expr::col(guests::Column::TotalDiners).add(1),
            )
            .filter(guests::Column::Id.eq(guest.id))
            .exec(&db.conn)
            .await
            .unwrap();

        let report = run_at(&db.conn, None, now).await.expect("check");
        assert_eq!(
            found(&report),
            vec![
                ("promoter_aggregate", promoter.id),
                ("guest_aggregate", guest.id),
                ("guest_venue_sum", guest.id),
            ],
            "{:#?}",
            report.discrepancies
        );
        assert_eq!(
            report.discrepancies[0].message,
            format!(
                "cancelled_bookings: stored {}, recomputed {}",
                promoter.cancelled_bookings + 1,
                promoter.cancelled_bookings
            )
        );
        assert_eq!(
            report.discrepancies[1].message,
            format!(
                "total_diners: stored {}, recomputed {}",
                guest.total_diners + 1,
                guest.total_diners
            )
        );
    }

    /// The first guest's row at the first venue where they booked.
    async fn first_guest_venue_row(db: &TestDb) -> guest_venue_stats::Model {
        guest_venue_stats::Entity::find()
            .order_by_asc(guest_venue_stats::Column::GuestId)
            .order_by_asc(guest_venue_stats::Column::VenueId)
            .one(&db.conn)
            .await
            .unwrap()
            .expect("the seed fills guest_venue_stats")
    }

    #[tokio::test]
    async fn the_seeded_per_venue_guest_rows_equal_the_bookings_and_sum_to_the_guest_rows() {
        let (db, _) = seeded().await;
        let rows = guest_venue_stats::Entity::find()
            .all(&db.conn)
            .await
            .unwrap();
        let all = bookings::Entity::find().all(&db.conn).await.unwrap();
        let pairs: std::collections::BTreeSet<_> =
            all.iter().map(|b| (b.guest_id, b.venue_id)).collect();
        assert_eq!(
            rows.len(),
            pairs.len(),
            "one row per (guest, venue) with bookings"
        );
        for row in &rows {
            let mine: Vec<_> = all
                .iter()
                .filter(|b| b.guest_id == row.guest_id && b.venue_id == row.venue_id)
                .collect();
            assert_eq!(row.total_bookings as usize, mine.len());
            assert_eq!(
                row.total_spent,
                mine.iter()
                    .filter(|b| b.status == BookingStatus::Completed)
                    .map(|b| b.total_fee)
                    .sum::<i64>()
            );
            assert_eq!(
                row.last_booking_at,
                mine.iter().map(|b| b.booking_time).max()
            );
        }
        assert_eq!(
            guest_venue_aggregates_match_bookings(&db.conn, None)
                .await
                .unwrap(),
            Vec::new()
        );
        assert_eq!(
            guest_venue_aggregates_sum_to_guest(&db.conn, None)
                .await
                .unwrap(),
            Vec::new()
        );
    }

    #[tokio::test]
    async fn a_tampered_per_venue_guest_row_is_reported_against_the_bookings_and_the_guest_row() {
        let (db, now) = seeded().await;
        let row = first_guest_venue_row(&db).await;
        guest_venue_stats::Entity::update_many()
            .col_expr(
                guest_venue_stats::Column::CancelledBookings,
                Expr::col(guest_venue_stats::Column::CancelledBookings).add(2),
            )
            .filter(guest_venue_stats::Column::GuestId.eq(row.guest_id))
            .filter(guest_venue_stats::Column::VenueId.eq(row.venue_id))
            .exec(&db.conn)
            .await
            .unwrap();

        let report = run_at(&db.conn, None, now).await.expect("check");
        assert_eq!(
            found(&report),
            vec![
                ("guest_venue_aggregate", row.guest_id),
                ("guest_venue_sum", row.guest_id),
            ],
            "{:#?}",
            report.discrepancies
        );
        let guest = guests::Entity::find_by_id(row.guest_id)
            .one(&db.conn)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            report.discrepancies[0].message,
            format!(
                "venue {}: cancelled_bookings: stored {}, recomputed {}",
                row.venue_id,
                row.cancelled_bookings + 2,
                row.cancelled_bookings
            )
        );
        assert_eq!(
            report.discrepancies[1].message,
            format!(
                "cancelled_bookings: guest row {}, sum over venues {}",
                guest.cancelled_bookings,
                guest.cancelled_bookings + 2
            )
        );
        // Scoped to that venue it is found too; scoped to a venue where the guest never
        // booked, not.
        let scoped = run_at(&db.conn, Some(row.venue_id), now).await.unwrap();
        assert_eq!(found(&scoped), found(&report));
        let booked: Vec<Uuid> = bookings::Entity::find()
            .filter(bookings::Column::GuestId.eq(row.guest_id))
            .all(&db.conn)
            .await
            .unwrap()
            .into_iter()
            .map(|b| b.venue_id)
            .collect();
        let elsewhere = venues::Entity::find()
            .filter(venues::Column::Id.is_not_in(booked))
            .one(&db.conn)
            .await
            .unwrap();
        if let Some(elsewhere) = elsewhere {
            let other = run_at(&db.conn, Some(elsewhere.id), now).await.unwrap();
            assert_eq!(other.discrepancies, Vec::new());
        }
    }

    #[tokio::test]
    async fn a_missing_per_venue_guest_row_is_reported() {
        let (db, now) = seeded().await;
        let row = first_guest_venue_row(&db).await;
        guest_venue_stats::Entity::delete_many()
            .filter(guest_venue_stats::Column::GuestId.eq(row.guest_id))
            .filter(guest_venue_stats::Column::VenueId.eq(row.venue_id))
            .exec(&db.conn)
            .await
            .unwrap();
        let report = run_at(&db.conn, None, now).await.expect("check");
        assert_eq!(
            found(&report),
            vec![
                ("guest_venue_aggregate", row.guest_id),
                ("guest_venue_sum", row.guest_id),
            ],
            "{:#?}",
            report.discrepancies
        );
        assert_eq!(
            report.discrepancies[0].message,
            format!(
                "venue {}: no guest_venue_stats row for {} booking(s)",
                row.venue_id, row.total_bookings
            )
        );
    }

    #[tokio::test]
    async fn checking_one_venue_reports_only_that_venues_discrepancies() {
        let (db, now) = seeded().await;
        let fees = platform_fee_rows(&db).await;
        let here = fees[0].clone();
        let elsewhere = fees
            .iter()
            .find(|t| t.venue_id != here.venue_id)
            .unwrap()
            .clone();
        add_to_amount(&db, here.id, -1).await;
        add_to_amount(&db, elsewhere.id, -1).await;
        let other_promoter = promoters::Entity::find()
            .filter(promoters::Column::VenueId.ne(here.venue_id))
            .one(&db.conn)
            .await
            .unwrap()
            .unwrap();
        promoters::Entity::update_many()
            .col_expr(promoters::Column::CancelRate, Expr::value(9_999i64))
            .filter(promoters::Column::Id.eq(other_promoter.id))
            .exec(&db.conn)
            .await
            .unwrap();

        let report = run_at(&db.conn, Some(here.venue_id), now).await.unwrap();
        assert_eq!(found(&report), vec![("ledger", here.booking_id.unwrap())]);
        assert_eq!(
            report.bookings_checked,
            bookings::Entity::find()
                .filter(bookings::Column::VenueId.eq(here.venue_id))
                .count(&db.conn)
                .await
                .unwrap()
        );
        assert_eq!(
            report.promoters_checked,
            promoters::Entity::find()
                .filter(promoters::Column::VenueId.eq(here.venue_id))
                .count(&db.conn)
                .await
                .unwrap()
        );

        let everything = run_at(&db.conn, None, now).await.unwrap();
        assert_eq!(everything.discrepancies.len(), 3);
    }

    #[tokio::test]
    async fn fee_rows_whose_status_does_not_follow_the_booking_are_reported() {
        let (db, now) = seeded().await;
        let completed = bookings::Entity::find()
            .filter(bookings::Column::Status.eq(BookingStatus::Completed))
            .one(&db.conn)
            .await
            .unwrap()
            .unwrap();
        transactions::Entity::update_many()
            .col_expr(
                transactions::Column::Status,
                Expr::value(TransactionStatus::Pending.as_str()),
            )
            .filter(transactions::Column::BookingId.eq(completed.id))
            .filter(transactions::Column::Type.eq(TransactionType::BookingFee))
            .exec(&db.conn)
            .await
            .unwrap();
        let report = run_at(&db.conn, None, now).await.unwrap();
        assert_eq!(found(&report), vec![("ledger", completed.id)]);
        assert!(
            report.discrepancies[0]
                .message
                .starts_with("a COMPLETED booking's fee rows must be CONFIRMED or SETTLED")
                && report.discrepancies[0]
                    .message
                    .ends_with("but its BOOKING_FEE is PENDING"),
            "{}",
            report.discrepancies[0].message
        );
    }

    #[tokio::test]
    async fn transactions_of_a_booking_never_confirmed_are_reported() {
        let (db, now) = seeded().await;
        let completed = bookings::Entity::find()
            .filter(bookings::Column::Status.eq(BookingStatus::Completed))
            .one(&db.conn)
            .await
            .unwrap()
            .unwrap();
        bookings::Entity::update_many()
            .col_expr(
                bookings::Column::ConfirmedAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(bookings::Column::Id.eq(completed.id))
            .exec(&db.conn)
            .await
            .unwrap();
        let rows = transactions::Entity::find()
            .filter(transactions::Column::BookingId.eq(completed.id))
            .count(&db.conn)
            .await
            .unwrap();
        let report = run_at(&db.conn, None, now).await.unwrap();
        assert_eq!(found(&report), vec![("ledger", completed.id)]);
        assert_eq!(
            report.discrepancies[0].message,
            format!(
                "status COMPLETED but confirmed_at is not set; never confirmed but has {rows} transaction(s)"
            )
        );
    }

    #[tokio::test]
    async fn refunds_up_to_the_charge_are_allowed_and_beyond_it_are_reported() {
        let (db, now) = seeded().await;
        let completed = bookings::Entity::find()
            .filter(bookings::Column::Status.eq(BookingStatus::Completed))
            .one(&db.conn)
            .await
            .unwrap()
            .unwrap();
        let fee = transactions::Entity::find()
            .filter(transactions::Column::BookingId.eq(completed.id))
            .filter(transactions::Column::Type.eq(TransactionType::BookingFee))
            .one(&db.conn)
            .await
            .unwrap()
            .unwrap();
        let refund = |amount: i64| transactions::Model {
            id: Uuid::new_v4(),
            r#type: TransactionType::Refund,
            amount,
            description: "refund".into(),
            status: TransactionStatus::Confirmed,
            promoter_id: None,
            commission_rate: None,
            commission_amount: None,
            commission_tier: None,
            payout_id: None,
            settled_at: None,
            ..fee.clone()
        };
        refund(-completed.total_fee)
            .into_active_model()
            .insert(&db.conn)
            .await
            .unwrap();
        let report = run_at(&db.conn, None, now).await.unwrap();
        assert_eq!(report.discrepancies, Vec::new(), "a full refund is allowed");

        refund(-1)
            .into_active_model()
            .insert(&db.conn)
            .await
            .unwrap();
        let report = run_at(&db.conn, None, now).await.unwrap();
        assert_eq!(found(&report), vec![("ledger", completed.id)]);
        assert!(report.discrepancies[0].message.starts_with(&format!(
            "refunds of {} against {} of live fees",
            cents(-completed.total_fee - 1),
            cents(completed.total_fee)
        )));
    }

    #[tokio::test]
    async fn a_changed_paid_out_amount_and_a_changed_payout_total_are_reported() {
        let (db, now) = seeded().await;
        let paid = transactions::Entity::find()
            .filter(transactions::Column::PayoutId.is_not_null())
            .order_by_asc(transactions::Column::Id)
            .one(&db.conn)
            .await
            .unwrap()
            .expect("the demo has paid-out commissions");
        add_to_amount(&db, paid.id, 500).await;
        let payout = payouts::Entity::find()
            .filter(payouts::Column::Id.ne(paid.payout_id.unwrap()))
            .one(&db.conn)
            .await
            .unwrap()
            .unwrap();
        payouts::Entity::update_many()
            .col_expr(
                payouts::Column::Amount,
                Expr::col(payouts::Column::Amount).add(1),
            )
            .filter(payouts::Column::Id.eq(payout.id))
            .exec(&db.conn)
            .await
            .unwrap();

        let report = run_at(&db.conn, None, now).await.unwrap();
        assert_eq!(
            found(&report),
            vec![
                // The commission no longer matches the booking's locked-in commission...
                ("ledger", paid.booking_id.unwrap()),
                // ...nor the amount its payout paid out.
                ("ledger_amount_changed", paid.id),
                ("payout_amount", payout.id),
            ],
            "{:#?}",
            report.discrepancies
        );
        assert!(
            report.discrepancies[1]
                .message
                .contains(&format!("paid it out as {}", cents(paid.amount))),
            "{}",
            report.discrepancies[1].message
        );
        assert!(
            report.discrepancies[2].message.starts_with(&format!(
                "amount {} but commissions",
                cents(payout.amount + 1)
            )),
            "{}",
            report.discrepancies[2].message
        );
    }

    #[tokio::test]
    async fn month_fields_are_recomputed_for_the_month_of_now() {
        let (db, now) = seeded().await;
        // Two months later the stored month fields describe a month that is over.
        let report = run_at(&db.conn, None, now + TimeDelta::days(62))
            .await
            .unwrap();
        assert!(!report.discrepancies.is_empty());
        for d in &report.discrepancies {
            assert_eq!(d.kind, "promoter_aggregate");
            for problem in d.message.split("; ") {
                assert!(problem.starts_with("month_"), "{problem}");
            }
        }
    }

    #[test]
    fn a_month_starts_at_local_midnight_of_the_first() {
        let now = DateTime::parse_from_rfc3339("2026-03-01T03:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        // Still February in New York (UTC-5).
        let (start, end) = month_bounds("America/New_York", now).unwrap();
        assert_eq!(start.to_rfc3339(), "2026-02-01T05:00:00+00:00");
        assert_eq!(end.to_rfc3339(), "2026-03-01T05:00:00+00:00");
        assert_eq!(month_bounds("Mars/Olympus_Mons", now), None);
    }
}
