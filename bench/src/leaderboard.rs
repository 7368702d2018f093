//! Live leaderboard benchmark: one incentive programme with `PROMOTERS` participants
//! (default 500), `SUBSCRIBERS` dashboards (default 1,000) following its
//! `incentiveLeaderboard` over WebSocket, and a burst of `BOOKINGS` booking confirmations
//! (default 2,000) moving it. It reports the latency from the last confirmation to every
//! subscriber's final push, the pushes each subscriber got, and what the pushes cost the
//! database: leaderboard reads and SQL statements per push. See bench/README.md "Live
//! leaderboards".
//!
//! - The database is `DATABASE_URL` (default: a fresh SQLite file in a temporary
//!   directory), migrated and seeded with the demo data when empty. At the venue of
//!   `gm@prima.demo` (bookings there wait for approval) it adds `PROMOTERS` ACTIVE promoters,
//!   straight to the database (copies of a demo promoter, no bookings yet); then, through
//!   the service functions the mutations call, a BOOKING_COUNT programme over the current
//!   week (a CUSTOM period from an hour ago to seven days ahead), activated (every ACTIVE
//!   promoter of the venue takes part), and `BOOKINGS` PENDING bookings two hours ahead, spread
//!   unevenly over the new promoters (the first ones get the most), so the standings keep
//!   changing until the end.
//! - The API runs in this process (`prima serve`'s router, its own event hub and boards,
//!   the per-user rate limit off: one user confirms everything). Every subscriber logs in as
//!   gm (venue ADMIN) and subscribes to `incentiveLeaderboard(top: TOP)` (default 10) with
//!   each entry's rank, value and promoter (id and name), as the dashboard does.
//! - The burst: `WORKERS` concurrent clients (default 8) send `confirmBooking` over HTTP
//!   until all are confirmed. The clock starts when the last confirmation's answer arrives
//!   (everything is committed); a subscriber's final push is its first one equal to the
//!   standings read over HTTP once the burst is over (`Incentive.leaderboard`, same
//!   selection). The run fails if any subscriber never gets it within 30 s.
//! - Then it waits a second more, for pushes after the final one (counted: there should be
//!   none), and runs `prima check` over the whole database.

/// The server's allocator (see crates/server/src/main.rs), so the in-process server costs
/// what `prima serve` does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use prima_bench::{Api, env_usize, first, ms, pct, scalar};
use prima_entity::enums::{IncentiveType, RewardType, TargetComparison};
use prima_entity::promoters;
use prima_server::config::ServeArgs;
use prima_service::access::Actor;
use prima_service::bookings::create::{self, NewBooking};
use prima_service::db::{self, PoolSettings};
use prima_service::incentives::manage::{self, PeriodInput, Rules, Step};
use rust_decimal::Decimal;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, Statement,
};
use serde_json::{Value, json};
use tokio::sync::{Mutex, Notify, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use uuid::Uuid;

/// What a dashboard shows of each entry; the HTTP read of the final standings selects the
/// same, so the two compare as JSON.
const ENTRY: &str = "rank currentValue promoter { id firstName lastName }";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let promoters = env_usize("PROMOTERS", 500).max(1);
    let subscribers = env_usize("SUBSCRIBERS", 1_000).max(1);
    let bookings = env_usize("BOOKINGS", 2_000).max(1);
    let workers = env_usize("WORKERS", 8).max(1);
    let top = env_usize("TOP", 10).clamp(1, 100);
    raise_open_files(2 * subscribers as u64 + 200)?;

    let (url, scratch) = database_url()?;
    let db = db::connect(
        &url,
        &PoolSettings {
            max_connections: env_usize("PRIMA_DB_POOL_SIZE", 10) as u32,
            ..PoolSettings::default()
        },
    )
    .await?;
    db::migrate(&db).await?;
    let (programme, pending) = prepare(&db, promoters, bookings).await?;
    println!(
        "setup on {}: {promoters} promoters added, programme of {} participants, {bookings} \
         bookings PENDING",
        db::redact(&url),
        programme.participant_count,
    );

    let stats = db.stats.clone();
    let mut args = ServeArgs::default();
    args.limits.rate_limit_points = 0;
    args.ws.max_subscriptions_per_user = subscribers as u64 + 1;
    let server = prima_server::app::spawn(db, &args).await?;
    let realtime = server
        .state
        .deps
        .realtime
        .as_ref()
        .context("the server runs no event hub")?;
    let boards = realtime.boards.clone();
    let hub = realtime.hub.clone();

    // The activation's events are published and delivered before anyone subscribes, so
    // every change a subscriber sees is the burst's.
    settle(&server.state.deps.db.conn, &hub).await?;
    let api = Api::new(server.addr);
    let gm = api.login("gm@prima.demo").await?;
    let incentive_id = api
        .query(
            &gm,
            "query($id: ID!) { incentive(id: $id) { id } }",
            json!({ "id": programme.id }),
        )
        .await
        .ok()
        .and_then(|data| data["incentive"]["id"].as_str().map(str::to_owned))
        .unwrap_or_else(|| programme.id.to_string());

    // The subscribers, each with its first push.
    let subscribe: Arc<str> = json!({
        "id": "1", "type": "subscribe",
        "payload": {
            "query": format!("subscription($id: ID!, $top: Int) {{ incentiveLeaderboard(incentiveId: $id, top: $top) {{ cursor entries {{ {ENTRY} }} }} }}"),
            "variables": { "id": incentive_id, "top": top },
        },
    })
    .to_string()
    .into();
    let init: Arc<str> = json!({
        "type": "connection_init",
        "payload": { "authorization": format!("Bearer {gm}") },
    })
    .to_string()
    .into();
    let shared = Arc::new(Shared {
        url: format!("ws://{}/graphql/ws", server.addr),
        init,
        subscribe,
        opening: tokio::sync::Semaphore::new(100),
        ready: AtomicUsize::new(0),
        finals: AtomicUsize::new(0),
        changed: Notify::new(),
    });
    let (known_tx, known_rx) = watch::channel::<Final>(None);
    let (stop_tx, stop_rx) = watch::channel(false);
    let opened = Instant::now();
    let tasks = spawn_subscribers(&shared, subscribers, &known_rx, &stop_rx);
    // One more connection follows the programme's progress changes, for the cursor of the
    // last one.
    let follower = tokio::spawn(last_change(shared.clone(), incentive_id.clone(), bookings));
    wait_for(&shared, Duration::from_secs(120), |s| {
        s.ready.load(Ordering::Acquire) > subscribers
    })
    .await
    .with_context(|| {
        format!(
            "only {} of {subscribers} subscribers got their first standings",
            shared.ready.load(Ordering::Acquire)
        )
    })?;
    let open_secs = opened.elapsed().as_secs_f64();
    if boards.running() != 1 {
        bail!(
            "{} leaderboards run for one programme: the subscribers do not share one",
            boards.running()
        );
    }

    // Statements of requests and of the boards (the outbox relay's and the hub's, counted
    // apart as background work, carry every event whatever subscribes).
    let all_statements = || stats.statements();

    // The burst.
    let (computations_before, statements_before) = (boards.computations(), all_statements());
    let burst_started = Instant::now();
    confirm_all(&api, &gm, pending, workers).await?;
    let last_confirmed = Instant::now();
    let burst_secs = burst_started.elapsed().as_secs_f64();
    let (computations_at_last, statements_at_last) = (boards.computations(), all_statements());

    // Every subscriber's final push is its first one after the last change.
    let last_seq = tokio::time::timeout(Duration::from_secs(30), follower)
        .await
        .context("the programme's progress changes did not all arrive within 30 s")???;
    let _ = known_tx.send(Some(last_seq));
    wait_for(&shared, Duration::from_secs(30), |s| {
        s.finals.load(Ordering::Acquire) >= subscribers
    })
    .await
    .with_context(|| {
        format!(
            "only {} of {subscribers} subscribers got the final standings within 30 s",
            shared.finals.load(Ordering::Acquire)
        )
    })?;
    let all_final = last_confirmed.elapsed();
    let (computations_at_final, statements_at_final) = (boards.computations(), all_statements());
    let held = hub.subscribers();
    // The final standings as anyone reads them now: every final push must show them.
    let finals = standings(&api, &gm, &incentive_id, top).await?;
    let want = Value::Array(finals.clone()).to_string();
    // Anything pushed after the final standings shows up here.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _ = stop_tx.send(true);

    let Tally {
        latencies,
        pushes,
        after_final,
        wrong,
    } = tally(tasks, last_confirmed, last_seq, &want).await?;
    let computations = computations_at_final - computations_before;
    let mean_pushes = pushes.iter().sum::<usize>() as f64 / subscribers as f64;
    println!(
        "{subscribers} subscribers of one programme ({promoters} promoters, top {top}) opened in \
         {open_secs:.1} s; {bookings} confirmations by {workers} clients in {burst_secs:.1} s \
         ({:.0}/s)",
        bookings as f64 / burst_secs
    );
    println!(
        "  last confirmation to each subscriber's final push: p50 {:.0} ms, p99 {:.0} ms, max \
         {:.0} ms (all {subscribers} final after {:.0} ms); leader {} with {}",
        pct(&latencies, 0.5),
        pct(&latencies, 0.99),
        latencies.last().copied().unwrap_or(f64::NAN),
        ms(all_final),
        finals[0]["promoter"]["lastName"].as_str().unwrap_or("?"),
        finals[0]["currentValue"].as_str().unwrap_or("?"),
    );
    println!(
        "  pushes per subscriber during the burst: mean {mean_pushes:.1}, min {}, max {}; {after_final} \
         pushes after the final one; {wrong} final pushes differing from the standings read \
         over HTTP",
        pushes.first().copied().unwrap_or(0),
        pushes.last().copied().unwrap_or(0),
    );
    let tail_reads = computations_at_final - computations_at_last;
    let tail_statements = statements_at_final - statements_at_last;
    println!(
        "  leaderboard reads: {computations} for all {subscribers} subscribers during the burst \
         ({:.2} per push of the subscriber who got the most); after the last confirmation: \
         {tail_reads} reads, {tail_statements} SQL statements, {:.1} per read; the burst: {} \
         statements in all, the confirmations' included",
        computations as f64 / pushes.last().copied().unwrap_or(1).max(1) as f64,
        tail_statements as f64 / tail_reads.max(1) as f64,
        statements_at_last - statements_before,
    );
    if held < subscribers {
        println!("  {} subscriptions ended early", subscribers - held);
    }
    let checked = prima_service::check::run(&server.state.deps.db.conn, None).await?;
    println!("prima check: {} discrepancies", checked.discrepancies.len());
    for d in checked.discrepancies.iter().take(10) {
        println!("  {} {} {}: {}", d.kind, d.entity, d.id, d.message);
    }
    server.shutdown().await?;
    if let Some(dir) = scratch {
        let _ = std::fs::remove_dir_all(dir);
    }
    if !checked.discrepancies.is_empty() {
        bail!("prima check found discrepancies");
    }
    if wrong > 0 {
        bail!("{wrong} subscribers' final push is not the final standings");
    }
    Ok(())
}

/// The demo data (seeded when the database is empty), `promoters` more promoters at gm's
/// venue, the programme, activated, and `bookings` PENDING bookings of the new promoters;
/// the programme and the bookings' ids.
async fn prepare(
    db: &db::Db,
    promoters: usize,
    bookings: usize,
) -> anyhow::Result<(prima_entity::incentives::Model, Vec<Uuid>)> {
    let conn = db.conn.clone();
    if scalar(&conn, "SELECT COUNT(*) FROM users").await? == 0 {
        prima_service::seed::seed(&conn, &prima_service::seed::SeedOptions::default()).await?;
    }
    let admin = admin(&conn).await?;
    let venue: Uuid = first(
        &conn,
        "SELECT a.venue_id FROM user_venue_access a JOIN users u ON u.id = a.user_id \
         WHERE u.email = 'gm@prima.demo' AND a.revoked_at IS NULL",
    )
    .await
    .context("gm@prima.demo has no venue: is the database the demo's?")?;
    conn.execute_raw(Statement::from_sql_and_values(
        conn.get_database_backend(),
        "UPDATE venues SET require_approval = TRUE WHERE id = $1",
        [venue.into()],
    ))
    .await?;
    let ours = add_promoters(&conn, venue, promoters).await?;
    let now = prima_service::time::now();
    let programme = manage::create_incentive(
        &db.conn,
        &admin,
        venue,
        Rules {
            name: format!("Bench week {}", Uuid::new_v4().simple()),
            description: None,
            kind: IncentiveType::BookingCount,
            target_threshold: Decimal::from(bookings as u64),
            target_comparison: TargetComparison::GreaterEqual,
            reward_type: RewardType::FixedAmount,
            reward_value: Some(Decimal::from(100)),
            reward_description: None,
            period: PeriodInput::Custom(
                now - chrono::Duration::hours(1),
                now + chrono::Duration::days(7),
            ),
            is_recurring: false,
            eligible_tiers: None,
            min_tenure_days: None,
            max_previous_wins: None,
        },
    )
    .await
    .map_err(|err| anyhow::anyhow!("creating the programme: {err:?}"))?;
    let programme = manage::move_incentive(&db.conn, &admin, programme.id, Step::Activate)
        .await
        .map_err(|err| anyhow::anyhow!("activating the programme: {err:?}"))?;
    let pending = book(db, &admin, venue, &ours, bookings, now).await?;
    Ok((programme, pending))
}

/// Confirms every booking of `pending` over HTTP as `token`, `workers` requests at a time.
async fn confirm_all(
    api: &Api,
    token: &str,
    pending: Vec<Uuid>,
    workers: usize,
) -> anyhow::Result<()> {
    let queue = Arc::new(Mutex::new(pending));
    let mut confirmers = Vec::new();
    for _ in 0..workers {
        let (queue, api, gm) = (queue.clone(), api.clone(), token.to_owned());
        confirmers.push(tokio::spawn(async move {
            loop {
                let Some(id) = queue.lock().await.pop() else {
                    break;
                };
                api.query(
                    &gm,
                    "mutation($input: ConfirmBookingInput!) { confirmBooking(input: $input) { booking { id } } }",
                    json!({ "input": { "bookingId": id } }),
                )
                .await?;
            }
            anyhow::Ok(())
        }));
    }
    for confirmer in confirmers {
        confirmer.await??;
    }
    Ok(())
}

/// `count` subscriber tasks; the first few failures are shown as they happen.
fn spawn_subscribers(
    shared: &Arc<Shared>,
    count: usize,
    known: &watch::Receiver<Final>,
    stop: &watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<anyhow::Result<Seen>>> {
    (0..count)
        .map(|_| {
            let run = subscriber(shared.clone(), known.clone(), stop.clone());

            tokio::spawn(async move {
                let seen = run.await;
                if let Err(err) = &seen {
                    // The first failures say why, while the others wait.
                    static SHOWN: AtomicUsize = AtomicUsize::new(0);
                    if SHOWN.fetch_add(1, Ordering::Relaxed) < 3 {
                        eprintln!("a subscriber failed: {err:#}");
                    }
                }
                seen
            })
        })
        .collect()
}

/// What the subscribers saw, together.
struct Tally {
    /// From the last confirmation to each one's final push, sorted (ms).
    latencies: Vec<f64>,
    /// Pushes each got after its first, sorted.
    pushes: Vec<usize>,
    /// Pushes after the final ones, in all.
    after_final: usize,
    /// Subscribers whose final push is not `want`.
    wrong: usize,
}

async fn tally(
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<Seen>>>,
    last_confirmed: Instant,
    last_seq: i64,
    want: &str,
) -> anyhow::Result<Tally> {
    let mut tally = Tally {
        latencies: Vec::with_capacity(tasks.len()),
        pushes: Vec::with_capacity(tasks.len()),
        after_final: 0,
        wrong: 0,
    };
    for task in tasks {
        let seen = task.await??;
        let reached = seen
            .final_at
            .context("a subscriber never saw the final standings")?;
        // A push read just before the last answer arrived counts as 0 ms.
        tally
            .latencies
            .push(ms(reached.saturating_duration_since(last_confirmed)));
        tally.pushes.push(seen.pushes.len() - 1);
        tally.after_final += seen
            .pushes
            .iter()
            .filter(|(cursor, _)| cursor.is_some_and(|c| c >= last_seq))
            .count()
            .saturating_sub(1);
        tally.wrong += usize::from(seen.latest != want);
    }
    tally.latencies.sort_by(f64::total_cmp);
    tally.pushes.sort_unstable();
    Ok(tally)
}

/// `DATABASE_URL`, or a fresh SQLite file in a temporary directory (returned, to remove).
fn database_url() -> anyhow::Result<(String, Option<std::path::PathBuf>)> {
    if let Ok(url) = std::env::var("DATABASE_URL") {
        return Ok((url, None));
    }
    let dir = std::env::temp_dir().join(format!("prima-bench-leaderboard-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let url = format!("sqlite://{}?mode=rwc", dir.join("prima.db").display());
    Ok((url, Some(dir)))
}

/// What the subscriber tasks share.
struct Shared {
    url: String,
    init: Arc<str>,
    subscribe: Arc<str>,
    /// At most this many handshakes at once.
    opening: tokio::sync::Semaphore,
    /// Subscribers that got their first standings.
    ready: AtomicUsize,
    /// Subscribers that got the final standings.
    finals: AtomicUsize,
    changed: Notify,
}

/// The cursor of the programme's last progress change, once known.
type Final = Option<i64>;

/// What one subscriber saw.
struct Seen {
    /// Each push's cursor (none for the first, made on subscribing) and arrival.
    pushes: Vec<(Option<i64>, Instant)>,
    /// The entries of the latest push.
    latest: String,
    /// When the final push (the first whose cursor reaches the last change) arrived.
    final_at: Option<Instant>,
}

impl Seen {
    /// Records the final push once it and the final cursor are both known.
    fn settle(&mut self, known: &Final, shared: &Shared) {
        let (None, Some(seq)) = (self.final_at, known) else {
            return;
        };
        if let Some(&(_, at)) = self
            .pushes
            .iter()
            .find(|(c, _)| c.is_some_and(|c| c >= *seq))
        {
            self.final_at = Some(at);
            shared.finals.fetch_add(1, Ordering::AcqRel);
            shared.changed.notify_waiters();
        }
    }
}

/// A graphql-transport-ws connection, acknowledged, with `subscribe` sent.
async fn open(
    shared: &Shared,
    subscribe: &str,
) -> anyhow::Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
> {
    let _permit = shared.opening.acquire().await?;
    let mut request = shared.url.as_str().into_client_request()?;
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .context("connecting")?;
    socket.send(Message::Text((&*shared.init).into())).await?;
    // Subscribing before the server acknowledges is a protocol error (4401).
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) if text.contains("connection_ack") => break,
            Some(Ok(Message::Text(text))) => bail!("expected connection_ack, got {text}"),
            Some(Ok(_)) => {}
            Some(Err(err)) => bail!("connection error: {err}"),
            None => bail!("the connection ended before connection_ack"),
        }
    }
    socket.send(Message::Text(subscribe.into())).await?;
    Ok(socket)
}

/// The next `next` payload's `data`, answering pings; fails if the subscription ends.
async fn next_data(
    socket: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> anyhow::Result<Value> {
    loop {
        let text = match socket.next().await {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Ok(other)) => bail!("the server ended the subscription: {other:?}"),
            Some(Err(err)) => bail!("connection error: {err}"),
            None => bail!("the connection ended"),
        };
        let mut message: Value = serde_json::from_str(&text)?;
        match message["type"].as_str() {
            Some("pong") => {}
            Some("ping") => {
                socket
                    .send(Message::Text(r#"{"type":"pong"}"#.into()))
                    .await?
            }
            Some("next") if message["payload"]["errors"].is_null() => {
                return Ok(message["payload"]["data"].take());
            }
            _ => bail!("unexpected message: {message}"),
        }
    }
}

async fn subscriber(
    shared: Arc<Shared>,
    mut known: watch::Receiver<Final>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<Seen> {
    let mut socket = open(&shared, &shared.subscribe).await?;
    let mut seen = Seen {
        pushes: Vec::new(),
        latest: String::new(),
        final_at: None,
    };
    loop {
        let data = tokio::select! {
            data = next_data(&mut socket) => data?,
            _ = known.changed() => {
                seen.settle(&known.borrow(), &shared);
                continue;
            }
            _ = stop.changed() => break,
        };
        let at = Instant::now();
        let update = &data["incentiveLeaderboard"];
        if !update["entries"].is_array() {
            bail!("a push without standings: {data}");
        }
        let cursor = update["cursor"].as_str().map(str::parse).transpose()?;
        seen.pushes.push((cursor, at));
        seen.latest = update["entries"].to_string();
        if seen.pushes.len() == 1 {
            shared.ready.fetch_add(1, Ordering::AcqRel);
            shared.changed.notify_waiters();
        }
        seen.settle(&known.borrow(), &shared);
    }
    Ok(seen)
}

/// Follows the programme's progress changes until `count` have come; the last one's
/// cursor.
async fn last_change(shared: Arc<Shared>, id: String, count: usize) -> anyhow::Result<i64> {
    let subscribe = json!({
        "id": "p", "type": "subscribe",
        "payload": {
            "query": "subscription($id: ID!) { incentiveProgressChanged(incentiveId: $id) { cursor } }",
            "variables": { "id": id },
        },
    })
    .to_string();
    let mut socket = open(&shared, &subscribe).await?;
    shared.ready.fetch_add(1, Ordering::AcqRel);
    shared.changed.notify_waiters();
    let mut last = 0;
    for _ in 0..count {
        let data = next_data(&mut socket).await?;
        last = data["incentiveProgressChanged"]["cursor"]
            .as_str()
            .context("a change without a cursor")?
            .parse()?;
    }
    Ok(last)
}

/// Waits until `done` holds for the shared counters, re-checking each time a subscriber
/// reports; fails after `limit`.
async fn wait_for(
    shared: &Shared,
    limit: Duration,
    done: impl Fn(&Shared) -> bool,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let changed = shared.changed.notified();
        if done(shared) {
            return Ok(());
        }
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            bail!("timed out after {} s", limit.as_secs());
        }
    }
}

/// Waits (at most 60 s) until every outbox event is published and delivered by the hub.
async fn settle(
    conn: &DatabaseConnection,
    hub: &prima_service::events::hub::Hub,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pending = scalar(
            conn,
            "SELECT COUNT(*) FROM outbox_events WHERE published_at IS NULL",
        )
        .await?;
        let last = scalar(conn, "SELECT COALESCE(MAX(seq), 0) FROM outbox_events").await?;
        if pending == 0 && hub.delivered() >= last {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{pending} outbox events unpublished, the hub at {} of {last}",
                hub.delivered()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The global admin, acting through the service functions.
async fn admin(conn: &DatabaseConnection) -> anyhow::Result<Actor> {
    let id = first(
        conn,
        "SELECT id FROM users WHERE email = 'admin@prima.demo'",
    )
    .await
    .context("admin@prima.demo not found: is the database the demo's?")?;
    prima_service::auth::actor_for(conn, id)
        .await
        .map_err(|err| anyhow::anyhow!("loading admin@prima.demo: {err:?}"))
}

/// Adds `count` ACTIVE promoters at `venue`, copies of one of its demo promoters (same tier,
/// joined a month ago, no bookings); returns their ids.
async fn add_promoters(
    conn: &DatabaseConnection,
    venue: Uuid,
    count: usize,
) -> anyhow::Result<Vec<Uuid>> {
    let template = promoters::Entity::find()
        .filter(promoters::Column::VenueId.eq(venue))
        .filter(promoters::Column::Status.eq(prima_entity::enums::PromoterStatus::Active))
        .order_by_asc(promoters::Column::Id)
        .one(conn)
        .await?
        .context("the venue has no ACTIVE promoter to copy")?;
    let now = prima_service::time::now();
    let mut ids = Vec::with_capacity(count);
    let mut rows = Vec::with_capacity(count);
    for i in 0..count {
        let id = Uuid::new_v4();
        ids.push(id);
        let mut row = promoters::Model {
            id,
            first_name: "Bench".to_owned(),
            last_name: format!("Promoter {i:04}"),
            email: format!("bench-{}@promoters.prima.demo", id.simple()),
            phone: None,
            social_media: None,
            total_bookings: 0,
            total_revenue: 0,
            average_booking_value: 0,
            conversion_rate: 0,
            no_show_rate: 0,
            cancel_rate: 0,
            month_bookings: 0,
            month_revenue: 0,
            month_new_guests: 0,
            month_repeat_guests: 0,
            all_bookings: 0,
            completed_bookings: 0,
            cancelled_bookings: 0,
            no_show_bookings: 0,
            month_start: None,
            last_active_at: None,
            joined_at: now - chrono::Duration::days(30),
            created_at: now,
            updated_at: now,
            ..template.clone()
        }
        .into_active_model();
        row = row.reset_all();
        rows.push(row);
    }
    for chunk in rows.chunks(100) {
        promoters::Entity::insert_many(chunk.iter().cloned())
            .exec_without_returning(conn)
            .await?;
    }
    Ok(ids)
}

/// `count` PENDING bookings two hours ahead at `venue`, for guests who booked there, spread
/// over `promoters` unevenly: booking `i` goes to promoter `n * (i / count)^2`, so the
/// first promoters get the most and lead the board; returns the booking ids.
async fn book(
    db: &db::Db,
    admin: &Actor,
    venue: Uuid,
    promoters: &[Uuid],
    count: usize,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Vec<Uuid>> {
    let conn = &db.conn;
    let backend = conn.get_database_backend();
    let pricing = conn
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            "SELECT minimum_party_size, maximum_party_size FROM venue_pricing \
             WHERE venue_id = $1 AND is_active AND effective_to IS NULL",
            [venue.into()],
        ))
        .await?
        .context("the venue has no pricing in force")?;
    let lo: i32 = pricing.try_get_by_index::<i32>(0)?.max(1);
    let guests: Vec<Uuid> = conn
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            "SELECT DISTINCT g.id FROM guests g JOIN bookings b ON b.guest_id = g.id \
             WHERE b.venue_id = $1 AND g.status <> 'BLOCKED' ORDER BY g.id LIMIT 500",
            [venue.into()],
        ))
        .await?
        .iter()
        .map(|row| row.try_get_by_index::<Uuid>(0))
        .collect::<Result<_, _>>()?;
    if guests.is_empty() {
        bail!("no guest has booked at the venue");
    }
    let n = promoters.len();
    let jobs: Vec<usize> = (0..count).collect();
    let queue = Arc::new(Mutex::new(jobs));
    let promoters = Arc::new(promoters.to_vec());
    let guests = Arc::new(guests);
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (queue, db, admin) = (queue.clone(), db.clone(), admin.clone());
        let (promoters, guests) = (promoters.clone(), guests.clone());
        tasks.push(tokio::spawn(async move {
            let mut made = Vec::new();
            loop {
                let Some(i) = queue.lock().await.pop() else {
                    break;
                };
                let share = i as f64 / count as f64;
                let promoter = promoters[((n as f64 * share * share) as usize).min(n - 1)];
                let booking = create::create_booking_at(
                    &db,
                    &admin,
                    NewBooking {
                        venue_id: venue,
                        guest_id: guests[(i * 7919) % guests.len()],
                        promoter_id: Some(promoter),
                        booking_type: prima_entity::enums::BookingType::NonPrime,
                        diners: lo,
                        booking_time: now + chrono::Duration::hours(2),
                        duration_minutes: None,
                        special_requests: None,
                        notes: None,
                        source: None,
                        client: Default::default(),
                    },
                    None,
                    now,
                )
                .await
                .map_err(|err| anyhow::anyhow!("creating a booking: {err:?}"))?;
                made.push(booking.id);
            }
            anyhow::Ok(made)
        }));
    }
    let mut ids = Vec::with_capacity(count);
    for task in tasks {
        ids.extend(task.await??);
    }
    Ok(ids)
}

/// The top `top` of the programme's leaderboard, read over HTTP, as [`ENTRY`]s.
async fn standings(api: &Api, token: &str, id: &str, top: usize) -> anyhow::Result<Vec<Value>> {
    let data = api
        .query(
            token,
            &format!(
                "query($id: ID!, $top: Int) {{ incentive(id: $id) {{ leaderboard(first: $top) \
                 {{ edges {{ node {{ {ENTRY} }} }} }} }} }}"
            ),
            json!({ "id": id, "top": top }),
        )
        .await?;
    Ok(data["incentive"]["leaderboard"]["edges"]
        .as_array()
        .context("no leaderboard")?
        .iter()
        .map(|edge| edge["node"].clone())
        .collect())
}

/// Raises the soft limit on open files to at least `needed` (up to the hard limit).
fn raise_open_files(needed: u64) -> anyhow::Result<()> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    let hard = limit.maximum.unwrap_or(u64::MAX);
    if hard < needed {
        bail!(
            "{needed} open files are needed (two per subscriber: both ends are in this \
             process); the hard limit is {hard}"
        );
    }
    if limit.current.unwrap_or(u64::MAX) < needed {
        limit.current = Some(hard);
        setrlimit(Resource::Nofile, limit).context("raising the open-file limit")?;
    }
    Ok(())
}
