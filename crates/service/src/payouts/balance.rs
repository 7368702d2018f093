//! What a promoter is owed and how a payout's amount was reached, for financial readers
//! (MANAGER or above at the venue).
//!
//! - **Balance** of a promoter at their venue, over the payable transactions
//!   (PROMOTER_COMMISSION, INCENTIVE_PAYOUT, ADJUSTMENT): `pending` (PENDING: the booking
//!   has not happened yet), `earnedUnpaid` (CONFIRMED and in no payout), `inPayout`
//!   (CONFIRMED and claimed by a payout not yet completed), `paid` (what COMPLETED payouts
//!   sent, after their fees). When the CONFIRMED unpaid transactions add up to less than
//!   zero (clawbacks of refunded bookings larger than what is owed), that sum is
//!   `carriedNegative` and `earnedUnpaid` is 0: the next payout deducts it
//!   ([`super::generate`]).
//! - **Statement** of a payout: its items summed in lines (commissions, incentive rewards,
//!   adjustments and clawbacks of the period, what was carried from before the period),
//!   minus fees, equal to its amount.

use std::collections::HashMap;

use prima_entity::enums::{PayoutStatus, TransactionStatus, TransactionType};
use prima_entity::{payout_items, payouts, promoters, transactions, venues};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Func, SimpleExpr};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, JoinType, QueryFilter, QuerySelect,
    RelationTrait,
};
use uuid::Uuid;

use super::generate::PAYABLE;
use crate::access::{Actor, Capability};
use crate::error::Result;

/// A promoter's balance at their venue, cents (see the module documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Balance {
    /// The promoter.
    pub promoter_id: Uuid,
    /// Their venue.
    pub venue_id: Uuid,
    /// Earned once the booking happens.
    pub pending: i64,
    /// Earned, in no payout yet; 0 when the unpaid total is negative.
    pub earned_unpaid: i64,
    /// A negative unpaid total the next payout deducts; 0 otherwise.
    pub carried_negative: i64,
    /// In payouts not yet completed.
    pub in_payout: i64,
    /// Sent by completed payouts (after their fees).
    pub paid: i64,
    /// The venue's currency, of every amount.
    pub currency: String,
}

#[derive(Debug, FromQueryResult)]
struct BalanceRow {
    promoter_id: Uuid,
    venue_id: Uuid,
    currency: String,
    pending: i64,
    unpaid: i64,
    in_payout: i64,
}

#[derive(Debug, FromQueryResult)]
struct PaidRow {
    promoter_id: Uuid,
    paid: i64,
}

/// `CAST(COALESCE(SUM(CASE WHEN cond THEN value ELSE 0 END), 0) AS BIGINT)`: a sum that
/// decodes as a 64-bit integer on both databases.
pub(crate) fn sum_if(cond: SimpleExpr, value: SimpleExpr) -> SimpleExpr {
    big_sum(Expr::case(cond, value).finally(Expr::val(0)).into())
}

/// `CAST(COALESCE(SUM(value), 0) AS BIGINT)`.
pub(crate) fn big_sum(value: SimpleExpr) -> SimpleExpr {
    let parts: [SimpleExpr; 2] = [Func::sum(value).into(), Expr::val(0)];
    Expr::from(Func::coalesce(parts)).cast_as(Alias::new("BIGINT"))
}

/// `CAST(CASE WHEN cond THEN 1 ELSE 0 END AS INTEGER)`: a flag to group by.
fn flag(cond: SimpleExpr) -> SimpleExpr {
    Expr::case(cond, Expr::val(1))
        .finally(Expr::val(0))
        .cast_as(Alias::new("INTEGER"))
}

/// The balances of the promoters among `ids` whose venue the caller has financial reads
/// at, in two statements.
#[tracing::instrument(skip_all, fields(promoters = ids.len()))]
pub async fn balances(
    db: &impl ConnectionTrait,
    actor: &Actor,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Balance>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let amount: SimpleExpr = Expr::col((transactions::Entity, transactions::Column::Amount));
    let status = || Expr::col((transactions::Entity, transactions::Column::Status));
    let claimed = || Expr::col((transactions::Entity, transactions::Column::PayoutId));
    let confirmed = || status().eq(TransactionStatus::Confirmed);
    let visible = actor
        .venues_where(Capability::ReadFinancial)
        .condition((promoters::Entity, promoters::Column::VenueId));
    let rows = promoters::Entity::find()
        .select_only()
        .column_as(promoters::Column::Id, "promoter_id")
        .column_as(promoters::Column::VenueId, "venue_id")
        .column_as(
            Expr::col((venues::Entity, venues::Column::Currency)),
            "currency",
        )
        .expr_as(
            sum_if(status().eq(TransactionStatus::Pending), amount.clone()),
            "pending",
        )
        .expr_as(
            sum_if(confirmed().and(claimed().is_null()), amount.clone()),
            "unpaid",
        )
        .expr_as(
            sum_if(confirmed().and(claimed().is_not_null()), amount),
            "in_payout",
        )
        .join(
            JoinType::LeftJoin,
            promoters::Relation::Transactions
                .def()
                .on_condition(|_, right| {
                    sea_orm::Condition::all()
                        .add(Expr::col((right, transactions::Column::Type)).is_in(PAYABLE))
                }),
        )
        .join(JoinType::InnerJoin, promoters::Relation::Venues.def())
        .filter(promoters::Column::Id.is_in(ids.iter().copied()))
        .filter(visible)
        .group_by(promoters::Column::Id)
        .group_by(promoters::Column::VenueId)
        .group_by(Expr::col((venues::Entity, venues::Column::Currency)))
        .into_model::<BalanceRow>()
        .all(db)
        .await?;
    let paid: HashMap<Uuid, i64> = payouts::Entity::find()
        .select_only()
        .column_as(payouts::Column::PromoterId, "promoter_id")
        .expr_as(big_sum(Expr::col(payouts::Column::Amount)), "paid")
        .filter(payouts::Column::PromoterId.is_in(ids.iter().copied()))
        .filter(payouts::Column::Status.eq(PayoutStatus::Completed))
        .filter(
            actor
                .venues_where(Capability::ReadFinancial)
                .condition((payouts::Entity, payouts::Column::VenueId)),
        )
        .group_by(payouts::Column::PromoterId)
        .into_model::<PaidRow>()
        .all(db)
        .await?
        .into_iter()
        .map(|row| (row.promoter_id, row.paid))
        .collect();
    Ok(rows
        .into_iter()
        .map(|row| {
            let balance = Balance {
                promoter_id: row.promoter_id,
                venue_id: row.venue_id,
                pending: row.pending,
                earned_unpaid: Ord::max(row.unpaid, 0),
                carried_negative: Ord::min(row.unpaid, 0),
                in_payout: row.in_payout,
                paid: paid.get(&row.promoter_id).copied().unwrap_or(0),
                currency: row.currency,
            };
            (row.promoter_id, balance)
        })
        .collect())
}

/// How many kinds of statement line there are: the most lines a statement has.
pub const LINE_KINDS: u64 = 6;

/// What a statement line sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LineKind {
    /// PROMOTER_COMMISSION transactions of the period.
    Commissions,
    /// INCENTIVE_PAYOUT transactions of the period.
    Incentives,
    /// ADJUSTMENT transactions of the period that reverse nothing.
    Adjustments,
    /// ADJUSTMENT transactions of the period that claw back a refunded booking's commission.
    Clawbacks,
    /// Unpaid transactions from before the period whose negative total the payout deducts.
    CarriedBalance,
    /// The payout's fees (negative).
    Fees,
}

/// One line of a statement, cents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// What it sums.
    pub kind: LineKind,
    /// How many items (0 for fees).
    pub count: i64,
    /// Their sum (fees: the negative fee).
    pub amount: i64,
}

/// How a payout's amount was reached: its lines, which add up to `amount`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The payout.
    pub payout_id: Uuid,
    /// Non-empty lines, in [`LineKind`] order.
    pub lines: Vec<Line>,
    /// The payout's amount: the sum of the lines.
    pub amount: i64,
}

#[derive(Debug, FromQueryResult)]
struct LineRow {
    payout_id: Uuid,
    kind: String,
    carried: i32,
    clawback: i32,
    count: i64,
    amount: i64,
}

/// The statements of the payouts among `ids` the caller may see, in one statement (plus
/// one to read the payouts' fees and amounts).
#[tracing::instrument(skip_all, fields(payouts = ids.len()))]
pub async fn statements(
    db: &impl ConnectionTrait,
    actor: &Actor,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Statement>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let found = crate::access::scope::financial_by_ids::<payouts::Entity>(db, actor, ids).await?;
    let visible: Vec<Uuid> = found.keys().copied().collect();
    if visible.is_empty() {
        return Ok(HashMap::new());
    }
    let carried = flag(
        Expr::col((transactions::Entity, transactions::Column::CreatedAt))
            .lt(Expr::col((payouts::Entity, payouts::Column::PeriodFrom))),
    );
    let clawback = flag(
        Expr::col((
            transactions::Entity,
            transactions::Column::ReversesTransactionId,
        ))
        .is_not_null(),
    );
    let rows = payout_items::Entity::find()
        .select_only()
        .column_as(payout_items::Column::PayoutId, "payout_id")
        .column_as(payout_items::Column::Type, "kind")
        .expr_as(carried, "carried")
        .expr_as(clawback, "clawback")
        .expr_as(Expr::cust("CAST(COUNT(*) AS BIGINT)"), "count")
        .expr_as(
            big_sum(Expr::col((
                payout_items::Entity,
                payout_items::Column::Amount,
            ))),
            "amount",
        )
        .join(JoinType::InnerJoin, payout_items::Relation::Payouts.def())
        .join(
            JoinType::InnerJoin,
            payout_items::Relation::Transactions.def(),
        )
        .filter(payout_items::Column::PayoutId.is_in(visible.iter().copied()))
        .group_by(payout_items::Column::PayoutId)
        .group_by(payout_items::Column::Type)
        // By the output names: the flags' bound 1 and 0 would make the expressions differ.
        .group_by(Expr::col(Alias::new("carried")))
        .group_by(Expr::col(Alias::new("clawback")))
        .into_model::<LineRow>()
        .all(db)
        .await?;
    let mut sums: HashMap<Uuid, HashMap<LineKind, (i64, i64)>> = HashMap::new();
    for row in rows {
        let entry = sums
            .entry(row.payout_id)
            .or_default()
            .entry(row.line_kind())
            .or_default();
        entry.0 += row.count;
        entry.1 += row.amount;
    }
    Ok(found
        .into_values()
        .map(|payout| {
            let sums = sums.remove(&payout.id).unwrap_or_default();
            (payout.id, statement_of(&payout, sums))
        })
        .collect())
}

impl LineRow {
    /// The line a group of items belongs to.
    fn line_kind(&self) -> LineKind {
        if self.carried != 0 {
            LineKind::CarriedBalance
        } else if self.kind == TransactionType::PromoterCommission.to_string() {
            LineKind::Commissions
        } else if self.kind == TransactionType::IncentivePayout.to_string() {
            LineKind::Incentives
        } else if self.clawback != 0 {
            LineKind::Clawbacks
        } else {
            LineKind::Adjustments
        }
    }
}

/// A payout's statement from its items' sums by line, with its fees.
fn statement_of(payout: &payouts::Model, sums: HashMap<LineKind, (i64, i64)>) -> Statement {
    let mut lines: Vec<Line> = sums
        .into_iter()
        .map(|(kind, (count, amount))| Line {
            kind,
            count,
            amount,
        })
        .collect();
    if payout.fees_amount != 0 {
        lines.push(Line {
            kind: LineKind::Fees,
            count: 0,
            amount: -payout.fees_amount,
        });
    }
    lines.sort_by_key(|line| line.kind);
    Statement {
        payout_id: payout.id,
        lines,
        amount: payout.amount,
    }
}
