//! Payouts, the transaction ledger, payout items, payout holds and the payout audit trail.

use sea_orm_migration::prelude::*;

use crate::iden::*;
use crate::values::{
    PAYOUT_METHOD, PAYOUT_STATUS, PROMOTER_TIER, TRANSACTION_STATUS, TRANSACTION_TYPE,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, indexes) in [
            (payouts(), payouts_indexes()),
            (transactions(), transactions_indexes()),
            (payout_items(), payout_items_indexes()),
            (payout_holds(), payout_holds_indexes()),
            (payout_audit(), payout_audit_indexes()),
        ] {
            crate::create_table_with_indexes(manager, table, indexes).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            PayoutAudit::Table.into_iden(),
            PayoutHolds::Table.into_iden(),
            PayoutItems::Table.into_iden(),
            Transactions::Table.into_iden(),
            Payouts::Table.into_iden(),
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

/// `payouts`: Payments to a promoter for a period, built from their earned transactions, with an approval workflow.
fn payouts() -> TableCreateStatement {
    Table::create()
        .table(Payouts::Table)
        .col(ColumnDef::new(Payouts::Id).uuid().not_null().primary_key())
        .col(ColumnDef::new(Payouts::VenueId).uuid().not_null())
        .col(ColumnDef::new(Payouts::PromoterId).uuid())
        .col(ColumnDef::new(Payouts::Amount).big_integer().not_null())
        .col(
            ColumnDef::new(Payouts::Currency)
                .string_len(3)
                .not_null()
                .default("USD"),
        )
        .col(
            ColumnDef::new(Payouts::PeriodFrom)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(
            ColumnDef::new(Payouts::PeriodTo)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(
            ColumnDef::new(Payouts::Status)
                .string()
                .not_null()
                .default("DRAFT"),
        )
        .col(
            ColumnDef::new(Payouts::ScheduledFor)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(ColumnDef::new(Payouts::ProcessedAt).timestamp_with_time_zone())
        .col(
            ColumnDef::new(Payouts::CommissionsAmount)
                .big_integer()
                .not_null()
                .default(0i64),
        )
        .col(
            ColumnDef::new(Payouts::IncentivesAmount)
                .big_integer()
                .not_null()
                .default(0i64),
        )
        .col(
            ColumnDef::new(Payouts::AdjustmentsAmount)
                .big_integer()
                .not_null()
                .default(0i64),
        )
        .col(
            ColumnDef::new(Payouts::FeesAmount)
                .big_integer()
                .not_null()
                .default(0i64),
        )
        .col(
            ColumnDef::new(Payouts::Method)
                .string()
                .not_null()
                .default("BANK_TRANSFER"),
        )
        .col(ColumnDef::new(Payouts::Reference).string_len(255))
        .col(ColumnDef::new(Payouts::ApprovedBy).uuid())
        .col(ColumnDef::new(Payouts::ApprovedAt).timestamp_with_time_zone())
        .col(
            ColumnDef::new(Payouts::CreatedAt)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(
            ColumnDef::new(Payouts::UpdatedAt)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .foreign_key(
            ForeignKey::create()
                .name("fk_payouts_venue_id")
                .from(Payouts::Table, Payouts::VenueId)
                .to(Venues::Table, Venues::Id),
        )
        .foreign_key(
            ForeignKey::create()
                .name("fk_payouts_promoter_id")
                .from(Payouts::Table, Payouts::PromoterId)
                .to(Promoters::Table, Promoters::Id),
        )
        .foreign_key(
            ForeignKey::create()
                .name("fk_payouts_approved_by")
                .from(Payouts::Table, Payouts::ApprovedBy)
                .to(Users::Table, Users::Id),
        )
        .check((
            "check_payouts_status",
            Expr::col(Payouts::Status).is_in(PAYOUT_STATUS),
        ))
        .check((
            "check_payouts_method",
            Expr::col(Payouts::Method).is_in(PAYOUT_METHOD),
        ))
        .check((
            "check_payouts_amount_range",
            Expr::col(Payouts::Amount).between(0i64, 9999999999i64),
        ))
        .check((
            "check_payouts_commissions_amount_range",
            Expr::col(Payouts::CommissionsAmount).between(0i64, 9999999999i64),
        ))
        .check((
            "check_payouts_incentives_amount_range",
            Expr::col(Payouts::IncentivesAmount).between(0i64, 9999999999i64),
        ))
        .check((
            "check_payouts_adjustments_amount_range",
            Expr::col(Payouts::AdjustmentsAmount).between(-9999999999i64, 9999999999i64),
        ))
        .check((
            "check_payouts_fees_amount_range",
            Expr::col(Payouts::FeesAmount).between(0i64, 9999999999i64),
        ))
        .check((
            "check_payout_amount_positive",
            Expr::col(Payouts::Amount).gte(0),
        ))
        .check((
            "check_payout_period",
            Expr::col(Payouts::PeriodTo).gt(Expr::col(Payouts::PeriodFrom)),
        ))
        .to_owned()
}

/// Unique and plain indexes of `payouts`.
fn payouts_indexes() -> Vec<IndexCreateStatement> {
    vec![
        Index::create()
            .name("idx_payouts_venue_id")
            .table(Payouts::Table)
            .col(Payouts::VenueId)
            .to_owned(),
        Index::create()
            .name("idx_payouts_promoter_id")
            .table(Payouts::Table)
            .col(Payouts::PromoterId)
            .to_owned(),
        Index::create()
            .name("idx_payouts_status")
            .table(Payouts::Table)
            .col(Payouts::Status)
            .to_owned(),
        Index::create()
            .name("idx_payouts_scheduled_for")
            .table(Payouts::Table)
            .col(Payouts::ScheduledFor)
            .to_owned(),
        Index::create()
            .name("idx_payouts_period_from")
            .table(Payouts::Table)
            .col(Payouts::PeriodFrom)
            .to_owned(),
        Index::create()
            .name("idx_payouts_period_to")
            .table(Payouts::Table)
            .col(Payouts::PeriodTo)
            .to_owned(),
        Index::create()
            .name("idx_payouts_processed_at")
            .table(Payouts::Table)
            .col(Payouts::ProcessedAt)
            .to_owned(),
        Index::create()
            .name("idx_payouts_scheduled_status")
            .table(Payouts::Table)
            .col(Payouts::ScheduledFor)
            .col(Payouts::Status)
            .to_owned(),
    ]
}

/// `transactions`: The append-only ledger: fees, commissions, refunds, adjustments and incentive rewards.
fn transactions() -> TableCreateStatement {
    Table::create()
        .table(Transactions::Table)
        .col(
            ColumnDef::new(Transactions::Id)
                .uuid()
                .not_null()
                .primary_key(),
        )
        .col(ColumnDef::new(Transactions::BookingId).uuid())
        .col(ColumnDef::new(Transactions::PromoterId).uuid())
        .col(ColumnDef::new(Transactions::VenueId).uuid().not_null())
        .col(ColumnDef::new(Transactions::Type).string().not_null())
        .col(
            ColumnDef::new(Transactions::Amount)
                .big_integer()
                .not_null(),
        )
        .col(
            ColumnDef::new(Transactions::Currency)
                .string_len(3)
                .not_null()
                .default("USD"),
        )
        .col(ColumnDef::new(Transactions::Description).text().not_null())
        .col(ColumnDef::new(Transactions::CommissionRate).big_integer())
        .col(ColumnDef::new(Transactions::CommissionAmount).big_integer())
        .col(ColumnDef::new(Transactions::CommissionTier).string())
        .col(
            ColumnDef::new(Transactions::Status)
                .string()
                .not_null()
                .default("PENDING"),
        )
        .col(ColumnDef::new(Transactions::ProcessedAt).timestamp_with_time_zone())
        .col(ColumnDef::new(Transactions::SettledAt).timestamp_with_time_zone())
        .col(ColumnDef::new(Transactions::ExternalTransactionId).string_len(255))
        .col(ColumnDef::new(Transactions::PayoutId).uuid())
        .col(
            ColumnDef::new(Transactions::CreatedAt)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(
            ColumnDef::new(Transactions::UpdatedAt)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(ColumnDef::new(Transactions::ReversesTransactionId).uuid())
        .col(ColumnDef::new(Transactions::IncentiveId).uuid())
        .foreign_key(
            ForeignKey::create()
                .name("fk_transactions_booking_id")
                .from(Transactions::Table, Transactions::BookingId)
                .to(Bookings::Table, Bookings::Id),
        )
        .foreign_key(
            ForeignKey::create()
                .name("fk_transactions_promoter_id")
                .from(Transactions::Table, Transactions::PromoterId)
                .to(Promoters::Table, Promoters::Id),
        )
        .foreign_key(
            ForeignKey::create()
                .name("fk_transactions_venue_id")
                .from(Transactions::Table, Transactions::VenueId)
                .to(Venues::Table, Venues::Id),
        )
        .foreign_key(
            ForeignKey::create()
                .name("fk_transactions_payout_id")
                .from(Transactions::Table, Transactions::PayoutId)
                .to(Payouts::Table, Payouts::Id),
        )
        .foreign_key(
            ForeignKey::create()
                .name("fk_transactions_reverses_transaction_id")
                .from(Transactions::Table, Transactions::ReversesTransactionId)
                .to(Transactions::Table, Transactions::Id),
        )
        .foreign_key(
            ForeignKey::create()
                .name("fk_transactions_incentive_id")
                .from(Transactions::Table, Transactions::IncentiveId)
                .to(Incentives::Table, Incentives::Id),
        )
        .check((
            "check_transactions_type",
            Expr::col(Transactions::Type).is_in(TRANSACTION_TYPE),
        ))
        .check((
            "check_transactions_commission_tier",
            Expr::col(Transactions::CommissionTier).is_in(PROMOTER_TIER),
        ))
        .check((
            "check_transactions_status",
            Expr::col(Transactions::Status).is_in(TRANSACTION_STATUS),
        ))
        .check((
            "check_transactions_amount_range",
            Expr::col(Transactions::Amount).between(-9999999999i64, 9999999999i64),
        ))
        .check((
            "check_transactions_commission_rate_range",
            Expr::col(Transactions::CommissionRate).between(-99999i64, 99999i64),
        ))
        .check((
            "check_transactions_commission_amount_range",
            Expr::col(Transactions::CommissionAmount).between(-9999999999i64, 9999999999i64),
        ))
        .check((
            "check_transaction_booking_required",
            Expr::col(Transactions::BookingId)
                .is_not_null()
                .or(Expr::col(Transactions::Type).is_in(["INCENTIVE_PAYOUT", "ADJUSTMENT"])),
        ))
        .to_owned()
}

/// Unique and plain indexes of `transactions`.
fn transactions_indexes() -> Vec<IndexCreateStatement> {
    vec![
        Index::create()
            .name("idx_transactions_booking_id")
            .table(Transactions::Table)
            .col(Transactions::BookingId)
            .to_owned(),
        Index::create()
            .name("idx_transactions_promoter_id")
            .table(Transactions::Table)
            .col(Transactions::PromoterId)
            .to_owned(),
        Index::create()
            .name("idx_transactions_venue_id")
            .table(Transactions::Table)
            .col(Transactions::VenueId)
            .to_owned(),
        Index::create()
            .name("idx_transactions_type")
            .table(Transactions::Table)
            .col(Transactions::Type)
            .to_owned(),
        Index::create()
            .name("idx_transactions_status")
            .table(Transactions::Table)
            .col(Transactions::Status)
            .to_owned(),
        Index::create()
            .name("idx_transactions_payout_id")
            .table(Transactions::Table)
            .col(Transactions::PayoutId)
            .to_owned(),
        Index::create()
            .name("idx_transactions_processed_at")
            .table(Transactions::Table)
            .col(Transactions::ProcessedAt)
            .to_owned(),
        Index::create()
            .name("idx_transactions_created_at")
            .table(Transactions::Table)
            .col(Transactions::CreatedAt)
            .to_owned(),
        Index::create()
            .name("idx_transactions_reverses_transaction_id")
            .table(Transactions::Table)
            .col(Transactions::ReversesTransactionId)
            .to_owned(),
        Index::create()
            .name("idx_transactions_incentive_id")
            .table(Transactions::Table)
            .col(Transactions::IncentiveId)
            .to_owned(),
        Index::create()
            .name("idx_transactions_venue_date_type")
            .table(Transactions::Table)
            .col(Transactions::VenueId)
            .col(Transactions::CreatedAt)
            .col(Transactions::Type)
            .to_owned(),
    ]
}

/// `payout_items`: The transactions a payout contains (named in the data model without a table).
fn payout_items() -> TableCreateStatement {
    Table::create()
        .table(PayoutItems::Table)
        .col(
            ColumnDef::new(PayoutItems::Id)
                .uuid()
                .not_null()
                .primary_key(),
        )
        .col(ColumnDef::new(PayoutItems::PayoutId).uuid().not_null())
        .col(ColumnDef::new(PayoutItems::TransactionId).uuid().not_null())
        .col(ColumnDef::new(PayoutItems::Amount).big_integer().not_null())
        .col(ColumnDef::new(PayoutItems::Type).string().not_null())
        .col(
            ColumnDef::new(PayoutItems::CreatedAt)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .foreign_key(
            ForeignKey::create()
                .name("fk_payout_items_payout_id")
                .from(PayoutItems::Table, PayoutItems::PayoutId)
                .to(Payouts::Table, Payouts::Id)
                .on_delete(ForeignKeyAction::Cascade),
        )
        .foreign_key(
            ForeignKey::create()
                .name("fk_payout_items_transaction_id")
                .from(PayoutItems::Table, PayoutItems::TransactionId)
                .to(Transactions::Table, Transactions::Id),
        )
        .check((
            "check_payout_items_type",
            Expr::col(PayoutItems::Type).is_in(TRANSACTION_TYPE),
        ))
        .check((
            "check_payout_items_amount_range",
            Expr::col(PayoutItems::Amount).between(-9999999999i64, 9999999999i64),
        ))
        .to_owned()
}

/// Unique and plain indexes of `payout_items`.
fn payout_items_indexes() -> Vec<IndexCreateStatement> {
    vec![
        Index::create()
            .name("uq_payout_items_payout_id_transaction_id")
            .table(PayoutItems::Table)
            .col(PayoutItems::PayoutId)
            .col(PayoutItems::TransactionId)
            .unique()
            .to_owned(),
        Index::create()
            .name("idx_payout_items_payout_id")
            .table(PayoutItems::Table)
            .col(PayoutItems::PayoutId)
            .to_owned(),
        Index::create()
            .name("idx_payout_items_transaction_id")
            .table(PayoutItems::Table)
            .col(PayoutItems::TransactionId)
            .to_owned(),
    ]
}

/// `payout_holds`: Holds that stop a payout from being processed until released or until `hold_until` passes.
fn payout_holds() -> TableCreateStatement {
    Table::create()
        .table(PayoutHolds::Table)
        .col(
            ColumnDef::new(PayoutHolds::Id)
                .uuid()
                .not_null()
                .primary_key(),
        )
        .col(ColumnDef::new(PayoutHolds::PayoutId).uuid().not_null())
        .col(ColumnDef::new(PayoutHolds::Amount).big_integer().not_null())
        .col(ColumnDef::new(PayoutHolds::Reason).text().not_null())
        .col(ColumnDef::new(PayoutHolds::HoldUntil).timestamp_with_time_zone())
        .col(ColumnDef::new(PayoutHolds::CreatedBy).uuid().not_null())
        .col(
            ColumnDef::new(PayoutHolds::CreatedAt)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(ColumnDef::new(PayoutHolds::ReleasedBy).uuid())
        .col(ColumnDef::new(PayoutHolds::ReleasedAt).timestamp_with_time_zone())
        .foreign_key(
            ForeignKey::create()
                .name("fk_payout_holds_payout_id")
                .from(PayoutHolds::Table, PayoutHolds::PayoutId)
                .to(Payouts::Table, Payouts::Id)
                .on_delete(ForeignKeyAction::Cascade),
        )
        .foreign_key(
            ForeignKey::create()
                .name("fk_payout_holds_created_by")
                .from(PayoutHolds::Table, PayoutHolds::CreatedBy)
                .to(Users::Table, Users::Id),
        )
        .foreign_key(
            ForeignKey::create()
                .name("fk_payout_holds_released_by")
                .from(PayoutHolds::Table, PayoutHolds::ReleasedBy)
                .to(Users::Table, Users::Id),
        )
        .check((
            "check_payout_holds_amount_range",
            Expr::col(PayoutHolds::Amount).between(0i64, 9999999999i64),
        ))
        .to_owned()
}

/// Unique and plain indexes of `payout_holds`.
fn payout_holds_indexes() -> Vec<IndexCreateStatement> {
    vec![
        Index::create()
            .name("idx_payout_holds_payout_id")
            .table(PayoutHolds::Table)
            .col(PayoutHolds::PayoutId)
            .to_owned(),
        Index::create()
            .name("idx_payout_holds_created_by")
            .table(PayoutHolds::Table)
            .col(PayoutHolds::CreatedBy)
            .to_owned(),
        Index::create()
            .name("idx_payout_holds_hold_until")
            .table(PayoutHolds::Table)
            .col(PayoutHolds::HoldUntil)
            .to_owned(),
        Index::create()
            .name("idx_payout_holds_released_at")
            .table(PayoutHolds::Table)
            .col(PayoutHolds::ReleasedAt)
            .to_owned(),
    ]
}

/// `payout_audit`: Audit trail of a payout's status changes: who, when, from, to.
fn payout_audit() -> TableCreateStatement {
    Table::create()
        .table(PayoutAudit::Table)
        .col(
            ColumnDef::new(PayoutAudit::Id)
                .uuid()
                .not_null()
                .primary_key(),
        )
        .col(ColumnDef::new(PayoutAudit::PayoutId).uuid().not_null())
        .col(ColumnDef::new(PayoutAudit::FromStatus).string())
        .col(ColumnDef::new(PayoutAudit::ToStatus).string().not_null())
        .col(ColumnDef::new(PayoutAudit::PerformedBy).uuid())
        .col(ColumnDef::new(PayoutAudit::Reason).text())
        .col(
            ColumnDef::new(PayoutAudit::CreatedAt)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .foreign_key(
            ForeignKey::create()
                .name("fk_payout_audit_payout_id")
                .from(PayoutAudit::Table, PayoutAudit::PayoutId)
                .to(Payouts::Table, Payouts::Id)
                .on_delete(ForeignKeyAction::Cascade),
        )
        .foreign_key(
            ForeignKey::create()
                .name("fk_payout_audit_performed_by")
                .from(PayoutAudit::Table, PayoutAudit::PerformedBy)
                .to(Users::Table, Users::Id),
        )
        .check((
            "check_payout_audit_from_status",
            Expr::col(PayoutAudit::FromStatus).is_in(PAYOUT_STATUS),
        ))
        .check((
            "check_payout_audit_to_status",
            Expr::col(PayoutAudit::ToStatus).is_in(PAYOUT_STATUS),
        ))
        .to_owned()
}

/// Unique and plain indexes of `payout_audit`.
fn payout_audit_indexes() -> Vec<IndexCreateStatement> {
    vec![
        Index::create()
            .name("idx_payout_audit_payout_id")
            .table(PayoutAudit::Table)
            .col(PayoutAudit::PayoutId)
            .to_owned(),
    ]
}
