//! GraphQL over WebSocket on `/graphql/ws`: the `graphql-transport-ws` protocol of the
//! graphql-ws library (its PROTOCOL.md), which GraphiQL, Apollo Client and urql speak.
//!
//! Policy, message by message (every client byte is untrusted):
//!
//! - The upgrade must offer the `graphql-transport-ws` sub-protocol, else the socket is
//!   closed at once with 4406 (the legacy `graphql-ws` protocol of
//!   subscriptions-transport-ws is not spoken). Client messages and frames larger than
//!   `PRIMA_WS_MAX_MESSAGE_BYTES` close it with 1009.
//! - A message that is not a JSON object of one of the five client types with well-formed
//!   fields (`id` a non-empty string; `payload` an object, or absent where optional;
//!   `query` a string) closes it with 4400. So do messages of the legacy protocol
//!   (`start`, `stop`, `connection_terminate`) and the server's own types.
//! - `connection_init` must arrive within `PRIMA_WS_INIT_TIMEOUT_MS` (4408 otherwise) and
//!   carry the caller's token, `{"authorization": "Bearer <token>"}` (key in any case) or
//!   `{"token": "<token>"}`. A missing, bad or expired token, or a suspended user, closes
//!   the socket with 4403 Forbidden, as the protocol recommends for a refused connection
//!   (4401 is the protocol's code for `subscribe` before `connection_ack`; the graphql-ws
//!   client gives up on 4401 but retries on 4403, so a client whose token was refreshed
//!   reconnects). A second `connection_init` closes it with 4429.
//! - `subscribe` before `connection_ack` closes it with 4401; a `subscribe` whose id is
//!   held by an operation still running (of any type) closes it with 4409. Beyond
//!   `PRIMA_WS_MAX_SUBSCRIPTIONS_PER_SOCKET` operations on the socket, or
//!   `PRIMA_WS_MAX_SUBSCRIPTIONS_PER_USER` for the user over all of this replica's
//!   sockets, the `subscribe` is answered with an `error` message for its id whose error
//!   has `extensions.code` `LIMIT_EXCEEDED` and `extensions.limit` naming the setting; the
//!   socket and its other operations carry on. An operation counts from its `subscribe`
//!   until it completes: a subscription while it runs, a query or mutation until answered.
//! - Every operation (query, mutation or subscription) authenticates the token again and
//!   gets a dataloader of its own, so a user suspended or a venue revoked after
//!   `connection_init` is refused on the next operation exactly as over HTTP (running
//!   subscriptions are re-checked by their feeds). A request refused before it executes
//!   (syntax, validation, limits) is answered with `error` and its errors; one that
//!   executes gets `next` (errors of resolvers included) and then `complete`.
//! - `complete` from the client stops its operation at once and frees its id; nothing more
//!   is sent for it. Ids of no running operation are ignored.
//! - Keepalive: the server sends `ping` every `PRIMA_WS_KEEPALIVE_MS` and closes with 3008
//!   (timeout) a socket from which nothing arrived (no `pong`, no message, no WebSocket
//!   frame) for two whole intervals, that is two pings in a row unanswered. A client
//!   `ping` is answered with `pong` at once, with the ping's payload.
//!
//! - Identical live subscriptions of one user (same document, variables and access) share
//!   one execution ([`crate::fanout`]): each still authenticates and counts against the
//!   limits above, and receives exactly what an execution of its own would send from the
//!   moment it joined.
//!
//! The operations of one socket are multiplexed in one [`SelectAll`], which polls each
//! stream only when it is woken and in turn, so a busy subscription cannot starve the
//! others or the reading of client messages.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_graphql::{Data, ErrorExtensionValues, Request, Response, ServerError, Variables};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use axum::extract::{ConnectInfo, State, WebSocketUpgrade};
use axum::http::HeaderMap;
use futures::future::BoxFuture;
use futures::stream::{AbortHandle, BoxStream, SelectAll, SplitStream};
use futures::{FutureExt, SinkExt, Stream, StreamExt};
use prima_graphql::request_data;
use prima_service::Error;
use prima_service::access::Actor;
use prima_service::bookings::create::ClientInfo;
use prima_service::events::hub::Audience;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::time::{Instant, MissedTickBehavior};
use tracing::Instrument as _;
use uuid::Uuid;

use crate::app::{AppState, client_info, label_request_errors};
use crate::config::WsArgs;
use crate::fanout::{Fanout, Key, Shared};

/// The WebSocket sub-protocol spoken.
pub const PROTOCOL: &str = "graphql-transport-ws";

/// Close codes: the protocol's (4xxx), RFC 6455's 1009 and IANA's 3008 (timeout).
mod code {
    /// An invalid message.
    pub const BAD_REQUEST: u16 = 4400;
    /// An operation before `connection_ack`.
    pub const UNAUTHORIZED: u16 = 4401;
    /// `connection_init` refused.
    pub const FORBIDDEN: u16 = 4403;
    /// The upgrade did not offer `graphql-transport-ws`.
    pub const SUBPROTOCOL_NOT_ACCEPTABLE: u16 = 4406;
    /// No `connection_init` in time.
    pub const INIT_TIMEOUT: u16 = 4408;
    /// `subscribe` with the id of a running operation.
    pub const SUBSCRIBER_EXISTS: u16 = 4409;
    /// A second `connection_init`.
    pub const TOO_MANY_INITS: u16 = 4429;
    /// The server failed.
    pub const INTERNAL: u16 = 4500;
    /// A message larger than the limit.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// Nothing heard for two keepalive intervals.
    pub const KEEPALIVE_TIMEOUT: u16 = 3008;
}

/// The setting named in `extensions.limit` when a socket runs too many operations.
pub const PER_SOCKET_LIMIT: &str = "PRIMA_WS_MAX_SUBSCRIPTIONS_PER_SOCKET";
/// The setting named in `extensions.limit` when a user runs too many operations.
pub const PER_USER_LIMIT: &str = "PRIMA_WS_MAX_SUBSCRIPTIONS_PER_USER";

/// After the server's close frame, how long the client's reply is awaited (and, after an
/// oversized message the socket can no longer read, how long the socket stays open, so
/// the close frame is read before the unread bytes make the kernel reset the connection).
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The endpoint's settings, and how many operations each user runs on this replica's
/// sockets: one per replica, shared by its sockets (cheap to clone).
#[derive(Clone)]
pub struct Sockets {
    settings: Arc<Settings>,
    per_user: Arc<Mutex<HashMap<Uuid, usize>>>,
    /// The shared subscriptions running ([`crate::fanout`]).
    pub fanout: Arc<Fanout>,
}

#[derive(Debug)]
struct Settings {
    init_timeout: Duration,
    per_socket: usize,
    per_user: usize,
    max_message: usize,
    keepalive: Duration,
}

impl Sockets {
    /// The endpoint with these limits and no operation running.
    pub fn new(args: &WsArgs) -> Sockets {
        let size = |value: u64| usize::try_from(value).unwrap_or(usize::MAX).max(1);
        Sockets {
            settings: Arc::new(Settings {
                init_timeout: Duration::from_millis(args.init_timeout_ms.max(1)),
                per_socket: size(args.max_subscriptions_per_socket),
                per_user: size(args.max_subscriptions_per_user),
                max_message: size(args.max_message_bytes),
                keepalive: Duration::from_millis(args.keepalive_ms.max(1)),
            }),
            per_user: Arc::default(),
            fanout: Arc::default(),
        }
    }

    /// How many operations the user runs now over this replica's sockets.
    pub fn operations_of(&self, user: Uuid) -> usize {
        let per_user = self.per_user.lock().unwrap_or_else(PoisonError::into_inner);
        per_user.get(&user).copied().unwrap_or(0)
    }

    /// One more operation for the user, unless they run the most allowed already.
    fn reserve(&self, user: Uuid) -> Option<UserSlot> {
        let mut per_user = self.per_user.lock().unwrap_or_else(PoisonError::into_inner);
        let running = per_user.entry(user).or_insert(0);
        if *running >= self.settings.per_user {
            return None;
        }
        *running += 1;
        Some(UserSlot {
            per_user: self.per_user.clone(),
            user,
        })
    }
}

/// One operation counted against its user; uncounted when dropped.
struct UserSlot {
    per_user: Arc<Mutex<HashMap<Uuid, usize>>>,
    user: Uuid,
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        let mut per_user = self.per_user.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(running) = per_user.get_mut(&self.user) {
            *running = running.saturating_sub(1);
            if *running == 0 {
                per_user.remove(&self.user);
            }
        }
    }
}

/// `GET /graphql/ws`: upgrades to a WebSocket and serves graphql-transport-ws on it.
pub async fn websocket(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    id: Option<axum::Extension<tower_http::request_id::RequestId>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> axum::response::Response {
    let client = client_info(&headers, peer, state.trust_forwarded_for);
    let request_id: Option<Arc<str>> = id
        .and_then(|axum::Extension(id)| crate::app::id_text(&id))
        .map(Into::into);
    // The socket outlives its upgrade request's span: its own span names that request.
    let span = tracing::info_span!("socket", id = request_id.as_deref().unwrap_or_default());
    let max_message = state.ws.settings.max_message;
    let upgrade = upgrade
        .protocols([PROTOCOL])
        // Client messages are small (init, subscribe, complete, pong). The default 128 KiB
        // read buffer is zero-filled on every read, so it is all resident: 4 KiB cut a
        // subscriber from about 150 KiB to 24 KiB in bench/subscribers (larger messages
        // still arrive, up to the limit; the buffer grows for them).
        .read_buffer_size(4 * 1024)
        .max_message_size(max_message)
        .max_frame_size(max_message);
    let speaks_protocol = upgrade.selected_protocol().is_some();
    upgrade.on_upgrade(move |socket| {
        async move {
            if speaks_protocol {
                serve_socket(state, client, request_id, socket).await;
            } else {
                let (mut sink, incoming) = socket.split();
                let refusal = Close::new(
                    code::SUBPROTOCOL_NOT_ACCEPTABLE,
                    format!("Subprotocol not acceptable: offer {PROTOCOL}"),
                );
                close(&mut sink, incoming, refusal).await;
            }
        }
        .instrument(span)
    })
}

type Sink = futures::stream::SplitSink<WebSocket, Message>;

/// Why the server closes a socket: a close code and its reason.
#[derive(Debug, Clone, PartialEq)]
struct Close {
    code: u16,
    reason: String,
}

impl Close {
    fn new(code: u16, reason: impl Into<String>) -> Close {
        Close {
            code,
            reason: reason.into(),
        }
    }

    /// The close frame; its reason cut to the 123 bytes a close frame can carry.
    fn frame(&self) -> Message {
        let mut end = self.reason.len().min(123);
        while !self.reason.is_char_boundary(end) {
            end -= 1;
        }
        Message::Close(Some(CloseFrame {
            code: self.code,
            reason: self.reason[..end].into(),
        }))
    }
}

/// Sends the close frame, then waits (at most [`CLOSE_GRACE`]) for the client's reply.
async fn close(sink: &mut Sink, mut incoming: SplitStream<WebSocket>, close: Close) {
    if sink.send(close.frame()).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        while let Some(Ok(message)) = incoming.next().await {
            if matches!(message, Message::Close(_)) {
                return;
            }
        }
        if close.code == code::MESSAGE_TOO_BIG {
            // Nothing more can be read after an oversized message: give the client the
            // time to read the close frame before the socket goes.
            tokio::time::sleep(CLOSE_GRACE).await;
        }
    })
    .await;
}

/// Runs the protocol on an upgraded socket until either side closes it.
async fn serve_socket(
    state: AppState,
    client: ClientInfo,
    request_id: Option<Arc<str>>,
    socket: WebSocket,
) {
    let settings = state.ws.settings.clone();
    let (mut sink, mut incoming) = socket.split();
    let mut session = Session::new(state, client, request_id);
    let init_deadline = tokio::time::sleep(settings.init_timeout);
    tokio::pin!(init_deadline);
    let mut keepalive =
        tokio::time::interval_at(Instant::now() + settings.keepalive, settings.keepalive);
    keepalive.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // Whether anything arrived since the last tick, and for how many ticks in a row nothing did.
    let (mut heard, mut silent_ticks) = (true, 0u32);
    let mut outbox = Vec::new();

    let ending = loop {
        let step = tokio::select! {
            biased;
            () = &mut init_deadline, if matches!(session.phase, Phase::Waiting) => {
                Err(Close::new(code::INIT_TIMEOUT, "Connection initialisation timeout"))
            }
            outcome = authenticating(&mut session.auth) => session.authenticated(outcome, &mut outbox),
            frame = incoming.next() => match frame {
                // The client went away.
                None => break None,
                Some(Err(err)) if too_big(&err) => Err(Close::new(
                    code::MESSAGE_TOO_BIG,
                    format!("Message too big: at most {} bytes", settings.max_message),
                )),
                // A broken connection or framing: nothing more can be read.
                Some(Err(_)) => break None,
                Some(Ok(message)) => {
                    heard = true;
                    match message {
                        Message::Text(text) => session.receive(text.as_bytes(), &mut outbox),
                        Message::Binary(bytes) => session.receive(&bytes, &mut outbox),
                        // WebSocket pings are answered by tungstenite; both show the
                        // client is there.
                        Message::Ping(_) | Message::Pong(_) => Ok(()),
                        // The client closes (tungstenite answers its close frame).
                        Message::Close(_) => break None,
                    }
                }
            },
            _ = keepalive.tick() => {
                silent_ticks = if heard { 0 } else { silent_ticks + 1 };
                heard = false;
                if silent_ticks >= 2 {
                    Err(Close::new(
                        code::KEEPALIVE_TIMEOUT,
                        format!(
                            "Keepalive timeout: nothing received for {} ms",
                            (settings.keepalive * 2).as_millis()
                        ),
                    ))
                } else {
                    push(&mut outbox, &ServerMessage::Ping {})
                }
            }
            Some(event) = session.streams.next(), if !session.streams.is_empty() => {
                session.event(event, &mut outbox)
            }
        };
        if sink_all(&mut sink, &mut outbox).await.is_err() {
            break None;
        }
        if let Err(close) = step {
            break Some(close);
        }
    };
    // Operations end (their feeds and user slots go) before the closing handshake.
    drop(session);
    match ending {
        Some(ending) => close(&mut sink, incoming, ending).await,
        None => {
            let _ = tokio::time::timeout(CLOSE_GRACE, sink.close()).await;
        }
    }
}

/// Sends what the last step queued.
async fn sink_all(sink: &mut Sink, outbox: &mut Vec<Message>) -> Result<(), axum::Error> {
    if outbox.is_empty() {
        return Ok(());
    }
    for message in outbox.drain(..) {
        sink.feed(message).await?;
    }
    sink.flush().await
}

/// Whether a read failed on a message or frame over the size limit. axum wraps
/// tungstenite's error without naming its type, so its text is what tells (the test
/// `a_message_over_the_size_limit_closes_the_socket_with_1009` notices if a new version
/// words it otherwise).
fn too_big(err: &axum::Error) -> bool {
    err.to_string().contains("Message too long")
}

/// The outcome of the `connection_init` authentication under way; pending without one.
async fn authenticating(
    auth: &mut Option<BoxFuture<'static, Result<Actor, Error>>>,
) -> Result<Actor, Error> {
    match auth {
        Some(outcome) => {
            let outcome = outcome.await;
            *auth = None;
            outcome
        }
        None => std::future::pending().await,
    }
}

/// Where a socket is in the protocol.
enum Phase {
    /// No `connection_init` yet.
    Waiting,
    /// `connection_init` arrived; its token is being checked.
    Authenticating { token: Arc<str> },
    /// `connection_ack` sent: operations may run.
    Ready { token: Arc<str>, user: Uuid },
}

/// A running operation of the socket.
struct Operation {
    /// Tells this operation's events from those of an earlier one with the same id.
    serial: u64,
    abort: AbortHandle,
    _slot: UserSlot,
}

impl Drop for Operation {
    fn drop(&mut self) {
        self.abort.abort();
    }
}

/// What an operation's stream produces.
enum OpEvent {
    /// A result (`next`).
    Next(Response),
    /// Refused before execution (`error`); the operation is over.
    Refused(Vec<ServerError>),
    /// What a shared subscription's source sent (already serialized).
    Shared(Shared),
    /// The stream ended (`complete`).
    Done,
}

/// An operation's event with the operation it belongs to.
struct Tagged {
    id: Arc<str>,
    serial: u64,
    event: OpEvent,
}

/// The protocol state of one socket.
struct Session {
    state: AppState,
    client: ClientInfo,
    /// The upgrade request's id, which every error sent on the socket names
    /// (`extensions.requestId`), as the socket's log lines do.
    request_id: Option<Arc<str>>,
    /// Session data shared by the socket's operations (async-graphql's, for subscriptions).
    data: Arc<Data>,
    phase: Phase,
    auth: Option<BoxFuture<'static, Result<Actor, Error>>>,
    operations: HashMap<Arc<str>, Operation>,
    streams: SelectAll<BoxStream<'static, Tagged>>,
    serial: u64,
}

impl Session {
    fn new(state: AppState, client: ClientInfo, request_id: Option<Arc<str>>) -> Session {
        Session {
            state,
            client,
            request_id,
            data: Arc::new(Data::default()),
            phase: Phase::Waiting,
            auth: None,
            operations: HashMap::new(),
            streams: SelectAll::new(),
            serial: 0,
        }
    }

    /// Handles one client message.
    fn receive(&mut self, bytes: &[u8], out: &mut Vec<Message>) -> Result<(), Close> {
        let message = ClientMessage::parse(bytes)?;
        match message {
            ClientMessage::ConnectionInit { payload } => self.init(payload.unwrap_or_default()),
            ClientMessage::Ping { payload } => push(out, &ServerMessage::Pong { payload }),
            ClientMessage::Pong { .. } => Ok(()),
            ClientMessage::Subscribe { id, payload } => self.subscribe(id, payload, out),
            ClientMessage::Complete { id } => {
                // Dropping it aborts its stream: nothing more is sent for it.
                self.operations.remove(id.as_str());
                Ok(())
            }
        }
    }

    fn init(&mut self, payload: Map<String, Value>) -> Result<(), Close> {
        if !matches!(self.phase, Phase::Waiting) {
            return Err(Close::new(
                code::TOO_MANY_INITS,
                "Too many initialisation requests",
            ));
        }
        let Some(token) = token_in_init(&payload) else {
            return Err(Close::new(
                code::FORBIDDEN,
                r#"Forbidden: send {"authorization": "Bearer <token>"} in connection_init"#,
            ));
        };
        let token: Arc<str> = token.into();
        let state = self.state.clone();
        let checked = token.clone();
        self.auth = Some(
            async move {
                prima_service::auth::authenticate(&state.deps.db.conn, &state.deps.tokens, &checked)
                    .await
            }
            .boxed(),
        );
        self.phase = Phase::Authenticating { token };
        Ok(())
    }

    /// Acknowledges the connection, or refuses it.
    fn authenticated(
        &mut self,
        outcome: Result<Actor, Error>,
        out: &mut Vec<Message>,
    ) -> Result<(), Close> {
        let Phase::Authenticating { token } = &self.phase else {
            return Ok(());
        };
        match outcome {
            Ok(actor) => {
                let token = token.clone();
                self.phase = Phase::Ready {
                    token,
                    user: actor.user_id,
                };
                push(out, &ServerMessage::ConnectionAck {})
            }
            Err(Error::Internal(err)) => {
                tracing::error!(error = ?err, "authenticating a WebSocket connection");
                Err(Close::new(code::INTERNAL, "Internal server error"))
            }
            Err(err) => Err(Close::new(code::FORBIDDEN, format!("Forbidden: {err}"))),
        }
    }

    /// Starts an operation, or refuses it.
    fn subscribe(
        &mut self,
        id: String,
        payload: SubscribePayload,
        out: &mut Vec<Message>,
    ) -> Result<(), Close> {
        let Phase::Ready { token, user } = &self.phase else {
            return Err(Close::new(code::UNAUTHORIZED, "Unauthorized"));
        };
        if self.operations.contains_key(id.as_str()) {
            return Err(Close::new(
                code::SUBSCRIBER_EXISTS,
                format!("Subscriber for {id} already exists"),
            ));
        }
        let sockets = &self.state.ws;
        if self.operations.len() >= sockets.settings.per_socket {
            let max = sockets.settings.per_socket;
            let mut error = limit_exceeded(
                format!(
                    "at most {max} operations may run at once on one WebSocket; complete one first"
                ),
                PER_SOCKET_LIMIT,
                max,
            );
            name_request(std::slice::from_mut(&mut error), self.request_id.as_deref());
            return push(
                out,
                &ServerMessage::Error {
                    id: &id,
                    payload: &[error],
                },
            );
        }
        let Some(slot) = sockets.reserve(*user) else {
            let max = sockets.settings.per_user;
            let mut error = limit_exceeded(
                format!("at most {max} operations of one user may run at once; complete one first"),
                PER_USER_LIMIT,
                max,
            );
            name_request(std::slice::from_mut(&mut error), self.request_id.as_deref());
            return push(
                out,
                &ServerMessage::Error {
                    id: &id,
                    payload: &[error],
                },
            );
        };
        let request = payload.into_request();
        let events = operation_events(
            self.state.clone(),
            token.clone(),
            self.client.clone(),
            self.data.clone(),
            request,
        );
        let (events, abort) = futures::stream::abortable(events);
        self.serial += 1;
        let serial = self.serial;
        let id: Arc<str> = id.into();
        let tagged = id.clone();
        self.streams.push(
            events
                .map(move |event| Tagged {
                    id: tagged.clone(),
                    serial,
                    event,
                })
                .boxed(),
        );
        self.operations.insert(
            id,
            Operation {
                serial,
                abort,
                _slot: slot,
            },
        );
        Ok(())
    }

    /// Sends an operation's event, unless the operation was completed by the client.
    fn event(&mut self, tagged: Tagged, out: &mut Vec<Message>) -> Result<(), Close> {
        let Tagged { id, serial, event } = tagged;
        let current = self
            .operations
            .get(&id)
            .is_some_and(|operation| operation.serial == serial);
        if !current {
            return Ok(());
        }
        let request_id = self.request_id.as_deref();
        match event {
            OpEvent::Next(mut response) => {
                name_request(&mut response.errors, request_id);
                push(
                    out,
                    &ServerMessage::Next {
                        id: &id,
                        payload: &response,
                    },
                )
            }
            OpEvent::Refused(mut errors) => {
                // The id is free again before the client hears of it.
                self.operations.remove(&id);
                name_request(&mut errors, request_id);
                push(
                    out,
                    &ServerMessage::Error {
                        id: &id,
                        payload: &errors,
                    },
                )
            }
            OpEvent::Shared(Shared::Next(payload)) => {
                let payload = name_request_in(&payload, request_id, Some("errors"));
                out.push(Message::Text(raw("next", &id, &payload).into()));
                Ok(())
            }
            OpEvent::Shared(Shared::Refused(payload)) => {
                self.operations.remove(&id);
                let payload = name_request_in(&payload, request_id, None);
                out.push(Message::Text(raw("error", &id, &payload).into()));
                Ok(())
            }
            OpEvent::Done | OpEvent::Shared(Shared::Done) => {
                self.operations.remove(&id);
                push(out, &ServerMessage::Complete { id: &id })
            }
        }
    }
}

/// Sets `extensions.requestId` of each error to the socket's upgrade request id.
fn name_request(errors: &mut [ServerError], request_id: Option<&str>) {
    let Some(id) = request_id else { return };
    for error in errors {
        error
            .extensions
            .get_or_insert_with(Default::default)
            .set("requestId", id);
    }
}

/// A shared subscription's payload (serialized once for all its subscribers) with its
/// errors (the array at field `errors_at`, or the payload itself when `None`) naming this
/// socket's request. A payload without `"errors":[` is passed on unparsed, the common
/// case: inside a JSON string a quote is escaped, so that text only appears as a key.
/// (A data alias named `errors` also matches; it is parsed and passed on unchanged.)
fn name_request_in<'a>(
    payload: &'a str,
    request_id: Option<&str>,
    errors_at: Option<&str>,
) -> std::borrow::Cow<'a, str> {
    let Some(id) = request_id else {
        return payload.into();
    };
    if !payload.starts_with('[') && !payload.contains("\"errors\":[") {
        return payload.into();
    }
    let Ok(mut value) = serde_json::from_str::<Value>(payload) else {
        return payload.into();
    };
    let errors = match errors_at {
        Some(key) => value.get_mut(key),
        None => Some(&mut value),
    };
    let Some(Value::Array(errors)) = errors else {
        return payload.into();
    };
    for error in errors {
        if let Some(error) = error.as_object_mut() {
            let extensions = error
                .entry("extensions")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(extensions) = extensions.as_object_mut() {
                extensions.insert("requestId".into(), id.into());
            }
        }
    }
    serde_json::to_string(&value).map_or(payload.into(), Into::into)
}

/// A `next` or `error` message around a payload serialized once for every subscriber of a
/// shared subscription.
fn raw(kind: &str, id: &str, payload: &str) -> String {
    let id = serde_json::to_string(id).unwrap_or_else(|_| "\"\"".to_owned());
    format!(r#"{{"type":"{kind}","id":{id},"payload":{payload}}}"#)
}

/// An operation's events: the caller authenticated afresh with the socket's token, then
/// either a share of an identical running subscription ([`crate::fanout`]) or an execution
/// of its own, with a dataloader of its own; its responses; `complete` when they end.
fn operation_events(
    state: AppState,
    token: Arc<str>,
    client: ClientInfo,
    data: Arc<Data>,
    request: Request,
) -> impl Stream<Item = OpEvent> + Send + 'static {
    futures::stream::once(async move {
        // A persisted document by its hash, or (with trusted documents) a refusal.
        let mut request = request;
        if let Err(err) = state.persisted.resolve(&mut request).await {
            return futures::stream::once(async move { OpEvent::Refused(vec![err]) }).boxed();
        }
        let outcome =
            prima_service::auth::authenticate(&state.deps.db.conn, &state.deps.tokens, &token)
                .await;
        if let Ok(actor) = &outcome
            && let Some(key) = Key::of(actor, &request)
        {
            let fanout = state.ws.fanout.clone();
            let actor = actor.clone();
            let start = move |audience: Audience| {
                // The source's session is its own: it outlives the socket that started it.
                execution(
                    state,
                    Ok(actor),
                    client,
                    Arc::default(),
                    request.data(audience),
                )
                .map(shared)
            };
            return fanout.join(key, start).map(OpEvent::Shared).boxed();
        }
        execution(state, outcome, client, data, request).boxed()
    })
    .flatten()
}

/// An operation run for one caller: its responses, then [`OpEvent::Done`].
fn execution(
    state: AppState,
    outcome: Result<Actor, Error>,
    client: ClientInfo,
    data: Arc<Data>,
    request: Request,
) -> impl Stream<Item = OpEvent> + Send + 'static {
    let (caller, loader) = request_data(&state.deps, outcome.map(Some));
    let rate_key = prima_graphql::limits::rate_key(caller.0.as_deref().ok(), &client);
    let request = request.data(caller).data(client);
    let responses = match loader {
        Some(loader) => {
            let responses =
                state
                    .schema
                    .execute_stream(request.data(loader.clone()), data, rate_key);
            prima_graphql::batch::drive_stream(loader, responses).boxed()
        }
        None => state.schema.execute_stream(request, data, rate_key),
    };
    futures::stream::unfold(Some((responses, true)), |next| async move {
        let (mut responses, first) = next?;
        Some(match responses.next().await {
            None => (OpEvent::Done, None),
            Some(mut response) => {
                // A shared execution serves many sockets: each socket names its own
                // upgrade request in the errors it sends (Session::event).
                label_request_errors(&mut response, None);
                if first && refused_before_execution(&response) {
                    (OpEvent::Refused(response.errors), None)
                } else {
                    (OpEvent::Next(response), Some((responses, false)))
                }
            }
        })
    })
}

/// An event of a shared subscription's source, serialized for all its subscribers.
fn shared(event: OpEvent) -> Shared {
    let serialized = match &event {
        OpEvent::Next(response) => serde_json::to_string(response).map(|s| Shared::Next(s.into())),
        OpEvent::Refused(errors) => {
            serde_json::to_string(errors).map(|s| Shared::Refused(s.into()))
        }
        OpEvent::Shared(shared) => Ok(shared.clone()),
        OpEvent::Done => Ok(Shared::Done),
    };
    serialized.unwrap_or_else(|err| {
        tracing::error!(error = %err, "serialising a shared subscription's response");
        Shared::Done
    })
}

/// Whether a first response is a refusal before execution: parsing, validation and the
/// limits checked before execution fail with errors of no path and no data, while every
/// error of a resolver (or of its arguments) carries the field's path.
fn refused_before_execution(response: &Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|error| error.path.is_empty())
}

/// A LIMIT_EXCEEDED error naming the setting.
fn limit_exceeded(message: String, limit: &str, max: usize) -> ServerError {
    let mut error = ServerError::new(message, None);
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", "LIMIT_EXCEEDED");
    extensions.set("limit", limit);
    extensions.set("max", max as u64);
    error.extensions = Some(extensions);
    error
}

/// Queues a server message.
fn push(out: &mut Vec<Message>, message: &ServerMessage<'_>) -> Result<(), Close> {
    match serde_json::to_string(message) {
        Ok(text) => {
            out.push(Message::Text(text.into()));
            Ok(())
        }
        Err(err) => {
            tracing::error!(error = %err, "serialising a WebSocket message");
            Err(Close::new(code::INTERNAL, "Internal server error"))
        }
    }
}

/// A message from the client: the five types of graphql-transport-ws, fields checked.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    ConnectionInit {
        #[serde(default)]
        payload: Option<Map<String, Value>>,
    },
    Ping {
        #[serde(default)]
        payload: Option<Map<String, Value>>,
    },
    Pong {
        #[serde(default)]
        #[allow(dead_code)]
        payload: Option<Map<String, Value>>,
    },
    Subscribe {
        id: String,
        payload: SubscribePayload,
    },
    Complete {
        id: String,
    },
}

/// The request of a `subscribe` message.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscribePayload {
    query: String,
    #[serde(default)]
    operation_name: Option<String>,
    #[serde(default)]
    variables: Option<Map<String, Value>>,
    #[serde(default)]
    extensions: Option<Map<String, Value>>,
}

impl SubscribePayload {
    fn into_request(self) -> Request {
        let mut request = Request::new(self.query);
        if let Some(name) = self.operation_name {
            request = request.operation_name(name);
        }
        if let Some(variables) = self.variables {
            request = request.variables(Variables::from_json(Value::Object(variables)));
        }
        for (name, value) in self.extensions.unwrap_or_default() {
            if let Ok(value) = async_graphql::Value::from_json(value) {
                request.extensions.insert(name, value);
            }
        }
        request
    }
}

impl ClientMessage {
    /// The message, or the 4400 close it earns.
    fn parse(bytes: &[u8]) -> Result<ClientMessage, Close> {
        let invalid =
            |why: String| Close::new(code::BAD_REQUEST, format!("Invalid message: {why}"));
        // An object first: serde would also take `["connection_init"]` for a tagged enum.
        let object: Map<String, Value> =
            serde_json::from_slice(bytes).map_err(|err| invalid(err.to_string()))?;
        let message = ClientMessage::deserialize(Value::Object(object))
            .map_err(|err| invalid(err.to_string()))?;
        match &message {
            ClientMessage::Subscribe { id, .. } | ClientMessage::Complete { id }
                if id.is_empty() =>
            {
                Err(invalid("\"id\" is empty".to_owned()))
            }
            _ => Ok(message),
        }
    }
}

/// A message from the server.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ServerMessage<'a> {
    ConnectionAck {},
    Ping {},
    Pong {
        #[serde(skip_serializing_if = "Option::is_none")]
        payload: Option<Map<String, Value>>,
    },
    Next {
        id: &'a str,
        payload: &'a Response,
    },
    Error {
        id: &'a str,
        payload: &'a [ServerError],
    },
    Complete {
        id: &'a str,
    },
}

/// The token of a `connection_init` payload: `{"authorization": "Bearer <t>"}` (key and
/// scheme in any case) or `{"token": "<t>"}`.
fn token_in_init(payload: &Map<String, Value>) -> Option<String> {
    for (key, value) in payload {
        let Some(text) = value.as_str() else { continue };
        if key.eq_ignore_ascii_case("authorization") {
            let text = text.trim();
            let token = match text.split_once(' ') {
                Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token,
                _ => text,
            };
            return Some(token.trim().to_owned());
        }
        if key == "token" {
            return Some(text.trim().to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use serde_json::json;

    fn parse(value: Value) -> Result<ClientMessage, Close> {
        ClientMessage::parse(value.to_string().as_bytes())
    }

    #[test]
    fn the_five_client_messages_parse() {
        assert!(matches!(
            parse(json!({ "type": "connection_init" })),
            Ok(ClientMessage::ConnectionInit { payload: None })
        ));
        assert!(matches!(
            parse(json!({ "type": "connection_init", "payload": null })),
            Ok(ClientMessage::ConnectionInit { payload: None })
        ));
        assert!(matches!(
            parse(json!({ "type": "ping", "payload": { "at": 1 } })),
            Ok(ClientMessage::Ping { payload: Some(_) })
        ));
        assert!(matches!(
            parse(json!({ "type": "pong" })),
            Ok(ClientMessage::Pong { .. })
        ));
        assert!(matches!(
            parse(json!({ "type": "complete", "id": "a" })),
            Ok(ClientMessage::Complete { .. })
        ));
        let Ok(ClientMessage::Subscribe { id, payload }) = parse(json!({
            "type": "subscribe", "id": "1",
            "payload": { "query": "{ me { user { id } } }", "operationName": null,
                         "variables": { "a": [1] }, "extensions": {} },
        })) else {
            panic!("a subscribe message");
        };
        assert_eq!(id, "1");
        let request = payload.into_request();
        assert_eq!(request.query, "{ me { user { id } } }");
        assert_eq!(request.operation_name, None);
    }

    #[test]
    fn malformed_and_foreign_messages_earn_4400() {
        let cases = [
            json!("connection_init"),
            json!([]),
            json!({}),
            json!({ "type": 1 }),
            json!({ "type": "start", "id": "1", "payload": { "query": "{ __typename }" } }),
            json!({ "type": "stop", "id": "1" }),
            json!({ "type": "connection_terminate" }),
            json!({ "type": "connection_ack" }),
            json!({ "type": "next", "id": "1", "payload": {} }),
            json!({ "type": "connection_init", "payload": "token" }),
            json!({ "type": "ping", "payload": [1] }),
            json!({ "type": "subscribe", "payload": { "query": "{ __typename }" } }),
            json!({ "type": "subscribe", "id": "", "payload": { "query": "{ __typename }" } }),
            json!({ "type": "subscribe", "id": 1, "payload": { "query": "{ __typename }" } }),
            json!({ "type": "subscribe", "id": "1" }),
            json!({ "type": "subscribe", "id": "1", "payload": { "query": 1 } }),
            json!({ "type": "subscribe", "id": "1", "payload": {} }),
            json!({ "type": "subscribe", "id": "1",
                    "payload": { "query": "{ __typename }", "variables": [] } }),
            json!({ "type": "complete" }),
            json!({ "type": "complete", "id": "" }),
        ];
        for case in cases {
            let closed = parse(case.clone()).expect_err(&case.to_string());
            assert_eq!(closed.code, code::BAD_REQUEST, "{case}");
            assert!(closed.reason.starts_with("Invalid message: "), "{case}");
        }
        let closed = ClientMessage::parse(b"{\"type\": \"ping\"").expect_err("not JSON");
        assert_eq!(closed.code, code::BAD_REQUEST);
    }

    #[test]
    fn the_token_comes_from_authorization_in_any_case_or_from_token() {
        let token = |payload: Value| token_in_init(payload.as_object().expect("an object"));
        assert_eq!(
            token(json!({ "authorization": "Bearer abc" })).as_deref(),
            Some("abc")
        );
        assert_eq!(
            token(json!({ "Authorization": "bearer  abc " })).as_deref(),
            Some("abc")
        );
        assert_eq!(
            token(json!({ "AUTHORIZATION": "abc" })).as_deref(),
            Some("abc")
        );
        assert_eq!(token(json!({ "token": " abc" })).as_deref(), Some("abc"));
        assert_eq!(token(json!({ "authorization": 1 })), None);
        assert_eq!(token(json!({})), None);
    }

    #[test]
    fn a_close_reason_fits_a_close_frame() {
        let close = Close::new(
            code::SUBSCRIBER_EXISTS,
            format!("Subscriber for {} already exists", "é".repeat(200)),
        );
        let Message::Close(Some(frame)) = close.frame() else {
            panic!("a close frame");
        };
        assert_eq!(frame.code, code::SUBSCRIBER_EXISTS);
        assert!(frame.reason.as_str().len() <= 123);
        assert!(frame.reason.as_str().starts_with("Subscriber for é"));
    }

    #[test]
    fn the_defaults_of_ws_args_are_those_of_the_command_line() {
        let cli = crate::config::Cli::try_parse_from(["prima", "serve"]).expect("parsing");
        let crate::config::Command::Serve(args) = cli.command else {
            panic!("serve");
        };
        let (parsed, default) = (args.ws, WsArgs::default());
        assert_eq!(parsed.init_timeout_ms, default.init_timeout_ms);
        assert_eq!(
            parsed.max_subscriptions_per_socket,
            default.max_subscriptions_per_socket
        );
        assert_eq!(
            parsed.max_subscriptions_per_user,
            default.max_subscriptions_per_user
        );
        assert_eq!(parsed.max_message_bytes, default.max_message_bytes);
        assert_eq!(parsed.keepalive_ms, default.keepalive_ms);
    }

    #[test]
    fn a_user_slot_is_given_back_when_dropped() {
        let sockets = Sockets::new(&WsArgs {
            max_subscriptions_per_user: 2,
            ..WsArgs::default()
        });
        let user = Uuid::new_v4();
        let first = sockets.reserve(user).expect("a first slot");
        let second = sockets.reserve(user).expect("a second slot");
        assert!(sockets.reserve(user).is_none());
        assert!(
            sockets.reserve(Uuid::new_v4()).is_some(),
            "another user's slots are theirs"
        );
        drop(first);
        assert_eq!(sockets.operations_of(user), 1);
        let _third = sockets.reserve(user).expect("a slot given back");
        drop(second);
        assert_eq!(sockets.operations_of(user), 1);
    }
}
