//! The PRIMA GraphQL schema. Resolvers are thin: they take the caller and the dataloader
//! from the context, call one service function, and convert types. No SQL, no business
//! rules and no permission checks live here; errors are converted once (`error`).
//!
//! One module per domain (`venues`, `bookings`, `guests`, `promoters`, `commissions`,
//! `ledger`, `payouts`, `incentives`, `users`), merged into one schema, plus the writes
//! (`admin`, `lifecycle` for bookings, `pricing` for quotes) and the live feeds
//! (`subscriptions`).

pub mod admin;
pub mod bookings;
pub mod commissions;
pub mod connection;
pub mod context;
pub mod error;
pub mod guests;
pub mod incentives;
pub mod ledger;
pub mod lifecycle;
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

/// Every mutation, merged.
#[derive(MergedObject, Default)]
pub struct Mutation(
    users::AuthMutation,
    admin::AdminMutation,
    lifecycle::BookingMutation,
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
