//! `guests`: Guests who make bookings, with their preferences and aggregated booking metrics.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::enums::{Gender, GuestStatus, SeatingPreference};

/// A row of `guests`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "guests")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(column_type = "String(StringLen::N(100))")]
    pub first_name: String,
    #[sea_orm(column_type = "String(StringLen::N(100))")]
    pub last_name: String,
    #[sea_orm(column_type = "String(StringLen::N(255))")]
    pub email: String,
    #[sea_orm(column_type = "String(StringLen::N(20))")]
    pub phone: Option<String>,
    pub birth_date: Option<Date>,
    pub gender: Option<Gender>,
    /// JSON array of strings (TEXT[] in the data model).
    #[sea_orm(column_type = "JsonBinary")]
    pub dietary_restrictions: Option<Json>,
    pub seating_preference: Option<SeatingPreference>,
    pub communication_email: bool,
    pub communication_sms: bool,
    pub communication_push: bool,
    pub total_bookings: i32,
    pub cancelled_bookings: i32,
    pub no_show_bookings: i32,
    /// Money in cents (DECIMAL(12,2)).
    pub total_spent: i64,
    /// Average party size in tenths (DECIMAL(3,1)): 20 = 2.0 diners.
    pub average_party_size: i64,
    pub last_booking_at: Option<DateTimeUtc>,
    pub status: GuestStatus,
    /// JSON array of strings (TEXT[] in the data model).
    #[sea_orm(column_type = "JsonBinary")]
    pub tags: Option<Json>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The venue that registered the guest (counts for visibility before any booking).
    pub registered_venue_id: Option<Uuid>,
    /// Sum of `diners` over all of the guest's bookings, every status: with
    /// `total_bookings`, keeps `average_party_size` exact under atomic increments.
    pub total_diners: i32,
}

/// Relations of `guests`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// `bookings` rows whose `guest_id` is this row.
    #[sea_orm(has_many = "super::bookings::Entity")]
    Bookings,
    /// `guest_venue_stats` rows whose `guest_id` is this row.
    #[sea_orm(has_many = "super::guest_venue_stats::Entity")]
    GuestVenueStats,
}

impl Related<super::bookings::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Bookings.def()
    }
}

impl Related<super::guest_venue_stats::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::GuestVenueStats.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
