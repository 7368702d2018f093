//! Commission rates and commission assignments.

use sea_orm_migration::prelude::*;

use crate::iden::*;
use crate::values::{COMMISSION_MODEL, PROMOTER_TIER};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, indexes) in [
            (commission_rates(), commission_rates_indexes()),
            (commission_assignments(), commission_assignments_indexes()),
        ] {
            crate::create_table_with_indexes(manager, table, indexes).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            CommissionAssignments::Table.into_iden(),
            CommissionRates::Table.into_iden(),
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

/// `commission_rates`: A venue's commission rates per promoter tier and model, over time.
fn commission_rates() -> TableCreateStatement {
    Table::create()
        .table(CommissionRates::Table)
        .col(
            ColumnDef::new(CommissionRates::Id)
                .uuid()
                .not_null()
                .primary_key(),
        )
        .col(ColumnDef::new(CommissionRates::VenueId).uuid().not_null())
        .col(ColumnDef::new(CommissionRates::Tier).string().not_null())
        .col(ColumnDef::new(CommissionRates::Model).string().not_null())
        .col(
            ColumnDef::new(CommissionRates::Value)
                .big_integer()
                .not_null(),
        )
        .col(
            ColumnDef::new(CommissionRates::MinimumBooking)
                .big_integer()
                .not_null()
                .default(0i64),
        )
        .col(ColumnDef::new(CommissionRates::MaximumPayout).big_integer())
        .col(ColumnDef::new(CommissionRates::MinMonthlyBookings).integer())
        .col(ColumnDef::new(CommissionRates::MinConversionRate).big_integer())
        .col(ColumnDef::new(CommissionRates::MaxCancelRate).big_integer())
        .col(
            ColumnDef::new(CommissionRates::EffectiveFrom)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(ColumnDef::new(CommissionRates::EffectiveTo).timestamp_with_time_zone())
        .col(
            ColumnDef::new(CommissionRates::IsActive)
                .boolean()
                .not_null()
                .default(true),
        )
        .col(ColumnDef::new(CommissionRates::CreatedBy).uuid().not_null())
        .col(
            ColumnDef::new(CommissionRates::CreatedAt)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(
            ColumnDef::new(CommissionRates::UpdatedAt)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .foreign_key(
            ForeignKey::create()
                .name("fk_commission_rates_venue_id")
                .from(CommissionRates::Table, CommissionRates::VenueId)
                .to(Venues::Table, Venues::Id),
        )
        .foreign_key(
            ForeignKey::create()
                .name("fk_commission_rates_created_by")
                .from(CommissionRates::Table, CommissionRates::CreatedBy)
                .to(Users::Table, Users::Id),
        )
        .check((
            "check_commission_rates_tier",
            Expr::col(CommissionRates::Tier).is_in(PROMOTER_TIER),
        ))
        .check((
            "check_commission_rates_model",
            Expr::col(CommissionRates::Model).is_in(COMMISSION_MODEL),
        ))
        .check((
            "check_commission_rates_value_range",
            Expr::col(CommissionRates::Value).lte(9999999999i64),
        ))
        .check((
            "check_commission_rates_minimum_booking_range",
            Expr::col(CommissionRates::MinimumBooking).between(0i64, 99999999i64),
        ))
        .check((
            "check_commission_rates_maximum_payout_range",
            Expr::col(CommissionRates::MaximumPayout).between(0i64, 99999999i64),
        ))
        .check((
            "check_commission_rates_min_conversion_rate_range",
            Expr::col(CommissionRates::MinConversionRate).between(0i64, 10000i64),
        ))
        .check((
            "check_commission_rates_max_cancel_rate_range",
            Expr::col(CommissionRates::MaxCancelRate).between(0i64, 10000i64),
        ))
        .check((
            "check_commission_value_positive",
            Expr::col(CommissionRates::Value).gte(0),
        ))
        .check((
            "check_effective_period",
            Expr::col(CommissionRates::EffectiveTo)
                .is_null()
                .or(Expr::col(CommissionRates::EffectiveTo)
                    .gt(Expr::col(CommissionRates::EffectiveFrom))),
        ))
        .to_owned()
}

/// Unique and plain indexes of `commission_rates`.
fn commission_rates_indexes() -> Vec<IndexCreateStatement> {
    vec![
        // The document's UNIQUE(venue_id, tier, model, effective_from) WHERE is_active, for
        // every model but TIERED: a TIERED ladder is several active rows of one tier and
        // model (DOMAIN.md "Commissions"), told apart by min_monthly_bookings, so its rows
        // are unique per rung instead (next index).
        Index::create()
            .name("uq_commission_rates_active_venue_id_tier_model_effective_from")
            .table(CommissionRates::Table)
            .col(CommissionRates::VenueId)
            .col(CommissionRates::Tier)
            .col(CommissionRates::Model)
            .col(CommissionRates::EffectiveFrom)
            .unique()
            .and_where(Expr::col(CommissionRates::IsActive).eq(true))
            .and_where(Expr::col(CommissionRates::Model).ne("TIERED"))
            .to_owned(),
        Index::create()
            .name("uq_commission_rates_active_tiered_rung")
            .table(CommissionRates::Table)
            .col(CommissionRates::VenueId)
            .col(CommissionRates::Tier)
            .col(CommissionRates::EffectiveFrom)
            .col(CommissionRates::MinMonthlyBookings)
            .unique()
            .and_where(Expr::col(CommissionRates::IsActive).eq(true))
            .and_where(Expr::col(CommissionRates::Model).eq("TIERED"))
            .to_owned(),
        Index::create()
            .name("idx_commission_rates_venue_id")
            .table(CommissionRates::Table)
            .col(CommissionRates::VenueId)
            .to_owned(),
        Index::create()
            .name("idx_commission_rates_tier")
            .table(CommissionRates::Table)
            .col(CommissionRates::Tier)
            .to_owned(),
        Index::create()
            .name("idx_commission_rates_model")
            .table(CommissionRates::Table)
            .col(CommissionRates::Model)
            .to_owned(),
        Index::create()
            .name("idx_commission_rates_effective_from")
            .table(CommissionRates::Table)
            .col(CommissionRates::EffectiveFrom)
            .to_owned(),
        Index::create()
            .name("idx_commission_rates_is_active")
            .table(CommissionRates::Table)
            .col(CommissionRates::IsActive)
            .to_owned(),
    ]
}

/// `commission_assignments`: Which commission rate applies to a promoter over which period.
fn commission_assignments() -> TableCreateStatement {
    Table::create()
        .table(CommissionAssignments::Table)
        .col(
            ColumnDef::new(CommissionAssignments::Id)
                .uuid()
                .not_null()
                .primary_key(),
        )
        .col(
            ColumnDef::new(CommissionAssignments::PromoterId)
                .uuid()
                .not_null(),
        )
        .col(
            ColumnDef::new(CommissionAssignments::CommissionRateId)
                .uuid()
                .not_null(),
        )
        .col(
            ColumnDef::new(CommissionAssignments::Tier)
                .string()
                .not_null(),
        )
        .col(
            ColumnDef::new(CommissionAssignments::Model)
                .string()
                .not_null(),
        )
        .col(
            ColumnDef::new(CommissionAssignments::Rate)
                .big_integer()
                .not_null(),
        )
        .col(
            ColumnDef::new(CommissionAssignments::EffectiveFrom)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(ColumnDef::new(CommissionAssignments::EffectiveTo).timestamp_with_time_zone())
        .col(
            ColumnDef::new(CommissionAssignments::AssignedBy)
                .uuid()
                .not_null(),
        )
        .col(
            ColumnDef::new(CommissionAssignments::AssignedAt)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(ColumnDef::new(CommissionAssignments::Notes).text())
        .foreign_key(
            ForeignKey::create()
                .name("fk_commission_assignments_promoter_id")
                .from(
                    CommissionAssignments::Table,
                    CommissionAssignments::PromoterId,
                )
                .to(Promoters::Table, Promoters::Id)
                .on_delete(ForeignKeyAction::Cascade),
        )
        .foreign_key(
            ForeignKey::create()
                .name("fk_commission_assignments_commission_rate_id")
                .from(
                    CommissionAssignments::Table,
                    CommissionAssignments::CommissionRateId,
                )
                .to(CommissionRates::Table, CommissionRates::Id),
        )
        .foreign_key(
            ForeignKey::create()
                .name("fk_commission_assignments_assigned_by")
                .from(
                    CommissionAssignments::Table,
                    CommissionAssignments::AssignedBy,
                )
                .to(Users::Table, Users::Id),
        )
        .check((
            "check_commission_assignments_tier",
            Expr::col(CommissionAssignments::Tier).is_in(PROMOTER_TIER),
        ))
        .check((
            "check_commission_assignments_model",
            Expr::col(CommissionAssignments::Model).is_in(COMMISSION_MODEL),
        ))
        .check((
            "check_commission_assignments_rate_range",
            Expr::col(CommissionAssignments::Rate).between(0i64, 9999999999i64),
        ))
        .check((
            "check_assignment_effective_period",
            Expr::col(CommissionAssignments::EffectiveTo)
                .is_null()
                .or(Expr::col(CommissionAssignments::EffectiveTo)
                    .gt(Expr::col(CommissionAssignments::EffectiveFrom))),
        ))
        .to_owned()
}

/// Unique and plain indexes of `commission_assignments`.
fn commission_assignments_indexes() -> Vec<IndexCreateStatement> {
    vec![
        Index::create()
            .name("idx_commission_assignments_promoter_id")
            .table(CommissionAssignments::Table)
            .col(CommissionAssignments::PromoterId)
            .to_owned(),
        Index::create()
            .name("idx_commission_assignments_commission_rate_id")
            .table(CommissionAssignments::Table)
            .col(CommissionAssignments::CommissionRateId)
            .to_owned(),
        Index::create()
            .name("idx_commission_assignments_tier")
            .table(CommissionAssignments::Table)
            .col(CommissionAssignments::Tier)
            .to_owned(),
        Index::create()
            .name("idx_commission_assignments_effective_from")
            .table(CommissionAssignments::Table)
            .col(CommissionAssignments::EffectiveFrom)
            .to_owned(),
        Index::create()
            .name("idx_commission_assignments_assigned_by")
            .table(CommissionAssignments::Table)
            .col(CommissionAssignments::AssignedBy)
            .to_owned(),
        Index::create()
            .name("idx_commission_assignments_active")
            .table(CommissionAssignments::Table)
            .col(CommissionAssignments::PromoterId)
            .col(CommissionAssignments::EffectiveFrom)
            .and_where(Expr::col(CommissionAssignments::EffectiveTo).is_null())
            .to_owned(),
    ]
}
