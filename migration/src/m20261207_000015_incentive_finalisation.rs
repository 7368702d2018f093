//! What finalising a programme records (DOMAIN.md "Incentives"):
//!
//! - `incentives.finalized_at` (NULL until then): when the programme was finalised, by the
//!   scheduler at `period_end` or by hand. The claim itself is the status change to
//!   COMPLETED, a conditional update: of several replicas' schedulers one changes the row,
//!   the others change nothing and move on.
//! - `promoter_tier_changes`: the audit trail of a promoter's tier (who or what raised it,
//!   from, to, when): a TIER_UPGRADE reward writes one row naming its programme.

use sea_orm_migration::prelude::*;

use crate::iden::{Incentives, PromoterTierChanges, Promoters, Users};
use crate::values::PROMOTER_TIER;

#[derive(DeriveMigrationName)]
pub struct Migration;

fn table() -> TableCreateStatement {
    type C = PromoterTierChanges;
    Table::create()
        .table(C::Table)
        .col(ColumnDef::new(C::Id).uuid().not_null().primary_key())
        .col(ColumnDef::new(C::PromoterId).uuid().not_null())
        .col(ColumnDef::new(C::FromTier).string().not_null())
        .col(ColumnDef::new(C::ToTier).string().not_null())
        .col(ColumnDef::new(C::IncentiveId).uuid())
        .col(ColumnDef::new(C::PerformedBy).uuid())
        .col(ColumnDef::new(C::Reason).text())
        .col(
            ColumnDef::new(C::CreatedAt)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .foreign_key(
            ForeignKey::create()
                .name("fk_promoter_tier_changes_promoter_id")
                .from(C::Table, C::PromoterId)
                .to(Promoters::Table, Promoters::Id)
                .on_delete(ForeignKeyAction::Cascade),
        )
        .foreign_key(
            ForeignKey::create()
                .name("fk_promoter_tier_changes_incentive_id")
                .from(C::Table, C::IncentiveId)
                .to(Incentives::Table, Incentives::Id),
        )
        .foreign_key(
            ForeignKey::create()
                .name("fk_promoter_tier_changes_performed_by")
                .from(C::Table, C::PerformedBy)
                .to(Users::Table, Users::Id),
        )
        .check((
            "check_promoter_tier_changes_from_tier",
            Expr::col(C::FromTier).is_in(PROMOTER_TIER),
        ))
        .check((
            "check_promoter_tier_changes_to_tier",
            Expr::col(C::ToTier).is_in(PROMOTER_TIER),
        ))
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Incentives::Table)
                    .add_column(ColumnDef::new(Incentives::FinalizedAt).timestamp_with_time_zone())
                    .to_owned(),
            )
            .await?;
        crate::create_table_with_indexes(
            manager,
            table(),
            vec![
                Index::create()
                    .name("idx_promoter_tier_changes_promoter_id")
                    .table(PromoterTierChanges::Table)
                    .col(PromoterTierChanges::PromoterId)
                    .to_owned(),
            ],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PromoterTierChanges::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Incentives::Table)
                    .drop_column(Incentives::FinalizedAt)
                    .to_owned(),
            )
            .await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
