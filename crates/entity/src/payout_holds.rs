//! `payout_holds`: Holds that stop a payout from being processed until released or until `hold_until` passes.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A row of `payout_holds`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "payout_holds")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub payout_id: Uuid,
    /// Money in cents (DECIMAL(10,2)).
    pub amount: i64,
    #[sea_orm(column_type = "Text")]
    pub reason: String,
    pub hold_until: Option<DateTimeUtc>,
    pub created_by: Uuid,
    pub created_at: DateTimeUtc,
    pub released_by: Option<Uuid>,
    pub released_at: Option<DateTimeUtc>,
}

/// Relations of `payout_holds`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// `payout_id` -> `payouts.id`.
    #[sea_orm(
        belongs_to = "super::payouts::Entity",
        from = "Column::PayoutId",
        to = "super::payouts::Column::Id",
        on_update = "NoAction",
        on_delete = "Cascade"
    )]
    Payouts,
    /// `created_by` -> `users.id`.
    #[sea_orm(
        belongs_to = "super::users::Entity",
        from = "Column::CreatedBy",
        to = "super::users::Column::Id",
        on_update = "NoAction",
        on_delete = "NoAction"
    )]
    Users,
    /// `released_by` -> `users.id`.
    #[sea_orm(
        belongs_to = "super::users::Entity",
        from = "Column::ReleasedBy",
        to = "super::users::Column::Id",
        on_update = "NoAction",
        on_delete = "NoAction"
    )]
    ReleasedBy,
}

impl Related<super::payouts::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Payouts.def()
    }
}

impl Related<super::users::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Users.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
