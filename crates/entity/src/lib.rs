//! sea-orm entities and enums of the PRIMA data model: one module per table, named as the
//! table, and [`enums`]. This crate holds no logic: no validation, no conversion, no queries.
//! Business rules live in the service crate; the schema itself lives in `prima-migration`
//! (whose README lists every place the stored form differs from the data model document).
//!
//! # Storage conventions (identical on PostgreSQL and SQLite)
//!
//! Every `DECIMAL(p, s)` of the data model is an `i64` holding the value times `10^s`, so sums
//! are exact on both databases; money is in minor units (cents) and nothing here converts.
//! Enums are text columns with a CHECK constraint, read and written as the Rust enums of
//! [`enums`]. Lists (`TEXT[]`, `ENUM[]`) and JSONB columns are [`sea_orm::prelude::Json`]
//! (`jsonb` on PostgreSQL). UUIDs are [`sea_orm::prelude::Uuid`] (`uuid` on PostgreSQL, a
//! 16-byte blob on SQLite). Timestamps are `DateTimeUtc` set by the application in UTC (no
//! database defaults). `INET` is a `String` (at most 45 characters). A column with a DEFAULT
//! in the data model is NOT NULL (so not an `Option`) here.
//!
//! # Scale of every integer-stored decimal
//!
//! - Money, `DECIMAL(x, 2)`: cents (`12000` = 120.00). Includes every `*_fee`, `*_amount`,
//!   `amount`, `total_*`, `*_revenue`, `*_spent`, `average_booking_value`,
//!   `non_prime_per_diner`, `prime_base_for_2`, `prime_additional_per_person`,
//!   `minimum_booking`, `maximum_payout`, `promoter_commission`, `reward_value`,
//!   `reward_earned`, `target_threshold`, `current_value`, `target_value` (the last three
//!   are hundredths of whatever unit the incentive measures: 2000 = 20 bookings).
//! - Rates and percents, `DECIMAL(5, 4)` and `DECIMAL(10, 4)`: ten-thousandths (`1000` =
//!   0.1000 = 10 %): `*_platform_fee_percent`, `*_discount_percent`, `conversion_rate`,
//!   `no_show_rate`, `cancel_rate`, `min_conversion_rate`, `max_cancel_rate`,
//!   `commission_rates.value`, `commission_assignments.rate`, `transactions.commission_rate`.
//! - `venues.prime_ratio`, `DECIMAL(3, 2)`: hundredths (`60` = 0.60).
//! - `incentive_progress.percent_complete`, `DECIMAL(5, 2)`: hundredths of a percent
//!   (`10000` = 100.00 %).
//! - `guests.average_party_size`, `DECIMAL(3, 1)`: tenths (`20` = 2.0 diners).
//! - `venues.coordinates_lat` / `coordinates_lng`, `DECIMAL(10, 8)` / `DECIMAL(11, 8)`:
//!   1e-8 degrees.
//!
//! # Relations
//!
//! Each foreign key is a `belongs_to` relation on the child, with a `has_many` back on the
//! parent. The first foreign key from a table to a given table is named after the parent
//! table (`Relation::Users`) and has the `Related` impls; any further one is named after its
//! column (`Relation::GrantedBy`, back: `users::Relation::UserVenueAccessGrantedBy`) and is
//! used through the relation itself, e.g. `.join(JoinType::InnerJoin, Relation::GrantedBy.def())`.
//! `transactions` refers to itself (`Relation::ReversesTransaction`, back: `Reversals`).

pub mod booking_history;
pub mod bookings;
pub mod commission_assignments;
pub mod commission_rates;
pub mod enums;
pub mod guest_venue_stats;
pub mod guests;
pub mod idempotency_keys;
pub mod incentive_progress;
pub mod incentives;
pub mod outbox_events;
pub mod payout_audit;
pub mod payout_holds;
pub mod payout_items;
pub mod payouts;
pub mod promoter_tier_changes;
pub mod promoters;
pub mod transactions;
pub mod user_venue_access;
pub mod users;
pub mod venue_pricing;
pub mod venues;

/// Every `Entity` under a PascalCase alias, and every enum.
pub mod prelude {
    pub use super::booking_history::Entity as BookingHistory;
    pub use super::bookings::Entity as Bookings;
    pub use super::commission_assignments::Entity as CommissionAssignments;
    pub use super::commission_rates::Entity as CommissionRates;
    pub use super::enums::*;
    pub use super::guest_venue_stats::Entity as GuestVenueStats;
    pub use super::guests::Entity as Guests;
    pub use super::idempotency_keys::Entity as IdempotencyKeys;
    pub use super::incentive_progress::Entity as IncentiveProgress;
    pub use super::incentives::Entity as Incentives;
    pub use super::outbox_events::Entity as OutboxEvents;
    pub use super::payout_audit::Entity as PayoutAudit;
    pub use super::payout_holds::Entity as PayoutHolds;
    pub use super::payout_items::Entity as PayoutItems;
    pub use super::payouts::Entity as Payouts;
    pub use super::promoters::Entity as Promoters;
    pub use super::transactions::Entity as Transactions;
    pub use super::user_venue_access::Entity as UserVenueAccess;
    pub use super::users::Entity as Users;
    pub use super::venue_pricing::Entity as VenuePricing;
    pub use super::venues::Entity as Venues;
}
