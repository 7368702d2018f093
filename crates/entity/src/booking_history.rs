//! `booking_history`: Audit trail of a booking: one row per status change or edit, written in the same transaction.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A row of `booking_history`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "booking_history")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub booking_id: Uuid,
    #[sea_orm(column_type = "String(StringLen::N(50))")]
    pub action: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub previous_value: Option<Json>,
    #[sea_orm(column_type = "JsonBinary")]
    pub new_value: Option<Json>,
    #[sea_orm(column_type = "Text")]
    pub reason: Option<String>,
    pub performed_by_id: Option<Uuid>,
    #[sea_orm(column_type = "String(StringLen::N(255))")]
    pub performed_by_name: String,
    #[sea_orm(column_type = "String(StringLen::N(50))")]
    pub performed_by_role: String,
    pub timestamp: DateTimeUtc,
    #[sea_orm(column_type = "JsonBinary")]
    pub metadata: Option<Json>,
}

/// Relations of `booking_history`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// `booking_id` -> `bookings.id`.
    #[sea_orm(
        belongs_to = "super::bookings::Entity",
        from = "Column::BookingId",
        to = "super::bookings::Column::Id",
        on_update = "NoAction",
        on_delete = "Cascade"
    )]
    Bookings,
    /// `performed_by_id` -> `users.id`.
    #[sea_orm(
        belongs_to = "super::users::Entity",
        from = "Column::PerformedById",
        to = "super::users::Column::Id",
        on_update = "NoAction",
        on_delete = "NoAction"
    )]
    Users,
}

impl Related<super::bookings::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Bookings.def()
    }
}

impl Related<super::users::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Users.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
