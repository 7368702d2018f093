//! `users`: Platform user accounts: PRIMA staff and venue staff who sign in to the dashboard.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::enums::{UserRole, UserStatus};

/// A row of `users`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(column_type = "String(StringLen::N(255))", unique)]
    pub email: String,
    #[sea_orm(column_type = "String(StringLen::N(255))")]
    pub password_hash: String,
    #[sea_orm(column_type = "String(StringLen::N(100))")]
    pub first_name: String,
    #[sea_orm(column_type = "String(StringLen::N(100))")]
    pub last_name: String,
    #[sea_orm(column_type = "String(StringLen::N(20))")]
    pub phone: Option<String>,
    pub role: UserRole,
    pub status: UserStatus,
    pub email_verified: bool,
    pub two_factor_enabled: bool,
    #[sea_orm(column_type = "JsonBinary")]
    pub preferences: Option<Json>,
    pub last_login_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

/// Relations of `users`.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// `user_venue_access` rows whose `user_id` is this row.
    #[sea_orm(has_many = "super::user_venue_access::Entity")]
    UserVenueAccess,
    /// `user_venue_access` rows whose `granted_by` is this row.
    #[sea_orm(
        has_many = "super::user_venue_access::Entity",
        via_rel = "Relation::GrantedBy"
    )]
    UserVenueAccessGrantedBy,
    /// `venue_pricing` rows whose `updated_by` is this row.
    #[sea_orm(has_many = "super::venue_pricing::Entity")]
    VenuePricing,
    /// `booking_history` rows whose `performed_by_id` is this row.
    #[sea_orm(has_many = "super::booking_history::Entity")]
    BookingHistory,
    /// `commission_rates` rows whose `created_by` is this row.
    #[sea_orm(has_many = "super::commission_rates::Entity")]
    CommissionRates,
    /// `commission_assignments` rows whose `assigned_by` is this row.
    #[sea_orm(has_many = "super::commission_assignments::Entity")]
    CommissionAssignments,
    /// `incentives` rows whose `created_by` is this row.
    #[sea_orm(has_many = "super::incentives::Entity")]
    Incentives,
    /// `payouts` rows whose `approved_by` is this row.
    #[sea_orm(has_many = "super::payouts::Entity")]
    Payouts,
    /// `payout_holds` rows whose `created_by` is this row.
    #[sea_orm(has_many = "super::payout_holds::Entity")]
    PayoutHolds,
    /// `payout_holds` rows whose `released_by` is this row.
    #[sea_orm(
        has_many = "super::payout_holds::Entity",
        via_rel = "Relation::ReleasedBy"
    )]
    PayoutHoldsReleasedBy,
    /// `payout_audit` rows whose `performed_by` is this row.
    #[sea_orm(has_many = "super::payout_audit::Entity")]
    PayoutAudit,
    /// `idempotency_keys` rows whose `user_id` is this row.
    #[sea_orm(has_many = "super::idempotency_keys::Entity")]
    IdempotencyKeys,
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

impl Related<super::booking_history::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::BookingHistory.def()
    }
}

impl Related<super::commission_rates::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::CommissionRates.def()
    }
}

impl Related<super::commission_assignments::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::CommissionAssignments.def()
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

impl Related<super::idempotency_keys::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::IdempotencyKeys.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
