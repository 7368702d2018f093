//! Shared subscriptions: identical live subscriptions of one user run once.
//!
//! A dashboard opened in ten tabs, or ten thousand sockets of one integration, subscribe to
//! the same `bookingChanged` selection with the same access. Run separately, each would
//! follow the event hub with a feed of its own, resolve every event into a response and
//! serialize it: the same work, once per subscriber. Here the first such subscription
//! starts a [`Source`]: one execution of the operation (one feed, one resolution and one
//! serialization per event) whose serialized responses go to every subscriber of the same
//! key through a broadcast channel; each socket only frames them with its operation's id.
//!
//! - **What is shared** ([`prima_graphql::subscriptions::shareable`]): subscriptions whose
//!   stream is "every matching event from now on" and that do not resume from a cursor.
//!   Queries, mutations, replays (`after`) and the leaderboard (whose first push is the
//!   standings when each subscriber arrives) always run on their own.
//! - **The key**: the user, their access as authenticated for this operation (role and the
//!   level at each venue), the document, the operation name and the variables. Responses
//!   depend on nothing else, so a subscriber receives exactly what an execution of its own
//!   would send from the moment it joined. Every operation still authenticates its token
//!   first; a joiner whose access differs (a grant changed since) gets a source of its own.
//! - **Lifetime**: a source runs while one of its subscribers remains; the last one leaving
//!   aborts it (its feed leaves the hub). Its end (the user suspended or losing a venue
//!   asked for, which its feed checks as every feed does) completes every subscriber. A
//!   refusal before execution (limits, validation) reaches the subscribers who were there;
//!   a later subscriber starts a new source, which refuses it in turn.
//! - **Cost**: a joined subscription runs nothing of its own (no SQL, no resolver), so it
//!   draws nothing from the rate limit; the per-socket and per-user operation limits
//!   count it like any other.
//! - **A slow subscriber**: a source keeps its last [`CAPACITY`] responses for subscribers
//!   that have not taken them yet. One that falls further behind (its socket is not being
//!   read) is sent an `error` for its operation, code `SUBSCRIBER_TOO_SLOW`, and the
//!   operation ends; resubscribing with the last `cursor` received (`after`) replays what
//!   it missed from the outbox. Nothing is skipped silently.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use async_graphql::{ErrorExtensionValues, Request, ServerError};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use prima_service::access::{Actor, Level};
use prima_service::events::hub::Audience;
use tokio::sync::broadcast;
use uuid::Uuid;

/// Responses a source keeps for subscribers that have not taken them yet.
pub const CAPACITY: usize = 256;

/// What a source sends its subscribers: serialized once, framed by each.
#[derive(Debug, Clone)]
pub enum Shared {
    /// A response (`next`'s payload, as JSON).
    Next(Arc<str>),
    /// A refusal before execution (`error`'s payload, as JSON); the stream is over.
    Refused(Arc<str>),
    /// The stream ended (`complete`).
    Done,
}

/// What identifies identical subscriptions (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    user: Uuid,
    admin: bool,
    venues: Vec<(Uuid, Level)>,
    query: String,
    operation: Option<String>,
    variables: String,
}

impl Key {
    /// The key of `request` run by `actor`, when it may be shared.
    pub fn of(actor: &Actor, request: &Request) -> Option<Key> {
        if !prima_graphql::subscriptions::shareable(
            &request.query,
            request.operation_name.as_deref(),
            &request.variables,
        ) {
            return None;
        }
        let mut venues: Vec<(Uuid, Level)> = actor
            .venues
            .iter()
            .map(|(venue, level)| (*venue, *level))
            .collect();
        venues.sort_unstable_by_key(|(venue, _)| *venue);
        Some(Key {
            user: actor.user_id,
            admin: actor.is_admin(),
            venues,
            query: request.query.clone(),
            operation: request.operation_name.clone(),
            variables: serde_json::to_string(&request.variables).ok()?,
        })
    }
}

/// The running sources of one replica.
#[derive(Default)]
pub struct Fanout {
    sources: Mutex<HashMap<Key, Weak<Source>>>,
}

/// One execution serving every subscriber of its key.
pub struct Source {
    key: Key,
    fanout: Weak<Fanout>,
    /// Whether the stream has ended (its last message sent), under the lock joiners take,
    /// so nobody joins a source that will send nothing more.
    ended: Arc<Mutex<bool>>,
    sender: broadcast::Sender<Shared>,
    audience: Audience,
    task: tokio::task::AbortHandle,
}

impl Drop for Source {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(fanout) = self.fanout.upgrade() {
            let mut sources = fanout
                .sources
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            // A new source of the same key may have replaced this one already.
            if sources
                .get(&self.key)
                .is_some_and(|source| source.strong_count() == 0)
            {
                sources.remove(&self.key);
            }
        }
    }
}

/// A subscriber's membership: one count of its source's audience while it lasts.
struct Member {
    source: Arc<Source>,
}

impl Drop for Member {
    fn drop(&mut self) {
        self.source.audience.leave();
    }
}

impl Fanout {
    /// A stream of what the source of `key` sends from now on, starting that source with
    /// `start` (given the audience its feed serves) when none runs.
    pub fn join<S>(
        self: &Arc<Fanout>,
        key: Key,
        start: impl FnOnce(Audience) -> S,
    ) -> BoxStream<'static, Shared>
    where
        S: Stream<Item = Shared> + Send + 'static,
    {
        let mut sources = self.sources.lock().unwrap_or_else(PoisonError::into_inner);
        // Dropped only after the lock is released: the last reference to a source removes
        // it from the map, under that lock.
        let existing = sources.get(&key).and_then(Weak::upgrade);
        if let Some(source) = &existing {
            let ended = source.ended.lock().unwrap_or_else(PoisonError::into_inner);
            if !*ended {
                let receiver = source.sender.subscribe();
                source.audience.join();
                drop(ended);
                let member = Member {
                    source: source.clone(),
                };
                drop(sources);
                return follow(member, receiver);
            }
        }
        let (sender, receiver) = broadcast::channel(CAPACITY);
        // The first subscriber is counted from the start: the hub counts the audience once
        // the source's feed follows it.
        let audience = Audience::new(1);
        let stream = start(audience.clone());
        let ended = Arc::new(Mutex::new(false));
        let task = tokio::spawn({
            let (sender, ended) = (sender.clone(), ended.clone());
            async move {
                let mut stream = std::pin::pin!(stream);
                while let Some(shared) = stream.next().await {
                    let last = !matches!(shared, Shared::Next(_));
                    // Marked ended under the joiners' lock before the last message goes,
                    // so a joiner either receives it or starts a new source.
                    let mut ended = ended.lock().unwrap_or_else(PoisonError::into_inner);
                    *ended |= last;
                    let _ = sender.send(shared);
                    if last {
                        return;
                    }
                }
                // The execution ended without saying so: end its subscribers.
                *ended.lock().unwrap_or_else(PoisonError::into_inner) = true;
                let _ = sender.send(Shared::Done);
            }
        });
        let source = Arc::new(Source {
            key: key.clone(),
            fanout: Arc::downgrade(self),
            ended,
            sender,
            audience,
            task: task.abort_handle(),
        });
        sources.insert(key, Arc::downgrade(&source));
        drop(sources);
        drop(existing);
        follow(Member { source }, receiver)
    }

    /// How many sources run.
    pub fn sources(&self) -> usize {
        let sources = self.sources.lock().unwrap_or_else(PoisonError::into_inner);
        sources.values().filter(|s| s.strong_count() > 0).count()
    }
}

/// A member's stream: every message from its receiver until the last one; a member that
/// fell behind by more than [`CAPACITY`] gets [`too_slow`] instead, and its stream ends.
fn follow(member: Member, receiver: broadcast::Receiver<Shared>) -> BoxStream<'static, Shared> {
    futures::stream::unfold(Some((member, receiver)), |state| async move {
        let (member, mut receiver) = state?;
        match receiver.recv().await {
            Ok(Shared::Next(payload)) => Some((Shared::Next(payload), Some((member, receiver)))),
            Ok(last) => Some((last, None)),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::info!(
                    missed,
                    "a shared subscriber fell behind; ending its operation"
                );
                Some((Shared::Refused(too_slow(missed)), None))
            }
            // The source is gone without a last message (aborted): nothing more comes.
            Err(broadcast::error::RecvError::Closed) => Some((Shared::Done, None)),
        }
    })
    .boxed()
}

/// The `error` payload of a subscriber that fell behind.
fn too_slow(missed: u64) -> Arc<str> {
    let mut error = ServerError::new(
        format!(
            "this subscription fell {missed} events behind (the socket was not read fast enough) \
             and was ended; subscribe again with `after` set to the last cursor received to \
             replay what was missed"
        ),
        None,
    );
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", "SUBSCRIBER_TOO_SLOW");
    error.extensions = Some(extensions);
    serde_json::to_string(&[error])
        .unwrap_or_else(|_| "[]".to_owned())
        .into()
}

#[cfg(test)]
mod tests {
    use futures::channel::mpsc;
    use prima_entity::enums::UserRole;

    use super::*;

    fn key(user: u128) -> Key {
        let actor = Actor {
            user_id: Uuid::from_u128(user),
            name: "A".into(),
            role: UserRole::Manager,
            venues: Arc::new(HashMap::from([(Uuid::from_u128(9), Level::Admin)])),
        };
        Key::of(
            &actor,
            &Request::new("subscription { bookingChanged { cursor } }"),
        )
        .expect("a live subscription is shared")
    }

    /// A source fed by hand: the sender, and how many sources `start` made.
    fn start(
        made: &Arc<std::sync::atomic::AtomicUsize>,
    ) -> (
        mpsc::UnboundedSender<Shared>,
        impl FnOnce(Audience) -> mpsc::UnboundedReceiver<Shared>,
    ) {
        let (tx, rx) = mpsc::unbounded();
        let made = made.clone();
        (tx, move |_| {
            made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            rx
        })
    }

    fn next(text: &str) -> Shared {
        Shared::Next(text.into())
    }

    fn text(shared: Option<Shared>) -> String {
        match shared {
            Some(Shared::Next(text)) => format!("next {text}"),
            Some(Shared::Refused(text)) => format!("refused {text}"),
            Some(Shared::Done) => "done".into(),
            None => "end".into(),
        }
    }

    #[tokio::test]
    async fn subscribers_of_one_key_share_one_source_until_the_last_leaves() {
        let fanout = Arc::new(Fanout::default());
        let made = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (tx, first) = start(&made);
        let mut a = fanout.join(key(1), first);
        let (_unused, second) = start(&made);
        let mut b = fanout.join(key(1), second);
        let (other_tx, third) = start(&made);
        let mut c = fanout.join(key(2), third);
        assert_eq!(made.load(std::sync::atomic::Ordering::Relaxed), 2);
        assert_eq!(fanout.sources(), 2);

        tx.unbounded_send(next("1")).unwrap();
        assert_eq!(text(a.next().await), "next 1");
        assert_eq!(text(b.next().await), "next 1");
        other_tx.unbounded_send(next("x")).unwrap();
        assert_eq!(text(c.next().await), "next x");

        drop(a);
        tx.unbounded_send(next("2")).unwrap();
        assert_eq!(text(b.next().await), "next 2");
        drop(b);
        assert_eq!(
            fanout.sources(),
            1,
            "the last member took its source with it"
        );
        // The execution is aborted: it drops its stream (the runtime's next turn).
        tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while !tx.is_closed() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the source's execution was aborted");

        // The other key's source ends: its member gets the end; a new member of that key
        // starts a new source.
        other_tx.unbounded_send(Shared::Done).unwrap();
        assert_eq!(text(c.next().await), "done");
        assert_eq!(text(c.next().await), "end");
        let (again_tx, again) = start(&made);
        let mut d = fanout.join(key(2), again);
        assert_eq!(made.load(std::sync::atomic::Ordering::Relaxed), 3);
        again_tx.unbounded_send(next("y")).unwrap();
        assert_eq!(text(d.next().await), "next y");
    }

    #[tokio::test]
    async fn a_member_that_falls_behind_is_told_and_ended_and_the_others_go_on() {
        let fanout = Arc::new(Fanout::default());
        let made = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (tx, first) = start(&made);
        let mut reader = fanout.join(key(1), first);
        let (_unused, second) = start(&made);
        let mut sleeper = fanout.join(key(1), second);
        for i in 0..CAPACITY + 10 {
            tx.unbounded_send(next(&i.to_string())).unwrap();
            assert_eq!(text(reader.next().await), format!("next {i}"));
        }
        let told = text(sleeper.next().await);
        assert!(told.contains("SUBSCRIBER_TOO_SLOW"), "{told}");
        assert!(told.contains("fell 10 events behind"), "{told}");
        assert_eq!(text(sleeper.next().await), "end");
        tx.unbounded_send(next("more")).unwrap();
        assert_eq!(text(reader.next().await), "next more");
    }
}
