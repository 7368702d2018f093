//! Configuration: one typed struct per command, every setting a flag and an environment
//! variable (12-factor). The defaults make `prima serve` work with no settings at all:
//! SQLite file `prima.db`, the in-process event bus, 127.0.0.1:8000.

use std::fmt;
use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand};

/// PRIMA Partner API: the GraphQL back end of the PRIMA partner dashboard.
#[derive(Debug, Parser)]
#[command(
    name = "prima",
    version,
    about,
    after_help = "Exit status: 0 on success, 1 when `prima check` finds discrepancies, 2 on any error."
)]
pub struct Cli {
    /// Database URL: `postgres://user:pass@host/db`, or `sqlite://file.db?mode=rwc` (the
    /// default, a file in the working directory). Used by every subcommand.
    #[arg(
        long,
        env = "DATABASE_URL",
        global = true,
        default_value = "sqlite://prima.db?mode=rwc",
        hide_env_values = true
    )]
    pub database_url: String,

    /// Most database connections in the pool.
    #[arg(long, env = "PRIMA_DB_POOL_SIZE", global = true, default_value_t = 10)]
    pub db_pool_size: u32,

    /// Log lines as `text` (coloured only on a terminal) or as `json`, one object a line.
    #[arg(
        long,
        env = "PRIMA_LOG_FORMAT",
        global = true,
        value_enum,
        default_value_t = LogFormat::Text
    )]
    pub log_format: LogFormat,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written (to standard error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines; ANSI colours only when standard error is a terminal.
    Text,
    /// One JSON object a line, with the request's span fields (its `id` among them).
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
// Parsed once at start: the size of the settings' variant costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Run the API server (migrations are applied first).
    Serve(ServeArgs),
    /// Apply pending migrations and exit.
    Migrate,
    /// Load the deterministic demo portfolio into an empty database.
    Seed(SeedArgs),
    /// Print the GraphQL schema (SDL) and exit.
    ExportSchema,
    /// Create a user (and optionally grant venue roles).
    CreateUser(CreateUserArgs),
    /// Verify the data invariants (ledger against fees, promoter and guest aggregates,
    /// paid-out amounts) and print every discrepancy; exits 1 when there is any. Reads only,
    /// in one snapshot, and applies no migrations.
    Check(CheckArgs),
}

/// A secret that never prints.
#[derive(Clone)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::str::FromStr for Secret {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() < 16 {
            return Err("the token secret must be at least 16 characters".into());
        }
        Ok(Secret(s.to_owned()))
    }
}

/// Settings of `prima serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "PRIMA_BIND", default_value = "127.0.0.1:8000")]
    pub bind: SocketAddr,

    /// Redis URL (`redis://host:6379`) for the event bus shared by API replicas; without
    /// it events stay in this process.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,

    /// Secret that signs login tokens (at least 16 characters). Without it a random one is
    /// made per process: tokens then stop working at restart and are not shared by
    /// replicas, so production must set it.
    #[arg(long, env = "PRIMA_TOKEN_SECRET", hide_env_values = true)]
    pub token_secret: Option<Secret>,

    /// How long a login token stays valid, in hours.
    #[arg(long, env = "PRIMA_TOKEN_TTL_HOURS", default_value_t = 12)]
    pub token_ttl_hours: u32,

    /// Deepest query selection allowed.
    #[arg(long, env = "PRIMA_MAX_DEPTH", default_value_t = 16)]
    pub max_depth: usize,

    /// Limits on what one request may send and ask (sizes, nesting, cost).
    #[command(flatten)]
    pub limits: LimitArgs,

    /// Allow introspection (schema docs in GraphiQL). Turn off in production if the schema
    /// should not be public: `--introspection false`.
    #[arg(long, env = "PRIMA_INTROSPECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub introspection: bool,

    /// Load the demo portfolio at start when the database is empty (see `prima seed`).
    #[arg(long, env = "PRIMA_SEED_DEMO", default_value_t = false)]
    pub seed_demo: bool,

    /// How many hours published events are kept, so subscribers can resume (`after`) over a
    /// disconnection that long.
    #[arg(long, env = "PRIMA_OUTBOX_RETENTION_HOURS", default_value_t = 72)]
    pub outbox_retention_hours: u64,

    /// How often, in milliseconds, a subscriber's access is re-checked; a suspended user or
    /// revoked venue ends their subscriptions within this time.
    #[arg(long, env = "PRIMA_SUBSCRIPTION_RECHECK_MS", default_value_t = 2_000)]
    pub subscription_recheck_ms: u64,

    /// The Redis pub/sub channel of events: every replica of one database must use the
    /// same, and deployments of other databases on the same Redis another.
    #[arg(long, env = "PRIMA_EVENTS_CHANNEL", default_value = "prima:events")]
    pub events_channel: String,

    /// Browser origins that may call the API (CORS), comma-separated:
    /// `https://dash.example.com`, `http://localhost:*` (any port), `https://*.example.com`
    /// (its subdomains), `*` (any) or `none`. Unset: the dev servers of this machine
    /// (`http://localhost:*`, `http://127.0.0.1:*`, `http://[::1]:*`) on SQLite, none on
    /// PostgreSQL.
    #[arg(long, env = "PRIMA_CORS_ORIGINS")]
    pub cors_origins: Option<crate::cors::CorsOrigins>,

    /// Run only the documents of this manifest (Apollo's `persisted-query-manifest.json`
    /// or Relay's id-to-document map): every other operation is refused. Without it,
    /// clients may persist queries automatically (Apollo's APQ).
    #[arg(long, env = "PRIMA_TRUSTED_DOCUMENTS")]
    pub trusted_documents: Option<std::path::PathBuf>,

    /// Login throttling, password hashing and the limiter store.
    #[command(flatten)]
    pub login: LoginArgs,

    /// Test hook: the outbox relay publishes nothing (as if the process died between a
    /// commit and its publication).
    #[arg(
        long,
        env = "PRIMA_TEST_HOLD_RELAY",
        default_value_t = false,
        hide = true
    )]
    pub hold_relay: bool,

    /// The WebSocket endpoint's limits.
    #[command(flatten)]
    pub ws: WsArgs,
}

/// Limits of the WebSocket endpoint (`/graphql/ws`, graphql-transport-ws). An operation
/// counts from its `subscribe` until it completes: a subscription while it runs, a query
/// or mutation until it is answered.
#[derive(Debug, Clone, Args)]
pub struct WsArgs {
    /// How long, in milliseconds, a new socket may take to send `connection_init`; then it
    /// is closed with 4408.
    #[arg(
        long = "ws-init-timeout-ms",
        env = "PRIMA_WS_INIT_TIMEOUT_MS",
        default_value_t = 3_000,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub init_timeout_ms: u64,

    /// Most operations running at once on one socket; one more is answered with an `error`
    /// message (LIMIT_EXCEEDED) and the socket stays open.
    #[arg(
        long = "ws-max-subscriptions-per-socket",
        env = "PRIMA_WS_MAX_SUBSCRIPTIONS_PER_SOCKET",
        default_value_t = 50,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub max_subscriptions_per_socket: u64,

    /// Most operations one user runs at once over all their sockets to this replica; one
    /// more is answered with an `error` message (LIMIT_EXCEEDED).
    #[arg(
        long = "ws-max-subscriptions-per-user",
        env = "PRIMA_WS_MAX_SUBSCRIPTIONS_PER_USER",
        default_value_t = 200,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub max_subscriptions_per_user: u64,

    /// Largest message (and frame) a client may send, in bytes; a larger one closes the
    /// socket with 1009.
    #[arg(
        long = "ws-max-message-bytes",
        env = "PRIMA_WS_MAX_MESSAGE_BYTES",
        default_value_t = 64 * 1024,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub max_message_bytes: u64,

    /// How often, in milliseconds, the server sends a protocol `ping`; a socket from which
    /// nothing (no `pong`, no message) arrived for two intervals is closed with 3008.
    #[arg(
        long = "ws-keepalive-ms",
        env = "PRIMA_WS_KEEPALIVE_MS",
        default_value_t = 15_000,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub keepalive_ms: u64,
}

impl Default for WsArgs {
    fn default() -> Self {
        WsArgs {
            init_timeout_ms: 3_000,
            max_subscriptions_per_socket: 50,
            max_subscriptions_per_user: 200,
            max_message_bytes: 64 * 1024,
            keepalive_ms: 15_000,
        }
    }
}

impl Default for ServeArgs {
    fn default() -> Self {
        ServeArgs {
            bind: "127.0.0.1:0".parse().expect("a literal address"),
            redis_url: None,
            token_secret: None,
            token_ttl_hours: 12,
            max_depth: 16,
            limits: LimitArgs::default(),
            introspection: true,
            seed_demo: false,
            outbox_retention_hours: 72,
            subscription_recheck_ms: 2_000,
            hold_relay: false,
            events_channel: "prima:events".to_owned(),
            ws: WsArgs::default(),
            cors_origins: None,
            trusted_documents: None,
            login: LoginArgs::default(),
        }
    }
}

/// Settings of logging in (throttling per email and per client address, password hashing)
/// and of the limiter store that keeps the throttle's counters (in Redis with `REDIS_URL`,
/// shared by replicas; in process otherwise).
#[derive(Debug, Clone, Args)]
pub struct LoginArgs {
    /// Password hashes computed at once (each holds about 19 MiB while it runs); default:
    /// the number of cores.
    #[arg(long, env = "PRIMA_LOGIN_HASH_CONCURRENCY")]
    pub login_hash_concurrency: Option<usize>,

    /// Password hashes that may wait for a free slot; logins beyond them are refused
    /// THROTTLED (retry after 1 s) without hashing.
    #[arg(long, env = "PRIMA_LOGIN_HASH_QUEUE", default_value_t = prima_service::auth::DEFAULT_HASH_QUEUE)]
    pub login_hash_queue: usize,

    /// Failed logins of one email before each further attempt must wait.
    #[arg(long, env = "PRIMA_LOGIN_FREE_FAILURES", default_value_t = 3)]
    pub login_free_failures: u32,

    /// Failed logins of one email (within the window) that lock it out; 0 never locks.
    #[arg(long, env = "PRIMA_LOGIN_LOCKOUT_FAILURES", default_value_t = 10)]
    pub login_lockout_failures: u32,

    /// Failed logins from one client address before each further attempt must wait.
    #[arg(long, env = "PRIMA_LOGIN_ADDRESS_FREE_FAILURES", default_value_t = 10)]
    pub login_address_free_failures: u32,

    /// Failed logins from one client address (within the window) that lock it out; 0 never
    /// locks.
    #[arg(
        long,
        env = "PRIMA_LOGIN_ADDRESS_LOCKOUT_FAILURES",
        default_value_t = 30
    )]
    pub login_address_lockout_failures: u32,

    /// The first wait, in milliseconds, after the free failures; it doubles with each
    /// further failure.
    #[arg(long, env = "PRIMA_LOGIN_DELAY_MS", default_value_t = 1_000)]
    pub login_delay_ms: u64,

    /// The longest wait between attempts, in seconds.
    #[arg(long, env = "PRIMA_LOGIN_MAX_DELAY_SECS", default_value_t = 60)]
    pub login_max_delay_secs: u64,

    /// How long a run of failures is remembered, in seconds.
    #[arg(long, env = "PRIMA_LOGIN_WINDOW_SECS", default_value_t = 900)]
    pub login_window_secs: u64,

    /// How long a lockout lasts, in seconds after the failure that caused it.
    #[arg(long, env = "PRIMA_LOGIN_LOCKOUT_SECS", default_value_t = 900)]
    pub login_lockout_secs: u64,

    /// Take the client address from the first `X-Forwarded-For` entry instead of the
    /// connection's peer. Only behind a proxy that sets that header itself (and drops what
    /// clients send): otherwise any client can claim any address and escape the per-address
    /// throttle.
    #[arg(long, env = "PRIMA_TRUST_FORWARDED_FOR", default_value_t = false, action = clap::ArgAction::Set)]
    pub trust_forwarded_for: bool,

    /// Prefix of the limiter's Redis keys: the same for the replicas of one deployment,
    /// another for other deployments on the same Redis.
    #[arg(long, env = "PRIMA_LIMITER_PREFIX", default_value = "prima:limit")]
    pub limiter_prefix: String,

    /// Most entries of each in-process limiter map (used without Redis, and while Redis is
    /// unreachable); past it the entries closest to expiry are evicted.
    #[arg(long, env = "PRIMA_LIMITER_MAX_ENTRIES", default_value_t = 100_000)]
    pub limiter_max_entries: usize,
}

impl Default for LoginArgs {
    fn default() -> Self {
        LoginArgs {
            login_hash_concurrency: None,
            login_hash_queue: prima_service::auth::DEFAULT_HASH_QUEUE,
            login_free_failures: 3,
            login_lockout_failures: 10,
            login_address_free_failures: 10,
            login_address_lockout_failures: 30,
            login_delay_ms: 1_000,
            login_max_delay_secs: 60,
            login_window_secs: 900,
            login_lockout_secs: 900,
            trust_forwarded_for: false,
            limiter_prefix: "prima:limit".to_owned(),
            limiter_max_entries: 100_000,
        }
    }
}

impl LoginArgs {
    /// The hashing limits: the machine's cores unless overridden.
    pub fn hash_limits(&self) -> prima_service::auth::HashLimits {
        let machine = prima_service::auth::HashLimits::for_machine();
        prima_service::auth::HashLimits {
            concurrency: self.login_hash_concurrency.unwrap_or(machine.concurrency),
            queue: self.login_hash_queue,
        }
    }

    /// The throttling policy per email and per address.
    pub fn policy(&self) -> prima_service::auth::LoginPolicy {
        use std::time::Duration;
        let email = prima_service::throttle::Backoff {
            free_failures: self.login_free_failures,
            first_delay: Duration::from_millis(self.login_delay_ms),
            max_delay: Duration::from_secs(self.login_max_delay_secs),
            lockout_after: self.login_lockout_failures,
            lockout_for: Duration::from_secs(self.login_lockout_secs),
            window: Duration::from_secs(self.login_window_secs),
        };
        prima_service::auth::LoginPolicy {
            email,
            address: prima_service::throttle::Backoff {
                free_failures: self.login_address_free_failures,
                lockout_after: self.login_address_lockout_failures,
                ..email
            },
        }
    }

    /// How the limiter store keeps its counters.
    pub fn store_options(&self) -> prima_service::throttle::StoreOptions {
        prima_service::throttle::StoreOptions {
            prefix: self.limiter_prefix.clone(),
            max_entries: self.limiter_max_entries,
            clock: prima_service::throttle::Clock::system(),
        }
    }
}

/// Settings of `prima seed`.
#[derive(Debug, Clone, Args)]
pub struct SeedArgs {
    /// How many bookings to generate (up to millions; inserted in bulk).
    #[arg(long, default_value_t = 2_000)]
    pub bookings: u64,
}

/// Settings of `prima create-user`.
#[derive(Debug, Clone, Args)]
pub struct CreateUserArgs {
    /// Login email.
    #[arg(long)]
    pub email: String,
    /// Password (at least 8 characters).
    #[arg(long, env = "PRIMA_USER_PASSWORD", hide_env_values = true)]
    pub password: Secret8,
    /// First name.
    #[arg(long)]
    pub first_name: String,
    /// Last name.
    #[arg(long)]
    pub last_name: String,
    /// Global role: ADMIN, MANAGER, COORDINATOR or VIEWER.
    #[arg(long, default_value = "MANAGER")]
    pub role: String,
    /// A venue role to grant, as `<venue id>:<OWNER|ADMIN|MANAGER|COORDINATOR>`; repeatable.
    #[arg(long = "venue")]
    pub venues: Vec<String>,
}

/// A password argument that never prints.
#[derive(Clone)]
pub struct Secret8(pub String);

impl fmt::Debug for Secret8 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::str::FromStr for Secret8 {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret8(s.to_owned()))
    }
}

/// Settings of `prima check`.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// Check only this venue (its id): its bookings and their ledger, its promoters, the
    /// guests who booked there and its payouts. Without it, the whole database.
    #[arg(long)]
    pub venue: Option<uuid::Uuid>,
}

/// Limits on what one request may send and ask, all enforced before any work is done
/// (`prima_graphql::limits`). The defaults suit the dashboard and GraphiQL.
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Largest request body, in bytes; larger bodies are refused with 413.
    #[arg(long, env = "PRIMA_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Highest query cost: each field counts once per row it can return (connections by
    /// `first`/`last`, plain lists by their bound), multiplied down the tree.
    #[arg(long, env = "PRIMA_MAX_COST", default_value_t = 100_000)]
    pub max_cost: u64,

    /// Most root fields in one operation.
    #[arg(long, env = "PRIMA_MAX_ROOT_FIELDS", default_value_t = 30)]
    pub max_root_fields: usize,

    /// Most aliased fields in one operation.
    #[arg(long, env = "PRIMA_MAX_ALIASES", default_value_t = 100)]
    pub max_aliases: usize,

    /// Longest query document, in bytes.
    #[arg(long, env = "PRIMA_MAX_DOCUMENT_BYTES", default_value_t = 64 * 1024)]
    pub max_document_bytes: usize,

    /// Most lexical tokens in a query document.
    #[arg(long, env = "PRIMA_MAX_TOKENS", default_value_t = 10_000)]
    pub max_tokens: usize,

    /// Deepest nesting of lists and input objects in argument values and variables.
    #[arg(long, env = "PRIMA_MAX_INPUT_DEPTH", default_value_t = 10)]
    pub max_input_depth: usize,

    /// Longest string argument or input field, in characters, where the field has no
    /// shorter limit of its own (`search` 200, `email` 254, IDs 100, ...).
    #[arg(long, env = "PRIMA_MAX_STRING_LENGTH", default_value_t = 2_000)]
    pub max_string_chars: usize,

    /// Most items in any list argument or input field.
    #[arg(long, env = "PRIMA_MAX_LIST_ITEMS", default_value_t = 100)]
    pub max_list_items: usize,

    /// Each user's rate limit: a budget of this many cost points (per client address for
    /// requests without a token), shared by replicas through Redis when `REDIS_URL` is set.
    /// 0 turns rate limiting off.
    #[arg(long, env = "PRIMA_RATE_LIMIT_POINTS", default_value_t = 1_000_000)]
    pub rate_limit_points: u64,

    /// Cost points each budget regains per second.
    #[arg(
        long,
        env = "PRIMA_RATE_LIMIT_REFILL_PER_SEC",
        default_value_t = 100_000
    )]
    pub rate_limit_refill_per_sec: u64,
}

impl Default for LimitArgs {
    fn default() -> Self {
        let limits = prima_graphql::Limits::default();
        LimitArgs {
            max_body_bytes: 1024 * 1024,
            max_cost: limits.max_cost,
            max_root_fields: limits.max_root_fields,
            max_aliases: limits.max_aliases,
            max_document_bytes: limits.max_document_bytes,
            max_tokens: limits.max_tokens,
            max_input_depth: limits.max_input_depth,
            max_string_chars: limits.max_string_chars,
            max_list_items: limits.max_list_items,
            rate_limit_points: limits.rate_capacity,
            rate_limit_refill_per_sec: limits.rate_refill_per_sec,
        }
    }
}

impl ServeArgs {
    /// The schema's limits from these settings.
    pub fn schema_limits(&self) -> prima_graphql::Limits {
        let limits = &self.limits;
        prima_graphql::Limits {
            max_depth: self.max_depth,
            max_cost: limits.max_cost,
            max_root_fields: limits.max_root_fields,
            max_aliases: limits.max_aliases,
            max_document_bytes: limits.max_document_bytes,
            max_tokens: limits.max_tokens,
            max_input_depth: limits.max_input_depth,
            max_string_chars: limits.max_string_chars,
            max_list_items: limits.max_list_items,
            introspection: self.introspection,
            rate_capacity: limits.rate_limit_points,
            rate_refill_per_sec: limits.rate_limit_refill_per_sec,
        }
    }
}
