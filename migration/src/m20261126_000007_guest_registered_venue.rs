//! `guests.registered_venue_id`: the venue that registered a guest.
//!
//! Guests belong to no venue in the data model, and staff see a guest through the venues
//! where the guest booked. A guest registered before their first booking would be invisible
//! to the very staff who registered them, so the registering venue is recorded too and
//! counts for visibility. Added as a new migration (earlier ones are append-only). The
//! foreign key is written inline in ADD COLUMN, the one form both PostgreSQL and SQLite
//! accept on an existing table.

use sea_orm_migration::prelude::*;

use crate::iden::Guests;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Guests::Table)
                    .add_column(
                        ColumnDef::new(Guests::RegisteredVenueId)
                            .uuid()
                            .null()
                            .extra("REFERENCES \"venues\" (\"id\") ON DELETE SET NULL"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_guests_registered_venue_id")
                    .table(Guests::Table)
                    .col(Guests::RegisteredVenueId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_guests_registered_venue_id")
                    .table(Guests::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Guests::Table)
                    .drop_column(Guests::RegisteredVenueId)
                    .to_owned(),
            )
            .await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
