//! The enums of the data model, stored as their SCREAMING_SNAKE_CASE text (a text column
//! with a CHECK constraint on both databases, never a PostgreSQL enum type).
//!
//! Every enum derives `DeriveActiveEnum` (stored as `String`), serde with the stored
//! spelling, and, with the `graphql` feature, `async_graphql::Enum`; the doc comments
//! become the GraphQL descriptions. `as_str()` returns the stored text.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Declares a stored enum: the derives every enum shares, one `string_value` per variant
/// and an `as_str()` returning the same text, so the two can never disagree.
macro_rules! db_enum {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:tt, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
        )]
        #[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        #[cfg_attr(feature = "graphql", derive(async_graphql::Enum))]
        pub enum $name {
            $(
                $(#[$vmeta])*
                #[sea_orm(string_value = $text)]
                $variant,
            )+
        }

        impl $name {
            /// The text stored in the database (and used in GraphQL and JSON).
            pub fn as_str(&self) -> &'static str {
                match self {
                    $( Self::$variant => $text, )+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

db_enum! {
    /// Global role of a platform user; decides what the user may do across PRIMA.
    UserRole {
        /// PRIMA administrator: sees and does everything on every venue.
        Admin = "ADMIN",
        /// Manager: acts on the venues where they hold access, with that access row's role.
        Manager = "MANAGER",
        /// Coordinator: day-to-day booking work on the venues where they hold access.
        Coordinator = "COORDINATOR",
        /// Viewer: read-only access to the venues where they hold access.
        Viewer = "VIEWER",
    }
}

db_enum! {
    /// Whether a user account may sign in and act.
    UserStatus {
        /// The account is in use and may sign in.
        Active = "ACTIVE",
        /// The account is switched off; it loses access on its next request.
        Inactive = "INACTIVE",
        /// The account is blocked pending review; it loses access on its next request.
        Suspended = "SUSPENDED",
    }
}

db_enum! {
    /// Role a user holds on one venue through a venue access grant. OWNER > ADMIN > MANAGER > COORDINATOR.
    VenueRole {
        /// Owner of the venue: everything an ADMIN may do, for this venue.
        Owner = "OWNER",
        /// Venue administrator: pricing, commission rates, venue settings, payout approval and access grants.
        Admin = "ADMIN",
        /// Venue manager: promoters, incentives, commission assignments and financial reads, plus coordinator work.
        Manager = "MANAGER",
        /// Venue coordinator: reads venues, guests and bookings; creates and edits bookings.
        Coordinator = "COORDINATOR",
    }
}

db_enum! {
    /// Kind of establishment a venue is.
    VenueType {
        /// A restaurant.
        Restaurant = "RESTAURANT",
        /// A hotel (dining or event spaces within it).
        Hotel = "HOTEL",
        /// A space rented for events.
        EventSpace = "EVENT_SPACE",
        /// A bar or lounge.
        Bar = "BAR",
        /// A cafe.
        Cafe = "CAFE",
        /// Any other kind of venue.
        Other = "OTHER",
    }
}

db_enum! {
    /// Market positioning of a venue, from casual to premium.
    VenueTier {
        /// Casual dining.
        Casual = "CASUAL",
        /// Mid-market.
        MidTier = "MID_TIER",
        /// High-end.
        HighEnd = "HIGH_END",
        /// Premium, top of the market.
        Premium = "PREMIUM",
    }
}

db_enum! {
    /// Operating status of a venue on the platform.
    VenueStatus {
        /// The venue is live and takes bookings.
        Active = "ACTIVE",
        /// The venue is switched off and takes no bookings.
        Inactive = "INACTIVE",
        /// The venue is being onboarded and is not live yet.
        Pending = "PENDING",
    }
}

db_enum! {
    /// Gender a guest chose to give (optional demographics).
    Gender {
        /// Male.
        Male = "MALE",
        /// Female.
        Female = "FEMALE",
        /// Another gender.
        Other = "OTHER",
        /// The guest preferred not to say.
        PreferNotToSay = "PREFER_NOT_TO_SAY",
    }
}

db_enum! {
    /// Where a guest prefers to be seated.
    SeatingPreference {
        /// Indoor seating.
        Indoor = "INDOOR",
        /// Outdoor seating (terrace, patio).
        Outdoor = "OUTDOOR",
        /// At the bar.
        Bar = "BAR",
        /// A private room or area.
        Private = "PRIVATE",
    }
}

db_enum! {
    /// Standing of a guest with the venues.
    GuestStatus {
        /// A regular guest.
        Active = "ACTIVE",
        /// A guest who may not book.
        Blocked = "BLOCKED",
        /// A guest to be given VIP treatment.
        Vip = "VIP",
    }
}

db_enum! {
    /// Pricing class of a booking: decides which price of the venue's pricing applies.
    BookingType {
        /// Prime booking: a base price for two diners plus a price per additional diner, and the prime platform fee.
        Prime = "PRIME",
        /// Non-prime booking: a price per diner and the non-prime platform fee.
        NonPrime = "NON_PRIME",
    }
}

db_enum! {
    /// Channel through which a booking was made.
    BookingSource {
        /// Made directly by the guest with the venue.
        Direct = "DIRECT",
        /// Brought in by a promoter, who may earn a commission on it.
        Promoter = "PROMOTER",
        /// Made through a partner platform.
        Partner = "PARTNER",
        /// A walk-in guest recorded at the door.
        WalkIn = "WALK_IN",
        /// Taken over the phone.
        Phone = "PHONE",
    }
}

db_enum! {
    /// Where a booking is in its life: PENDING -> CONFIRMED -> COMPLETED or NO_SHOW; PENDING or CONFIRMED -> CANCELLED.
    BookingStatus {
        /// Waiting for the venue to confirm it.
        Pending = "PENDING",
        /// Confirmed by the venue; fees and the promoter's commission are recorded as pending transactions.
        Confirmed = "CONFIRMED",
        /// Cancelled before the booking time; final.
        Cancelled = "CANCELLED",
        /// The guest did not come; the venue keeps its no-show fee, the promoter earns nothing; final.
        NoShow = "NO_SHOW",
        /// The guest came; fees and commission are earned; final.
        Completed = "COMPLETED",
    }
}

db_enum! {
    /// Whether a promoter may bring bookings and earn commissions.
    PromoterStatus {
        /// Working with the venue and earning commissions.
        Active = "ACTIVE",
        /// No longer working with the venue; earns no commission.
        Inactive = "INACTIVE",
        /// Temporarily barred; earns no commission.
        Suspended = "SUSPENDED",
        /// Signed up and waiting for the venue's approval; earns no commission yet.
        PendingApproval = "PENDING_APPROVAL",
    }
}

db_enum! {
    /// Level of a promoter, which selects the commission rates and incentive programmes that apply to them.
    PromoterTier {
        /// Entry level.
        Standard = "STANDARD",
        /// Middle level, for proven promoters.
        Premium = "PREMIUM",
        /// Top level, for the best promoters.
        Vip = "VIP",
    }
}

db_enum! {
    /// How a promoter's commission on a booking is computed.
    CommissionModel {
        /// A fixed amount per diner: rate x diners.
        PerCover = "PER_COVER",
        /// A share of the booking's base fee: rate x base fee.
        PercentOfSpend = "PERCENT_OF_SPEND",
        /// A fixed amount per booking.
        FlatRate = "FLAT_RATE",
        /// A percent of spend taken from a ladder of rates by the promoter's bookings this month.
        Tiered = "TIERED",
    }
}

db_enum! {
    /// Kind of ledger entry.
    TransactionType {
        /// The booking's base fee charged for the venue.
        BookingFee = "BOOKING_FEE",
        /// PRIMA's platform fee on a booking.
        PlatformFee = "PLATFORM_FEE",
        /// Commission owed to the promoter who brought the booking.
        PromoterCommission = "PROMOTER_COMMISSION",
        /// Money given back to the guest (negative amount).
        Refund = "REFUND",
        /// A correction, such as a commission clawback after a refund; may be negative.
        Adjustment = "ADJUSTMENT",
        /// A reward a promoter won in an incentive programme.
        IncentivePayout = "INCENTIVE_PAYOUT",
    }
}

db_enum! {
    /// Where a ledger entry is in its processing.
    TransactionStatus {
        /// Recorded, not earned yet (the booking has not taken place).
        Pending = "PENDING",
        /// Earned; may be paid out.
        Confirmed = "CONFIRMED",
        /// Paid out in a completed payout.
        Settled = "SETTLED",
        /// Processing failed.
        Failed = "FAILED",
        /// Void: the booking was cancelled or the commission forfeited.
        Cancelled = "CANCELLED",
    }
}

db_enum! {
    /// Where a payout is in its approval and payment: DRAFT -> PENDING_APPROVAL -> APPROVED -> PROCESSING -> COMPLETED or FAILED.
    PayoutStatus {
        /// Generated, not yet submitted for approval.
        Draft = "DRAFT",
        /// Submitted; waiting for a venue OWNER or ADMIN other than the submitter to approve it.
        PendingApproval = "PENDING_APPROVAL",
        /// Approved; may be sent for payment.
        Approved = "APPROVED",
        /// Being paid.
        Processing = "PROCESSING",
        /// Paid; its transactions are settled.
        Completed = "COMPLETED",
        /// Payment failed; its transactions are released for a new payout.
        Failed = "FAILED",
    }
}

db_enum! {
    /// How a payout is paid to the promoter.
    PayoutMethod {
        /// Bank transfer.
        BankTransfer = "BANK_TRANSFER",
        /// Paper check.
        Check = "CHECK",
        /// Digital wallet.
        DigitalWallet = "DIGITAL_WALLET",
    }
}

db_enum! {
    /// What an incentive programme measures for each promoter over its period.
    IncentiveType {
        /// Number of confirmed and completed bookings.
        BookingCount = "BOOKING_COUNT",
        /// Total fees of the promoter's bookings.
        RevenueTarget = "REVENUE_TARGET",
        /// Guests whose first booking with the promoter at the venue falls in the period.
        NewGuests = "NEW_GUESTS",
        /// Completed bookings over completed, cancelled and no-show bookings.
        ConversionRate = "CONVERSION_RATE",
    }
}

db_enum! {
    /// How a promoter's measured value is compared with the programme's threshold to win.
    TargetComparison {
        /// Wins when the value is above the threshold.
        GreaterThan = "GREATER_THAN",
        /// Wins when the value reaches the threshold.
        GreaterEqual = "GREATER_EQUAL",
        /// Wins when the value equals the threshold.
        Equal = "EQUAL",
        /// The best N promoters at period end win, N being the threshold.
        TopN = "TOP_N",
    }
}

db_enum! {
    /// What a winner of an incentive programme receives.
    RewardType {
        /// A fixed amount of money (the reward value).
        FixedAmount = "FIXED_AMOUNT",
        /// A bonus of the reward value percent of the promoter's commissions in the period.
        PercentageBonus = "PERCENTAGE_BONUS",
        /// A move up one promoter tier (STANDARD -> PREMIUM -> VIP); no money.
        TierUpgrade = "TIER_UPGRADE",
    }
}

db_enum! {
    /// Length of an incentive programme's period, computed in the venue's time zone.
    PeriodType {
        /// A week, from Monday 00:00.
        Weekly = "WEEKLY",
        /// A calendar month.
        Monthly = "MONTHLY",
        /// A calendar quarter (from Jan, Apr, Jul or Oct 1st).
        Quarterly = "QUARTERLY",
        /// Any period given by its start and end.
        Custom = "CUSTOM",
    }
}

db_enum! {
    /// Life of an incentive programme.
    IncentiveStatus {
        /// Being prepared; not visible to promoters.
        Draft = "DRAFT",
        /// Running: progress is measured.
        Active = "ACTIVE",
        /// Temporarily stopped.
        Paused = "PAUSED",
        /// Finalised: winners decided and rewards written.
        Completed = "COMPLETED",
        /// Stopped for good without rewards.
        Cancelled = "CANCELLED",
    }
}

db_enum! {
    /// A promoter's standing in one incentive programme.
    ProgressStatus {
        /// The period is running and the target is not met yet.
        InProgress = "IN_PROGRESS",
        /// The promoter met the target (or is among the top N).
        Achieved = "ACHIEVED",
        /// The period ended without the promoter meeting the target.
        Missed = "MISSED",
        /// The promoter was excluded from the programme.
        Disqualified = "DISQUALIFIED",
    }
}
