//! The hub: a replica's ordered, gap-free event stream (see [`crate::events`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use prima_entity::outbox_events;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use tokio::sync::{Mutex, mpsc};
use uuid::Uuid;

use super::{BATCH, Event};
use crate::access::Actor;
use crate::error::{Error, Result};

/// How many events a feed's queue holds for it while it is busy; a feed that falls further
/// behind reads what it missed from the outbox.
const FEED_CAPACITY: usize = 1024;

/// A replica's ordered, gap-free event stream (see the module documentation), routed to
/// the feeds that may want each event: by topic, then by venue, so an event wakes only the
/// feeds of its topic that follow its venue (or every venue).
pub struct Hub {
    db: DatabaseConnection,
    /// The next `seq` to deliver; everything before it was delivered (or expired). Held
    /// while delivering and while a feed joins, so a feed misses nothing after its start.
    next: Mutex<i64>,
    /// The `seq` of the last event delivered, for metrics.
    delivered: std::sync::atomic::AtomicI64,
    /// Subscribers as last read, shared by all feeds of a user (see [`Hub::actor`]).
    actors: Arc<Actors>,
    /// The feeds following the hub, and which of them each event goes to.
    routes: Arc<std::sync::Mutex<Routes>>,
}

/// What a feed follows: one topic (every topic when `None`: the hub's own tests and
/// tools), at some venues or at all of them.
#[derive(Debug, Clone)]
pub struct Route {
    /// The topic; `None` for every one.
    pub topic: Option<&'static str>,
    /// The venues; `None` for all. Events of no venue go to every feed of their topic.
    pub venues: Option<HashSet<Uuid>>,
}

impl Route {
    /// Every event.
    pub fn everything() -> Route {
        Route {
            topic: None,
            venues: None,
        }
    }
}

/// The feeds following a hub, indexed by topic and venue.
#[derive(Default)]
struct Routes {
    next_id: u64,
    feeds: HashMap<u64, Follower>,
    /// Topic -> the feeds of every venue, and the feeds of each venue.
    topics: HashMap<Box<str>, Index>,
    /// The feeds of every topic.
    any: Index,
}

#[derive(Default)]
struct Index {
    all: HashSet<u64>,
    venues: HashMap<Uuid, HashSet<u64>>,
}

struct Follower {
    route: Route,
    queue: mpsc::Sender<Arc<Event>>,
    lagged: Arc<AtomicBool>,
    audience: Audience,
}

impl Routes {
    fn index(&mut self, id: u64, route: &Route) {
        let index = match route.topic {
            Some(topic) => self.topics.entry(topic.into()).or_default(),
            None => &mut self.any,
        };
        match &route.venues {
            None => {
                index.all.insert(id);
            }
            Some(venues) => {
                for venue in venues {
                    index.venues.entry(*venue).or_default().insert(id);
                }
            }
        }
    }

    fn unindex(&mut self, id: u64, route: &Route) {
        let index = match route.topic {
            Some(topic) => match self.topics.get_mut(topic) {
                Some(index) => index,
                None => return,
            },
            None => &mut self.any,
        };
        match &route.venues {
            None => {
                index.all.remove(&id);
            }
            Some(venues) => {
                for venue in venues {
                    if let Some(ids) = index.venues.get_mut(venue) {
                        ids.remove(&id);
                        if ids.is_empty() {
                            index.venues.remove(venue);
                        }
                    }
                }
            }
        }
        if let Some(topic) = route.topic
            && index.all.is_empty()
            && index.venues.is_empty()
        {
            self.topics.remove(topic);
        }
    }

    /// Queues the event for every feed that may want it; a feed whose queue is full is
    /// marked lagged (it reads the outbox).
    fn route(&self, event: &Arc<Event>) {
        let mut offer = |id: &u64| {
            if let Some(feed) = self.feeds.get(id)
                && let Err(mpsc::error::TrySendError::Full(_)) = feed.queue.try_send(event.clone())
            {
                feed.lagged.store(true, Ordering::Release);
            }
        };
        for index in [self.topics.get(event.topic.as_str()), Some(&self.any)] {
            let Some(index) = index else {
                continue;
            };
            index.all.iter().for_each(&mut offer);
            match event.venue_id {
                Some(venue) => index
                    .venues
                    .get(&venue)
                    .into_iter()
                    .flatten()
                    .for_each(&mut offer),
                None => index
                    .venues
                    .values()
                    .flatten()
                    .collect::<HashSet<_>>()
                    .into_iter()
                    .for_each(&mut offer),
            }
        }
    }
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
        self.0.load(Ordering::Relaxed)
    }

    /// One more.
    pub fn join(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// One fewer.
    pub fn leave(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A feed following the hub: the events routed to it, in `seq` order; it leaves when
/// dropped.
pub struct Following {
    id: u64,
    queue: mpsc::Receiver<Arc<Event>>,
    lagged: Arc<AtomicBool>,
    routes: Arc<std::sync::Mutex<Routes>>,
}

impl Following {
    /// The next event routed here; `None` once the hub is gone.
    pub async fn recv(&mut self) -> Option<Arc<Event>> {
        self.queue.recv().await
    }

    /// The next event routed here, if one is queued.
    pub fn try_recv(&mut self) -> std::result::Result<Arc<Event>, mpsc::error::TryRecvError> {
        self.queue.try_recv()
    }

    /// Whether events were dropped for this feed because its queue was full since the last
    /// call (then what it missed must be read from the outbox).
    pub fn lagged(&self) -> bool {
        self.lagged.swap(false, Ordering::AcqRel)
    }

    /// Follows these venues from now on (`None`: all); nothing changes when they are the
    /// ones followed already (every re-check of a subscriber asks).
    pub fn reroute(&self, venues: Option<&HashSet<Uuid>>) {
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        let Some(feed) = routes.feeds.get(&self.id) else {
            return;
        };
        if feed.route.venues.as_ref() == venues {
            return;
        }
        let old = feed.route.clone();
        let new = Route {
            topic: old.topic,
            venues: venues.cloned(),
        };
        routes.unindex(self.id, &old);
        routes.index(self.id, &new);
        if let Some(feed) = routes.feeds.get_mut(&self.id) {
            feed.route = new;
        }
    }
}

impl Drop for Following {
    fn drop(&mut self) {
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(feed) = routes.feeds.remove(&self.id) {
            routes.unindex(self.id, &feed.route);
        }
    }
}

/// A subscriber as read at some moment (or why they may no longer subscribe).
type CachedActor = (tokio::time::Instant, Result<Arc<Actor>>);

/// Subscribers as last read, shared by all feeds of the replica (see [`Hub::actor`]).
struct Actors {
    db: DatabaseConnection,
    state: std::sync::Mutex<ActorState>,
}

#[derive(Default)]
struct ActorState {
    cache: HashMap<Uuid, CachedActor>,
    /// Users asked for since the running read took its list, with who waits for them.
    wanted: HashMap<Uuid, Vec<tokio::sync::oneshot::Sender<Result<Arc<Actor>>>>>,
    /// Whether a read runs (it reads `wanted` again until nobody waits).
    reading: bool,
}

/// Users read per statement.
const ACTOR_BATCH: usize = 500;

impl Actors {
    /// Reads the wanted users, in rounds, until nobody waits.
    async fn read(self: Arc<Actors>) {
        /// Should the read stop without finishing (a panic, the runtime shutting down), the
        /// next ask starts another, and those waiting now hear of it (an internal error,
        /// which keeps their feeds until the next check).
        struct Stopped(Option<Arc<Actors>>);
        impl Drop for Stopped {
            fn drop(&mut self) {
                if let Some(actors) = self.0.take() {
                    let mut state = actors.state.lock().unwrap_or_else(|e| e.into_inner());
                    state.reading = false;
                    state.wanted.clear();
                }
            }
        }
        let mut stopped = Stopped(Some(self.clone()));
        loop {
            let mut wanted = {
                let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                if state.wanted.is_empty() {
                    state.reading = false;
                    stopped.0 = None;
                    // Entries nobody asked for in a long while go (users without feeds).
                    state
                        .cache
                        .retain(|_, (at, _)| at.elapsed() < Duration::from_secs(600));
                    return;
                }
                std::mem::take(&mut state.wanted)
            };
            let ids: Vec<Uuid> = wanted.keys().copied().collect();
            for chunk in ids.chunks(ACTOR_BATCH) {
                let read_at = tokio::time::Instant::now();
                let mut read = crate::auth::actors_for(&self.db, chunk).await;
                let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                for id in chunk {
                    let actor = match &mut read {
                        Ok(actors) => actors
                            .remove(id)
                            .unwrap_or_else(|| {
                                Err(Error::internal(anyhow::anyhow!("user {id} was not read")))
                            })
                            .map(Arc::new),
                        Err(err) => Err(err.clone()),
                    };
                    // A database hiccup is not an answer: it is not kept, so the next check
                    // reads again.
                    if !matches!(actor, Err(Error::Internal(_))) {
                        state.cache.insert(*id, (read_at, actor.clone()));
                    }
                    for waiter in wanted.remove(id).unwrap_or_default() {
                        let _ = waiter.send(actor.clone());
                    }
                }
            }
        }
    }
}

impl Hub {
    /// A hub that starts after the newest numbered event (earlier ones are replayed by
    /// feeds that ask for them).
    pub async fn new(db: DatabaseConnection) -> Result<Arc<Hub>> {
        let newest = newest_seq(&db).await?;
        Ok(Arc::new(Hub {
            db: db.clone(),
            next: Mutex::new(newest + 1),
            delivered: std::sync::atomic::AtomicI64::new(newest),
            actors: Arc::new(Actors {
                db,
                state: Default::default(),
            }),
            routes: Default::default(),
        }))
    }

    /// The user as the database has them now, read at most once per `max_age` for all the
    /// feeds of this replica (ten thousand subscriptions of one dashboard user cost one
    /// query per interval, not ten thousand); an error when they are gone or suspended.
    /// Users whose entries are stale are read together: whoever asks while no read runs
    /// starts one, and everyone who asks meanwhile is read by the next, all in two
    /// statements (ten thousand users re-checked every interval cost a few reads per
    /// interval, not ten thousand).
    pub async fn actor(&self, user: Uuid, max_age: Duration) -> Result<Arc<Actor>> {
        let waiting = {
            let mut state = self.actors.state.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((at, actor)) = state.cache.get(&user)
                && at.elapsed() < max_age
            {
                return actor.clone();
            }
            let (tx, rx) = tokio::sync::oneshot::channel();
            state.wanted.entry(user).or_default().push(tx);
            if !state.reading {
                state.reading = true;
                tokio::spawn(self.actors.clone().read());
            }
            rx
        };
        waiting.await.unwrap_or_else(|_| {
            Err(Error::internal(anyhow::anyhow!(
                "re-reading subscribers stopped"
            )))
        })
    }

    /// Every event from now on, and the `seq` of the last event delivered before it (taken
    /// together, so nothing falls between them): a feed of one subscription.
    pub async fn subscribe(&self) -> (Following, i64) {
        self.follow(Route::everything(), Audience::new(1)).await
    }

    /// The events of `route` from now on, for a feed serving `audience`, and the `seq` of
    /// the last event delivered before it (taken together, so nothing falls between them).
    pub async fn follow(&self, route: Route, audience: Audience) -> (Following, i64) {
        let next = self.next.lock().await;
        let (queue, receiver) = mpsc::channel(FEED_CAPACITY);
        let lagged = Arc::new(AtomicBool::new(false));
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        let id = routes.next_id;
        routes.next_id += 1;
        routes.index(id, &route);
        routes.feeds.insert(
            id,
            Follower {
                route,
                queue,
                lagged: lagged.clone(),
                audience,
            },
        );
        drop(routes);
        let following = Following {
            id,
            queue: receiver,
            lagged,
            routes: self.routes.clone(),
        };
        (following, *next - 1)
    }

    /// How many subscriptions the feeds following the hub serve.
    pub fn subscribers(&self) -> usize {
        let routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        routes.feeds.values().map(|feed| feed.audience.get()).sum()
    }

    /// How many feeds follow the hub.
    pub fn feeds(&self) -> usize {
        let routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        routes.feeds.len()
    }

    /// The `seq` of the last event delivered (for metrics).
    pub fn delivered(&self) -> i64 {
        self.delivered.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn send(&self, event: Event) {
        self.delivered
            .store(event.seq, std::sync::atomic::Ordering::Relaxed);
        let event = Arc::new(event);
        self.routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .route(&event);
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
