//! What a resolver takes from the request: the dependencies and the caller.

use std::sync::Arc;

use async_graphql::Context;
use prima_service::Error;
use prima_service::access::Actor;
use prima_service::auth::Tokens;
use prima_service::bookings::create::ClientInfo;
use prima_service::db::Db;

use crate::batch::Batcher;
use crate::error::{ApiError, Result};
use crate::loaders::Loaders;

/// Process-wide dependencies, put into the schema once.
#[derive(Debug, Clone)]
pub struct Deps {
    /// The database.
    pub db: Db,
    /// Token issuer and checker.
    pub tokens: Tokens,
    /// The replica's event hub, for subscriptions (absent only when exporting the schema).
    pub realtime: Option<RealTime>,
    /// The limiter store (rate limits, login throttle): in Redis when configured.
    pub limiter: prima_service::throttle::Store,
    /// The login throttle and the password hasher.
    pub login: Arc<prima_service::auth::LoginGuard>,
}

/// What subscriptions need: the replica's events and how feeds run.
#[derive(Clone)]
pub struct RealTime {
    /// The running relay, hub and listener.
    pub events: Arc<prima_service::events::Events>,
    /// The replica's event stream.
    pub hub: Arc<prima_service::events::hub::Hub>,
    /// How often a subscriber's access is re-checked.
    pub feed: prima_service::events::feed::FeedOptions,
    /// The leaderboards shared by their subscribers.
    pub boards: Arc<crate::boards::Boards>,
}

impl std::fmt::Debug for RealTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealTime")
            .field("subscribers", &self.hub.subscribers())
            .field("feed", &self.feed)
            .finish()
    }
}

/// The per-request caller: the authenticated actor, or why there is none (no token, or a
/// token that is bad, expired, or whose user was suspended).
#[derive(Debug, Clone)]
pub struct Caller(pub Result<Arc<Actor>, Error>);

/// The per-request loader (with what it loaded), built for the caller; run the request
/// with [`crate::batch::drive`] so that its loads are batched.
pub type RequestLoader = Arc<Batcher<Loaders>>;

/// The dependencies.
pub fn deps<'a>(ctx: &Context<'a>) -> &'a Deps {
    ctx.data_unchecked::<Deps>()
}

/// The authenticated caller, or UNAUTHENTICATED.
pub fn actor<'a>(ctx: &Context<'a>) -> Result<&'a Actor> {
    match ctx.data_opt::<Caller>().map(|caller| &caller.0) {
        Some(Ok(actor)) => Ok(actor),
        Some(Err(err)) => Err(ApiError(err.clone())),
        None => Err(not_logged_in()),
    }
}

/// Where the request came from (IP address, User-Agent, Referer), as the server put it in
/// the request data; empty when it did not (e.g. over WebSocket).
pub fn client_info(ctx: &Context<'_>) -> ClientInfo {
    ctx.data_opt::<ClientInfo>().cloned().unwrap_or_default()
}

/// The request's loader; only present for authenticated requests.
pub fn loader<'a>(ctx: &Context<'a>) -> Result<&'a RequestLoader> {
    actor(ctx)?;
    ctx.data_opt::<RequestLoader>().ok_or_else(|| {
        ApiError(Error::internal(anyhow::anyhow!(
            "the request has a caller but no dataloader"
        )))
    })
}

fn not_logged_in() -> ApiError {
    ApiError(Error::Unauthenticated(
        "log in first: send `Authorization: Bearer <token>` from the `login` mutation".into(),
    ))
}

/// Builds the request data from the outcome of authentication: the caller and, for an
/// authenticated caller, a dataloader bound to them.
pub fn request_data(
    deps: &Deps,
    outcome: Result<Option<Actor>, Error>,
) -> (Caller, Option<RequestLoader>) {
    match outcome {
        Err(err) => (Caller(Err(err)), None),
        Ok(None) => (Caller(Err(not_logged_in().0)), None),
        Ok(Some(actor)) => {
            let actor = Arc::new(actor);
            let loader = Batcher::new(Loaders {
                db: deps.db.clone(),
                actor: actor.clone(),
            });
            (Caller(Ok(actor)), Some(loader))
        }
    }
}
