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
pub mod payouts;
pub mod pricing;
pub mod promoters;
pub mod scalars;
pub mod subscriptions;
pub mod users;
pub mod venues;

use async_graphql::{MergedObject, Schema};

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
);

/// The schema type the server mounts.
pub type AppSchema = Schema<Query, Mutation, subscriptions::Subscription>;

pub use limits::Limits;

/// Builds the schema. `deps` is `None` only for exporting the SDL.
pub fn build_schema(deps: Option<Deps>, limits: &Limits) -> AppSchema {
    let (extension, index) = limits::LimitsExtension::new(limits.clone());
    let mut builder = Schema::build(
        Query::default(),
        Mutation::default(),
        subscriptions::Subscription,
    )
    .limit_depth(limits.max_depth)
    .extension(extension);
    if !limits.introspection {
        builder = builder.disable_introspection();
    }
    if let Some(deps) = deps {
        builder = builder.data(deps);
    }
    let schema = builder.finish();
    // The limits walk the schema as it is served: its own SDL.
    let _ = index.set(limits::index::Index::from_sdl(&schema.sdl()));
    schema
}

/// The schema's SDL, as `schema.graphql` holds it.
pub fn sdl() -> String {
    build_schema(None, &Limits::default()).sdl()
}
