//! `commission_assignments`: Which commission rate applies to a promoter over which period.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::enums::{CommissionModel, PromoterTier};

/// A row of `commission_assignments`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "commission_assignments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub promoter_id: Uuid,
    pub commission_rate_id: Uuid,
    pub tier: PromoterTier,
    pub model: CommissionModel,
    /// Rate in ten-thousandths (DECIMAL(10,4)), same meaning as commission_rates.value.
    pub rate: i64,
    pub effective_from: DateTimeUtc,
    pub effective_to: Option<DateTimeUtc>,
    pub assigned_by: Uuid,
    pub assigned_at: DateTimeUtc,
    #[sea_orm(column_type = "Text")]
    pub notes: Option<String>,
}

/// Relations of `commission_assignments`.
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
    /// `commission_rate_id` -> `commission_rates.id`.
    #[sea_orm(
        belongs_to = "super::commission_rates::Entity",
        from = "Column::CommissionRateId",
        to = "super::commission_rates::Column::Id",
        on_update = "NoAction",
        on_delete = "NoAction"
    )]
    CommissionRates,
    /// `assigned_by` -> `users.id`.
    #[sea_orm(
        belongs_to = "super::users::Entity",
        from = "Column::AssignedBy",
        to = "super::users::Column::Id",
        on_update = "NoAction",
        on_delete = "NoAction"
    )]
    Users,
}

impl Related<super::promoters::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Promoters.def()
    }
}

impl Related<super::commission_rates::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::CommissionRates.def()
    }
}

impl Related<super::users::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Users.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
