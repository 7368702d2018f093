//! `payout_items`: The transactions a payout contains (named in the data model without a table).

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::enums::TransactionType;

/// A row of `payout_items`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "payout_items")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub payout_id: Uuid,
    pub transaction_id: Uuid,
    /// Copy of the transaction amount in cents; may be negative.
    pub amount: i64,
    pub r#type: TransactionType,
    pub created_at: DateTimeUtc,
    /// When a FAILED payout let go of the transaction; null while the item claims it.
    pub released_at: Option<DateTimeUtc>,
}

/// Relations of `payout_items`.
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
    /// `transaction_id` -> `transactions.id`.
    #[sea_orm(
        belongs_to = "super::transactions::Entity",
        from = "Column::TransactionId",
        to = "super::transactions::Column::Id",
        on_update = "NoAction",
        on_delete = "NoAction"
    )]
    Transactions,
}

impl Related<super::payouts::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Payouts.def()
    }
}

impl Related<super::transactions::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Transactions.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
