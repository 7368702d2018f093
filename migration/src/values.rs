//! The stored text of every enum of the data model, for the CHECK constraints.
//!
//! Kept here rather than taken from `prima-entity` so that a migration, once released, never
//! changes meaning when the entity crate does.

/// `UserRole`: Global role of a platform user; decides what the user may do across PRIMA.
pub const USER_ROLE: [&str; 4] = ["ADMIN", "MANAGER", "COORDINATOR", "VIEWER"];
/// `UserStatus`: Whether a user account may sign in and act.
pub const USER_STATUS: [&str; 3] = ["ACTIVE", "INACTIVE", "SUSPENDED"];
/// `VenueRole`: Role a user holds on one venue through a venue access grant. OWNER > ADMIN > MANAGER > COORDINATOR.
pub const VENUE_ROLE: [&str; 4] = ["OWNER", "ADMIN", "MANAGER", "COORDINATOR"];
/// `VenueType`: Kind of establishment a venue is.
pub const VENUE_TYPE: [&str; 6] = ["RESTAURANT", "HOTEL", "EVENT_SPACE", "BAR", "CAFE", "OTHER"];
/// `VenueTier`: Market positioning of a venue, from casual to premium.
pub const VENUE_TIER: [&str; 4] = ["CASUAL", "MID_TIER", "HIGH_END", "PREMIUM"];
/// `VenueStatus`: Operating status of a venue on the platform.
pub const VENUE_STATUS: [&str; 3] = ["ACTIVE", "INACTIVE", "PENDING"];
/// `Gender`: Gender a guest chose to give (optional demographics).
pub const GENDER: [&str; 4] = ["MALE", "FEMALE", "OTHER", "PREFER_NOT_TO_SAY"];
/// `SeatingPreference`: Where a guest prefers to be seated.
pub const SEATING_PREFERENCE: [&str; 4] = ["INDOOR", "OUTDOOR", "BAR", "PRIVATE"];
/// `GuestStatus`: Standing of a guest with the venues.
pub const GUEST_STATUS: [&str; 3] = ["ACTIVE", "BLOCKED", "VIP"];
/// `BookingType`: Pricing class of a booking: decides which price of the venue's pricing applies.
pub const BOOKING_TYPE: [&str; 2] = ["PRIME", "NON_PRIME"];
/// `BookingSource`: Channel through which a booking was made.
pub const BOOKING_SOURCE: [&str; 5] = ["DIRECT", "PROMOTER", "PARTNER", "WALK_IN", "PHONE"];
/// `BookingStatus`: Where a booking is in its life: PENDING -> CONFIRMED -> COMPLETED or NO_SHOW; PENDING or CONFIRMED -> CANCELLED.
pub const BOOKING_STATUS: [&str; 5] = ["PENDING", "CONFIRMED", "CANCELLED", "NO_SHOW", "COMPLETED"];
/// `PromoterStatus`: Whether a promoter may bring bookings and earn commissions.
pub const PROMOTER_STATUS: [&str; 4] = ["ACTIVE", "INACTIVE", "SUSPENDED", "PENDING_APPROVAL"];
/// `PromoterTier`: Level of a promoter, which selects the commission rates and incentive programmes that apply to them.
pub const PROMOTER_TIER: [&str; 3] = ["STANDARD", "PREMIUM", "VIP"];
/// `CommissionModel`: How a promoter's commission on a booking is computed.
pub const COMMISSION_MODEL: [&str; 4] = ["PER_COVER", "PERCENT_OF_SPEND", "FLAT_RATE", "TIERED"];
/// `TransactionType`: Kind of ledger entry.
pub const TRANSACTION_TYPE: [&str; 6] = [
    "BOOKING_FEE",
    "PLATFORM_FEE",
    "PROMOTER_COMMISSION",
    "REFUND",
    "ADJUSTMENT",
    "INCENTIVE_PAYOUT",
];
/// `TransactionStatus`: Where a ledger entry is in its processing.
pub const TRANSACTION_STATUS: [&str; 5] =
    ["PENDING", "CONFIRMED", "SETTLED", "FAILED", "CANCELLED"];
/// `PayoutStatus`: Where a payout is in its approval and payment: DRAFT -> PENDING_APPROVAL -> APPROVED -> PROCESSING -> COMPLETED or FAILED.
pub const PAYOUT_STATUS: [&str; 6] = [
    "DRAFT",
    "PENDING_APPROVAL",
    "APPROVED",
    "PROCESSING",
    "COMPLETED",
    "FAILED",
];
/// `PayoutMethod`: How a payout is paid to the promoter.
pub const PAYOUT_METHOD: [&str; 3] = ["BANK_TRANSFER", "CHECK", "DIGITAL_WALLET"];
/// `IncentiveType`: What an incentive programme measures for each promoter over its period.
pub const INCENTIVE_TYPE: [&str; 4] = [
    "BOOKING_COUNT",
    "REVENUE_TARGET",
    "NEW_GUESTS",
    "CONVERSION_RATE",
];
/// `TargetComparison`: How a promoter's measured value is compared with the programme's threshold to win.
pub const TARGET_COMPARISON: [&str; 4] = ["GREATER_THAN", "GREATER_EQUAL", "EQUAL", "TOP_N"];
/// `RewardType`: What a winner of an incentive programme receives.
pub const REWARD_TYPE: [&str; 3] = ["FIXED_AMOUNT", "PERCENTAGE_BONUS", "TIER_UPGRADE"];
/// `PeriodType`: Length of an incentive programme's period, computed in the venue's time zone.
pub const PERIOD_TYPE: [&str; 4] = ["WEEKLY", "MONTHLY", "QUARTERLY", "CUSTOM"];
/// `IncentiveStatus`: Life of an incentive programme.
pub const INCENTIVE_STATUS: [&str; 5] = ["DRAFT", "ACTIVE", "PAUSED", "COMPLETED", "CANCELLED"];
/// `ProgressStatus`: A promoter's standing in one incentive programme.
pub const PROGRESS_STATUS: [&str; 4] = ["IN_PROGRESS", "ACHIEVED", "MISSED", "DISQUALIFIED"];
