//! The HTTP server: GraphiQL, GraphQL over HTTP and WebSocket (graphql-transport-ws, in
//! [`crate::ws`]), health, readiness and metrics. Every request authenticates its bearer
//! token afresh.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use chrono::Duration;
use prima_graphql::{Api, Deps, RealTime, build_schema, request_data};
use prima_service::Error;
use prima_service::access::Actor;
use prima_service::auth::{Hasher, LoginGuard, TokenSecret, Tokens};
use prima_service::bookings::create::ClientInfo;
use prima_service::db::Db;
use prima_service::events::Events;
use prima_service::events::feed::FeedOptions;
use prima_service::events::relay::RelayOptions;
use prima_service::throttle::Store;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tower_http::request_id::{
    MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tracing::Instrument as _;

use crate::config::ServeArgs;
use crate::cors::CorsOrigins;
use crate::metrics::Metrics;
use crate::over_http::{self, Malformed, MediaType};
use crate::persisted::{After, Persisted};
use async_graphql::BatchRequest;
use prima_graphql::limits::Allowed;

/// Everything a request handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Database and token issuer.
    pub deps: Deps,
    /// The GraphQL schema, behind its limits.
    pub schema: Api,
    /// Request metrics.
    pub metrics: Arc<Metrics>,
    /// Redis, when configured (checked by `/readyz`).
    pub redis: Option<redis::Client>,
    /// The WebSocket endpoint's limits and per-user operation counts.
    pub ws: crate::ws::Sockets,
    /// Whether `X-Forwarded-For` names the client (`PRIMA_TRUST_FORWARDED_FOR`).
    pub trust_forwarded_for: bool,
    /// Persisted documents: learnt (APQ) or the trusted manifest's.
    pub persisted: Arc<Persisted>,
}

/// Builds the application for a migrated database, and starts its outbox relay and event
/// hub (they stop when the state is dropped).
pub async fn build(db: Db, args: &ServeArgs) -> anyhow::Result<(Router, AppState)> {
    let secret = match &args.token_secret {
        Some(secret) => TokenSecret::new(secret.0.as_bytes()),
        None => {
            tracing::warn!(
                "no PRIMA_TOKEN_SECRET set: using a random secret; tokens end when this process does"
            );
            TokenSecret::random()
        }
    };
    let tokens = Tokens::new(secret, Duration::hours(i64::from(args.token_ttl_hours)));
    let redis = args
        .redis_url
        .as_deref()
        .map(redis::Client::open)
        .transpose()
        .context("parsing REDIS_URL")?;
    let events = Events::start(
        &db,
        redis.clone(),
        RelayOptions {
            retention: std::time::Duration::from_secs(args.outbox_retention_hours * 3600),
            hold: args.hold_relay,
            channel: args.events_channel.clone(),
            ..RelayOptions::default()
        },
    )
    .await
    .context("starting the event relay")?;
    let realtime = RealTime {
        boards: prima_graphql::boards::Boards::new(db.clone(), events.hub.clone()),
        hub: events.hub.clone(),
        events: Arc::new(events),
        feed: FeedOptions {
            revalidate: std::time::Duration::from_millis(args.subscription_recheck_ms.max(1)),
            audience: None,
        },
    };
    let limiter = match &redis {
        Some(client) => Store::redis(client.clone(), args.login.store_options()),
        None => Store::in_process(args.login.store_options()),
    };
    let login = Arc::new(LoginGuard::new(
        limiter.clone(),
        Hasher::new(args.login.hash_limits()),
        args.login.policy(),
    ));
    let deps = Deps {
        db,
        tokens,
        realtime: Some(realtime),
        limiter,
        login,
    };
    let schema = build_schema(Some(deps.clone()), &args.schema_limits());
    let persisted = persisted_documents(args, redis.clone())?;
    let state = AppState {
        deps,
        schema,
        metrics: Arc::new(Metrics::default()),
        redis,
        ws: crate::ws::Sockets::new(&args.ws),
        trust_forwarded_for: args.login.trust_forwarded_for,
        persisted: Arc::new(persisted),
    };
    let router = router(&state, args);
    Ok((router, state))
}

/// Where documents come from: the trusted manifest when one is set, else learnt (APQ).
fn persisted_documents(
    args: &ServeArgs,
    redis: Option<redis::Client>,
) -> anyhow::Result<Persisted> {
    match &args.trusted_documents {
        Some(path) => Persisted::trusted(path),
        None => Ok(Persisted::automatic(redis, "prima:apq")),
    }
}

/// The routes and the layers around them.
fn router(state: &AppState, args: &ServeArgs) -> Router {
    let cors = args
        .cors_origins
        .clone()
        .unwrap_or_else(|| CorsOrigins::default_for(state.deps.db.backend()));
    tracing::info!(origins = %cors, "browser origins allowed (CORS)");
    // Layers run outside in, from the last added: CORS answers a preflight before anything
    // else; then the request gets its id, which its span, its answer and its errors carry;
    // then metrics, compression, and the body limit, which refuses a body over it before
    // anything reads it (by its Content-Length, or as it streams in), answered 413 in
    // GraphQL's error shape.
    Router::new()
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/graphql/ws", get(crate::ws::websocket))
        .route(
            &format!("{}/{{file}}", crate::graphiql::ASSETS_PATH),
            get(crate::graphiql::asset),
        )
        .route("/exports/payouts.csv", get(crate::export::payouts_csv))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            args.limits.max_body_bytes,
        ))
        .layer(middleware::from_fn(body_too_large_as_graphql))
        .layer(tower_http::compression::CompressionLayer::new())
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(middleware::map_request(drop_unusable_request_id))
        .layer(cors.layer())
        .with_state(state.clone())
}

/// A server running in the background (tests, and `prima serve` itself).
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its state (database, metrics).
    pub state: AppState,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Stops accepting, drains in-flight requests, and waits for the server to end.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task)
            .await
            .context("joining the server task")??;
        Ok(())
    }

    /// Waits until the server ends (it ends on `shutdown` or when its task fails).
    pub async fn wait(&mut self) -> anyhow::Result<()> {
        (&mut self.task)
            .await
            .context("joining the server task")??;
        Ok(())
    }
}

/// Binds `args.bind` and serves in a background task.
pub async fn spawn(db: Db, args: &ServeArgs) -> anyhow::Result<Running> {
    let (router, state) = build(db, args).await?;
    let listener = TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("binding {}", args.bind))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = stopped.await;
        })
        .await
    });
    Ok(Running {
        addr,
        state,
        stop: Some(stop),
        task,
    })
}

/// The request id header: a client's own id (when usable) or a new UUID, echoed in the
/// answer, a field of every log line of the request and `extensions.requestId` of every
/// GraphQL error.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest request id a client may send; a longer one (or one with other characters than
/// letters, digits and `-_.:/+=`) is replaced by a new id rather than logged.
pub const MAX_REQUEST_ID_BYTES: usize = 128;

/// A client's request id goes into every log line, so only a short, printable one is kept.
async fn drop_unusable_request_id(mut request: Request) -> Request {
    let usable = |value: &HeaderValue| {
        let bytes = value.as_bytes();
        !bytes.is_empty()
            && bytes.len() <= MAX_REQUEST_ID_BYTES
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=".contains(b))
    };
    let ids = request.headers().get_all(&REQUEST_ID);
    let keep = ids.iter().count() == 1 && ids.iter().all(usable);
    if !keep {
        request.headers_mut().remove(&REQUEST_ID);
    }
    request
}

/// The id `SetRequestIdLayer` gave the request.
pub(crate) fn request_id(request: &axum::http::Extensions) -> Option<String> {
    request.get::<RequestId>().and_then(id_text)
}

/// A request id as text (it is always ASCII: the client's was checked, ours is a UUID).
pub(crate) fn id_text(id: &RequestId) -> Option<String> {
    id.header_value().to_str().ok().map(str::to_owned)
}

async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let id = request_id(request.extensions()).unwrap_or_default();
    let span = tracing::info_span!("request", id = %id, method = %method, path = %path);
    let response = next.run(request).instrument(span).await;
    state.metrics.record(
        &method,
        &path,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// The caller behind an `Authorization: Bearer` header: none without a header, an error
/// (reported on the first field that needs a caller) for a bad one.
async fn caller_from(state: &AppState, token: Option<&str>) -> Result<Option<Actor>, Error> {
    let Some(token) = token else {
        return Ok(None);
    };
    prima_service::auth::authenticate(&state.deps.db.conn, &state.deps.tokens, token)
        .await
        .map(Some)
}

/// The token of an `Authorization: Bearer` header: `None` without the header.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<Result<&str, Error>> {
    let value = headers.get(header::AUTHORIZATION)?;
    Some(
        value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| {
                Error::Unauthenticated("the Authorization header must be `Bearer <token>`".into())
            }),
    )
}

/// `GET /graphql`: GraphiQL for a browser, a query (never a mutation) for anyone else.
async fn graphql_get(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    id: Option<Extension<RequestId>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if over_http::wants_html(&headers) {
        return crate::graphiql::page("/graphql", "/graphql/ws");
    }
    let call = |media| Call {
        peer,
        id: id.and_then(|Extension(id)| id_text(&id)),
        media,
        allowed: Allowed::Queries,
    };
    respond(&state, &headers, call, |_| over_http::from_uri(&uri)).await
}

/// `POST /graphql`: one request or a batch, as JSON.
async fn graphql_post(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    id: Option<Extension<RequestId>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let call = |media| Call {
        peer,
        id: id.and_then(|Extension(id)| id_text(&id)),
        media,
        allowed: Allowed::Any,
    };
    let read = |headers: &HeaderMap| match &body {
        Ok(body) => over_http::from_body(headers, body),
        Err(rejection) => Err(Malformed {
            // 413 when the body limit cut the body off as it streamed in.
            status: match rejection.status() {
                StatusCode::PAYLOAD_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
                _ => StatusCode::BAD_REQUEST,
            },
            message: format!("the request body could not be read: {rejection}"),
        }),
    };
    respond(&state, &headers, call, read).await
}

/// What both methods do once they know how to read the request: negotiate the answer's
/// media type (406 when none fits), read the request (its refusal named by the request's
/// id) and serve it.
async fn respond(
    state: &AppState,
    headers: &HeaderMap,
    call: impl FnOnce(MediaType) -> Call,
    read: impl FnOnce(&HeaderMap) -> Result<BatchRequest, Malformed>,
) -> Response {
    let Some(media) = over_http::negotiate(headers) else {
        let call = call(MediaType::Json);
        return over_http::refuse(MediaType::Json, &not_acceptable(), call.id.as_deref());
    };
    let call = call(media);
    match read(headers) {
        Ok(batch) => serve(state, headers, call, batch).await,
        Err(malformed) => over_http::refuse(media, &malformed, call.id.as_deref()),
    }
}

fn not_acceptable() -> Malformed {
    Malformed {
        status: StatusCode::NOT_ACCEPTABLE,
        message: "the answer is application/graphql-response+json or application/json; \
                  the Accept header allows neither"
            .into(),
    }
}

/// One HTTP request's circumstances.
struct Call {
    peer: SocketAddr,
    id: Option<String>,
    media: MediaType,
    allowed: Allowed,
}

/// Runs a request, or each of a batch in turn, for the caller its token names
/// (authenticated once for the HTTP request).
async fn serve(state: &AppState, headers: &HeaderMap, call: Call, batch: BatchRequest) -> Response {
    let (requests, is_batch) = match batch {
        BatchRequest::Single(request) => (vec![request], false),
        BatchRequest::Batch(requests) => (requests, true),
    };
    if !is_batch && requests.iter().any(over_http::lacks_document) {
        let malformed = Malformed {
            status: StatusCode::BAD_REQUEST,
            message: "the request has no `query`".into(),
        };
        return over_http::refuse(call.media, &malformed, call.id.as_deref());
    }
    let outcome = match bearer(headers) {
        None => Ok(None),
        Some(Err(err)) => Err(err),
        Some(Ok(token)) => caller_from(state, Some(token)).await,
    };
    let client = client_info(headers, call.peer, state.trust_forwarded_for);
    let mut responses = Vec::with_capacity(requests.len());
    for mut request in requests {
        let learn = match state.persisted.resolve(&mut request).await {
            Ok(After::Learn(hash)) => Some((hash, request.query.clone())),
            Ok(After::Nothing) => None,
            Err(err) => {
                let mut response = async_graphql::Response::from_errors(vec![err]);
                label_request_errors(&mut response, call.id.as_deref());
                responses.push(response);
                continue;
            }
        };
        let (caller, loader) = request_data(&state.deps, outcome.clone());
        let rate_key = prima_graphql::limits::rate_key(caller.0.as_deref().ok(), &client);
        let request = request.data(caller).data(client.clone());
        let mut response = match loader {
            Some(loader) => {
                let run = state.schema.execute_only(
                    request.data(loader.clone()),
                    call.allowed,
                    &rate_key,
                );
                prima_graphql::batch::drive(loader, run).await
            }
            None => {
                state
                    .schema
                    .execute_only(request, call.allowed, &rate_key)
                    .await
            }
        };
        if let Some((hash, document)) = learn
            && !over_http::is_request_error(&response)
        {
            state.persisted.learn(hash, &document).await;
        }
        label_request_errors(&mut response, call.id.as_deref());
        responses.push(response);
    }
    over_http::answer(call.media, responses, is_batch)
}

/// Where a request came from, recorded on the bookings it makes (for fraud review) and the
/// address login throttling counts by: the connection's peer address or, with
/// `trust_forwarded_for`, the first `X-Forwarded-For` address (the client, as a proxy in front
/// of us saw it). Trusting that header needs such a proxy, one that sets it itself: without
/// one, any client can name any address. `User-Agent` and `Referer` are informational only
/// (a client can send anything), so nothing decides on them.
pub(crate) fn client_info(
    headers: &HeaderMap,
    peer: std::net::SocketAddr,
    trust_forwarded_for: bool,
) -> ClientInfo {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
            .filter(|value| !value.is_empty())
            .map(str::to_owned)
    };
    let forwarded = || {
        text("x-forwarded-for").and_then(|list| {
            list.split(',')
                .next()
                .map(str::trim)
                .filter(|ip| !ip.is_empty())
                .map(str::to_owned)
        })
    };
    ClientInfo {
        ip_address: trust_forwarded_for
            .then(forwarded)
            .flatten()
            .or_else(|| Some(peer.ip().to_string())),
        user_agent: text(header::USER_AGENT.as_str()),
        referrer: text(header::REFERER.as_str()),
    }
}

/// Errors the resolvers raise carry `extensions.code` already; the rest come from parsing
/// and validating the request (syntax, unknown fields, limits, argument types) and get
/// `GRAPHQL_VALIDATION_FAILED`, so clients can rely on a code on every error. Each error
/// also names the request (`extensions.requestId`) that the server's log lines name, so a
/// report of one leads to the other.
pub(crate) fn label_request_errors(response: &mut async_graphql::Response, id: Option<&str>) {
    for error in &mut response.errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", "GRAPHQL_VALIDATION_FAILED");
        }
        if let Some(id) = id {
            extensions.set("requestId", id);
        }
    }
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AppState>) -> Response {
    if let Err(err) = state.deps.db.conn.ping().await {
        tracing::warn!(error = %err, "readiness: database unreachable");
        return (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response();
    }
    if let Some(redis) = &state.redis {
        let reachable = async {
            let mut conn = redis.get_multiplexed_async_connection().await?;
            redis::cmd("PING").query_async::<String>(&mut conn).await
        }
        .await;
        if let Err(err) = reachable {
            tracing::warn!(error = %err, "readiness: redis unreachable");
            return (StatusCode::SERVICE_UNAVAILABLE, "redis unreachable").into_response();
        }
    }
    "ready".into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    use std::fmt::Write;
    let mut page = state.metrics.render(&state.deps.db.stats);
    if let Some(realtime) = &state.deps.realtime {
        page.push_str("# HELP prima_subscribers Live subscriptions on this replica.\n");
        page.push_str("# TYPE prima_subscribers gauge\n");
        let _ = writeln!(page, "prima_subscribers {}", realtime.hub.subscribers());
        page.push_str(
            "# HELP prima_event_feeds Event feeds following this replica's hub (identical subscriptions of one user share one).\n",
        );
        page.push_str("# TYPE prima_event_feeds gauge\n");
        let _ = writeln!(page, "prima_event_feeds {}", realtime.hub.feeds());
        page.push_str(
            "# HELP prima_shared_subscriptions Running executions that serve identical subscriptions.\n",
        );
        page.push_str("# TYPE prima_shared_subscriptions gauge\n");
        let _ = writeln!(
            page,
            "prima_shared_subscriptions {}",
            state.ws.fanout.sources()
        );
        page.push_str(
            "# HELP prima_events_delivered Sequence number of the last event this replica delivered.\n",
        );
        page.push_str(
            "# HELP prima_leaderboards Leaderboards running on this replica (one per programme with subscribers).\n",
        );
        page.push_str("# TYPE prima_leaderboards gauge\n");
        let _ = writeln!(page, "prima_leaderboards {}", realtime.boards.running());
        page.push_str(
            "# HELP prima_leaderboard_reads_total Standings read by the shared leaderboards (one per push, for all subscribers of a programme).\n",
        );
        page.push_str("# TYPE prima_leaderboard_reads_total counter\n");
        let _ = writeln!(
            page,
            "prima_leaderboard_reads_total {}",
            realtime.boards.computations()
        );
        page.push_str("# TYPE prima_events_delivered gauge\n");
        let _ = writeln!(page, "prima_events_delivered {}", realtime.hub.delivered());
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], page).into_response()
}

/// The error answer to a body over the limit.
fn body_too_large(id: Option<&str>) -> Response {
    let malformed = Malformed {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        message: "the request body is too large".into(),
    };
    over_http::refuse(MediaType::Json, &malformed, id)
}

/// tower-http's body limit answers 413 in plain text; clients of a GraphQL API expect its
/// error shape.
async fn body_too_large_as_graphql(request: Request, next: Next) -> Response {
    let id = request_id(request.extensions());
    let response = next.run(request).await;
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|value| !value.as_bytes().starts_with(b"application/json"));
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE && plain {
        return body_too_large(id.as_deref());
    }
    response
}
