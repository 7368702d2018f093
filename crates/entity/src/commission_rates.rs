//! `commission_rates`: A venue's commission rates per promoter tier and model, over time.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::enums::{CommissionModel, PromoterTier};

/// A row of `commission_rates`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "commission_rates")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub venue_id: Uuid,
    pub tier: PromoterTier,
    pub model: CommissionModel,
    /// Amount or fraction in ten-thousandths (DECIMAL(10,4)): 1000 = 0.1000 (10 % or 0.10 per cover).
    pub value: i64,
    /// Money in cents (DECIMAL(8,2)).
    pub minimum_booking: i64,
    /// Money in cents (DECIMAL(8,2)).
    pub maximum_payout: Option<i64>,
    pub min_monthly_bookings: Option<i32>,
    /// Fraction in ten-thousandths (DECIMAL(5,4)): 1000 = 0.1000 = 10 %.
    pub min_conversion_rate: Option<i64>,
    /// Fraction in ten-thousandths (DECIMAL(5,4)): 1000 = 0.1000 = 10 %.
    pub max_cancel_rate: Option<i64>,
    pub effective_from: DateTimeUtc,
    pub effective_to: Option<DateTimeUtc>,
    pub is_active: bool,
    pub created_by: Uuid,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

/// Relations of `commission_rates`.
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
    /// `commission_assignments` rows whose `commission_rate_id` is this row.
    #[sea_orm(has_many = "super::commission_assignments::Entity")]
    CommissionAssignments,
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

impl Related<super::commission_assignments::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::CommissionAssignments.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
