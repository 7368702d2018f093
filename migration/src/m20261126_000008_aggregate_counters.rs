//! Booking counters behind the promoter rates and the guest mean party size:
//! `promoters.all_bookings` (every status, PENDING included), `completed_bookings`,
//! `cancelled_bookings`, `no_show_bookings`, and `guests.total_diners` (sum of `diners` over
//! all of the guest's bookings, every status).
//!
//! Why: DOMAIN.md keeps the aggregates current in the booking's own transaction with atomic
//! increments. The rates (`cancel_rate = cancelled / all`, `no_show_rate = no_show /
//! (completed + no_show)`, `conversion_rate = completed / (completed + cancelled + no_show)`)
//! and `guests.average_party_size` (diners / bookings) cannot be incremented themselves, and
//! the stored columns did not hold their numerators and denominators. Recomputing them from
//! `bookings` inside the UPDATE loses updates under READ COMMITTED: two transactions that
//! each change one booking of a promoter both see the other's booking unchanged and the last
//! to commit writes a rate that misses the first change. With the counters, the write path
//! runs `SET cancelled_bookings = cancelled_bookings + 1, cancel_rate = <from the new
//! counters>` in one UPDATE; the row lock serialises the increments and each rate is
//! computed from counters that include every committed change.
//!
//! Each counter is `INTEGER NOT NULL DEFAULT 0` with `CHECK (x >= 0)`, added one column per
//! ALTER (SQLite allows one change per ALTER TABLE; both databases accept a column CHECK in
//! ADD COLUMN, and SQLite 3.35 or later drops such a column again). The counters are then
//! backfilled from `bookings` with correlated subqueries that both databases run
//! (`COUNT(*)` and `SUM(integer)` are BIGINT on PostgreSQL, hence the casts to INTEGER).
//! Added as a new migration (earlier ones are append-only).

use sea_orm_migration::prelude::*;

use crate::iden::{Guests, Promoters};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The new `promoters` counters with the booking status each counts (`None`: every status).
const PROMOTER_COUNTERS: [(Promoters, &str, Option<&str>); 4] = [
    (Promoters::AllBookings, "all_bookings", None),
    (
        Promoters::CompletedBookings,
        "completed_bookings",
        Some("COMPLETED"),
    ),
    (
        Promoters::CancelledBookings,
        "cancelled_bookings",
        Some("CANCELLED"),
    ),
    (
        Promoters::NoShowBookings,
        "no_show_bookings",
        Some("NO_SHOW"),
    ),
];

/// `INTEGER NOT NULL DEFAULT 0 CONSTRAINT check_<table>_<column>_non_negative CHECK (column >= 0)`.
fn counter<T: Iden + Copy + 'static>(column: T, table: &str, name: &str) -> ColumnDef {
    ColumnDef::new(column)
        .integer()
        .not_null()
        .default(0)
        .check((
            format!("check_{table}_{name}_non_negative"),
            Expr::col(column).gte(0),
        ))
        .to_owned()
}

/// Sets the counters from the bookings; plain SQL that PostgreSQL and SQLite both run.
fn backfill_sql() -> [String; 2] {
    let promoters = PROMOTER_COUNTERS
        .iter()
        .map(|(_, name, status)| {
            let status = status.map_or(String::new(), |s| format!(" AND b.status = '{s}'"));
            format!(
                "{name} = CAST((SELECT COUNT(*) FROM bookings b \
                 WHERE b.promoter_id = promoters.id{status}) AS INTEGER)"
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    [
        format!("UPDATE promoters SET {promoters}"),
        "UPDATE guests SET total_diners = CAST(COALESCE((SELECT SUM(b.diners) FROM bookings b \
         WHERE b.guest_id = guests.id), 0) AS INTEGER)"
            .to_owned(),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (column, name, _) in PROMOTER_COUNTERS {
            manager
                .alter_table(
                    Table::alter()
                        .table(Promoters::Table)
                        .add_column(counter(column, "promoters", name))
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Guests::Table)
                    .add_column(counter(Guests::TotalDiners, "guests", "total_diners"))
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        for sql in backfill_sql() {
            db.execute_unprepared(&sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Guests::Table)
                    .drop_column(Guests::TotalDiners)
                    .to_owned(),
            )
            .await?;
        for (column, _, _) in PROMOTER_COUNTERS.into_iter().rev() {
            manager
                .alter_table(
                    Table::alter()
                        .table(Promoters::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The statements the builders produce: one column per ALTER, the CHECK inline, on both
    /// databases.
    #[test]
    fn add_column_carries_its_check_on_both_databases() {
        let alter = Table::alter()
            .table(Promoters::Table)
            .add_column(counter(
                Promoters::CancelledBookings,
                "promoters",
                "cancelled_bookings",
            ))
            .to_owned();
        let expected_column = "\"cancelled_bookings\" integer NOT NULL DEFAULT 0 CONSTRAINT \
             \"check_promoters_cancelled_bookings_non_negative\" CHECK (\"cancelled_bookings\" >= 0)";
        for sql in [
            alter.to_string(PostgresQueryBuilder),
            alter.to_string(SqliteQueryBuilder),
        ] {
            assert_eq!(
                sql,
                format!("ALTER TABLE \"promoters\" ADD COLUMN {expected_column}")
            );
        }
    }

    #[test]
    fn the_backfill_counts_each_status_and_sums_diners() {
        let [promoters, guests] = backfill_sql();
        assert_eq!(
            promoters,
            "UPDATE promoters SET \
             all_bookings = CAST((SELECT COUNT(*) FROM bookings b \
             WHERE b.promoter_id = promoters.id) AS INTEGER), \
             completed_bookings = CAST((SELECT COUNT(*) FROM bookings b \
             WHERE b.promoter_id = promoters.id AND b.status = 'COMPLETED') AS INTEGER), \
             cancelled_bookings = CAST((SELECT COUNT(*) FROM bookings b \
             WHERE b.promoter_id = promoters.id AND b.status = 'CANCELLED') AS INTEGER), \
             no_show_bookings = CAST((SELECT COUNT(*) FROM bookings b \
             WHERE b.promoter_id = promoters.id AND b.status = 'NO_SHOW') AS INTEGER)"
        );
        assert!(guests.contains("COALESCE((SELECT SUM(b.diners)"));
    }
}
