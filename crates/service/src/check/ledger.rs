//! Invariant 1: the ledger matches the bookings' fees (DOMAIN.md "Transactions").

use sea_orm::{ConnectionTrait, FromQueryResult};
use uuid::Uuid;

use super::{Discrepancy, Params, fetch};
use crate::error::Result;
use crate::money::cents;

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
    let mut problems = Problems::new();
    fee_rows(db, venue, &mut problems).await?;
    corrections(db, venue, &mut problems).await?;
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

/// The problems found so far, by booking.
type Problems = std::collections::BTreeMap<Uuid, Vec<String>>;

/// `SUM(t.amount)` over the transactions that meet `condition`, 0 when none does.
fn money_sum(condition: &str) -> String {
    format!("CAST(COALESCE(SUM(CASE WHEN {condition} THEN t.amount END), 0) AS BIGINT)")
}

/// The first statement: each booking against its fee and commission rows (counts, sums,
/// statuses) and its own total, adding to `problems` for each booking that breaks a rule.
async fn fee_rows(
    db: &impl ConnectionTrait,
    venue: Option<Uuid>,
    problems: &mut Problems,
) -> Result<()> {
    let params = Params::new(db.get_database_backend(), venue);
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
    Ok(())
}

/// The second statement: the REFUND and ADJUSTMENT corrections of each booking that has
/// one, against its live fees and commission, adding to `problems`.
async fn corrections(
    db: &impl ConnectionTrait,
    venue: Option<Uuid>,
    problems: &mut Problems,
) -> Result<()> {
    let params = Params::new(db.get_database_backend(), venue);
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
    Ok(())
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
