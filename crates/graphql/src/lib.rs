//! The PRIMA GraphQL schema. Resolvers are thin: they take the caller and the dataloader
//! from the context, call one service function, and convert types. No SQL, no business
//! rules and no permission checks live here; errors are converted once (`error`).
//!
//! One module per domain, named as in `prima_service`, each holding that domain's types,
//! its `XQuery` and, where it has writes, its `XMutation` with their inputs and payloads
//! (in the domain folder's `mutation.rs`): `venues`, `access` (venue roles, granted and
//! revoked), `guests`, `promoters`, `commissions`, `bookings`, `ledger`, `payouts`,
//! `incentives`, `pricing` (quotes) and `users` (login, `me`). They are merged once, below;
//! the live feeds are in `subscriptions`, the Relay connection plumbing in `connection`.

pub mod access;
pub mod batch;
pub mod boards;
pub mod bookings;
pub mod commissions;
pub mod connection;
pub mod context;
pub mod error;
pub mod guests;
pub mod incentives;
pub mod ledger;
pub mod limits;
pub mod loaders;
pub mod node;
pub mod order;
pub mod payouts;
pub mod pricing;
pub mod promoters;
pub mod scalars;
pub mod subscriptions;
pub mod users;
pub mod venues;

use std::sync::Arc;

use async_graphql::{MergedObject, Request, Response, Schema};
use futures::StreamExt;
use futures::stream::BoxStream;

pub use context::{Caller, Deps, RealTime, RequestLoader, request_data};

/// Every query, merged.
#[derive(MergedObject, Default)]
pub struct Query(
    users::UserQuery,
    venues::VenueQuery,
    bookings::BookingQueryRoot,
    guests::GuestQuery,
    promoters::PromoterQuery,
    payouts::PayoutQuery,
    incentives::IncentiveQuery,
    pricing::PricingQuery,
    node::NodeQuery,
);

// The order of the parts is the order of the fields in the SDL (`schema.graphql`).
/// Every mutation, merged.
#[derive(MergedObject, Default)]
pub struct Mutation(
    users::AuthMutation,
    venues::mutation::VenueMutation,
    access::AccessMutation,
    guests::mutation::GuestMutation,
    promoters::mutation::PromoterMutation,
    commissions::mutation::CommissionMutation,
    bookings::mutation::BookingMutation,
    payouts::mutation::PayoutMutation,
    incentives::mutation::IncentiveMutation,
);

/// The schema type the server mounts.
pub type AppSchema = Schema<Query, Mutation, subscriptions::Subscription>;

pub use limits::Limits;

/// The schema and the limits every request passes before it runs: what the server executes.
#[derive(Clone)]
pub struct Api {
    /// The schema; private, so that every execution goes through the limits.
    schema: AppSchema,
    guard: Arc<limits::Guard>,
    limiter: Option<prima_service::throttle::Store>,
}

impl Api {
    /// The schema's SDL.
    pub fn sdl(&self) -> String {
        self.schema.sdl()
    }

    /// Runs a query or mutation, charged to `rate_key` ([`limits::rate_key`]).
    pub async fn execute(&self, request: Request, rate_key: &str) -> Response {
        self.execute_only(request, limits::Allowed::Any, rate_key)
            .await
    }

    /// Runs the request if its operation is `allowed` (a GET runs queries only; anything
    /// else is answered METHOD_NOT_ALLOWED without running), charged to `rate_key`.
    pub async fn execute_only(
        &self,
        mut request: Request,
        allowed: limits::Allowed,
        rate_key: &str,
    ) -> Response {
        let (admission, verdict) = self
            .guard
            .admit(&mut request, allowed, self.limiter.as_ref(), rate_key)
            .await;
        let mut response = match verdict {
            Ok(()) => {
                let plan = ordered(&mut request);
                let mut response = self.schema.execute(request).await;
                if let Some(plan) = plan {
                    plan.apply(&mut response.data);
                }
                response
            }
            Err(err) => Response::from_errors(vec![err]),
        };
        self.guard.report(&admission, &mut response);
        response
    }

    /// Runs any operation (a subscription's stream of answers), charged to `rate_key`; a
    /// refused request answers its error once.
    pub fn execute_stream(
        &self,
        mut request: Request,
        session_data: Arc<async_graphql::Data>,
        rate_key: String,
    ) -> BoxStream<'static, Response> {
        let api = self.clone();
        futures::stream::once(async move {
            let (_, verdict) = api
                .guard
                .admit(
                    &mut request,
                    limits::Allowed::Any,
                    api.limiter.as_ref(),
                    &rate_key,
                )
                .await;
            match verdict {
                Ok(()) => {
                    let plan = ordered(&mut request);
                    let responses = api
                        .schema
                        .execute_stream_with_session_data(request, session_data);
                    match plan {
                        Some(plan) => responses
                            .map(move |mut response| {
                                plan.apply(&mut response.data);
                                response
                            })
                            .boxed(),
                        None => responses,
                    }
                }
                Err(err) => {
                    futures::stream::once(async move { Response::from_errors(vec![err]) }).boxed()
                }
            }
        })
        .flatten()
        .boxed()
    }
}

/// The order the answer's fields must come in ([`order`]), from the document the limits
/// parsed.
fn ordered(request: &mut Request) -> Option<order::Plan> {
    let name = request.operation_name.clone();
    let document = request.parsed_query().ok()?;
    order::Plan::of(document, name.as_deref())
}

/// Builds the schema. `deps` is `None` only for exporting the SDL.
pub fn build_schema(deps: Option<Deps>, limits: &Limits) -> Api {
    let mut builder = Schema::build(
        Query::default(),
        Mutation::default(),
        subscriptions::Subscription,
    )
    .limit_depth(limits.max_depth);
    if !limits.introspection {
        builder = builder.disable_introspection();
    }
    let limiter = deps.as_ref().map(|deps| deps.limiter.clone());
    if let Some(deps) = deps {
        builder = builder.data(deps);
    }
    let schema = builder.finish();
    // The limits walk the schema as it is served: its own SDL.
    let index = limits::index::Index::from_sdl(&schema.sdl());
    Api {
        schema,
        guard: Arc::new(limits::Guard::new(limits.clone(), index)),
        limiter,
    }
}

/// The schema's SDL, as `schema.graphql` holds it.
pub fn sdl() -> String {
    build_schema(None, &Limits::default()).sdl()
}
