//! `venues`: Venues (restaurants, bars, hotels, ...) that take bookings through PRIMA.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::enums::{VenueStatus, VenueTier, VenueType};

/// A row of `venues`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "venues")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(column_type = "String(StringLen::N(255))")]
    pub name: String,
    pub r#type: VenueType,
    pub tier: VenueTier,
    #[sea_orm(column_type = "String(StringLen::N(255))")]
    pub address_street: String,
    #[sea_orm(column_type = "String(StringLen::N(100))")]
    pub address_city: String,
    #[sea_orm(column_type = "String(StringLen::N(50))")]
    pub address_state: String,
    #[sea_orm(column_type = "String(StringLen::N(20))")]
    pub address_zip: String,
    #[sea_orm(column_type = "String(StringLen::N(50))")]
    pub address_country: String,
    /// Latitude in 1e-8 degrees (DECIMAL(10,8)), -90..90 degrees.
    pub coordinates_lat: Option<i64>,
    /// Longitude in 1e-8 degrees (DECIMAL(11,8)), -180..180 degrees.
    pub coordinates_lng: Option<i64>,
    #[sea_orm(column_type = "String(StringLen::N(50))")]
    pub timezone: String,
    #[sea_orm(column_type = "String(StringLen::N(20))")]
    pub contact_phone: Option<String>,
    #[sea_orm(column_type = "String(StringLen::N(255))")]
    pub contact_email: Option<String>,
    #[sea_orm(column_type = "String(StringLen::N(255))")]
    pub contact_website: Option<String>,
    pub capacity_seated: i32,
    pub capacity_standing: Option<i32>,
    pub capacity_private: Option<i32>,
    #[sea_orm(column_type = "String(StringLen::N(3))")]
    pub currency: String,
    #[sea_orm(column_type = "String(StringLen::N(5))")]
    pub language: String,
    pub auto_confirm_bookings: bool,
    pub require_approval: bool,
    pub average_daily_bookings: i32,
    /// Share of prime bookings in hundredths (DECIMAL(3,2)): 60 = 0.60.
    pub prime_ratio: i64,
    /// Money in cents (DECIMAL(10,2)).
    pub average_booking_value: i64,
    pub status: VenueStatus,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

/// Relations of `venues`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// `user_venue_access` rows whose `venue_id` is this row.
    #[sea_orm(has_many = "super::user_venue_access::Entity")]
    UserVenueAccess,
    /// `venue_pricing` rows whose `venue_id` is this row.
    #[sea_orm(has_many = "super::venue_pricing::Entity")]
    VenuePricing,
    /// `promoters` rows whose `venue_id` is this row.
    #[sea_orm(has_many = "super::promoters::Entity")]
    Promoters,
    /// `bookings` rows whose `venue_id` is this row.
    #[sea_orm(has_many = "super::bookings::Entity")]
    Bookings,
    /// `commission_rates` rows whose `venue_id` is this row.
    #[sea_orm(has_many = "super::commission_rates::Entity")]
    CommissionRates,
    /// `incentives` rows whose `venue_id` is this row.
    #[sea_orm(has_many = "super::incentives::Entity")]
    Incentives,
    /// `payouts` rows whose `venue_id` is this row.
    #[sea_orm(has_many = "super::payouts::Entity")]
    Payouts,
    /// `transactions` rows whose `venue_id` is this row.
    #[sea_orm(has_many = "super::transactions::Entity")]
    Transactions,
    /// `guest_venue_stats` rows whose `venue_id` is this row.
    #[sea_orm(has_many = "super::guest_venue_stats::Entity")]
    GuestVenueStats,
}

impl Related<super::user_venue_access::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::UserVenueAccess.def()
    }
}

impl Related<super::venue_pricing::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::VenuePricing.def()
    }
}

impl Related<super::promoters::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Promoters.def()
    }
}

impl Related<super::bookings::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Bookings.def()
    }
}

impl Related<super::commission_rates::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::CommissionRates.def()
    }
}

impl Related<super::incentives::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Incentives.def()
    }
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

impl Related<super::guest_venue_stats::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::GuestVenueStats.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
