//! `incentive_progress`: Each eligible promoter's progress in one incentive programme.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::enums::ProgressStatus;

/// A row of `incentive_progress`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "incentive_progress")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub incentive_id: Uuid,
    pub promoter_id: Uuid,
    /// Measured value in hundredths of the unit (DECIMAL(10,2)).
    pub current_value: i64,
    /// Target in hundredths of the unit (DECIMAL(10,2)).
    pub target_value: i64,
    /// Percent in hundredths (DECIMAL(5,2)): 10000 = 100.00 %.
    pub percent_complete: i64,
    pub status: ProgressStatus,
    pub achieved_at: Option<DateTimeUtc>,
    /// Money in cents (DECIMAL(10,2)).
    pub reward_earned: Option<i64>,
    pub reward_paid_at: Option<DateTimeUtc>,
    pub last_updated: DateTimeUtc,
    pub created_at: DateTimeUtc,
    /// CONVERSION_RATE: the promoter's COMPLETED bookings in the period (0 for other
    /// types; migration 14).
    pub completed_bookings: i32,
    /// CONVERSION_RATE: their COMPLETED + CANCELLED + NO_SHOW bookings in the period, the
    /// denominator (0 for other types; migration 14).
    pub closed_bookings: i32,
    /// When the row reached its current value (TOP_N's tie-break); NULL until it first
    /// moves (migration 14).
    pub value_reached_at: Option<DateTimeUtc>,
}

/// Relations of `incentive_progress`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// `incentive_id` -> `incentives.id`.
    #[sea_orm(
        belongs_to = "super::incentives::Entity",
        from = "Column::IncentiveId",
        to = "super::incentives::Column::Id",
        on_update = "NoAction",
        on_delete = "Cascade"
    )]
    Incentives,
    /// `promoter_id` -> `promoters.id`.
    #[sea_orm(
        belongs_to = "super::promoters::Entity",
        from = "Column::PromoterId",
        to = "super::promoters::Column::Id",
        on_update = "NoAction",
        on_delete = "Cascade"
    )]
    Promoters,
}

impl Related<super::incentives::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Incentives.def()
    }
}

impl Related<super::promoters::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Promoters.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
