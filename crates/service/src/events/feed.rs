//! Feeds: one per subscription, replaying from the outbox after a cursor, then following the
//! hub, filtered by the subscriber's access (see [`crate::events`]).

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use prima_entity::outbox_events;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::hub::{Audience, Following, Hub, Route};
use super::{BATCH, Event};
use crate::access::scope::Scope;
use crate::access::{Actor, Capability};
use crate::error::{Error, Result};

/// At most one item per `interval`: after an item passes, the ones that arrive within the
/// interval are coalesced and only the latest is sent when it ends, so a burst costs one
/// push per interval and the last push always carries the final state. Ends when `inner`
/// ends (after sending what it held).
pub fn coalesce<S, T>(inner: S, interval: Duration) -> impl Stream<Item = T> + Send
where
    S: Stream<Item = T> + Send + 'static,
    T: Send + 'static,
{
    struct State<T> {
        inner: futures::stream::BoxStream<'static, T>,
        pending: Option<T>,
        last: Option<tokio::time::Instant>,
        done: bool,
    }
    let state = State {
        inner: inner.boxed(),
        pending: None,
        last: None,
        done: false,
    };
    futures::stream::unfold(state, move |mut state| async move {
        loop {
            let due = state.last.map(|at| at + interval);
            let ready = due.is_none_or(|due| due <= tokio::time::Instant::now());
            if state.pending.is_some() && (ready || state.done) {
                state.last = Some(tokio::time::Instant::now());
                let item = state.pending.take()?;
                return Some((item, state));
            }
            if state.done {
                return None;
            }
            match (&state.pending, due) {
                (Some(_), Some(due)) => {
                    tokio::select! {
                        next = state.inner.next() => match next {
                            Some(item) => state.pending = Some(item),
                            None => state.done = true,
                        },
                        _ = tokio::time::sleep_until(due) => {}
                    }
                }
                _ => match state.inner.next().await {
                    Some(item) => state.pending = Some(item),
                    None => state.done = true,
                },
            }
        }
    })
}

/// How a feed runs.
#[derive(Debug, Clone)]
pub struct FeedOptions {
    /// How often the subscriber's access is re-read.
    pub revalidate: Duration,
    /// How many subscriptions it serves (`None`: one, its own).
    pub audience: Option<Audience>,
}

impl Default for FeedOptions {
    fn default() -> Self {
        FeedOptions {
            revalidate: Duration::from_secs(2),
            audience: None,
        }
    }
}

/// What a feed delivers: one topic, the venues asked for (all the caller can read when
/// `None`), and a further test on each event.
pub struct FeedFilter {
    /// The topic.
    pub topic: &'static str,
    /// What the subscriber must hold at an event's venue to receive it (and at each venue
    /// asked for, to subscribe).
    pub capability: Capability,
    /// The venues asked for.
    pub venues: Option<Vec<Uuid>>,
    /// Any further condition (statuses, an incentive...).
    pub accept: Box<dyn Fn(&Event) -> bool + Send + Sync>,
}

/// The cursor of an event as clients see it.
pub fn cursor(seq: i64) -> String {
    seq.to_string()
}

/// A cursor back to its `seq`: BAD_USER_INPUT on `after` when it is not one.
pub fn parse_cursor(cursor: &str) -> Result<i64> {
    cursor
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|seq| *seq >= 0)
        .ok_or_else(|| Error::invalid("after", "`after` is not an event cursor"))
}

/// A subscription's events: those after `after` from the outbox first (when given), then
/// live from the hub, each once and in order, only of venues the subscriber may read.
///
/// Checked at subscribe time: NOT_FOUND for a venue asked for that the caller cannot read;
/// BAD_USER_INPUT on `after` when events after it were already deleted (older than the
/// retention). Every [`FeedOptions::revalidate`] the caller is reloaded: a suspended user,
/// or one who lost a venue asked for, ends the feed; without venues asked for, the venues
/// followed are updated.
pub async fn feed(
    db: DatabaseConnection,
    hub: Arc<Hub>,
    actor: Arc<Actor>,
    filter: FeedFilter,
    after: Option<i64>,
    options: FeedOptions,
) -> Result<impl Stream<Item = Arc<Event>> + Send + 'static> {
    if let Some(venues) = &filter.venues {
        for venue in venues {
            actor.require(*venue, filter.capability)?;
        }
    }
    let scope = readable(&actor, &filter.venues, filter.capability);
    let route = Route {
        topic: Some(filter.topic),
        venues: scope.followed().cloned(),
    };
    let audience = options.audience.clone().unwrap_or_else(|| Audience::new(1));
    let (following, delivered) = hub.follow(route, audience).await;
    let last = match after {
        Some(after) => {
            let oldest: Option<Option<i64>> = outbox_events::Entity::find()
                .select_only()
                .column_as(outbox_events::Column::Seq.min(), "m")
                .into_tuple()
                .one(&db)
                .await?;
            // Every event after `after` must still be there: the oldest kept is at most
            // `after + 1` (or nothing was numbered after it yet).
            if oldest.flatten().is_some_and(|oldest| oldest > after + 1) {
                return Err(Error::invalid(
                    "after",
                    "events after this cursor are no longer kept; reload and subscribe without `after`",
                ));
            }
            after
        }
        None => delivered,
    };
    let state = FeedState {
        db,
        hub,
        // Half the interval: a read stamped when it started is always older than that at the
        // next tick, so every tick sees the user as of at most one interval ago (shared by
        // all of their feeds on this replica).
        max_age: options.revalidate / 2,
        following,
        pending: VecDeque::new(),
        replaying: after.is_some(),
        last,
        actor,
        scope,
        filter,
        revalidate: tokio::time::interval_at(
            tokio::time::Instant::now() + options.revalidate,
            options.revalidate,
        ),
    };
    Ok(futures::stream::unfold(state, |mut state| async move {
        let event = state.next().await?;
        Some((event, state))
    }))
}

struct FeedState {
    db: DatabaseConnection,
    hub: Arc<Hub>,
    /// How old a re-read of the subscriber may be.
    max_age: Duration,
    /// The events the hub routes to this feed (its topic, at the venues it follows).
    following: Following,
    /// Events read from the outbox, to send before anything live.
    pending: VecDeque<Arc<Event>>,
    /// Still reading the outbox after the cursor.
    replaying: bool,
    /// The last `seq` passed (sent or filtered out).
    last: i64,
    actor: Arc<Actor>,
    scope: Followed,
    filter: FeedFilter,
    revalidate: tokio::time::Interval,
}

/// The venues a feed follows.
enum Followed {
    All,
    Venues(HashSet<Uuid>),
}

impl Followed {
    /// As the hub routes them: `None` for all.
    fn followed(&self) -> Option<&HashSet<Uuid>> {
        match self {
            Followed::All => None,
            Followed::Venues(ids) => Some(ids),
        }
    }
}

fn readable(actor: &Actor, asked: &Option<Vec<Uuid>>, capability: Capability) -> Followed {
    match (asked, actor.venues_where(capability)) {
        (Some(venues), _) => Followed::Venues(venues.iter().copied().collect()),
        (None, Scope::All) => Followed::All,
        (None, Scope::Venues(ids)) => Followed::Venues(ids.iter().copied().collect()),
    }
}

impl FeedState {
    /// The next event to send; `None` ends the feed.
    async fn next(&mut self) -> Option<Arc<Event>> {
        loop {
            while let Some(event) = self.pending.pop_front() {
                if self.wants(&event) {
                    return Some(event);
                }
            }
            if self.replaying {
                if let Err(err) = self.read_outbox().await {
                    tracing::warn!(error = ?err, "replaying events failed; ending the feed");
                    return None;
                }
                continue;
            }
            tokio::select! {
                received = self.following.recv() => match received {
                    Some(_) if self.following.lagged() => {
                        // Too slow for its queue: the hub dropped events for it; read what
                        // was missed from the outbox (this one included).
                        tracing::debug!("feed lagged; reading the outbox");
                        self.replaying = true;
                    }
                    Some(event) => {
                        if event.seq <= self.last {
                            continue;
                        }
                        self.last = event.seq;
                        if self.wants(&event) {
                            return Some(event);
                        }
                    }
                    None => return None,
                },
                _ = self.revalidate.tick() => {
                    if !self.still_allowed().await {
                        return None;
                    }
                }
            }
        }
    }

    /// The next page of the outbox after `last` (for the replay, or after lagging).
    async fn read_outbox(&mut self) -> Result<()> {
        let rows = outbox_events::Entity::find()
            .filter(outbox_events::Column::Seq.gt(self.last))
            .order_by_asc(outbox_events::Column::Seq)
            .limit(BATCH)
            .all(&self.db)
            .await?;
        if (rows.len() as u64) < BATCH {
            self.replaying = false;
        }
        for event in rows.into_iter().filter_map(Event::of) {
            self.last = event.seq;
            self.pending.push_back(Arc::new(event));
        }
        Ok(())
    }

    fn wants(&self, event: &Event) -> bool {
        if event.topic != self.filter.topic {
            return false;
        }
        let Some(venue) = event.venue_id else {
            return self.actor.is_admin() && (self.filter.accept)(event);
        };
        let followed = match &self.scope {
            Followed::All => true,
            Followed::Venues(ids) => ids.contains(&venue),
        };
        followed && self.actor.can(venue, self.filter.capability) && (self.filter.accept)(event)
    }

    /// Reloads the subscriber: false when they are gone, suspended, or lost a venue they
    /// asked for.
    async fn still_allowed(&mut self) -> bool {
        let actor = match self.hub.actor(self.actor.user_id, self.max_age).await {
            Ok(actor) => actor,
            Err(err @ Error::Internal(_)) => {
                // The check could not run: keep the feed (with the access it had) and try
                // again at the next tick.
                tracing::warn!(user = %self.actor.user_id, error = ?err, "re-checking a subscriber failed");
                return true;
            }
            Err(err) => {
                tracing::info!(user = %self.actor.user_id, error = %err, "subscriber lost access; ending the feed");
                return false;
            }
        };
        if let Some(venues) = &self.filter.venues
            && venues
                .iter()
                .any(|v| !actor.can(*v, self.filter.capability))
        {
            tracing::info!(user = %actor.user_id, "subscriber lost a venue; ending the feed");
            return false;
        }
        self.scope = readable(&actor, &self.filter.venues, self.filter.capability);
        self.following.reroute(self.scope.followed());
        self.actor = actor;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn coalescing_sends_at_most_one_item_per_interval_and_always_the_last() {
        let (tx, rx) = futures::channel::mpsc::unbounded::<i32>();
        let interval = Duration::from_millis(250);
        let mut out = Box::pin(coalesce(rx, interval));
        tx.unbounded_send(1).unwrap();
        assert_eq!(out.next().await, Some(1), "the first goes at once");
        for i in 2..=10 {
            tx.unbounded_send(i).unwrap();
        }
        let started = tokio::time::Instant::now();
        assert_eq!(out.next().await, Some(10), "a burst becomes its last item");
        assert!(started.elapsed() >= Duration::from_millis(249));
        tx.unbounded_send(11).unwrap();
        drop(tx);
        assert_eq!(
            out.next().await,
            Some(11),
            "what was held is sent before the end"
        );
        assert_eq!(out.next().await, None);
    }
}
