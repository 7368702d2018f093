//! `promoters.month_start` and the index `idx_bookings_promoter_guest_time` on
//! `bookings (promoter_id, guest_id, booking_time)`.
//!
//! Why: a promoter's `month_*` fields (bookings, revenue, new and repeat guests of the
//! current calendar month in the venue's time zone) were recomputed from the promoter's
//! bookings of the month on every create, confirm and time change, a cost that grew with
//! every booking of the month (and NEW_GUESTS incentive progress recomputed over all of the
//! promoter's bookings at the venue). They now move by deltas, like the other counters:
//! - `month_start` says which month the stored fields cover (the month's first instant in
//!   UTC; NULL: not known). A change in that month adds its delta; a change in another month
//!   (the month turned) recomputes the fields once and sets `month_start`.
//! - Whether a guest is new or repeat to the promoter depends only on the guest's own
//!   bookings with the promoter: the earliest `booking_time` and whether one falls in the
//!   month. The index answers both with one probe per change (`MIN(booking_time)` and an
//!   `EXISTS` over a time range), however many bookings the promoter has.
//!
//! No backfill: NULL makes the first change of each promoter (or the periodic refresh)
//! recompute the month, exactly as every change did before.

use sea_orm_migration::prelude::*;

use crate::iden::{Bookings, Promoters};

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEX: &str = "idx_bookings_promoter_guest_time";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Promoters::Table)
                    .add_column(ColumnDef::new(Promoters::MonthStart).timestamp_with_time_zone())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(Bookings::Table)
                    .col(Bookings::PromoterId)
                    .col(Bookings::GuestId)
                    .col(Bookings::BookingTime)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name(INDEX).table(Bookings::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Promoters::Table)
                    .drop_column(Promoters::MonthStart)
                    .to_owned(),
            )
            .await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
