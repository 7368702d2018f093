//! The transactional outbox and idempotency keys.

use sea_orm_migration::prelude::*;

use crate::iden::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, indexes) in [
            (outbox_events(), outbox_events_indexes()),
            (idempotency_keys(), idempotency_keys_indexes()),
        ] {
            crate::create_table_with_indexes(manager, table, indexes).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            IdempotencyKeys::Table.into_iden(),
            OutboxEvents::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }

    fn use_transaction(&self) -> Option<bool> {
        // DDL is transactional on both databases: a failed step leaves nothing behind.
        Some(true)
    }
}

/// `outbox_events`: Transactional outbox: events written with the change that causes them, published afterwards.
fn outbox_events() -> TableCreateStatement {
    Table::create()
        .table(OutboxEvents::Table)
        .col(
            ColumnDef::new(OutboxEvents::Id)
                .big_integer()
                .not_null()
                .auto_increment()
                .primary_key(),
        )
        .col(
            ColumnDef::new(OutboxEvents::Topic)
                .string_len(100)
                .not_null(),
        )
        .col(ColumnDef::new(OutboxEvents::VenueId).uuid())
        .col(
            ColumnDef::new(OutboxEvents::Payload)
                .json_binary()
                .not_null(),
        )
        .col(
            ColumnDef::new(OutboxEvents::CreatedAt)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(ColumnDef::new(OutboxEvents::PublishedAt).timestamp_with_time_zone())
        .to_owned()
}

/// Unique and plain indexes of `outbox_events`.
fn outbox_events_indexes() -> Vec<IndexCreateStatement> {
    vec![
        Index::create()
            .name("idx_outbox_events_published_at")
            .table(OutboxEvents::Table)
            .col(OutboxEvents::PublishedAt)
            .to_owned(),
        Index::create()
            .name("idx_outbox_events_venue_id_id")
            .table(OutboxEvents::Table)
            .col(OutboxEvents::VenueId)
            .col(OutboxEvents::Id)
            .to_owned(),
    ]
}

/// `idempotency_keys`: Idempotency keys of mutations: a retry with the same key and input returns the first result.
fn idempotency_keys() -> TableCreateStatement {
    Table::create()
        .table(IdempotencyKeys::Table)
        .col(
            ColumnDef::new(IdempotencyKeys::Key)
                .string_len(255)
                .not_null(),
        )
        .col(ColumnDef::new(IdempotencyKeys::UserId).uuid().not_null())
        .col(
            ColumnDef::new(IdempotencyKeys::Operation)
                .string_len(50)
                .not_null(),
        )
        .col(
            ColumnDef::new(IdempotencyKeys::RequestHash)
                .string_len(64)
                .not_null(),
        )
        .col(ColumnDef::new(IdempotencyKeys::Response).json_binary())
        .col(ColumnDef::new(IdempotencyKeys::ResourceId).uuid())
        .col(
            ColumnDef::new(IdempotencyKeys::CreatedAt)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(
            ColumnDef::new(IdempotencyKeys::ExpiresAt)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .primary_key(
            Index::create()
                .col(IdempotencyKeys::UserId)
                .col(IdempotencyKeys::Operation)
                .col(IdempotencyKeys::Key),
        )
        .foreign_key(
            ForeignKey::create()
                .name("fk_idempotency_keys_user_id")
                .from(IdempotencyKeys::Table, IdempotencyKeys::UserId)
                .to(Users::Table, Users::Id)
                .on_delete(ForeignKeyAction::Cascade),
        )
        .to_owned()
}

/// Unique and plain indexes of `idempotency_keys`.
fn idempotency_keys_indexes() -> Vec<IndexCreateStatement> {
    vec![
        Index::create()
            .name("idx_idempotency_keys_expires_at")
            .table(IdempotencyKeys::Table)
            .col(IdempotencyKeys::ExpiresAt)
            .to_owned(),
    ]
}
