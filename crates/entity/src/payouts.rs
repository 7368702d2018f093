//! `payouts`: Payments to a promoter for a period, built from their earned transactions, with an approval workflow.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::enums::{PayoutMethod, PayoutStatus};

/// A row of `payouts`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "payouts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub venue_id: Uuid,
    pub promoter_id: Option<Uuid>,
    /// Money in cents (DECIMAL(10,2)).
    pub amount: i64,
    #[sea_orm(column_type = "String(StringLen::N(3))")]
    pub currency: String,
    pub period_from: DateTimeUtc,
    pub period_to: DateTimeUtc,
    pub status: PayoutStatus,
    pub scheduled_for: DateTimeUtc,
    pub processed_at: Option<DateTimeUtc>,
    /// Money in cents (DECIMAL(10,2)).
    pub commissions_amount: i64,
    /// Money in cents (DECIMAL(10,2)).
    pub incentives_amount: i64,
    /// Money in cents (DECIMAL(10,2)); negative when clawbacks exceed other adjustments.
    pub adjustments_amount: i64,
    /// Money in cents (DECIMAL(10,2)).
    pub fees_amount: i64,
    pub method: PayoutMethod,
    #[sea_orm(column_type = "String(StringLen::N(255))")]
    pub reference: Option<String>,
    pub approved_by: Option<Uuid>,
    pub approved_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// Who generated the payout (null for payouts made before this was recorded).
    pub created_by: Option<Uuid>,
    /// Who last submitted it for approval; null while DRAFT. The approver must be someone
    /// else (four eyes).
    pub submitted_by: Option<Uuid>,
}

/// Relations of `payouts`.
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
    /// `promoter_id` -> `promoters.id`.
    #[sea_orm(
        belongs_to = "super::promoters::Entity",
        from = "Column::PromoterId",
        to = "super::promoters::Column::Id",
        on_update = "NoAction",
        on_delete = "NoAction"
    )]
    Promoters,
    /// `approved_by` -> `users.id`.
    #[sea_orm(
        belongs_to = "super::users::Entity",
        from = "Column::ApprovedBy",
        to = "super::users::Column::Id",
        on_update = "NoAction",
        on_delete = "NoAction"
    )]
    Users,
    /// `transactions` rows whose `payout_id` is this row.
    #[sea_orm(has_many = "super::transactions::Entity")]
    Transactions,
    /// `payout_items` rows whose `payout_id` is this row.
    #[sea_orm(has_many = "super::payout_items::Entity")]
    PayoutItems,
    /// `payout_holds` rows whose `payout_id` is this row.
    #[sea_orm(has_many = "super::payout_holds::Entity")]
    PayoutHolds,
    /// `payout_audit` rows whose `payout_id` is this row.
    #[sea_orm(has_many = "super::payout_audit::Entity")]
    PayoutAudit,
}

impl Related<super::venues::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Venues.def()
    }
}

impl Related<super::promoters::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Promoters.def()
    }
}

impl Related<super::users::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Users.def()
    }
}

impl Related<super::transactions::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Transactions.def()
    }
}

impl Related<super::payout_items::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::PayoutItems.def()
    }
}

impl Related<super::payout_holds::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::PayoutHolds.def()
    }
}

impl Related<super::payout_audit::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::PayoutAudit.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
