//! Live feeds over graphql-transport-ws (`/graphql/ws`). Each subscription is one service
//! call ([`prima_service::events::feed`]), which replays from the outbox after a cursor,
//! then follows the replica's event hub, and checks the subscriber's access for every event
//! and again every few seconds; this layer only parses arguments and converts events.

use std::collections::HashSet;
use std::sync::Arc;

use async_graphql::{Context, Enum, ID, Object, Subscription};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use prima_entity::bookings;
use prima_entity::enums::BookingStatus;
use prima_service::Error;
use prima_service::events::{self, Event, FeedFilter};
use prima_service::outbox::BOOKING_CHANGED;

use crate::bookings::Booking;
use crate::context::{Caller, deps};
use crate::error::{ApiError, Result, parse_id};

/// What happened to a booking.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum BookingChangeAction {
    /// The booking was made.
    Created,
    /// Its details (time, party size, duration, notes, requests) were edited.
    Updated,
    /// Its status moved.
    StatusChanged,
    /// Part or all of it was refunded.
    Refunded,
}

/// One change of a booking, as it committed.
pub struct BookingChange {
    event: Arc<Event>,
    action: BookingChangeAction,
    previous_status: Option<BookingStatus>,
    booking: bookings::Model,
}

impl BookingChange {
    fn of(event: Arc<Event>) -> Option<BookingChange> {
        let payload = &event.payload;
        let action = match payload["action"].as_str()? {
            "CREATED" => BookingChangeAction::Created,
            "UPDATED" => BookingChangeAction::Updated,
            "STATUS_CHANGED" => BookingChangeAction::StatusChanged,
            "REFUNDED" => BookingChangeAction::Refunded,
            _ => return None,
        };
        let previous_status = serde_json::from_value(payload["previousStatus"].clone()).ok();
        let booking = serde_json::from_value(payload["booking"].clone()).ok()?;
        Some(BookingChange {
            event,
            action,
            previous_status,
            booking,
        })
    }
}

/// One change of a booking, as it committed.
#[Object]
impl BookingChange {
    /// This event's cursor: pass it as `after` to resume right after it.
    async fn cursor(&self) -> String {
        events::cursor(self.event.seq)
    }

    /// What happened.
    async fn action(&self) -> BookingChangeAction {
        self.action
    }

    /// The status before the change; null for a new booking.
    async fn previous_status(&self) -> Option<BookingStatus> {
        self.previous_status
    }

    /// The booking as the change left it (its related objects are read now).
    async fn booking(&self) -> Booking {
        Booking(self.booking.clone())
    }

    /// When the change committed.
    async fn occurred_at(&self) -> DateTime<Utc> {
        self.event.created_at
    }
}

/// Every subscription.
#[derive(Default)]
pub struct Subscription;

/// Every subscription.
#[Subscription]
impl Subscription {
    /// Bookings created, edited, changing status or refunded, at the venues given (every
    /// venue you can see when left out), optionally only those now in one of `statuses`.
    /// With `after` (a `cursor` you received), every change since then is sent first, in
    /// order, then live ones: none missed, none twice. Venues you cannot see are never
    /// sent; the subscription completes within seconds if you are suspended or lose a
    /// venue you asked for.
    async fn booking_changed(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only these venues (each must be visible to you).")] venue_ids: Option<
            Vec<ID>,
        >,
        #[graphql(desc = "Only bookings whose status after the change is one of these.")]
        statuses: Option<Vec<BookingStatus>>,
        #[graphql(desc = "Resume after this cursor: replay every change since, then go live.")]
        after: Option<String>,
    ) -> Result<impl Stream<Item = BookingChange> + use<>> {
        let actor = match ctx.data_opt::<Caller>().map(|caller| &caller.0) {
            Some(Ok(actor)) => actor.clone(),
            Some(Err(err)) => return Err(ApiError(err.clone())),
            None => return Err(ApiError(Error::Unauthenticated("log in first".into()))),
        };
        let venues = venue_ids
            .map(|ids| {
                ids.iter()
                    .map(|id| parse_id("venueIds", id))
                    .collect::<Result<Vec<_>>>()
            })
            .transpose()?;
        let after = after
            .map(|cursor| events::parse_cursor(&cursor))
            .transpose()?;
        let deps = deps(ctx);
        let realtime = deps.realtime.as_ref().ok_or_else(|| {
            ApiError(Error::internal(anyhow::anyhow!(
                "subscriptions need the event hub"
            )))
        })?;
        let statuses: Option<HashSet<BookingStatus>> = statuses.map(|s| s.into_iter().collect());
        let filter = FeedFilter {
            topic: BOOKING_CHANGED,
            venues,
            accept: Box::new(move |event: &Event| match &statuses {
                None => true,
                Some(wanted) => serde_json::from_value::<BookingStatus>(
                    event.payload["booking"]["status"].clone(),
                )
                .is_ok_and(|status| wanted.contains(&status)),
            }),
        };
        let feed = events::feed(
            deps.db.conn.clone(),
            realtime.hub.clone(),
            actor,
            filter,
            after,
            realtime.feed.clone(),
        )
        .await?;
        Ok(feed.filter_map(|event| async move { BookingChange::of(event) }))
    }
}
