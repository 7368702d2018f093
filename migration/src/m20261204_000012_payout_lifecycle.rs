//! What the payout lifecycle needs the database itself to guarantee (DOMAIN.md "Payouts"):
//!
//! - `payout_items.released_at`: when a FAILED payout let go of the transaction. The item
//!   stays (the failed payout's statement still shows what it held); only a live item, one
//!   with `released_at` NULL, claims its transaction.
//! - `uq_payout_items_live_transaction`: a transaction is in at most one live payout, even
//!   if two payouts were generated at once past every check in code (a partial unique
//!   index, which PostgreSQL and SQLite both have).
//! - `uq_payouts_live_period`: one payout that has not FAILED per promoter, venue and
//!   period, so of concurrent first generations one inserts and the others find it.
//! - `payouts.created_by`, `payouts.submitted_by`: who generated and who submitted, for the
//!   four-eyes rule, which the approval's conditional update checks
//!   (`submitted_by <> approver`). No foreign keys on them: SQLite cannot add a column with
//!   a constraint to an existing table through sea-query, and the audit trail (with its
//!   foreign key on `performed_by`) is the record of who did what; these are its copies.
//! - `idx_transactions_unpaid`: the earned, unpaid, payable transactions (commissions,
//!   rewards, adjustments) of a promoter at a venue by creation time, with their amounts:
//!   the set a generation sums and claims, read from the index alone. Partial: fees never
//!   enter it and a paid transaction leaves it, so its size follows what is owed, not the
//!   history (measured: without the type condition the venue run of bench/ took 24 s over
//!   a year of unpaid fees).
//! - `idx_transactions_unpaid_negative`: the unpaid negative ones (clawbacks and other
//!   corrections), by promoter. A negative balance can only be carried when one of them
//!   exists before the period, so a generation sums the promoter's earlier unpaid
//!   transactions only then, and otherwise reads the period alone.

use sea_orm_migration::prelude::*;

use crate::iden::{PayoutItems, Payouts, Transactions};

/// Indexes a payout's claim had to keep up for every ledger row it took, and that no query
/// needs: `(type)` and `(status)` (a few values each: the planner never picks them),
/// `(processed_at)`, `(created_at)` alone and `(reverses_transaction_id)` (never filtered
/// on; a booking's rows are read by `booking_id`), `(venue_id)` (the leading column of
/// `idx_transactions_venue_date_type`), `payout_items (payout_id)` (the leading column of
/// `uq_payout_items_payout_id_transaction_id`) and `payout_items (transaction_id)` (a live
/// item is found by `uq_payout_items_live_transaction`, an item with its payout by the
/// unique pair). Measured on bench/'s venue run: each claimed row cost an insert into 14
/// indexes of `transactions` and 5 of `payout_items`.
const REDUNDANT: [(&str, &str, &str); 8] = [
    ("idx_transactions_type", "transactions", "type"),
    ("idx_transactions_status", "transactions", "status"),
    (
        "idx_transactions_processed_at",
        "transactions",
        "processed_at",
    ),
    ("idx_transactions_venue_id", "transactions", "venue_id"),
    ("idx_transactions_created_at", "transactions", "created_at"),
    (
        "idx_transactions_reverses_transaction_id",
        "transactions",
        "reverses_transaction_id",
    ),
    ("idx_payout_items_payout_id", "payout_items", "payout_id"),
    (
        "idx_payout_items_transaction_id",
        "payout_items",
        "transaction_id",
    ),
];

#[derive(DeriveMigrationName)]
pub struct Migration;

const LIVE_ITEM: &str = "uq_payout_items_live_transaction";
const LIVE_PERIOD: &str = "uq_payouts_live_period";
const UNPAID: &str = "idx_transactions_unpaid";
const UNPAID_NEGATIVE: &str = "idx_transactions_unpaid_negative";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, _) in REDUNDANT {
            manager
                .drop_index(Index::drop().name(name).table(Alias::new(table)).to_owned())
                .await?;
        }
        for alter in [
            Table::alter()
                .table(PayoutItems::Table)
                .add_column(ColumnDef::new(PayoutItems::ReleasedAt).timestamp_with_time_zone())
                .to_owned(),
            Table::alter()
                .table(Payouts::Table)
                .add_column(ColumnDef::new(Payouts::CreatedBy).uuid())
                .to_owned(),
            Table::alter()
                .table(Payouts::Table)
                .add_column(ColumnDef::new(Payouts::SubmittedBy).uuid())
                .to_owned(),
        ] {
            manager.alter_table(alter).await?;
        }
        manager
            .create_index(
                Index::create()
                    .name(LIVE_ITEM)
                    .table(PayoutItems::Table)
                    .col(PayoutItems::TransactionId)
                    .unique()
                    .and_where(Expr::col(PayoutItems::ReleasedAt).is_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(LIVE_PERIOD)
                    .table(Payouts::Table)
                    .col(Payouts::VenueId)
                    .col(Payouts::PromoterId)
                    .col(Payouts::PeriodFrom)
                    .col(Payouts::PeriodTo)
                    .unique()
                    .and_where(Expr::col(Payouts::Status).ne("FAILED"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(UNPAID)
                    .table(Transactions::Table)
                    .col(Transactions::VenueId)
                    .col(Transactions::PromoterId)
                    .col(Transactions::CreatedAt)
                    .col(Transactions::Amount)
                    .and_where(Expr::col(Transactions::PayoutId).is_null())
                    .and_where(Expr::col(Transactions::Status).eq("CONFIRMED"))
                    .and_where(Expr::col(Transactions::Type).is_in([
                        "PROMOTER_COMMISSION",
                        "INCENTIVE_PAYOUT",
                        "ADJUSTMENT",
                    ]))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(UNPAID_NEGATIVE)
                    .table(Transactions::Table)
                    .col(Transactions::VenueId)
                    .col(Transactions::PromoterId)
                    .col(Transactions::CreatedAt)
                    .and_where(Expr::col(Transactions::PayoutId).is_null())
                    .and_where(Expr::col(Transactions::Status).eq("CONFIRMED"))
                    .and_where(Expr::col(Transactions::Amount).lt(0))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table) in [
            (UNPAID_NEGATIVE, Transactions::Table.into_iden()),
            (UNPAID, Transactions::Table.into_iden()),
            (LIVE_PERIOD, Payouts::Table.into_iden()),
            (LIVE_ITEM, PayoutItems::Table.into_iden()),
        ] {
            manager
                .drop_index(Index::drop().name(name).table(table).to_owned())
                .await?;
        }
        for alter in [
            Table::alter()
                .table(Payouts::Table)
                .drop_column(Payouts::SubmittedBy)
                .to_owned(),
            Table::alter()
                .table(Payouts::Table)
                .drop_column(Payouts::CreatedBy)
                .to_owned(),
            Table::alter()
                .table(PayoutItems::Table)
                .drop_column(PayoutItems::ReleasedAt)
                .to_owned(),
        ] {
            manager.alter_table(alter).await?;
        }
        for (name, table, column) in REDUNDANT {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Alias::new(table))
                        .col(Alias::new(column))
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
