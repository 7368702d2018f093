//! `bookings`: Bookings of a guest at a venue, possibly brought by a promoter, with the fees locked in at creation.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::enums::{BookingSource, BookingStatus, BookingType};

/// A row of `bookings`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "bookings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub venue_id: Uuid,
    pub promoter_id: Option<Uuid>,
    pub guest_id: Uuid,
    pub diners: i32,
    pub booking_time: DateTimeUtc,
    pub duration_minutes: i32,
    #[sea_orm(column_type = "Text")]
    pub special_requests: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub notes: Option<String>,
    pub r#type: BookingType,
    pub source: BookingSource,
    pub status: BookingStatus,
    /// Money in cents (DECIMAL(10,2)).
    pub base_fee: i64,
    /// Money in cents (DECIMAL(10,2)).
    pub platform_fee: i64,
    /// Money in cents (DECIMAL(10,2)).
    pub total_fee: i64,
    /// Money in cents (DECIMAL(10,2)).
    pub promoter_commission: i64,
    pub confirmed_at: Option<DateTimeUtc>,
    pub cancelled_at: Option<DateTimeUtc>,
    pub no_show_at: Option<DateTimeUtc>,
    pub completed_at: Option<DateTimeUtc>,
    /// Client IP address as text (INET in the data model).
    #[sea_orm(column_type = "String(StringLen::N(45))")]
    pub ip_address: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub user_agent: Option<String>,
    #[sea_orm(column_type = "String(StringLen::N(255))")]
    pub referrer: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

/// Relations of `bookings`.
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
    /// `guest_id` -> `guests.id`.
    #[sea_orm(
        belongs_to = "super::guests::Entity",
        from = "Column::GuestId",
        to = "super::guests::Column::Id",
        on_update = "NoAction",
        on_delete = "NoAction"
    )]
    Guests,
    /// `booking_history` rows whose `booking_id` is this row.
    #[sea_orm(has_many = "super::booking_history::Entity")]
    BookingHistory,
    /// `transactions` rows whose `booking_id` is this row.
    #[sea_orm(has_many = "super::transactions::Entity")]
    Transactions,
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

impl Related<super::guests::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Guests.def()
    }
}

impl Related<super::booking_history::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::BookingHistory.def()
    }
}

impl Related<super::transactions::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Transactions.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
