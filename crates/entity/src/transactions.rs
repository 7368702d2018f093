//! `transactions`: The append-only ledger: fees, commissions, refunds, adjustments and incentive rewards.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::enums::{PromoterTier, TransactionStatus, TransactionType};

/// A row of `transactions`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "transactions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// NULL only for INCENTIVE_PAYOUT and ADJUSTMENT rows (deviation: NOT NULL in the data model).
    pub booking_id: Option<Uuid>,
    pub promoter_id: Option<Uuid>,
    pub venue_id: Uuid,
    pub r#type: TransactionType,
    /// Money in cents (DECIMAL(10,2)); negative for refunds and clawbacks.
    pub amount: i64,
    #[sea_orm(column_type = "String(StringLen::N(3))")]
    pub currency: String,
    #[sea_orm(column_type = "Text")]
    pub description: String,
    /// Rate in ten-thousandths (DECIMAL(5,4)).
    pub commission_rate: Option<i64>,
    /// Money in cents (DECIMAL(10,2)).
    pub commission_amount: Option<i64>,
    pub commission_tier: Option<PromoterTier>,
    pub status: TransactionStatus,
    pub processed_at: Option<DateTimeUtc>,
    pub settled_at: Option<DateTimeUtc>,
    #[sea_orm(column_type = "String(StringLen::N(255))")]
    pub external_transaction_id: Option<String>,
    pub payout_id: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The transaction this one reverses (a clawback points at its commission). Not in the data model.
    pub reverses_transaction_id: Option<Uuid>,
    /// The incentive programme an INCENTIVE_PAYOUT rewards. Not in the data model.
    pub incentive_id: Option<Uuid>,
}

/// Relations of `transactions`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// `booking_id` -> `bookings.id`.
    #[sea_orm(
        belongs_to = "super::bookings::Entity",
        from = "Column::BookingId",
        to = "super::bookings::Column::Id",
        on_update = "NoAction",
        on_delete = "NoAction"
    )]
    Bookings,
    /// `promoter_id` -> `promoters.id`.
    #[sea_orm(
        belongs_to = "super::promoters::Entity",
        from = "Column::PromoterId",
        to = "super::promoters::Column::Id",
        on_update = "NoAction",
        on_delete = "NoAction"
    )]
    Promoters,
    /// `venue_id` -> `venues.id`.
    #[sea_orm(
        belongs_to = "super::venues::Entity",
        from = "Column::VenueId",
        to = "super::venues::Column::Id",
        on_update = "NoAction",
        on_delete = "NoAction"
    )]
    Venues,
    /// `payout_id` -> `payouts.id`.
    #[sea_orm(
        belongs_to = "super::payouts::Entity",
        from = "Column::PayoutId",
        to = "super::payouts::Column::Id",
        on_update = "NoAction",
        on_delete = "NoAction"
    )]
    Payouts,
    /// `reverses_transaction_id` -> `transactions.id`.
    #[sea_orm(
        belongs_to = "Entity",
        from = "Column::ReversesTransactionId",
        to = "Column::Id",
        on_update = "NoAction",
        on_delete = "NoAction"
    )]
    ReversesTransaction,
    /// `incentive_id` -> `incentives.id`.
    #[sea_orm(
        belongs_to = "super::incentives::Entity",
        from = "Column::IncentiveId",
        to = "super::incentives::Column::Id",
        on_update = "NoAction",
        on_delete = "NoAction"
    )]
    Incentives,
    /// Transactions whose `reverses_transaction_id` points at this one.
    #[sea_orm(has_many = "Entity", via_rel = "Relation::ReversesTransaction")]
    Reversals,
    /// `payout_items` rows whose `transaction_id` is this row.
    #[sea_orm(has_many = "super::payout_items::Entity")]
    PayoutItems,
}

impl Related<super::bookings::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Bookings.def()
    }
}

impl Related<super::promoters::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Promoters.def()
    }
}

impl Related<super::venues::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Venues.def()
    }
}

impl Related<super::payouts::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Payouts.def()
    }
}

impl Related<super::incentives::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Incentives.def()
    }
}

impl Related<super::payout_items::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::PayoutItems.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
