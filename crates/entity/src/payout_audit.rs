//! `payout_audit`: Audit trail of a payout's status changes: who, when, from, to.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::enums::PayoutStatus;

/// A row of `payout_audit`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "payout_audit")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub payout_id: Uuid,
    pub from_status: Option<PayoutStatus>,
    pub to_status: PayoutStatus,
    pub performed_by: Option<Uuid>,
    #[sea_orm(column_type = "Text")]
    pub reason: Option<String>,
    pub created_at: DateTimeUtc,
}

/// Relations of `payout_audit`.
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
