//! Invariant 4: paid-out amounts never change after their payout.

use sea_orm::{ConnectionTrait, FromQueryResult};
use uuid::Uuid;

use super::{Discrepancy, Params, fetch};
use crate::error::Result;
use crate::money::cents;

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
/// locked-in fees by [`ledger_matches_fees`](super::ledger::ledger_matches_fees), which catches a change to any of those.)
#[tracing::instrument(skip_all)]
pub async fn paid_out_amounts_unchanged(
    db: &impl ConnectionTrait,
    venue: Option<Uuid>,
) -> Result<Vec<Discrepancy>> {
    let mut found = paid_transactions_have_their_items(db, venue).await?;
    found.extend(items_are_still_paid_out(db, venue).await?);
    found.extend(payouts_equal_their_items(db, venue).await?);
    Ok(found)
}

/// Every transaction in a payout has an item of that payout with its amount and type.
async fn paid_transactions_have_their_items(
    db: &impl ConnectionTrait,
    venue: Option<Uuid>,
) -> Result<Vec<Discrepancy>> {
    let params = Params::new(db.get_database_backend(), venue);
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
    let mut found = Vec::new();
    for row in rows {
        let (kind, message) = paid_transaction_problem(&row);
        found.push(Discrepancy {
            kind,
            entity: "transaction",
            id: row.id,
            message,
        });
    }
    Ok(found)
}

/// The kind and message of a paid-out transaction whose item is missing or disagrees.
fn paid_transaction_problem(row: &PaidTransactionRow) -> (&'static str, String) {
    match (row.item_amount, row.item_kind.as_deref()) {
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
    }
}

/// Every item of a payout that did not FAIL points at a transaction still in that payout,
/// with the item's amount.
async fn items_are_still_paid_out(
    db: &impl ConnectionTrait,
    venue: Option<Uuid>,
) -> Result<Vec<Discrepancy>> {
    let params = Params::new(db.get_database_backend(), venue);
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
    let mut found = Vec::new();
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
    Ok(found)
}

/// Each payout's totals equal the sums of its items by type, it holds no item of another
/// type, and its amount is commissions + incentives + adjustments - fees.
async fn payouts_equal_their_items(
    db: &impl ConnectionTrait,
    venue: Option<Uuid>,
) -> Result<Vec<Discrepancy>> {
    let params = Params::new(db.get_database_backend(), venue);
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
    let mut found = Vec::new();
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

#[derive(Debug, FromQueryResult)]
struct ClaimRow {
    id: Uuid,
    problem: String,
    count: i64,
}

/// **Payouts claim their transactions once and settle them only when paid** (DOMAIN.md
/// "Payouts"; issue "Payouts", `prima check`):
/// - no transaction is in two live payouts (live items: `released_at` NULL);
/// - a FAILED payout holds no live claim: no transaction points at it and its items are
///   all released; a payout that did not FAIL has no released item;
/// - a transaction in a payout is CONFIRMED, or SETTLED when that payout COMPLETED; every
///   SETTLED transaction is in a COMPLETED payout, and every transaction of a COMPLETED
///   payout is SETTLED;
/// - a carried balance is a negative one: the items a payout took from before its period
///   add up to less than zero (a payout takes earlier transactions only to deduct a
///   negative balance carried forward), and a promoter's unpaid negative transactions are
///   clawbacks and other ADJUSTMENTs, never commissions or rewards.
#[tracing::instrument(skip_all)]
pub async fn payout_claims_hold(
    db: &impl ConnectionTrait,
    venue: Option<Uuid>,
) -> Result<Vec<Discrepancy>> {
    let params = Params::new(db.get_database_backend(), venue);
    let sql = format!(
        "SELECT i.transaction_id AS id, 'in_two_live_payouts' AS problem, \
           CAST(COUNT(*) AS BIGINT) AS count \
         FROM payout_items i JOIN payouts p ON p.id = i.payout_id \
         WHERE i.released_at IS NULL AND {scope_p} \
         GROUP BY i.transaction_id HAVING COUNT(*) > 1 \
         UNION ALL \
         SELECT p.id, CASE WHEN p.status = 'FAILED' THEN 'failed_still_claims' \
             ELSE 'released_item_of_live_payout' END, \
           CAST(COUNT(*) AS BIGINT) \
         FROM payouts p JOIN payout_items i ON i.payout_id = p.id \
         WHERE {scope_p} AND ((p.status = 'FAILED' AND i.released_at IS NULL) \
           OR (p.status <> 'FAILED' AND i.released_at IS NOT NULL)) \
         GROUP BY p.id, p.status \
         UNION ALL \
         SELECT t.id, CASE \
             WHEN p.status = 'FAILED' THEN 'points_at_failed_payout' \
             WHEN t.status = 'SETTLED' THEN 'settled_outside_completed_payout' \
             WHEN p.status = 'COMPLETED' THEN 'completed_payout_not_settled' \
             ELSE 'claimed_but_not_confirmed' END, 1 \
         FROM transactions t LEFT JOIN payouts p ON p.id = t.payout_id \
         WHERE {scope_t} AND ( \
           (t.status = 'SETTLED' AND (p.id IS NULL OR p.status <> 'COMPLETED')) \
           OR (p.status = 'COMPLETED' AND t.status <> 'SETTLED') \
           OR (p.status = 'FAILED') \
           OR (p.id IS NOT NULL AND p.status <> 'COMPLETED' AND t.status <> 'CONFIRMED')) \
         UNION ALL \
         SELECT p.id, 'carried_balance_not_negative', CAST(COUNT(*) AS BIGINT) \
         FROM payouts p JOIN payout_items i ON i.payout_id = p.id \
           JOIN transactions t ON t.id = i.transaction_id \
         WHERE {scope_p} AND t.created_at < p.period_from \
         GROUP BY p.id HAVING SUM(i.amount) >= 0 \
         UNION ALL \
         SELECT t.id, 'negative_unpaid_not_an_adjustment', 1 \
         FROM transactions t \
         WHERE {scope_t} AND t.status = 'CONFIRMED' AND t.payout_id IS NULL AND t.amount < 0 \
           AND t.\"type\" IN ('PROMOTER_COMMISSION', 'INCENTIVE_PAYOUT') \
         ORDER BY 1",
        scope_p = params.venue_is("p.venue_id"),
        scope_t = params.venue_is("t.venue_id"),
    );
    let rows: Vec<ClaimRow> = fetch(db, params, sql).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let (entity, message) = claim_message(&row);
            Discrepancy {
                kind: "payout_claim",
                entity,
                id: row.id,
                message,
            }
        })
        .collect())
}

/// What a [`ClaimRow`] says, for a person.
fn claim_message(row: &ClaimRow) -> (&'static str, String) {
    let n = row.count;
    match row.problem.as_str() {
        "in_two_live_payouts" => ("transaction", format!("claimed by {n} live payouts at once")),
        "failed_still_claims" => (
            "payout",
            format!("FAILED but still claims {n} transaction(s) or item(s)"),
        ),
        "points_at_failed_payout" => (
            "transaction",
            "still in a FAILED payout, which released it".to_owned(),
        ),
        "released_item_of_live_payout" => (
            "payout",
            format!("has {n} released item(s) but did not FAIL"),
        ),
        "settled_outside_completed_payout" => (
            "transaction",
            "SETTLED but not in a COMPLETED payout".to_owned(),
        ),
        "completed_payout_not_settled" => (
            "transaction",
            "in a COMPLETED payout but not SETTLED".to_owned(),
        ),
        "claimed_but_not_confirmed" => (
            "transaction",
            "in a payout but not CONFIRMED (only earned transactions are paid)".to_owned(),
        ),
        "carried_balance_not_negative" => (
            "payout",
            format!(
                "took {n} transaction(s) from before its period that do not add up to a negative balance"
            ),
        ),
        _ => (
            "transaction",
            "a negative commission or reward unpaid: only ADJUSTMENTs (clawbacks) carry a negative balance"
                .to_owned(),
        ),
    }
}
