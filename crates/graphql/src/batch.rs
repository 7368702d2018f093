//! The request's batcher: every load waits until the whole request is waiting, then the
//! loads run together, one batch per key type. The number of statements a query runs then
//! depends only on its shape (one round per level of the selection), never on the machine's
//! load, the number of connections or a timer.
//!
//! How it knows the request is waiting: async-graphql resolves the items of a list and the
//! fields of an object by polling them all in one pass of the request's future. A
//! [`Batcher::load_one`] registers its key and waits. The request's future runs inside
//! [`Driven`] (a future) or [`DrivenStream`] (a subscription's stream), which, after each
//! poll that leaves the request pending without it having asked to be polled again (no
//! branch woke itself, e.g. to yield), and while no round is running, takes every key
//! registered so far and runs them as one round. So all the siblings of a level are in its
//! round, whichever branch got there first. The request is polled outside tokio's
//! cooperative budget: a resource out of budget defers its wake-up until the worker has run
//! every other ready task, a wake-up a driver could not see (an explicit
//! `tokio::task::yield_now` in a resolver would defer the same way: there is none).
//!
//! Loaded values are kept for the rest of the request (for a subscription: until its next
//! event is answered), so a value asked for twice is read once. A failed batch is not kept:
//! every load waiting on it gets its error.
//!
//! A batcher that no driver runs (a schema executed directly, as in some unit tests) loads
//! each key at once, one batch of one.

use std::any::{Any, TypeId};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Wake, Waker};

use async_graphql::dataloader::Loader;
use futures::Stream;
use futures::future::{BoxFuture, join_all};
use prima_service::Error;

use crate::loaders::MAX_BATCH;

/// A key a batch function takes.
pub trait Key: Send + Sync + Hash + Eq + Clone + 'static {}
impl<K: Send + Sync + Hash + Eq + Clone + 'static> Key for K {}

/// What one batch answered: a value per key found.
type Answer<K, V> = Result<HashMap<K, V>, Error>;

/// The request's loads: what is waiting for the next round and what was loaded. `L` holds
/// the batch functions (the request's [`crate::loaders::Loaders`]).
pub struct Batcher<L> {
    loaders: Arc<L>,
    /// Set by the first poll of a driver; until then, loads run at once.
    driven: AtomicBool,
    state: Mutex<State<L>>,
}

struct State<L> {
    /// The batches of the next round, one per key type.
    waiting: HashMap<TypeId, Box<dyn Waiting<L>>>,
    /// Every batch of the request so far (waiting, running or answered), per key type
    /// (`Vec<Arc<Done<K, V>>>`): where a load looks first.
    batches: HashMap<TypeId, Box<dyn Any + Send>>,
}

/// One batch of one key type: its keys, and its answer once it is in.
struct Done<K, V> {
    keys: Mutex<HashSet<K>>,
    answer: OnceLock<Answer<K, V>>,
    wakers: Mutex<Vec<Waker>>,
}

impl<K: Key, V> Done<K, V> {
    fn new() -> Self {
        Done {
            keys: Mutex::new(HashSet::new()),
            answer: OnceLock::new(),
            wakers: Mutex::new(Vec::new()),
        }
    }

    /// Stores the answer and wakes every load waiting for it.
    fn finish(&self, answer: Answer<K, V>) {
        let _ = self.answer.set(answer);
        for waker in lock(&self.wakers).drain(..) {
            waker.wake();
        }
    }
}

/// A batch of the next round, type-erased so that one round can hold every key type.
trait Waiting<L>: Send {
    fn as_any(&self) -> &dyn Any;
    /// Loads the batch and stores the answer.
    fn run(self: Box<Self>, loaders: Arc<L>) -> BoxFuture<'static, ()>;
}

struct Next<K, V>(Arc<Done<K, V>>);

impl<L, K, V> Waiting<L> for Next<K, V>
where
    L: Loader<K, Value = V, Error = Error>,
    K: Key,
    V: Clone + Send + Sync + 'static,
{
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn run(self: Box<Self>, loaders: Arc<L>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let keys: Vec<K> = lock(&self.0.keys).iter().cloned().collect();
            let mut found = HashMap::with_capacity(keys.len());
            for chunk in keys.chunks(MAX_BATCH) {
                match loaders.load(chunk).await {
                    Ok(part) => found.extend(part),
                    Err(err) => return self.0.finish(Err(err)),
                }
            }
            self.0.finish(Ok(found));
        })
    }
}

/// Where a load finds its value.
enum Found<K, V> {
    /// Answered by an earlier batch (`None`: asked for, not found).
    Value(Option<V>),
    /// In a batch not yet answered.
    Pending(Arc<Done<K, V>>),
}

impl<L: Send + Sync + 'static> Batcher<L> {
    /// A batcher for one request.
    pub fn new(loaders: L) -> Arc<Batcher<L>> {
        Arc::new(Batcher {
            loaders: Arc::new(loaders),
            driven: AtomicBool::new(false),
            state: Mutex::new(State {
                waiting: HashMap::new(),
                batches: HashMap::new(),
            }),
        })
    }

    /// The value of one key, loaded in the request's next round with every other key
    /// waiting then; `None` when the batch function did not return it (absent, or not
    /// visible to the caller).
    pub async fn load_one<K, V>(self: &Arc<Self>, key: K) -> Result<Option<V>, Error>
    where
        K: Key,
        V: Clone + Send + Sync + 'static,
        L: Loader<K, Value = V, Error = Error>,
    {
        if !self.driven.load(Ordering::Acquire) {
            let mut found = self.loaders.load(std::slice::from_ref(&key)).await?;
            return Ok(found.remove(&key));
        }
        let done = match lock(&self.state).find_or_add::<K, V>(&key) {
            Found::Value(value) => return Ok(value),
            Found::Pending(done) => done,
        };
        match (Answered { done: &done }).await {
            Ok(found) => Ok(found.get(&key).cloned()),
            Err(err) => Err(err.clone()),
        }
    }

    /// Values the request already has (a page of venues, for the fields below it that need
    /// their venue), kept as if loaded.
    pub fn feed_many<K, V>(&self, values: impl IntoIterator<Item = (K, V)>)
    where
        K: Key,
        V: Clone + Send + Sync + 'static,
        L: Loader<K, Value = V, Error = Error>,
    {
        let found: HashMap<K, V> = values.into_iter().collect();
        let done = Done::<K, V>::new();
        lock(&done.keys).extend(found.keys().cloned());
        let _ = done.answer.set(Ok(found));
        lock(&self.state).batches_of::<K, V>().push(Arc::new(done));
    }

    /// Every batch waiting, as one round; `None` when nothing waits.
    fn take_round(self: &Arc<Self>) -> Option<BoxFuture<'static, ()>> {
        let waiting = std::mem::take(&mut lock(&self.state).waiting);
        if waiting.is_empty() {
            return None;
        }
        let batches: Vec<_> = waiting
            .into_values()
            .map(|batch| batch.run(self.loaders.clone()))
            .collect();
        Some(Box::pin(async move {
            join_all(batches).await;
        }))
    }

    /// Forgets what was loaded (a subscription, between its events).
    fn forget(&self) {
        lock(&self.state).batches.clear();
    }
}

impl<L: Send + Sync + 'static> State<L> {
    /// The request's batches of one key type.
    fn batches_of<K: Key, V: Send + Sync + 'static>(&mut self) -> &mut Vec<Arc<Done<K, V>>> {
        self.batches
            .entry(TypeId::of::<K>())
            .or_insert_with(|| Box::new(Vec::<Arc<Done<K, V>>>::new()))
            .downcast_mut::<Vec<Arc<Done<K, V>>>>()
            .expect("batches are filed by their key type")
    }

    /// The key's value from an earlier batch, the batch not yet answered that has it, or
    /// the next round's batch, to which the key is added.
    fn find_or_add<K, V>(&mut self, key: &K) -> Found<K, V>
    where
        K: Key,
        V: Clone + Send + Sync + 'static,
        L: Loader<K, Value = V, Error = Error>,
    {
        for done in self.batches_of::<K, V>().iter() {
            if !lock(&done.keys).contains(key) {
                continue;
            }
            match done.answer.get() {
                Some(Ok(found)) => return Found::Value(found.get(key).cloned()),
                Some(Err(_)) => {} // a failed batch is asked again
                None => return Found::Pending(done.clone()),
            }
        }
        if !self.waiting.contains_key(&TypeId::of::<K>()) {
            let done = Arc::new(Done::<K, V>::new());
            self.batches_of::<K, V>().push(done.clone());
            self.waiting.insert(TypeId::of::<K>(), Box::new(Next(done)));
        }
        let next = &self.waiting[&TypeId::of::<K>()];
        let done = next
            .as_any()
            .downcast_ref::<Next<K, V>>()
            .expect("batches are filed by their key type")
            .0
            .clone();
        lock(&done.keys).insert(key.clone());
        Found::Pending(done)
    }
}

/// Waits for a batch's answer.
struct Answered<'a, K, V> {
    done: &'a Done<K, V>,
}

impl<'a, K, V> Future for Answered<'a, K, V> {
    type Output = &'a Answer<K, V>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let done = self.done;
        // Checked under the wakers' lock: `finish` sets the answer before it takes it, so
        // either the answer is seen here or this waker is woken.
        let mut wakers = lock(&done.wakers);
        match done.answer.get() {
            Some(answer) => Poll::Ready(answer),
            None => {
                if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                    wakers.push(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves nothing half-written that matters.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The rounds of one request: polls the running round, and after each poll of the request
/// that leaves it quietly pending, starts the next.
struct Rounds<L> {
    batcher: Arc<Batcher<L>>,
    running: Option<BoxFuture<'static, ()>>,
}

impl<L: Send + Sync + 'static> Rounds<L> {
    fn new(batcher: Arc<Batcher<L>>) -> Self {
        batcher.driven.store(true, Ordering::Release);
        Rounds {
            batcher,
            running: None,
        }
    }

    /// Polls `inner` (the request) and the rounds until the request is ready, or pending with
    /// a round running or nothing to load.
    fn drive<T>(
        &mut self,
        cx: &mut Context<'_>,
        mut inner: impl FnMut(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        loop {
            if let Some(round) = &mut self.running
                && round.as_mut().poll(cx).is_ready()
            {
                self.running = None;
            }
            let watch = Arc::new(WakeWatch {
                woken: AtomicBool::new(false),
                waker: cx.waker().clone(),
            });
            let waker = Waker::from(watch.clone());
            // Without tokio's cooperative budget: a resource that runs out of budget hands
            // its waker to the scheduler to be woken later, which this could not see.
            let mut request = tokio::task::unconstrained(std::future::poll_fn(&mut inner));
            if let Poll::Ready(out) = Pin::new(&mut request).poll(&mut Context::from_waker(&waker))
            {
                return Poll::Ready(out);
            }
            if self.running.is_some() || watch.woken.load(Ordering::Acquire) {
                return Poll::Pending;
            }
            match self.batcher.take_round() {
                Some(round) => self.running = Some(round),
                None => return Poll::Pending,
            }
        }
    }
}

/// Forwards a wake-up, noting that it happened.
struct WakeWatch {
    woken: AtomicBool,
    waker: Waker,
}

impl Wake for WakeWatch {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.waker.wake_by_ref();
    }
}

pin_project_lite::pin_project! {
    /// A request's future, with its batcher's rounds run in between polls.
    pub struct Driven<F, L> {
        #[pin]
        inner: F,
        rounds: Rounds<L>,
    }
}

/// Runs `request` with `batcher`'s rounds.
pub fn drive<F: Future, L: Send + Sync + 'static>(
    batcher: Arc<Batcher<L>>,
    request: F,
) -> Driven<F, L> {
    Driven {
        inner: request,
        rounds: Rounds::new(batcher),
    }
}

impl<F: Future, L: Send + Sync + 'static> Future for Driven<F, L> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let mut this = self.project();
        this.rounds.drive(cx, |cx| this.inner.as_mut().poll(cx))
    }
}

pin_project_lite::pin_project! {
    /// A subscription's stream of responses, with its batcher's rounds run in between
    /// polls; what was loaded is forgotten after each response, so every event is answered
    /// from the database as it is then.
    pub struct DrivenStream<S, L> {
        #[pin]
        inner: S,
        rounds: Rounds<L>,
    }
}

/// Runs `responses` with `batcher`'s rounds.
pub fn drive_stream<S: Stream, L: Send + Sync + 'static>(
    batcher: Arc<Batcher<L>>,
    responses: S,
) -> DrivenStream<S, L> {
    DrivenStream {
        inner: responses,
        rounds: Rounds::new(batcher),
    }
}

impl<S: Stream, L: Send + Sync + 'static> Stream for DrivenStream<S, L> {
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let mut this = self.project();
        let next = this
            .rounds
            .drive(cx, |cx| this.inner.as_mut().poll_next(cx));
        if next.is_ready() {
            this.rounds.batcher.forget();
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use futures::StreamExt;

    use super::*;

    /// Doubles its keys; keys ending in 9 do not exist. Records each batch.
    #[derive(Default)]
    struct Doubler {
        batches: Mutex<Vec<Vec<u32>>>,
        failures_left: AtomicUsize,
    }

    impl Loader<u32> for Doubler {
        type Value = u32;
        type Error = Error;

        async fn load(&self, keys: &[u32]) -> Result<HashMap<u32, u32>, Error> {
            let mut batch = keys.to_vec();
            batch.sort_unstable();
            lock(&self.batches).push(batch);
            // As a database would: answer later, from elsewhere.
            tokio::task::yield_now().await;
            let fail = self
                .failures_left
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                .is_ok();
            if fail {
                return Err(Error::internal(anyhow::anyhow!("the database is away")));
            }
            Ok(keys
                .iter()
                .filter(|k| *k % 10 != 9)
                .map(|k| (*k, k * 2))
                .collect())
        }
    }

    fn batches(batcher: &Batcher<Doubler>) -> Vec<Vec<u32>> {
        lock(&batcher.loaders.batches).clone()
    }

    /// Returns pending once, waking itself at once (as `FuturesUnordered` does when it
    /// yields to other tasks).
    async fn yield_at_once() {
        let mut yielded = false;
        std::future::poll_fn(|cx| {
            if yielded {
                return Poll::Ready(());
            }
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        })
        .await
    }

    #[tokio::test]
    async fn every_sibling_is_in_one_batch_however_slowly_each_gets_there() {
        let batcher = Batcher::new(Doubler::default());
        let request = {
            let batcher = batcher.clone();
            async move {
                join_all((0..100u32).map(|key| {
                    let batcher = batcher.clone();
                    async move {
                        for _ in 0..key % 4 {
                            yield_at_once().await;
                        }
                        if key % 10 == 0 {
                            // A starved CPU: this branch takes long to reach its load.
                            std::thread::sleep(Duration::from_millis(3));
                        }
                        batcher.load_one(key).await
                    }
                }))
                .await
            }
        };
        let answers = drive(batcher.clone(), request).await;
        assert_eq!(batches(&batcher), vec![(0..100).collect::<Vec<_>>()]);
        assert_eq!(answers[21].as_ref().unwrap(), &Some(42));
        assert_eq!(
            answers[19].as_ref().unwrap(),
            &None,
            "absent keys answer None"
        );
    }

    #[tokio::test]
    async fn each_level_is_one_round_and_a_value_is_loaded_once() {
        let batcher = Batcher::new(Doubler::default());
        let request = {
            let batcher = batcher.clone();
            async move {
                join_all((1..=5u32).map(|key| {
                    let batcher = batcher.clone();
                    async move {
                        let parent = batcher.load_one(key).await.unwrap().unwrap();
                        // The next level; key 2 was loaded by the first round already.
                        let child = batcher.load_one(parent).await.unwrap();
                        let again = batcher.load_one(key).await.unwrap();
                        (child, again)
                    }
                }))
                .await
            }
        };
        let answers = drive(batcher.clone(), request).await;
        assert_eq!(
            batches(&batcher),
            vec![vec![1, 2, 3, 4, 5], vec![6, 8, 10]],
            "2 and 4 come from the first round's answers"
        );
        assert_eq!(answers[0], (Some(4), Some(2)));
        assert_eq!(answers[4], (Some(20), Some(10)));
    }

    #[tokio::test]
    async fn a_failed_batch_fails_every_load_in_it_and_is_asked_again_later() {
        let batcher = Batcher::new(Doubler::default());
        batcher.loaders.failures_left.store(1, Ordering::Release);
        let request = {
            let batcher = batcher.clone();
            async move {
                let first = join_all([1u32, 2].map(|key| batcher.load_one(key))).await;
                let retried = batcher.load_one(1).await;
                (first, retried)
            }
        };
        let (first, retried) = drive(batcher.clone(), request).await;
        for answer in first {
            assert_eq!(answer.unwrap_err().code(), "INTERNAL");
        }
        assert_eq!(retried.unwrap(), Some(2));
        assert_eq!(batches(&batcher), vec![vec![1, 2], vec![1]]);
    }

    #[tokio::test]
    async fn without_a_driver_each_load_runs_at_once() {
        let batcher = Batcher::new(Doubler::default());
        let answers = join_all([3u32, 4].map(|key| batcher.load_one(key))).await;
        assert_eq!(answers[1].as_ref().unwrap(), &Some(8));
        assert_eq!(batches(&batcher), vec![vec![3], vec![4]]);
    }

    #[tokio::test]
    async fn a_subscription_reads_afresh_for_each_event() {
        let batcher = Batcher::new(Doubler::default());
        let events = {
            let batcher = batcher.clone();
            futures::stream::iter([1u32, 1]).then(move |key| {
                let batcher = batcher.clone();
                async move { batcher.load_one(key).await.unwrap() }
            })
        };
        let answers: Vec<_> = drive_stream(batcher.clone(), events).collect().await;
        assert_eq!(answers, vec![Some(2), Some(2)]);
        assert_eq!(batches(&batcher), vec![vec![1], vec![1]]);
    }

    #[tokio::test]
    async fn values_fed_in_are_not_loaded() {
        let batcher = Batcher::new(Doubler::default());
        batcher.feed_many([(7u32, 70u32)]);
        let request = {
            let batcher = batcher.clone();
            async move { join_all([7u32, 8].map(|key| batcher.load_one(key))).await }
        };
        let answers = drive(batcher.clone(), request).await;
        assert_eq!(answers[0].as_ref().unwrap(), &Some(70));
        assert_eq!(batches(&batcher), vec![vec![8]]);
    }
}
