//! `venue_pricing`: A venue's prices over time: one active row applies at a moment; changing prices closes the row and inserts a new one.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A row of `venue_pricing`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "venue_pricing")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub venue_id: Uuid,
    /// Money in cents (DECIMAL(8,2)).
    pub non_prime_per_diner: i64,
    /// Fraction in ten-thousandths (DECIMAL(5,4)): 1000 = 0.1000 = 10 %.
    pub non_prime_platform_fee_percent: i64,
    /// Money in cents (DECIMAL(8,2)).
    #[sea_orm(column_name = "prime_base_for_2")]
    pub prime_base_for_2: i64,
    /// Money in cents (DECIMAL(8,2)).
    pub prime_additional_per_person: i64,
    /// Fraction in ten-thousandths (DECIMAL(5,4)): 1000 = 0.1000 = 10 %.
    pub prime_platform_fee_percent: i64,
    /// Money in cents (DECIMAL(8,2)).
    pub minimum_booking_amount: i64,
    pub minimum_party_size: i32,
    pub maximum_party_size: i32,
    /// Fraction in ten-thousandths (DECIMAL(5,4)): 1000 = 0.1000 = 10 %.
    pub early_bird_discount_percent: Option<i64>,
    /// Fraction in ten-thousandths (DECIMAL(5,4)): 1000 = 0.1000 = 10 %.
    pub repeat_customer_discount_percent: Option<i64>,
    /// Fraction in ten-thousandths (DECIMAL(5,4)): 1000 = 0.1000 = 10 %.
    pub group_discount_percent: Option<i64>,
    pub effective_from: DateTimeUtc,
    pub effective_to: Option<DateTimeUtc>,
    pub is_active: bool,
    pub updated_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

/// Relations of `venue_pricing`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// `venue_id` -> `venues.id`.
    #[sea_orm(
        belongs_to = "super::venues::Entity",
        from = "Column::VenueId",
        to = "super::venues::Column::Id",
        on_update = "NoAction",
        on_delete = "Cascade"
    )]
    Venues,
    /// `updated_by` -> `users.id`.
    #[sea_orm(
        belongs_to = "super::users::Entity",
        from = "Column::UpdatedBy",
        to = "super::users::Column::Id",
        on_update = "NoAction",
        on_delete = "NoAction"
    )]
    Users,
}

impl Related<super::venues::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Venues.def()
    }
}

impl Related<super::users::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Users.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
