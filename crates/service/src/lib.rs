//! The PRIMA domain: access control, venues, bookings, guests, promoters, commissions, the
//! ledger, payouts, incentives and events. It knows nothing of GraphQL or HTTP: if a rule
//! would still hold with a REST API in front, it lives here.
//!
//! Every public function takes the caller ([`access::Actor`]) and applies the caller's venue
//! access inside its SQL, so no path (top-level query, nested field, dataloader batch) can
//! return a row of a venue the caller cannot see.
//!
//! # Writing
//!
//! Policy, the same for every write function (ARCHITECTURE.md "Writing"):
//!
//! 1. The input is validated first ([`validate`]); a bad value is [`Error::Invalid`] naming
//!    the camelCase input field, with a message a person can act on, and nothing is written.
//! 2. The caller's capability is checked with [`Actor::require`](access::Actor::require) at
//!    the venue the change belongs to: NOT_FOUND when the caller cannot see that venue (or
//!    the object), FORBIDDEN when their role there is too low (DOMAIN.md "Access").
//! 3. The change is one database transaction, with timestamps from [`time::now`]. State
//!    changes are conditional updates (`WHERE status = <expected>`), and changes that close
//!    one row and open another first lock their parent row, so two concurrent calls cannot
//!    both succeed or leave two open rows. Locks follow the global order of [`bookings`]
//!    (a venue before its pricing and grants, a promoter before its assignments), and the
//!    transaction runs again on a transient failure ([`db::retry_transient`]).
//! 4. The function returns the changed row(s), as the database holds them.

pub mod access;
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
pub mod money;
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
