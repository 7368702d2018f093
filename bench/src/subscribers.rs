//! Subscription fan-out benchmark: `SUBSCRIBERS` WebSocket clients (default 10,000) on one
//! replica all follow `bookingChanged` of one venue; `EVENTS` bookings (default 20) are
//! confirmed there one at a time, and every delivery's event-to-client latency is measured,
//! with the memory each held subscription costs. See bench/README.md.
//!
//! Two processes of this binary, so that each holds one file descriptor per connection, not
//! two (with both ends in one process, a hard limit of 20,000 open files stops it short of
//! 10,000), and so that the server's memory and CPU are measured apart from the clients':
//!
//! - the **server** (this process): raises its soft open-file limit to the hard one, starts
//!   the API in-process over `DATABASE_URL` (default: a fresh SQLite file in a temporary
//!   directory, seeded with the demo data) and runs the client process. It reads its own
//!   resident memory (VmRSS) before the connections open and again once its event hub
//!   counts every subscription; then it watches the idle server for `HOLD_SECS` (default 4):
//!   SQL statements and CPU per second while nothing happens; then it lets the events go.
//! - the **client** (the same binary, started with [`CLIENT`] set to the server's address):
//!   logs in as `gm@prima.demo` (venue ADMIN of the last demo venue, where bookings wait for
//!   approval) and `admin@prima.demo`; opens the connections, at most `BATCH` handshakes at a
//!   time (default 250), each sending `connection_init` with gm's token and subscribing to
//!   `bookingChanged(venueIds: [gm's venue], statuses: [CONFIRMED]) { cursor booking { id } }`;
//!   then, for each event, creates a booking as the admin, waits `PAUSE_MS` (default 500:
//!   the booking's own CREATED event, PENDING and so filtered out by every subscriber, still
//!   wakes every feed), confirms it as gm over HTTP and waits until every subscriber received
//!   it (or `EVENT_TIMEOUT_SECS`, default 60). A delivery's latency runs from just before the
//!   confirm request is sent to when the subscriber's task read the `next` message, both on
//!   the client process's monotonic clock. `CLIENT_READ_BUFFER_KIB` (default 128, the
//!   WebSocket library's default, which the server uses too) sizes each client connection's
//!   read buffer.
//!
//! With `USERS` above 1 (default 1: every connection is gm's), the server process first
//! adds that many COORDINATOR users of gm's venue straight to the database, issues their
//! tokens, and the connections are spread over them. A replica re-reads a user's access
//! once per interval for all of that user's subscriptions, so this is what makes the
//! re-checks cost what many distinct dashboard users would.
//!
//! Every subscriber must receive every event exactly once: the run fails otherwise.
//! `PRIMA_DB_POOL_SIZE` (default 10) and `PRIMA_SUBSCRIPTION_RECHECK_MS` (default 2,000) are
//! the server's own settings; `RUST_LOG` (default `error`) filters the server's log.

/// The server's allocator (see crates/server/src/main.rs), so the in-process server costs
/// what `prima serve` does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use prima_bench::{Api, env_usize, ms, pct};
use prima_server::config::ServeArgs;
use prima_service::db::{self, PoolSettings};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Set (to the server's address) in the client process's environment.
const CLIENT: &str = "PRIMA_BENCH_SUBSCRIBERS_SERVER";
/// Set (to a file of tokens, one a line) in the client process's environment when the
/// subscribers are spread over users of their own.
const TOKENS: &str = "PRIMA_BENCH_SUBSCRIBERS_TOKENS";

const SUBSCRIPTION: &str = "subscription($venues: [ID!], $statuses: [BookingStatus!]) { \
    bookingChanged(venueIds: $venues, statuses: $statuses) { cursor booking { id } } }";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match std::env::var(CLIENT) {
        Ok(addr) => client(addr.parse().context("the server address")?).await,
        Err(_) => server().await,
    }
}

// ---------------------------------------------------------------------------------------
// The server process
// ---------------------------------------------------------------------------------------

async fn server() -> anyhow::Result<()> {
    // The server's own errors (an INTERNAL error is logged, not returned), on stderr.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let files = raise_open_files()?;
    let subscribers = env_usize("SUBSCRIBERS", 10_000);
    let events = env_usize("EVENTS", 20);
    let users = env_usize("USERS", 1).clamp(1, subscribers.max(1));
    let hold = Duration::from_secs(env_usize("HOLD_SECS", 4) as u64);
    if subscribers == 0 || events == 0 {
        bail!("SUBSCRIBERS and EVENTS must be at least 1");
    }
    // Each process holds one socket per subscriber, plus the database, listener, runtime.
    if (subscribers as u64) + 100 > files {
        bail!(
            "{subscribers} subscribers need about {} open files per process; the hard limit is \
             {files} (raise it: `ulimit -Hn`, as root, or /etc/security/limits.conf)",
            subscribers + 100
        );
    }

    let mut scratch = None;
    let url = match std::env::var("DATABASE_URL") {
        Ok(url) => url,
        Err(_) => {
            let dir = std::env::temp_dir()
                .join(format!("prima-bench-subscribers-{}", std::process::id()));
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let url = format!("sqlite://{}?mode=rwc", dir.join("prima.db").display());
            scratch = Some(dir);
            url
        }
    };
    let db = db::connect(
        &url,
        &PoolSettings {
            max_connections: env_usize("PRIMA_DB_POOL_SIZE", 10) as u32,
            ..PoolSettings::default()
        },
    )
    .await?;
    db::migrate(&db).await?;
    let existing = db
        .conn
        .query_one_raw(Statement::from_string(
            db.conn.get_database_backend(),
            "SELECT COUNT(*) FROM users",
        ))
        .await?
        .context("no row")?
        .try_get_by_index::<i64>(0)?;
    if existing == 0 {
        prima_service::seed::seed(&db.conn, &prima_service::seed::SeedOptions::default()).await?;
    }
    let stats = db.stats.clone();
    let recheck_ms = env_usize("PRIMA_SUBSCRIPTION_RECHECK_MS", 2_000) as u64;
    let server = prima_server::app::spawn(
        db,
        &ServeArgs {
            subscription_recheck_ms: recheck_ms,
            // Every connection may be one user's (USERS=1): lift the per-user cap of
            // operations (PRIMA_WS_MAX_SUBSCRIPTIONS_PER_USER) above the connection count.
            ws: prima_server::config::WsArgs {
                max_subscriptions_per_user: subscribers as u64,
                ..prima_server::config::WsArgs::default()
            },
            ..ServeArgs::default()
        },
    )
    .await?;
    let hub = server
        .state
        .deps
        .realtime
        .as_ref()
        .context("the server runs no event hub")?
        .hub
        .clone();

    let tokens_file = if users > 1 {
        let user_ids = add_users(&server.state.deps.db.conn, users).await?;
        let now = prima_service::time::now();
        let tokens: Vec<String> = user_ids
            .iter()
            .map(|id| server.state.deps.tokens.issue(*id, now).0)
            .collect();
        let file = std::env::temp_dir().join(format!(
            "prima-bench-subscribers-{}.tokens",
            std::process::id()
        ));
        std::fs::write(&file, tokens.join("\n"))?;
        Some(file)
    } else {
        None
    };

    let mut command = std::process::Command::new(std::env::current_exe()?);
    if let Some(file) = &tokens_file {
        command.env(TOKENS, file);
    }
    let mut child = command
        .env(CLIENT, server.addr.to_string())
        .env("SUBSCRIBERS", subscribers.to_string())
        .env("EVENTS", events.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting the client process")?;
    let mut to_client = child.stdin.take().context("the client's stdin")?;
    let mut from_client = lines_of(child.stdout.take().context("the client's stdout")?);
    let mut go = move || writeln!(to_client, "go").context("telling the client to go");

    expect(&mut from_client, "opening").await?;
    let rss_before = rss_kib()?;
    let base = hub.subscribers();
    go()?;
    expect(&mut from_client, "subscribed").await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while hub.subscribers() < base + subscribers {
        if Instant::now() > deadline {
            bail!(
                "only {} of {subscribers} subscriptions reached the event hub",
                hub.subscribers() - base
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rss_after = rss_kib()?;
    // The idle cost of holding the subscriptions: mostly their access re-checks.
    let (statements, cpu) = (stats.statements(), cpu_seconds()?);
    tokio::time::sleep(hold).await;
    let idle_statements = (stats.statements() - statements) as f64 / hold.as_secs_f64();
    let idle_cpu = (cpu_seconds()? - cpu) / hold.as_secs_f64();
    let held = hub.subscribers() - base;
    go()?;
    let (statements, cpu, started) = (stats.statements(), cpu_seconds()?, Instant::now());
    let result = expect(&mut from_client, "result").await?;
    let busy_secs = started.elapsed().as_secs_f64();
    let busy_statements = (stats.statements() - statements) as f64 / busy_secs;
    let busy_cpu = (cpu_seconds()? - cpu) / busy_secs;
    let left = hub.subscribers() - base;
    let status = tokio::task::spawn_blocking(move || child.wait()).await??;
    if !status.success() {
        bail!("the client process failed: {status}");
    }
    let r: Value = serde_json::from_str(result.trim_start_matches("result").trim())
        .context("reading the client's result")?;
    let num = |key: &str| r[key].as_f64().unwrap_or(f64::NAN);
    let count = |key: &str| r[key].as_u64().unwrap_or(u64::MAX);

    let n = subscribers as f64;
    let server_kib = (rss_after as f64 - rss_before as f64) / n;
    let client_kib = (num("rss_after_kib") - num("rss_before_kib")) / n;
    let expected = (subscribers * events) as u64;
    let (deliveries, duplicates, missing, ended) = (
        count("deliveries"),
        count("duplicates"),
        count("missing"),
        count("ended"),
    );
    let verdict = if deliveries == expected && duplicates == 0 && missing == 0 {
        "none lost or duplicated".to_owned()
    } else {
        format!("{missing} MISSING, {duplicates} DUPLICATED")
    };
    let of_users = if users > 1 {
        format!(" of {users} users")
    } else {
        " of one user".to_owned()
    };
    println!(
        "{subscribers} subscribers{of_users} on one replica ({}): event to client p50 {:.1} ms, \
         p99 {:.1} ms, max {:.1} ms over {deliveries} deliveries ({events} events, {verdict}); \
         {:.1} KiB per subscriber (server {server_kib:.1} + client {client_kib:.1}); opened in {:.1} s",
        db::redact(&url),
        num("p50"),
        num("p99"),
        num("max"),
        server_kib + client_kib,
        num("open_secs"),
    );
    println!(
        "  server: resident {:.0} -> {:.0} MiB with the subscriptions; idle with {held} held: \
         {idle_statements:.0} SQL statements/s, {:.0}% of a core; during the events: \
         {busy_statements:.0} statements/s, {:.0}% of a core (the client process: {:.0}%)",
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0,
        idle_cpu * 100.0,
        busy_cpu * 100.0,
        num("cpu") * 100.0,
    );
    println!(
        "  per event: confirm request p50 {:.1} ms; first delivery p50 {:.1} ms; last delivery \
         p50 {:.1} ms, max {:.1} ms",
        num("confirm_p50"),
        num("first_p50"),
        num("last_p50"),
        num("last_max"),
    );
    if let Some(reasons) = r["ended_reasons"].as_array().filter(|r| !r.is_empty()) {
        println!("  {ended} subscriptions ended early, e.g. {reasons:?}");
    }
    server.shutdown().await?;
    if let Some(dir) = scratch {
        let _ = std::fs::remove_dir_all(dir);
    }
    if let Some(file) = tokens_file {
        let _ = std::fs::remove_file(file);
    }
    if deliveries != expected || duplicates != 0 || missing != 0 || ended != 0 {
        bail!(
            "expected {expected} deliveries, each (subscriber, event) once: got {deliveries}, \
             {missing} missing, {duplicates} duplicated, {ended} subscriptions ended early, \
             {left} of {subscribers} still held by the hub"
        );
    }
    Ok(())
}

/// Adds `count` ACTIVE COORDINATOR users, each a COORDINATOR of gm@prima.demo's venue
/// (straight into the database: no password hashing); returns their ids.
async fn add_users(
    conn: &sea_orm::DatabaseConnection,
    count: usize,
) -> anyhow::Result<Vec<uuid::Uuid>> {
    use prima_entity::enums::{UserRole, UserStatus, VenueRole};
    use prima_entity::{user_venue_access, users};
    use sea_orm::{EntityTrait, Set};
    let venue: uuid::Uuid = conn
        .query_one_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT a.venue_id FROM user_venue_access a JOIN users u ON u.id = a.user_id \
             WHERE u.email = 'gm@prima.demo' AND a.revoked_at IS NULL",
        ))
        .await?
        .context("gm@prima.demo has no venue: is the database the demo's?")?
        .try_get_by_index(0)?;
    let now = prima_service::time::now();
    let ids: Vec<uuid::Uuid> = (0..count).map(|_| uuid::Uuid::new_v4()).collect();
    for chunk in ids.chunks(500) {
        users::Entity::insert_many(chunk.iter().map(|id| users::ActiveModel {
            id: Set(*id),
            email: Set(format!("subscriber-{}@bench.prima.demo", id.simple())),
            password_hash: Set("!".to_owned()),
            first_name: Set("Bench".to_owned()),
            last_name: Set("Subscriber".to_owned()),
            phone: Set(None),
            role: Set(UserRole::Coordinator),
            status: Set(UserStatus::Active),
            email_verified: Set(true),
            two_factor_enabled: Set(false),
            preferences: Set(None),
            last_login_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        }))
        .exec_without_returning(conn)
        .await?;
        user_venue_access::Entity::insert_many(chunk.iter().map(|id| {
            user_venue_access::ActiveModel {
                id: Set(uuid::Uuid::new_v4()),
                user_id: Set(*id),
                venue_id: Set(venue),
                role: Set(VenueRole::Coordinator),
                granted_by: Set(None),
                granted_at: Set(now),
                revoked_at: Set(None),
            }
        }))
        .exec_without_returning(conn)
        .await?;
    }
    Ok(ids)
}

/// Raises the soft limit on open files to the hard one; returns the limit now in force.
fn raise_open_files() -> anyhow::Result<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        setrlimit(Resource::Nofile, limit).context("raising the open-file limit")?;
    }
    Ok(getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX))
}

/// The lines a child writes, read on a thread of their own.
fn lines_of(out: impl std::io::Read + Send + 'static) -> mpsc::UnboundedReceiver<String> {
    let (sender, receiver) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

/// The next line, which must start with `word`.
async fn expect(lines: &mut mpsc::UnboundedReceiver<String>, word: &str) -> anyhow::Result<String> {
    match lines.recv().await {
        Some(line) if line.starts_with(word) => Ok(line),
        Some(line) => bail!("expected `{word}` from the other process, got `{line}`"),
        None => bail!("the other process ended while we waited for `{word}` (see its error above)"),
    }
}

/// This process's resident memory (VmRSS), in KiB.
fn rss_kib() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc/self/status")
}

/// CPU time (user + system) this process used so far, in seconds.
fn cpu_seconds() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the command name (which may hold spaces) start at field 3 (state);
    // utime and stime are fields 14 and 15, in clock ticks (USER_HZ, 100 on Linux).
    let fields: Vec<&str> = stat[stat.rfind(')').context("malformed /proc/self/stat")? + 1..]
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    Ok(ticks as f64 / 100.0)
}

// ---------------------------------------------------------------------------------------
// The client process
// ---------------------------------------------------------------------------------------

/// Deliveries counted across all subscribers, and a wake-up for whoever waits on them.
#[derive(Default)]
struct Tally {
    delivered: AtomicUsize,
    changed: Notify,
}

/// What every subscriber's task shares.
struct Shared {
    addr: SocketAddr,
    /// The `subscribe` message.
    subscribe: Arc<str>,
    config: WebSocketConfig,
    /// Bounds the handshakes in flight.
    gate: Semaphore,
    tally: Tally,
}

/// What one subscriber received: (booking id, when), and why it ended early, if it did.
struct Received {
    events: Vec<(String, Instant)>,
    ended: Option<String>,
}

async fn client(addr: SocketAddr) -> anyhow::Result<()> {
    let subscribers = env_usize("SUBSCRIBERS", 10_000);
    let events = env_usize("EVENTS", 20);
    let batch = env_usize("BATCH", 250).max(1);
    let event_timeout = Duration::from_secs(env_usize("EVENT_TIMEOUT_SECS", 60) as u64);
    let pause = Duration::from_millis(env_usize("PAUSE_MS", 500) as u64);
    let config = WebSocketConfig::default()
        .read_buffer_size(env_usize("CLIENT_READ_BUFFER_KIB", 128).max(1) * 1024);
    let mut from_server = {
        let (sender, receiver) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in std::io::stdin().lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        receiver
    };

    let api = Api::new(addr);
    let admin = api.login("admin@prima.demo").await?;
    let gm = api.login("gm@prima.demo").await?;
    let venue = api
        .query(&gm, "{ venues { edges { node { id } } } }", json!({}))
        .await?["venues"]["edges"][0]["node"]["id"]
        .as_str()
        .context("gm@prima.demo sees no venue")?
        .to_owned();
    let tokens = match std::env::var(TOKENS) {
        Ok(file) => std::fs::read_to_string(&file)
            .with_context(|| format!("reading {file}"))?
            .lines()
            .map(str::to_owned)
            .collect(),
        Err(_) => vec![gm.clone()],
    };
    let inits: Vec<Arc<str>> = tokens
        .iter()
        .map(|token| {
            json!({
                "type": "connection_init",
                "payload": { "authorization": format!("Bearer {token}") },
            })
            .to_string()
            .into()
        })
        .collect();
    let subscribe: Arc<str> = json!({
        "id": "1", "type": "subscribe",
        "payload": {
            "query": SUBSCRIPTION,
            "variables": { "venues": [venue], "statuses": ["CONFIRMED"] },
        },
    })
    .to_string()
    .into();

    println!("opening");
    expect(&mut from_server, "go").await?;
    let rss_before = rss_kib()?;
    let opened = Instant::now();
    let shared = Arc::new(Shared {
        addr,
        subscribe,
        config,
        gate: Semaphore::new(batch),
        tally: Tally::default(),
    });
    let tally = &shared.tally;
    let (stop, stopped) = watch::channel(false);
    let (ready, mut readies) = mpsc::unbounded_channel::<anyhow::Result<()>>();
    let mut tasks = Vec::with_capacity(subscribers);
    for i in 0..subscribers {
        tasks.push(tokio::spawn(subscriber(
            shared.clone(),
            inits[i % inits.len()].clone(),
            ready.clone(),
            stopped.clone(),
        )));
    }
    drop(ready);
    let (mut opened_ok, mut failures, mut first_failure) = (0, 0, None);
    while let Some(outcome) = readies.recv().await {
        match outcome {
            Ok(()) => opened_ok += 1,
            Err(err) => {
                failures += 1;
                first_failure.get_or_insert(err);
            }
        }
        if opened_ok + failures == subscribers {
            break;
        }
    }
    if let Some(err) = first_failure {
        bail!(
            "{failures} of {subscribers} connections failed to open ({opened_ok} opened); \
             the first: {err:#}"
        );
    }
    if opened_ok != subscribers {
        bail!("only {opened_ok} of {subscribers} connections opened");
    }
    let open_secs = opened.elapsed().as_secs_f64();
    let rss_after = rss_kib()?;
    println!("subscribed");
    expect(&mut from_server, "go").await?;
    let (cpu, events_started) = (cpu_seconds()?, Instant::now());

    // The events, one at a time.
    let mut sent: Vec<(String, Instant, f64)> = Vec::with_capacity(events);
    for i in 0..events {
        let booking = book(&api, &admin, &venue).await?;
        // Its CREATED event (PENDING: every subscriber filters it out) wakes every feed too.
        tokio::time::sleep(pause).await;
        let started = Instant::now();
        api.query(
            &gm,
            "mutation($input: ConfirmBookingInput!) { confirmBooking(input: $input) { booking { id } } }",
            json!({ "input": { "bookingId": booking } }),
        )
        .await?;
        let confirm_ms = ms(started.elapsed());
        sent.push((booking, started, confirm_ms));
        let target = (i + 1) * subscribers;
        let deadline = tokio::time::Instant::from_std(started) + event_timeout;
        loop {
            let changed = tally.changed.notified();
            let delivered = tally.delivered.load(Ordering::Acquire);
            if delivered >= target {
                break;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                let got = tally.delivered.load(Ordering::Acquire);
                eprintln!(
                    "event {}: {} of {subscribers} deliveries after {} s; going on",
                    i + 1,
                    got.saturating_sub(i * subscribers),
                    event_timeout.as_secs()
                );
                break;
            }
        }
    }
    let cpu = (cpu_seconds()? - cpu) / events_started.elapsed().as_secs_f64();
    // Anything late or twice shows up here.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stop.send(true);

    let index: HashMap<&str, usize> = sent
        .iter()
        .enumerate()
        .map(|(i, (id, _, _))| (id.as_str(), i))
        .collect();
    let mut latencies = Vec::with_capacity(subscribers * events);
    let mut first = vec![f64::INFINITY; events];
    let mut last = vec![0.0f64; events];
    let (mut duplicates, mut missing, mut unknown, mut ended) = (0u64, 0u64, 0u64, 0u64);
    let mut ended_reasons: Vec<String> = Vec::new();
    for task in tasks {
        let received = task.await?;
        let mut seen = vec![0u32; events];
        for (id, at) in &received.events {
            let Some(&i) = index.get(id.as_str()) else {
                unknown += 1;
                continue;
            };
            seen[i] += 1;
            let latency = ms(at.saturating_duration_since(sent[i].1));
            first[i] = first[i].min(latency);
            last[i] = last[i].max(latency);
            latencies.push(latency);
        }
        duplicates += seen
            .iter()
            .map(|&c| u64::from(c.saturating_sub(1)))
            .sum::<u64>();
        missing += seen.iter().filter(|&&c| c == 0).count() as u64;
        if let Some(reason) = received.ended {
            ended += 1;
            if ended_reasons.len() < 3 {
                ended_reasons.push(reason);
            }
        }
    }
    let deliveries = latencies.len() as u64 + unknown;
    latencies.sort_by(f64::total_cmp);
    let mut confirms: Vec<f64> = sent.iter().map(|(_, _, ms)| *ms).collect();
    confirms.sort_by(f64::total_cmp);
    first.sort_by(f64::total_cmp);
    last.sort_by(f64::total_cmp);
    let result = json!({
        "open_secs": open_secs,
        "rss_before_kib": rss_before,
        "rss_after_kib": rss_after,
        "cpu": cpu,
        "deliveries": deliveries,
        "duplicates": duplicates + unknown,
        "missing": missing,
        "ended": ended,
        "ended_reasons": ended_reasons,
        "p50": pct(&latencies, 0.5),
        "p99": pct(&latencies, 0.99),
        "max": latencies.last().copied(),
        "confirm_p50": pct(&confirms, 0.5),
        "first_p50": pct(&first, 0.5),
        "last_p50": pct(&last, 0.5),
        "last_max": last.last().copied(),
    });
    println!("result {result}");
    Ok(())
}

/// One subscriber: opens its connection (holding a `gate` permit meanwhile), reports on
/// `ready`, then records every `next` until told to stop or the server ends it.
async fn subscriber(
    shared: Arc<Shared>,
    init: Arc<str>,
    ready: mpsc::UnboundedSender<anyhow::Result<()>>,
    mut stop: watch::Receiver<bool>,
) -> Received {
    let Shared {
        addr,
        subscribe,
        config,
        gate,
        tally,
    } = &*shared;
    let mut received = Received {
        events: Vec::new(),
        ended: None,
    };
    let opened = async {
        let _permit = gate.acquire().await?;
        let mut request = format!("ws://{addr}/graphql/ws").into_client_request()?;
        request.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_static("graphql-transport-ws"),
        );
        let (mut socket, _) =
            tokio_tungstenite::connect_async_with_config(request, Some(*config), false)
                .await
                .context("connecting")?;
        socket.send(Message::Text((&*init).into())).await?;
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(text))) => {
                    let message: Value = serde_json::from_str(&text)?;
                    match message["type"].as_str() {
                        Some("connection_ack") => break,
                        Some("ping") => {
                            socket
                                .send(Message::Text(r#"{"type":"pong"}"#.into()))
                                .await?
                        }
                        _ => bail!("expected connection_ack, got {message}"),
                    }
                }
                Some(Ok(Message::Close(frame))) => bail!("closed before connection_ack: {frame:?}"),
                Some(Ok(_)) => {}
                Some(Err(err)) => return Err(err.into()),
                None => bail!("the connection ended before connection_ack"),
            }
        }
        socket.send(Message::Text((&**subscribe).into())).await?;
        anyhow::Ok(socket)
    };
    let mut socket = match tokio::time::timeout(Duration::from_secs(60), opened).await {
        Ok(Ok(socket)) => socket,
        Ok(Err(err)) => {
            let _ = ready.send(Err(err));
            return received;
        }
        Err(_) => {
            let _ = ready.send(Err(anyhow::anyhow!("no connection_ack within 60 s")));
            return received;
        }
    };
    let _ = ready.send(Ok(()));
    drop(ready);
    loop {
        let message = tokio::select! {
            message = socket.next() => message,
            _ = stop.changed() => break,
        };
        let at = Instant::now();
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => {
                received.ended = Some(format!("closed: {frame:?}"));
                break;
            }
            Some(Ok(_)) => continue,
            Some(Err(err)) => {
                received.ended = Some(format!("connection error: {err}"));
                break;
            }
            None => {
                received.ended = Some("connection ended".to_owned());
                break;
            }
        };
        let message: Value = match serde_json::from_str(&text) {
            Ok(message) => message,
            Err(err) => {
                received.ended = Some(format!("not JSON ({err}): {text}"));
                break;
            }
        };
        match message["type"].as_str() {
            Some("next") => {
                match message["payload"]["data"]["bookingChanged"]["booking"]["id"].as_str() {
                    Some(id) => received.events.push((id.to_owned(), at)),
                    None => {
                        received.ended = Some(format!("a next without a booking: {message}"));
                        break;
                    }
                }
                tally.delivered.fetch_add(1, Ordering::AcqRel);
                tally.changed.notify_waiters();
            }
            Some("pong") => {}
            Some("ping") => {
                let _ = socket
                    .send(Message::Text(r#"{"type":"pong"}"#.into()))
                    .await;
            }
            _ => {
                received.ended = Some(message.to_string());
                break;
            }
        }
    }
    received
}

/// A new guest and a booking for them two days out, made by `token` at `venue`; the
/// booking's id.
async fn book(api: &Api, token: &str, venue: &str) -> anyhow::Result<String> {
    let guest = api
        .query(
            token,
            "mutation($input: CreateGuestInput!) { createGuest(input: $input) { guest { id } } }",
            json!({ "input": { "venueId": venue, "firstName": "Lee", "lastName": "Park",
                    "email": format!("{}@example.com", uuid::Uuid::new_v4()) } }),
        )
        .await?["createGuest"]["guest"]["id"]
        .clone();
    let time = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    Ok(api
        .query(
            token,
            "mutation($input: CreateBookingInput!) { createBooking(input: $input) { booking { id } } }",
            json!({ "input": { "venueId": venue, "guestId": guest, "type": "NON_PRIME",
                    "diners": 4, "bookingTime": time } }),
        )
        .await?["createBooking"]["booking"]["id"]
        .as_str()
        .context("no booking id")?
        .to_owned())
}
