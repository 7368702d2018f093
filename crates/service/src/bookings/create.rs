//! Making a booking: validation, idempotency, pricing, and the booking's first transaction
//! (PENDING, or CONFIRMED with its ledger rows at an auto-confirming venue).

use chrono::{DateTime, Utc};
use prima_entity::enums::{
    BookingSource, BookingStatus, BookingType, GuestStatus, PromoterStatus, VenueStatus,
};
use prima_entity::{bookings, guests, promoters, venue_pricing, venues};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};
use serde_json::json;
use uuid::Uuid;

use super::change::{
    Change, Counters, Ending, Entry, Held, MAX_TEXT, check_duration, commission_json,
    confirm_ledger, finish,
};
use crate::access::{Actor, Capability};
use crate::commissions;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::events::outbox::BookingAction;
use crate::idempotency::{self, Seen};
use crate::money::cents;
use crate::pricing::{self, PricingRequest, Quote};
use crate::validate::optional_text;

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

/// Makes a booking (COORDINATOR or above at the venue) and returns it.
///
/// It is priced with the venue's pricing in force now ([`pricing::quote`]); it starts
/// CONFIRMED when the venue has `auto_confirm_bookings` and not `require_approval` (with its
/// ledger rows and commission, as [`confirm`](super::transition::Transition::Confirm)
/// writes them), PENDING otherwise. With an idempotency key, a retry with the same input returns the first
/// booking (as it is now) and writes nothing; the same key with other input is CONFLICT.
///
/// Refused with BAD_USER_INPUT, writing nothing: `diners` outside 1..=50 or the venue's party
/// limits, `bookingTime` not in the future, `venueId` of a venue that is not ACTIVE or has
/// no pricing, `guestId` of a BLOCKED guest, `promoterId` of a promoter that is not the
/// venue's or not ACTIVE, `source` PROMOTER without a promoter, a bad duration or text.
pub async fn create_booking(
    db: &Db,
    actor: &Actor,
    input: NewBooking,
    idempotency_key: Option<&str>,
) -> Result<bookings::Model> {
    create_booking_at(db, actor, input, idempotency_key, crate::time::now()).await
}

/// [`create_booking`] at a given instant.
#[tracing::instrument(skip_all, fields(venue = %input.venue_id))]
pub async fn create_booking_at(
    db: &Db,
    actor: &Actor,
    input: NewBooking,
    idempotency_key: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bookings::Model> {
    // 1. Input that needs no database.
    let checked = validate(&input, idempotency_key)?;

    // 2. A retry answers with the first result.
    if let Some(key) = &checked.key
        && let Seen::Replay(id) = idempotency::lookup(&db.conn, actor.user_id, key, now).await?
    {
        return crate::bookings::get(&db.conn, actor, id).await;
    }

    // 3. The caller, the venue, the guest, the promoter and the price.
    let priced = load_and_price(db, actor, &input, now).await?;

    // 4. One transaction, run again from the start on a transient failure.
    let (input, checked, priced) = (&input, &checked, &priced);
    crate::db::retry_transient(CREATE_BOOKING, || async move {
        write(db, actor, input, checked, priced, now).await
    })
    .await
}

/// A new booking's input as checked before the database is asked anything.
struct Checked {
    duration: i32,
    special_requests: Option<String>,
    notes: Option<String>,
    source: BookingSource,
    key: Option<idempotency::Key>,
}

/// Checks what needs no database: the duration, the texts, the source, and the key's
/// fingerprint of the request.
fn validate(input: &NewBooking, idempotency_key: Option<&str>) -> Result<Checked> {
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
    Ok(Checked {
        duration,
        special_requests,
        notes,
        source,
        key,
    })
}

/// What the booking is made under: its venue and guest, the pricing row and price in force,
/// the venue's month and whether it starts CONFIRMED.
struct Priced {
    venue: venues::Model,
    guest: guests::Model,
    pricing_row: venue_pricing::Model,
    quote: Quote,
    month: (DateTime<Utc>, DateTime<Utc>),
    auto_confirm: bool,
}

/// Checks the caller's role, the venue, the guest and the promoter, and prices the booking
/// with the pricing in force at `now`.
async fn load_and_price(
    db: &Db,
    actor: &Actor,
    input: &NewBooking,
    now: DateTime<Utc>,
) -> Result<Priced> {
    let db = &db.conn;
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
        check_promoter(db, &venue, promoter_id).await?;
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
    Ok(Priced {
        venue,
        guest,
        pricing_row,
        quote,
        month,
        auto_confirm,
    })
}

/// The promoter must be the venue's and ACTIVE.
async fn check_promoter(
    db: &sea_orm::DatabaseConnection,
    venue: &venues::Model,
    promoter_id: Uuid,
) -> Result<()> {
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
    Ok(())
}

/// The booking's transaction: the INSERT, then [`finish`] with the ledger rows of an
/// auto-confirmed booking.
async fn write(
    db: &Db,
    actor: &Actor,
    input: &NewBooking,
    checked: &Checked,
    priced: &Priced,
    now: DateTime<Utc>,
) -> Result<bookings::Model> {
    let txn = db.conn.begin().await?;
    let booking = bookings::Entity::insert(new_row(input, checked, priced, now))
        .exec_with_returning(&txn)
        .await?;
    let change = Change {
        actor,
        action: BookingAction::Created,
        counters: Counters::New {
            month: priced.month,
        },
        key: checked.key.as_ref(),
        now,
    };
    let ledger = async |held: &mut Held<'_>, booking: &mut bookings::Model| {
        let commission = if priced.auto_confirm {
            confirm_ledger(held, booking, &priced.venue, now).await?
        } else {
            None
        };
        Ok((created_entry(booking, priced, commission.as_ref()), ()))
    };
    match finish(db, txn, change, booking, ledger).await? {
        Ending::Committed(booking, ()) => {
            tracing::info!(booking = %booking.id, status = %booking.status, "booking created");
            Ok(booking)
        }
        Ending::Replay(id) => crate::bookings::get(&db.conn, actor, id).await,
    }
}

/// The new booking's row: PENDING, or CONFIRMED now at an auto-confirming venue.
fn new_row(
    input: &NewBooking,
    checked: &Checked,
    priced: &Priced,
    now: DateTime<Utc>,
) -> bookings::ActiveModel {
    let status = if priced.auto_confirm {
        BookingStatus::Confirmed
    } else {
        BookingStatus::Pending
    };
    let quote = &priced.quote;
    bookings::ActiveModel {
        id: Set(Uuid::new_v4()),
        venue_id: Set(priced.venue.id),
        promoter_id: Set(input.promoter_id),
        guest_id: Set(priced.guest.id),
        diners: Set(input.diners),
        booking_time: Set(input.booking_time),
        duration_minutes: Set(checked.duration),
        special_requests: Set(checked.special_requests.clone()),
        notes: Set(checked.notes.clone()),
        r#type: Set(input.booking_type),
        source: Set(checked.source),
        status: Set(status),
        base_fee: Set(quote.base_fee),
        platform_fee: Set(quote.platform_fee),
        total_fee: Set(quote.total_fee),
        promoter_commission: Set(0),
        confirmed_at: Set(priced.auto_confirm.then_some(now)),
        cancelled_at: Set(None),
        no_show_at: Set(None),
        completed_at: Set(None),
        ip_address: Set(truncate(input.client.ip_address.clone(), 45)),
        user_agent: Set(truncate(input.client.user_agent.clone(), 1000)),
        referrer: Set(truncate(input.client.referrer.clone(), 255)),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

/// The history of a new booking: its state and price, and what it was priced under (and
/// the commission, when it was confirmed at once).
fn created_entry(
    booking: &bookings::Model,
    priced: &Priced,
    commission: Option<&commissions::rules::Commission>,
) -> Entry {
    let quote = &priced.quote;
    let mut metadata = json!({
        "pricing_id": priced.pricing_row.id,
        "discount": quote.discount.as_ref().map(|d| d.kind.as_str()),
        "minimum_applied": quote.minimum_applied,
    });
    if let (Some(c), serde_json::Value::Object(map)) = (commission, &mut metadata) {
        map.insert("commission".into(), commission_json(c));
    }
    Entry {
        previous: None,
        new: json!({
            "status": booking.status,
            "diners": booking.diners,
            "booking_time": booking.booking_time,
            "type": booking.r#type,
            "source": booking.source,
            "base_fee": cents(booking.base_fee).to_string(),
            "platform_fee": cents(booking.platform_fee).to_string(),
            "total_fee": cents(booking.total_fee).to_string(),
        }),
        reason: None,
        metadata: Some(metadata),
    }
}

/// A client-supplied header value cut to what its column holds.
fn truncate(value: Option<String>, max: usize) -> Option<String> {
    value.map(|v| v.chars().take(max).collect())
}
