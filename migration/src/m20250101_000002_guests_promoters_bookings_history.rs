//! Guests, promoters, bookings and booking history.

use sea_orm_migration::prelude::*;

use crate::iden::*;
use crate::values::{
    BOOKING_SOURCE, BOOKING_STATUS, BOOKING_TYPE, GENDER, GUEST_STATUS, PROMOTER_STATUS,
    PROMOTER_TIER, SEATING_PREFERENCE,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, indexes) in [
            (guests(), guests_indexes()),
            (promoters(), promoters_indexes()),
            (bookings(), bookings_indexes()),
            (booking_history(), booking_history_indexes()),
        ] {
            crate::create_table_with_indexes(manager, table, indexes).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            BookingHistory::Table.into_iden(),
            Bookings::Table.into_iden(),
            Promoters::Table.into_iden(),
            Guests::Table.into_iden(),
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

/// `guests`: Guests who make bookings, with their preferences and aggregated booking metrics.
fn guests() -> TableCreateStatement {
    Table::create()
        .table(Guests::Table)
        .col(ColumnDef::new(Guests::Id).uuid().not_null().primary_key())
        .col(ColumnDef::new(Guests::FirstName).string_len(100).not_null())
        .col(ColumnDef::new(Guests::LastName).string_len(100).not_null())
        .col(ColumnDef::new(Guests::Email).string_len(255).not_null())
        .col(ColumnDef::new(Guests::Phone).string_len(20))
        .col(ColumnDef::new(Guests::BirthDate).date())
        .col(ColumnDef::new(Guests::Gender).string())
        .col(ColumnDef::new(Guests::DietaryRestrictions).json_binary())
        .col(ColumnDef::new(Guests::SeatingPreference).string())
        .col(
            ColumnDef::new(Guests::CommunicationEmail)
                .boolean()
                .not_null()
                .default(true),
        )
        .col(
            ColumnDef::new(Guests::CommunicationSms)
                .boolean()
                .not_null()
                .default(true),
        )
        .col(
            ColumnDef::new(Guests::CommunicationPush)
                .boolean()
                .not_null()
                .default(true),
        )
        .col(
            ColumnDef::new(Guests::TotalBookings)
                .integer()
                .not_null()
                .default(0),
        )
        .col(
            ColumnDef::new(Guests::CancelledBookings)
                .integer()
                .not_null()
                .default(0),
        )
        .col(
            ColumnDef::new(Guests::NoShowBookings)
                .integer()
                .not_null()
                .default(0),
        )
        .col(
            ColumnDef::new(Guests::TotalSpent)
                .big_integer()
                .not_null()
                .default(0i64),
        )
        .col(
            ColumnDef::new(Guests::AveragePartySize)
                .big_integer()
                .not_null()
                .default(20i64),
        )
        .col(ColumnDef::new(Guests::LastBookingAt).timestamp_with_time_zone())
        .col(
            ColumnDef::new(Guests::Status)
                .string()
                .not_null()
                .default("ACTIVE"),
        )
        .col(ColumnDef::new(Guests::Tags).json_binary())
        .col(
            ColumnDef::new(Guests::CreatedAt)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(
            ColumnDef::new(Guests::UpdatedAt)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .check((
            "check_guests_gender",
            Expr::col(Guests::Gender).is_in(GENDER),
        ))
        .check((
            "check_guests_seating_preference",
            Expr::col(Guests::SeatingPreference).is_in(SEATING_PREFERENCE),
        ))
        .check((
            "check_guests_status",
            Expr::col(Guests::Status).is_in(GUEST_STATUS),
        ))
        .check((
            "check_guests_total_spent_range",
            Expr::col(Guests::TotalSpent).between(0i64, 999999999999i64),
        ))
        .check((
            "check_guests_average_party_size_range",
            Expr::col(Guests::AveragePartySize).between(0i64, 999i64),
        ))
        .to_owned()
}

/// Unique and plain indexes of `guests`.
fn guests_indexes() -> Vec<IndexCreateStatement> {
    vec![
        Index::create()
            .name("idx_guests_email")
            .table(Guests::Table)
            .col(Guests::Email)
            .to_owned(),
        Index::create()
            .name("idx_guests_phone")
            .table(Guests::Table)
            .col(Guests::Phone)
            .to_owned(),
        Index::create()
            .name("idx_guests_status")
            .table(Guests::Table)
            .col(Guests::Status)
            .to_owned(),
        Index::create()
            .name("idx_guests_last_booking_at")
            .table(Guests::Table)
            .col(Guests::LastBookingAt)
            .to_owned(),
        Index::create()
            .name("idx_guests_total_spent")
            .table(Guests::Table)
            .col(Guests::TotalSpent)
            .to_owned(),
    ]
}

/// `promoters`: Promoters who bring bookings to a venue and earn commissions, with aggregated performance metrics.
fn promoters() -> TableCreateStatement {
    Table::create()
        .table(Promoters::Table)
        .col(
            ColumnDef::new(Promoters::Id)
                .uuid()
                .not_null()
                .primary_key(),
        )
        .col(ColumnDef::new(Promoters::VenueId).uuid().not_null())
        .col(
            ColumnDef::new(Promoters::FirstName)
                .string_len(100)
                .not_null(),
        )
        .col(
            ColumnDef::new(Promoters::LastName)
                .string_len(100)
                .not_null(),
        )
        .col(ColumnDef::new(Promoters::Email).string_len(255).not_null())
        .col(ColumnDef::new(Promoters::Phone).string_len(20))
        .col(ColumnDef::new(Promoters::Title).string_len(100))
        .col(ColumnDef::new(Promoters::Company).string_len(255))
        .col(ColumnDef::new(Promoters::Bio).text())
        .col(ColumnDef::new(Promoters::SocialMedia).json_binary())
        .col(
            ColumnDef::new(Promoters::TotalBookings)
                .integer()
                .not_null()
                .default(0),
        )
        .col(
            ColumnDef::new(Promoters::TotalRevenue)
                .big_integer()
                .not_null()
                .default(0i64),
        )
        .col(
            ColumnDef::new(Promoters::AverageBookingValue)
                .big_integer()
                .not_null()
                .default(0i64),
        )
        .col(
            ColumnDef::new(Promoters::ConversionRate)
                .big_integer()
                .not_null()
                .default(0i64),
        )
        .col(
            ColumnDef::new(Promoters::NoShowRate)
                .big_integer()
                .not_null()
                .default(0i64),
        )
        .col(
            ColumnDef::new(Promoters::CancelRate)
                .big_integer()
                .not_null()
                .default(0i64),
        )
        .col(
            ColumnDef::new(Promoters::MonthBookings)
                .integer()
                .not_null()
                .default(0),
        )
        .col(
            ColumnDef::new(Promoters::MonthRevenue)
                .big_integer()
                .not_null()
                .default(0i64),
        )
        .col(
            ColumnDef::new(Promoters::MonthNewGuests)
                .integer()
                .not_null()
                .default(0),
        )
        .col(
            ColumnDef::new(Promoters::MonthRepeatGuests)
                .integer()
                .not_null()
                .default(0),
        )
        .col(
            ColumnDef::new(Promoters::Status)
                .string()
                .not_null()
                .default("PENDING_APPROVAL"),
        )
        .col(
            ColumnDef::new(Promoters::Tier)
                .string()
                .not_null()
                .default("STANDARD"),
        )
        .col(
            ColumnDef::new(Promoters::JoinedAt)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(ColumnDef::new(Promoters::LastActiveAt).timestamp_with_time_zone())
        .col(
            ColumnDef::new(Promoters::CreatedAt)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(
            ColumnDef::new(Promoters::UpdatedAt)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .foreign_key(
            ForeignKey::create()
                .name("fk_promoters_venue_id")
                .from(Promoters::Table, Promoters::VenueId)
                .to(Venues::Table, Venues::Id),
        )
        .check((
            "check_promoters_status",
            Expr::col(Promoters::Status).is_in(PROMOTER_STATUS),
        ))
        .check((
            "check_promoters_tier",
            Expr::col(Promoters::Tier).is_in(PROMOTER_TIER),
        ))
        .check((
            "check_promoters_total_revenue_range",
            Expr::col(Promoters::TotalRevenue).between(0i64, 999999999999i64),
        ))
        .check((
            "check_promoters_average_booking_value_range",
            Expr::col(Promoters::AverageBookingValue).between(0i64, 9999999999i64),
        ))
        .check((
            "check_promoters_conversion_rate_range",
            Expr::col(Promoters::ConversionRate).between(0i64, 10000i64),
        ))
        .check((
            "check_promoters_no_show_rate_range",
            Expr::col(Promoters::NoShowRate).between(0i64, 10000i64),
        ))
        .check((
            "check_promoters_cancel_rate_range",
            Expr::col(Promoters::CancelRate).between(0i64, 10000i64),
        ))
        .check((
            "check_promoters_month_revenue_range",
            Expr::col(Promoters::MonthRevenue).between(0i64, 999999999999i64),
        ))
        .to_owned()
}

/// Unique and plain indexes of `promoters`.
fn promoters_indexes() -> Vec<IndexCreateStatement> {
    vec![
        Index::create()
            .name("idx_promoters_venue_id")
            .table(Promoters::Table)
            .col(Promoters::VenueId)
            .to_owned(),
        Index::create()
            .name("idx_promoters_email")
            .table(Promoters::Table)
            .col(Promoters::Email)
            .to_owned(),
        Index::create()
            .name("idx_promoters_status")
            .table(Promoters::Table)
            .col(Promoters::Status)
            .to_owned(),
        Index::create()
            .name("idx_promoters_tier")
            .table(Promoters::Table)
            .col(Promoters::Tier)
            .to_owned(),
        Index::create()
            .name("idx_promoters_total_bookings")
            .table(Promoters::Table)
            .col(Promoters::TotalBookings)
            .to_owned(),
        Index::create()
            .name("idx_promoters_total_revenue")
            .table(Promoters::Table)
            .col(Promoters::TotalRevenue)
            .to_owned(),
        Index::create()
            .name("idx_promoters_conversion_rate")
            .table(Promoters::Table)
            .col(Promoters::ConversionRate)
            .to_owned(),
        Index::create()
            .name("idx_promoters_last_active_at")
            .table(Promoters::Table)
            .col(Promoters::LastActiveAt)
            .to_owned(),
    ]
}

/// `bookings`: Bookings of a guest at a venue, possibly brought by a promoter, with the fees locked in at creation.
fn bookings() -> TableCreateStatement {
    Table::create()
        .table(Bookings::Table)
        .col(ColumnDef::new(Bookings::Id).uuid().not_null().primary_key())
        .col(ColumnDef::new(Bookings::VenueId).uuid().not_null())
        .col(ColumnDef::new(Bookings::PromoterId).uuid())
        .col(ColumnDef::new(Bookings::GuestId).uuid().not_null())
        .col(ColumnDef::new(Bookings::Diners).integer().not_null())
        .col(
            ColumnDef::new(Bookings::BookingTime)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(
            ColumnDef::new(Bookings::DurationMinutes)
                .integer()
                .not_null()
                .default(120),
        )
        .col(ColumnDef::new(Bookings::SpecialRequests).text())
        .col(ColumnDef::new(Bookings::Notes).text())
        .col(ColumnDef::new(Bookings::Type).string().not_null())
        .col(ColumnDef::new(Bookings::Source).string().not_null())
        .col(ColumnDef::new(Bookings::Status).string().not_null())
        .col(ColumnDef::new(Bookings::BaseFee).big_integer().not_null())
        .col(
            ColumnDef::new(Bookings::PlatformFee)
                .big_integer()
                .not_null(),
        )
        .col(ColumnDef::new(Bookings::TotalFee).big_integer().not_null())
        .col(
            ColumnDef::new(Bookings::PromoterCommission)
                .big_integer()
                .not_null()
                .default(0i64),
        )
        .col(ColumnDef::new(Bookings::ConfirmedAt).timestamp_with_time_zone())
        .col(ColumnDef::new(Bookings::CancelledAt).timestamp_with_time_zone())
        .col(ColumnDef::new(Bookings::NoShowAt).timestamp_with_time_zone())
        .col(ColumnDef::new(Bookings::CompletedAt).timestamp_with_time_zone())
        .col(ColumnDef::new(Bookings::IpAddress).string_len(45))
        .col(ColumnDef::new(Bookings::UserAgent).text())
        .col(ColumnDef::new(Bookings::Referrer).string_len(255))
        .col(
            ColumnDef::new(Bookings::CreatedAt)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(
            ColumnDef::new(Bookings::UpdatedAt)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .foreign_key(
            ForeignKey::create()
                .name("fk_bookings_venue_id")
                .from(Bookings::Table, Bookings::VenueId)
                .to(Venues::Table, Venues::Id),
        )
        .foreign_key(
            ForeignKey::create()
                .name("fk_bookings_promoter_id")
                .from(Bookings::Table, Bookings::PromoterId)
                .to(Promoters::Table, Promoters::Id),
        )
        .foreign_key(
            ForeignKey::create()
                .name("fk_bookings_guest_id")
                .from(Bookings::Table, Bookings::GuestId)
                .to(Guests::Table, Guests::Id),
        )
        .check((
            "check_bookings_type",
            Expr::col(Bookings::Type).is_in(BOOKING_TYPE),
        ))
        .check((
            "check_bookings_source",
            Expr::col(Bookings::Source).is_in(BOOKING_SOURCE),
        ))
        .check((
            "check_bookings_status",
            Expr::col(Bookings::Status).is_in(BOOKING_STATUS),
        ))
        .check((
            "check_bookings_base_fee_range",
            Expr::col(Bookings::BaseFee).between(0i64, 9999999999i64),
        ))
        .check((
            "check_bookings_platform_fee_range",
            Expr::col(Bookings::PlatformFee).between(0i64, 9999999999i64),
        ))
        .check((
            "check_bookings_total_fee_range",
            Expr::col(Bookings::TotalFee).between(0i64, 9999999999i64),
        ))
        .check((
            "check_bookings_promoter_commission_range",
            Expr::col(Bookings::PromoterCommission).between(0i64, 9999999999i64),
        ))
        .check((
            "check_booking_time_future",
            Expr::col(Bookings::BookingTime).gt(Expr::col(Bookings::CreatedAt)),
        ))
        .check((
            "check_diners_positive",
            Expr::col(Bookings::Diners)
                .gt(0)
                .and(Expr::col(Bookings::Diners).lte(50)),
        ))
        .check((
            "check_fee_positive",
            Expr::col(Bookings::TotalFee)
                .gte(0)
                .and(Expr::col(Bookings::PlatformFee).gte(0)),
        ))
        .to_owned()
}

/// Unique and plain indexes of `bookings`.
fn bookings_indexes() -> Vec<IndexCreateStatement> {
    vec![
        Index::create()
            .name("idx_bookings_venue_id")
            .table(Bookings::Table)
            .col(Bookings::VenueId)
            .to_owned(),
        Index::create()
            .name("idx_bookings_promoter_id")
            .table(Bookings::Table)
            .col(Bookings::PromoterId)
            .to_owned(),
        Index::create()
            .name("idx_bookings_guest_id")
            .table(Bookings::Table)
            .col(Bookings::GuestId)
            .to_owned(),
        Index::create()
            .name("idx_bookings_booking_time")
            .table(Bookings::Table)
            .col(Bookings::BookingTime)
            .to_owned(),
        Index::create()
            .name("idx_bookings_status")
            .table(Bookings::Table)
            .col(Bookings::Status)
            .to_owned(),
        Index::create()
            .name("idx_bookings_type")
            .table(Bookings::Table)
            .col(Bookings::Type)
            .to_owned(),
        Index::create()
            .name("idx_bookings_source")
            .table(Bookings::Table)
            .col(Bookings::Source)
            .to_owned(),
        Index::create()
            .name("idx_bookings_created_at")
            .table(Bookings::Table)
            .col(Bookings::CreatedAt)
            .to_owned(),
        Index::create()
            .name("idx_bookings_venue_id_booking_time")
            .table(Bookings::Table)
            .col(Bookings::VenueId)
            .col(Bookings::BookingTime)
            .to_owned(),
        Index::create()
            .name("idx_bookings_promoter_id_booking_time")
            .table(Bookings::Table)
            .col(Bookings::PromoterId)
            .col(Bookings::BookingTime)
            .to_owned(),
        Index::create()
            .name("idx_bookings_status_booking_time")
            .table(Bookings::Table)
            .col(Bookings::Status)
            .col(Bookings::BookingTime)
            .to_owned(),
        Index::create()
            .name("idx_bookings_venue_date_status")
            .table(Bookings::Table)
            .col(Bookings::VenueId)
            .col(Bookings::BookingTime)
            .col(Bookings::Status)
            .to_owned(),
        Index::create()
            .name("idx_bookings_promoter_date_confirmed")
            .table(Bookings::Table)
            .col(Bookings::PromoterId)
            .col(Bookings::BookingTime)
            .and_where(Expr::col(Bookings::Status).eq("CONFIRMED"))
            .to_owned(),
    ]
}

/// `booking_history`: Audit trail of a booking: one row per status change or edit, written in the same transaction.
fn booking_history() -> TableCreateStatement {
    Table::create()
        .table(BookingHistory::Table)
        .col(
            ColumnDef::new(BookingHistory::Id)
                .uuid()
                .not_null()
                .primary_key(),
        )
        .col(ColumnDef::new(BookingHistory::BookingId).uuid().not_null())
        .col(
            ColumnDef::new(BookingHistory::Action)
                .string_len(50)
                .not_null(),
        )
        .col(ColumnDef::new(BookingHistory::PreviousValue).json_binary())
        .col(ColumnDef::new(BookingHistory::NewValue).json_binary())
        .col(ColumnDef::new(BookingHistory::Reason).text())
        .col(ColumnDef::new(BookingHistory::PerformedById).uuid())
        .col(
            ColumnDef::new(BookingHistory::PerformedByName)
                .string_len(255)
                .not_null(),
        )
        .col(
            ColumnDef::new(BookingHistory::PerformedByRole)
                .string_len(50)
                .not_null(),
        )
        .col(
            ColumnDef::new(BookingHistory::Timestamp)
                .timestamp_with_time_zone()
                .not_null(),
        )
        .col(ColumnDef::new(BookingHistory::Metadata).json_binary())
        .foreign_key(
            ForeignKey::create()
                .name("fk_booking_history_booking_id")
                .from(BookingHistory::Table, BookingHistory::BookingId)
                .to(Bookings::Table, Bookings::Id)
                .on_delete(ForeignKeyAction::Cascade),
        )
        .foreign_key(
            ForeignKey::create()
                .name("fk_booking_history_performed_by_id")
                .from(BookingHistory::Table, BookingHistory::PerformedById)
                .to(Users::Table, Users::Id),
        )
        .to_owned()
}

/// Unique and plain indexes of `booking_history`.
fn booking_history_indexes() -> Vec<IndexCreateStatement> {
    vec![
        Index::create()
            .name("idx_booking_history_booking_id")
            .table(BookingHistory::Table)
            .col(BookingHistory::BookingId)
            .to_owned(),
        Index::create()
            .name("idx_booking_history_action")
            .table(BookingHistory::Table)
            .col(BookingHistory::Action)
            .to_owned(),
        Index::create()
            .name("idx_booking_history_timestamp")
            .table(BookingHistory::Table)
            .col(BookingHistory::Timestamp)
            .to_owned(),
        Index::create()
            .name("idx_booking_history_performed_by_id")
            .table(BookingHistory::Table)
            .col(BookingHistory::PerformedById)
            .to_owned(),
    ]
}
