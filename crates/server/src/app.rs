//! The HTTP server: GraphiQL, GraphQL over HTTP and WebSocket (graphql-transport-ws),
//! health, readiness and metrics. Every request authenticates its bearer token afresh.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use async_graphql::http::GraphiQLSource;
use async_graphql::http::WebSocketProtocols;
use async_graphql::{Data, ParseRequestError};
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::extract::{MatchedPath, Request, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::Duration;
use prima_graphql::{AppSchema, Deps, Limits, RealTime, build_schema, request_data};
use prima_service::Error;
use prima_service::access::Actor;
use prima_service::auth::{Hasher, LoginGuard, TokenSecret, Tokens};
use prima_service::db::Db;
use prima_service::events::{Events, FeedOptions, RelayOptions};
use prima_service::lifecycle::ClientInfo;
use prima_service::throttle::Store;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::config::ServeArgs;
use crate::metrics::Metrics;

/// Everything a request handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Database and token issuer.
    pub deps: Deps,
    /// The GraphQL schema.
    pub schema: AppSchema,
    /// Request metrics.
    pub metrics: Arc<Metrics>,
    /// Redis, when configured (checked by `/readyz`).
    pub redis: Option<redis::Client>,
    /// Whether `X-Forwarded-For` names the client (`PRIMA_TRUST_FORWARDED_FOR`).
    pub trust_forwarded_for: bool,
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
        db.conn.clone(),
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
        hub: events.hub.clone(),
        events: Arc::new(events),
        feed: FeedOptions {
            revalidate: std::time::Duration::from_millis(args.subscription_recheck_ms.max(1)),
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
        batch_delay: std::time::Duration::from_millis(args.batch_delay_ms),
        realtime: Some(realtime),
        limiter,
        login,
    };
    let limits = Limits {
        max_depth: args.max_depth,
        max_complexity: args.max_complexity,
        introspection: args.introspection,
    };
    let schema = build_schema(Some(deps.clone()), &limits);
    let state = AppState {
        deps,
        schema,
        metrics: Arc::new(Metrics::default()),
        redis,
        trust_forwarded_for: args.login.trust_forwarded_for,
    };
    let router = Router::new()
        .route("/graphql", get(graphiql).post(graphql))
        .route("/graphql/ws", get(websocket))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .with_state(state.clone());
    Ok((router, state))
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

async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(request).await;
    state.metrics.record(
        &method,
        &path,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

async fn graphiql() -> Html<String> {
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql/ws")
            .title("PRIMA Partner API")
            .finish(),
    )
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

fn bearer(headers: &HeaderMap) -> Option<Result<&str, Error>> {
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

async fn graphql(
    State(state): State<AppState>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    request: GraphQLRequest<BadRequest>,
) -> GraphQLResponse {
    let outcome = match bearer(&headers) {
        None => Ok(None),
        Some(Err(err)) => Err(err),
        Some(Ok(token)) => caller_from(&state, Some(token)).await,
    };
    let (caller, loader) = request_data(&state.deps, outcome);
    let mut request = request.into_inner().data(caller).data(client_info(
        &headers,
        peer,
        state.trust_forwarded_for,
    ));
    if let Some(loader) = loader {
        request = request.data(loader);
    }
    let mut response = state.schema.execute(request).await;
    label_request_errors(&mut response);
    response.into()
}

/// Where a request came from, recorded on the bookings it makes (for fraud review) and the
/// address login throttling counts by: the connection's peer address or, with
/// `trust_forwarded_for`, the first `X-Forwarded-For` address (the client, as a proxy in front
/// of us saw it). Trusting that header needs such a proxy, one that sets it itself: without
/// one, any client can name any address. `User-Agent` and `Referer` are informational only
/// (a client can send anything), so nothing decides on them.
fn client_info(
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
/// `GRAPHQL_VALIDATION_FAILED`, so clients can rely on a code on every error.
fn label_request_errors(response: &mut async_graphql::Response) {
    for error in &mut response.errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", "GRAPHQL_VALIDATION_FAILED");
        }
    }
}

/// The prefix of a `connection_init` refusal, turned into close code 4401 (Unauthorized).
const UNAUTHORIZED: &str = "Unauthorized: ";

async fn websocket(
    State(state): State<AppState>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    // The sub-protocol the client offers first among those we speak (graphql-transport-ws
    // or the legacy graphql-ws), as the upgrade will select it.
    let protocol = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .find_map(|name| name.trim().parse::<WebSocketProtocols>().ok())
        .unwrap_or(WebSocketProtocols::GraphQLWS);
    upgrade
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        // Client messages are small (init, subscribe, complete, pong). The default 128 KiB
        // read buffer is zero-filled on every read, so it is all resident: 4 KiB cut a
        // subscriber from about 150 KiB to 24 KiB in bench/subscribers (larger messages
        // still arrive; the buffer grows for them).
        .read_buffer_size(4 * 1024)
        .on_upgrade(move |socket| serve_socket(state, protocol, socket))
}

/// Runs graphql-transport-ws on an upgraded socket. The caller authenticates in
/// `connection_init` (`{"authorization": "Bearer <token>"}`); a missing, bad or expired
/// token, or a suspended user, closes the socket with 4401 and the reason. Subscriptions
/// then check access per event and re-check the caller every few seconds
/// (`prima_service::events::feed`).
async fn serve_socket(
    state: AppState,
    protocol: WebSocketProtocols,
    socket: axum::extract::ws::WebSocket,
) {
    use axum::extract::ws::{CloseFrame, Message};
    use futures::{SinkExt, StreamExt, future};

    let (mut sink, stream) = socket.split();
    let input = stream
        .take_while(|message| future::ready(message.is_ok()))
        .filter_map(|message| {
            future::ready(match message {
                Ok(Message::Text(text)) => Some(text.as_bytes().to_vec()),
                Ok(Message::Binary(bytes)) => Some(bytes.to_vec()),
                _ => None,
            })
        });
    let init_state = state.clone();
    let executor = PerOperationAuth {
        state: state.clone(),
    };
    let messages = async_graphql::http::WebSocket::new(executor, input, protocol)
        .on_connection_init(move |payload| async move {
            let Some(token) = token_in_init(&payload) else {
                return Err(async_graphql::Error::new(format!(
                    "{UNAUTHORIZED}send {{\"authorization\": \"Bearer <token>\"}} in connection_init"
                )));
            };
            if let Err(err) = caller_from(&init_state, Some(&token)).await {
                return Err(async_graphql::Error::new(format!("{UNAUTHORIZED}{err}")));
            }
            let mut data = Data::default();
            data.insert(SocketToken(token));
            Ok(data)
        })
        .map(|message| match message {
            async_graphql::http::WsMessage::Text(text) => Message::Text(text.into()),
            async_graphql::http::WsMessage::Close(code, reason) => {
                let code = if reason.starts_with(UNAUTHORIZED) {
                    4401
                } else {
                    code
                };
                Message::Close(Some(CloseFrame {
                    code,
                    reason: reason.into(),
                }))
            }
        });
    futures::pin_mut!(messages);
    while let Some(message) = messages.next().await {
        if sink.send(message).await.is_err() {
            break;
        }
    }
}

/// The token a WebSocket connection authenticated with in `connection_init`.
struct SocketToken(String);

/// Runs every operation of a WebSocket connection (query, mutation or subscription) with
/// the caller as the database has them when the operation starts, and a dataloader of its
/// own: the token is checked again and the user and venue access reloaded, so a user
/// suspended or a venue revoked after `connection_init` is refused on the next operation,
/// exactly as over HTTP (running subscriptions are re-checked by their feeds).
#[derive(Clone)]
struct PerOperationAuth {
    state: AppState,
}

impl async_graphql::Executor for PerOperationAuth {
    fn execute(
        &self,
        request: async_graphql::Request,
    ) -> impl std::future::Future<Output = async_graphql::Response> + Send {
        let schema = self.state.schema.clone();
        async move { schema.execute(request).await }
    }

    fn execute_stream(
        &self,
        request: async_graphql::Request,
        session: Option<Arc<Data>>,
    ) -> futures::stream::BoxStream<'static, async_graphql::Response> {
        use futures::StreamExt;
        let state = self.state.clone();
        futures::stream::once(async move {
            let token = session
                .as_ref()
                .and_then(|data| data.get(&std::any::TypeId::of::<SocketToken>()))
                .and_then(|token| token.downcast_ref::<SocketToken>())
                .map(|token| token.0.clone());
            let outcome = caller_from(&state, token.as_deref()).await;
            let (caller, loader) = request_data(&state.deps, outcome);
            let mut request = request.data(caller);
            if let Some(loader) = loader {
                request = request.data(loader);
            }
            state
                .schema
                .execute_stream_with_session_data(request, session.unwrap_or_default())
        })
        .flatten()
        .boxed()
    }
}

/// The token of a `connection_init` payload: `{"authorization": "Bearer <t>"}` (any case)
/// or `{"token": "<t>"}`.
fn token_in_init(payload: &serde_json::Value) -> Option<String> {
    let object = payload.as_object()?;
    for (key, value) in object {
        let Some(text) = value.as_str() else { continue };
        if key.eq_ignore_ascii_case("authorization") {
            return Some(
                text.strip_prefix("Bearer ")
                    .unwrap_or(text)
                    .trim()
                    .to_owned(),
            );
        }
        if key == "token" {
            return Some(text.trim().to_owned());
        }
    }
    None
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
        page.push_str(
            "# HELP prima_subscribers Live subscriptions (event feeds) on this replica.\n",
        );
        page.push_str("# TYPE prima_subscribers gauge\n");
        let _ = writeln!(page, "prima_subscribers {}", realtime.hub.subscribers());
        page.push_str(
            "# HELP prima_events_delivered Sequence number of the last event this replica delivered.\n",
        );
        page.push_str("# TYPE prima_events_delivered gauge\n");
        let _ = writeln!(page, "prima_events_delivered {}", realtime.hub.delivered());
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], page).into_response()
}

/// A request body that is not a GraphQL request, answered in GraphQL's error shape.
pub struct BadRequest(ParseRequestError);

impl From<ParseRequestError> for BadRequest {
    fn from(err: ParseRequestError) -> Self {
        BadRequest(err)
    }
}

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        let (status, message) = match self.0 {
            ParseRequestError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "the request body is too large".to_owned(),
            ),
            other => (
                StatusCode::BAD_REQUEST,
                format!("the request body is not a GraphQL request: {other}"),
            ),
        };
        let body = serde_json::json!({
            "errors": [{ "message": message, "extensions": { "code": "BAD_REQUEST" } }]
        });
        (status, Json(body)).into_response()
    }
}
