//! Refunds of completed bookings (DOMAIN.md "Transactions", refunds), with the promoter's
//! commission clawed back in proportion.
//!
//! - Who and what: a venue ADMIN or OWNER, with a reason, refunds a COMPLETED booking in full
//!   or in part. The booking stays COMPLETED; the ledger gains a REFUND transaction of the
//!   negative amount and, when the booking paid a commission, an ADJUSTMENT of the negative
//!   clawback that points at the commission it reverses (`reverses_transaction_id`). Both are
//!   CONFIRMED at once, so the next payout of the promoter deducts the clawback (a payout
//!   already made is never edited).
//! - Limits: what was charged is the booking's live BOOKING_FEE + PLATFORM_FEE; the refunds
//!   together never exceed it (BAD_USER_INPUT on `amount` naming what is left).
//! - Proportion without drift: after every refund the total clawed back is
//!   `round(commission * refunded / charged)` (half away from zero), and each ADJUSTMENT is
//!   the difference to what was clawed back before. Several partial refunds therefore claw
//!   back exactly what one refund of their sum would, and a full refund exactly the
//!   commission.
//! - Concurrency: the transaction first takes the booking's row lock with a conditional
//!   write (`WHERE status = 'COMPLETED'`), then reads the refunds so far in a new statement,
//!   so two concurrent refunds are serialised and cannot together exceed the charge. It
//!   locks nothing else (its new ledger rows come 8th in the lock order of [`super`]), and
//!   runs again on a transient failure ([`crate::db::retry_transient`]).

use chrono::{DateTime, Utc};
use prima_entity::enums::{BookingStatus, TransactionStatus, TransactionType};
use prima_entity::{bookings, transactions, venues};
use rust_decimal::{Decimal, RoundingStrategy};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    QueryFilter, TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use super::change::{
    Change, Counters, Entry, Held, MAX_TEXT, changed_meanwhile, finish, ledger_row,
};
use crate::access::{Actor, Capability, not_found_as};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::events::outbox::BookingAction;
use crate::money::cents;
use crate::validate::{money_units, required_text};

/// A refund made: the booking and the rows it wrote.
#[derive(Debug, Clone)]
pub struct Refund {
    /// The booking (still COMPLETED).
    pub booking: bookings::Model,
    /// The REFUND transaction (negative amount).
    pub refund: transactions::Model,
    /// The clawback ADJUSTMENT (negative amount), when a commission was paid.
    pub clawback: Option<transactions::Model>,
    /// What can still be refunded after this one, cents.
    pub refundable: i64,
}

/// Refunds `amount` (in the venue's currency, whole cents) of a COMPLETED booking (all that
/// is left when `None`), with a reason; ADMIN or OWNER at the venue.
pub async fn refund_booking(
    db: &Db,
    actor: &Actor,
    id: Uuid,
    amount: Option<Decimal>,
    reason: String,
) -> Result<Refund> {
    refund_booking_at(db, actor, id, amount, reason, crate::time::now()).await
}

/// [`refund_booking`] at a given instant.
#[tracing::instrument(skip_all, fields(booking = %id))]
pub async fn refund_booking_at(
    db: &Db,
    actor: &Actor,
    id: Uuid,
    amount: Option<Decimal>,
    reason: String,
    now: DateTime<Utc>,
) -> Result<Refund> {
    let (amount, reason) = validate(amount, &reason)?;
    let venue = load(&db.conn, actor, id).await?;
    let asked = &Asked {
        id,
        amount,
        reason,
        venue,
    };
    crate::db::retry_transient("refundBooking", || async move {
        write(db, actor, asked, now).await
    })
    .await
}

/// Checks the reason and the amount (whole cents, above 0, when given).
fn validate(amount: Option<Decimal>, reason: &str) -> Result<(Option<i64>, String)> {
    let reason = required_text("reason", reason, MAX_TEXT)?;
    let amount = amount
        .map(|value| money_units("amount", value, i64::MAX / 2))
        .transpose()?;
    if amount.is_some_and(|a| a <= 0) {
        return Err(Error::invalid(
            "amount",
            "`amount` must be more than 0 (leave it out to refund everything that is left)",
        ));
    }
    Ok((amount, reason))
}

/// The venue of the booking, which must be COMPLETED and refundable by the caller.
async fn load(db: &DatabaseConnection, actor: &Actor, id: Uuid) -> Result<venues::Model> {
    let before = crate::bookings::get(db, actor, id).await?;
    actor
        .require(before.venue_id, Capability::Administer)
        .map_err(not_found_as("booking"))?;
    if before.status != BookingStatus::Completed {
        return Err(Error::Conflict(format!(
            "this booking is {}: only a COMPLETED booking can be refunded",
            before.status
        )));
    }
    venues::Entity::find_by_id(before.venue_id)
        .one(db)
        .await?
        .ok_or(Error::NotFound { what: "booking" })
}

/// A refund asked for, checked.
struct Asked {
    id: Uuid,
    /// Cents; everything left when `None`.
    amount: Option<i64>,
    reason: String,
    venue: venues::Model,
}

/// What a refund wrote beside its booking.
struct Written {
    refund: transactions::Model,
    clawback: Option<transactions::Model>,
    refundable: i64,
}

/// The refund's transaction: the booking's lock, then [`finish`] with the refund's ledger
/// rows (it moves no counter).
async fn write(db: &Db, actor: &Actor, asked: &Asked, now: DateTime<Utc>) -> Result<Refund> {
    let txn = db.conn.begin().await?;
    let Some(booking) = lock_completed(&txn, asked.id, now).await? else {
        return Err(changed_meanwhile());
    };
    let change = Change {
        actor,
        action: BookingAction::Refunded,
        counters: Counters::Unmoved,
        key: None,
        now,
    };
    let ledger = async |held: &mut Held<'_>, _: &mut bookings::Model| {
        write_ledger(held.txn, asked, now).await
    };
    let (booking, written) = finish(db, txn, change, booking, ledger).await?.committed();
    Ok(Refund {
        booking,
        refund: written.refund,
        clawback: written.clawback,
        refundable: written.refundable,
    })
}

/// The booking's row lock, first: concurrent refunds of one booking run one at a time.
/// `None` when it is no longer COMPLETED.
async fn lock_completed(
    txn: &DatabaseTransaction,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<bookings::Model>> {
    let locked = bookings::Entity::update_many()
        .col_expr(bookings::Column::UpdatedAt, Expr::value(now))
        .filter(bookings::Column::Id.eq(id))
        .filter(bookings::Column::Status.eq(BookingStatus::Completed))
        .exec_with_returning(txn)
        .await?;
    Ok(locked.into_iter().next())
}

/// The booking's ledger as a refund sees it, read under the booking's lock.
struct Charges {
    ledger: Vec<transactions::Model>,
}

impl Charges {
    /// Rows that count: neither CANCELLED nor FAILED.
    fn live(&self) -> impl Iterator<Item = &transactions::Model> {
        self.ledger.iter().filter(|t| {
            !matches!(
                t.status,
                TransactionStatus::Cancelled | TransactionStatus::Failed
            )
        })
    }

    fn sum(&self, kind: TransactionType) -> i64 {
        self.live()
            .filter(|t| t.r#type == kind)
            .map(|t| t.amount)
            .sum()
    }

    /// What was charged: the live BOOKING_FEE + PLATFORM_FEE.
    fn charged(&self) -> i64 {
        self.sum(TransactionType::BookingFee) + self.sum(TransactionType::PlatformFee)
    }

    /// What was refunded so far.
    fn refunded(&self) -> i64 {
        -self.sum(TransactionType::Refund)
    }

    /// How many refunds the booking had (of any status).
    fn refunds(&self) -> u64 {
        self.ledger
            .iter()
            .filter(|t| t.r#type == TransactionType::Refund)
            .count() as u64
    }

    /// The clawback a refund of `amount` owes: the cumulative target after this refund,
    /// minus what was clawed back, with the commission it reverses; `None` when none is due.
    fn clawback(&self, amount: i64) -> Option<(&transactions::Model, i64)> {
        let c = self
            .live()
            .find(|t| t.r#type == TransactionType::PromoterCommission)?;
        let clawed: i64 = -self
            .live()
            .filter(|t| {
                t.r#type == TransactionType::Adjustment && t.reverses_transaction_id == Some(c.id)
            })
            .map(|t| t.amount)
            .sum::<i64>();
        let target = (Decimal::from(c.amount) * Decimal::from(self.refunded() + amount)
            / Decimal::from(self.charged()))
        .round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero);
        let target = i64::try_from(target).unwrap_or(c.amount).min(c.amount);
        let due = target - clawed;
        (due > 0).then_some((c, due))
    }
}

/// Reads the booking's ledger, checks the amount against what is left, and writes the
/// REFUND and the clawback ADJUSTMENT; says what the history records.
async fn write_ledger(
    txn: &DatabaseTransaction,
    asked: &Asked,
    now: DateTime<Utc>,
) -> Result<(Entry, Written)> {
    let charges = Charges {
        ledger: transactions::Entity::find()
            .filter(transactions::Column::BookingId.eq(asked.id))
            .all(txn)
            .await?,
    };
    let refunded = charges.refunded();
    let refundable = charges.charged() - refunded;
    let amount = check_amount(&charges, asked.amount, refundable)?;
    let clawback = charges.clawback(amount);

    let (id, reason) = (asked.id, &asked.reason);
    let short = &id.simple().to_string()[..8];
    // Refunds and clawbacks are final at once: CONFIRMED, processed now.
    let row = |kind: TransactionType,
               amount: i64,
               promoter: Option<Uuid>,
               reverses: Option<Uuid>,
               description: String| {
        let mut row = ledger_row(id, &asked.venue, kind, amount, description, now);
        row.promoter_id = Set(promoter);
        row.reverses_transaction_id = Set(reverses);
        row.status = Set(TransactionStatus::Confirmed);
        row.processed_at = Set(Some(now));
        row
    };
    let refund = transactions::Entity::insert(row(
        TransactionType::Refund,
        -amount,
        None,
        None,
        format!("Refund, booking {short}: {reason}"),
    ))
    .exec_with_returning(txn)
    .await?;
    let clawback = match clawback {
        Some((commission, due)) => Some(
            transactions::Entity::insert(row(
                TransactionType::Adjustment,
                -due,
                commission.promoter_id,
                Some(commission.id),
                format!("Commission clawback for the refund of booking {short}"),
            ))
            .exec_with_returning(txn)
            .await?,
        ),
        None => None,
    };
    let entry = Entry {
        previous: Some(json!({ "refunded": cents(refunded).to_string() })),
        new: json!({
            "refunded": cents(refunded + amount).to_string(),
            "refund": cents(amount).to_string(),
            "clawback": clawback.as_ref().map(|t| cents(-t.amount).to_string()),
        }),
        reason: Some(reason.clone()),
        metadata: Some(json!({ "refund_transaction_id": refund.id })),
    };
    let written = Written {
        refund,
        clawback,
        refundable: refundable - amount,
    };
    Ok((entry, written))
}

/// The amount to refund (all that is left when none was given), within what is left and
/// the bound on refunds per booking.
fn check_amount(charges: &Charges, amount: Option<i64>, refundable: i64) -> Result<i64> {
    let amount = amount.unwrap_or(refundable);
    if refundable <= 0 {
        return Err(Error::Conflict(
            "this booking has been refunded in full already".into(),
        ));
    }
    let refunds = charges.refunds();
    if refunds >= crate::ledger::MAX_REFUNDS_PER_BOOKING {
        return Err(Error::Conflict(format!(
            "this booking has had {refunds} refunds, the most one booking can take"
        )));
    }
    if amount > refundable {
        return Err(Error::invalid(
            "amount",
            format!(
                "`amount` {} is more than the {} that can still be refunded",
                cents(amount),
                cents(refundable)
            ),
        ));
    }
    Ok(amount)
}
