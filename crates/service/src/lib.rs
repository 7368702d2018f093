//! The PRIMA domain: access control, venues, bookings, guests, promoters, commissions, the
//! ledger, payouts, incentives and events. It knows nothing of GraphQL or HTTP: if a rule
//! would still hold with a REST API in front, it lives here.
//!
//! Every public function takes the caller ([`access::Actor`]) and applies the caller's venue
//! access inside its SQL, so no path (top-level query, nested field, dataloader batch) can
//! return a row of a venue the caller cannot see.

pub mod access;
pub mod admin;
pub mod auth;
pub mod bookings;
pub mod check;
pub mod commissions;
pub mod db;
pub mod error;
pub mod events;
pub mod guests;
pub mod idempotency;
pub mod incentives;
pub mod ledger;
pub mod lifecycle;
pub mod money;
pub mod outbox;
pub mod paging;
pub mod payouts;
pub mod pricing;
pub mod promoters;
pub mod seed;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod throttle;
pub mod time;
pub mod users;
pub mod validate;
pub mod venues;

pub use error::{Error, Result};
