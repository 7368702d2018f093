//! `guest_venue_stats`: a guest's booking aggregates at one venue.
//!
//! Why: guests belong to no venue, and the guest row's aggregates (`guests.total_bookings`,
//! `cancelled_bookings`, `no_show_bookings`, `total_spent`, `total_diners`,
//! `last_booking_at`) count the guest's bookings at every venue. DOMAIN.md "Promoter and
//! guest metrics" says that what a user sees of a guest's figures covers only the venues the
//! user can read (a global ADMIN sees all), so the same counters are kept per (guest, venue)
//! and a read sums them over the caller's venues. Recomputing from `bookings` on every read
//! would cost a scan of the guest's bookings per request; the rows here are kept current by
//! the booking write path with atomic increments in the booking's own transaction, like the
//! guest row, and `prima check` verifies both that each row equals a recomputation from
//! `bookings` and that a guest's rows sum to the guest row.
//!
//! One row per (guest, venue) pair that has at least one booking; `PRIMARY KEY (guest_id,
//! venue_id)` serves the read (`guest_id IN (...) AND venue_id IN (...)`) and the write
//! path's upsert, and an index on `venue_id` serves `prima check --venue`. The counters have
//! the types and ranges of the guest row's: counts `INTEGER NOT NULL DEFAULT 0 CHECK (>= 0)`,
//! `total_spent` BIGINT cents with the range of `guests.total_spent`, `last_booking_at`
//! NULL only while no booking exists. There is no average column: the mean party size over
//! several venues is `SUM(total_diners) / SUM(total_bookings)`, computed where it is read.
//! Both foreign keys cascade: an aggregate has no meaning without its guest or venue (and
//! neither can be deleted while bookings refer to it anyway).
//!
//! `up` creates the table and backfills it from `bookings` with one `INSERT ... SELECT ...
//! GROUP BY`, plain SQL that both databases run (`COUNT(*)` and `SUM(integer)` are BIGINT
//! on PostgreSQL, hence the casts). Added as a new migration (earlier ones are append-only).

use sea_orm_migration::prelude::*;

use crate::iden::{Guests, Venues};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// `guest_venue_stats` and its columns.
#[derive(DeriveIden, Clone, Copy)]
pub enum GuestVenueStats {
    Table,
    GuestId,
    VenueId,
    TotalBookings,
    CancelledBookings,
    NoShowBookings,
    TotalSpent,
    TotalDiners,
    LastBookingAt,
}

const VENUE_INDEX: &str = "idx_guest_venue_stats_venue_id";

/// `INTEGER NOT NULL DEFAULT 0 CONSTRAINT check_guest_venue_stats_<column>_non_negative
/// CHECK (column >= 0)`.
fn counter(column: GuestVenueStats, name: &str) -> ColumnDef {
    ColumnDef::new(column)
        .integer()
        .not_null()
        .default(0)
        .check((
            format!("check_guest_venue_stats_{name}_non_negative"),
            Expr::col(column).gte(0),
        ))
        .to_owned()
}

fn table() -> TableCreateStatement {
    use GuestVenueStats as S;
    Table::create()
        .table(S::Table)
        .col(ColumnDef::new(S::GuestId).uuid().not_null())
        .col(ColumnDef::new(S::VenueId).uuid().not_null())
        .col(counter(S::TotalBookings, "total_bookings"))
        .col(counter(S::CancelledBookings, "cancelled_bookings"))
        .col(counter(S::NoShowBookings, "no_show_bookings"))
        .col(
            ColumnDef::new(S::TotalSpent)
                .big_integer()
                .not_null()
                .default(0i64)
                .check((
                    "check_guest_venue_stats_total_spent_range",
                    Expr::col(S::TotalSpent).between(0i64, 999_999_999_999i64),
                )),
        )
        .col(counter(S::TotalDiners, "total_diners"))
        .col(ColumnDef::new(S::LastBookingAt).timestamp_with_time_zone())
        .primary_key(Index::create().col(S::GuestId).col(S::VenueId))
        .foreign_key(
            ForeignKey::create()
                .name("fk_guest_venue_stats_guest_id")
                .from(S::Table, S::GuestId)
                .to(Guests::Table, Guests::Id)
                .on_delete(ForeignKeyAction::Cascade),
        )
        .foreign_key(
            ForeignKey::create()
                .name("fk_guest_venue_stats_venue_id")
                .from(S::Table, S::VenueId)
                .to(Venues::Table, Venues::Id)
                .on_delete(ForeignKeyAction::Cascade),
        )
        .to_owned()
}

/// Fills the table from the bookings stored before it existed; plain SQL that PostgreSQL
/// and SQLite both run.
const BACKFILL: &str = "INSERT INTO guest_venue_stats \
       (guest_id, venue_id, total_bookings, cancelled_bookings, no_show_bookings, \
        total_spent, total_diners, last_booking_at) \
     SELECT b.guest_id, b.venue_id, \
       CAST(COUNT(*) AS INTEGER), \
       CAST(COUNT(CASE WHEN b.status = 'CANCELLED' THEN 1 END) AS INTEGER), \
       CAST(COUNT(CASE WHEN b.status = 'NO_SHOW' THEN 1 END) AS INTEGER), \
       CAST(COALESCE(SUM(CASE WHEN b.status = 'COMPLETED' THEN b.total_fee END), 0) AS BIGINT), \
       CAST(SUM(b.diners) AS INTEGER), \
       MAX(b.booking_time) \
     FROM bookings b \
     GROUP BY b.guest_id, b.venue_id";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_table(table()).await?;
        manager
            .create_index(
                Index::create()
                    .name(VENUE_INDEX)
                    .table(GuestVenueStats::Table)
                    .col(GuestVenueStats::VenueId)
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(BACKFILL)
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Dropping the table drops its index.
        manager
            .drop_table(Table::drop().table(GuestVenueStats::Table).to_owned())
            .await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table the builders produce: the composite primary key, both cascading foreign
    /// keys and the CHECKs, on both databases.
    #[test]
    fn the_table_has_its_key_foreign_keys_and_checks_on_both_databases() {
        for sql in [
            table().to_string(PostgresQueryBuilder),
            table().to_string(SqliteQueryBuilder),
        ] {
            assert!(
                sql.contains("PRIMARY KEY (\"guest_id\", \"venue_id\")"),
                "{sql}"
            );
            assert!(
                sql.contains("REFERENCES \"guests\" (\"id\") ON DELETE CASCADE"),
                "{sql}"
            );
            assert!(
                sql.contains("REFERENCES \"venues\" (\"id\") ON DELETE CASCADE"),
                "{sql}"
            );
            assert!(sql.contains("CHECK (\"total_bookings\" >= 0)"), "{sql}");
            assert!(
                sql.contains("CHECK (\"total_spent\" BETWEEN 0 AND 999999999999)"),
                "{sql}"
            );
        }
    }
}
