//! Making a booking: validation, idempotency, pricing, and the booking's first transaction
//! (PENDING, or CONFIRMED with its ledger rows at an auto-confirming venue).

use chrono::{DateTime, Utc};
use prima_entity::enums::{
    BookingSource, BookingStatus, BookingType, GuestStatus, PromoterStatus, VenueStatus,
};
use prima_entity::{bookings, promoters, venues};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use super::aggregates;
use super::change::{MAX_TEXT, check_duration, commission_json, confirm_ledger, history};
use crate::access::{Actor, Capability};
use crate::commissions;
use crate::error::{Error, Result};
use crate::events::outbox::{self, BookingAction};
use crate::idempotency::{self, Seen};
use crate::incentives::progress;
use crate::money::cents;
use crate::pricing::{self, PricingRequest};
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

/// A client-supplied header value cut to what its column holds.
fn truncate(value: Option<String>, max: usize) -> Option<String> {
    value.map(|v| v.chars().take(max).collect())
}
