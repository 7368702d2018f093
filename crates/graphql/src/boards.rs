//! Leaderboards shared per programme on a replica: every `incentiveLeaderboard` subscriber
//! of one programme reads the same standings, so one task per programme computes them,
//! one read per push (the top participants and their promoters: two statements, however
//! many subscribe), and each subscriber takes its `top` from them.
//!
//! - A [`Board`] follows the hub for the programme's progress events (from before it first
//!   reads the standings, so none falls between), coalesces them as a subscription did
//!   (at most one computation per [`LEADERBOARD_INTERVAL`], always ending on the latest
//!   state), reads the top [`MAX_TOP`] once and publishes them on a `watch` channel, which
//!   keeps only the latest: a slow subscriber skips intermediate standings, never the
//!   final ones.
//! - The standings are read with the replica's own rights (every participant of the
//!   programme); who may see them is decided per subscriber, when it subscribes and for
//!   as long as it stays (its own event feed re-checks its access and ends the
//!   subscription when that is lost), and each field is resolved with the subscriber's
//!   rights.
//! - [`Boards`] holds a weak reference per programme: the last subscriber to leave drops
//!   the board and stops its task.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use futures::StreamExt;
use prima_entity::enums::UserRole;
use prima_entity::promoters;
use prima_service::access::Actor;
use prima_service::db::Db;
use prima_service::events::hub::{Audience, Hub, Route};
use prima_service::events::{self, Event};
use prima_service::incentives::Ranked;
use prima_service::paging::PageArgs;
use tokio::sync::watch;
use uuid::Uuid;

/// How often, at most, a leaderboard is pushed (bursts are coalesced, and the last push
/// always shows the final standings).
pub const LEADERBOARD_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

/// The most participants a board reads (the largest `top` a subscriber may ask for).
pub const MAX_TOP: i32 = 100;

/// Standings at one moment: the cursor of the event that moved them (none for the first),
/// and the top [`MAX_TOP`] participants with their ranks.
#[derive(Debug, Clone)]
pub struct Standings {
    /// The event's cursor.
    pub cursor: Option<String>,
    /// Participants by rank.
    pub entries: Vec<Ranked>,
    /// Their promoters (all at the programme's venue, so visible to every subscriber, who
    /// holds financial reads there), read with them: a subscriber's `promoter` costs no
    /// statement of its own.
    pub promoters: HashMap<Uuid, Arc<promoters::Model>>,
}

/// The replica's boards, one per programme with subscribers.
pub struct Boards {
    db: Db,
    hub: Arc<Hub>,
    boards: Mutex<HashMap<Uuid, Weak<Board>>>,
    computations: AtomicU64,
}

/// One programme's shared standings; dropping the last handle stops its task.
pub struct Board {
    standings: watch::Receiver<Option<Arc<Standings>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Board {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Board {
    /// The standings as they change, from the current ones on.
    pub fn watch(&self) -> watch::Receiver<Option<Arc<Standings>>> {
        self.standings.clone()
    }
}

impl Boards {
    /// No boards yet.
    pub fn new(db: Db, hub: Arc<Hub>) -> Arc<Boards> {
        Arc::new(Boards {
            db,
            hub,
            boards: Mutex::new(HashMap::new()),
            computations: AtomicU64::new(0),
        })
    }

    /// How many times the boards have read standings (a metric, and what tests count).
    pub fn computations(&self) -> u64 {
        self.computations.load(Ordering::Relaxed)
    }

    /// How many boards are running.
    pub fn running(&self) -> usize {
        let boards = self.boards.lock().unwrap_or_else(|e| e.into_inner());
        boards.values().filter(|b| b.strong_count() > 0).count()
    }

    /// The board of programme `id` at `venue`, started if none runs.
    pub fn join(self: &Arc<Self>, id: Uuid, venue: Uuid) -> Arc<Board> {
        let mut boards = self.boards.lock().unwrap_or_else(|e| e.into_inner());
        boards.retain(|_, b| b.strong_count() > 0);
        if let Some(board) = boards.get(&id).and_then(Weak::upgrade) {
            return board;
        }
        let (tx, rx) = watch::channel(None);
        let task = tokio::spawn(self.clone().run(id, venue, tx));
        let board = Arc::new(Board {
            standings: rx,
            task,
        });
        boards.insert(id, Arc::downgrade(&board));
        board
    }

    /// The board's task: the standings now, then after each coalesced burst of events.
    async fn run(
        self: Arc<Self>,
        id: Uuid,
        venue: Uuid,
        tx: watch::Sender<Option<Arc<Standings>>>,
    ) {
        let route = Route {
            topic: Some(prima_service::incentives::progress::PROGRESS_CHANGED),
            venues: Some([venue].into_iter().collect()),
        };
        // Following before the first read: an event committed meanwhile triggers a read.
        let (following, _) = self.hub.follow(route, Audience::new(0)).await;
        let programme = id.to_string();
        let moved = futures::stream::unfold(following, |mut following| async move {
            following.recv().await.map(|event| (event, following))
        })
        .filter(move |event: &Arc<Event>| {
            let ours = event.payload["incentiveId"].as_str() == Some(programme.as_str());
            async move { ours }
        });
        if let Some(first) = self.read(id, venue, None).await {
            let _ = tx.send(Some(Arc::new(first)));
        }
        let mut bursts = Box::pin(events::feed::coalesce(moved, LEADERBOARD_INTERVAL));
        while let Some(event) = bursts.next().await {
            if let Some(now) = self
                .read(id, venue, Some(events::feed::cursor(event.seq)))
                .await
            {
                let _ = tx.send(Some(Arc::new(now)));
            }
        }
    }

    /// One read of the top [`MAX_TOP`] and their promoters (two statements); `None`
    /// (logged) when the database fails, so the next burst tries again.
    async fn read(&self, id: Uuid, venue: Uuid, cursor: Option<String>) -> Option<Standings> {
        self.computations.fetch_add(1, Ordering::Relaxed);
        let replica = Actor {
            user_id: Uuid::nil(),
            name: "leaderboard".into(),
            role: UserRole::Admin,
            venues: Arc::default(),
        };
        let page = PageArgs {
            first: Some(MAX_TOP),
            ..PageArgs::default()
        };
        let read = async {
            let entries: Vec<Ranked> = prima_service::incentives::leaderboard_pages(
                &self.db.conn,
                &replica,
                &[id],
                &page,
                false,
            )
            .await?
            .remove(&id)
            .map(|page| page.edges.into_iter().map(|edge| edge.node).collect())
            .unwrap_or_default();
            let ids: Vec<Uuid> = entries.iter().map(|r| r.progress.promoter_id).collect();
            let promoters = if ids.is_empty() {
                HashMap::new()
            } else {
                prima_service::access::scope::financial_by_ids::<promoters::Entity>(
                    &self.db.conn,
                    &replica,
                    &ids,
                )
                .await?
                .into_iter()
                .filter(|(_, promoter)| promoter.venue_id == venue)
                .map(|(id, promoter)| (id, Arc::new(promoter)))
                .collect()
            };
            Ok::<_, prima_service::Error>(Standings {
                cursor,
                entries,
                promoters,
            })
        };
        match read.await {
            Ok(standings) => Some(standings),
            Err(err) => {
                tracing::warn!(error = ?err, incentive = %id, "reading a leaderboard failed");
                None
            }
        }
    }
}
