//! A payout's claim rewrites each ledger row it takes in place.
//!
//! Claiming (`UPDATE transactions SET payout_id = ..`) touched every index of `transactions`
//! for each row it took: an index that has `payout_id` as a key or in its predicate rules
//! out PostgreSQL's heap-only (HOT) update, so each claimed row was a new row version with
//! a new entry in all seven indexes. Measured on bench/'s venue run (82,000 commissions of
//! a month): the claim's index upkeep and row moves were about half of the run. Now:
//!
//! - `idx_transactions_payout_id` goes. A payout's transactions are found through its
//!   items (`uq_payout_items_payout_id_transaction_id`), which is how the statement, the
//!   settlement and the release read them.
//! - `idx_transactions_unpaid` and `idx_transactions_unpaid_negative` (migration 12) become
//!   `idx_transactions_unsettled` and `idx_transactions_unsettled_negative`: the same keys
//!   without `payout_id IS NULL` in the predicate. They still leave out what a promoter was
//!   paid (a COMPLETED payout settles its rows: `status` is no longer CONFIRMED), so they
//!   hold what is owed plus what sits in payouts not yet completed, never the paid
//!   history; a generation tells the unpaid ones apart by reading the row.
//! - `idx_transactions_incentive_id` becomes partial (`WHERE incentive_id IS NOT NULL`):
//!   only INCENTIVE_PAYOUT rows name a programme, and a lookup by programme implies the
//!   predicate.
//! - PostgreSQL: `transactions` gets `fillfactor = 85`, room on each page for the new
//!   versions of its rows (a claim, then a settlement, in every commission's life), so
//!   they stay on their page. It applies to pages written from now on. SQLite has no such
//!   setting and no HOT updates; its indexes are the same.

use sea_orm_migration::prelude::*;

use crate::iden::Transactions;

#[derive(DeriveMigrationName)]
pub struct Migration;

const PAYABLE: [&str; 3] = ["PROMOTER_COMMISSION", "INCENTIVE_PAYOUT", "ADJUSTMENT"];

/// The indexes this migration creates (`up`) and the ones it replaces (`down`).
fn indexes(up: bool) -> Vec<IndexCreateStatement> {
    let payout = || Expr::col(Transactions::PayoutId).is_null();
    let confirmed = || Expr::col(Transactions::Status).eq("CONFIRMED");
    let mut payable = Index::create()
        .name(if up {
            "idx_transactions_unsettled"
        } else {
            "idx_transactions_unpaid"
        })
        .table(Transactions::Table)
        .col(Transactions::VenueId)
        .col(Transactions::PromoterId)
        .col(Transactions::CreatedAt)
        .col(Transactions::Amount)
        .to_owned();
    let mut negative = Index::create()
        .name(if up {
            "idx_transactions_unsettled_negative"
        } else {
            "idx_transactions_unpaid_negative"
        })
        .table(Transactions::Table)
        .col(Transactions::VenueId)
        .col(Transactions::PromoterId)
        .col(Transactions::CreatedAt)
        .to_owned();
    let mut incentive = Index::create()
        .name("idx_transactions_incentive_id")
        .table(Transactions::Table)
        .col(Transactions::IncentiveId)
        .to_owned();
    if up {
        incentive.and_where(Expr::col(Transactions::IncentiveId).is_not_null());
    } else {
        payable.and_where(payout());
        negative.and_where(payout());
    }
    payable
        .and_where(confirmed())
        .and_where(Expr::col(Transactions::Type).is_in(PAYABLE));
    negative
        .and_where(confirmed())
        .and_where(Expr::col(Transactions::Amount).lt(0));
    let mut all = vec![payable, negative, incentive];
    if !up {
        all.push(
            Index::create()
                .name("idx_transactions_payout_id")
                .table(Transactions::Table)
                .col(Transactions::PayoutId)
                .to_owned(),
        );
    }
    all
}

/// Replaces the indexes of one side by those of the other, and sets the fill factor.
async fn switch(manager: &SchemaManager<'_>, up: bool) -> Result<(), DbErr> {
    for index in indexes(!up) {
        let name = index
            .get_index_spec()
            .get_name()
            .unwrap_or_default()
            .to_owned();
        manager
            .drop_index(
                Index::drop()
                    .name(name)
                    .table(Transactions::Table)
                    .to_owned(),
            )
            .await?;
    }
    for index in indexes(up) {
        manager.create_index(index).await?;
    }
    if manager.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        let setting = if up {
            "SET (fillfactor = 85)"
        } else {
            "RESET (fillfactor)"
        };
        manager
            .get_connection()
            .execute_unprepared(&format!("ALTER TABLE transactions {setting}"))
            .await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        switch(manager, true).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        switch(manager, false).await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
