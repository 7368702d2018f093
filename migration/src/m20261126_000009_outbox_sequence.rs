//! `outbox_events.seq`: the delivery sequence of an event, the cursor clients resume from.
//!
//! Why not `id`: ids are handed out when a row is inserted, but transactions commit in
//! another order. A subscriber that has seen event 11 may not have seen event 10 yet (its
//! transaction was still open), so "everything after 11" would skip it. The outbox relay
//! instead numbers committed rows, one relay at a time (PostgreSQL: an advisory transaction
//! lock; SQLite: its single writer), in a transaction of its own that commits before any of
//! them is published: `seq` is gap-free and every row with a `seq` is visible to every
//! reader, so "every event with `seq` > N" never misses one. NULL until the relay numbers it.
//!
//! A nullable column and a unique index (SQLite cannot add a UNIQUE column), plus two partial
//! indexes for the relay's two queries, which only ever want the few newest rows of a table
//! that keeps days of published events: rows not numbered yet (`seq IS NULL`, by `id`) and
//! rows numbered but not published yet (`published_at IS NULL`, by `seq`). Added as a new
//! migration (earlier ones are append-only).

use sea_orm_migration::prelude::*;

use crate::iden::OutboxEvents;

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEX: &str = "uq_outbox_events_seq";
const UNNUMBERED: &str = "idx_outbox_events_unnumbered";
const UNPUBLISHED: &str = "idx_outbox_events_unpublished_seq";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(OutboxEvents::Table)
                    .add_column(ColumnDef::new(OutboxEvents::Seq).big_integer().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(OutboxEvents::Table)
                    .col(OutboxEvents::Seq)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(UNNUMBERED)
                    .table(OutboxEvents::Table)
                    .col(OutboxEvents::Id)
                    .and_where(Expr::col(OutboxEvents::Seq).is_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(UNPUBLISHED)
                    .table(OutboxEvents::Table)
                    .col(OutboxEvents::Seq)
                    .and_where(Expr::col(OutboxEvents::PublishedAt).is_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for index in [UNPUBLISHED, UNNUMBERED, INDEX] {
            manager
                .drop_index(
                    Index::drop()
                        .name(index)
                        .table(OutboxEvents::Table)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(OutboxEvents::Table)
                    .drop_column(OutboxEvents::Seq)
                    .to_owned(),
            )
            .await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
