//! Moving a booking through its lifecycle: confirm, cancel, complete, no-show
//! (DOMAIN.md "Booking lifecycle"), with the ledger moves each one makes.

use chrono::{DateTime, Utc};
use prima_entity::enums::{BookingStatus, TransactionStatus, TransactionType};
use prima_entity::{bookings, transactions, venues};
use sea_orm::sea_query::{Expr, SimpleExpr};
use sea_orm::{
    ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryTrait, TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use super::change::{
    Change, Counters, Entry, Held, MAX_TEXT, changed_meanwhile, commission_json, confirm_ledger,
    finish,
};
use crate::access::{Actor, Capability, not_found_as};
use crate::commissions;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::events::outbox::BookingAction;
use crate::tail::Tail;
use crate::validate::optional_text;

/// A status change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// PENDING -> CONFIRMED (MANAGER or above): fees and commission go on the ledger.
    Confirm,
    /// PENDING or CONFIRMED -> CANCELLED (any venue role), before `booking_time`.
    Cancel {
        /// Why; required.
        reason: String,
    },
    /// CONFIRMED -> COMPLETED, at or after `booking_time`: the ledger rows are earned.
    Complete,
    /// CONFIRMED -> NO_SHOW, at or after `booking_time`: the venue keeps its fees, the
    /// commission is cancelled.
    NoShow {
        /// Why, if given.
        reason: Option<String>,
    },
}

impl Transition {
    /// The status it leads to.
    pub fn target(&self) -> BookingStatus {
        match self {
            Transition::Confirm => BookingStatus::Confirmed,
            Transition::Cancel { .. } => BookingStatus::Cancelled,
            Transition::Complete => BookingStatus::Completed,
            Transition::NoShow { .. } => BookingStatus::NoShow,
        }
    }

    /// The statuses it may start from.
    pub fn sources(&self) -> &'static [BookingStatus] {
        match self {
            Transition::Confirm => &[BookingStatus::Pending],
            Transition::Cancel { .. } => &[BookingStatus::Pending, BookingStatus::Confirmed],
            Transition::Complete | Transition::NoShow { .. } => &[BookingStatus::Confirmed],
        }
    }

    /// The capability it needs at the booking's venue.
    pub fn capability(&self) -> Capability {
        match self {
            Transition::Confirm => Capability::Manage,
            _ => Capability::WriteBookings,
        }
    }

    /// The mutation that asks for it (it names the transaction in logs).
    fn mutation(&self) -> &'static str {
        match self {
            Transition::Confirm => "confirmBooking",
            Transition::Cancel { .. } => "cancelBooking",
            Transition::Complete => "completeBooking",
            Transition::NoShow { .. } => "markNoShow",
        }
    }

    fn verb(&self) -> &'static str {
        match self {
            Transition::Confirm => "confirmed",
            Transition::Cancel { .. } => "cancelled",
            Transition::Complete => "completed",
            Transition::NoShow { .. } => "marked as a no-show",
        }
    }

    fn reason(&self) -> Option<&str> {
        match self {
            Transition::Cancel { reason } => Some(reason),
            Transition::NoShow { reason } => reason.as_deref(),
            _ => None,
        }
    }
}

/// Whether the lifecycle allows `transition` from `status` at `now` for a booking at
/// `booking_time`; CONFLICT saying why not.
pub fn check_transition(
    status: BookingStatus,
    transition: &Transition,
    booking_time: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<()> {
    if !transition.sources().contains(&status) {
        let allowed = transition
            .sources()
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" or ");
        return Err(Error::Conflict(format!(
            "this booking is {status}: only a {allowed} booking can be {}",
            transition.verb()
        )));
    }
    match transition {
        Transition::Cancel { .. } if now >= booking_time => Err(Error::Conflict(
            "this booking's time has passed: it can no longer be cancelled, only completed or marked as a no-show"
                .into(),
        )),
        Transition::Complete | Transition::NoShow { .. } if now < booking_time => {
            Err(Error::Conflict(format!(
                "this booking cannot be {} before its booking time",
                transition.verb()
            )))
        }
        _ => Ok(()),
    }
}

/// Confirms a PENDING booking (MANAGER or above): its fees, and its promoter's commission
/// when one is due, go on the ledger as PENDING transactions.
pub async fn confirm_booking(db: &Db, actor: &Actor, id: Uuid) -> Result<bookings::Model> {
    transition_at(db, actor, id, Transition::Confirm, crate::time::now()).await
}

/// Cancels a PENDING or CONFIRMED booking before its time (any venue role), with a reason;
/// its PENDING transactions are cancelled.
pub async fn cancel_booking(
    db: &Db,
    actor: &Actor,
    id: Uuid,
    reason: String,
) -> Result<bookings::Model> {
    transition_at(
        db,
        actor,
        id,
        Transition::Cancel { reason },
        crate::time::now(),
    )
    .await
}

/// Completes a CONFIRMED booking at or after its time: its transactions are earned
/// (CONFIRMED).
pub async fn complete_booking(db: &Db, actor: &Actor, id: Uuid) -> Result<bookings::Model> {
    transition_at(db, actor, id, Transition::Complete, crate::time::now()).await
}

/// Marks a CONFIRMED booking as a no-show at or after its time: the venue keeps its fees
/// (CONFIRMED), the promoter's commission is cancelled.
pub async fn mark_no_show(
    db: &Db,
    actor: &Actor,
    id: Uuid,
    reason: Option<String>,
) -> Result<bookings::Model> {
    transition_at(
        db,
        actor,
        id,
        Transition::NoShow { reason },
        crate::time::now(),
    )
    .await
}

/// Moves a booking through its lifecycle at `now`; see [`Transition`] for who may do what
/// and [`check_transition`] for when.
#[tracing::instrument(skip_all, fields(booking = %id, to = %transition.target()))]
pub async fn transition_at(
    db: &Db,
    actor: &Actor,
    id: Uuid,
    transition: Transition,
    now: DateTime<Utc>,
) -> Result<bookings::Model> {
    let transition = validate(transition)?;
    let (before, venue) = crate::bookings::get_with_venue(&db.conn, actor, id).await?;
    actor
        .require(before.venue_id, transition.capability())
        .map_err(not_found_as("booking"))?;
    check_transition(before.status, &transition, before.booking_time, now)?;
    let month = commissions::month::venue_month(&venue, now)?;

    let (transition, venue) = (&transition, &venue);
    crate::db::retry_transient(transition.mutation(), || async move {
        write(db, actor, id, transition, venue, month, now).await
    })
    .await
}

/// The transition with its reason checked (required to cancel, optional for a no-show).
fn validate(transition: Transition) -> Result<Transition> {
    Ok(match transition {
        Transition::Cancel { reason } => Transition::Cancel {
            reason: crate::validate::required_text("reason", &reason, MAX_TEXT)?,
        },
        Transition::NoShow { reason } => Transition::NoShow {
            reason: optional_text("reason", reason.as_deref(), MAX_TEXT)?,
        },
        other => other,
    })
}

/// The transition's transaction: the conditional status UPDATE, then [`finish`] with the
/// ledger moves of the transition.
async fn write(
    db: &Db,
    actor: &Actor,
    id: Uuid,
    transition: &Transition,
    venue: &venues::Model,
    month: (DateTime<Utc>, DateTime<Utc>),
    now: DateTime<Utc>,
) -> Result<bookings::Model> {
    let txn = db.conn.begin().await?;
    let Some(booking) = move_status(&txn, id, transition, now).await? else {
        // Someone else changed it between our read and our write: say what it is now.
        drop(txn);
        let current = crate::bookings::get(&db.conn, actor, id).await?;
        check_transition(current.status, transition, current.booking_time, now)?;
        return Err(changed_meanwhile());
    };
    // The status the row really had (the read above may be stale for CANCEL's two sources).
    let previous_status =
        if booking.confirmed_at.is_some() && matches!(transition, Transition::Cancel { .. }) {
            BookingStatus::Confirmed
        } else {
            transition.sources()[0]
        };
    let mut prior = booking.clone();
    prior.status = previous_status;
    let change = Change {
        actor,
        action: BookingAction::StatusChanged,
        counters: Counters::From {
            before: &prior,
            month,
        },
        key: None,
        now,
    };
    let ledger = async |held: &mut Held<'_>, booking: &mut bookings::Model| {
        let metadata = write_ledger(held, transition, booking, venue, now).await?;
        let entry = Entry {
            previous: Some(json!({ "status": previous_status })),
            new: json!({ "status": transition.target() }),
            reason: transition.reason().map(str::to_owned),
            metadata,
        };
        Ok((entry, ()))
    };
    let (booking, ()) = finish(db, txn, change, booking, ledger).await?.committed();
    tracing::info!(booking = %id, from = %previous_status, to = %transition.target(), "booking status changed");
    Ok(booking)
}

/// The booking's status UPDATE, conditional on a status the transition starts from (and,
/// for the time-bound transitions, on the booking's time); `None` when it matched no row.
async fn move_status(
    txn: &DatabaseTransaction,
    id: Uuid,
    transition: &Transition,
    now: DateTime<Utc>,
) -> Result<Option<bookings::Model>> {
    let update = bookings::Entity::update_many()
        .col_expr(bookings::Column::Status, Expr::value(transition.target()))
        .col_expr(bookings::Column::UpdatedAt, Expr::value(now))
        .filter(bookings::Column::Id.eq(id))
        .filter(bookings::Column::Status.is_in(transition.sources().iter().copied()));
    let update = match transition {
        Transition::Confirm => update.col_expr(bookings::Column::ConfirmedAt, Expr::value(now)),
        Transition::Cancel { .. } => update
            .col_expr(bookings::Column::CancelledAt, Expr::value(now))
            .filter(bookings::Column::BookingTime.gt(now)),
        Transition::Complete => update
            .col_expr(bookings::Column::CompletedAt, Expr::value(now))
            .filter(bookings::Column::BookingTime.lte(now)),
        Transition::NoShow { .. } => update
            .col_expr(bookings::Column::NoShowAt, Expr::value(now))
            .filter(bookings::Column::BookingTime.lte(now)),
    };
    Ok(update.exec_with_returning(txn).await?.into_iter().next())
}

/// The ledger of the transition: a confirmation writes the fee and commission rows (and
/// returns the commission for the history's metadata); the others move the PENDING rows.
async fn write_ledger(
    held: &mut Held<'_>,
    transition: &Transition,
    booking: &mut bookings::Model,
    venue: &venues::Model,
    now: DateTime<Utc>,
) -> Result<Option<serde_json::Value>> {
    let (fees, commission) = match transition {
        Transition::Confirm => {
            let commission = confirm_ledger(held, booking, venue, now).await?;
            return Ok(commission.map(|c| json!({ "commission": commission_json(&c) })));
        }
        Transition::Cancel { .. } => (TransactionStatus::Cancelled, TransactionStatus::Cancelled),
        Transition::Complete => (TransactionStatus::Confirmed, TransactionStatus::Confirmed),
        Transition::NoShow { .. } => (TransactionStatus::Confirmed, TransactionStatus::Cancelled),
    };
    move_ledger(&mut held.tail, booking.id, fees, commission, now);
    Ok(None)
}

/// Moves a booking's PENDING fee rows to `fees` and its PENDING commission row to
/// `commission`, in one statement held in the change's tail (the rows are the booking's,
/// whose lock the change holds). Amounts never change; only the status (and
/// `processed_at` for rows that become CONFIRMED).
fn move_ledger(
    tail: &mut Tail,
    booking: Uuid,
    fees: TransactionStatus,
    commission: TransactionStatus,
    now: DateTime<Utc>,
) {
    let is_commission = || transactions::Column::Type.eq(TransactionType::PromoterCommission);
    let processed = |status: TransactionStatus| -> SimpleExpr {
        if status == TransactionStatus::Confirmed {
            Expr::value(now)
        } else {
            Expr::col(transactions::Column::ProcessedAt)
        }
    };
    let update = transactions::Entity::update_many()
        .col_expr(
            transactions::Column::Status,
            Expr::case(is_commission(), Expr::value(commission))
                .finally(Expr::value(fees))
                .into(),
        )
        .col_expr(
            transactions::Column::ProcessedAt,
            Expr::case(is_commission(), processed(commission))
                .finally(processed(fees))
                .into(),
        )
        .col_expr(transactions::Column::UpdatedAt, Expr::value(now))
        .filter(transactions::Column::BookingId.eq(booking))
        .filter(transactions::Column::Status.eq(TransactionStatus::Pending))
        .filter(transactions::Column::Type.is_in([
            TransactionType::BookingFee,
            TransactionType::PlatformFee,
            TransactionType::PromoterCommission,
        ]))
        .into_query();
    tail.update(update);
}
