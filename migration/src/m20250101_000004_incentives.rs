//! Incentive programmes and their progress (before the ledger, which refers to incentives).

use sea_orm_migration::prelude::*;

use crate::iden::*;
use crate::values::{
    INCENTIVE_STATUS, INCENTIVE_TYPE, PERIOD_TYPE, PROGRESS_STATUS, REWARD_TYPE, TARGET_COMPARISON,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, indexes) in [
            (incentives(), incentives_indexes()),
            (incentive_progress(), incentive_progress_indexes()),
        ] {
            crate::create_table_with_indexes(manager, table, indexes).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            IncentiveProgress::Table.into_iden(),
            Incentives::Table.into_iden(),
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

/// `incentives`: Incentive programmes a venue runs for its promoters: a target over a period and a reward for winners.
fn incentives() -> TableCreateStatement {
    Table::create()
        .table(Incentives::Table)
        .col(
            ColumnDef::new(Incentives::Id)
                .uuid()
                .not_null()
                .primary_key(),
        )
        .col(ColumnDef::new(Incentives::VenueId).uuid().not_null())
        .col(ColumnDef::new(Incentives::Name).string_len(255).not_null())
        .col(ColumnDef::new(Incentives::Description).text())
        .col(ColumnDef::new(Incentives::Type).string().not_null())
        .col(
            ColumnDef::new(Incentives::TargetMetric)
                .string_len(50)
                .not_null(),
        )
        .col(
            ColumnDef::new(Incentives::TargetThreshold)
                .big_integer()
                .not_null(),
        )
        .col(
            ColumnDef::new(Incentives::TargetComparison)
                .string()
                .not_null(),
        )
        .col(ColumnDef::new(Incentives::RewardType).string().not_null())
        .col(
            ColumnDef::new(Incentives::RewardValue)
                .big_integer()
                .not_null(),
        )
        .col(
            ColumnDef::new(Incentives::RewardCurrency)
                .string_len(3)
                .not_null()
                .default("USD"),
        )
        .col(ColumnDef::new(Incentives::RewardDescription).text())
        .col(ColumnDef::new(Incentives::PeriodType).string().not_null())
        .col(
            ColumnDef::new(Incentives::PeriodStart)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(
            ColumnDef::new(Incentives::PeriodEnd)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(
            ColumnDef::new(Incentives::IsRecurring)
                .boolean()
                .not_null()
                .default(false),
        )
        .col(
            ColumnDef::new(Incentives::EligibleTiers)
                .json_binary()
                .not_null()
                .default(r#"["STANDARD","PREMIUM","VIP"]"#),
        )
        .col(
            ColumnDef::new(Incentives::MinTenureDays)
                .integer()
                .not_null()
                .default(0),
        )
        .col(ColumnDef::new(Incentives::MaxPreviousWins).integer())
        .col(
            ColumnDef::new(Incentives::Status)
                .string()
                .not_null()
                .default("DRAFT"),
        )
        .col(
            ColumnDef::new(Incentives::ParticipantCount)
                .integer()
                .not_null()
                .default(0),
        )
        .col(
            ColumnDef::new(Incentives::WinnerCount)
                .integer()
                .not_null()
                .default(0),
        )
        .col(
            ColumnDef::new(Incentives::TotalPayout)
                .big_integer()
                .not_null()
                .default(0i64),
        )
        .col(ColumnDef::new(Incentives::CreatedBy).uuid().not_null())
        .col(
            ColumnDef::new(Incentives::CreatedAt)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(
            ColumnDef::new(Incentives::UpdatedAt)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .foreign_key(
            ForeignKey::create()
                .name("fk_incentives_venue_id")
                .from(Incentives::Table, Incentives::VenueId)
                .to(Venues::Table, Venues::Id),
        )
        .foreign_key(
            ForeignKey::create()
                .name("fk_incentives_created_by")
                .from(Incentives::Table, Incentives::CreatedBy)
                .to(Users::Table, Users::Id),
        )
        .check((
            "check_incentives_type",
            Expr::col(Incentives::Type).is_in(INCENTIVE_TYPE),
        ))
        .check((
            "check_incentives_target_comparison",
            Expr::col(Incentives::TargetComparison).is_in(TARGET_COMPARISON),
        ))
        .check((
            "check_incentives_reward_type",
            Expr::col(Incentives::RewardType).is_in(REWARD_TYPE),
        ))
        .check((
            "check_incentives_period_type",
            Expr::col(Incentives::PeriodType).is_in(PERIOD_TYPE),
        ))
        .check((
            "check_incentives_status",
            Expr::col(Incentives::Status).is_in(INCENTIVE_STATUS),
        ))
        .check((
            "check_incentives_target_threshold_range",
            Expr::col(Incentives::TargetThreshold).between(0i64, 9999999999i64),
        ))
        .check((
            "check_incentives_reward_value_range",
            Expr::col(Incentives::RewardValue).between(0i64, 9999999999i64),
        ))
        .check((
            "check_incentives_total_payout_range",
            Expr::col(Incentives::TotalPayout).between(0i64, 999999999999i64),
        ))
        .check((
            "check_incentive_period",
            Expr::col(Incentives::PeriodEnd).gt(Expr::col(Incentives::PeriodStart)),
        ))
        .to_owned()
}

/// Unique and plain indexes of `incentives`.
fn incentives_indexes() -> Vec<IndexCreateStatement> {
    vec![
        Index::create()
            .name("idx_incentives_venue_id")
            .table(Incentives::Table)
            .col(Incentives::VenueId)
            .to_owned(),
        Index::create()
            .name("idx_incentives_type")
            .table(Incentives::Table)
            .col(Incentives::Type)
            .to_owned(),
        Index::create()
            .name("idx_incentives_status")
            .table(Incentives::Table)
            .col(Incentives::Status)
            .to_owned(),
        Index::create()
            .name("idx_incentives_period_start")
            .table(Incentives::Table)
            .col(Incentives::PeriodStart)
            .to_owned(),
        Index::create()
            .name("idx_incentives_period_end")
            .table(Incentives::Table)
            .col(Incentives::PeriodEnd)
            .to_owned(),
        Index::create()
            .name("idx_incentives_created_by")
            .table(Incentives::Table)
            .col(Incentives::CreatedBy)
            .to_owned(),
    ]
}

/// `incentive_progress`: Each eligible promoter's progress in one incentive programme.
fn incentive_progress() -> TableCreateStatement {
    Table::create()
        .table(IncentiveProgress::Table)
        .col(
            ColumnDef::new(IncentiveProgress::Id)
                .uuid()
                .not_null()
                .primary_key(),
        )
        .col(
            ColumnDef::new(IncentiveProgress::IncentiveId)
                .uuid()
                .not_null(),
        )
        .col(
            ColumnDef::new(IncentiveProgress::PromoterId)
                .uuid()
                .not_null(),
        )
        .col(
            ColumnDef::new(IncentiveProgress::CurrentValue)
                .big_integer()
                .not_null()
                .default(0i64),
        )
        .col(
            ColumnDef::new(IncentiveProgress::TargetValue)
                .big_integer()
                .not_null(),
        )
        .col(
            ColumnDef::new(IncentiveProgress::PercentComplete)
                .big_integer()
                .not_null()
                .default(0i64),
        )
        .col(
            ColumnDef::new(IncentiveProgress::Status)
                .string()
                .not_null()
                .default("IN_PROGRESS"),
        )
        .col(ColumnDef::new(IncentiveProgress::AchievedAt).timestamp_with_time_zone())
        .col(ColumnDef::new(IncentiveProgress::RewardEarned).big_integer())
        .col(ColumnDef::new(IncentiveProgress::RewardPaidAt).timestamp_with_time_zone())
        .col(
            ColumnDef::new(IncentiveProgress::LastUpdated)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(
            ColumnDef::new(IncentiveProgress::CreatedAt)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .foreign_key(
            ForeignKey::create()
                .name("fk_incentive_progress_incentive_id")
                .from(IncentiveProgress::Table, IncentiveProgress::IncentiveId)
                .to(Incentives::Table, Incentives::Id)
                .on_delete(ForeignKeyAction::Cascade),
        )
        .foreign_key(
            ForeignKey::create()
                .name("fk_incentive_progress_promoter_id")
                .from(IncentiveProgress::Table, IncentiveProgress::PromoterId)
                .to(Promoters::Table, Promoters::Id)
                .on_delete(ForeignKeyAction::Cascade),
        )
        .check((
            "check_incentive_progress_status",
            Expr::col(IncentiveProgress::Status).is_in(PROGRESS_STATUS),
        ))
        .check((
            "check_incentive_progress_current_value_range",
            Expr::col(IncentiveProgress::CurrentValue).between(0i64, 9999999999i64),
        ))
        .check((
            "check_incentive_progress_target_value_range",
            Expr::col(IncentiveProgress::TargetValue).between(0i64, 9999999999i64),
        ))
        .check((
            "check_incentive_progress_percent_complete_range",
            Expr::col(IncentiveProgress::PercentComplete).between(0i64, 10000i64),
        ))
        .check((
            "check_incentive_progress_reward_earned_range",
            Expr::col(IncentiveProgress::RewardEarned).between(0i64, 9999999999i64),
        ))
        .to_owned()
}

/// Unique and plain indexes of `incentive_progress`.
fn incentive_progress_indexes() -> Vec<IndexCreateStatement> {
    vec![
        Index::create()
            .name("uq_incentive_progress_incentive_id_promoter_id")
            .table(IncentiveProgress::Table)
            .col(IncentiveProgress::IncentiveId)
            .col(IncentiveProgress::PromoterId)
            .unique()
            .to_owned(),
        Index::create()
            .name("idx_incentive_progress_incentive_id")
            .table(IncentiveProgress::Table)
            .col(IncentiveProgress::IncentiveId)
            .to_owned(),
        Index::create()
            .name("idx_incentive_progress_promoter_id")
            .table(IncentiveProgress::Table)
            .col(IncentiveProgress::PromoterId)
            .to_owned(),
        Index::create()
            .name("idx_incentive_progress_status")
            .table(IncentiveProgress::Table)
            .col(IncentiveProgress::Status)
            .to_owned(),
        Index::create()
            .name("idx_incentive_progress_achieved_at")
            .table(IncentiveProgress::Table)
            .col(IncentiveProgress::AchievedAt)
            .to_owned(),
        Index::create()
            .name("idx_incentive_progress_last_updated")
            .table(IncentiveProgress::Table)
            .col(IncentiveProgress::LastUpdated)
            .to_owned(),
    ]
}
