//! Real time: from the outbox to every subscriber of every replica, losing nothing
//! (ARCHITECTURE.md "Real time").
//!
//! The pieces, each replica running all of them:
//!
//! - **Outbox** ([`outbox`]): a change writes its event row in its own transaction.
//! - **Relay** ([`relay`]): after commit (woken by the pool's [`relay::Doorbell`], which the
//!   write paths ring, and by a sweep every
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
//! - **Bus** ([`bus`]): in-process (the embedded default: the relay hands events straight to
//!   the hub) or Redis pub/sub (one channel, [`bus::CHANNEL`] by default; every replica's
//!   listener feeds its own hub; replicas of one database must share the channel, and other
//!   databases on the same Redis must not).
//! - **Hub** ([`hub`]): the replica's ordered, gap-free stream. It delivers events strictly
//!   in `seq` order, drops duplicates, and fills any gap (a lost pub/sub message, a Redis
//!   restart, another replica's crash before publishing) by reading the missing rows from
//!   the outbox. It also polls the outbox every second, so subscribers keep receiving even
//!   while Redis is down. It routes each event only to the feeds of its topic that follow
//!   its venue (or every venue), each through a queue of its own; a feed whose queue
//!   overflowed reads what it missed from the outbox.
//! - **Feeds** ([`feed`]): one per subscription: replays from the outbox after a cursor, then
//!   follows the hub; filters every event by the subscriber's access, re-checked every
//!   [`feed::FeedOptions::revalidate`] (a suspended user or revoked venue ends the feed).
//!
//! One file each: [`outbox`], [`relay`], [`bus`], [`hub`], [`feed`]; this file holds what
//! they share (the [`Event`]) and starts them ([`Events`]).

pub mod bus;
pub mod feed;
pub mod hub;
pub mod outbox;
pub mod relay;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use prima_entity::outbox_events;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::db::Db;
use crate::error::Result;
use bus::{Bus, listen};
use hub::Hub;
use relay::{Doorbell, Relay, RelayOptions};

/// Rows a relay or hub handles per statement.
const BATCH: u64 = 500;

/// An event as delivered: a numbered outbox row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Delivery sequence: gap-free, in commit order; the cursor clients resume from.
    pub seq: i64,
    /// What kind of event, e.g. [`outbox::BOOKING_CHANGED`].
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

/// The real-time machinery of one replica, running in the background until dropped.
pub struct Events {
    /// The replica's event stream.
    pub hub: Arc<Hub>,
    wake: Doorbell,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Events {
    /// Starts the relay, the hub's poll and (with Redis) the listener, for the pool `db`:
    /// its relay wakes when `db`'s [`Doorbell`] rings. Unpublished rows left by an earlier
    /// run are published right away.
    pub async fn start(
        db: &Db,
        redis: Option<redis::Client>,
        options: RelayOptions,
    ) -> Result<Events> {
        let wake = db.relay.clone();
        let db = db.conn.clone();
        let hub = Hub::new(db.clone()).await?;
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
                    _ = relay_wake.heard() => {}
                    _ = tokio::time::sleep(options.sweep) => {}
                }
            }
        })));
        Ok(Events { hub, wake, tasks })
    }

    /// Tells the relay that a transaction with outbox rows committed (what the pool's
    /// [`Doorbell`] does; the booking write path rings that itself).
    pub fn written(&self) {
        self.wake.ring();
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
