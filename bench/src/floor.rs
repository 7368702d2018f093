//! The executor's floor: what async-graphql alone costs to answer W1-W3 of the peer
//! benchmark (`bench/peer/`), with every row already in memory.
//!
//! The schema here has the shapes and scalar types of PRIMA's (`Venue`, `Booking`, `Guest`,
//! `Transaction`, `Money { amount }`, UUID ids, `DateTime`, enums) as plain `SimpleObject`s:
//! no database, no dataloader, no access checks, no HTTP, no limits. Each request is parsed,
//! validated, executed and serialized to JSON, which is the least any async-graphql server
//! does for it. The CPU time per request it prints is a lower bound for PRIMA's server side
//! of each workload; bench/README.md sets it against PostGraphile's whole cost per request.
//!
//! Then the fan-out floor of `bench/subscribers`: `FANOUT` (9,000) loopback TCP connections
//! in this process, one task per connection on each side, and `EVENTS` (20) times one
//! broadcast that every server task answers by writing one WebSocket-framed `next` message
//! of the size PRIMA sends (a wake, a `write`, a `read`, nothing else: no GraphQL, no JSON,
//! no WebSocket parsing). Its event-to-client latencies are the least the two cores give
//! any server for that many subscribers.
//!
//! ```sh
//! cargo run --release -p prima-bench --bin floor    # ROUNDS=2000 FANOUT=9000 EVENTS=20
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_graphql::{EmptyMutation, EmptySubscription, Enum, Object, Schema, SimpleObject};
use chrono::{DateTime, TimeZone, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Enum, Copy, Clone, PartialEq, Eq)]
enum BookingType {
    Prime,
    NonPrime,
}

#[derive(Enum, Copy, Clone, PartialEq, Eq)]
enum BookingStatus {
    Pending,
    Completed,
}

#[derive(SimpleObject, Clone)]
struct Money {
    amount: Decimal,
    currency: String,
}

#[derive(SimpleObject, Clone)]
struct Guest {
    id: Uuid,
    first_name: String,
    last_name: String,
}

#[derive(SimpleObject, Clone)]
struct Id {
    id: Uuid,
}

#[derive(SimpleObject, Clone)]
struct Transaction {
    id: Uuid,
    payout: Option<Id>,
}

#[derive(SimpleObject, Clone)]
struct Booking {
    id: Uuid,
    diners: i32,
    booking_time: DateTime<Utc>,
    duration_minutes: i32,
    special_requests: Option<String>,
    #[graphql(name = "type")]
    kind: BookingType,
    source: String,
    status: BookingStatus,
    base_fee: Money,
    platform_fee: Money,
    total_fee: Money,
    promoter_commission: Money,
    confirmed_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    guest: Guest,
    promoter: Option<Id>,
    transactions: Vec<Transaction>,
}

#[derive(SimpleObject, Clone)]
struct BookingPage {
    nodes: Vec<Booking>,
}

#[derive(Clone)]
struct Venue {
    id: Uuid,
    bookings: Vec<Booking>,
}

#[Object]
impl Venue {
    async fn id(&self) -> Uuid {
        self.id
    }

    async fn bookings(&self, first: usize) -> BookingPage {
        BookingPage {
            nodes: self.bookings.iter().take(first).cloned().collect(),
        }
    }
}

#[derive(SimpleObject)]
struct VenuePage {
    nodes: Vec<Venue>,
}

struct Query {
    venues: Vec<Venue>,
}

#[Object]
impl Query {
    async fn venue(&self, id: Uuid) -> Option<Venue> {
        self.venues.iter().find(|v| v.id == id).cloned()
    }

    async fn venues(&self, first: usize) -> VenuePage {
        VenuePage {
            nodes: self.venues.iter().take(first).cloned().collect(),
        }
    }
}

fn money(cents: i64) -> Money {
    Money {
        amount: Decimal::new(cents, 2),
        currency: "USD".into(),
    }
}

fn booking(n: u128) -> Booking {
    let at = Utc
        .timestamp_opt(1_790_000_000 + n as i64 * 3600, 0)
        .unwrap();
    Booking {
        id: Uuid::from_u128(n),
        diners: 4,
        booking_time: at,
        duration_minutes: 120,
        special_requests: n.is_multiple_of(3).then(|| "Window table, please".into()),
        kind: if n.is_multiple_of(2) {
            BookingType::Prime
        } else {
            BookingType::NonPrime
        },
        source: "PROMOTER".into(),
        status: if n.is_multiple_of(5) {
            BookingStatus::Pending
        } else {
            BookingStatus::Completed
        },
        base_fee: money(12_000),
        platform_fee: money(1_800),
        total_fee: money(13_800),
        promoter_commission: money(1_200),
        confirmed_at: Some(at),
        completed_at: Some(at),
        created_at: at,
        guest: Guest {
            id: Uuid::from_u128(1 << 64 | n),
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
        },
        promoter: Some(Id {
            id: Uuid::from_u128(2 << 64 | n),
        }),
        // 2.4 ledger rows a booking on average, none paid out yet: the shape of the peer
        // benchmark's W1 answer (250 bookings, 594 transactions, 0 payouts).
        transactions: (0..2 + u128::from(n % 5 < 2))
            .map(|t| Transaction {
                id: Uuid::from_u128(3 << 64 | n << 2 | t),
                payout: None,
            })
            .collect(),
    }
}

const W1: &str = "query W1 { venues(first: 10) { nodes { id bookings(first: 50) { nodes {
  id guest { id } promoter { id } transactions { id payout { id } } } } } } }";
const W2: &str = "query W2($venue: UUID!) { venue(id: $venue) { id bookings(first: 20) { nodes {
  id guest { id firstName lastName } totalFee { amount } } } } }";
const W3: &str = "query W3($venue: UUID!) { venue(id: $venue) { id bookings(first: 100) { nodes {
  id diners bookingTime durationMinutes specialRequests type source status
  baseFee { amount } platformFee { amount } totalFee { amount } promoterCommission { amount }
  confirmedAt completedAt createdAt } } } }";

/// CPU time of this thread (the runtime is single-threaded, so this is the request's).
fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn setting(name: &str, default: u32) -> anyhow::Result<u32> {
    Ok(std::env::var(name)
        .ok()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(default))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    executor(setting("ROUNDS", 2000)?).await?;
    fanout(setting("FANOUT", 9000)? as usize, setting("EVENTS", 20)?).await
}

/// W1-W3 through async-graphql alone. The requests run on the main thread (`block_on`;
/// nothing in them is spawned), so that thread's CPU time is theirs.
async fn executor(rounds: u32) -> anyhow::Result<()> {
    // Five venues, as the owner sees in the peer benchmark's database.
    let venues: Vec<Venue> = (0..5u128)
        .map(|v| Venue {
            id: Uuid::from_u128(5 << 64 | v),
            bookings: (0..100).map(|b| booking(v * 1000 + b)).collect(),
        })
        .collect();
    let venue = venues[0].id;
    let schema = Schema::build(Query { venues }, EmptyMutation, EmptySubscription).finish();
    let variables = async_graphql::Variables::from_json(serde_json::json!({ "venue": venue }));
    println!("async-graphql alone, rows in memory, {rounds} requests each, one thread:");
    for (name, query) in [("W1", W1), ("W2", W2), ("W3", W3)] {
        let mut bytes = 0;
        let run = async || {
            let request = async_graphql::Request::new(query).variables(variables.clone());
            let response = schema.execute(request).await;
            assert!(response.errors.is_empty(), "{:?}", response.errors);
            serde_json::to_vec(&response).expect("a response serializes")
        };
        for _ in 0..rounds / 10 {
            run().await;
        }
        let (wall, cpu) = (Instant::now(), thread_cpu());
        for _ in 0..rounds {
            bytes = run().await.len();
        }
        let per = |d: Duration| d.as_secs_f64() * 1e3 / f64::from(rounds);
        println!(
            "  {name}: {:.3} ms CPU per request ({:.3} ms wall), {bytes} bytes of JSON",
            per(thread_cpu() - cpu),
            per(wall.elapsed()),
        );
    }
    Ok(())
}

/// The fan-out floor: see the module's comment.
async fn fanout(connections: usize, events: u32) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::{broadcast, mpsc};
    let mut limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    limit.current = limit.maximum;
    rustix::process::setrlimit(rustix::process::Resource::Nofile, limit)?;
    // A server-to-client text frame as PRIMA writes it: 2 header bytes (a payload under 126
    // bytes, unmasked) and the `next` message of `bookingChanged { cursor booking { id } }`.
    let payload = br#"{"id":"1","type":"next","payload":{"data":{"bookingChanged":{"cursor":"MTc5MDAwMDAwMDAwMDox","booking":{"id":"0c9d6c6e-3f7c-4a2e-9d55-1d2b5a8f9e01"}}}}}"#;
    let mut frame = vec![0x81, u8::try_from(payload.len())?];
    frame.extend_from_slice(payload);
    let frame: Arc<[u8]> = frame.into();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let (events_out, _) = broadcast::channel::<()>(4);
    let (delivered, mut deliveries) = mpsc::unbounded_channel::<Instant>();
    for _ in 0..connections {
        let client = tokio::net::TcpStream::connect(address).await?;
        let (mut server, _) = listener.accept().await?;
        server.set_nodelay(true)?;
        let (mut wake, bytes) = (events_out.subscribe(), frame.clone());
        tokio::spawn(async move {
            while wake.recv().await.is_ok() {
                if server.write_all(&bytes).await.is_err() {
                    break;
                }
            }
        });
        let (mut client, delivered, len) = (client, delivered.clone(), frame.len());
        tokio::spawn(async move {
            let mut buf = vec![0; len];
            while client.read_exact(&mut buf).await.is_ok() {
                if delivered.send(Instant::now()).is_err() {
                    break;
                }
            }
        });
    }
    let mut latencies = Vec::with_capacity(connections * events as usize);
    for _ in 0..events {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let sent = Instant::now();
        events_out.send(())?;
        for _ in 0..connections {
            let at = deliveries.recv().await.expect("every client delivers");
            latencies.push(at - sent);
        }
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
    println!(
        "fan-out floor, {connections} loopback TCP connections in one process, {events} events: \
         event to client p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} bytes a delivery)",
        at(0.5),
        at(0.99),
        at(1.0),
        frame.len()
    );
    Ok(())
}
