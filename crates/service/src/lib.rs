//! The PRIMA domain: access control, venues, bookings, guests, promoters, commissions, the
//! ledger, payouts, incentives and events. It knows nothing of GraphQL or HTTP: if a rule
//! would still hold with a REST API in front, it lives here.
//!
//! Every public function takes the caller ([`access::Actor`]) and applies the caller's venue
//! access inside its SQL, so no path (top-level query, nested field, dataloader batch) can
//! return a row of a venue the caller cannot see.
//!
//! # Map
//!
//! One folder per domain word, each owning its reads and its writes; the domain's reads are
//! in its `mod.rs`, each kind of write in a file named for what it does. Callers name the
//! file (`bookings::create::create_booking`, `venues::pricing::set_pricing`): there are no
//! re-exports, so the path of a call says where its rule lives.
//!
//! - [`access`]: the actor, levels, capabilities and field-level rules; `scope`, the venue
//!   set every query puts into its SQL, and the by-id reads and per-venue pages of every
//!   financial table (`FinancialTable`); `grants`, granting and revoking venue roles. A rule
//!   about who may see or do what goes here.
//! - [`venues`]: venue reads and the venue row lock; `settings` (create, update), `pricing`
//!   (setting a venue's prices).
//! - [`pricing`]: pricing a booking from the pricing row in force (quote, discounts).
//! - [`guests`]: guest reads and figures; `write` (register, edit, set status).
//! - [`promoters`]: promoter reads; `write` (sign-up, approval, suspension, tier);
//!   `metrics`, every promoter and guest ratio, defined once for the write path and
//!   `prima check`.
//! - [`commissions`]: rate and assignment reads and a booking's commission; `rules` (the
//!   pure rule), `rates` (writing rates and assignments), `month` (a venue's calendar
//!   month).
//! - [`bookings`]: booking reads, the write path and the global lock order: `create`,
//!   `edit`, `transition`, `refund`, the steps they share in `change`, the promoter and guest
//!   counters in `aggregates`. A rule about making or changing a booking, its ledger rows
//!   included, goes in the file of that change (or `change` when every change needs it).
//! - [`ledger`]: transaction reads. [`payouts`]: payout reads.
//! - [`incentives`]: programme, progress and leaderboard reads; `progress`, the progress
//!   every booking change moves.
//! - [`events`]: real time, one file per piece: `outbox`, `relay`, `bus`, `hub`, `feed`.
//! - [`check`]: `prima check`, one file per invariant family (`ledger`, `promoters`,
//!   `guests`, `payouts`); a new invariant of stored data goes in its family's file.
//! - [`seed`]: the demo portfolio's generator; its fixed tables in `seed/data.rs`.
//! - `testing` (tests and the `testing` feature): the per-test database; `fixtures`, the rows
//!   the crate's own unit tests build.
//!
//! Cross-cutting helpers are named for what they do: [`validate`] (input validators),
//! [`paging`] (cursor connections), [`idempotency`], [`money`], [`time`], [`error`], [`db`]
//! (connections, retries, statement counts), [`throttle`] (rate limits), [`auth`] (passwords
//! and tokens), [`users`], [`identify`] (which table an id names, for Relay's `node`).
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
pub mod identify;
pub mod incentives;
pub mod ledger;
pub mod money;
pub mod paging;
pub mod payouts;
pub mod pricing;
pub mod promoters;
pub mod seed;
pub mod tail;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod throttle;
pub mod time;
pub mod users;
pub mod validate;
pub mod venues;

pub use error::{Error, Result};
