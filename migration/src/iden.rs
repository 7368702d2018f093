//! Identifiers of every table and column, shared by the migrations.

use sea_orm_migration::prelude::*;

/// `users` and its columns.
#[derive(DeriveIden, Clone, Copy)]
pub enum Users {
    Table,
    Id,
    Email,
    PasswordHash,
    FirstName,
    LastName,
    Phone,
    Role,
    Status,
    EmailVerified,
    TwoFactorEnabled,
    Preferences,
    LastLoginAt,
    CreatedAt,
    UpdatedAt,
}

/// `venues` and its columns.
#[derive(DeriveIden, Clone, Copy)]
pub enum Venues {
    Table,
    Id,
    Name,
    Type,
    Tier,
    AddressStreet,
    AddressCity,
    AddressState,
    AddressZip,
    AddressCountry,
    CoordinatesLat,
    CoordinatesLng,
    Timezone,
    ContactPhone,
    ContactEmail,
    ContactWebsite,
    CapacitySeated,
    CapacityStanding,
    CapacityPrivate,
    Currency,
    Language,
    AutoConfirmBookings,
    RequireApproval,
    AverageDailyBookings,
    PrimeRatio,
    AverageBookingValue,
    Status,
    CreatedAt,
    UpdatedAt,
}

/// `user_venue_access` and its columns.
#[derive(DeriveIden, Clone, Copy)]
pub enum UserVenueAccess {
    Table,
    Id,
    UserId,
    VenueId,
    Role,
    GrantedBy,
    GrantedAt,
    RevokedAt,
}

/// `venue_pricing` and its columns.
#[derive(DeriveIden, Clone, Copy)]
pub enum VenuePricing {
    Table,
    Id,
    VenueId,
    NonPrimePerDiner,
    NonPrimePlatformFeePercent,
    #[sea_orm(iden = "prime_base_for_2")]
    PrimeBaseFor2,
    PrimeAdditionalPerPerson,
    PrimePlatformFeePercent,
    MinimumBookingAmount,
    MinimumPartySize,
    MaximumPartySize,
    EarlyBirdDiscountPercent,
    RepeatCustomerDiscountPercent,
    GroupDiscountPercent,
    EffectiveFrom,
    EffectiveTo,
    IsActive,
    UpdatedBy,
    CreatedAt,
    UpdatedAt,
}

/// `guests` and its columns.
#[derive(DeriveIden, Clone, Copy)]
pub enum Guests {
    Table,
    Id,
    FirstName,
    LastName,
    Email,
    Phone,
    BirthDate,
    Gender,
    DietaryRestrictions,
    SeatingPreference,
    CommunicationEmail,
    CommunicationSms,
    CommunicationPush,
    TotalBookings,
    CancelledBookings,
    NoShowBookings,
    TotalSpent,
    AveragePartySize,
    LastBookingAt,
    Status,
    Tags,
    CreatedAt,
    UpdatedAt,
    RegisteredVenueId,
    TotalDiners,
}

/// `promoters` and its columns.
#[derive(DeriveIden, Clone, Copy)]
pub enum Promoters {
    Table,
    Id,
    VenueId,
    FirstName,
    LastName,
    Email,
    Phone,
    Title,
    Company,
    Bio,
    SocialMedia,
    TotalBookings,
    TotalRevenue,
    AverageBookingValue,
    ConversionRate,
    NoShowRate,
    CancelRate,
    MonthBookings,
    MonthRevenue,
    MonthNewGuests,
    MonthRepeatGuests,
    Status,
    Tier,
    JoinedAt,
    LastActiveAt,
    CreatedAt,
    UpdatedAt,
    AllBookings,
    CompletedBookings,
    CancelledBookings,
    NoShowBookings,
    MonthStart,
}

/// `bookings` and its columns.
#[derive(DeriveIden, Clone, Copy)]
pub enum Bookings {
    Table,
    Id,
    VenueId,
    PromoterId,
    GuestId,
    Diners,
    BookingTime,
    DurationMinutes,
    SpecialRequests,
    Notes,
    Type,
    Source,
    Status,
    BaseFee,
    PlatformFee,
    TotalFee,
    PromoterCommission,
    ConfirmedAt,
    CancelledAt,
    NoShowAt,
    CompletedAt,
    IpAddress,
    UserAgent,
    Referrer,
    CreatedAt,
    UpdatedAt,
}

/// `booking_history` and its columns.
#[derive(DeriveIden, Clone, Copy)]
pub enum BookingHistory {
    Table,
    Id,
    BookingId,
    Action,
    PreviousValue,
    NewValue,
    Reason,
    PerformedById,
    PerformedByName,
    PerformedByRole,
    Timestamp,
    Metadata,
}

/// `commission_rates` and its columns.
#[derive(DeriveIden, Clone, Copy)]
pub enum CommissionRates {
    Table,
    Id,
    VenueId,
    Tier,
    Model,
    Value,
    MinimumBooking,
    MaximumPayout,
    MinMonthlyBookings,
    MinConversionRate,
    MaxCancelRate,
    EffectiveFrom,
    EffectiveTo,
    IsActive,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

/// `commission_assignments` and its columns.
#[derive(DeriveIden, Clone, Copy)]
pub enum CommissionAssignments {
    Table,
    Id,
    PromoterId,
    CommissionRateId,
    Tier,
    Model,
    Rate,
    EffectiveFrom,
    EffectiveTo,
    AssignedBy,
    AssignedAt,
    Notes,
}

/// `incentives` and its columns.
#[derive(DeriveIden, Clone, Copy)]
pub enum Incentives {
    Table,
    Id,
    FinalizedAt,
    VenueId,
    Name,
    Description,
    Type,
    TargetMetric,
    TargetThreshold,
    TargetComparison,
    RewardType,
    RewardValue,
    RewardCurrency,
    RewardDescription,
    PeriodType,
    PeriodStart,
    PeriodEnd,
    IsRecurring,
    EligibleTiers,
    MinTenureDays,
    MaxPreviousWins,
    Status,
    ParticipantCount,
    WinnerCount,
    TotalPayout,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

/// `incentive_progress` and its columns.
#[derive(DeriveIden, Clone, Copy)]
pub enum IncentiveProgress {
    Table,
    Id,
    IncentiveId,
    PromoterId,
    CurrentValue,
    TargetValue,
    PercentComplete,
    Status,
    AchievedAt,
    RewardEarned,
    RewardPaidAt,
    LastUpdated,
    CreatedAt,
    CompletedBookings,
    ClosedBookings,
    ValueReachedAt,
}

/// `payouts` and its columns.
#[derive(DeriveIden, Clone, Copy)]
pub enum Payouts {
    Table,
    Id,
    VenueId,
    PromoterId,
    Amount,
    Currency,
    PeriodFrom,
    PeriodTo,
    Status,
    ScheduledFor,
    ProcessedAt,
    CommissionsAmount,
    IncentivesAmount,
    AdjustmentsAmount,
    FeesAmount,
    Method,
    Reference,
    ApprovedBy,
    ApprovedAt,
    CreatedAt,
    UpdatedAt,
    CreatedBy,
    SubmittedBy,
}

/// `transactions` and its columns.
#[derive(DeriveIden, Clone, Copy)]
pub enum Transactions {
    Table,
    Id,
    BookingId,
    PromoterId,
    VenueId,
    Type,
    Amount,
    Currency,
    Description,
    CommissionRate,
    CommissionAmount,
    CommissionTier,
    Status,
    ProcessedAt,
    SettledAt,
    ExternalTransactionId,
    PayoutId,
    CreatedAt,
    UpdatedAt,
    ReversesTransactionId,
    IncentiveId,
}

/// `payout_items` and its columns.
#[derive(DeriveIden, Clone, Copy)]
pub enum PayoutItems {
    Table,
    Id,
    PayoutId,
    TransactionId,
    Amount,
    Type,
    CreatedAt,
    ReleasedAt,
}

/// `payout_holds` and its columns.
#[derive(DeriveIden, Clone, Copy)]
pub enum PayoutHolds {
    Table,
    Id,
    PayoutId,
    Amount,
    Reason,
    HoldUntil,
    CreatedBy,
    CreatedAt,
    ReleasedBy,
    ReleasedAt,
}

/// `payout_audit` and its columns.
#[derive(DeriveIden, Clone, Copy)]
pub enum PayoutAudit {
    Table,
    Id,
    PayoutId,
    FromStatus,
    ToStatus,
    PerformedBy,
    Reason,
    CreatedAt,
}

/// `outbox_events` and its columns.
#[derive(DeriveIden, Clone, Copy)]
pub enum OutboxEvents {
    Table,
    Id,
    Topic,
    VenueId,
    Payload,
    CreatedAt,
    PublishedAt,
    Seq,
}

/// `idempotency_keys` and its columns.
#[derive(DeriveIden, Clone, Copy)]
pub enum IdempotencyKeys {
    Table,
    Key,
    UserId,
    Operation,
    RequestHash,
    Response,
    ResourceId,
    CreatedAt,
    ExpiresAt,
}

/// `promoter_tier_changes` and its columns.
#[derive(DeriveIden, Clone, Copy)]
pub enum PromoterTierChanges {
    Table,
    Id,
    PromoterId,
    FromTier,
    ToTier,
    IncentiveId,
    PerformedBy,
    Reason,
    CreatedAt,
}
