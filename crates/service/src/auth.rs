//! Authentication: argon2 password hashes, the login throttle, and signed, expiring bearer
//! tokens.
//!
//! A token is `v1.<payload>.<signature>`: the payload is base64url JSON `{sub, iat, exp}`,
//! the signature an HMAC-SHA256 of `v1.<payload>` with the server's secret. Tokens carry no
//! roles: the caller's user row and venue access are loaded on every request, so a
//! suspension or a revoked venue takes effect on the very next request.
//!
//! # Logging in is not an amplifier
//!
//! An argon2 check costs about 19 MiB and tens of milliseconds of a core, and an anonymous
//! caller can ask for one, so:
//!
//! - Every argon2 computation (a login's check, the decoy check of an unknown email, the
//!   hash of a new password) goes through one [`Hasher`] per server: at most
//!   `concurrency` at once (the machine's cores by default), at most `queue` more waiting,
//!   and beyond that refused at once as THROTTLED with a retry hint. Memory for hashing is
//!   therefore bounded by `concurrency` times argon2's memory, however many arrive.
//! - Failures are counted per email and per client address in the limiter store
//!   ([`crate::throttle`], in Redis when configured, so replicas share the counts): after a
//!   few failures each attempt must wait, twice as long after each further failure, and
//!   after more a key is locked out for a while ([`LoginPolicy`]). A refused attempt is
//!   answered THROTTLED with when to retry, before the database or argon2 is touched.
//! - An attempt is counted when it is admitted (atomically with the check), so parallel
//!   attempts cannot all pass before the first is counted. A right password resets the
//!   email's count and takes the attempt back from the address's count (an address's count
//!   is not reset: one account of one's own must not wash away guesses at others).
//! - An unknown email is counted, delayed and locked exactly like a known one, with the same
//!   messages, and is checked against a decoy hash so that it takes as long: neither the
//!   answers nor their timing tell whether an email has an account.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use argon2::password_hash::{self, Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use prima_entity::enums::UserStatus;
use prima_entity::{user_venue_access, users};
use rand::RngCore;
use sea_orm::sea_query::IntoCondition;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, JoinType, QueryFilter,
    QuerySelect, RelationTrait, Set,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::access::{Actor, Level};
use crate::error::{Error, Result, whole_seconds};
use crate::throttle::{Backoff, Gate, Store};
use crate::time::now;

/// The secret that signs tokens. Never printed.
#[derive(Clone)]
pub struct TokenSecret(Arc<[u8]>);

impl TokenSecret {
    /// A secret from configuration.
    pub fn new(bytes: impl AsRef<[u8]>) -> Self {
        TokenSecret(bytes.as_ref().into())
    }

    /// A random secret: tokens stop working when the process restarts.
    pub fn random() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        TokenSecret(bytes.as_slice().into())
    }
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSecret(<redacted>)")
    }
}

/// Issues and checks tokens.
#[derive(Debug, Clone)]
pub struct Tokens {
    secret: TokenSecret,
    ttl: Duration,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    sub: Uuid,
    iat: i64,
    exp: i64,
}

const VERSION: &str = "v1";

impl Tokens {
    /// Tokens signed with `secret`, valid for `ttl`.
    pub fn new(secret: TokenSecret, ttl: Duration) -> Self {
        Tokens { secret, ttl }
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.secret.0).expect("HMAC takes keys of any length")
    }

    /// A token for the user, issued at `at`; returns it with its expiry.
    pub fn issue(&self, user_id: Uuid, at: DateTime<Utc>) -> (String, DateTime<Utc>) {
        let exp = at + self.ttl;
        let claims = Claims {
            sub: user_id,
            iat: at.timestamp(),
            exp: exp.timestamp(),
        };
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("claims encode"));
        let signed = format!("{VERSION}.{payload}");
        let mut mac = self.mac();
        mac.update(signed.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        (format!("{signed}.{signature}"), exp)
    }

    /// The user id of a valid, unexpired token.
    pub fn verify(&self, token: &str, at: DateTime<Utc>) -> Result<Uuid> {
        let bad = || Error::Unauthenticated("the token is invalid; log in again".into());
        let mut parts = token.split('.');
        let (Some(version), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        if version != VERSION {
            return Err(bad());
        }
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| bad())?;
        let mut mac = self.mac();
        mac.update(version.as_bytes());
        mac.update(b".");
        mac.update(payload.as_bytes());
        // Constant-time comparison: a forged token learns nothing from timing.
        mac.verify_slice(&signature).map_err(|_| bad())?;
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(bad)?;
        if claims.exp <= at.timestamp() {
            return Err(Error::Unauthenticated(
                "the token has expired; log in again".into(),
            ));
        }
        Ok(claims.sub)
    }
}

/// An argon2id hash of a password, in PHC string form.
///
/// Blocking and unbounded: for work no client can start (seeding the demo data). Requests
/// and commands hash through a [`Hasher`].
pub fn hash_password(password: &str) -> Result<String> {
    hash_in(&mut Workspace::default(), password)
}

/// The memory argon2 works in, kept by each [`Hasher`] thread from one computation to the
/// next. Allocating argon2's 19 MiB afresh for every check, from whichever thread ran it,
/// left the allocator holding a copy per thread (64 parallel wrong passwords: 300-550 MB
/// resident, never given back); one buffer per hashing thread bounds it for good.
#[derive(Default)]
pub struct Workspace {
    blocks: Vec<Block>,
}

/// The most memory a stored hash may ask argon2 for (KiB): ours use 19 MiB; a hash asking
/// for more than this is not one of ours and matches nothing.
const MAX_HASH_MEMORY_KIB: u32 = 64 * 1024;

impl Workspace {
    fn blocks(&mut self, params: &Params) -> &mut [Block] {
        let count = params.block_count();
        if self.blocks.len() < count {
            self.blocks.resize(count, Block::default());
        }
        &mut self.blocks[..count]
    }
}

fn hash_in(workspace: &mut Workspace, password: &str) -> Result<String> {
    let failed =
        |err: &dyn fmt::Display| Error::internal(anyhow::anyhow!("hashing a password: {err}"));
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let salt = SaltString::encode_b64(&bytes).map_err(|err| failed(&err))?;
    let params = Params::default();
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let output = Output::init_with(Params::DEFAULT_OUTPUT_LEN, |out| {
        argon2
            .hash_password_into_with_memory(
                password.as_bytes(),
                &bytes,
                out,
                workspace.blocks(&params),
            )
            .map_err(password_hash::Error::from)
    })
    .map_err(|err| failed(&err))?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|err| failed(&err))?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(hash.to_string())
}

fn matches_in(workspace: &mut Workspace, password: &str, hash: &str) -> bool {
    let mut check = || -> Option<bool> {
        let parsed = PasswordHash::new(hash).ok()?;
        let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
        let version = parsed
            .version
            .map(Version::try_from)
            .transpose()
            .ok()?
            .unwrap_or_default();
        let params = Params::try_from(&parsed).ok()?;
        if params.m_cost() > MAX_HASH_MEMORY_KIB {
            return None;
        }
        let mut salt = [0u8; 64];
        let salt = parsed.salt?.decode_b64(&mut salt).ok()?;
        let expected = parsed.hash?;
        let argon2 = Argon2::new(algorithm, version, params.clone());
        let computed = Output::init_with(expected.len(), |out| {
            argon2
                .hash_password_into_with_memory(
                    password.as_bytes(),
                    salt,
                    out,
                    workspace.blocks(&params),
                )
                .map_err(password_hash::Error::from)
        })
        .ok()?;
        // Output's equality is constant-time.
        Some(computed == expected)
    };
    check().unwrap_or(false)
}

#[cfg(test)]
fn password_matches(password: &str, hash: &str) -> bool {
    matches_in(&mut Workspace::default(), password, hash)
}

/// A real hash of a random password, checked when the email is unknown so that a wrong
/// email and a wrong password take the same time and give the same answer. Made on first
/// use, inside the [`Hasher`] like every other argon2 computation.
fn decoy_hash(workspace: &mut Workspace) -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        hash_in(workspace, &URL_SAFE_NO_PAD.encode(bytes)).unwrap_or_default()
    })
}

/// How long a caller refused by a full [`Hasher`] queue is told to wait: a queue drains in
/// well under a second when it is sized to the machine.
pub const BUSY_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// The default number of argon2 computations that may wait for a free core.
pub const DEFAULT_HASH_QUEUE: usize = 64;

/// How much password hashing may happen at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashLimits {
    /// Computations running at once (each holds argon2's memory, about 19 MiB); at least 1.
    pub concurrency: usize,
    /// Computations waiting for a free slot; beyond them a caller is refused at once.
    pub queue: usize,
}

impl HashLimits {
    /// One computation per core of this machine, and [`DEFAULT_HASH_QUEUE`] waiting.
    pub fn for_machine() -> HashLimits {
        HashLimits {
            concurrency: std::thread::available_parallelism().map_or(1, |n| n.get()),
            queue: DEFAULT_HASH_QUEUE,
        }
    }
}

impl Default for HashLimits {
    fn default() -> Self {
        HashLimits::for_machine()
    }
}

/// Runs every argon2 computation of a server on its own `concurrency` threads, each with
/// one reused [`Workspace`], at most `queue` more waiting (see the module docs). Cheap to
/// clone; clones share the limit. The threads end when the last clone is dropped.
#[derive(Clone)]
pub struct Hasher {
    inner: Arc<HasherInner>,
}

type Job = Box<dyn FnOnce(&mut Workspace) + Send>;

struct HasherInner {
    limits: HashLimits,
    /// One per hashing thread: a computation holding one is sent to a thread that is free.
    permits: Arc<Semaphore>,
    jobs: std::sync::mpsc::Sender<Job>,
    /// Computations running or waiting.
    admitted: AtomicUsize,
    /// Computations finished (for tests and metrics).
    done: AtomicU64,
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hasher")
            .field("limits", &self.inner.limits)
            .field("admitted", &self.inner.admitted.load(Ordering::Relaxed))
            .finish()
    }
}

/// A place among the running or waiting computations, given back when dropped.
struct Place(Arc<HasherInner>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.admitted.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Hasher {
    /// A hasher with these limits, and its threads.
    pub fn new(limits: HashLimits) -> Hasher {
        let limits = HashLimits {
            concurrency: limits.concurrency.max(1),
            ..limits
        };
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(std::sync::Mutex::new(queue));
        for n in 0..limits.concurrency {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("prima-argon2-{n}"))
                .spawn(move || {
                    let mut workspace = Workspace::default();
                    loop {
                        // The lock is held only while waiting for the next job.
                        let next = queue.lock().map(|queue| queue.recv());
                        match next {
                            Ok(Ok(job)) => {
                                // A panic (none is known) costs the job, not the thread.
                                let run = std::panic::AssertUnwindSafe(|| job(&mut workspace));
                                if std::panic::catch_unwind(run).is_err() {
                                    workspace = Workspace::default();
                                }
                            }
                            _ => break,
                        }
                    }
                });
            if let Err(err) = spawned {
                tracing::error!(%err, "could not start a password hashing thread");
            }
        }
        Hasher {
            inner: Arc::new(HasherInner {
                permits: Arc::new(Semaphore::new(limits.concurrency)),
                jobs,
                limits,
                admitted: AtomicUsize::new(0),
                done: AtomicU64::new(0),
            }),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> HashLimits {
        self.inner.limits
    }

    /// Computations finished so far.
    pub fn computed(&self) -> u64 {
        self.inner.done.load(Ordering::SeqCst)
    }

    /// An argon2id hash of `password` (PHC string form). THROTTLED when the queue is full.
    pub async fn hash(&self, password: &str) -> Result<String> {
        let password = password.to_owned();
        self.run(move |workspace| hash_in(workspace, &password))
            .await?
    }

    /// Whether `password` matches `hash`; with no hash (an unknown email), a check against
    /// the decoy that takes as long and is always false. THROTTLED when the queue is full.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool> {
        let password = password.to_owned();
        let hash = hash.map(str::to_owned);
        self.run(move |workspace| match hash {
            Some(hash) => matches_in(workspace, &password, &hash),
            None => {
                let decoy = decoy_hash(workspace);
                matches_in(workspace, &password, decoy);
                false
            }
        })
        .await
    }

    /// Runs `work` on a hashing thread once a slot is free. The place and the slot move
    /// with the job, so a caller who goes away does not free them while its computation
    /// still runs; a caller who goes away while waiting frees its place at once.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Workspace) -> T + Send + 'static,
    ) -> Result<T> {
        let inner = &self.inner;
        let most = inner.limits.concurrency.saturating_add(inner.limits.queue);
        inner
            .admitted
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < most).then_some(n + 1)
            })
            .map_err(|_| Error::Throttled {
                message: format!(
                    "the server is checking too many passwords at once: try again in {} s",
                    whole_seconds(BUSY_RETRY)
                ),
                retry_after: BUSY_RETRY,
            })?;
        let place = Place(inner.clone());
        let slot = inner
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(Error::internal)?;
        let (answer_tx, answer) = tokio::sync::oneshot::channel();
        let done = inner.clone();
        let job: Job = Box::new(move |workspace| {
            let held = (place, slot);
            let answer = work(workspace);
            done.done.fetch_add(1, Ordering::SeqCst);
            drop(held);
            let _ = answer_tx.send(answer);
        });
        inner.jobs.send(job).map_err(|_| {
            Error::internal(anyhow::anyhow!("the password hashing threads are gone"))
        })?;
        answer
            .await
            .map_err(|_| Error::internal(anyhow::anyhow!("a password hashing thread stopped")))
    }
}

// ---------------------------------------------------------------------------------------
// The login throttle
// ---------------------------------------------------------------------------------------

/// How failed logins are throttled, per email and per client address (see
/// [`crate::throttle::Backoff`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginPolicy {
    /// Per email (known or not).
    pub email: Backoff,
    /// Per client address (an IPv4 address, or the /64 of an IPv6 one). Higher than per
    /// email: many people may share an address behind a NAT.
    pub address: Backoff,
}

impl Default for LoginPolicy {
    /// Per email: 3 free failures, then 1 s doubling to at most 60 s, locked for 15 min
    /// after 10 in 15 min. Per address: the same with 10 free failures and a lockout after
    /// 30.
    fn default() -> Self {
        let email = Backoff {
            free_failures: 3,
            first_delay: std::time::Duration::from_secs(1),
            max_delay: std::time::Duration::from_secs(60),
            lockout_after: 10,
            lockout_for: std::time::Duration::from_secs(15 * 60),
            window: std::time::Duration::from_secs(15 * 60),
        };
        LoginPolicy {
            email,
            address: Backoff {
                free_failures: 10,
                lockout_after: 30,
                ..email
            },
        }
    }
}

/// What a login goes through before and while its password is checked: the limiter store
/// (failure counts), the hasher, and the policy.
#[derive(Debug)]
pub struct LoginGuard {
    store: Store,
    hasher: Hasher,
    policy: LoginPolicy,
}

impl LoginGuard {
    /// A guard counting in `store`, hashing through `hasher`.
    pub fn new(store: Store, hasher: Hasher, policy: LoginPolicy) -> LoginGuard {
        LoginGuard {
            store,
            hasher,
            policy,
        }
    }

    /// The server's hasher (also for new passwords).
    pub fn hasher(&self) -> &Hasher {
        &self.hasher
    }
}

/// The limiter key of an email: a digest, so Redis holds no addresses and keys have one
/// length however long the input.
fn email_key(email: &str) -> String {
    format!("login:email:{}", digest(email))
}

/// The limiter key of a client address: an IPv4 address as is (an IPv4-mapped IPv6 one as
/// its IPv4), an IPv6 address by its /64 (one host commonly holds a whole /64), anything
/// else (a malformed forwarded address) by digest.
fn address_key(address: &str) -> String {
    let parsed = address
        .parse::<IpAddr>()
        .ok()
        .or_else(|| address.parse::<SocketAddr>().ok().map(|a| a.ip()));
    match parsed.map(|ip| ip.to_canonical()) {
        Some(IpAddr::V4(v4)) => format!("login:ip:{v4}"),
        Some(IpAddr::V6(v6)) => {
            let network = Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX));
            format!("login:ip:{network}/64")
        }
        None => format!("login:ip:?{}", digest(address)),
    }
}

fn digest(text: &str) -> String {
    Sha256::digest(text.as_bytes())[..16]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn refused(gate: Gate) -> Option<Error> {
    let (message, retry_after) = match gate {
        Gate::Admitted => return None,
        Gate::Wait { retry_after } => (
            format!(
                "too many failed logins: wait {} s before trying again",
                whole_seconds(retry_after)
            ),
            retry_after,
        ),
        Gate::Locked { retry_after } => (
            format!(
                "too many failed logins: logging in is locked for {} s",
                whole_seconds(retry_after)
            ),
            retry_after,
        ),
    };
    Some(Error::Throttled {
        message,
        retry_after,
    })
}

/// A successful login.
#[derive(Debug, Clone)]
pub struct Session {
    /// The bearer token.
    pub token: String,
    /// When the token stops working.
    pub expires_at: DateTime<Utc>,
    /// The user who logged in.
    pub user: users::Model,
}

const BAD_LOGIN: &str = "the email or password is incorrect";

/// Checks an email and password, throttled per email and per client address (see the
/// module docs). A wrong password and an unknown email give the same UNAUTHENTICATED
/// answer, and are throttled alike (THROTTLED, with when to retry); a suspended or inactive
/// account is told so only after its password was right. `client_address` is the caller's
/// IP address as the server determined it, if any.
#[tracing::instrument(skip_all)]
pub async fn login(
    db: &impl ConnectionTrait,
    tokens: &Tokens,
    guard: &LoginGuard,
    email: &str,
    password: &str,
    client_address: Option<&str>,
) -> Result<Session> {
    let email = email.trim().to_lowercase();
    let email_key = email_key(&email);
    let address_key = client_address.map(address_key);
    let mut keys = vec![(email_key.as_str(), &guard.policy.email)];
    if let Some(address) = &address_key {
        keys.push((address.as_str(), &guard.policy.address));
    }
    if let Some(err) = refused(guard.store.admit(&keys).await) {
        return Err(err);
    }
    // From here the attempt counts as a failure of the email and the address.
    let checked = async {
        let user = users::Entity::find()
            .filter(users::Column::Email.eq(email.as_str()))
            .one(db)
            .await?;
        let stored = user.as_ref().map(|u| u.password_hash.as_str());
        let matches = guard.hasher.verify(password, stored).await?;
        Ok::<_, Error>(user.filter(|_| matches))
    }
    .await;
    let user = match checked {
        Ok(Some(user)) => user,
        Ok(None) => return Err(Error::Unauthenticated(BAD_LOGIN.into())),
        Err(err) => {
            // No password was checked (a full hasher queue, a database error): the attempt
            // did not happen.
            for (key, _) in &keys {
                guard.store.forgive(key).await;
            }
            return Err(err);
        }
    };
    guard.store.reset(&email_key).await;
    if let Some(address) = &address_key {
        guard.store.forgive(address).await;
    }
    check_status(&user)?;
    let at = now();
    let mut active: users::ActiveModel = user.into();
    active.last_login_at = Set(Some(at));
    let user = active.update(db).await?;
    let (token, expires_at) = tokens.issue(user.id, at);
    Ok(Session {
        token,
        expires_at,
        user,
    })
}

fn check_status(user: &users::Model) -> Result<()> {
    match user.status {
        UserStatus::Active => Ok(()),
        UserStatus::Suspended => Err(Error::Unauthenticated("this account is suspended".into())),
        UserStatus::Inactive => Err(Error::Unauthenticated("this account is inactive".into())),
    }
}

/// The caller behind a bearer token, with their current venue access.
#[tracing::instrument(skip_all)]
pub async fn authenticate(
    db: &impl ConnectionTrait,
    tokens: &Tokens,
    token: &str,
) -> Result<Actor> {
    let user_id = tokens.verify(token, now())?;
    actor_for(db, user_id).await
}

/// Loads a user as an [`Actor`]: the user must exist and be ACTIVE.
pub async fn actor_for(db: &impl ConnectionTrait, user_id: Uuid) -> Result<Actor> {
    actors_for(db, &[user_id])
        .await?
        .remove(&user_id)
        .unwrap_or_else(|| Err(gone()))
}

fn gone() -> Error {
    Error::Unauthenticated("this account no longer exists".into())
}

/// Loads several users as [`Actor`]s in one statement (their rows, each joined to its
/// unrevoked venue access), each as [`actor_for`] would: an error for one that is gone or not
/// ACTIVE. An error of the database fails them all.
pub async fn actors_for(
    db: &impl ConnectionTrait,
    user_ids: &[Uuid],
) -> Result<HashMap<Uuid, Result<Actor>>> {
    let rows = users::Entity::find()
        .filter(users::Column::Id.is_in(user_ids.iter().copied()))
        .join_rev(
            JoinType::LeftJoin,
            user_venue_access::Relation::Users
                .def()
                .on_condition(|_, _| {
                    user_venue_access::Column::RevokedAt
                        .is_null()
                        .into_condition()
                }),
        )
        .select_also(user_venue_access::Entity)
        .all(db)
        .await?;
    let mut found: HashMap<Uuid, users::Model> = HashMap::new();
    let mut access: HashMap<Uuid, Vec<user_venue_access::Model>> = HashMap::new();
    for (user, grant) in rows {
        if let Some(grant) = grant {
            access.entry(user.id).or_default().push(grant);
        }
        found.entry(user.id).or_insert(user);
    }
    let mut actors: HashMap<Uuid, Result<Actor>> =
        user_ids.iter().map(|id| (*id, Err(gone()))).collect();
    for user in found.into_values() {
        let actor = check_status(&user).map(|()| {
            let venues: HashMap<Uuid, Level> = access
                .remove(&user.id)
                .unwrap_or_default()
                .into_iter()
                .map(|row| (row.venue_id, Level::of(user.role, row.role)))
                .collect();
            Actor {
                user_id: user.id,
                name: format!("{} {}", user.first_name, user.last_name),
                role: user.role,
                venues: Arc::new(venues),
            }
        });
        actors.insert(user.id, actor);
    }
    Ok(actors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        Tokens::new(TokenSecret::new(b"test-secret"), Duration::hours(1))
    }

    #[test]
    fn an_issued_token_verifies_to_its_user() {
        let user = Uuid::new_v4();
        let (token, _) = tokens().issue(user, now());
        assert_eq!(tokens().verify(&token, now()).unwrap(), user);
    }

    #[test]
    fn an_expired_token_is_refused() {
        let (token, exp) = tokens().issue(Uuid::new_v4(), now());
        let err = tokens().verify(&token, exp).unwrap_err();
        assert_eq!(err.code(), "UNAUTHENTICATED");
        assert!(err.to_string().contains("expired"));
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() {
        let other = Tokens::new(TokenSecret::new(b"other"), Duration::hours(1));
        let (token, _) = other.issue(Uuid::new_v4(), now());
        assert_eq!(
            tokens().verify(&token, now()).unwrap_err().code(),
            "UNAUTHENTICATED"
        );
    }

    #[test]
    fn a_tampered_payload_is_refused() {
        let (token, _) = tokens().issue(Uuid::new_v4(), now());
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let forged = Claims {
            sub: Uuid::new_v4(),
            iat: 0,
            exp: i64::MAX,
        };
        parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert!(tokens().verify(&parts.join("."), now()).is_err());
        assert!(tokens().verify("garbage", now()).is_err());
        assert!(tokens().verify("v1.a.b.c", now()).is_err());
    }

    #[test]
    fn a_password_hash_checks_the_password() {
        let hash = hash_password("prima-demo").unwrap();
        assert!(password_matches("prima-demo", &hash));
        assert!(!password_matches("prima-dem0", &hash));
        assert!(!password_matches(
            "anything",
            decoy_hash(&mut Workspace::default())
        ));
    }

    #[test]
    fn hashes_read_and_written_by_the_argon2_crate_itself_agree_with_ours() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let ours = hash_password("prima-demo").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"prima-demo", &parsed)
                .is_ok()
        );
        let salt = SaltString::encode_b64(&[7u8; 16]).unwrap();
        let theirs = Argon2::default()
            .hash_password(b"prima-demo", &salt)
            .unwrap()
            .to_string();
        let mut workspace = Workspace::default();
        assert!(matches_in(&mut workspace, "prima-demo", &theirs));
        assert!(!matches_in(&mut workspace, "prima-dem0", &theirs));
        // Other parameters, in the same reused workspace.
        let small = Params::new(4096, 3, 1, None).unwrap();
        let other = Argon2::new(Algorithm::Argon2id, Version::V0x13, small)
            .hash_password(b"prima-demo", &salt)
            .unwrap()
            .to_string();
        assert!(matches_in(&mut workspace, "prima-demo", &other));
        assert!(matches_in(&mut workspace, "prima-demo", &ours));
        assert!(!matches_in(&mut workspace, "prima-demo", "not a hash"));
    }

    #[test]
    fn a_hash_asking_for_more_memory_than_ours_ever_do_matches_nothing() {
        let salt = SaltString::encode_b64(&[7u8; 16]).unwrap();
        let huge = format!(
            "$argon2id$v=19$m={},t=1,p=1${}$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            MAX_HASH_MEMORY_KIB * 4,
            salt.as_str()
        );
        let mut workspace = Workspace::default();
        assert!(!matches_in(&mut workspace, "anything", &huge));
        assert!(workspace.blocks.is_empty(), "nothing was allocated for it");
    }

    /// Holds `n` computations of `hasher` inside argon2's place until released: each
    /// reports when it starts, then waits for the release.
    fn hold(
        hasher: &Hasher,
        n: usize,
    ) -> (
        std::sync::mpsc::Receiver<()>,
        std::sync::mpsc::SyncSender<()>,
        Vec<tokio::task::JoinHandle<Result<()>>>,
    ) {
        let (started_tx, started) = std::sync::mpsc::channel();
        let (release, release_rx) = std::sync::mpsc::sync_channel::<()>(0);
        let release_rx = Arc::new(std::sync::Mutex::new(release_rx));
        let tasks = (0..n)
            .map(|_| {
                let hasher = hasher.clone();
                let started_tx = started_tx.clone();
                let release_rx = release_rx.clone();
                tokio::spawn(async move {
                    hasher
                        .run(move |_| {
                            started_tx.send(()).unwrap();
                            release_rx.lock().unwrap().recv().unwrap();
                        })
                        .await
                })
            })
            .collect();
        (started, release, tasks)
    }

    /// Waits until the hasher has admitted `n` computations (running or waiting).
    async fn admitted(hasher: &Hasher, n: usize) {
        while hasher.inner.admitted.load(Ordering::SeqCst) < n {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_hasher_runs_at_most_its_concurrency_and_refuses_beyond_its_queue() {
        let hasher = Hasher::new(HashLimits {
            concurrency: 2,
            queue: 3,
        });
        let (started, release, tasks) = hold(&hasher, 5);
        started.recv().unwrap();
        started.recv().unwrap();
        admitted(&hasher, 5).await;
        assert!(
            started
                .recv_timeout(std::time::Duration::from_millis(50))
                .is_err(),
            "a third computation started while two ran"
        );
        let refused = hasher.verify("anything", None).await.unwrap_err();
        assert_eq!(refused.code(), "THROTTLED");
        assert_eq!(refused.retry_after_secs(), Some(1));
        for _ in 0..5 {
            release.send(()).unwrap();
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(hasher.computed(), 5);
        assert!(
            !hasher.verify("anything", None).await.unwrap(),
            "room again once the queue drained"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_caller_who_goes_away_keeps_its_slot_until_its_computation_ends() {
        let hasher = Hasher::new(HashLimits {
            concurrency: 1,
            queue: 1,
        });
        // One caller at a time, so which one runs is known: the first, once it started.
        let (started, release, mut tasks) = hold(&hasher, 1);
        started.recv().unwrap();
        let (_, _, mut queued) = hold(&hasher, 1);
        admitted(&hasher, 2).await;
        // The waiting caller leaves: its place in the queue is free again.
        let waiting = queued.pop().unwrap();
        waiting.abort();
        let _ = waiting.await;
        while hasher.inner.admitted.load(Ordering::SeqCst) > 1 {
            tokio::task::yield_now().await;
        }
        assert_eq!(hasher.inner.admitted.load(Ordering::SeqCst), 1);
        // The running caller leaves: its computation still holds the slot.
        let running = tasks.pop().unwrap();
        running.abort();
        let _ = running.await;
        assert_eq!(hasher.inner.admitted.load(Ordering::SeqCst), 1);
        release.send(()).unwrap();
        while hasher.inner.admitted.load(Ordering::SeqCst) > 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(hasher.computed(), 1);
    }

    #[test]
    fn client_addresses_are_keyed_by_host_or_ipv6_network() {
        assert_eq!(address_key("203.0.113.7"), "login:ip:203.0.113.7");
        assert_eq!(address_key("::ffff:203.0.113.7"), "login:ip:203.0.113.7");
        assert_eq!(address_key("203.0.113.7:4711"), "login:ip:203.0.113.7");
        assert_eq!(
            address_key("2001:db8:1:2:aaaa::1"),
            address_key("2001:db8:1:2:bbbb::9"),
            "one /64"
        );
        assert_ne!(
            address_key("2001:db8:1:2::1"),
            address_key("2001:db8:1:3::1")
        );
        let junk = address_key(&"x".repeat(10_000));
        assert!(junk.len() < 64, "{junk}");
        assert_eq!(
            email_key("a@b.c").len(),
            email_key(&"a".repeat(5_000)).len()
        );
    }

    mod throttled_logins {
        use super::*;
        use crate::testing::TestDb;
        use crate::throttle::{Clock, StoreOptions};
        use prima_entity::enums::UserRole;

        const EMAIL: &str = "ada@example.com";
        const PASSWORD: &str = "correct horse";
        const ADDRESS: Option<&str> = Some("198.51.100.4");

        struct World {
            db: TestDb,
            guard: LoginGuard,
            clock: Clock,
        }

        async fn world() -> World {
            let db = TestDb::new().await;
            let clock = Clock::manual(1_700_000_000_000);
            let store = Store::in_process(StoreOptions {
                clock: clock.clone(),
                ..StoreOptions::default()
            });
            let hasher = Hasher::new(HashLimits {
                concurrency: 2,
                queue: 8,
            });
            crate::users::create_user(
                &db.conn,
                &hasher,
                crate::users::NewUser {
                    email: EMAIL.into(),
                    password: PASSWORD.into(),
                    first_name: "Ada".into(),
                    last_name: "Quinn".into(),
                    role: UserRole::Viewer,
                    venues: vec![],
                },
            )
            .await
            .unwrap();
            World {
                db,
                guard: LoginGuard::new(store, hasher, LoginPolicy::default()),
                clock,
            }
        }

        impl World {
            async fn login(&self, email: &str, password: &str) -> Result<Session> {
                login(
                    &self.db.conn,
                    &tokens(),
                    &self.guard,
                    email,
                    password,
                    ADDRESS,
                )
                .await
            }
        }

        #[tokio::test]
        async fn the_fourth_wrong_password_is_throttled_without_hashing() {
            let w = world().await;
            for _ in 0..3 {
                let err = w.login(EMAIL, "wrong").await.unwrap_err();
                assert_eq!(err.code(), "UNAUTHENTICATED");
            }
            let hashed = w.guard.hasher().computed();
            let err = w.login(EMAIL, "wrong").await.unwrap_err();
            assert_eq!(err.code(), "THROTTLED");
            assert_eq!(err.retry_after_secs(), Some(1));
            let err = w.login(EMAIL, PASSWORD).await.unwrap_err();
            assert_eq!(err.code(), "THROTTLED", "even the right password waits");
            assert_eq!(
                w.guard.hasher().computed(),
                hashed,
                "a refusal hashes nothing"
            );
            w.clock.advance(std::time::Duration::from_secs(1));
            assert!(w.login(EMAIL, PASSWORD).await.is_ok());
        }

        #[tokio::test]
        async fn an_unknown_email_is_throttled_exactly_like_a_known_one() {
            let w = world().await;
            let mut answers = Vec::new();
            for email in [EMAIL, "nobody@example.com"] {
                let mut seen = Vec::new();
                for _ in 0..5 {
                    let err = w.login(email, "wrong").await.unwrap_err();
                    seen.push((err.code(), err.to_string(), err.retry_after_secs()));
                }
                answers.push(seen);
            }
            assert_eq!(answers[0], answers[1]);
            assert_eq!(answers[0][3].0, "THROTTLED");
        }

        #[tokio::test]
        async fn a_right_password_resets_the_count_of_the_email() {
            let w = world().await;
            for _ in 0..2 {
                w.login(EMAIL, "wrong").await.unwrap_err();
            }
            w.login(EMAIL, PASSWORD).await.unwrap();
            for _ in 0..3 {
                let err = w.login(EMAIL, "wrong").await.unwrap_err();
                assert_eq!(err.code(), "UNAUTHENTICATED", "three free failures again");
            }
            assert_eq!(
                w.login(EMAIL, "wrong").await.unwrap_err().code(),
                "THROTTLED"
            );
        }

        #[tokio::test]
        async fn ten_failures_lock_the_email_until_the_lockout_ends() {
            let w = world().await;
            for _ in 0..10 {
                let err = w.login(EMAIL, "wrong").await.unwrap_err();
                assert_eq!(err.code(), "UNAUTHENTICATED");
                // Wait out each delay (the clock is ours).
                w.clock.advance(std::time::Duration::from_secs(60));
            }
            let err = w.login(EMAIL, PASSWORD).await.unwrap_err();
            assert_eq!(err.code(), "THROTTLED");
            assert!(err.to_string().contains("locked"), "{err}");
            assert_eq!(err.retry_after_secs(), Some(900 - 60));
            w.clock.advance(std::time::Duration::from_secs(900 - 60));
            assert!(w.login(EMAIL, PASSWORD).await.is_ok());
        }

        #[tokio::test]
        async fn one_address_guessing_at_many_emails_is_throttled() {
            let w = world().await;
            for i in 0..10 {
                let err = w
                    .login(&format!("user{i}@example.com"), "wrong")
                    .await
                    .unwrap_err();
                assert_eq!(err.code(), "UNAUTHENTICATED");
            }
            let err = w.login(EMAIL, "wrong").await.unwrap_err();
            assert_eq!(err.code(), "THROTTLED", "whatever the email");
            assert_eq!(err.retry_after_secs(), Some(1));
            w.clock.advance(std::time::Duration::from_secs(1));
            let ok = w.login(EMAIL, PASSWORD).await;
            assert!(
                ok.is_ok(),
                "the refusal counted nothing for the email: {ok:?}"
            );
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_login_refused_by_a_full_hasher_counts_no_failure() {
            let w = world().await;
            let busy = Hasher::new(HashLimits {
                concurrency: 1,
                queue: 0,
            });
            let guard =
                LoginGuard::new(w.guard.store.clone(), busy.clone(), LoginPolicy::default());
            let (started, release, tasks) = hold(&busy, 1);
            started.recv().unwrap();
            for _ in 0..5 {
                let err = login(&w.db.conn, &tokens(), &guard, EMAIL, "wrong", ADDRESS)
                    .await
                    .unwrap_err();
                assert_eq!(err.code(), "THROTTLED");
                assert_eq!(err.retry_after_secs(), Some(1));
            }
            release.send(()).unwrap();
            for task in tasks {
                task.await.unwrap().unwrap();
            }
            for _ in 0..3 {
                let err = w.login(EMAIL, "wrong").await.unwrap_err();
                assert_eq!(err.code(), "UNAUTHENTICATED", "no failure was counted");
            }
        }
    }

    #[test]
    fn secrets_never_print() {
        assert_eq!(
            format!("{:?}", TokenSecret::new(b"s3cret")),
            "TokenSecret(<redacted>)"
        );
    }
}

#[cfg(test)]
mod actor_tests {
    use prima_entity::enums::{UserRole, VenueRole};
    use sea_orm::IntoActiveModel;

    use super::*;
    use crate::testing::fixtures::{db, grant, suspend, user, venue};

    #[tokio::test]
    async fn actors_are_read_in_one_statement_with_only_their_unrevoked_access() {
        let db = db().await;
        let (a, b) = (venue(&db).await, venue(&db).await);
        let staff = user(&db).await;
        grant(&db, staff, a, VenueRole::Manager).await;
        grant(&db, staff, b, VenueRole::Coordinator).await;
        let revoked = user(&db).await;
        grant(&db, revoked, a, VenueRole::Owner).await;
        let alone = user(&db).await;
        let suspended = user(&db).await;
        grant(&db, suspended, a, VenueRole::Owner).await;
        suspend(&db, suspended).await;
        let grant_row = user_venue_access::Entity::find()
            .filter(user_venue_access::Column::UserId.eq(revoked))
            .one(&db.conn)
            .await
            .unwrap()
            .unwrap();
        let mut grant_row = grant_row.into_active_model();
        grant_row.revoked_at = Set(Some(now()));
        grant_row.update(&db.conn).await.unwrap();
        let missing = Uuid::new_v4();

        let before = db.stats.statements();
        let mut actors = actors_for(&db.conn, &[staff, revoked, alone, suspended, missing])
            .await
            .unwrap();
        assert_eq!(db.stats.statements() - before, 1, "one statement");

        let staff = actors.remove(&staff).unwrap().unwrap();
        assert_eq!(staff.venues.len(), 2);
        assert_eq!(
            staff.venues[&a],
            Level::of(UserRole::Manager, VenueRole::Manager)
        );
        assert_eq!(
            staff.venues[&b],
            Level::of(UserRole::Manager, VenueRole::Coordinator)
        );
        for id in [revoked, alone] {
            let actor = actors.remove(&id).unwrap().unwrap();
            assert!(actor.venues.is_empty(), "no unrevoked access: no venues");
        }
        let suspended = actors.remove(&suspended).unwrap().unwrap_err();
        assert_eq!(suspended.code(), "UNAUTHENTICATED");
        let missing = actors.remove(&missing).unwrap().unwrap_err();
        assert_eq!(missing.code(), "UNAUTHENTICATED");
    }
}
