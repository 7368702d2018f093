//! The transactional outbox: every change that clients watch live writes one `outbox_events`
//! row in the same database transaction as the change itself, so an event exists exactly
//! when its change committed. Publishing the rows to the event bus (and replaying them to a
//! subscriber that resumes with a cursor) is the job of the real-time relay; this module
//! only appends. An append is a plain INSERT that waits for no other transaction, so it
//! comes last in the lock order of [`crate::bookings`].
//!
//! An event's cursor is its `seq`, which the relay gives committed rows in commit order
//! ([`crate::events`]); `id` only orders inserts. Its payload is self-contained JSON: for a booking, the booking as it was committed plus what changed, so
//! a replayed event shows the state at that moment rather than a later one.

use chrono::{DateTime, Utc};
use prima_entity::{bookings, outbox_events};
use sea_orm::{ActiveValue::NotSet, ActiveValue::Set, ConnectionTrait, EntityTrait};
use serde_json::json;
use uuid::Uuid;

use crate::error::Result;
use crate::tail::Tail;

/// Topic of the events describing a booking created, edited or changing status.
pub const BOOKING_CHANGED: &str = "booking.changed";

/// What happened to a booking, as recorded in its event (and in its history row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookingAction {
    /// The booking was made.
    Created,
    /// Its details (time, diners, notes, requests, duration) were edited.
    Updated,
    /// Its status moved.
    StatusChanged,
    /// Part or all of it was refunded (it stays COMPLETED).
    Refunded,
}

impl BookingAction {
    /// The stored name: `CREATED`, `UPDATED`, `STATUS_CHANGED`.
    pub fn as_str(self) -> &'static str {
        match self {
            BookingAction::Created => "CREATED",
            BookingAction::Updated => "UPDATED",
            BookingAction::StatusChanged => "STATUS_CHANGED",
            BookingAction::Refunded => "REFUNDED",
        }
    }

    /// The action a stored name stands for (an event's `action`).
    pub fn parse(name: &str) -> Option<BookingAction> {
        [
            BookingAction::Created,
            BookingAction::Updated,
            BookingAction::StatusChanged,
            BookingAction::Refunded,
        ]
        .into_iter()
        .find(|action| action.as_str() == name)
    }
}

/// Appends a row to the outbox inside the caller's transaction and returns its `id` (the
/// relay numbers it with a `seq` once it has committed).
pub async fn append(
    txn: &impl ConnectionTrait,
    topic: &str,
    venue_id: Option<Uuid>,
    payload: serde_json::Value,
    at: DateTime<Utc>,
) -> Result<i64> {
    let row = row(topic, venue_id, payload, at);
    let inserted = outbox_events::Entity::insert(row).exec(txn).await?;
    Ok(inserted.last_insert_id)
}

/// A new, unnumbered outbox row.
pub(crate) fn row(
    topic: &str,
    venue_id: Option<Uuid>,
    payload: serde_json::Value,
    at: DateTime<Utc>,
) -> outbox_events::ActiveModel {
    outbox_events::ActiveModel {
        id: NotSet,
        topic: Set(topic.to_owned()),
        venue_id: Set(venue_id),
        payload: Set(payload),
        created_at: Set(at),
        published_at: Set(None),
        seq: Set(None),
    }
}

/// Holds the [`BOOKING_CHANGED`] event of a booking change in its tail: the action, the
/// status before (`None` for a new booking) and the booking as committed.
pub fn booking_changed(
    tail: &mut Tail,
    action: BookingAction,
    previous_status: Option<prima_entity::enums::BookingStatus>,
    booking: &bookings::Model,
    at: DateTime<Utc>,
) {
    let payload = json!({
        "action": action.as_str(),
        "previousStatus": previous_status,
        "booking": booking,
    });
    tail.event(BOOKING_CHANGED, Some(booking.venue_id), payload, at);
}
