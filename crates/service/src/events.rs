//! Real time: from the outbox to every subscriber of every replica, losing nothing
//! (ARCHITECTURE.md "Real time").
//!
//! The pieces, each replica running all of them:
//!
//! - **Outbox** ([`crate::outbox`]): a change writes its event row in its own transaction.
//! - **Relay** ([`Relay`]): after commit (woken by [`Events::written`], and by a sweep every
//!   [`RelayOptions::sweep`] for rows left behind by a crash or an outage) it
//!   1. *numbers* committed rows with a gap-free `seq`, in a transaction of its own that one
//!      relay at a time runs (PostgreSQL: an advisory transaction lock; SQLite: its single
//!      writer), so `seq` follows commit order and every numbered row is visible: "every
//!      event after N" can never miss one;
//!   2. *publishes* numbered, unpublished rows in `seq` order to the [`Bus`], claiming them
//!      with `FOR UPDATE SKIP LOCKED` on PostgreSQL so each is published by one replica,
//!      and marks them `published_at` only after Redis took them. A crash in between
//!      publishes them again on the next sweep (subscribers drop the duplicate by `seq`).
//!      The in-process bus gets them after the marking commits, since the hub may read the
//!      outbox itself and a transaction never waits for what waits for a pool connection;
//!      should the hand-over fail, the hub's poll delivers them.
//!   3. deletes published rows older than [`RelayOptions::retention`] (the replay window).
//! - **Bus** ([`Bus`]): in-process (the embedded default: the relay hands events straight to
//!   the hub) or Redis pub/sub (one channel, [`CHANNEL`] by default; every replica's
//!   listener feeds its own hub; replicas of one database must share the channel, and other
//!   databases on the same Redis must not).
//! - **Hub** ([`Hub`]): the replica's ordered, gap-free stream. It delivers events strictly
//!   in `seq` order, drops duplicates, and fills any gap (a lost pub/sub message, a Redis
//!   restart, another replica's crash before publishing) by reading the missing rows from
//!   the outbox. It also polls the outbox every second, so subscribers keep receiving even
//!   while Redis is down.
//! - **Feeds** ([`feed`]): one per subscription: replays from the outbox after a cursor, then
//!   follows the hub; filters every event by the subscriber's access, re-checked every
//!   [`FeedOptions::revalidate`] (a suspended user or revoked venue ends the feed).

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use prima_entity::outbox_events;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, Notify, broadcast};
use uuid::Uuid;

use crate::access::scope::Scope;
use crate::access::{Actor, Capability};
use crate::error::{Error, Result};

/// The default Redis pub/sub channel every replica publishes to and listens on.
pub const CHANNEL: &str = "prima:events";

/// How many events a hub keeps for a subscriber that falls behind before it must re-read
/// them from the outbox.
const HUB_CAPACITY: usize = 4096;

/// Rows a relay or hub handles per statement.
const BATCH: u64 = 500;

/// The PostgreSQL advisory lock key that serialises numbering across replicas.
const NUMBERING_LOCK: i64 = 0x7072_696d_615f_7365; // "prima_se"

/// An event as delivered: a numbered outbox row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Delivery sequence: gap-free, in commit order; the cursor clients resume from.
    pub seq: i64,
    /// What kind of event, e.g. [`crate::outbox::BOOKING_CHANGED`].
    pub topic: String,
    /// The venue it belongs to (access is decided by it).
    pub venue_id: Option<Uuid>,
    /// The event itself.
    pub payload: serde_json::Value,
    /// When the change committed (its transaction's clock).
    pub created_at: DateTime<Utc>,
}

impl Event {
    fn of(row: outbox_events::Model) -> Option<Event> {
        Some(Event {
            seq: row.seq?,
            topic: row.topic,
            venue_id: row.venue_id,
            payload: row.payload,
            created_at: row.created_at,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Hub
// ---------------------------------------------------------------------------------------

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

    /// How many feeds are listening.
    pub fn subscribers(&self) -> usize {
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
async fn newest_seq(db: &impl ConnectionTrait) -> Result<i64> {
    let newest: Option<Option<i64>> = outbox_events::Entity::find()
        .select_only()
        .column_as(outbox_events::Column::Seq.max(), "m")
        .into_tuple()
        .one(db)
        .await?;
    Ok(newest.flatten().unwrap_or(0))
}

// ---------------------------------------------------------------------------------------
// Bus
// ---------------------------------------------------------------------------------------

/// Where the relay publishes.
#[derive(Clone)]
pub enum Bus {
    /// Straight to this replica's hub (one process: the embedded default).
    InProcess,
    /// Redis pub/sub on a channel; every replica's listener feeds its own hub.
    Redis(redis::Client, String),
}

impl Bus {
    async fn publish(&self, hub: &Hub, events: Vec<Event>) -> Result<()> {
        match self {
            Bus::InProcess => hub.deliver(events).await,
            Bus::Redis(client, channel) => {
                let message = serde_json::to_string(&events).map_err(Error::internal)?;
                let mut conn = client
                    .get_multiplexed_async_connection()
                    .await
                    .map_err(Error::internal)?;
                redis::cmd("PUBLISH")
                    .arg(channel)
                    .arg(message)
                    .query_async::<i64>(&mut conn)
                    .await
                    .map_err(Error::internal)?;
                Ok(())
            }
        }
    }
}

/// Listens on Redis and feeds the hub, reconnecting forever; after every (re)connection
/// the hub catches up from the outbox, so what was published while it was away arrives.
async fn listen(client: redis::Client, channel: String, hub: Arc<Hub>) {
    loop {
        let result: Result<()> = async {
            let mut pubsub = client.get_async_pubsub().await.map_err(Error::internal)?;
            pubsub.subscribe(&channel).await.map_err(Error::internal)?;
            tracing::info!("listening for events on redis");
            hub.catch_up().await?;
            let mut messages = pubsub.on_message();
            while let Some(message) = messages.next().await {
                let text: String = message.get_payload().map_err(Error::internal)?;
                match serde_json::from_str::<Vec<Event>>(&text) {
                    Ok(events) => hub.deliver(events).await?,
                    Err(err) => tracing::warn!(error = %err, "ignoring a malformed event message"),
                }
            }
            Ok(())
        }
        .await;
        if let Err(err) = result {
            tracing::warn!(error = ?err, "event listener lost redis; reconnecting");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

// ---------------------------------------------------------------------------------------
// Relay
// ---------------------------------------------------------------------------------------

/// How the relay runs.
#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// How often unpublished rows are looked for without a wake-up.
    pub sweep: Duration,
    /// How long published events are kept for replay.
    pub retention: Duration,
    /// Test hook: number and publish nothing (as if the process died right after commit).
    pub hold: bool,
    /// The Redis channel (replicas of one database share it).
    pub channel: String,
    /// How often the hub reads the outbox for events the bus did not bring.
    pub poll: Duration,
}

impl Default for RelayOptions {
    fn default() -> Self {
        RelayOptions {
            sweep: Duration::from_millis(500),
            retention: Duration::from_secs(72 * 3600),
            hold: false,
            channel: CHANNEL.to_owned(),
            poll: Duration::from_secs(1),
        }
    }
}

/// The outbox relay of one replica (see the module documentation).
pub struct Relay {
    db: DatabaseConnection,
    bus: Bus,
    hub: Arc<Hub>,
}

impl Relay {
    /// Numbers every committed, unnumbered row; returns how many.
    pub async fn number(&self) -> Result<u64> {
        let mut total = 0;
        loop {
            let txn = self.db.begin().await?;
            let backend = txn.get_database_backend();
            // One numbering at a time: the lock is the transaction's first statement.
            let lock = match backend {
                DbBackend::Postgres => format!("SELECT pg_advisory_xact_lock({NUMBERING_LOCK})"),
                // A write that changes nothing takes SQLite's write lock.
                _ => "UPDATE outbox_events SET seq = seq WHERE 1 = 0".to_owned(),
            };
            txn.execute_raw(Statement::from_string(backend, lock))
                .await?;
            let base = newest_seq(&txn).await?;
            let numbered = txn
                .execute_raw(Statement::from_sql_and_values(
                    backend,
                    format!(
                        "UPDATE outbox_events SET seq = $1 + t.rn FROM ( \
                           SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS rn FROM outbox_events \
                           WHERE seq IS NULL ORDER BY id LIMIT {BATCH} \
                         ) t WHERE outbox_events.id = t.id"
                    ),
                    [base.into()],
                ))
                .await?
                .rows_affected();
            txn.commit().await?;
            total += numbered;
            if numbered < BATCH {
                return Ok(total);
            }
        }
    }

    /// Publishes numbered, unpublished rows in `seq` order and marks them published;
    /// returns how many.
    pub async fn publish(&self) -> Result<u64> {
        let mut total = 0;
        loop {
            let txn = self.db.begin().await?;
            let mut query = outbox_events::Entity::find()
                .filter(outbox_events::Column::Seq.is_not_null())
                .filter(outbox_events::Column::PublishedAt.is_null())
                .order_by_asc(outbox_events::Column::Seq)
                .limit(BATCH);
            if txn.get_database_backend() == DbBackend::Postgres {
                query = query.lock_with_behavior(
                    sea_orm::sea_query::LockType::Update,
                    sea_orm::sea_query::LockBehavior::SkipLocked,
                );
            } else {
                txn.execute_raw(Statement::from_string(
                    DbBackend::Sqlite,
                    "UPDATE outbox_events SET seq = seq WHERE 1 = 0",
                ))
                .await?;
            }
            let rows = query.all(&txn).await?;
            if rows.is_empty() {
                return Ok(total);
            }
            let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
            let events: Vec<Event> = rows.into_iter().filter_map(Event::of).collect();
            let count = events.len() as u64;
            // The in-process hub gets the events after commit: it may read the outbox
            // itself (to fill a gap, holding its own lock), and a transaction must never wait
            // for something that waits for a pool connection (with SQLite in memory, the
            // pool's only one). Its poll delivers them should this hand-over fail.
            let after_commit = match &self.bus {
                Bus::InProcess => Some(events),
                Bus::Redis(..) => {
                    self.bus.publish(&self.hub, events).await?;
                    None
                }
            };
            outbox_events::Entity::update_many()
                .col_expr(
                    outbox_events::Column::PublishedAt,
                    sea_orm::sea_query::Expr::value(crate::time::now()),
                )
                .filter(outbox_events::Column::Id.is_in(ids))
                .exec(&txn)
                .await?;
            txn.commit().await?;
            if let Some(events) = after_commit {
                self.hub.deliver(events).await?;
            }
            total += count;
            if count < BATCH {
                return Ok(total);
            }
        }
    }

    /// Deletes published events older than `retention`; returns how many.
    pub async fn purge(&self, retention: Duration) -> Result<u64> {
        let cutoff = crate::time::now()
            - chrono::TimeDelta::from_std(retention).unwrap_or(chrono::TimeDelta::MAX);
        let deleted = outbox_events::Entity::delete_many()
            .filter(outbox_events::Column::PublishedAt.lt(cutoff))
            .exec(&self.db)
            .await?;
        Ok(deleted.rows_affected)
    }

    async fn cycle(&self) -> Result<()> {
        self.number().await?;
        self.publish().await?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Start-up
// ---------------------------------------------------------------------------------------

/// The real-time machinery of one replica, running in the background until dropped.
pub struct Events {
    /// The replica's event stream.
    pub hub: Arc<Hub>,
    wake: Arc<Notify>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Events {
    /// Starts the relay, the hub's poll and (with Redis) the listener. Unpublished rows
    /// left by an earlier run are published right away.
    pub async fn start(
        db: DatabaseConnection,
        redis: Option<redis::Client>,
        options: RelayOptions,
    ) -> Result<Events> {
        let hub = Hub::new(db.clone()).await?;
        let wake = Arc::new(Notify::new());
        let bus = match &redis {
            Some(client) => Bus::Redis(client.clone(), options.channel.clone()),
            None => Bus::InProcess,
        };
        let mut tasks = Vec::new();
        if let Some(client) = redis {
            tasks.push(tokio::spawn(crate::db::background(listen(
                client,
                options.channel.clone(),
                hub.clone(),
            ))));
        }
        let poll_hub = hub.clone();
        let poll = options.poll;
        tasks.push(tokio::spawn(crate::db::background(async move {
            let mut every = tokio::time::interval(poll);
            loop {
                every.tick().await;
                if let Err(err) = poll_hub.catch_up().await {
                    tracing::warn!(error = ?err, "reading new events from the outbox failed");
                }
            }
        })));
        let relay = Relay {
            db,
            bus,
            hub: hub.clone(),
        };
        let relay_wake = wake.clone();
        tasks.push(tokio::spawn(crate::db::background(async move {
            if options.hold {
                tracing::warn!("the outbox relay is held (test hook): nothing is published");
                return;
            }
            let mut purged_at = tokio::time::Instant::now();
            loop {
                if let Err(err) = relay.cycle().await {
                    tracing::warn!(error = ?err, "outbox relay cycle failed; retrying");
                }
                if purged_at.elapsed() > Duration::from_secs(60) {
                    purged_at = tokio::time::Instant::now();
                    match relay.purge(options.retention).await {
                        Ok(n) if n > 0 => {
                            tracing::info!(deleted = n, "expired outbox events deleted")
                        }
                        Ok(_) => {}
                        Err(err) => tracing::warn!(error = ?err, "deleting expired events failed"),
                    }
                }
                tokio::select! {
                    _ = relay_wake.notified() => {}
                    _ = tokio::time::sleep(options.sweep) => {}
                }
            }
        })));
        Ok(Events { hub, wake, tasks })
    }

    /// Tells the relay that a transaction with outbox rows committed.
    pub fn written(&self) {
        self.wake.notify_one();
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Feeds
// ---------------------------------------------------------------------------------------

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
}

impl Default for FeedOptions {
    fn default() -> Self {
        FeedOptions {
            revalidate: Duration::from_secs(2),
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
    let (receiver, delivered) = hub.subscribe().await;
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
    let scope = readable(&actor, &filter.venues, filter.capability);
    let state = FeedState {
        db,
        hub,
        // Half the interval: a read stamped when it started is always older than that at the
        // next tick, so every tick sees the user as of at most one interval ago (shared by
        // all of their feeds on this replica).
        max_age: options.revalidate / 2,
        receiver,
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
    receiver: broadcast::Receiver<Arc<Event>>,
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
                received = self.receiver.recv() => match received {
                    Ok(event) => {
                        if event.seq <= self.last {
                            continue;
                        }
                        self.last = event.seq;
                        if self.wants(&event) {
                            return Some(event);
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        // Too slow for the hub's buffer: read what was missed from the outbox.
                        tracing::debug!(missed, "feed lagged; reading the outbox");
                        self.replaying = true;
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
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
        self.actor = actor;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestDb;
    use sea_orm::PaginatorTrait;

    async fn append(db: &impl ConnectionTrait, n: usize) {
        for i in 0..n {
            crate::outbox::append(
                db,
                crate::outbox::BOOKING_CHANGED,
                None,
                serde_json::json!({ "n": i }),
                crate::time::now(),
            )
            .await
            .unwrap();
        }
    }

    async fn seqs(db: &TestDb) -> Vec<(i64, Option<i64>)> {
        outbox_events::Entity::find()
            .order_by_asc(outbox_events::Column::Id)
            .all(&db.conn)
            .await
            .unwrap()
            .into_iter()
            .map(|row| (row.id, row.seq))
            .collect()
    }

    fn relay(db: &TestDb, hub: &Arc<Hub>) -> Relay {
        Relay {
            db: db.conn.clone(),
            bus: Bus::InProcess,
            hub: hub.clone(),
        }
    }

    async fn received(rx: &mut broadcast::Receiver<Arc<Event>>) -> Vec<i64> {
        let mut out = Vec::new();
        while let Ok(event) = rx.try_recv() {
            out.push(event.seq);
        }
        out
    }

    #[tokio::test]
    async fn numbering_is_gap_free_in_id_order_and_publishing_marks_rows() {
        let db = TestDb::new().await;
        let hub = Hub::new(db.conn.clone()).await.unwrap();
        let (mut rx, last) = hub.subscribe().await;
        assert_eq!(last, 0);
        append(&db.conn, 3).await;
        let relay = relay(&db, &hub);
        assert_eq!(relay.number().await.unwrap(), 3);
        let numbered = seqs(&db).await;
        assert_eq!(
            numbered.iter().map(|(_, s)| *s).collect::<Vec<_>>(),
            [Some(1), Some(2), Some(3)]
        );
        append(&db.conn, 2).await;
        assert_eq!(relay.number().await.unwrap(), 2);
        assert_eq!(relay.number().await.unwrap(), 0, "nothing left to number");
        assert_eq!(relay.publish().await.unwrap(), 5);
        assert_eq!(relay.publish().await.unwrap(), 0, "published once");
        assert_eq!(received(&mut rx).await, [1, 2, 3, 4, 5]);
        let unpublished = outbox_events::Entity::find()
            .filter(outbox_events::Column::PublishedAt.is_null())
            .count(&db.conn)
            .await
            .unwrap();
        assert_eq!(unpublished, 0);
    }

    #[tokio::test]
    async fn a_row_committed_late_is_numbered_after_the_rows_already_visible() {
        let db = TestDb::new().await;
        if db.conn.get_database_backend() != DbBackend::Postgres {
            // SQLite has one writer: a row cannot commit after a later one.
            return;
        }
        let hub = Hub::new(db.conn.clone()).await.unwrap();
        let relay = relay(&db, &hub);
        // id 1 is inserted first but commits last.
        let slow = db.conn.begin().await.unwrap();
        append(&slow, 1).await;
        append(&db.conn, 1).await;
        assert_eq!(relay.number().await.unwrap(), 1);
        slow.commit().await.unwrap();
        assert_eq!(relay.number().await.unwrap(), 1);
        let numbered = seqs(&db).await;
        // The late row (smaller id) gets the larger seq: "after 1" still finds it.
        assert!(numbered[0].0 < numbered[1].0);
        assert_eq!((numbered[0].1, numbered[1].1), (Some(2), Some(1)));
    }

    #[tokio::test]
    async fn concurrent_writers_and_relays_number_every_row_once_without_gaps() {
        let db = TestDb::new().await;
        let hub = Hub::new(db.conn.clone()).await.unwrap();
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let conn = db.conn.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..25 {
                    append(&conn, 1).await;
                }
            }));
        }
        for _ in 0..3 {
            let relay = relay(&db, &hub);
            tasks.push(tokio::spawn(async move {
                for _ in 0..10 {
                    relay.number().await.unwrap();
                    tokio::task::yield_now().await;
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        relay(&db, &hub).number().await.unwrap();
        let mut numbered: Vec<i64> = seqs(&db)
            .await
            .into_iter()
            .map(|(_, s)| s.unwrap())
            .collect();
        numbered.sort();
        assert_eq!(numbered, (1..=100).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn the_hub_delivers_in_order_drops_duplicates_and_fills_gaps_from_the_outbox() {
        let db = TestDb::new().await;
        let hub = Hub::new(db.conn.clone()).await.unwrap();
        let (mut rx, _) = hub.subscribe().await;
        append(&db.conn, 5).await;
        relay(&db, &hub).number().await.unwrap();
        let event = |seq: i64| Event {
            seq,
            topic: "t".into(),
            venue_id: None,
            payload: serde_json::json!({}),
            created_at: crate::time::now(),
        };
        // 3 arrives first: 1 and 2 are read from the outbox before it.
        hub.deliver(vec![event(3)]).await.unwrap();
        assert_eq!(received(&mut rx).await, [1, 2, 3]);
        hub.deliver(vec![event(2), event(3)]).await.unwrap();
        assert!(received(&mut rx).await.is_empty(), "duplicates are dropped");
        hub.deliver(vec![event(5), event(4)]).await.unwrap();
        assert_eq!(received(&mut rx).await, [4, 5]);
        append(&db.conn, 1).await;
        relay(&db, &hub).number().await.unwrap();
        hub.catch_up().await.unwrap();
        assert_eq!(
            received(&mut rx).await,
            [6],
            "the poll finds what no bus brought"
        );
    }

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

    /// Two replicas on one database and one Redis channel, neither polling the outbox: what
    /// one publishes reaches the other through Redis. A held relay (a process that died
    /// between commit and publish) publishes nothing; the next relay to start does.
    #[tokio::test]
    async fn events_cross_replicas_through_redis_and_a_held_event_is_published_after_restart() {
        let Some(url) = std::env::var("TEST_REDIS_URL")
            .ok()
            .filter(|u| !u.is_empty())
        else {
            return;
        };
        let db = TestDb::new().await;
        let options = RelayOptions {
            channel: format!("prima:test:{}", Uuid::new_v4()),
            poll: Duration::from_secs(3600),
            sweep: Duration::from_millis(100),
            ..RelayOptions::default()
        };
        let client = || Some(redis::Client::open(url.as_str()).unwrap());
        let held = Events::start(
            db.conn.clone(),
            client(),
            RelayOptions {
                hold: true,
                ..options.clone()
            },
        )
        .await
        .unwrap();
        let watcher = Events::start(
            db.conn.clone(),
            client(),
            RelayOptions {
                hold: true,
                ..options.clone()
            },
        )
        .await
        .unwrap();
        let (mut rx, _) = watcher.hub.subscribe().await;
        // Let the watcher's listener subscribe.
        tokio::time::sleep(Duration::from_millis(300)).await;
        append(&db.conn, 1).await;
        held.written();
        let nothing = tokio::time::timeout(Duration::from_millis(600), rx.recv()).await;
        assert!(nothing.is_err(), "a held relay publishes nothing");
        drop(held);
        let restarted = Events::start(db.conn.clone(), client(), options.clone())
            .await
            .unwrap();
        let event = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("delivered after the restart")
            .unwrap();
        assert_eq!(event.seq, 1);
        append(&db.conn, 1).await;
        restarted.written();
        let event = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("delivered through redis")
            .unwrap();
        assert_eq!(event.seq, 2);
    }
}
