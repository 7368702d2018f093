//! The steps every booking change shares: the limits on its input, the ledger rows a
//! confirmation writes (DOMAIN.md "Transactions", "Commissions"), and [`finish`], the one
//! ending of every change's transaction.
//!
//! A change (making, editing, moving or refunding a booking) opens its transaction, makes
//! its booking write (the first statement, the booking's lock) and hands the rest to
//! [`finish`], which runs the same steps in the same order for every change, in the lock
//! order of [`super`]: the promoter and guest aggregates, the incentive progress, the
//! change's own ledger rows, the idempotency key, then its [`Tail`] (the ledger writes,
//! the history row and the outbox events, one statement on PostgreSQL), the commit, then
//! the relay's doorbell. A new kind of change describes itself in a
//! [`Change`] and so cannot leave a step out.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use prima_entity::enums::{TransactionStatus, TransactionType};
use prima_entity::{booking_history, bookings, promoters, transactions, venues};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryTrait,
};
use serde_json::json;
use uuid::Uuid;

use super::aggregates;
use crate::access::{Actor, Level};
use crate::commissions::{self, rules::Commission};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::events::outbox::{self, BookingAction};
use crate::idempotency::{self, Seen};
use crate::incentives::progress;
use crate::money::{cents, rate};
use crate::tail::Tail;

/// A booking change, as [`finish`] ends it.
pub(super) struct Change<'a> {
    /// Who makes it; its history row records them.
    pub actor: &'a Actor,
    /// What it is, for its history row and its event.
    pub action: BookingAction,
    /// How it moves the promoter's and guest's counters and the incentive progress.
    pub counters: Counters<'a>,
    /// The idempotency key to record with it (only making a booking takes one).
    pub key: Option<&'a idempotency::Key>,
    /// The change's one instant.
    pub now: DateTime<Utc>,
}

/// How a change moves the aggregates ([`aggregates::apply`]) and the incentive progress
/// ([`progress::apply`]).
pub(super) enum Counters<'a> {
    /// A new booking: counted from nothing.
    New {
        /// The venue's calendar month at the change (the promoter's `month_*` fields).
        month: (DateTime<Utc>, DateTime<Utc>),
    },
    /// A change from the booking as it was: everything moves by the difference.
    From {
        /// The booking before the change, with the status it really had.
        before: &'a bookings::Model,
        /// The venue's calendar month at the change.
        month: (DateTime<Utc>, DateTime<Utc>),
    },
    /// A change of nothing counted (a refund: status, fees, time and party size stay), which
    /// touches neither the aggregates nor the progress.
    Unmoved,
}

/// What a change's history row says beside who, what and when.
pub(super) struct Entry {
    /// The values before (`None` for a new booking).
    pub previous: Option<serde_json::Value>,
    /// The values after.
    pub new: serde_json::Value,
    /// Why, when the caller said.
    pub reason: Option<String>,
    /// How (pricing, commission, the refund's transaction).
    pub metadata: Option<serde_json::Value>,
}

/// How a change ended.
#[allow(clippy::large_enum_variant)] // returned once per change and taken apart at once
pub(super) enum Ending<T> {
    /// Committed, and the relay told: the booking as written, and what the change's ledger
    /// step returned.
    Committed(bookings::Model, T),
    /// The idempotency key's concurrent first use committed first: this change was undone,
    /// and the key's booking is the answer.
    Replay(Uuid),
}

impl<T> Ending<T> {
    /// The end of a change made without an idempotency key, which is never a replay.
    pub(super) fn committed(self) -> (bookings::Model, T) {
        match self {
            Ending::Committed(booking, out) => (booking, out),
            Ending::Replay(_) => unreachable!("only a change with an idempotency key replays"),
        }
    }
}

/// What a change's ledger step works with: its transaction, the [`Tail`] of writes sent
/// together at its end, and the promoter's row when the aggregates' counter `UPDATE` locked
/// and returned it.
pub(super) struct Held<'a> {
    /// The change's transaction.
    pub txn: &'a DatabaseTransaction,
    /// Writes nothing later reads, sent just before the commit.
    pub tail: Tail,
    /// The booking's promoter as locked by this change, if it was.
    pub promoter: Option<promoters::Model>,
}

/// Ends a booking change whose booking write `txn` holds: the aggregates and the incentive
/// progress move, `ledger` writes the change's own ledger rows (with the promoter's and the
/// booking's locks held) and says what its history records, then the idempotency key, the
/// history row and the outbox events (with the rest of the [`Tail`], in one statement on
/// PostgreSQL), the commit, and after the commit the relay's doorbell
/// ([`crate::db::Db::relay`]).
pub(super) async fn finish<T>(
    db: &Db,
    txn: DatabaseTransaction,
    change: Change<'_>,
    mut booking: bookings::Model,
    ledger: impl AsyncFnOnce(&mut Held<'_>, &mut bookings::Model) -> Result<(Entry, T)>,
) -> Result<Ending<T>> {
    let Change {
        actor,
        action,
        counters,
        key,
        now,
    } = change;
    let previous_status = match &counters {
        Counters::New { .. } => None,
        Counters::From { before, .. } => Some(before.status),
        Counters::Unmoved => Some(booking.status),
    };
    let mut held = Held {
        txn: &txn,
        tail: Tail::new(),
        promoter: None,
    };
    held.promoter = count(&txn, &counters, &booking, &mut held.tail, now).await?;
    let (entry, out) = ledger(&mut held, &mut booking).await?;
    let mut tail = held.tail;
    history(&mut tail, actor, &booking, action, entry, now);
    if let Some(key) = key {
        match idempotency::record(&txn, actor.user_id, key, booking.id, now).await {
            Ok(()) => {}
            Err(Error::Conflict(_)) => {
                // A concurrent first use of the key committed first: undo this change and
                // answer as its retry.
                drop(txn);
                return replay(db, actor, key, now).await;
            }
            Err(other) => return Err(other),
        }
    }
    outbox::booking_changed(&mut tail, action, previous_status, &booking, now);
    tail.send(&txn).await?;
    txn.commit().await?;
    db.relay.ring();
    Ok(Ending::Committed(booking, out))
}

/// The aggregates, then the incentive progress (locks 3 to 7 of [`super`]); the promoter's
/// row when the aggregates locked it.
async fn count(
    txn: &DatabaseTransaction,
    counters: &Counters<'_>,
    booking: &bookings::Model,
    tail: &mut Tail,
    now: DateTime<Utc>,
) -> Result<Option<promoters::Model>> {
    let (before, month) = match counters {
        Counters::New { month } => (None, *month),
        Counters::From { before, month } => (Some(*before), *month),
        Counters::Unmoved => return Ok(None),
    };
    let applied = aggregates::apply(txn, before, booking, month, now).await?;
    progress::apply(txn, before, booking, applied.first, tail, now).await?;
    Ok(applied.promoter)
}

/// The answer to a change whose idempotency key a concurrent first use took.
async fn replay<T>(
    db: &Db,
    actor: &Actor,
    key: &idempotency::Key,
    now: DateTime<Utc>,
) -> Result<Ending<T>> {
    match idempotency::lookup(&db.conn, actor.user_id, key, now).await? {
        Seen::Replay(id) => Ok(Ending::Replay(id)),
        Seen::New => Err(Error::Conflict(
            "a request with this idempotency key is in progress; retry".into(),
        )),
    }
}

/// The answer of a change whose conditional booking write matched no row: someone else
/// changed the booking between its read and its write.
pub(super) fn changed_meanwhile() -> Error {
    Error::Conflict(
        "this booking was changed by someone else meanwhile; reload it and try again".into(),
    )
}

/// The longest notes or special requests accepted.
pub const MAX_TEXT: usize = 2000;
/// Shortest and longest booking duration accepted, minutes.
pub const DURATION_MINUTES: std::ops::RangeInclusive<i32> = 15..=1440;
pub(super) fn check_duration(minutes: i32) -> Result<()> {
    if !DURATION_MINUTES.contains(&minutes) {
        return Err(Error::invalid(
            "durationMinutes",
            format!(
                "`durationMinutes` must be from {} to {}",
                DURATION_MINUTES.start(),
                DURATION_MINUTES.end()
            ),
        ));
    }
    Ok(())
}

/// The ledger rows of a booking becoming CONFIRMED (DOMAIN.md "Transactions"): BOOKING_FEE
/// and PLATFORM_FEE, and PROMOTER_COMMISSION when the booking has a promoter and the
/// commission is above 0, all PENDING. The commission is computed here, from the
/// assignment in force at `booking_time` ([`commissions::commission_for_booking`]), stored on
/// the booking, and its rate and tier recorded on the transaction. Runs after the promoter's
/// row lock is held, so TIERED month counts of concurrent confirmations are serialised.
/// The booking's commission and the ledger rows are written by the change's [`Tail`].
pub(super) async fn confirm_ledger(
    held: &mut Held<'_>,
    booking: &mut bookings::Model,
    venue: &venues::Model,
    now: DateTime<Utc>,
) -> Result<Option<Commission>> {
    let commission =
        commissions::commission_with(held.txn, booking, venue, held.promoter.as_ref()).await?;
    let amount = commission.as_ref().map_or(0, |c| c.amount);
    if amount > 0 {
        // The booking's row is this change's (its first write locked it).
        held.tail.update(
            bookings::Entity::update_many()
                .col_expr(bookings::Column::PromoterCommission, Expr::value(amount))
                .filter(bookings::Column::Id.eq(booking.id))
                .into_query(),
        );
        booking.promoter_commission = amount;
    }
    let short = &booking.id.simple().to_string()[..8];
    let tz: Tz = venue.timezone.parse().unwrap_or(chrono_tz::UTC);
    let when = booking
        .booking_time
        .with_timezone(&tz)
        .format("%Y-%m-%d %H:%M");
    let row = |kind: TransactionType,
               amount: i64,
               promoter_id: Option<Uuid>,
               description: String,
               commission: Option<&Commission>| {
        let mut row = ledger_row(booking.id, venue, kind, amount, description, now);
        row.promoter_id = Set(promoter_id);
        row.commission_rate = Set(commission.and_then(|c| recordable_rate(c.rate)));
        row.commission_amount = Set(commission.map(|_| amount));
        row.commission_tier = Set(commission.map(|c| c.tier));
        row
    };
    let mut rows = vec![
        row(
            TransactionType::BookingFee,
            booking.base_fee,
            None,
            format!(
                "Booking fee, booking {short} ({} diners, {when})",
                booking.diners
            ),
            None,
        ),
        row(
            TransactionType::PlatformFee,
            booking.platform_fee,
            None,
            format!("Platform fee, booking {short}"),
            None,
        ),
    ];
    if let (Some(promoter), Some(c)) = (booking.promoter_id, &commission)
        && amount > 0
    {
        rows.push(row(
            TransactionType::PromoterCommission,
            amount,
            Some(promoter),
            format!("Commission ({}, {} tier), booking {short}", c.model, c.tier),
            Some(c),
        ));
    }
    held.tail
        .insert(transactions::Entity::insert_many(rows).into_query());
    Ok(commission)
}

/// A new PENDING ledger row of a booking, in the venue's currency, with no promoter,
/// commission details or links; callers set what their row needs.
pub(super) fn ledger_row(
    booking: Uuid,
    venue: &venues::Model,
    kind: TransactionType,
    amount: i64,
    description: String,
    now: DateTime<Utc>,
) -> transactions::ActiveModel {
    transactions::ActiveModel {
        id: Set(Uuid::new_v4()),
        booking_id: Set(Some(booking)),
        promoter_id: Set(None),
        venue_id: Set(venue.id),
        r#type: Set(kind),
        amount: Set(amount),
        currency: Set(venue.currency.clone()),
        description: Set(description),
        commission_rate: Set(None),
        commission_amount: Set(None),
        commission_tier: Set(None),
        status: Set(TransactionStatus::Pending),
        processed_at: Set(None),
        settled_at: Set(None),
        external_transaction_id: Set(None),
        payout_id: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        reverses_transaction_id: Set(None),
        incentive_id: Set(None),
    }
}

/// The rate as `transactions.commission_rate` can hold it: that column is the data model's
/// DECIMAL(5,4) (at most 9.9999), made for percentages. Every percent rate fits; a PER_COVER
/// or FLAT_RATE amount of 10.00 or more does not, and is then left NULL on the transaction
/// (its amount is the commission itself) while the booking's history row records the full
/// rate, model and tier.
fn recordable_rate(rate: i64) -> Option<i64> {
    (rate.abs() <= 99_999).then_some(rate)
}

/// Holds a booking's history row in the change's tail: who did it and in which role.
fn history(
    tail: &mut Tail,
    actor: &Actor,
    booking: &bookings::Model,
    action: BookingAction,
    entry: Entry,
    now: DateTime<Utc>,
) {
    let row = booking_history::Entity::insert(booking_history::ActiveModel {
        id: Set(Uuid::new_v4()),
        booking_id: Set(booking.id),
        action: Set(action.as_str().to_owned()),
        previous_value: Set(entry.previous),
        new_value: Set(Some(entry.new)),
        reason: Set(entry.reason),
        performed_by_id: Set(Some(actor.user_id)),
        performed_by_name: Set(actor.name.clone()),
        performed_by_role: Set(role_name(actor, booking.venue_id).to_owned()),
        timestamp: Set(now),
        metadata: Set(entry.metadata),
    });
    tail.insert(row.into_query());
}

/// The role a history row records: the global ADMIN role, else the caller's role at the
/// venue.
fn role_name(actor: &Actor, venue: Uuid) -> &'static str {
    if actor.is_admin() {
        return "ADMIN";
    }
    actor.level_at(venue).unwrap_or(Level::Viewer).as_str()
}

/// The commission as history records it.
pub(super) fn commission_json(c: &Commission) -> serde_json::Value {
    json!({
        "promoter_commission": cents(c.amount).to_string(),
        "commission_model": c.model,
        "commission_rate": rate(c.rate).to_string(),
        "commission_tier": c.tier,
        "assignment_id": c.assignment_id,
        "rate_id": c.rate_id,
        "note": c.ineligible_reason,
    })
}
