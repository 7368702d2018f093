//! `promoter_tier_changes`: Audit trail of a promoter's tier: from, to, when, and what raised it (a programme's TIER_UPGRADE reward, or a user).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::enums::PromoterTier;

/// A row of `promoter_tier_changes`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "promoter_tier_changes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub promoter_id: Uuid,
    pub from_tier: PromoterTier,
    pub to_tier: PromoterTier,
    /// The programme whose TIER_UPGRADE reward made the change, if one did.
    pub incentive_id: Option<Uuid>,
    /// The user who made the change (the one who finalised the programme; none for the
    /// scheduler).
    pub performed_by: Option<Uuid>,
    #[sea_orm(column_type = "Text")]
    pub reason: Option<String>,
    pub created_at: DateTimeUtc,
}

/// Relations of `promoter_tier_changes`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// `promoter_id` -> `promoters.id`.
    #[sea_orm(
        belongs_to = "super::promoters::Entity",
        from = "Column::PromoterId",
        to = "super::promoters::Column::Id",
        on_update = "NoAction",
        on_delete = "Cascade"
    )]
    Promoters,
    /// `incentive_id` -> `incentives.id`.
    #[sea_orm(
        belongs_to = "super::incentives::Entity",
        from = "Column::IncentiveId",
        to = "super::incentives::Column::Id",
        on_update = "NoAction",
        on_delete = "NoAction"
    )]
    Incentives,
    /// `performed_by` -> `users.id`.
    #[sea_orm(
        belongs_to = "super::users::Entity",
        from = "Column::PerformedBy",
        to = "super::users::Column::Id",
        on_update = "NoAction",
        on_delete = "NoAction"
    )]
    Users,
}

impl ActiveModelBehavior for ActiveModel {}
