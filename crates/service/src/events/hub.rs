//! The hub: a replica's ordered, gap-free event stream (see [`crate::events`]).

use std::sync::Arc;
use std::time::Duration;

use prima_entity::outbox_events;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use tokio::sync::{Mutex, broadcast};
use uuid::Uuid;

use super::{BATCH, Event};
use crate::access::Actor;
use crate::error::{Error, Result};

/// How many events a hub keeps for a subscriber that falls behind before it must re-read
/// them from the outbox.
const HUB_CAPACITY: usize = 4096;

/// A replica's ordered, gap-free event stream (see the module documentation).
pub struct Hub {
    db: DatabaseConnection,
    sender: broadcast::Sender<Arc<Event>>,
    /// The next `seq` to deliver; everything before it was delivered (or expired).
    next: Mutex<i64>,
    /// The `seq` of the last event delivered, for metrics.
    delivered: std::sync::atomic::AtomicI64,
    /// Subscribers as last read, shared by all feeds of a user (see [`Hub::actor`]).
    actors: std::sync::Mutex<std::collections::HashMap<Uuid, Arc<Mutex<Option<CachedActor>>>>>,
    /// The audience of each feed following the hub: how many subscriptions it serves.
    audiences: Arc<Audiences>,
}

/// The feeds following a hub, each with its audience (see [`Audience`]).
#[derive(Default)]
struct Audiences {
    next: std::sync::atomic::AtomicU64,
    feeds: std::sync::Mutex<std::collections::HashMap<u64, Audience>>,
}

/// How many subscriptions one feed serves: 1 for a feed of its own, or the subscribers of a
/// stream several identical subscriptions share (the WebSocket endpoint's shared
/// subscriptions), counted as they join and leave. [`Hub::subscribers`] sums them over the
/// feeds following the hub, so a subscription counts once its feed follows the hub.
#[derive(Debug, Clone)]
pub struct Audience(Arc<std::sync::atomic::AtomicUsize>);

impl Audience {
    /// An audience of `n`.
    pub fn new(n: usize) -> Audience {
        Audience(Arc::new(std::sync::atomic::AtomicUsize::new(n)))
    }

    /// How many it is now.
    pub fn get(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// One more.
    pub fn join(&self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// One fewer.
    pub fn leave(&self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A feed's place among the hub's followers; it leaves when dropped.
pub struct Following {
    id: u64,
    audiences: Arc<Audiences>,
}

impl Drop for Following {
    fn drop(&mut self) {
        let mut feeds = self
            .audiences
            .feeds
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        feeds.remove(&self.id);
    }
}

/// A subscriber as read at some moment (or why they may no longer subscribe).
type CachedActor = (tokio::time::Instant, Result<Arc<Actor>>);

impl Hub {
    /// A hub that starts after the newest numbered event (earlier ones are replayed by
    /// feeds that ask for them).
    pub async fn new(db: DatabaseConnection) -> Result<Arc<Hub>> {
        let newest = newest_seq(&db).await?;
        let (sender, _) = broadcast::channel(HUB_CAPACITY);
        Ok(Arc::new(Hub {
            db,
            sender,
            next: Mutex::new(newest + 1),
            delivered: std::sync::atomic::AtomicI64::new(newest),
            actors: Default::default(),
            audiences: Default::default(),
        }))
    }

    /// The user as the database has them now, read at most once per `max_age` for all the
    /// feeds of this replica (ten thousand subscriptions of one dashboard user cost one
    /// query per interval, not ten thousand); an error when they are gone or suspended.
    pub async fn actor(&self, user: Uuid, max_age: Duration) -> Result<Arc<Actor>> {
        let entry = {
            let mut actors = self.actors.lock().unwrap_or_else(|e| e.into_inner());
            actors.entry(user).or_default().clone()
        };
        let mut cached = entry.lock().await;
        if let Some((at, actor)) = cached.as_ref()
            && at.elapsed() < max_age
        {
            return actor.clone();
        }
        let read_at = tokio::time::Instant::now();
        let actor = crate::auth::actor_for(&self.db, user).await.map(Arc::new);
        // A database hiccup is not an answer: it is not kept, so the next check reads again.
        if !matches!(actor, Err(Error::Internal(_))) {
            *cached = Some((read_at, actor.clone()));
        }
        actor
    }

    /// A receiver of every event from now on, and the `seq` of the last event delivered
    /// before it (taken together, so nothing falls between them).
    pub async fn subscribe(&self) -> (broadcast::Receiver<Arc<Event>>, i64) {
        let next = self.next.lock().await;
        (self.sender.subscribe(), *next - 1)
    }

    /// Counts a feed serving `audience` among the hub's followers until the returned
    /// guard drops.
    pub fn follow(&self, audience: Audience) -> Following {
        let id = self
            .audiences
            .next
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut feeds = self
            .audiences
            .feeds
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        feeds.insert(id, audience);
        Following {
            id,
            audiences: self.audiences.clone(),
        }
    }

    /// How many subscriptions the feeds following the hub serve.
    pub fn subscribers(&self) -> usize {
        let feeds = self
            .audiences
            .feeds
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        feeds.values().map(Audience::get).sum()
    }

    /// How many feeds follow the hub (each is woken by every event).
    pub fn feeds(&self) -> usize {
        self.sender.receiver_count()
    }

    /// The `seq` of the last event delivered (for metrics).
    pub fn delivered(&self) -> i64 {
        self.delivered.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn send(&self, event: Event) {
        self.delivered
            .store(event.seq, std::sync::atomic::Ordering::Relaxed);
        let _ = self.sender.send(Arc::new(event));
    }

    /// Delivers events that arrived from the bus: in `seq` order, duplicates dropped, any
    /// gap before them filled from the outbox first.
    pub async fn deliver(&self, mut events: Vec<Event>) -> Result<()> {
        events.sort_by_key(|e| e.seq);
        let mut next = self.next.lock().await;
        for event in events {
            if event.seq < *next {
                continue;
            }
            if event.seq > *next {
                self.fill(&mut next, event.seq).await?;
            }
            if event.seq == *next {
                *next = event.seq + 1;
                self.send(event);
            }
        }
        Ok(())
    }

    /// Delivers whatever the outbox has numbered beyond what was delivered (the poll that
    /// keeps a replica current while the bus is down or lost a message).
    pub async fn catch_up(&self) -> Result<()> {
        let mut next = self.next.lock().await;
        self.fill(&mut next, i64::MAX).await
    }

    /// Delivers numbered rows from `*next` up to (not including) `until`, from the outbox.
    async fn fill(&self, next: &mut i64, until: i64) -> Result<()> {
        loop {
            let rows = outbox_events::Entity::find()
                .filter(outbox_events::Column::Seq.gte(*next))
                .filter(outbox_events::Column::Seq.lt(until))
                .order_by_asc(outbox_events::Column::Seq)
                .limit(BATCH)
                .all(&self.db)
                .await?;
            let full = rows.len() as u64 == BATCH;
            for event in rows.into_iter().filter_map(Event::of) {
                // Rows past the retention window are gone: skip to what exists.
                *next = event.seq + 1;
                self.send(event);
            }
            if !full {
                break;
            }
        }
        if until != i64::MAX && *next < until {
            // The outbox has nothing in between (deleted by retention): move on.
            *next = until;
        }
        Ok(())
    }
}

/// The highest `seq` given so far (0 when none).
pub(super) async fn newest_seq(db: &impl ConnectionTrait) -> Result<i64> {
    let newest: Option<Option<i64>> = outbox_events::Entity::find()
        .select_only()
        .column_as(outbox_events::Column::Seq.max(), "m")
        .into_tuple()
        .one(db)
        .await?;
    Ok(newest.flatten().unwrap_or(0))
}
