//! The PRIMA data model as sea-orm migrations, identical in meaning on PostgreSQL and SQLite.
//!
//! Written with sea-query builders only (CHECK constraints and partial indexes included), so
//! one definition produces both dialects. `README.md` gives the storage conventions and every
//! place where the stored form differs from the data model document, with the reason.
//!
//! Order matters for foreign keys: users and venues first, then guests, promoters and
//! bookings, commissions, incentives (the ledger refers to them), the ledger and payouts,
//! then the outbox and idempotency keys. Each migration's `down` drops its tables in reverse.
//! Later migrations add columns to existing tables (`guests.registered_venue_id`, the
//! booking counters behind the promoter rates) and drop them again in `down`, and add the
//! per-(guest, venue) aggregates `guest_venue_stats` (backfilled from the bookings), and
//! `promoters.month_start` with the (promoter, guest, booking_time) index that let the
//! promoter's `month_*` fields move by deltas.

pub use sea_orm_migration::prelude::*;

mod iden;
mod m20250101_000001_users_venues_access_pricing;
mod m20250101_000002_guests_promoters_bookings_history;
mod m20250101_000003_commissions;
mod m20250101_000004_incentives;
mod m20250101_000005_ledger_payouts;
mod m20250101_000006_outbox_idempotency;
mod m20261126_000007_guest_registered_venue;
mod m20261126_000008_aggregate_counters;
mod m20261126_000009_outbox_sequence;
mod m20261201_000010_guest_venue_stats;
mod m20261202_000011_promoter_month_facts;
mod m20261204_000012_payout_lifecycle;
mod m20261207_000013_claims_in_place;
mod m20261207_000014_incentive_progress_facts;
mod m20261207_000015_incentive_finalisation;
mod values;

/// Runs the PRIMA migrations (`Migrator::up(&db, None)`).
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20250101_000001_users_venues_access_pricing::Migration),
            Box::new(m20250101_000002_guests_promoters_bookings_history::Migration),
            Box::new(m20250101_000003_commissions::Migration),
            Box::new(m20250101_000004_incentives::Migration),
            Box::new(m20250101_000005_ledger_payouts::Migration),
            Box::new(m20250101_000006_outbox_idempotency::Migration),
            Box::new(m20261126_000007_guest_registered_venue::Migration),
            Box::new(m20261126_000008_aggregate_counters::Migration),
            Box::new(m20261126_000009_outbox_sequence::Migration),
            Box::new(m20261201_000010_guest_venue_stats::Migration),
            Box::new(m20261202_000011_promoter_month_facts::Migration),
            Box::new(m20261204_000012_payout_lifecycle::Migration),
            Box::new(m20261207_000013_claims_in_place::Migration),
            Box::new(m20261207_000014_incentive_progress_facts::Migration),
            Box::new(m20261207_000015_incentive_finalisation::Migration),
        ]
    }
}

/// Creates a table, then its indexes (a table drop removes them again).
async fn create_table_with_indexes(
    manager: &SchemaManager<'_>,
    table: TableCreateStatement,
    indexes: Vec<IndexCreateStatement>,
) -> Result<(), DbErr> {
    manager.create_table(table).await?;
    for index in indexes {
        manager.create_index(index).await?;
    }
    Ok(())
}
