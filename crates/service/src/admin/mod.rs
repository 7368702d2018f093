//! The write side of the portfolio: venues (and their pricing and access grants), guests,
//! promoters and commissions.
//!
//! Policy, the same for every function here (ARCHITECTURE.md "Writing"):
//!
//! 1. The input is validated first; a bad value is [`Error::Invalid`] naming the camelCase
//!    input field, with a message a person can act on, and nothing is written.
//! 2. The caller's capability is checked with [`Actor::require`](crate::access::Actor::require)
//!    at the venue the change belongs to: NOT_FOUND when the caller cannot see that venue (or
//!    the object), FORBIDDEN when their role there is too low (DOMAIN.md "Access").
//! 3. The change is one database transaction, with timestamps from [`crate::time::now`].
//!    State changes are conditional updates (`WHERE status = <expected>`), and changes that
//!    close one row and open another first lock their parent row, so two concurrent calls
//!    cannot both succeed or leave two open rows. Locks follow the global order of
//!    [`crate::lifecycle`] (a venue before its pricing and grants, a promoter before its
//!    assignments), and the transaction runs again on a transient failure
//!    ([`crate::db::retry_transient`]).
//! 4. The function returns the changed row(s), as the database holds them.

pub mod commissions;
