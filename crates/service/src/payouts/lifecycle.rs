//! A payout's life after generation (DOMAIN.md "Payouts"): DRAFT -> PENDING_APPROVAL ->
//! APPROVED -> PROCESSING -> COMPLETED, or PROCESSING -> FAILED; back to DRAFT from
//! PENDING_APPROVAL or APPROVED with a reason; holds placed and released on the way.
//!
//! - **Who.** Every step is money out, so every step needs ADMIN or OWNER at the venue (or
//!   a global ADMIN). **Four eyes:** the approver is never the user who submitted the
//!   payout (and so never its generator, when the generator submitted it), checked again
//!   under the payout's row lock.
//! - **Exactly once.** Each step starts with a conditional update on the expected status
//!   (`UPDATE payouts .. WHERE id = .. AND status IN (..) RETURNING`), which takes the
//!   payout's row: of concurrent approvals, starts, completions or failures one gets the
//!   row and the others, once it committed, find none and answer CONFLICT naming the
//!   status now. Under the row, the step's rules are checked again (the four-eyes rule
//!   among them) before its columns are written. Nothing is paid twice.
//! - **Holds.** A hold is active until released or until `hold_until` passes; an active
//!   hold stops PROCESSING. The start takes the payout's row (its conditional update)
//!   *then* reads the holds in a new statement, and a hold is placed only under the same
//!   row lock on a payout not yet PROCESSING: a hold committed before the start is seen,
//!   and one arriving after it finds the payout PROCESSING and is refused.
//! - **Effects.** COMPLETED sets the payout's transactions SETTLED with `settled_at`;
//!   FAILED releases them (`payout_id` cleared, its items marked `released_at`), so the
//!   next payout takes them. Every step writes a `payout_audit` row and a
//!   [`PAYOUT_CHANGED`](super::PAYOUT_CHANGED) event in its transaction.

use chrono::{DateTime, Utc};
use prima_entity::enums::{PayoutStatus, TransactionStatus};
use prima_entity::{payout_holds, payout_items, payouts, transactions};
use rust_decimal::Decimal;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryTrait,
    TransactionTrait,
};
use uuid::Uuid;

use super::{Change, PayoutAction};
use crate::access::scope::financial_get;
use crate::access::{Actor, Capability, not_found_as};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::tail::Tail;
use crate::validate::{money_units, required_text};

/// The longest reason accepted: the same as a booking's texts.
pub use crate::bookings::change::MAX_TEXT;
/// The longest payment reference accepted (the column's width).
pub const MAX_REFERENCE: usize = 255;
/// Active holds one payout may carry at once.
pub const MAX_ACTIVE_HOLDS: u64 = 20;

/// A step of a payout's life.
#[derive(Debug, Clone)]
pub enum Step {
    /// DRAFT -> PENDING_APPROVAL.
    Submit,
    /// PENDING_APPROVAL -> APPROVED, by someone other than the submitter.
    Approve,
    /// PENDING_APPROVAL or APPROVED -> DRAFT, with a reason.
    ReturnToDraft {
        /// Why, 1 to 2000 characters.
        reason: String,
    },
    /// APPROVED -> PROCESSING, with no active hold.
    StartProcessing,
    /// PROCESSING -> COMPLETED, with the payment's reference.
    Complete {
        /// The bank's or provider's reference, 1 to 255 characters.
        reference: String,
    },
    /// PROCESSING -> FAILED, with a reason; the transactions are released.
    Fail {
        /// Why, 1 to 2000 characters.
        reason: String,
    },
}

impl Step {
    fn from(&self) -> &'static [PayoutStatus] {
        use PayoutStatus as S;
        match self {
            Step::Submit => &[S::Draft],
            Step::Approve => &[S::PendingApproval],
            Step::ReturnToDraft { .. } => &[S::PendingApproval, S::Approved],
            Step::StartProcessing => &[S::Approved],
            Step::Complete { .. } | Step::Fail { .. } => &[S::Processing],
        }
    }

    fn to(&self) -> PayoutStatus {
        use PayoutStatus as S;
        match self {
            Step::Submit => S::PendingApproval,
            Step::Approve => S::Approved,
            Step::ReturnToDraft { .. } => S::Draft,
            Step::StartProcessing => S::Processing,
            Step::Complete { .. } => S::Completed,
            Step::Fail { .. } => S::Failed,
        }
    }

    fn action(&self) -> PayoutAction {
        match self {
            Step::Submit => PayoutAction::Submitted,
            Step::Approve => PayoutAction::Approved,
            Step::ReturnToDraft { .. } => PayoutAction::ReturnedToDraft,
            Step::StartProcessing => PayoutAction::ProcessingStarted,
            Step::Complete { .. } => PayoutAction::Completed,
            Step::Fail { .. } => PayoutAction::Failed,
        }
    }

    /// What the step does, for messages ("only a DRAFT payout can be submitted").
    fn verb(&self) -> &'static str {
        match self {
            Step::Submit => "submitted",
            Step::Approve => "approved",
            Step::ReturnToDraft { .. } => "returned to draft",
            Step::StartProcessing => "sent for processing",
            Step::Complete { .. } => "completed",
            Step::Fail { .. } => "marked failed",
        }
    }

    /// The step with its texts checked (trimmed, within their limits).
    fn checked(self) -> Result<Step> {
        Ok(match self {
            Step::ReturnToDraft { reason } => Step::ReturnToDraft {
                reason: required_text("reason", &reason, MAX_TEXT)?,
            },
            Step::Fail { reason } => Step::Fail {
                reason: required_text("reason", &reason, MAX_TEXT)?,
            },
            Step::Complete { reference } => Step::Complete {
                reference: required_text("reference", &reference, MAX_REFERENCE)?,
            },
            other => other,
        })
    }

    fn reason(&self) -> Option<String> {
        match self {
            Step::ReturnToDraft { reason } | Step::Fail { reason } => Some(reason.clone()),
            Step::Complete { reference } => Some(format!("Paid, reference {reference}")),
            _ => None,
        }
    }
}

/// Moves a payout one step (ADMIN or OWNER at its venue); see the module documentation.
pub async fn advance(db: &Db, actor: &Actor, id: Uuid, step: Step) -> Result<payouts::Model> {
    advance_at(db, actor, id, step, crate::time::now()).await
}

/// [`advance`] at a given instant.
#[tracing::instrument(skip_all, fields(payout = %id, step = ?step))]
pub async fn advance_at(
    db: &Db,
    actor: &Actor,
    id: Uuid,
    step: Step,
    now: DateTime<Utc>,
) -> Result<payouts::Model> {
    let step = step.checked()?;
    let before = administered(db, actor, id).await?;
    expect(&before, &step, actor)?;
    let step = &step;
    crate::db::retry_transient("advancePayout", || async move {
        let txn = db.conn.begin().await?;
        let Some(locked) = lock(&txn, id, step.from(), now).await? else {
            let now_is = payouts::Entity::find_by_id(id).one(&txn).await?;
            return Err(match now_is {
                Some(current) => {
                    expect(&current, step, actor)?;
                    changed_meanwhile()
                }
                None => Error::NotFound { what: "payout" },
            });
        };
        // Under the row lock: the submitter cannot have changed since.
        expect(&locked, step, actor)?;
        let payout = applied(locked.clone(), step, actor, now);
        let mut tail = Tail::new();
        match step {
            Step::StartProcessing => {
                if let Some(hold) = active_holds(&txn, id, now).await?.first() {
                    return Err(held(hold));
                }
            }
            Step::Complete { .. } => tail.update(settle(id, now)),
            Step::Fail { .. } => {
                let (transactions, items) = release(id, now);
                tail.update(transactions);
                tail.update(items);
            }
            _ => {}
        }
        tail.update(stored(&payout));
        let change = Change {
            actor,
            action: step.action(),
            from: Some(locked.status),
            reason: step.reason(),
            now,
        };
        change.record(&mut tail, &payout);
        tail.send(&txn).await?;
        txn.commit().await?;
        db.relay.ring();
        Ok(payout)
    })
    .await
}

/// The payout, which the caller must see (financial reads) and administer.
async fn administered(db: &Db, actor: &Actor, id: Uuid) -> Result<payouts::Model> {
    let payout = financial_get::<payouts::Entity>(&db.conn, actor, id).await?;
    actor
        .require(payout.venue_id, Capability::Administer)
        .map_err(not_found_as("payout"))?;
    Ok(payout)
}

/// Whether `step` may happen to `payout` now, by `actor`: CONFLICT naming the status, or
/// FORBIDDEN for an approval by the submitter.
fn expect(payout: &payouts::Model, step: &Step, actor: &Actor) -> Result<()> {
    if !step.from().contains(&payout.status) {
        let wanted: Vec<String> = step.from().iter().map(|s| s.to_string()).collect();
        return Err(Error::Conflict(format!(
            "this payout is {}: only a {} payout can be {}",
            payout.status,
            wanted.join(" or "),
            step.verb()
        )));
    }
    if matches!(step, Step::Approve) && payout.submitted_by == Some(actor.user_id) {
        return Err(Error::Forbidden(
            "you submitted this payout: another OWNER or ADMIN of the venue must approve it (four eyes)"
                .into(),
        ));
    }
    Ok(())
}

fn changed_meanwhile() -> Error {
    Error::Conflict(
        "this payout was changed by someone else meanwhile; reload it and try again".into(),
    )
}

/// The payout after `step`, from the row as locked.
fn applied(
    mut payout: payouts::Model,
    step: &Step,
    actor: &Actor,
    now: DateTime<Utc>,
) -> payouts::Model {
    payout.status = step.to();
    payout.updated_at = now;
    match step {
        Step::Submit => payout.submitted_by = Some(actor.user_id),
        Step::Approve => {
            payout.approved_by = Some(actor.user_id);
            payout.approved_at = Some(now);
        }
        Step::ReturnToDraft { .. } => {
            payout.submitted_by = None;
            payout.approved_by = None;
            payout.approved_at = None;
        }
        Step::Complete { reference } => {
            payout.reference = Some(reference.clone());
            payout.processed_at = Some(now);
        }
        Step::StartProcessing | Step::Fail { .. } => {}
    }
    payout
}

/// The UPDATE that stores a step's columns of a payout whose row the transaction holds.
fn stored(payout: &payouts::Model) -> sea_orm::sea_query::UpdateStatement {
    payouts::Entity::update_many()
        .col_expr(payouts::Column::Status, Expr::value(payout.status))
        .col_expr(payouts::Column::UpdatedAt, Expr::value(payout.updated_at))
        .col_expr(
            payouts::Column::SubmittedBy,
            Expr::value(payout.submitted_by),
        )
        .col_expr(payouts::Column::ApprovedBy, Expr::value(payout.approved_by))
        .col_expr(payouts::Column::ApprovedAt, Expr::value(payout.approved_at))
        .col_expr(
            payouts::Column::Reference,
            Expr::value(payout.reference.clone()),
        )
        .col_expr(
            payouts::Column::ProcessedAt,
            Expr::value(payout.processed_at),
        )
        .filter(payouts::Column::Id.eq(payout.id))
        .into_query()
}

/// The payout's holds active at `now`, oldest first.
async fn active_holds(
    txn: &impl ConnectionTrait,
    payout: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<payout_holds::Model>> {
    use sea_orm::QueryOrder;
    Ok(payout_holds::Entity::find()
        .filter(payout_holds::Column::PayoutId.eq(payout))
        .filter(payout_holds::Column::ReleasedAt.is_null())
        .filter(
            payout_holds::Column::HoldUntil
                .is_null()
                .or(payout_holds::Column::HoldUntil.gt(now)),
        )
        .order_by_asc(payout_holds::Column::CreatedAt)
        .all(txn)
        .await?)
}

fn held(hold: &payout_holds::Model) -> Error {
    let until = match hold.hold_until {
        Some(until) => format!("until {until}"),
        None => "until released".to_owned(),
    };
    Error::Conflict(format!(
        "this payout is on hold ({until}: {}): release hold {} first",
        hold.reason, hold.id
    ))
}

/// The transactions payout `payout` claims, found through its live items (the pair index
/// of `payout_items`): no index of `transactions` has `payout_id`, so that claiming a row
/// rewrites it in place (migration 13).
fn claimed_by(payout: Uuid) -> sea_orm::sea_query::SelectStatement {
    sea_orm::sea_query::Query::select()
        .column(payout_items::Column::TransactionId)
        .from(payout_items::Entity)
        .and_where(payout_items::Column::PayoutId.eq(payout))
        .and_where(payout_items::Column::ReleasedAt.is_null())
        .to_owned()
}

/// COMPLETED: the payout's transactions are paid.
fn settle(payout: Uuid, now: DateTime<Utc>) -> sea_orm::sea_query::UpdateStatement {
    transactions::Entity::update_many()
        .col_expr(
            transactions::Column::Status,
            Expr::value(TransactionStatus::Settled),
        )
        .col_expr(transactions::Column::SettledAt, Expr::value(now))
        .col_expr(transactions::Column::UpdatedAt, Expr::value(now))
        .filter(transactions::Column::Id.in_subquery(claimed_by(payout)))
        .filter(transactions::Column::PayoutId.eq(payout))
        .filter(transactions::Column::Status.eq(TransactionStatus::Confirmed))
        .into_query()
}

/// FAILED: the payout lets go of its transactions (and its items say when).
fn release(
    payout: Uuid,
    now: DateTime<Utc>,
) -> (
    sea_orm::sea_query::UpdateStatement,
    sea_orm::sea_query::UpdateStatement,
) {
    let transactions = transactions::Entity::update_many()
        .col_expr(
            transactions::Column::PayoutId,
            Expr::value(Option::<Uuid>::None),
        )
        .col_expr(transactions::Column::UpdatedAt, Expr::value(now))
        .filter(transactions::Column::Id.in_subquery(claimed_by(payout)))
        .filter(transactions::Column::PayoutId.eq(payout))
        .into_query();
    let items = payout_items::Entity::update_many()
        .col_expr(payout_items::Column::ReleasedAt, Expr::value(now))
        .filter(payout_items::Column::PayoutId.eq(payout))
        .filter(payout_items::Column::ReleasedAt.is_null())
        .into_query();
    (transactions, items)
}

/// Statuses a hold may be placed in: before PROCESSING.
const HOLDABLE: [PayoutStatus; 3] = [
    PayoutStatus::Draft,
    PayoutStatus::PendingApproval,
    PayoutStatus::Approved,
];

/// A hold to place.
#[derive(Debug, Clone)]
pub struct HoldRequest {
    /// The payout.
    pub payout_id: Uuid,
    /// How much is held: more than 0, at most the payout's amount.
    pub amount: Decimal,
    /// Why, 1 to 2000 characters.
    pub reason: String,
    /// The hold ends by itself then (in the future); `None`: only when released.
    pub hold_until: Option<DateTime<Utc>>,
}

/// Places a hold on a payout that is not yet PROCESSING (ADMIN or OWNER): while it is
/// active the payout cannot move to PROCESSING.
pub async fn place_hold(
    db: &Db,
    actor: &Actor,
    request: HoldRequest,
) -> Result<(payout_holds::Model, payouts::Model)> {
    place_hold_at(db, actor, request, crate::time::now()).await
}

/// [`place_hold`] at a given instant.
#[tracing::instrument(skip_all, fields(payout = %request.payout_id))]
pub async fn place_hold_at(
    db: &Db,
    actor: &Actor,
    request: HoldRequest,
    now: DateTime<Utc>,
) -> Result<(payout_holds::Model, payouts::Model)> {
    let reason = required_text("reason", &request.reason, MAX_TEXT)?;
    let amount = money_units("amount", request.amount, 9_999_999_999)?;
    if amount == 0 {
        return Err(Error::invalid("amount", "`amount` must be more than 0"));
    }
    if request.hold_until.is_some_and(|until| until <= now) {
        return Err(Error::invalid(
            "holdUntil",
            "`holdUntil` must be in the future (leave it out for a hold until released)",
        ));
    }
    let before = administered(db, actor, request.payout_id).await?;
    holdable(&before, amount)?;
    let (reason, request) = (&reason, &request);
    crate::db::retry_transient("placePayoutHold", || async move {
        let txn = db.conn.begin().await?;
        let Some(payout) = lock(&txn, request.payout_id, &HOLDABLE, now).await? else {
            let current = payouts::Entity::find_by_id(request.payout_id)
                .one(&txn)
                .await?
                .ok_or(Error::NotFound { what: "payout" })?;
            holdable(&current, amount)?;
            return Err(changed_meanwhile());
        };
        holdable(&payout, amount)?;
        if active_holds(&txn, payout.id, now).await?.len() as u64 >= MAX_ACTIVE_HOLDS {
            return Err(Error::invalid(
                "payoutId",
                format!("a payout carries at most {MAX_ACTIVE_HOLDS} active holds"),
            ));
        }
        let hold = payout_holds::Model {
            id: Uuid::new_v4(),
            payout_id: payout.id,
            amount,
            reason: reason.clone(),
            hold_until: request.hold_until.map(crate::time::truncate),
            created_by: actor.user_id,
            created_at: now,
            released_by: None,
            released_at: None,
        };
        let mut tail = Tail::new();
        tail.insert(
            payout_holds::Entity::insert(sea_orm::IntoActiveModel::into_active_model(hold.clone()))
                .into_query(),
        );
        let change = Change {
            actor,
            action: PayoutAction::HoldPlaced,
            from: Some(payout.status),
            reason: Some(format!("Hold placed: {reason}")),
            now,
        };
        change.record(&mut tail, &payout);
        tail.send(&txn).await?;
        txn.commit().await?;
        db.relay.ring();
        Ok((hold, payout))
    })
    .await
}

/// Whether a hold of `amount` cents may go on `payout`.
fn holdable(payout: &payouts::Model, amount: i64) -> Result<()> {
    if !HOLDABLE.contains(&payout.status) {
        return Err(Error::Conflict(format!(
            "this payout is {}: holds go on a DRAFT, PENDING_APPROVAL or APPROVED payout",
            payout.status
        )));
    }
    if amount > payout.amount {
        return Err(Error::invalid(
            "amount",
            format!(
                "`amount` ({}) is more than the payout ({} {})",
                crate::money::cents(amount),
                crate::money::cents(payout.amount),
                payout.currency
            ),
        ));
    }
    Ok(())
}

/// The payout's row lock: touches `updated_at` when it is in one of `statuses`.
async fn lock(
    txn: &DatabaseTransaction,
    id: Uuid,
    statuses: &[PayoutStatus],
    now: DateTime<Utc>,
) -> Result<Option<payouts::Model>> {
    Ok(payouts::Entity::update_many()
        .col_expr(payouts::Column::UpdatedAt, Expr::value(now))
        .filter(payouts::Column::Id.eq(id))
        .filter(payouts::Column::Status.is_in(statuses.iter().copied()))
        .exec_with_returning(txn)
        .await?
        .into_iter()
        .next())
}

/// Releases an active hold (ADMIN or OWNER at its payout's venue); CONFLICT when it was
/// released already. A hold whose `hold_until` passed may still be released (it stops
/// nothing any more, and the release is recorded).
pub async fn release_hold(
    db: &Db,
    actor: &Actor,
    hold_id: Uuid,
) -> Result<(payout_holds::Model, payouts::Model)> {
    release_hold_at(db, actor, hold_id, crate::time::now()).await
}

/// [`release_hold`] at a given instant.
#[tracing::instrument(skip_all, fields(hold = %hold_id))]
pub async fn release_hold_at(
    db: &Db,
    actor: &Actor,
    hold_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(payout_holds::Model, payouts::Model)> {
    let (hold, _) = super::holds_by_ids(&db.conn, actor, &[hold_id])
        .await?
        .remove(&hold_id)
        .ok_or(Error::NotFound {
            what: "payout hold",
        })?;
    administered(db, actor, hold.payout_id).await?;
    crate::db::retry_transient("releasePayoutHold", || async move {
        let txn = db.conn.begin().await?;
        let Some(payout) = lock(&txn, hold.payout_id, &ALL, now).await? else {
            return Err(Error::NotFound { what: "payout" });
        };
        let released = payout_holds::Entity::update_many()
            .col_expr(payout_holds::Column::ReleasedBy, Expr::value(actor.user_id))
            .col_expr(payout_holds::Column::ReleasedAt, Expr::value(now))
            .filter(payout_holds::Column::Id.eq(hold_id))
            .filter(payout_holds::Column::ReleasedAt.is_null())
            .exec_with_returning(&txn)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Conflict("this hold was released already".into()))?;
        let mut tail = Tail::new();
        let change = Change {
            actor,
            action: PayoutAction::HoldReleased,
            from: Some(payout.status),
            reason: Some(format!("Hold released: {}", released.reason)),
            now,
        };
        change.record(&mut tail, &payout);
        tail.send(&txn).await?;
        txn.commit().await?;
        db.relay.ring();
        Ok((released, payout))
    })
    .await
}

const ALL: [PayoutStatus; 6] = [
    PayoutStatus::Draft,
    PayoutStatus::PendingApproval,
    PayoutStatus::Approved,
    PayoutStatus::Processing,
    PayoutStatus::Completed,
    PayoutStatus::Failed,
];
