//! Users, venues, venue access grants and venue pricing.

use sea_orm_migration::prelude::*;

use crate::iden::*;
use crate::values::{USER_ROLE, USER_STATUS, VENUE_ROLE, VENUE_STATUS, VENUE_TIER, VENUE_TYPE};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, indexes) in [
            (users(), users_indexes()),
            (venues(), venues_indexes()),
            (user_venue_access(), user_venue_access_indexes()),
            (venue_pricing(), venue_pricing_indexes()),
        ] {
            crate::create_table_with_indexes(manager, table, indexes).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            VenuePricing::Table.into_iden(),
            UserVenueAccess::Table.into_iden(),
            Venues::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }

    fn use_transaction(&self) -> Option<bool> {
        // DDL is transactional on both databases: a failed step leaves nothing behind.
        Some(true)
    }
}

/// `users`: Platform user accounts: PRIMA staff and venue staff who sign in to the dashboard.
fn users() -> TableCreateStatement {
    Table::create()
        .table(Users::Table)
        .col(ColumnDef::new(Users::Id).uuid().not_null().primary_key())
        .col(ColumnDef::new(Users::Email).string_len(255).not_null())
        .col(
            ColumnDef::new(Users::PasswordHash)
                .string_len(255)
                .not_null(),
        )
        .col(ColumnDef::new(Users::FirstName).string_len(100).not_null())
        .col(ColumnDef::new(Users::LastName).string_len(100).not_null())
        .col(ColumnDef::new(Users::Phone).string_len(20))
        .col(ColumnDef::new(Users::Role).string().not_null())
        .col(
            ColumnDef::new(Users::Status)
                .string()
                .not_null()
                .default("ACTIVE"),
        )
        .col(
            ColumnDef::new(Users::EmailVerified)
                .boolean()
                .not_null()
                .default(false),
        )
        .col(
            ColumnDef::new(Users::TwoFactorEnabled)
                .boolean()
                .not_null()
                .default(false),
        )
        .col(ColumnDef::new(Users::Preferences).json_binary())
        .col(ColumnDef::new(Users::LastLoginAt).timestamp_with_time_zone())
        .col(
            ColumnDef::new(Users::CreatedAt)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(
            ColumnDef::new(Users::UpdatedAt)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .check(("check_users_role", Expr::col(Users::Role).is_in(USER_ROLE)))
        .check((
            "check_users_status",
            Expr::col(Users::Status).is_in(USER_STATUS),
        ))
        .to_owned()
}

/// Unique and plain indexes of `users`.
fn users_indexes() -> Vec<IndexCreateStatement> {
    vec![
        Index::create()
            .name("idx_users_email")
            .table(Users::Table)
            .col(Users::Email)
            .unique()
            .to_owned(),
        Index::create()
            .name("idx_users_role")
            .table(Users::Table)
            .col(Users::Role)
            .to_owned(),
        Index::create()
            .name("idx_users_status")
            .table(Users::Table)
            .col(Users::Status)
            .to_owned(),
    ]
}

/// `venues`: Venues (restaurants, bars, hotels, ...) that take bookings through PRIMA.
fn venues() -> TableCreateStatement {
    Table::create()
        .table(Venues::Table)
        .col(ColumnDef::new(Venues::Id).uuid().not_null().primary_key())
        .col(ColumnDef::new(Venues::Name).string_len(255).not_null())
        .col(ColumnDef::new(Venues::Type).string().not_null())
        .col(ColumnDef::new(Venues::Tier).string().not_null())
        .col(
            ColumnDef::new(Venues::AddressStreet)
                .string_len(255)
                .not_null(),
        )
        .col(
            ColumnDef::new(Venues::AddressCity)
                .string_len(100)
                .not_null(),
        )
        .col(
            ColumnDef::new(Venues::AddressState)
                .string_len(50)
                .not_null(),
        )
        .col(ColumnDef::new(Venues::AddressZip).string_len(20).not_null())
        .col(
            ColumnDef::new(Venues::AddressCountry)
                .string_len(50)
                .not_null()
                .default("US"),
        )
        .col(ColumnDef::new(Venues::CoordinatesLat).big_integer())
        .col(ColumnDef::new(Venues::CoordinatesLng).big_integer())
        .col(
            ColumnDef::new(Venues::Timezone)
                .string_len(50)
                .not_null()
                .default("America/New_York"),
        )
        .col(ColumnDef::new(Venues::ContactPhone).string_len(20))
        .col(ColumnDef::new(Venues::ContactEmail).string_len(255))
        .col(ColumnDef::new(Venues::ContactWebsite).string_len(255))
        .col(ColumnDef::new(Venues::CapacitySeated).integer().not_null())
        .col(ColumnDef::new(Venues::CapacityStanding).integer())
        .col(ColumnDef::new(Venues::CapacityPrivate).integer())
        .col(
            ColumnDef::new(Venues::Currency)
                .string_len(3)
                .not_null()
                .default("USD"),
        )
        .col(
            ColumnDef::new(Venues::Language)
                .string_len(5)
                .not_null()
                .default("en"),
        )
        .col(
            ColumnDef::new(Venues::AutoConfirmBookings)
                .boolean()
                .not_null()
                .default(true),
        )
        .col(
            ColumnDef::new(Venues::RequireApproval)
                .boolean()
                .not_null()
                .default(false),
        )
        .col(
            ColumnDef::new(Venues::AverageDailyBookings)
                .integer()
                .not_null()
                .default(15),
        )
        .col(
            ColumnDef::new(Venues::PrimeRatio)
                .big_integer()
                .not_null()
                .default(60i64),
        )
        .col(
            ColumnDef::new(Venues::AverageBookingValue)
                .big_integer()
                .not_null()
                .default(12000i64),
        )
        .col(
            ColumnDef::new(Venues::Status)
                .string()
                .not_null()
                .default("ACTIVE"),
        )
        .col(
            ColumnDef::new(Venues::CreatedAt)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(
            ColumnDef::new(Venues::UpdatedAt)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .check((
            "check_venues_type",
            Expr::col(Venues::Type).is_in(VENUE_TYPE),
        ))
        .check((
            "check_venues_tier",
            Expr::col(Venues::Tier).is_in(VENUE_TIER),
        ))
        .check((
            "check_venues_status",
            Expr::col(Venues::Status).is_in(VENUE_STATUS),
        ))
        .check((
            "check_venues_coordinates_lat_range",
            Expr::col(Venues::CoordinatesLat).between(-9000000000i64, 9000000000i64),
        ))
        .check((
            "check_venues_coordinates_lng_range",
            Expr::col(Venues::CoordinatesLng).between(-18000000000i64, 18000000000i64),
        ))
        .check((
            "check_venues_prime_ratio_range",
            Expr::col(Venues::PrimeRatio).between(0i64, 100i64),
        ))
        .check((
            "check_venues_average_booking_value_range",
            Expr::col(Venues::AverageBookingValue).between(0i64, 9999999999i64),
        ))
        .to_owned()
}

/// Unique and plain indexes of `venues`.
fn venues_indexes() -> Vec<IndexCreateStatement> {
    vec![
        Index::create()
            .name("idx_venues_name")
            .table(Venues::Table)
            .col(Venues::Name)
            .to_owned(),
        Index::create()
            .name("idx_venues_type")
            .table(Venues::Table)
            .col(Venues::Type)
            .to_owned(),
        Index::create()
            .name("idx_venues_tier")
            .table(Venues::Table)
            .col(Venues::Tier)
            .to_owned(),
        Index::create()
            .name("idx_venues_status")
            .table(Venues::Table)
            .col(Venues::Status)
            .to_owned(),
        Index::create()
            .name("idx_venues_address_city")
            .table(Venues::Table)
            .col(Venues::AddressCity)
            .to_owned(),
    ]
}

/// `user_venue_access`: Grants of a role on one venue to one user; revoked grants keep their row with `revoked_at` set.
fn user_venue_access() -> TableCreateStatement {
    Table::create()
        .table(UserVenueAccess::Table)
        .col(
            ColumnDef::new(UserVenueAccess::Id)
                .uuid()
                .not_null()
                .primary_key(),
        )
        .col(ColumnDef::new(UserVenueAccess::UserId).uuid().not_null())
        .col(ColumnDef::new(UserVenueAccess::VenueId).uuid().not_null())
        .col(ColumnDef::new(UserVenueAccess::Role).string().not_null())
        .col(ColumnDef::new(UserVenueAccess::GrantedBy).uuid())
        .col(
            ColumnDef::new(UserVenueAccess::GrantedAt)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(ColumnDef::new(UserVenueAccess::RevokedAt).timestamp_with_time_zone())
        .foreign_key(
            ForeignKey::create()
                .name("fk_user_venue_access_user_id")
                .from(UserVenueAccess::Table, UserVenueAccess::UserId)
                .to(Users::Table, Users::Id)
                .on_delete(ForeignKeyAction::Cascade),
        )
        .foreign_key(
            ForeignKey::create()
                .name("fk_user_venue_access_venue_id")
                .from(UserVenueAccess::Table, UserVenueAccess::VenueId)
                .to(Venues::Table, Venues::Id)
                .on_delete(ForeignKeyAction::Cascade),
        )
        .foreign_key(
            ForeignKey::create()
                .name("fk_user_venue_access_granted_by")
                .from(UserVenueAccess::Table, UserVenueAccess::GrantedBy)
                .to(Users::Table, Users::Id),
        )
        .check((
            "check_venue_access_role",
            Expr::col(UserVenueAccess::Role).is_in(VENUE_ROLE),
        ))
        .to_owned()
}

/// Unique and plain indexes of `user_venue_access`.
fn user_venue_access_indexes() -> Vec<IndexCreateStatement> {
    vec![
        Index::create()
            .name("uq_user_venue_access_user_id_venue_id")
            .table(UserVenueAccess::Table)
            .col(UserVenueAccess::UserId)
            .col(UserVenueAccess::VenueId)
            .unique()
            .to_owned(),
        Index::create()
            .name("idx_user_venue_access_user_id")
            .table(UserVenueAccess::Table)
            .col(UserVenueAccess::UserId)
            .to_owned(),
        Index::create()
            .name("idx_user_venue_access_venue_id")
            .table(UserVenueAccess::Table)
            .col(UserVenueAccess::VenueId)
            .to_owned(),
        Index::create()
            .name("idx_user_venue_access_role")
            .table(UserVenueAccess::Table)
            .col(UserVenueAccess::Role)
            .to_owned(),
    ]
}

/// `venue_pricing`: A venue's prices over time: one active row applies at a moment; changing prices closes the row and inserts a new one.
fn venue_pricing() -> TableCreateStatement {
    Table::create()
        .table(VenuePricing::Table)
        .col(
            ColumnDef::new(VenuePricing::Id)
                .uuid()
                .not_null()
                .primary_key(),
        )
        .col(ColumnDef::new(VenuePricing::VenueId).uuid().not_null())
        .col(
            ColumnDef::new(VenuePricing::NonPrimePerDiner)
                .big_integer()
                .not_null(),
        )
        .col(
            ColumnDef::new(VenuePricing::NonPrimePlatformFeePercent)
                .big_integer()
                .not_null()
                .default(1000i64),
        )
        .col(
            ColumnDef::new(VenuePricing::PrimeBaseFor2)
                .big_integer()
                .not_null(),
        )
        .col(
            ColumnDef::new(VenuePricing::PrimeAdditionalPerPerson)
                .big_integer()
                .not_null(),
        )
        .col(
            ColumnDef::new(VenuePricing::PrimePlatformFeePercent)
                .big_integer()
                .not_null()
                .default(1000i64),
        )
        .col(
            ColumnDef::new(VenuePricing::MinimumBookingAmount)
                .big_integer()
                .not_null()
                .default(0i64),
        )
        .col(
            ColumnDef::new(VenuePricing::MinimumPartySize)
                .integer()
                .not_null()
                .default(1),
        )
        .col(
            ColumnDef::new(VenuePricing::MaximumPartySize)
                .integer()
                .not_null()
                .default(20),
        )
        .col(ColumnDef::new(VenuePricing::EarlyBirdDiscountPercent).big_integer())
        .col(ColumnDef::new(VenuePricing::RepeatCustomerDiscountPercent).big_integer())
        .col(ColumnDef::new(VenuePricing::GroupDiscountPercent).big_integer())
        .col(
            ColumnDef::new(VenuePricing::EffectiveFrom)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(ColumnDef::new(VenuePricing::EffectiveTo).timestamp_with_time_zone())
        .col(
            ColumnDef::new(VenuePricing::IsActive)
                .boolean()
                .not_null()
                .default(true),
        )
        .col(ColumnDef::new(VenuePricing::UpdatedBy).uuid())
        .col(
            ColumnDef::new(VenuePricing::CreatedAt)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(
            ColumnDef::new(VenuePricing::UpdatedAt)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .foreign_key(
            ForeignKey::create()
                .name("fk_venue_pricing_venue_id")
                .from(VenuePricing::Table, VenuePricing::VenueId)
                .to(Venues::Table, Venues::Id)
                .on_delete(ForeignKeyAction::Cascade),
        )
        .foreign_key(
            ForeignKey::create()
                .name("fk_venue_pricing_updated_by")
                .from(VenuePricing::Table, VenuePricing::UpdatedBy)
                .to(Users::Table, Users::Id),
        )
        .check((
            "check_venue_pricing_non_prime_per_diner_range",
            Expr::col(VenuePricing::NonPrimePerDiner).between(0i64, 99999999i64),
        ))
        .check((
            "check_venue_pricing_non_prime_platform_fee_percent_range",
            Expr::col(VenuePricing::NonPrimePlatformFeePercent).between(0i64, 10000i64),
        ))
        .check((
            "check_venue_pricing_prime_base_for_2_range",
            Expr::col(VenuePricing::PrimeBaseFor2).between(0i64, 99999999i64),
        ))
        .check((
            "check_venue_pricing_prime_additional_per_person_range",
            Expr::col(VenuePricing::PrimeAdditionalPerPerson).between(0i64, 99999999i64),
        ))
        .check((
            "check_venue_pricing_prime_platform_fee_percent_range",
            Expr::col(VenuePricing::PrimePlatformFeePercent).between(0i64, 10000i64),
        ))
        .check((
            "check_venue_pricing_minimum_booking_amount_range",
            Expr::col(VenuePricing::MinimumBookingAmount).between(0i64, 99999999i64),
        ))
        .check((
            "check_venue_pricing_early_bird_discount_percent_range",
            Expr::col(VenuePricing::EarlyBirdDiscountPercent).between(0i64, 10000i64),
        ))
        .check((
            "check_venue_pricing_repeat_customer_discount_percent_range",
            Expr::col(VenuePricing::RepeatCustomerDiscountPercent).between(0i64, 10000i64),
        ))
        .check((
            "check_venue_pricing_group_discount_percent_range",
            Expr::col(VenuePricing::GroupDiscountPercent).between(0i64, 10000i64),
        ))
        .check(
            (
                "check_venue_pricing_effective_period",
                Expr::col(VenuePricing::EffectiveTo)
                    .is_null()
                    .or(Expr::col(VenuePricing::EffectiveTo)
                        .gt(Expr::col(VenuePricing::EffectiveFrom))),
            ),
        )
        .check((
            "check_venue_pricing_party_size",
            Expr::col(VenuePricing::MinimumPartySize).gte(1).and(
                Expr::col(VenuePricing::MinimumPartySize)
                    .lte(Expr::col(VenuePricing::MaximumPartySize)),
            ),
        ))
        .to_owned()
}

/// Unique and plain indexes of `venue_pricing`.
fn venue_pricing_indexes() -> Vec<IndexCreateStatement> {
    vec![
        Index::create()
            .name("uq_venue_pricing_active_venue_id_effective_from")
            .table(VenuePricing::Table)
            .col(VenuePricing::VenueId)
            .col(VenuePricing::EffectiveFrom)
            .unique()
            .and_where(Expr::col(VenuePricing::IsActive).eq(true))
            .to_owned(),
        Index::create()
            .name("idx_venue_pricing_venue_id")
            .table(VenuePricing::Table)
            .col(VenuePricing::VenueId)
            .to_owned(),
        Index::create()
            .name("idx_venue_pricing_effective_from")
            .table(VenuePricing::Table)
            .col(VenuePricing::EffectiveFrom)
            .to_owned(),
        Index::create()
            .name("idx_venue_pricing_is_active")
            .table(VenuePricing::Table)
            .col(VenuePricing::IsActive)
            .to_owned(),
    ]
}
