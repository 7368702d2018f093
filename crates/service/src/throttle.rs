//! The shared limiter store: counters that bound how often a caller may do something.
//!
//! Two primitives, each keyed by a caller-chosen string (a user id, a hashed email, a client
//! address):
//!
//! - [`Store::take`], a leaky bucket of points (the rate limits: a query's cost in points
//!   per user). A bucket holds at most `capacity` points and refills at `refill_per_sec`;
//!   a take of `points` is granted when the bucket holds that many, and otherwise refused
//!   with the time after which it would be granted.
//! - [`Store::admit`], [`Store::forgive`] and [`Store::reset`], failure counting with
//!   growing delays and a lockout (the login throttle): an attempt is admitted, and counted
//!   as a failure up front, unless an earlier run of failures makes it wait. Counting at
//!   admission, in the same atomic step as the check, means parallel attempts cannot all
//!   pass a check before any of them is counted; the caller forgives or resets an attempt
//!   that turned out not to be a failure.
//!
//! # Where the counters live
//!
//! With Redis (`REDIS_URL`) the counters live there, so every replica shares them. Each
//! operation is one Lua script (EVALSHA, loaded on first use and again after a Redis
//! restart), so a read-modify-write is atomic across replicas; every key carries the
//! configured prefix and a TTL no longer than the state it holds can matter, so Redis never
//! grows without bound. Times are the replicas' clocks (as token expiry already is): keep
//! them synchronised.
//!
//! Without Redis they live in this process, in maps capped at `max_entries` each: idle
//! entries expire, and when a map is full the entries closest to expiry are evicted first,
//! so an attacker inventing keys cannot grow memory without bound.
//!
//! # When Redis is unreachable
//!
//! The store fails open to its in-process maps: every operation still answers (it never
//! returns an error, so a login never becomes INTERNAL because of Redis), a warning is
//! logged when Redis is lost and again when it is back, and Redis is retried after
//! [`REDIS_RETRY`]. While Redis is down, each replica counts on its own, so the limits hold
//! per replica rather than for the deployment; what was counted in process is not carried
//! over to Redis when it returns.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::MultiplexedConnection;

/// How long an unreachable Redis is left alone before it is tried again.
pub const REDIS_RETRY: Duration = Duration::from_secs(1);
/// How long connecting to Redis, and each answer of it, may take before the operation uses
/// the in-process fallback instead: a limiter sits on the request path.
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(250);

// ---------------------------------------------------------------------------------------
// Policies and answers
// ---------------------------------------------------------------------------------------

/// A leaky bucket of points: it holds at most `capacity` points and refills at
/// `refill_per_sec` points per second (equivalently: it drains what was poured in at that
/// rate, and overflows at `capacity`). A key never seen before starts full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    /// The most points the bucket holds: the largest burst. At most 2^42 (about 4.4e12).
    pub capacity: u64,
    /// Points regained per second; at least 1 (0 is taken as 1, so every bucket refills and
    /// every key expires).
    pub refill_per_sec: u64,
}

/// The answer of [`Store::take`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// The points were taken; `remaining` are left.
    Granted {
        /// Points left in the bucket after this take.
        remaining: u64,
    },
    /// The bucket holds fewer points than asked for; nothing was taken.
    Refused {
        /// Points in the bucket now.
        remaining: u64,
        /// When the bucket will hold the points asked for (or, for a take larger than the
        /// capacity, which no wait can grant, when it will be full).
        retry_after: Duration,
    },
}

impl Take {
    /// Whether the points were taken.
    pub fn granted(&self) -> bool {
        matches!(self, Take::Granted { .. })
    }

    /// Points in the bucket after the answer.
    pub fn remaining(&self) -> u64 {
        match self {
            Take::Granted { remaining } | Take::Refused { remaining, .. } => *remaining,
        }
    }

    /// How long to wait before trying again, for a refusal.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Take::Granted { .. } => None,
            Take::Refused { retry_after, .. } => Some(*retry_after),
        }
    }
}

/// How failures of one key are throttled (see [`Store::admit`]).
///
/// The first `free_failures` failures cost nothing. After that, each attempt must wait
/// `first_delay`, doubled for every further failure, at most `max_delay`, counted from the
/// last attempt. Once `lockout_after` failures are counted, every attempt is refused for
/// `lockout_for` after the last one; then the count starts again. A run of failures that
/// began more than `window` ago and did not reach the lockout is forgotten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Failures allowed before any delay.
    pub free_failures: u32,
    /// The first delay; each further failure doubles it.
    pub first_delay: Duration,
    /// The longest delay.
    pub max_delay: Duration,
    /// Failures that lock the key; 0 never locks.
    pub lockout_after: u32,
    /// How long a lockout lasts after the failure that caused it.
    pub lockout_for: Duration,
    /// How long a run of failures is remembered.
    pub window: Duration,
}

/// The answer of [`Store::admit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// The attempt may go ahead; it is counted as a failure of every key until forgiven.
    Admitted,
    /// Too soon after the last failures: nothing was counted.
    Wait {
        /// When the attempt would be admitted.
        retry_after: Duration,
    },
    /// A key is locked out: nothing was counted.
    Locked {
        /// When the lockout ends.
        retry_after: Duration,
    },
}

impl Gate {
    /// How long the attempt must wait, when it was refused.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Gate::Admitted => None,
            Gate::Wait { retry_after } | Gate::Locked { retry_after } => Some(*retry_after),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Clock
// ---------------------------------------------------------------------------------------

/// Milliseconds since the Unix epoch: the system clock, or a manual one for tests.
#[derive(Clone, Default)]
pub struct Clock(Option<Arc<AtomicU64>>);

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock(None)
    }

    /// A clock that stands at `start_ms` until [`Clock::advance`] moves it.
    pub fn manual(start_ms: u64) -> Clock {
        Clock(Some(Arc::new(AtomicU64::new(start_ms))))
    }

    /// Moves a manual clock forward (no effect on the system clock).
    pub fn advance(&self, by: Duration) {
        if let Some(ms) = &self.0 {
            ms.fetch_add(millis(by), Ordering::SeqCst);
        }
    }

    /// The time now, in milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        match &self.0 {
            Some(ms) => ms.load(Ordering::SeqCst),
            None => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(millis)
                .unwrap_or(0),
        }
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            None => f.write_str("Clock::System"),
            Some(ms) => write!(f, "Clock::Manual({})", ms.load(Ordering::SeqCst)),
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

// ---------------------------------------------------------------------------------------
// The rules, once (the Lua scripts below do the same arithmetic)
// ---------------------------------------------------------------------------------------

/// Points are kept in thousandths, so a bucket refills every millisecond: a bucket that
/// regains `r` points per second regains `r` thousandths per millisecond.
const MILLI: u64 = 1000;
/// The largest capacity: its thousandths stay exact in Lua's doubles (2^53).
const MAX_CAPACITY: u64 = 1 << 42;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BucketState {
    /// Points held, in thousandths.
    level: u64,
    /// When `level` was computed.
    at: u64,
}

/// One take: the bucket's new state (none when it is full again, which equals absent), the
/// answer, and how long the new state matters (its TTL, in ms).
fn bucket_step(
    state: Option<BucketState>,
    now: u64,
    bucket: Bucket,
    points: u64,
) -> (Option<BucketState>, Take, u64) {
    let capacity = bucket.capacity.min(MAX_CAPACITY) * MILLI;
    let rate = bucket.refill_per_sec.clamp(1, MAX_CAPACITY);
    let wanted = points.min(MAX_CAPACITY).saturating_mul(MILLI);
    let mut state = state.unwrap_or(BucketState {
        level: capacity,
        at: now,
    });
    state.level = state.level.min(capacity);
    if now > state.at {
        state.level = (state
            .level
            .saturating_add((now - state.at).saturating_mul(rate)))
        .min(capacity);
        state.at = now;
    }
    let take = if wanted <= state.level {
        state.level -= wanted;
        Take::Granted {
            remaining: state.level / MILLI,
        }
    } else {
        let missing = wanted.min(capacity) - state.level;
        Take::Refused {
            remaining: state.level / MILLI,
            retry_after: Duration::from_millis(missing.div_ceil(rate)),
        }
    };
    let ttl = (capacity - state.level).div_ceil(rate);
    let state = (state.level < capacity).then_some(state);
    (state, take, ttl)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Failures {
    /// Failures counted.
    n: u64,
    /// When the run began.
    first: u64,
    /// The last counted attempt.
    last: u64,
}

/// What `failures` mean at `now`: `Ok(fresh)` when an attempt may go ahead (`fresh`: the
/// run is over and counting starts again), `Err(gate)` when it must wait.
fn judge(failures: Option<Failures>, now: u64, policy: &Backoff) -> Result<bool, Gate> {
    let Some(f) = failures.filter(|f| f.n > 0) else {
        return Ok(true);
    };
    if policy.lockout_after > 0 && f.n >= u64::from(policy.lockout_after) {
        let until = f.last.saturating_add(millis(policy.lockout_for));
        if now < until {
            return Err(Gate::Locked {
                retry_after: Duration::from_millis(until - now),
            });
        }
        return Ok(true);
    }
    if now >= f.first.saturating_add(millis(policy.window)) {
        return Ok(true);
    }
    if f.n >= u64::from(policy.free_failures) {
        let doublings = f.n - u64::from(policy.free_failures);
        let delay = millis(policy.first_delay)
            .saturating_mul(
                1u64.checked_shl(doublings.min(63) as u32)
                    .unwrap_or(u64::MAX),
            )
            .min(millis(policy.max_delay));
        let until = f.last.saturating_add(delay);
        if now < until {
            return Err(Gate::Wait {
                retry_after: Duration::from_millis(until - now),
            });
        }
    }
    Ok(false)
}

/// How long a failure record counted at `now` can matter: past the window, the lockout and
/// the longest delay it is the same as no record.
fn failures_ttl(policy: &Backoff) -> u64 {
    millis(policy.window)
        .max(millis(policy.lockout_for))
        .max(millis(policy.max_delay))
        .max(1)
}

/// Of several refusals, the one that waits longest.
fn longest(a: Option<Gate>, b: Gate) -> Option<Gate> {
    match a {
        Some(a) if a.retry_after() >= b.retry_after() => Some(a),
        _ => Some(b),
    }
}

// ---------------------------------------------------------------------------------------
// In process
// ---------------------------------------------------------------------------------------

/// A map whose entries expire, holding at most `max` of them.
struct Capped<V> {
    entries: HashMap<String, (V, u64)>,
    max: usize,
}

impl<V: Copy> Capped<V> {
    fn new(max: usize) -> Self {
        Capped {
            entries: HashMap::new(),
            max: max.max(1),
        }
    }

    fn get(&mut self, key: &str, now: u64) -> Option<V> {
        match self.entries.get(key) {
            Some((value, expires)) if *expires > now => Some(*value),
            Some(_) => {
                self.entries.remove(key);
                None
            }
            None => None,
        }
    }

    fn put(&mut self, key: &str, value: V, ttl_ms: u64, now: u64) {
        let expires = now.saturating_add(ttl_ms.max(1));
        if let Some(entry) = self.entries.get_mut(key) {
            *entry = (value, expires);
            return;
        }
        if self.entries.len() >= self.max {
            self.make_room(now);
        }
        self.entries.insert(key.to_owned(), (value, expires));
    }

    fn remove(&mut self, key: &str) {
        self.entries.remove(key);
    }

    /// Drops expired entries and, if that leaves the map nearly full, the entries closest
    /// to expiry, down to 15/16 of the cap: the sweep then runs once per `max / 16`
    /// inserts, so its cost per insert stays constant.
    fn make_room(&mut self, now: u64) {
        self.entries.retain(|_, (_, expires)| *expires > now);
        let target = self.max - self.max.div_ceil(16);
        if self.entries.len() > target {
            let mut by_expiry: Vec<(u64, String)> = self
                .entries
                .iter()
                .map(|(key, (_, expires))| (*expires, key.clone()))
                .collect();
            by_expiry.sort_unstable();
            let excess = self.entries.len() - target;
            for (_, key) in by_expiry.into_iter().take(excess) {
                self.entries.remove(&key);
            }
        }
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// The in-process maps (the store without Redis, and its fallback with Redis).
struct Local {
    buckets: Mutex<Capped<BucketState>>,
    failures: Mutex<Capped<Failures>>,
}

impl Local {
    fn new(max_entries: usize) -> Self {
        Local {
            buckets: Mutex::new(Capped::new(max_entries)),
            failures: Mutex::new(Capped::new(max_entries)),
        }
    }

    fn take(&self, key: &str, points: u64, bucket: Bucket, now: u64) -> Take {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let (state, take, ttl) = bucket_step(buckets.get(key, now), now, bucket, points);
        match state {
            Some(state) => buckets.put(key, state, ttl, now),
            None => buckets.remove(key),
        }
        take
    }

    fn admit(&self, keys: &[(&str, &Backoff)], now: u64) -> Gate {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let mut refused = None;
        let mut fresh = Vec::with_capacity(keys.len());
        for (key, policy) in keys {
            match judge(failures.get(key, now), now, policy) {
                Ok(is_fresh) => fresh.push(is_fresh),
                Err(gate) => refused = longest(refused, gate),
            }
        }
        if let Some(gate) = refused {
            return gate;
        }
        for ((key, policy), is_fresh) in keys.iter().zip(fresh) {
            let counted = match failures.get(key, now) {
                Some(f) if !is_fresh => Failures {
                    n: f.n + 1,
                    last: now,
                    ..f
                },
                _ => Failures {
                    n: 1,
                    first: now,
                    last: now,
                },
            };
            failures.put(key, counted, failures_ttl(policy), now);
        }
        Gate::Admitted
    }

    fn forgive(&self, key: &str, now: u64) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = failures.get(key, now) {
            if f.n <= 1 {
                failures.remove(key);
            } else if let Some((value, _)) = failures.entries.get_mut(key) {
                value.n = f.n - 1;
            }
        }
    }

    fn reset(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

// ---------------------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------------------

/// A Lua script, run by its SHA1 once Redis has loaded it.
struct Script {
    text: &'static str,
    sha: Mutex<Option<String>>,
}

impl Script {
    const fn new(text: &'static str) -> Script {
        Script {
            text,
            sha: Mutex::new(None),
        }
    }
}

/// `take`: KEYS[1] the bucket; ARGV now (ms), capacity, refill per second, points.
/// Returns {granted (0/1), remaining points, retry after (ms)}. Same rules as `bucket_step`.
const TAKE_LUA: &str = r#"
local now = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2]) * 1000
local rate = tonumber(ARGV[3])
local wanted = tonumber(ARGV[4]) * 1000
local state = redis.call('HMGET', KEYS[1], 'level', 'at')
local level = tonumber(state[1])
local at = tonumber(state[2])
if level == nil or at == nil then
  level = capacity
  at = now
end
level = math.min(level, capacity)
if now > at then
  level = math.min(capacity, level + (now - at) * rate)
  at = now
end
local granted = 0
local wait = 0
if wanted <= level then
  level = level - wanted
  granted = 1
else
  wait = math.ceil((math.min(wanted, capacity) - level) / rate)
end
if level < capacity then
  redis.call('HSET', KEYS[1], 'level', level, 'at', at)
  redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil((capacity - level) / rate)))
else
  redis.call('DEL', KEYS[1])
end
return {granted, math.floor(level / 1000), wait}
"#;

/// `admit`: KEYS the failure records; ARGV now (ms), then per key: free failures, first
/// delay, max delay, lockout after, lockout for, window (ms). Returns {0 admitted / 1 wait /
/// 2 locked, retry after (ms)}. Same rules as `judge` and `Local::admit`.
const ADMIT_LUA: &str = r#"
local now = tonumber(ARGV[1])
local refused, wait = 0, 0
local fresh = {}
for i, key in ipairs(KEYS) do
  local o = 1 + (i - 1) * 6
  local free = tonumber(ARGV[o + 1])
  local delay = tonumber(ARGV[o + 2])
  local max_delay = tonumber(ARGV[o + 3])
  local lock_after = tonumber(ARGV[o + 4])
  local lock_for = tonumber(ARGV[o + 5])
  local window = tonumber(ARGV[o + 6])
  local r = redis.call('HMGET', key, 'n', 'first', 'last')
  local n = tonumber(r[1]) or 0
  local first = tonumber(r[2]) or 0
  local last = tonumber(r[3]) or 0
  local is_fresh = false
  local kind, until_ = 0, 0
  if n <= 0 then
    is_fresh = true
  elseif lock_after > 0 and n >= lock_after then
    if now < last + lock_for then
      kind, until_ = 2, last + lock_for
    else
      is_fresh = true
    end
  elseif now >= first + window then
    is_fresh = true
  elseif n >= free then
    local d = math.min(delay * math.pow(2, math.min(n - free, 63)), max_delay)
    if now < last + d then
      kind, until_ = 1, last + d
    end
  end
  if kind > 0 and until_ - now > wait then
    refused, wait = kind, until_ - now
  end
  fresh[i] = is_fresh
end
if refused > 0 then
  return {refused, wait}
end
for i, key in ipairs(KEYS) do
  local o = 1 + (i - 1) * 6
  local ttl = math.max(1, tonumber(ARGV[o + 6]), tonumber(ARGV[o + 5]), tonumber(ARGV[o + 3]))
  if fresh[i] then
    redis.call('HSET', key, 'n', 1, 'first', now, 'last', now)
  else
    redis.call('HINCRBY', key, 'n', 1)
    redis.call('HSET', key, 'last', now)
  end
  redis.call('PEXPIRE', key, ttl)
end
return {0, 0}
"#;

/// `forgive`: KEYS[1] a failure record; one failure fewer, none left deletes it.
const FORGIVE_LUA: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HINCRBY', KEYS[1], 'n', -1) <= 0 then
    redis.call('DEL', KEYS[1])
  end
end
return {0}
"#;

struct Remote {
    client: redis::Client,
    connection: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    /// While set and in the future, Redis is not tried (it failed recently).
    resting_until: Mutex<Option<std::time::Instant>>,
    /// Whether the last operation reached Redis (for logging the transitions only).
    up: AtomicBool,
    /// Operations answered in process because Redis was unreachable.
    fallbacks: AtomicU64,
    take: Script,
    admit: Script,
    forgive: Script,
}

impl Remote {
    fn resting(&self) -> bool {
        let until = self.resting_until.lock().unwrap_or_else(|p| p.into_inner());
        until.is_some_and(|until| std::time::Instant::now() < until)
    }

    async fn connection(&self) -> redis::RedisResult<MultiplexedConnection> {
        let mut slot = self.connection.lock().await;
        if let Some(connection) = &*slot {
            return Ok(connection.clone());
        }
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT));
        let connection = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        *slot = Some(connection.clone());
        Ok(connection)
    }

    async fn eval(
        &self,
        script: &Script,
        keys: &[String],
        args: &[u64],
    ) -> redis::RedisResult<Vec<i64>> {
        let mut connection = self.connection().await?;
        let known = script.sha.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(sha) = known {
            match evalsha(&mut connection, &sha, keys, args).await {
                Err(err)
                    if err.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                }
                other => return other,
            }
        }
        // First use, or Redis restarted and forgot the script: load it and run it by its SHA.
        let sha: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(script.text)
            .query_async(&mut connection)
            .await?;
        *script.sha.lock().unwrap_or_else(|p| p.into_inner()) = Some(sha.clone());
        evalsha(&mut connection, &sha, keys, args).await
    }

    async fn del(&self, key: &str) -> redis::RedisResult<()> {
        let mut connection = self.connection().await?;
        redis::cmd("DEL")
            .arg(key)
            .query_async::<i64>(&mut connection)
            .await
            .map(drop)
    }

    /// Notes the outcome of an operation: a failure drops the connection and rests Redis
    /// for [`REDIS_RETRY`]; transitions are logged once.
    async fn outcome<T>(&self, result: redis::RedisResult<T>) -> Option<T> {
        match result {
            Ok(value) => {
                if !self.up.swap(true, Ordering::Relaxed) {
                    tracing::info!("limiter: redis reachable; counters are shared by replicas");
                }
                Some(value)
            }
            Err(err) => {
                *self.connection.lock().await = None;
                *self.resting_until.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(std::time::Instant::now() + REDIS_RETRY);
                if self.up.swap(false, Ordering::Relaxed) {
                    tracing::warn!(
                        error = %err,
                        "limiter: redis unreachable; counting in this process until it is back"
                    );
                }
                None
            }
        }
    }
}

async fn evalsha(
    connection: &mut MultiplexedConnection,
    sha: &str,
    keys: &[String],
    args: &[u64],
) -> redis::RedisResult<Vec<i64>> {
    redis::cmd("EVALSHA")
        .arg(sha)
        .arg(keys.len())
        .arg(keys)
        .arg(args)
        .query_async(connection)
        .await
}

// ---------------------------------------------------------------------------------------
// The store
// ---------------------------------------------------------------------------------------

/// How a [`Store`] keeps its counters.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Prefix of every Redis key (`<prefix>:b:<key>` for buckets, `<prefix>:f:<key>` for
    /// failure records): the same for the replicas of one deployment.
    pub prefix: String,
    /// Most entries of each in-process map.
    pub max_entries: usize,
    /// The clock (the system clock but in tests).
    pub clock: Clock,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            prefix: "prima:limit".to_owned(),
            max_entries: 100_000,
            clock: Clock::system(),
        }
    }
}

/// The limiter store: in Redis when configured (shared by replicas), else in process. Cheap
/// to clone; clones share the counters.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    options: StoreOptions,
    local: Local,
    remote: Option<Remote>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("redis", &self.inner.remote.is_some())
            .field("prefix", &self.inner.options.prefix)
            .field("clock", &self.inner.options.clock)
            .finish()
    }
}

impl Store {
    /// Counters in this process only.
    pub fn in_process(options: StoreOptions) -> Store {
        Store::new(options, None)
    }

    /// Counters in Redis, shared by every replica using the same prefix; in process while
    /// Redis is unreachable.
    pub fn redis(client: redis::Client, options: StoreOptions) -> Store {
        Store::new(
            options,
            Some(Remote {
                client,
                connection: tokio::sync::Mutex::new(None),
                resting_until: Mutex::new(None),
                up: AtomicBool::new(true),
                fallbacks: AtomicU64::new(0),
                take: Script::new(TAKE_LUA),
                admit: Script::new(ADMIT_LUA),
                forgive: Script::new(FORGIVE_LUA),
            }),
        )
    }

    fn new(options: StoreOptions, remote: Option<Remote>) -> Store {
        Store {
            inner: Arc::new(Inner {
                local: Local::new(options.max_entries),
                options,
                remote,
            }),
        }
    }

    /// Whether the counters go to Redis (when it is reachable).
    pub fn is_shared(&self) -> bool {
        self.inner.remote.is_some()
    }

    fn now(&self) -> u64 {
        self.inner.options.clock.now_ms()
    }

    fn redis_key(&self, kind: &str, key: &str) -> String {
        format!("{}:{kind}:{key}", self.inner.options.prefix)
    }

    /// Redis, unless there is none or it failed within [`REDIS_RETRY`].
    fn reachable(&self) -> Option<&Remote> {
        self.inner
            .remote
            .as_ref()
            .filter(|remote| !remote.resting())
    }

    /// The in-process maps, noting a fallback when Redis is configured.
    fn local(&self) -> &Local {
        if let Some(remote) = &self.inner.remote {
            remote.fallbacks.fetch_add(1, Ordering::Relaxed);
        }
        &self.inner.local
    }

    /// Operations answered in process although Redis is configured (it was unreachable).
    pub fn fallbacks(&self) -> u64 {
        self.inner
            .remote
            .as_ref()
            .map_or(0, |remote| remote.fallbacks.load(Ordering::Relaxed))
    }

    /// Takes `points` from the bucket `key` if it holds that many (see [`Bucket`]). A take
    /// of 0 points reads the bucket without changing it. A take larger than the capacity
    /// is always refused. Never fails: without Redis it counts in process.
    pub async fn take(&self, key: &str, points: u64, bucket: Bucket) -> Take {
        let now = self.now();
        if let Some(remote) = self.reachable() {
            let result = remote
                .eval(
                    &remote.take,
                    &[self.redis_key("b", key)],
                    &[
                        now,
                        bucket.capacity.min(MAX_CAPACITY),
                        bucket.refill_per_sec.clamp(1, MAX_CAPACITY),
                        points.min(MAX_CAPACITY),
                    ],
                )
                .await;
            if let Some(answer) = remote.outcome(result).await {
                let [granted, remaining, wait] = answer[..] else {
                    tracing::warn!(?answer, "limiter: unexpected answer from redis");
                    return self.local().take(key, points, bucket, now);
                };
                let remaining = u64::try_from(remaining).unwrap_or(0);
                return if granted == 1 {
                    Take::Granted { remaining }
                } else {
                    Take::Refused {
                        remaining,
                        retry_after: Duration::from_millis(u64::try_from(wait).unwrap_or(0)),
                    }
                };
            }
        }
        self.local().take(key, points, bucket, now)
    }

    /// Admits an attempt unless one of `keys` makes it wait (see [`Backoff`]), all keys at
    /// once: either every key counts the attempt as a failure, or none does and the answer
    /// is the longest wait among them. The caller then calls [`Store::reset`] or
    /// [`Store::forgive`] for the keys where the attempt did not fail. Never fails.
    pub async fn admit(&self, keys: &[(&str, &Backoff)]) -> Gate {
        let now = self.now();
        if keys.is_empty() {
            return Gate::Admitted;
        }
        if let Some(remote) = self.reachable() {
            let redis_keys: Vec<String> = keys
                .iter()
                .map(|(key, _)| self.redis_key("f", key))
                .collect();
            let mut args = vec![now];
            for (_, policy) in keys {
                args.extend([
                    u64::from(policy.free_failures),
                    millis(policy.first_delay),
                    millis(policy.max_delay),
                    u64::from(policy.lockout_after),
                    millis(policy.lockout_for),
                    millis(policy.window),
                ]);
            }
            let result = remote.eval(&remote.admit, &redis_keys, &args).await;
            if let Some(answer) = remote.outcome(result).await {
                let wait = |ms: i64| Duration::from_millis(u64::try_from(ms).unwrap_or(0));
                return match answer[..] {
                    [0, _] => Gate::Admitted,
                    [1, ms] => Gate::Wait {
                        retry_after: wait(ms),
                    },
                    [2, ms] => Gate::Locked {
                        retry_after: wait(ms),
                    },
                    _ => {
                        tracing::warn!(?answer, "limiter: unexpected answer from redis");
                        self.local().admit(keys, now)
                    }
                };
            }
        }
        self.local().admit(keys, now)
    }

    /// Takes back one counted failure of `key` (an admitted attempt that did not fail for
    /// this key). Never fails.
    pub async fn forgive(&self, key: &str) {
        if let Some(remote) = self.reachable() {
            let result = remote
                .eval(&remote.forgive, &[self.redis_key("f", key)], &[])
                .await;
            if remote.outcome(result).await.is_some() {
                return;
            }
        }
        self.local().forgive(key, self.now());
    }

    /// Forgets every failure of `key`. Never fails.
    pub async fn reset(&self, key: &str) {
        if let Some(remote) = self.reachable() {
            let result = remote.del(&self.redis_key("f", key)).await;
            if remote.outcome(result).await.is_some() {
                return;
            }
        }
        self.local().reset(key);
    }

    /// Entries held in process (buckets, failure records): for tests and metrics.
    pub fn local_entries(&self) -> (usize, usize) {
        let local = &self.inner.local;
        (
            local
                .buckets
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .len(),
            local
                .failures
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .len(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: u64 = 1_700_000_000_000;

    /// A store under test, with its clock. When it goes out of scope (and the test has not
    /// failed already), a Redis store must not have fallen back to counting in process: a
    /// script error would otherwise pass for a working Redis.
    struct Case {
        store: Store,
        clock: Clock,
    }

    impl Drop for Case {
        fn drop(&mut self) {
            if !std::thread::panicking() {
                assert_eq!(self.store.fallbacks(), 0, "{:?} fell back", self.store);
            }
        }
    }

    /// The stores under test: in process always, and Redis with TEST_REDIS_URL (each test
    /// on a prefix of its own), both on a manual clock.
    fn stores() -> Vec<Case> {
        let mut stores = Vec::new();
        let options = |clock: &Clock| StoreOptions {
            prefix: format!("prima:test:{}:limit", uuid::Uuid::new_v4()),
            max_entries: 1_000,
            clock: clock.clone(),
        };
        let clock = Clock::manual(START);
        stores.push(Case {
            store: Store::in_process(options(&clock)),
            clock,
        });
        if let Some(url) = std::env::var("TEST_REDIS_URL")
            .ok()
            .filter(|url| !url.is_empty())
        {
            let clock = Clock::manual(START);
            let client = redis::Client::open(url.as_str()).expect("TEST_REDIS_URL parses");
            stores.push(Case {
                store: Store::redis(client, options(&clock)),
                clock,
            });
        }
        stores
    }

    const BUCKET: Bucket = Bucket {
        capacity: 100,
        refill_per_sec: 10,
    };

    #[tokio::test]
    async fn a_new_bucket_is_full_and_a_take_leaves_the_rest() {
        for case in stores() {
            let store = &case.store;
            assert_eq!(
                store.take("user", 30, BUCKET).await,
                Take::Granted { remaining: 70 },
                "{store:?}"
            );
            assert_eq!(
                store.take("user", 70, BUCKET).await,
                Take::Granted { remaining: 0 }
            );
            assert_eq!(
                store.take("other", 0, BUCKET).await,
                Take::Granted { remaining: 100 },
                "keys are separate"
            );
        }
    }

    #[tokio::test]
    async fn an_empty_bucket_refuses_with_the_time_until_it_holds_enough() {
        for case in stores() {
            let (store, clock) = (&case.store, &case.clock);
            store.take("user", 100, BUCKET).await;
            assert_eq!(
                store.take("user", 25, BUCKET).await,
                Take::Refused {
                    remaining: 0,
                    retry_after: Duration::from_millis(2_500)
                },
                "{store:?}: 25 points at 10 a second"
            );
            clock.advance(Duration::from_millis(2_499));
            assert!(!store.take("user", 25, BUCKET).await.granted());
            clock.advance(Duration::from_millis(1));
            assert_eq!(
                store.take("user", 25, BUCKET).await,
                Take::Granted { remaining: 0 }
            );
        }
    }

    #[tokio::test]
    async fn a_refused_take_takes_nothing_and_a_zero_take_only_reads() {
        for case in stores() {
            let (store, clock) = (&case.store, &case.clock);
            store.take("user", 90, BUCKET).await;
            assert_eq!(
                store.take("user", 50, BUCKET).await.remaining(),
                10,
                "{store:?}"
            );
            assert_eq!(store.take("user", 0, BUCKET).await.remaining(), 10);
            clock.advance(Duration::from_millis(500));
            assert_eq!(
                store.take("user", 0, BUCKET).await,
                Take::Granted { remaining: 15 },
                "half a second refills 5 points"
            );
        }
    }

    #[tokio::test]
    async fn a_bucket_refills_to_its_capacity_and_no_further() {
        for case in stores() {
            let (store, clock) = (&case.store, &case.clock);
            store.take("user", 100, BUCKET).await;
            clock.advance(Duration::from_secs(3_600));
            assert_eq!(
                store.take("user", 0, BUCKET).await.remaining(),
                100,
                "{store:?}"
            );
            assert!(!store.take("user", 101, BUCKET).await.granted());
        }
    }

    #[tokio::test]
    async fn a_take_larger_than_the_capacity_is_always_refused() {
        for case in stores() {
            let store = &case.store;
            let take = store.take("user", 1_000, BUCKET).await;
            assert_eq!(
                take,
                Take::Refused {
                    remaining: 100,
                    retry_after: Duration::ZERO
                },
                "{store:?}: the bucket is full, and no wait grants it"
            );
        }
    }

    const LOGIN: Backoff = Backoff {
        free_failures: 3,
        first_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(60),
        lockout_after: 10,
        lockout_for: Duration::from_secs(900),
        window: Duration::from_secs(900),
    };

    async fn fail(store: &Store, key: &str, policy: &Backoff) -> Gate {
        store.admit(&[(key, policy)]).await
    }

    #[tokio::test]
    async fn failures_beyond_the_free_ones_wait_twice_as_long_each_time() {
        for case in stores() {
            let (store, clock) = (&case.store, &case.clock);
            for _ in 0..3 {
                assert_eq!(fail(store, "email", &LOGIN).await, Gate::Admitted);
            }
            for expected in [1, 2, 4, 8, 16, 32, 60] {
                let wait = Duration::from_secs(expected);
                assert_eq!(
                    fail(store, "email", &LOGIN).await,
                    Gate::Wait { retry_after: wait },
                    "{store:?}"
                );
                clock.advance(wait - Duration::from_millis(1));
                assert!(matches!(
                    fail(store, "email", &LOGIN).await,
                    Gate::Wait { .. }
                ));
                clock.advance(Duration::from_millis(1));
                assert_eq!(fail(store, "email", &LOGIN).await, Gate::Admitted);
            }
        }
    }

    #[tokio::test]
    async fn the_lockout_refuses_every_attempt_until_it_ends_then_counting_restarts() {
        let policy = Backoff {
            first_delay: Duration::ZERO,
            ..LOGIN
        };
        for case in stores() {
            let (store, clock) = (&case.store, &case.clock);
            for _ in 0..10 {
                assert_eq!(fail(store, "email", &policy).await, Gate::Admitted);
            }
            assert_eq!(
                fail(store, "email", &policy).await,
                Gate::Locked {
                    retry_after: Duration::from_secs(900)
                },
                "{store:?}"
            );
            clock.advance(Duration::from_secs(899));
            assert_eq!(
                fail(store, "email", &policy).await,
                Gate::Locked {
                    retry_after: Duration::from_secs(1)
                }
            );
            clock.advance(Duration::from_secs(1));
            for _ in 0..3 {
                assert_eq!(fail(store, "email", &policy).await, Gate::Admitted);
            }
        }
    }

    #[tokio::test]
    async fn a_reset_forgets_the_failures_and_a_forgive_takes_one_back() {
        for case in stores() {
            let store = &case.store;
            for _ in 0..3 {
                fail(store, "email", &LOGIN).await;
            }
            assert!(matches!(
                fail(store, "email", &LOGIN).await,
                Gate::Wait { .. }
            ));
            store.reset("email").await;
            for _ in 0..3 {
                assert_eq!(fail(store, "email", &LOGIN).await, Gate::Admitted);
            }
            store.forgive("email").await;
            assert_eq!(
                fail(store, "email", &LOGIN).await,
                Gate::Admitted,
                "{store:?}: two failures and this attempt"
            );
            let gate = fail(store, "email", &LOGIN).await;
            assert!(matches!(gate, Gate::Wait { .. }), "{store:?}: {gate:?}");
            store.forgive("never-seen").await;
            assert_eq!(fail(store, "never-seen", &LOGIN).await, Gate::Admitted);
        }
    }

    #[tokio::test]
    async fn a_run_of_failures_is_forgotten_after_its_window() {
        let policy = Backoff {
            window: Duration::from_secs(60),
            ..LOGIN
        };
        for case in stores() {
            let (store, clock) = (&case.store, &case.clock);
            for _ in 0..3 {
                fail(store, "email", &policy).await;
            }
            clock.advance(Duration::from_secs(60));
            for _ in 0..3 {
                assert_eq!(
                    fail(store, "email", &policy).await,
                    Gate::Admitted,
                    "{store:?}"
                );
            }
        }
    }

    #[tokio::test]
    async fn several_keys_are_admitted_together_or_not_at_all() {
        let address = Backoff {
            free_failures: 1,
            ..LOGIN
        };
        for case in stores() {
            let store = &case.store;
            assert_eq!(
                store
                    .admit(&[("email-a", &LOGIN), ("address", &address)])
                    .await,
                Gate::Admitted
            );
            // The address must now wait: the attempt is refused, and email-b counts nothing.
            assert_eq!(
                store
                    .admit(&[("email-b", &LOGIN), ("address", &address)])
                    .await,
                Gate::Wait {
                    retry_after: Duration::from_secs(1)
                },
                "{store:?}"
            );
            for _ in 0..3 {
                assert_eq!(fail(store, "email-b", &LOGIN).await, Gate::Admitted);
            }
        }
    }

    #[tokio::test]
    async fn parallel_attempts_are_counted_before_any_of_them_can_pass() {
        for case in stores() {
            let store = &case.store;
            let attempts = (0..20).map(|_| {
                let store = store.clone();
                async move { fail(&store, "email", &LOGIN).await }
            });
            let gates = futures::future::join_all(attempts).await;
            let admitted = gates.iter().filter(|g| **g == Gate::Admitted).count();
            assert_eq!(admitted, 3, "{store:?}: only the free failures pass");
        }
    }

    #[tokio::test]
    async fn the_in_process_maps_hold_at_most_their_cap() {
        let clock = Clock::manual(START);
        let store = Store::in_process(StoreOptions {
            prefix: "unused".into(),
            max_entries: 64,
            clock: clock.clone(),
        });
        for i in 0..1_000 {
            clock.advance(Duration::from_millis(1));
            fail(&store, &format!("attacker-{i}"), &LOGIN).await;
            store.take(&format!("user-{i}"), 1, BUCKET).await;
        }
        let (buckets, failures) = store.local_entries();
        assert!(buckets <= 64 && failures <= 64, "{buckets} {failures}");
        // The newest entries survive an eviction: the latest key still counts.
        for _ in 0..2 {
            fail(&store, "attacker-999", &LOGIN).await;
        }
        assert!(matches!(
            fail(&store, "attacker-999", &LOGIN).await,
            Gate::Wait { .. }
        ));
    }

    #[tokio::test]
    async fn idle_entries_expire_from_the_in_process_maps() {
        let clock = Clock::manual(START);
        let store = Store::in_process(StoreOptions {
            prefix: "unused".into(),
            max_entries: 16,
            clock: clock.clone(),
        });
        for i in 0..16 {
            fail(&store, &format!("old-{i}"), &LOGIN).await;
        }
        clock.advance(Duration::from_secs(901));
        fail(&store, "new", &LOGIN).await;
        assert_eq!(store.local_entries().1, 1, "the expired ones were swept");
    }

    #[tokio::test]
    async fn an_unreachable_redis_falls_back_to_counting_in_process() {
        // Nothing listens on port 1: every connection is refused at once.
        let client = redis::Client::open("redis://127.0.0.1:1").unwrap();
        let clock = Clock::manual(START);
        let store = Store::redis(
            client,
            StoreOptions {
                clock: clock.clone(),
                ..StoreOptions::default()
            },
        );
        assert_eq!(
            store.take("user", 40, BUCKET).await,
            Take::Granted { remaining: 60 }
        );
        assert_eq!(store.take("user", 0, BUCKET).await.remaining(), 60);
        for _ in 0..3 {
            assert_eq!(fail(&store, "email", &LOGIN).await, Gate::Admitted);
        }
        assert!(matches!(
            fail(&store, "email", &LOGIN).await,
            Gate::Wait { .. }
        ));
        assert!(store.fallbacks() > 0);
    }

    #[tokio::test]
    async fn redis_keys_carry_the_prefix_and_a_ttl() {
        let Some(url) = std::env::var("TEST_REDIS_URL")
            .ok()
            .filter(|url| !url.is_empty())
        else {
            return;
        };
        let prefix = format!("prima:test:{}:limit", uuid::Uuid::new_v4());
        let client = redis::Client::open(url.as_str()).unwrap();
        let store = Store::redis(
            client.clone(),
            StoreOptions {
                prefix: prefix.clone(),
                ..StoreOptions::default()
            },
        );
        store.take("user", 10, BUCKET).await;
        fail(&store, "email", &LOGIN).await;
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        for (key, most) in [
            (format!("{prefix}:b:user"), 1_000),
            (format!("{prefix}:f:email"), 900_000),
        ] {
            let ttl: i64 = redis::cmd("PTTL")
                .arg(&key)
                .query_async(&mut connection)
                .await
                .unwrap();
            assert!(ttl > 0 && ttl <= most, "{key}: TTL {ttl} ms");
        }
        // A full bucket is the same as no bucket: it leaves no key behind.
        store.take("full", 0, BUCKET).await;
        let exists: i64 = redis::cmd("EXISTS")
            .arg(format!("{prefix}:b:full"))
            .query_async(&mut connection)
            .await
            .unwrap();
        assert_eq!(exists, 0);
        assert_eq!(store.fallbacks(), 0);
    }

    #[tokio::test]
    async fn a_redis_that_forgot_its_scripts_gets_them_again() {
        let Some(url) = std::env::var("TEST_REDIS_URL")
            .ok()
            .filter(|url| !url.is_empty())
        else {
            return;
        };
        let client = redis::Client::open(url.as_str()).unwrap();
        let store = Store::redis(
            client,
            StoreOptions {
                prefix: format!("prima:test:{}:limit", uuid::Uuid::new_v4()),
                clock: Clock::manual(START),
                ..StoreOptions::default()
            },
        );
        store.take("user", 1, BUCKET).await;
        // As after a Redis restart: the SHA we hold is unknown to Redis.
        let remote = store.inner.remote.as_ref().unwrap();
        *remote.take.sha.lock().unwrap() = Some("0".repeat(40));
        assert_eq!(
            store.take("user", 1, BUCKET).await,
            Take::Granted { remaining: 98 }
        );
        assert_eq!(store.fallbacks(), 0, "no fallback was needed");
    }
}
