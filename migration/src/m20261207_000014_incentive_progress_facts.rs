//! What a progress row needs to move by deltas for every measure, and to break TOP_N ties
//! (DOMAIN.md "Incentives"):
//!
//! - `incentive_progress.completed_bookings`, `closed_bookings` (INTEGER NOT NULL DEFAULT
//!   0): the promoter's COMPLETED bookings in the period, and their COMPLETED + CANCELLED +
//!   NO_SHOW ones. A CONVERSION_RATE programme's value is their ratio, so a booking change
//!   moves the two counts by one and the value follows, without recounting the period.
//!   Kept for CONVERSION_RATE rows only (the others keep 0: a completion then costs a
//!   BOOKING_COUNT programme no statement).
//! - `incentive_progress.value_reached_at` (NULL until the value first moves): when the row
//!   reached its current value. TOP_N's tie-break is "first to reach their final value",
//!   which `last_updated` cannot tell (a re-targeting touches it without moving the value).
//!   Existing rows take their `last_updated`.

use sea_orm_migration::prelude::*;

use crate::iden::IncentiveProgress;

#[derive(DeriveMigrationName)]
pub struct Migration;

fn columns() -> [ColumnDef; 3] {
    [
        ColumnDef::new(IncentiveProgress::CompletedBookings)
            .integer()
            .not_null()
            .default(0)
            .to_owned(),
        ColumnDef::new(IncentiveProgress::ClosedBookings)
            .integer()
            .not_null()
            .default(0)
            .to_owned(),
        ColumnDef::new(IncentiveProgress::ValueReachedAt)
            .timestamp_with_time_zone()
            .to_owned(),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per ALTER TABLE: SQLite adds them one at a time.
        for mut column in columns() {
            manager
                .alter_table(
                    Table::alter()
                        .table(IncentiveProgress::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .exec_stmt(
                Query::update()
                    .table(IncentiveProgress::Table)
                    .value(
                        IncentiveProgress::ValueReachedAt,
                        Expr::col(IncentiveProgress::LastUpdated),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            IncentiveProgress::ValueReachedAt,
            IncentiveProgress::ClosedBookings,
            IncentiveProgress::CompletedBookings,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(IncentiveProgress::Table)
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
