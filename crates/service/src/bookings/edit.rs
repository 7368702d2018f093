//! Editing a PENDING or CONFIRMED booking's details.
//!
//! Price rules for edits (documented for the API in `updateBooking`): while a booking is
//! PENDING a change of time or party size re-prices it with the pricing row that was in force
//! when the booking was made (later pricing changes never touch existing bookings) and the
//! discounts that qualify for the new details, as of the booking's creation; once CONFIRMED
//! the price and the commission are locked: the new details are recorded, the fees are not
//! touched (the ledger already holds them).
//!

use chrono::{DateTime, Utc};
use prima_entity::enums::BookingStatus;
use prima_entity::{bookings, venues};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, QueryFilter,
    TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use super::change::{Change, Counters, Entry, MAX_TEXT, changed_meanwhile, check_duration, finish};
use crate::access::{Actor, Capability, not_found_as};
use crate::commissions;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::events::outbox::BookingAction;
use crate::money::cents;
use crate::pricing::{self, PricingRequest, Quote};
use crate::validate::optional_text;

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

/// Edits a PENDING or CONFIRMED booking's time, party size, duration, notes or special
/// requests (COORDINATOR or above) and returns it. While PENDING a new time or party size
/// re-prices it (see the module documentation); once CONFIRMED the price is kept. Every
/// edit is a history row (`UPDATED`, previous and new values of what changed). A change
/// that changes nothing writes nothing and returns the booking.
pub async fn update_booking(
    db: &Db,
    actor: &Actor,
    id: Uuid,
    changes: BookingChanges,
) -> Result<bookings::Model> {
    update_booking_at(db, actor, id, changes, crate::time::now()).await
}

/// [`update_booking`] at a given instant.
#[tracing::instrument(skip_all, fields(booking = %id))]
pub async fn update_booking_at(
    db: &Db,
    actor: &Actor,
    id: Uuid,
    changes: BookingChanges,
    now: DateTime<Utc>,
) -> Result<bookings::Model> {
    let texts = validate(&changes, now)?;
    let (before, venue) = load(&db.conn, actor, id).await?;
    let mut after = edited(&before, &changes, texts);
    let repriced = price(&db.conn, &venue, &before, &mut after).await?;
    let (previous, new) = changed_fields(&before, &after);
    if previous.is_empty() {
        return Ok(before);
    }
    let month = commissions::month::venue_month(&venue, now)?;

    let edit = &Edit {
        before,
        after,
        previous,
        new,
        repriced,
        month,
    };
    crate::db::retry_transient("updateBooking", || async move {
        write(db, actor, edit, now).await
    })
    .await
}

/// New texts, each `None` when not given and `Some(None)` when cleared.
struct Texts {
    notes: Option<Option<String>>,
    special_requests: Option<Option<String>>,
}

/// Checks what needs no database: the duration, the texts, a time in the future.
fn validate(changes: &BookingChanges, now: DateTime<Utc>) -> Result<Texts> {
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
    Ok(Texts {
        notes,
        special_requests,
    })
}

/// The booking (PENDING or CONFIRMED, editable by the caller) and its venue.
async fn load(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
) -> Result<(bookings::Model, venues::Model)> {
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
    Ok((before, venue))
}

/// The booking with the changes applied (its price not yet).
fn edited(before: &bookings::Model, changes: &BookingChanges, texts: Texts) -> bookings::Model {
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
    if let Some(notes) = texts.notes {
        after.notes = notes;
    }
    if let Some(requests) = texts.special_requests {
        after.special_requests = requests;
    }
    after
}

/// The price: re-computed while PENDING, kept once CONFIRMED; the party limits of the
/// booking's pricing row apply either way. Returns the pricing row and quote it was
/// re-priced with.
async fn price(
    db: &DatabaseConnection,
    venue: &venues::Model,
    before: &bookings::Model,
    after: &mut bookings::Model,
) -> Result<Option<(Uuid, Quote)>> {
    let priced = after.diners != before.diners || after.booking_time != before.booking_time;
    if !priced {
        return Ok(None);
    }
    let row = pricing::pricing_in_force(db, venue.id, before.created_at)
        .await?
        .ok_or_else(|| Error::Conflict("the pricing this booking was made under is gone".into()))?;
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
    if before.status != BookingStatus::Pending {
        return Ok(None);
    }
    after.base_fee = quote.base_fee;
    after.platform_fee = quote.platform_fee;
    after.total_fee = quote.total_fee;
    Ok(Some((row.id, quote)))
}

/// An edit ready to write.
struct Edit {
    before: bookings::Model,
    after: bookings::Model,
    previous: serde_json::Map<String, serde_json::Value>,
    new: serde_json::Map<String, serde_json::Value>,
    repriced: Option<(Uuid, Quote)>,
    month: (DateTime<Utc>, DateTime<Utc>),
}

/// The edit's transaction: the conditional UPDATE, then [`finish`].
async fn write(db: &Db, actor: &Actor, edit: &Edit, now: DateTime<Utc>) -> Result<bookings::Model> {
    let txn = db.conn.begin().await?;
    let Some(booking) = update_details(&txn, &edit.before, &edit.after, now).await? else {
        drop(txn);
        return Err(changed_meanwhile());
    };
    let change = Change {
        actor,
        action: BookingAction::Updated,
        counters: Counters::From {
            before: &edit.before,
            month: edit.month,
        },
        key: None,
        now,
    };
    let repriced = &edit.repriced;
    let entry = Entry {
        previous: Some(serde_json::Value::Object(edit.previous.clone())),
        new: serde_json::Value::Object(edit.new.clone()),
        reason: None,
        metadata: Some(json!({
            "repriced": repriced.is_some(),
            "pricing_id": repriced.as_ref().map(|(id, _)| *id),
            "discount": repriced.as_ref().and_then(|(_, q)| q.discount.as_ref().map(|d| d.kind.as_str())),
        })),
    };
    let ending = finish(db, txn, change, booking, async |_: &mut _, _: &mut _| {
        Ok((entry, ()))
    })
    .await?;
    Ok(ending.committed().0)
}

/// The booking's new details and price, written only if it is still as it was read (same
/// status and `updated_at`); `None` when someone else changed it meanwhile.
async fn update_details(
    txn: &DatabaseTransaction,
    before: &bookings::Model,
    after: &bookings::Model,
    now: DateTime<Utc>,
) -> Result<Option<bookings::Model>> {
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
        .filter(bookings::Column::Id.eq(before.id))
        .filter(bookings::Column::Status.eq(before.status))
        .filter(bookings::Column::UpdatedAt.eq(before.updated_at))
        .exec_with_returning(txn)
        .await?;
    Ok(updated.into_iter().next())
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
