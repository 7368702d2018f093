//! `promoters`: Promoters who bring bookings to a venue and earn commissions, with aggregated performance metrics.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::enums::{PromoterStatus, PromoterTier};

/// A row of `promoters`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "promoters")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Primary venue of the promoter.
    pub venue_id: Uuid,
    #[sea_orm(column_type = "String(StringLen::N(100))")]
    pub first_name: String,
    #[sea_orm(column_type = "String(StringLen::N(100))")]
    pub last_name: String,
    #[sea_orm(column_type = "String(StringLen::N(255))")]
    pub email: String,
    #[sea_orm(column_type = "String(StringLen::N(20))")]
    pub phone: Option<String>,
    #[sea_orm(column_type = "String(StringLen::N(100))")]
    pub title: Option<String>,
    #[sea_orm(column_type = "String(StringLen::N(255))")]
    pub company: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub bio: Option<String>,
    #[sea_orm(column_type = "JsonBinary")]
    pub social_media: Option<Json>,
    pub total_bookings: i32,
    /// Money in cents (DECIMAL(12,2)).
    pub total_revenue: i64,
    /// Money in cents (DECIMAL(10,2)).
    pub average_booking_value: i64,
    /// Fraction in ten-thousandths (DECIMAL(5,4)): 1000 = 0.1000 = 10 %.
    pub conversion_rate: i64,
    /// Fraction in ten-thousandths (DECIMAL(5,4)): 1000 = 0.1000 = 10 %.
    pub no_show_rate: i64,
    /// Fraction in ten-thousandths (DECIMAL(5,4)): 1000 = 0.1000 = 10 %.
    pub cancel_rate: i64,
    pub month_bookings: i32,
    /// Money in cents (DECIMAL(12,2)).
    pub month_revenue: i64,
    pub month_new_guests: i32,
    pub month_repeat_guests: i32,
    pub status: PromoterStatus,
    pub tier: PromoterTier,
    pub joined_at: DateTimeUtc,
    pub last_active_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// Bookings of every status, PENDING included: the divisor of `cancel_rate`. Kept by
    /// atomic increments, like the three counters below, so the rates can be recomputed
    /// from them in the same UPDATE.
    pub all_bookings: i32,
    /// COMPLETED bookings (in `conversion_rate` and the divisor of `no_show_rate`).
    pub completed_bookings: i32,
    /// CANCELLED bookings (numerator of `cancel_rate`, in the divisor of `conversion_rate`).
    pub cancelled_bookings: i32,
    /// NO_SHOW bookings (numerator of `no_show_rate`, in the divisor of `conversion_rate`).
    pub no_show_bookings: i32,
    /// The first instant (UTC) of the calendar month the `month_*` fields cover; `None`
    /// when not known (a new row, or before migration 11): the next booking change
    /// recomputes them. A change in another month (the month turned) recomputes them too.
    pub month_start: Option<DateTimeUtc>,
}

/// Relations of `promoters`.
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
    /// `bookings` rows whose `promoter_id` is this row.
    #[sea_orm(has_many = "super::bookings::Entity")]
    Bookings,
    /// `commission_assignments` rows whose `promoter_id` is this row.
    #[sea_orm(has_many = "super::commission_assignments::Entity")]
    CommissionAssignments,
    /// `incentive_progress` rows whose `promoter_id` is this row.
    #[sea_orm(has_many = "super::incentive_progress::Entity")]
    IncentiveProgress,
    /// `payouts` rows whose `promoter_id` is this row.
    #[sea_orm(has_many = "super::payouts::Entity")]
    Payouts,
    /// `transactions` rows whose `promoter_id` is this row.
    #[sea_orm(has_many = "super::transactions::Entity")]
    Transactions,
}

impl Related<super::venues::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Venues.def()
    }
}

impl Related<super::bookings::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Bookings.def()
    }
}

impl Related<super::commission_assignments::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::CommissionAssignments.def()
    }
}

impl Related<super::incentive_progress::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::IncentiveProgress.def()
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

impl ActiveModelBehavior for ActiveModel {}
