//! Live feeds over graphql-transport-ws (`/graphql/ws`). Each subscription is one service
//! call ([`prima_service::events::feed::feed`]), which replays from the outbox after a cursor,
//! then follows the replica's event hub, and checks the subscriber's access for every event
//! and again every few seconds. What a subscription delivers, and the capability it needs,
//! come from the domain ([`prima_service::bookings::change_feed_filter`],
//! [`prima_service::incentives::progress::progress_feed_filter`]); this layer only parses
//! arguments and converts events.

use std::sync::Arc;

use async_graphql::{Context, Enum, ID, Object, Subscription};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use prima_entity::enums::{BookingStatus, PayoutStatus};
use prima_entity::{bookings, incentive_progress, payouts};
use prima_service::Error;
use prima_service::access::Actor;
use prima_service::events::outbox::BookingAction;
use prima_service::events::{self, Event};
use prima_service::payouts::PayoutAction;
use uuid::Uuid;

use crate::boards::Standings;
use crate::bookings::Booking;
use crate::context::{Caller, deps};
use crate::error::{ApiError, Result, parse_id};
use crate::incentives::IncentiveProgress;
use crate::payouts::Payout;

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
        let action = match BookingAction::parse(payload["action"].as_str()?)? {
            BookingAction::Created => BookingChangeAction::Created,
            BookingAction::Updated => BookingChangeAction::Updated,
            BookingAction::StatusChanged => BookingChangeAction::StatusChanged,
            BookingAction::Refunded => BookingChangeAction::Refunded,
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
        events::feed::cursor(self.event.seq)
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

/// One change of a payout (generated, a status step, a hold placed or released), as it
/// committed.
pub struct PayoutChange {
    event: Arc<Event>,
    action: PayoutAction,
    previous_status: Option<PayoutStatus>,
    payout: payouts::Model,
}

impl PayoutChange {
    fn of(event: Arc<Event>) -> Option<PayoutChange> {
        let payload = &event.payload;
        let action = serde_json::from_value(payload["action"].clone()).ok()?;
        let previous_status = serde_json::from_value(payload["previousStatus"].clone()).ok();
        let payout = serde_json::from_value(payload["payout"].clone()).ok()?;
        Some(PayoutChange {
            event,
            action,
            previous_status,
            payout,
        })
    }
}

/// What happened to a payout.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "prima_service::payouts::PayoutAction")]
pub enum PayoutChangeAction {
    /// Generated (DRAFT).
    Generated,
    /// Submitted for approval.
    Submitted,
    /// Approved.
    Approved,
    /// Sent back to DRAFT.
    ReturnedToDraft,
    /// Sent for payment (PROCESSING).
    ProcessingStarted,
    /// Paid (COMPLETED); its transactions are settled.
    Completed,
    /// The payment failed (FAILED); its transactions are released.
    Failed,
    /// A hold was placed.
    HoldPlaced,
    /// A hold was released.
    HoldReleased,
}

/// One change of a payout, as it committed.
#[Object]
impl PayoutChange {
    /// This event's cursor: pass it as `after` to resume right after it.
    async fn cursor(&self) -> String {
        events::feed::cursor(self.event.seq)
    }

    /// What happened.
    async fn action(&self) -> PayoutChangeAction {
        self.action.into()
    }

    /// The status before; null for a payout just generated.
    async fn previous_status(&self) -> Option<PayoutStatus> {
        self.previous_status
    }

    /// The payout as the change left it (its related objects are read now).
    async fn payout(&self) -> Payout {
        Payout(self.payout.clone())
    }

    /// When the change committed.
    async fn occurred_at(&self) -> DateTime<Utc> {
        self.event.created_at
    }
}

/// A promoter's progress in a programme changed.
pub struct IncentiveProgressChange {
    event: Arc<Event>,
    progress: incentive_progress::Model,
    just_achieved: bool,
}

impl IncentiveProgressChange {
    fn of(event: Arc<Event>) -> Option<IncentiveProgressChange> {
        let progress = serde_json::from_value(event.payload["progress"].clone()).ok()?;
        let just_achieved = event.payload["justAchieved"].as_bool().unwrap_or(false);
        Some(IncentiveProgressChange {
            event,
            progress,
            just_achieved,
        })
    }
}

/// A promoter's progress in a programme changed.
#[Object]
impl IncentiveProgressChange {
    /// This event's cursor: pass it as `after` to resume right after it.
    async fn cursor(&self) -> String {
        events::feed::cursor(self.event.seq)
    }

    /// The progress as the change left it.
    async fn progress(&self) -> IncentiveProgress {
        IncentiveProgress {
            row: self.progress.clone(),
            rank: None,
            promoter: None,
        }
    }

    /// This change met the programme's target (the progress became ACHIEVED).
    async fn just_achieved(&self) -> bool {
        self.just_achieved
    }

    /// When the change committed.
    async fn occurred_at(&self) -> DateTime<Utc> {
        self.event.created_at
    }
}

/// A programme's leaderboard as it stands.
pub struct LeaderboardUpdate {
    cursor: Option<String>,
    entries: Vec<IncentiveProgress>,
}

/// A programme's leaderboard as it stands.
#[Object]
impl LeaderboardUpdate {
    /// The cursor of the last progress change it includes; null for the first push, made
    /// when subscribing.
    async fn cursor(&self) -> Option<String> {
        self.cursor.clone()
    }

    /// The top participants by value, highest first (equal values by promoter id), each
    /// with its competition rank (1, 2, 2, 4).
    async fn entries(&self) -> Vec<IncentiveProgress> {
        self.entries.clone()
    }
}

pub use crate::boards::LEADERBOARD_INTERVAL;

/// How long a new leaderboard subscriber waits for its programme's first standings.
const FIRST_STANDINGS_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The events of a feed over venues (`bookingChanged`, `payoutChanged`): the caller first,
/// then its `venueIds` and `after` parsed, then the domain's filter for those venues
/// (`filter`) applied from the cursor on: replay, then live.
async fn venue_feed(
    ctx: &Context<'_>,
    venue_ids: Option<Vec<ID>>,
    after: Option<String>,
    filter: impl FnOnce(Option<Vec<Uuid>>) -> events::feed::FeedFilter,
) -> Result<futures::stream::BoxStream<'static, Arc<Event>>> {
    let actor = subscriber(ctx)?;
    let venues = venue_ids
        .map(|ids| {
            ids.iter()
                .map(|id| parse_id("venueIds", id))
                .collect::<Result<Vec<_>>>()
        })
        .transpose()?;
    let after = after
        .map(|cursor| events::feed::parse_cursor(&cursor))
        .transpose()?;
    let realtime = realtime(ctx)?;
    let feed = events::feed::feed(
        deps(ctx).db.conn.clone(),
        realtime.hub.clone(),
        actor,
        filter(venues),
        after,
        feed_options(ctx, realtime),
    )
    .await?;
    Ok(feed.boxed())
}

/// The caller as an `Arc`, or UNAUTHENTICATED.
fn subscriber(ctx: &Context<'_>) -> Result<Arc<Actor>> {
    match ctx.data_opt::<Caller>().map(|caller| &caller.0) {
        Some(Ok(actor)) => Ok(actor.clone()),
        Some(Err(err)) => Err(ApiError(err.clone())),
        None => Err(ApiError(Error::Unauthenticated("log in first".into()))),
    }
}

fn realtime<'a>(ctx: &Context<'a>) -> Result<&'a crate::context::RealTime> {
    deps(ctx).realtime.as_ref().ok_or_else(|| {
        ApiError(Error::internal(anyhow::anyhow!(
            "subscriptions need the event hub"
        )))
    })
}

/// How a subscription's feed runs: the replica's settings, serving the audience the
/// request brings when it is a stream several subscriptions share (the WebSocket
/// endpoint's), else itself alone.
fn feed_options(
    ctx: &Context<'_>,
    realtime: &crate::context::RealTime,
) -> events::feed::FeedOptions {
    let mut options = realtime.feed.clone();
    options.audience = ctx.data_opt::<events::hub::Audience>().cloned();
    options
}

/// The progress events of one programme, for subscribers who may see it.
async fn progress_feed(
    ctx: &Context<'_>,
    incentive_id: &ID,
    after: Option<i64>,
) -> Result<(
    impl Stream<Item = Arc<Event>> + Send + 'static + use<>,
    Arc<Actor>,
    Uuid,
)> {
    let actor = subscriber(ctx)?;
    let id = parse_id("incentiveId", incentive_id)?;
    let db = &deps(ctx).db.conn;
    let filter = prima_service::incentives::progress::progress_feed_filter(db, &actor, id).await?;
    let realtime = realtime(ctx)?;
    let feed = events::feed::feed(
        db.clone(),
        realtime.hub.clone(),
        actor.clone(),
        filter,
        after,
        feed_options(ctx, realtime),
    )
    .await?;
    Ok((feed, actor, id))
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
        let feed = venue_feed(ctx, venue_ids, after, |venues| {
            prima_service::bookings::change_feed_filter(venues, statuses)
        })
        .await?;
        Ok(feed.filter_map(|event| async move { BookingChange::of(event) }))
    }

    /// Payouts generated, moving through approval and payment, or held, at the venues
    /// given (every venue where you have financial reads when left out: MANAGER or above),
    /// optionally only those now in one of `statuses`: the finance screen's feed. With
    /// `after`, every change since that cursor first, then live ones: none missed, none
    /// twice.
    async fn payout_changed(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only these venues (each must be visible to you).")] venue_ids: Option<
            Vec<ID>,
        >,
        #[graphql(desc = "Only payouts whose status after the change is one of these.")]
        statuses: Option<Vec<PayoutStatus>>,
        #[graphql(desc = "Resume after this cursor: replay every change since, then go live.")]
        after: Option<String>,
    ) -> Result<impl Stream<Item = PayoutChange> + use<>> {
        let feed = venue_feed(ctx, venue_ids, after, |venues| {
            prima_service::payouts::change_feed_filter(venues, statuses)
        })
        .await?;
        Ok(feed.filter_map(|event| async move { PayoutChange::of(event) }))
    }

    /// A promoter's progress in the programme changed (MANAGER or above at its venue):
    /// each change with the progress it left. With `after`, every change since that cursor
    /// first, then live ones.
    async fn incentive_progress_changed(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The programme.")] incentive_id: ID,
        #[graphql(desc = "Resume after this cursor: replay every change since, then go live.")]
        after: Option<String>,
    ) -> Result<impl Stream<Item = IncentiveProgressChange> + use<>> {
        let after = after
            .map(|cursor| events::feed::parse_cursor(&cursor))
            .transpose()?;
        let (feed, _, _) = progress_feed(ctx, &incentive_id, after).await?;
        Ok(feed.filter_map(|event| async move { IncentiveProgressChange::of(event) }))
    }

    /// The programme's leaderboard (MANAGER or above at its venue): the standings now,
    /// then again whenever they change, at most every 250 ms (a burst of bookings is
    /// coalesced into one push, and the last push always shows the final standings).
    async fn incentive_leaderboard(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The programme.")] incentive_id: ID,
        #[graphql(desc = "How many participants (1 to 100, default 10).")] top: Option<i32>,
    ) -> Result<impl Stream<Item = LeaderboardUpdate> + use<>> {
        let top = top.unwrap_or(10);
        if !(1..=100).contains(&top) {
            return Err(ApiError(Error::invalid(
                "top",
                "`top` must be from 1 to 100",
            )));
        }
        // The subscriber's own feed decides how long it may stay (access re-checked); the
        // standings come from the programme's shared board.
        let (feed, actor, id) = progress_feed(ctx, &incentive_id, None).await?;
        let program =
            prima_service::access::scope::financial_get::<prima_entity::incentives::Entity>(
                &deps(ctx).db.conn,
                &actor,
                id,
            )
            .await?;
        let board = realtime(ctx)?.boards.join(id, program.venue_id);
        let mut standings = board.watch();
        // The board's first read: a database that cannot answer within the wait ends the
        // subscription with an error rather than leaving it silent.
        let first = tokio::time::timeout(FIRST_STANDINGS_WAIT, standings.wait_for(Option::is_some))
            .await
            .ok()
            .and_then(|found| found.ok().and_then(|current| current.clone()))
            .ok_or_else(|| {
                ApiError(Error::internal(anyhow::anyhow!(
                    "reading the leaderboard failed"
                )))
            })?;
        let top = usize::try_from(top).unwrap_or(10);
        let update = move |now: &Standings| LeaderboardUpdate {
            cursor: now.cursor.clone(),
            entries: now
                .entries
                .iter()
                .take(top)
                .map(|ranked| IncentiveProgress {
                    row: ranked.progress.clone(),
                    rank: Some(ranked.rank),
                    promoter: now.promoters.get(&ranked.progress.promoter_id).cloned(),
                })
                .collect(),
        };
        let first = update(&first);
        let state = (feed.boxed(), standings, board);
        let updates = futures::stream::unfold(state, move |(mut feed, mut standings, board)| {
            async move {
                loop {
                    tokio::select! {
                        event = feed.next() => {
                            // The feed ends when the subscriber may no longer see the programme.
                            event.as_ref()?;
                        }
                        changed = standings.changed() => {
                            changed.ok()?;
                            let now = standings.borrow_and_update().clone();
                            if let Some(now) = now {
                                return Some((now, (feed, standings, board)));
                            }
                        }
                    }
                }
            }
        })
        .map(move |now| update(&now));
        Ok(futures::stream::once(async move { first }).chain(updates))
    }
}

/// Subscriptions whose stream is every matching event from the moment it starts, the same
/// for every subscriber with the same selection and the same access: one such stream may
/// serve several identical subscriptions (the WebSocket endpoint shares them). Not the
/// leaderboard, whose first push is the standings at the moment each subscriber arrives.
const LIVE_FROM_NOW: &[&str] = &["bookingChanged", "incentiveProgressChanged"];

/// Whether a request is a subscription that one running stream may serve for several
/// identical subscribers: a subscription operation whose one root field is of
/// [`LIVE_FROM_NOW`] and does not resume from a cursor (`after` absent or null). Anything
/// else, or anything that is not a small, well-formed document, is not: it runs on its
/// own and meets every check there. The document is scanned before it is parsed (the
/// parser is recursive: see [`crate::limits::document`]).
pub fn shareable(
    query: &str,
    operation_name: Option<&str>,
    variables: &async_graphql::Variables,
) -> bool {
    use async_graphql::parser::types::{OperationType, Selection};
    const MAX_TOKENS: usize = 2_000;
    let shape = crate::limits::document::scan(query, MAX_TOKENS);
    if shape.tokens > MAX_TOKENS || shape.selection_depth > 32 || shape.value_depth > 8 {
        return false;
    }
    let Ok(document) = async_graphql::parser::parse_query(query) else {
        return false;
    };
    let Some(operation) = crate::limits::cost::operation(&document, operation_name) else {
        return false;
    };
    if operation.node.ty != OperationType::Subscription {
        return false;
    }
    let [root] = operation.node.selection_set.node.items.as_slice() else {
        return false;
    };
    let Selection::Field(field) = &root.node else {
        return false;
    };
    if !LIVE_FROM_NOW.contains(&field.node.name.node.as_str()) {
        return false;
    }
    let Some(after) = field.node.get_argument("after") else {
        return true;
    };
    // As the executor would see it: a variable's value, else its default, else null.
    let after = after.node.clone().into_const_with(|name| {
        Ok::<_, std::convert::Infallible>(crate::limits::cost::resolve_variable(
            &operation.node,
            variables,
            &name,
        ))
    });
    matches!(after, Ok(async_graphql::Value::Null))
}

#[cfg(test)]
mod tests {
    use async_graphql::Variables;
    use serde_json::json;

    use super::shareable;

    fn vars(value: serde_json::Value) -> Variables {
        Variables::from_json(value)
    }

    #[test]
    fn only_live_subscriptions_that_do_not_resume_are_shared() {
        let none = Variables::default();
        let live = "subscription { bookingChanged(venueIds: [\"v\"]) { cursor booking { id } } }";
        assert!(shareable(live, None, &none));
        assert!(shareable(
            "subscription S($a: String) { incentiveProgressChanged(incentiveId: \"i\", after: $a) { cursor } }",
            Some("S"),
            &vars(json!({ "a": null })),
        ));
        assert!(shareable(
            "subscription { bookingChanged(after: null) { cursor } }",
            None,
            &none
        ));
        // Resuming from a cursor replays from it: each subscriber's own.
        assert!(!shareable(
            "subscription { bookingChanged(after: \"12\") { cursor } }",
            None,
            &none
        ));
        assert!(!shareable(
            "subscription S($a: String) { bookingChanged(after: $a) { cursor } }",
            None,
            &vars(json!({ "a": "12" })),
        ));
        // The leaderboard's first push is the standings when each subscriber arrives.
        assert!(!shareable(
            "subscription { incentiveLeaderboard(incentiveId: \"i\") { cursor } }",
            None,
            &none
        ));
        // Queries and mutations run for each request.
        assert!(!shareable("{ me { id } }", None, &none));
        assert!(!shareable(
            "mutation { confirmBooking(id: \"b\") { id } }",
            None,
            &none
        ));
        // The operation named, of several.
        let two = format!(
            "query Q {{ me {{ id }} }} {}",
            live.replacen("subscription", "subscription L", 1)
        );
        assert!(shareable(&two, Some("L"), &none));
        assert!(!shareable(&two, Some("Q"), &none));
        assert!(!shareable(&two, None, &none), "ambiguous");
        // Fragments at the root, syntax errors and deep documents are left to the
        // executor.
        assert!(!shareable(
            "subscription { ...F } fragment F on Subscription { bookingChanged { cursor } }",
            None,
            &none
        ));
        assert!(!shareable(
            "subscription { bookingChanged { cursor }",
            None,
            &none
        ));
        let deep = format!(
            "subscription {{ bookingChanged(venueIds: {}{}) {{ cursor }} }}",
            "[".repeat(5_000),
            "]".repeat(5_000)
        );
        assert!(!shareable(&deep, None, &none));
    }
}
