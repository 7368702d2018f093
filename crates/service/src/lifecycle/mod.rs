//! The booking write path: making, editing and moving bookings through their lifecycle
//! (DOMAIN.md "Booking lifecycle", "Transactions", "Commissions", "Promoter and guest
//! metrics", "Idempotency").
//!
//! Every change is one database transaction holding, together or not at all:
//! the booking's new state, its `booking_history` row, its ledger rows, its commission, the
//! promoter's and guest's aggregates ([`aggregates`]), the promoter's incentive progress
//! ([`progress`]) and the `outbox_events` rows describing it ([`crate::outbox`]).
//!
//! Policy:
//! - Input is validated, and the caller's role checked, before anything is written. Bad
//!   input is BAD_USER_INPUT naming the field; an invisible booking, venue or guest is
//!   NOT_FOUND; a role too low is FORBIDDEN.
//! - A transition the lifecycle does not allow from the booking's current status, or at
//!   this time, is CONFLICT ("the request conflicts with the booking's state") with a
//!   message saying what is allowed, and changes nothing.
//! - The first statement of each transaction is the booking's own write: a conditional
//!   `UPDATE ... WHERE status = <expected>` (or the INSERT). Of concurrent changes to one
//!   booking exactly one matches; the others match no row and get CONFLICT, so there is
//!   never a second confirmation, commission or ledger set. Writing first also makes SQLite
//!   take its write lock at once instead of failing to upgrade a read lock.
//! - Row locks follow the one global order below. Whatever still makes the database give
//!   up on a transaction (a deadlock, a serialization failure, a busy SQLite) runs it again
//!   from its first statement ([`crate::db::retry_transient`], bounded); the client never
//!   sees INTERNAL for it, at worst CONFLICT "try again".
//! - Timestamps come from one `now` per change ([`crate::time::now`]); the `*_at` variants
//!   take it as a parameter for tests.
//!
//! Price rules for edits (documented for the API in `updateBooking`): while a booking is
//! PENDING a change of time or party size re-prices it with the pricing row that was in force
//! when the booking was made (later pricing changes never touch existing bookings) and the
//! discounts that qualify for the new details, as of the booking's creation; once CONFIRMED
//! the price and the commission are locked: the new details are recorded, the fees are not
//! touched (the ledger already holds them).
//!
//! # Lock order
//!
//! Every write path of the service (booking changes and refunds here, the admin writes of
//! [`crate::admin`], idempotency keys, the outbox) takes its row locks in this one order, so
//! no two transactions can each hold a lock the other waits for. A transaction takes only
//! the locks it needs, but never one listed above a lock it already holds:
//!
//! 1. **Venue**: `admin::lock_venue`, a no-op UPDATE that admin writes take first
//!    (settings, pricing, access grants); for a grant, then the granted user's row (a
//!    no-op UPDATE: one user's grants change one at a time); then that venue's
//!    `venue_pricing` or `user_venue_access` rows. Booking changes never lock a venue.
//! 2. **Booking**: the conditional UPDATE, or the INSERT, that is the first statement of
//!    every booking change and refund.
//! 3. **Promoter**: the counter UPDATE of [`aggregates`] (then its `month_*` recompute);
//!    the admin's status and tier updates; the no-op UPDATE before a commission assignment
//!    changes, then that promoter's `commission_assignments` rows.
//! 4. **Guest**: the counter UPDATE of [`aggregates`] (then `last_booking_at`); the admin's
//!    detail and status updates.
//! 5. **Guest-venue aggregates**: the guest's row at the booking's venue, right after the
//!    guest's own.
//! 6. **Incentive programmes**, in ascending id: [`progress`] locks every programme a
//!    change moves (a no-op UPDATE each) before writing any progress row.
//! 7. **Incentive progress** rows, by (incentive, promoter): written only under their
//!    programme's lock.
//! 8. **The booking's ledger and history**: its `transactions` rows (inserted, or moved
//!    by one UPDATE; written only under the booking's lock) and its `booking_history` row.
//! 9. **Idempotency key**: [`idempotency::record`]'s INSERT, which waits for a concurrent
//!    first use of the same key and so must come after everything it could be waited for
//!    by.
//! 10. **Outbox**: [`outbox`] INSERTs, which wait for nothing; the relay numbers and
//!     publishes committed rows in transactions of its own that lock nothing else.
//!
//! And three rules beside the order:
//! - A row that a transaction locks alone (a commission rate being deactivated, a user at
//!   login) cannot close a cycle and stands outside the list. PostgreSQL's KEY SHARE locks
//!   on rows a new row refers to (a booking's venue, guest and promoter) conflict only with
//!   deletes and changes of a unique column (a guest's email), and those transactions lock
//!   that one row alone.
//! - A transaction waits for nothing that may itself wait for a pool connection: it uses
//!   only its own (`txn`, never the pool, until it has committed or been dropped) and hands
//!   events to the in-process hub only after commit ([`crate::events`]).
//! - New work that locks several rows of one table locks them in ascending id, in its place
//!   in this list (payout generation: the promoter, then its transactions); a programme's
//!   finalisation takes the programme's lock before its progress rows.

pub mod aggregates;
mod refund;

pub use aggregates::refresh_month_fields;
pub use refund::{Refund, refund_booking, refund_booking_at};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use prima_entity::enums::{
    BookingSource, BookingStatus, BookingType, GuestStatus, PromoterStatus, TransactionStatus,
    TransactionType, VenueStatus,
};
use prima_entity::{booking_history, bookings, promoters, transactions, venues};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    Statement, TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use crate::access::{Actor, Capability, Level, not_found_as};
use crate::commissions::{self, rules::Commission};
use crate::error::{Error, Result};
use crate::idempotency::{self, Seen};
use crate::incentives::progress;
use crate::money::{cents, rate};
use crate::outbox::{self, BookingAction};
use crate::pricing::{self, PricingRequest, Quote};
use crate::validate::optional_text;

/// The longest notes or special requests accepted.
pub const MAX_TEXT: usize = 2000;
/// Shortest and longest booking duration accepted, minutes.
pub const DURATION_MINUTES: std::ops::RangeInclusive<i32> = 15..=1440;
/// The duration when none is given (the column default).
pub const DEFAULT_DURATION_MINUTES: i32 = 120;
/// The idempotency operation name of [`create_booking`].
pub const CREATE_BOOKING: &str = "createBooking";

/// Where a booking request came from (recorded on the booking, for fraud review).
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// The client's IP address.
    pub ip_address: Option<String>,
    /// The client's User-Agent header.
    pub user_agent: Option<String>,
    /// The client's Referer header.
    pub referrer: Option<String>,
}

/// A booking to make.
#[derive(Debug, Clone)]
pub struct NewBooking {
    /// The venue.
    pub venue_id: Uuid,
    /// The guest (visible to the caller, not BLOCKED).
    pub guest_id: Uuid,
    /// The promoter who brought it: one of the venue's, ACTIVE.
    pub promoter_id: Option<Uuid>,
    /// PRIME or NON_PRIME.
    pub booking_type: BookingType,
    /// Party size.
    pub diners: i32,
    /// When the guests arrive; in the future.
    pub booking_time: DateTime<Utc>,
    /// Minutes; [`DEFAULT_DURATION_MINUTES`] when absent.
    pub duration_minutes: Option<i32>,
    /// The guest's requests.
    pub special_requests: Option<String>,
    /// Staff notes.
    pub notes: Option<String>,
    /// How it came in; PROMOTER when a promoter is given, DIRECT otherwise, when absent.
    pub source: Option<BookingSource>,
    /// Where the request came from.
    pub client: ClientInfo,
}

/// Changes to a booking's details; `None` leaves a field as it is, a blank text clears it.
#[derive(Debug, Clone, Default)]
pub struct BookingChanges {
    /// A new arrival time (in the future).
    pub booking_time: Option<DateTime<Utc>>,
    /// A new party size.
    pub diners: Option<i32>,
    /// A new duration, minutes.
    pub duration_minutes: Option<i32>,
    /// New staff notes.
    pub notes: Option<String>,
    /// New special requests.
    pub special_requests: Option<String>,
}

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

// ---------------------------------------------------------------------------------------
// Creating
// ---------------------------------------------------------------------------------------

/// Makes a booking (COORDINATOR or above at the venue) and returns it.
///
/// It is priced with the venue's pricing in force now ([`pricing::quote`]); it starts
/// CONFIRMED when the venue has `auto_confirm_bookings` and not `require_approval` (with its
/// ledger rows and commission, as [`confirm`](Transition::Confirm) writes them), PENDING
/// otherwise. With an idempotency key, a retry with the same input returns the first
/// booking (as it is now) and writes nothing; the same key with other input is CONFLICT.
///
/// Refused with BAD_USER_INPUT, writing nothing: `diners` outside 1..=50 or the venue's party
/// limits, `bookingTime` not in the future, `venueId` of a venue that is not ACTIVE or has
/// no pricing, `guestId` of a BLOCKED guest, `promoterId` of a promoter that is not the
/// venue's or not ACTIVE, `source` PROMOTER without a promoter, a bad duration or text.
pub async fn create_booking(
    db: &DatabaseConnection,
    actor: &Actor,
    input: NewBooking,
    idempotency_key: Option<&str>,
) -> Result<bookings::Model> {
    create_booking_at(db, actor, input, idempotency_key, crate::time::now()).await
}

/// [`create_booking`] at a given instant.
#[tracing::instrument(skip_all, fields(venue = %input.venue_id))]
pub async fn create_booking_at(
    db: &DatabaseConnection,
    actor: &Actor,
    input: NewBooking,
    idempotency_key: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bookings::Model> {
    // 1. Input that needs no database.
    let duration = input.duration_minutes.unwrap_or(DEFAULT_DURATION_MINUTES);
    check_duration(duration)?;
    let special_requests = optional_text(
        "specialRequests",
        input.special_requests.as_deref(),
        MAX_TEXT,
    )?;
    let notes = optional_text("notes", input.notes.as_deref(), MAX_TEXT)?;
    let source = match (input.source, input.promoter_id) {
        (Some(BookingSource::Promoter), None) => {
            return Err(Error::invalid(
                "promoterId",
                "a booking with source PROMOTER needs a `promoterId`",
            ));
        }
        (Some(source), _) => source,
        (None, Some(_)) => BookingSource::Promoter,
        (None, None) => BookingSource::Direct,
    };
    let key = idempotency_key
        .map(|key| {
            idempotency::Key::new(
                key,
                CREATE_BOOKING,
                &json!({
                    "venueId": input.venue_id,
                    "guestId": input.guest_id,
                    "promoterId": input.promoter_id,
                    "type": input.booking_type,
                    "diners": input.diners,
                    "bookingTime": input.booking_time,
                    "durationMinutes": duration,
                    "specialRequests": special_requests,
                    "notes": notes,
                    "source": source,
                }),
            )
        })
        .transpose()?;

    // 2. A retry answers with the first result.
    if let Some(key) = &key
        && let Seen::Replay(id) = idempotency::lookup(db, actor.user_id, key, now).await?
    {
        return crate::bookings::get(db, actor, id).await;
    }

    // 3. The caller, the venue, the guest, the promoter and the price.
    actor.require(input.venue_id, Capability::WriteBookings)?;
    let venue = venues::Entity::find_by_id(input.venue_id)
        .one(db)
        .await?
        .ok_or(Error::NotFound { what: "venue" })?;
    if venue.status != VenueStatus::Active {
        return Err(Error::invalid(
            "venueId",
            format!("this venue is {} and takes no bookings", venue.status),
        ));
    }
    let guest = crate::guests::get(db, actor, input.guest_id)
        .await
        .map_err(|err| match err {
            Error::NotFound { .. } => Error::invalid("guestId", "no such guest"),
            other => other,
        })?
        .guest;
    if guest.status == GuestStatus::Blocked {
        return Err(Error::invalid(
            "guestId",
            "this guest is BLOCKED and cannot book",
        ));
    }
    if let Some(promoter_id) = input.promoter_id {
        let promoter = promoters::Entity::find_by_id(promoter_id)
            .filter(promoters::Column::VenueId.eq(venue.id))
            .one(db)
            .await?
            .ok_or_else(|| Error::invalid("promoterId", "no such promoter at this venue"))?;
        if promoter.status != PromoterStatus::Active {
            return Err(Error::invalid(
                "promoterId",
                format!(
                    "this promoter is {} and cannot bring bookings",
                    promoter.status
                ),
            ));
        }
    }
    let pricing_row = pricing::pricing_in_force(db, venue.id, now)
        .await?
        .ok_or_else(|| {
            Error::invalid(
                "venueId",
                "this venue has no pricing in force and cannot take bookings yet",
            )
        })?;
    let repeat_customer = pricing::is_repeat_customer(db, guest.id, venue.id).await?;
    let quote = pricing::quote(
        &pricing_row,
        &PricingRequest {
            booking_type: input.booking_type,
            diners: input.diners,
            booking_time: input.booking_time,
            now,
            repeat_customer,
        },
    )?;
    let month = commissions::month::venue_month(&venue, now)?;
    let auto_confirm = venue.auto_confirm_bookings && !venue.require_approval;

    // 4. One transaction, run again from the start on a transient failure.
    let status = if auto_confirm {
        BookingStatus::Confirmed
    } else {
        BookingStatus::Pending
    };
    let (input, venue, guest, key) = (&input, &venue, &guest, &key);
    let (quote, pricing_row) = (&quote, &pricing_row);
    let (special_requests, notes) = (&special_requests, &notes);
    crate::db::retry_transient(CREATE_BOOKING, || async move {
        let txn = db.begin().await?;
        let row = bookings::ActiveModel {
            id: Set(Uuid::new_v4()),
            venue_id: Set(venue.id),
            promoter_id: Set(input.promoter_id),
            guest_id: Set(guest.id),
            diners: Set(input.diners),
            booking_time: Set(input.booking_time),
            duration_minutes: Set(duration),
            special_requests: Set(special_requests.clone()),
            notes: Set(notes.clone()),
            r#type: Set(input.booking_type),
            source: Set(source),
            status: Set(status),
            base_fee: Set(quote.base_fee),
            platform_fee: Set(quote.platform_fee),
            total_fee: Set(quote.total_fee),
            promoter_commission: Set(0),
            confirmed_at: Set(auto_confirm.then_some(now)),
            cancelled_at: Set(None),
            no_show_at: Set(None),
            completed_at: Set(None),
            ip_address: Set(truncate(input.client.ip_address.clone(), 45)),
            user_agent: Set(truncate(input.client.user_agent.clone(), 1000)),
            referrer: Set(truncate(input.client.referrer.clone(), 255)),
            created_at: Set(now),
            updated_at: Set(now),
        };
        let mut booking = bookings::Entity::insert(row)
            .exec_with_returning(&txn)
            .await?;
        aggregates::apply(&txn, None, &booking, month, now).await?;
        progress::apply(&txn, None, &booking, now).await?;
        let commission = if auto_confirm {
            confirm_ledger(&txn, &mut booking, venue, now).await?
        } else {
            None
        };
        let mut metadata = json!({
            "pricing_id": pricing_row.id,
            "discount": quote.discount.as_ref().map(|d| d.kind.as_str()),
            "minimum_applied": quote.minimum_applied,
        });
        if let (Some(c), serde_json::Value::Object(map)) = (&commission, &mut metadata) {
            map.insert("commission".into(), commission_json(c));
        }
        history(
            &txn,
            actor,
            &booking,
            BookingAction::Created,
            None,
            json!({
                "status": booking.status,
                "diners": booking.diners,
                "booking_time": booking.booking_time,
                "type": booking.r#type,
                "source": booking.source,
                "base_fee": cents(booking.base_fee).to_string(),
                "platform_fee": cents(booking.platform_fee).to_string(),
                "total_fee": cents(booking.total_fee).to_string(),
            }),
            None,
            Some(metadata),
            now,
        )
        .await?;
        if let Some(key) = key {
            match idempotency::record(&txn, actor.user_id, key, booking.id, now).await {
                Ok(()) => {}
                Err(Error::Conflict(_)) => {
                    // A concurrent first use of the key committed first: undo this one and
                    // answer as its retry.
                    drop(txn);
                    return match idempotency::lookup(db, actor.user_id, key, now).await? {
                        Seen::Replay(id) => crate::bookings::get(db, actor, id).await,
                        Seen::New => Err(Error::Conflict(
                            "a request with this idempotency key is in progress; retry".into(),
                        )),
                    };
                }
                Err(other) => return Err(other),
            }
        }
        outbox::booking_changed(&txn, BookingAction::Created, None, &booking, now).await?;
        txn.commit().await?;
        tracing::info!(booking = %booking.id, status = %booking.status, "booking created");
        Ok(booking)
    })
    .await
}

// ---------------------------------------------------------------------------------------
// Editing
// ---------------------------------------------------------------------------------------

/// Edits a PENDING or CONFIRMED booking's time, party size, duration, notes or special
/// requests (COORDINATOR or above) and returns it. While PENDING a new time or party size
/// re-prices it (see the module documentation); once CONFIRMED the price is kept. Every
/// edit is a history row (`UPDATED`, previous and new values of what changed). A change
/// that changes nothing writes nothing and returns the booking.
pub async fn update_booking(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    changes: BookingChanges,
) -> Result<bookings::Model> {
    update_booking_at(db, actor, id, changes, crate::time::now()).await
}

/// [`update_booking`] at a given instant.
#[tracing::instrument(skip_all, fields(booking = %id))]
pub async fn update_booking_at(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    changes: BookingChanges,
    now: DateTime<Utc>,
) -> Result<bookings::Model> {
    if let Some(duration) = changes.duration_minutes {
        check_duration(duration)?;
    }
    let notes = changes
        .notes
        .as_deref()
        .map(|text| optional_text("notes", Some(text), MAX_TEXT))
        .transpose()?;
    let special_requests = changes
        .special_requests
        .as_deref()
        .map(|text| optional_text("specialRequests", Some(text), MAX_TEXT))
        .transpose()?;
    if let Some(at) = changes.booking_time
        && at <= now
    {
        return Err(Error::invalid(
            "bookingTime",
            "`bookingTime` must be in the future",
        ));
    }

    let before = crate::bookings::get(db, actor, id).await?;
    actor
        .require(before.venue_id, Capability::WriteBookings)
        .map_err(not_found_as("booking"))?;
    if !matches!(
        before.status,
        BookingStatus::Pending | BookingStatus::Confirmed
    ) {
        return Err(Error::Conflict(format!(
            "this booking is {}: only a PENDING or CONFIRMED booking can be edited",
            before.status
        )));
    }
    let venue = venues::Entity::find_by_id(before.venue_id)
        .one(db)
        .await?
        .ok_or(Error::NotFound { what: "booking" })?;

    let mut after = before.clone();
    if let Some(at) = changes.booking_time {
        after.booking_time = at;
    }
    if let Some(diners) = changes.diners {
        after.diners = diners;
    }
    if let Some(duration) = changes.duration_minutes {
        after.duration_minutes = duration;
    }
    if let Some(notes) = notes {
        after.notes = notes;
    }
    if let Some(requests) = special_requests {
        after.special_requests = requests;
    }

    // The price: re-computed while PENDING, kept once CONFIRMED; the party limits of the
    // booking's pricing row apply either way.
    let priced = after.diners != before.diners || after.booking_time != before.booking_time;
    let mut repriced: Option<(Uuid, Quote)> = None;
    if priced {
        let row = pricing::pricing_in_force(db, venue.id, before.created_at)
            .await?
            .ok_or_else(|| {
                Error::Conflict("the pricing this booking was made under is gone".into())
            })?;
        let repeat_customer =
            pricing::was_repeat_customer(db, before.guest_id, venue.id, Some(before.created_at))
                .await?;
        let quote = pricing::quote(
            &row,
            &PricingRequest {
                booking_type: before.r#type,
                diners: after.diners,
                booking_time: after.booking_time,
                now: before.created_at,
                repeat_customer,
            },
        )?;
        if before.status == BookingStatus::Pending {
            after.base_fee = quote.base_fee;
            after.platform_fee = quote.platform_fee;
            after.total_fee = quote.total_fee;
            repriced = Some((row.id, quote));
        }
    }

    let (previous, new) = changed_fields(&before, &after);
    if previous.is_empty() {
        return Ok(before);
    }
    let month = commissions::month::venue_month(&venue, now)?;

    let (before, after, previous, new, repriced) = (&before, &after, &previous, &new, &repriced);
    crate::db::retry_transient("updateBooking", || async move {
        let txn = db.begin().await?;
        let updated = bookings::Entity::update_many()
            .col_expr(
                bookings::Column::BookingTime,
                Expr::value(after.booking_time),
            )
            .col_expr(bookings::Column::Diners, Expr::value(after.diners))
            .col_expr(
                bookings::Column::DurationMinutes,
                Expr::value(after.duration_minutes),
            )
            .col_expr(bookings::Column::Notes, Expr::value(after.notes.clone()))
            .col_expr(
                bookings::Column::SpecialRequests,
                Expr::value(after.special_requests.clone()),
            )
            .col_expr(bookings::Column::BaseFee, Expr::value(after.base_fee))
            .col_expr(
                bookings::Column::PlatformFee,
                Expr::value(after.platform_fee),
            )
            .col_expr(bookings::Column::TotalFee, Expr::value(after.total_fee))
            .col_expr(bookings::Column::UpdatedAt, Expr::value(now))
            .filter(bookings::Column::Id.eq(id))
            .filter(bookings::Column::Status.eq(before.status))
            .filter(bookings::Column::UpdatedAt.eq(before.updated_at))
            .exec_with_returning(&txn)
            .await?;
        let Some(booking) = updated.into_iter().next() else {
            drop(txn);
            return Err(Error::Conflict(
                "this booking was changed by someone else meanwhile; reload it and try again".into(),
            ));
        };
        aggregates::apply(&txn, Some(before), &booking, month, now).await?;
        progress::apply(&txn, Some(before), &booking, now).await?;
        let metadata = json!({
            "repriced": repriced.is_some(),
            "pricing_id": repriced.as_ref().map(|(id, _)| *id),
            "discount": repriced.as_ref().and_then(|(_, q)| q.discount.as_ref().map(|d| d.kind.as_str())),
        });
        history(
            &txn,
            actor,
            &booking,
            BookingAction::Updated,
            Some(serde_json::Value::Object(previous.clone())),
            serde_json::Value::Object(new.clone()),
            None,
            Some(metadata),
            now,
        )
        .await?;
        outbox::booking_changed(
            &txn,
            BookingAction::Updated,
            Some(before.status),
            &booking,
            now,
        )
        .await?;
        txn.commit().await?;
        Ok(booking)
    })
    .await
}

/// The fields that differ, as (previous, new) JSON objects of history.
fn changed_fields(
    before: &bookings::Model,
    after: &bookings::Model,
) -> (
    serde_json::Map<String, serde_json::Value>,
    serde_json::Map<String, serde_json::Value>,
) {
    let mut previous = serde_json::Map::new();
    let mut new = serde_json::Map::new();
    let mut diff = |name: &str, old: serde_json::Value, now: serde_json::Value| {
        if old != now {
            previous.insert(name.to_owned(), old);
            new.insert(name.to_owned(), now);
        }
    };
    diff(
        "booking_time",
        json!(before.booking_time),
        json!(after.booking_time),
    );
    diff("diners", json!(before.diners), json!(after.diners));
    diff(
        "duration_minutes",
        json!(before.duration_minutes),
        json!(after.duration_minutes),
    );
    diff("notes", json!(before.notes), json!(after.notes));
    diff(
        "special_requests",
        json!(before.special_requests),
        json!(after.special_requests),
    );
    let money = |units: i64| json!(cents(units).to_string());
    diff("base_fee", money(before.base_fee), money(after.base_fee));
    diff(
        "platform_fee",
        money(before.platform_fee),
        money(after.platform_fee),
    );
    diff("total_fee", money(before.total_fee), money(after.total_fee));
    (previous, new)
}

// ---------------------------------------------------------------------------------------
// Status changes
// ---------------------------------------------------------------------------------------

/// Confirms a PENDING booking (MANAGER or above): its fees, and its promoter's commission
/// when one is due, go on the ledger as PENDING transactions.
pub async fn confirm_booking(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
) -> Result<bookings::Model> {
    transition_at(db, actor, id, Transition::Confirm, crate::time::now()).await
}

/// Cancels a PENDING or CONFIRMED booking before its time (any venue role), with a reason;
/// its PENDING transactions are cancelled.
pub async fn cancel_booking(
    db: &DatabaseConnection,
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
pub async fn complete_booking(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
) -> Result<bookings::Model> {
    transition_at(db, actor, id, Transition::Complete, crate::time::now()).await
}

/// Marks a CONFIRMED booking as a no-show at or after its time: the venue keeps its fees
/// (CONFIRMED), the promoter's commission is cancelled.
pub async fn mark_no_show(
    db: &DatabaseConnection,
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
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    transition: Transition,
    now: DateTime<Utc>,
) -> Result<bookings::Model> {
    let transition = match transition {
        Transition::Cancel { reason } => Transition::Cancel {
            reason: crate::validate::required_text("reason", &reason, MAX_TEXT)?,
        },
        Transition::NoShow { reason } => Transition::NoShow {
            reason: optional_text("reason", reason.as_deref(), MAX_TEXT)?,
        },
        other => other,
    };
    let before = crate::bookings::get(db, actor, id).await?;
    actor
        .require(before.venue_id, transition.capability())
        .map_err(not_found_as("booking"))?;
    check_transition(before.status, &transition, before.booking_time, now)?;
    let venue = venues::Entity::find_by_id(before.venue_id)
        .one(db)
        .await?
        .ok_or(Error::NotFound { what: "booking" })?;
    let month = commissions::month::venue_month(&venue, now)?;
    let target = transition.target();

    let (transition, venue) = (&transition, &venue);
    crate::db::retry_transient(transition.mutation(), || async move {
        let txn = db.begin().await?;
        let mut update = bookings::Entity::update_many()
            .col_expr(bookings::Column::Status, Expr::value(target))
            .col_expr(bookings::Column::UpdatedAt, Expr::value(now))
            .filter(bookings::Column::Id.eq(id))
            .filter(bookings::Column::Status.is_in(transition.sources().iter().copied()));
        update = match transition {
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
        let updated = update.exec_with_returning(&txn).await?;
        let Some(mut booking) = updated.into_iter().next() else {
            // Someone else changed it between our read and our write: say what it is now.
            drop(txn);
            let current = crate::bookings::get(db, actor, id).await?;
            check_transition(current.status, transition, current.booking_time, now)?;
            return Err(Error::Conflict(
                "this booking was changed by someone else meanwhile; reload it and try again".into(),
            ));
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
        aggregates::apply(&txn, Some(&prior), &booking, month, now).await?;
        progress::apply(&txn, Some(&prior), &booking, now).await?;

        let mut metadata = None;
        match transition {
            Transition::Confirm => {
                let commission = confirm_ledger(&txn, &mut booking, venue, now).await?;
                metadata = commission.map(|c| json!({ "commission": commission_json(&c) }));
            }
            Transition::Cancel { .. } => {
                move_ledger(
                    &txn,
                    id,
                    TransactionStatus::Cancelled,
                    TransactionStatus::Cancelled,
                    now,
                )
                .await?;
            }
            Transition::Complete => {
                move_ledger(
                    &txn,
                    id,
                    TransactionStatus::Confirmed,
                    TransactionStatus::Confirmed,
                    now,
                )
                .await?;
            }
            Transition::NoShow { .. } => {
                move_ledger(
                    &txn,
                    id,
                    TransactionStatus::Confirmed,
                    TransactionStatus::Cancelled,
                    now,
                )
                .await?;
            }
        }
        history(
            &txn,
            actor,
            &booking,
            BookingAction::StatusChanged,
            Some(json!({ "status": previous_status })),
            json!({ "status": target }),
            transition.reason().map(str::to_owned),
            metadata,
            now,
        )
        .await?;
        outbox::booking_changed(
            &txn,
            BookingAction::StatusChanged,
            Some(previous_status),
            &booking,
            now,
        )
        .await?;
        txn.commit().await?;
        tracing::info!(booking = %id, from = %previous_status, to = %target, "booking status changed");
        Ok(booking)
    })
    .await
}

// ---------------------------------------------------------------------------------------
// The ledger
// ---------------------------------------------------------------------------------------

/// The ledger rows of a booking becoming CONFIRMED (DOMAIN.md "Transactions"): BOOKING_FEE
/// and PLATFORM_FEE, and PROMOTER_COMMISSION when the booking has a promoter and the
/// commission is above 0, all PENDING. The commission is computed here, from the
/// assignment in force at `booking_time` ([`commissions::commission_for_booking`]), stored on
/// the booking, and its rate and tier recorded on the transaction. Runs after the promoter's
/// row lock is held, so TIERED month counts of concurrent confirmations are serialised.
async fn confirm_ledger(
    txn: &impl ConnectionTrait,
    booking: &mut bookings::Model,
    venue: &venues::Model,
    now: DateTime<Utc>,
) -> Result<Option<Commission>> {
    let commission = commissions::commission_for_booking(txn, booking, venue).await?;
    let amount = commission.as_ref().map_or(0, |c| c.amount);
    if amount > 0 {
        bookings::Entity::update_many()
            .col_expr(bookings::Column::PromoterCommission, Expr::value(amount))
            .filter(bookings::Column::Id.eq(booking.id))
            .exec(txn)
            .await?;
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
    transactions::Entity::insert_many(rows)
        .exec_without_returning(txn)
        .await?;
    Ok(commission)
}

/// A new PENDING ledger row of a booking, in the venue's currency, with no promoter,
/// commission details or links; callers set what their row needs.
fn ledger_row(
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

/// Moves a booking's PENDING fee rows to `fees` and its PENDING commission row to
/// `commission`, in one statement. Amounts never change; only the status (and
/// `processed_at` for rows that become CONFIRMED).
async fn move_ledger(
    txn: &impl ConnectionTrait,
    booking: Uuid,
    fees: TransactionStatus,
    commission: TransactionStatus,
    now: DateTime<Utc>,
) -> Result<()> {
    let new_status = "CASE WHEN \"type\" = 'PROMOTER_COMMISSION' THEN $3 ELSE $2 END";
    let sql = format!(
        "UPDATE transactions SET status = {new_status}, \
           processed_at = CASE WHEN {new_status} = 'CONFIRMED' THEN $4 ELSE processed_at END, \
           updated_at = $4 \
         WHERE booking_id = $1 AND status = 'PENDING' \
           AND \"type\" IN ('BOOKING_FEE', 'PLATFORM_FEE', 'PROMOTER_COMMISSION')"
    );
    txn.execute_raw(Statement::from_sql_and_values(
        txn.get_database_backend(),
        sql,
        vec![
            booking.into(),
            fees.as_str().into(),
            commission.as_str().into(),
            now.into(),
        ],
    ))
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// Writes a booking's history row: who did it and in which role.
#[allow(clippy::too_many_arguments)]
async fn history(
    txn: &impl ConnectionTrait,
    actor: &Actor,
    booking: &bookings::Model,
    action: BookingAction,
    previous: Option<serde_json::Value>,
    new: serde_json::Value,
    reason: Option<String>,
    metadata: Option<serde_json::Value>,
    now: DateTime<Utc>,
) -> Result<()> {
    booking_history::Entity::insert(booking_history::ActiveModel {
        id: Set(Uuid::new_v4()),
        booking_id: Set(booking.id),
        action: Set(action.as_str().to_owned()),
        previous_value: Set(previous),
        new_value: Set(Some(new)),
        reason: Set(reason),
        performed_by_id: Set(Some(actor.user_id)),
        performed_by_name: Set(actor.name.clone()),
        performed_by_role: Set(role_name(actor, booking.venue_id).to_owned()),
        timestamp: Set(now),
        metadata: Set(metadata),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(())
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
fn commission_json(c: &Commission) -> serde_json::Value {
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

fn check_duration(minutes: i32) -> Result<()> {
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

/// A client-supplied header value cut to what its column holds.
fn truncate(value: Option<String>, max: usize) -> Option<String> {
    value.map(|v| v.chars().take(max).collect())
}

#[cfg(test)]
mod retry_tests;
#[cfg(test)]
mod tests;
