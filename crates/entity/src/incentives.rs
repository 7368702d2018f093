//! `incentives`: Incentive programmes a venue runs for its promoters: a target over a period and a reward for winners.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::enums::{IncentiveStatus, IncentiveType, PeriodType, RewardType, TargetComparison};

/// A row of `incentives`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "incentives")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub venue_id: Uuid,
    #[sea_orm(column_type = "String(StringLen::N(255))")]
    pub name: String,
    #[sea_orm(column_type = "Text")]
    pub description: Option<String>,
    pub r#type: IncentiveType,
    #[sea_orm(column_type = "String(StringLen::N(50))")]
    pub target_metric: String,
    /// Threshold in hundredths of the measured unit (DECIMAL(10,2)): 2000 = 20 bookings, $20.00, or N = 20 for TOP_N.
    pub target_threshold: i64,
    pub target_comparison: TargetComparison,
    pub reward_type: RewardType,
    /// Hundredths (DECIMAL(10,2)): cents for FIXED_AMOUNT, hundredths of a percent for PERCENTAGE_BONUS.
    pub reward_value: i64,
    #[sea_orm(column_type = "String(StringLen::N(3))")]
    pub reward_currency: String,
    #[sea_orm(column_type = "Text")]
    pub reward_description: Option<String>,
    pub period_type: PeriodType,
    pub period_start: DateTimeUtc,
    pub period_end: DateTimeUtc,
    pub is_recurring: bool,
    /// JSON array of promoter tier names (ENUM[] in the data model).
    #[sea_orm(column_type = "JsonBinary")]
    pub eligible_tiers: Json,
    pub min_tenure_days: i32,
    pub max_previous_wins: Option<i32>,
    pub status: IncentiveStatus,
    pub participant_count: i32,
    pub winner_count: i32,
    /// Money in cents (DECIMAL(12,2)).
    pub total_payout: i64,
    pub created_by: Uuid,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// When the programme was finalised (migration 15); NULL before.
    pub finalized_at: Option<DateTimeUtc>,
}

/// Relations of `incentives`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// `venue_id` -> `venues.id`.
    #[sea_orm(
        belongs_to = "super::venues::Entity",
        from = "Column::VenueId",
        to = "super::venues::Column::Id",
        on_update = "NoAction",
        on_delete = "NoAction"
    )]
    Venues,
    /// `created_by` -> `users.id`.
    #[sea_orm(
        belongs_to = "super::users::Entity",
        from = "Column::CreatedBy",
        to = "super::users::Column::Id",
        on_update = "NoAction",
        on_delete = "NoAction"
    )]
    Users,
    /// `incentive_progress` rows whose `incentive_id` is this row.
    #[sea_orm(has_many = "super::incentive_progress::Entity")]
    IncentiveProgress,
    /// `transactions` rows whose `incentive_id` is this row.
    #[sea_orm(has_many = "super::transactions::Entity")]
    Transactions,
}

impl Related<super::venues::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Venues.def()
    }
}

impl Related<super::users::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Users.def()
    }
}

impl Related<super::incentive_progress::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::IncentiveProgress.def()
    }
}

impl Related<super::transactions::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Transactions.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
