//! `guest_venue_stats`: a guest's booking aggregates at one venue (not in the data model
//! document): the counters of the guest row, kept per venue so that a user's view of a
//! guest's figures covers only the venues that user can read.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A row of `guest_venue_stats`: one (guest, venue) pair with at least one booking.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "guest_venue_stats")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub guest_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub venue_id: Uuid,
    /// The guest's bookings at the venue, every status.
    pub total_bookings: i32,
    /// Of those, CANCELLED.
    pub cancelled_bookings: i32,
    /// Of those, NO_SHOW.
    pub no_show_bookings: i32,
    /// Money in cents: sum of `total_fee` of the COMPLETED bookings.
    pub total_spent: i64,
    /// Sum of `diners` over the bookings, every status.
    pub total_diners: i32,
    /// Latest `booking_time`, any status.
    pub last_booking_at: Option<DateTimeUtc>,
}

/// Relations of `guest_venue_stats`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// `guest_id` -> `guests.id`.
    #[sea_orm(
        belongs_to = "super::guests::Entity",
        from = "Column::GuestId",
        to = "super::guests::Column::Id",
        on_update = "NoAction",
        on_delete = "Cascade"
    )]
    Guests,
    /// `venue_id` -> `venues.id`.
    #[sea_orm(
        belongs_to = "super::venues::Entity",
        from = "Column::VenueId",
        to = "super::venues::Column::Id",
        on_update = "NoAction",
        on_delete = "Cascade"
    )]
    Venues,
}

impl Related<super::guests::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Guests.def()
    }
}

impl Related<super::venues::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Venues.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
