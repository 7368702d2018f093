//! The outbox relay: numbers committed outbox rows, publishes them to the bus and deletes
//! them after the retention (see [`crate::events`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prima_entity::outbox_events;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement, TransactionTrait,
};

use super::bus::{Bus, CHANNEL};
use super::hub::{Hub, newest_seq};
use super::{BATCH, Event};
use crate::error::Result;

/// The PostgreSQL advisory lock key that serialises numbering across replicas.
const NUMBERING_LOCK: i64 = 0x7072_696d_615f_7365; // "prima_se"

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

/// The relay's doorbell: rung after a transaction that wrote outbox rows commits, so the
/// relay numbers and publishes them now rather than at its next sweep. It travels with the
/// pool ([`crate::db::Db::relay`]), so a write path rings it without its caller's help.
/// Clones ring the same bell; a bell no relay listens to (a test, a command) keeps one ring,
/// harmlessly.
#[derive(Debug, Clone, Default)]
pub struct Doorbell(Arc<Bell>);

#[derive(Debug, Default)]
struct Bell {
    notify: tokio::sync::Notify,
    rung: AtomicU64,
}

impl Doorbell {
    /// Tells the relay that a transaction with outbox rows committed.
    pub fn ring(&self) {
        self.0.rung.fetch_add(1, Ordering::Relaxed);
        self.0.notify.notify_one();
    }

    /// How often it was rung so far.
    pub fn rung(&self) -> u64 {
        self.0.rung.load(Ordering::Relaxed)
    }

    /// Waits for the next ring (or the one kept since the last wait).
    pub(super) async fn heard(&self) {
        self.0.notify.notified().await;
    }
}

/// The outbox relay of one replica (see the module documentation).
pub struct Relay {
    pub(super) db: DatabaseConnection,
    pub(super) bus: Bus,
    pub(super) hub: Arc<Hub>,
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

    pub(super) async fn cycle(&self) -> Result<()> {
        self.number().await?;
        self.publish().await?;
        Ok(())
    }
}
