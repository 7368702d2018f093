//! Pricing a booking (DOMAIN.md "Pricing a booking"): which `venue_pricing` row is in force,
//! whether a guest is a repeat customer, and the one function that turns a pricing row and a
//! request into the fees locked into a booking.
//!
//! [`quote`] is pure: the caller loads the row ([`pricing_in_force`]) and the repeat-customer
//! flag ([`is_repeat_customer`]) inside its own transaction and passes them in, so the rules
//! can be tested without a database and the seed prices its bookings with the same code.
//!
//! All arithmetic is exact ([`Decimal`]); the only rounding is
//! [`round_money`](crate::money::round_money) (half away from zero, to the cent), applied once
//! to `base_fee` and once to `platform_fee`.

use chrono::{DateTime, TimeDelta, Utc};
use prima_entity::enums::{BookingStatus, BookingType};
use prima_entity::{bookings, venue_pricing};
use rust_decimal::Decimal;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use crate::access::Actor;
use crate::error::{Error, Result};
use crate::money::{self, MONEY_SCALE, cents, round_money};

/// The smallest party any venue takes.
pub const MIN_DINERS: i32 = 1;
/// The largest party any venue takes, whatever its pricing row allows.
pub const MAX_DINERS: i32 = 50;
/// Party size from which the group discount applies.
pub const GROUP_MIN_DINERS: i32 = 8;

/// How long before `booking_time` a booking must be made for the early-bird discount:
/// seven days of 24 hours (an elapsed duration, not seven calendar days in the venue's zone).
pub fn early_bird_lead() -> TimeDelta {
    TimeDelta::days(7)
}

/// Which discount applied (at most one: the largest that qualifies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscountKind {
    /// The booking was made at least [`early_bird_lead`] before `booking_time`.
    EarlyBird,
    /// The guest has at least one COMPLETED booking at this venue.
    RepeatCustomer,
    /// The party has at least [`GROUP_MIN_DINERS`] diners.
    Group,
}

impl DiscountKind {
    /// The stored name, as booking history records it: `EARLY_BIRD`, `REPEAT_CUSTOMER`,
    /// `GROUP`.
    pub fn as_str(self) -> &'static str {
        match self {
            DiscountKind::EarlyBird => "EARLY_BIRD",
            DiscountKind::RepeatCustomer => "REPEAT_CUSTOMER",
            DiscountKind::Group => "GROUP",
        }
    }
}

/// The discount applied to a booking's base price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedDiscount {
    /// Which discount.
    pub kind: DiscountKind,
    /// The discount as a fraction (`0.1000` = 10 %).
    pub rate: Decimal,
}

/// What [`quote`] needs besides the pricing row.
#[derive(Debug, Clone)]
pub struct PricingRequest {
    /// PRIME or NON_PRIME.
    pub booking_type: BookingType,
    /// Party size.
    pub diners: i32,
    /// When the guests arrive.
    pub booking_time: DateTime<Utc>,
    /// When the booking is made (decides early bird and "in the future").
    pub now: DateTime<Utc>,
    /// The guest has at least one COMPLETED booking at this venue ([`is_repeat_customer`]).
    pub repeat_customer: bool,
}

/// The fees of a booking under one pricing row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// The base price before any discount, exact and unrounded.
    pub list_price: Decimal,
    /// The discount that applied, if any.
    pub discount: Option<AppliedDiscount>,
    /// Whether the (discounted) base was raised to the row's `minimum_booking_amount`.
    pub minimum_applied: bool,
    /// The base fee in cents, rounded once.
    pub base_fee: i64,
    /// The platform fee percent of the booking's type (prime or non-prime), as a fraction.
    pub platform_fee_rate: Decimal,
    /// `round(base_fee * platform_fee_rate)`, in cents.
    pub platform_fee: i64,
    /// `base_fee + platform_fee`, in cents.
    pub total_fee: i64,
}

/// Validates a booking request against a pricing row and prices it.
///
/// Validation (nothing is priced when it fails):
/// - `diners` must be within `1..=50` and within the row's
///   `minimum_party_size..=maximum_party_size`; otherwise [`Error::Invalid`] on field
///   `"diners"`, naming the allowed range (the intersection of the two).
/// - `booking_time` must be strictly after `now`; otherwise [`Error::Invalid`] on field
///   `"bookingTime"`.
///
/// Pricing, all exact, nothing rounded until the end:
/// 1. List price: NON_PRIME `non_prime_per_diner * diners`; PRIME
///    `prime_base_for_2 + max(diners - 2, 0) * prime_additional_per_person`.
/// 2. Discount: of early bird (`booking_time - now >= 7 * 24 h`), repeat customer
///    (`request.repeat_customer`) and group (`diners >= 8`), those that qualify and whose
///    percent on the row is set and above zero compete; only the largest applies:
///    `base = list_price * (1 - discount)`. On a tie the first in the order early bird,
///    repeat customer, group wins (the amount is the same either way; the order only decides
///    which name is recorded).
/// 3. Minimum: `base = max(base, minimum_booking_amount)`; `minimum_applied` when it raised
///    the base.
/// 4. `base_fee = round(base)`; `platform_fee = round(base_fee * percent)` with the prime or
///    non-prime percent of the row; `total_fee = base_fee + platform_fee`. Rounding is half
///    away from zero to the cent, once per stored amount, so the three always add up.
pub fn quote(pricing: &venue_pricing::Model, request: &PricingRequest) -> Result<Quote> {
    let lo = pricing.minimum_party_size.max(MIN_DINERS);
    let hi = pricing.maximum_party_size.min(MAX_DINERS);
    if request.diners < lo || request.diners > hi {
        return Err(Error::invalid(
            "diners",
            format!(
                "party size must be between {lo} and {hi} diners, got {}",
                request.diners
            ),
        ));
    }
    if request.booking_time <= request.now {
        return Err(Error::invalid(
            "bookingTime",
            "booking time must be in the future",
        ));
    }

    let diners = Decimal::from(request.diners);
    let (list_price, percent) = match request.booking_type {
        BookingType::NonPrime => (
            cents(pricing.non_prime_per_diner) * diners,
            pricing.non_prime_platform_fee_percent,
        ),
        BookingType::Prime => (
            cents(pricing.prime_base_for_2)
                + Decimal::from((request.diners - 2).max(0))
                    * cents(pricing.prime_additional_per_person),
            pricing.prime_platform_fee_percent,
        ),
    };

    let discount = best_discount(pricing, request);
    let discounted = match &discount {
        Some(d) => list_price * (Decimal::ONE - d.rate),
        None => list_price,
    };
    let minimum = cents(pricing.minimum_booking_amount);
    let minimum_applied = discounted < minimum;
    let base = discounted.max(minimum);

    let base_fee = round_money(base);
    let platform_fee_rate = money::rate(percent);
    let platform_fee = round_money(base_fee * platform_fee_rate);
    let base_fee = units(base_fee)?;
    let platform_fee = units(platform_fee)?;
    let total_fee = base_fee
        .checked_add(platform_fee)
        .ok_or_else(|| Error::internal(anyhow::anyhow!("total fee overflows")))?;
    Ok(Quote {
        list_price,
        discount,
        minimum_applied,
        base_fee,
        platform_fee_rate,
        platform_fee,
        total_fee,
    })
}

/// The largest qualifying discount; ties go to the first of early bird, repeat customer,
/// group. A discount whose percent is unset or zero never applies.
fn best_discount(
    pricing: &venue_pricing::Model,
    request: &PricingRequest,
) -> Option<AppliedDiscount> {
    let candidates = [
        (
            DiscountKind::EarlyBird,
            request.booking_time - request.now >= early_bird_lead(),
            pricing.early_bird_discount_percent,
        ),
        (
            DiscountKind::RepeatCustomer,
            request.repeat_customer,
            pricing.repeat_customer_discount_percent,
        ),
        (
            DiscountKind::Group,
            request.diners >= GROUP_MIN_DINERS,
            pricing.group_discount_percent,
        ),
    ];
    let mut best: Option<(DiscountKind, i64)> = None;
    for (kind, qualifies, percent) in candidates {
        if let (true, Some(percent)) = (qualifies, percent)
            && percent > 0
            && best.is_none_or(|(_, current)| percent > current)
        {
            best = Some((kind, percent));
        }
    }
    best.map(|(kind, percent)| AppliedDiscount {
        kind,
        rate: money::rate(percent),
    })
}

/// A rounded amount as cents; only an amount beyond the range of a BIGINT can fail.
fn units(amount: Decimal) -> Result<i64> {
    money::to_units(amount, MONEY_SCALE)
        .ok_or_else(|| Error::internal(anyhow::anyhow!("amount {amount} out of range")))
}

/// The pricing row in force at `at` for a venue: `is_active` and
/// `effective_from <= at < effective_to` (or `effective_to` null). If several qualify (which
/// closing the old row on every change should prevent), the newest `effective_from` wins,
/// then the greatest id, so the answer is deterministic. `None` when the venue has none.
#[tracing::instrument(skip_all, fields(%venue_id))]
pub async fn pricing_in_force(
    db: &impl ConnectionTrait,
    venue_id: Uuid,
    at: DateTime<Utc>,
) -> Result<Option<venue_pricing::Model>> {
    let row = venue_pricing::Entity::find()
        .filter(venue_pricing::Column::VenueId.eq(venue_id))
        .filter(crate::venues::pricing_in_force(at))
        .order_by_desc(venue_pricing::Column::EffectiveFrom)
        .order_by_desc(venue_pricing::Column::Id)
        .one(db)
        .await?;
    Ok(row)
}

/// Whether the guest has at least one COMPLETED booking at the venue (the repeat-customer
/// discount). Bookings at other venues, and bookings in any other status, do not count.
#[tracing::instrument(skip_all, fields(%guest_id, %venue_id))]
pub async fn is_repeat_customer(
    db: &impl ConnectionTrait,
    guest_id: Uuid,
    venue_id: Uuid,
) -> Result<bool> {
    was_repeat_customer(db, guest_id, venue_id, None).await
}

/// [`is_repeat_customer`] as the guest stood at `at`: only bookings completed before then
/// count (re-pricing a booking applies the discounts of the moment it was made).
pub async fn was_repeat_customer(
    db: &impl ConnectionTrait,
    guest_id: Uuid,
    venue_id: Uuid,
    at: Option<DateTime<Utc>>,
) -> Result<bool> {
    let mut query = bookings::Entity::find()
        .select_only()
        .column(bookings::Column::Id)
        .filter(bookings::Column::GuestId.eq(guest_id))
        .filter(bookings::Column::VenueId.eq(venue_id))
        .filter(bookings::Column::Status.eq(BookingStatus::Completed));
    if let Some(at) = at {
        query = query.filter(bookings::Column::CompletedAt.lt(at));
    }
    let found: Option<Uuid> = query.limit(1).into_tuple().one(db).await?;
    Ok(found.is_some())
}

/// A price quote for a booking that is not made: what `createBooking` would charge now.
#[derive(Debug, Clone)]
pub struct VenueQuote {
    /// The fees.
    pub quote: Quote,
    /// The pricing row they come from.
    pub pricing: venue_pricing::Model,
    /// The venue's currency.
    pub currency: String,
}

/// Quotes a booking at a venue the caller can see, writing nothing: NOT_FOUND for an
/// invisible venue or guest, BAD_USER_INPUT naming `venueId` when the venue has no pricing in
/// force (it cannot take bookings), and the validation errors of [`quote`]. With a guest, the
/// repeat-customer discount is considered.
#[tracing::instrument(skip_all, fields(%venue_id))]
pub async fn quote_for_venue(
    db: &impl ConnectionTrait,
    actor: &Actor,
    venue_id: Uuid,
    guest_id: Option<Uuid>,
    booking_type: BookingType,
    diners: i32,
    booking_time: DateTime<Utc>,
) -> Result<VenueQuote> {
    let venue = crate::venues::get(db, actor, venue_id).await?;
    let now = crate::time::now();
    let repeat_customer = match guest_id {
        Some(guest) => {
            crate::guests::get(db, actor, guest).await?;
            is_repeat_customer(db, guest, venue_id).await?
        }
        None => false,
    };
    let pricing = pricing_in_force(db, venue_id, now).await?.ok_or_else(|| {
        Error::invalid(
            "venueId",
            "this venue has no pricing in force and cannot take bookings yet",
        )
    })?;
    let quote = quote(
        &pricing,
        &PricingRequest {
            booking_type,
            diners,
            booking_time,
            now,
            repeat_customer,
        },
    )?;
    Ok(VenueQuote {
        quote,
        pricing,
        currency: venue.currency,
    })
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use prima_entity::enums::{BookingStatus, BookingType};
    use proptest::prelude::*;
    use rust_decimal_macros::dec;
    use sea_orm::{ActiveModelTrait, ActiveValue::Set, IntoActiveModel};

    use super::*;
    use crate::testing::fixtures::{self, t0};

    /// A row with round numbers and no discounts: NON_PRIME 50.00 a diner at 10 %, PRIME
    /// 120.00 for two plus 40.00 a person at 15 %, no minimum, parties of 1 to 20.
    fn row() -> venue_pricing::Model {
        venue_pricing::Model {
            id: Uuid::nil(),
            venue_id: Uuid::nil(),
            non_prime_per_diner: 5_000,
            non_prime_platform_fee_percent: 1_000,
            prime_base_for_2: 12_000,
            prime_additional_per_person: 4_000,
            prime_platform_fee_percent: 1_500,
            minimum_booking_amount: 0,
            minimum_party_size: 1,
            maximum_party_size: 20,
            early_bird_discount_percent: None,
            repeat_customer_discount_percent: None,
            group_discount_percent: None,
            effective_from: t0() - Duration::days(365),
            effective_to: None,
            is_active: true,
            updated_by: None,
            created_at: t0(),
            updated_at: t0(),
        }
    }

    fn request(booking_type: BookingType, diners: i32, lead: TimeDelta) -> PricingRequest {
        PricingRequest {
            booking_type,
            diners,
            booking_time: t0() + lead,
            now: t0(),
            repeat_customer: false,
        }
    }

    const SOON: TimeDelta = TimeDelta::days(1);

    struct Case {
        name: &'static str,
        row: fn(&mut venue_pricing::Model),
        booking_type: BookingType,
        diners: i32,
        lead: TimeDelta,
        repeat_customer: bool,
        list_price: Decimal,
        discount: Option<(DiscountKind, Decimal)>,
        minimum_applied: bool,
        base_fee: i64,
        platform_fee: i64,
    }

    fn unchanged(_: &mut venue_pricing::Model) {}

    fn all_discounts(r: &mut venue_pricing::Model) {
        r.early_bird_discount_percent = Some(1_000);
        r.repeat_customer_discount_percent = Some(500);
        r.group_discount_percent = Some(1_500);
    }

    #[test]
    fn quotes_follow_the_pricing_rules() {
        use DiscountKind::*;
        let np = BookingType::NonPrime;
        let p = BookingType::Prime;
        let cases = vec![
            Case {
                name: "non-prime is the per-diner price times the diners",
                row: unchanged,
                booking_type: np,
                diners: 3,
                lead: SOON,
                repeat_customer: false,
                list_price: dec!(150.00),
                discount: None,
                minimum_applied: false,
                base_fee: 15_000,
                platform_fee: 1_500,
            },
            Case {
                name: "prime with one diner is the price for two",
                row: unchanged,
                booking_type: p,
                diners: 1,
                lead: SOON,
                repeat_customer: false,
                list_price: dec!(120.00),
                discount: None,
                minimum_applied: false,
                base_fee: 12_000,
                platform_fee: 1_800,
            },
            Case {
                name: "prime with two diners is the price for two",
                row: unchanged,
                booking_type: p,
                diners: 2,
                lead: SOON,
                repeat_customer: false,
                list_price: dec!(120.00),
                discount: None,
                minimum_applied: false,
                base_fee: 12_000,
                platform_fee: 1_800,
            },
            Case {
                name: "prime with nine diners adds seven additional persons",
                row: unchanged,
                booking_type: p,
                diners: 9,
                lead: SOON,
                repeat_customer: false,
                list_price: dec!(400.00),
                discount: None,
                minimum_applied: false,
                base_fee: 40_000,
                platform_fee: 6_000,
            },
            Case {
                name: "early bird applies exactly seven days ahead",
                row: |r| r.early_bird_discount_percent = Some(1_000),
                booking_type: np,
                diners: 2,
                lead: TimeDelta::days(7),
                repeat_customer: false,
                list_price: dec!(100.00),
                discount: Some((EarlyBird, dec!(0.1000))),
                minimum_applied: false,
                base_fee: 9_000,
                platform_fee: 900,
            },
            Case {
                name: "early bird does not apply a second short of seven days",
                row: |r| r.early_bird_discount_percent = Some(1_000),
                booking_type: np,
                diners: 2,
                lead: TimeDelta::days(7) - TimeDelta::seconds(1),
                repeat_customer: false,
                list_price: dec!(100.00),
                discount: None,
                minimum_applied: false,
                base_fee: 10_000,
                platform_fee: 1_000,
            },
            Case {
                name: "repeat customer discount alone",
                row: |r| r.repeat_customer_discount_percent = Some(500),
                booking_type: np,
                diners: 2,
                lead: SOON,
                repeat_customer: true,
                list_price: dec!(100.00),
                discount: Some((RepeatCustomer, dec!(0.0500))),
                minimum_applied: false,
                base_fee: 9_500,
                platform_fee: 950,
            },
            Case {
                name: "group discount applies from eight diners",
                row: |r| r.group_discount_percent = Some(1_500),
                booking_type: np,
                diners: 8,
                lead: SOON,
                repeat_customer: false,
                list_price: dec!(400.00),
                discount: Some((Group, dec!(0.1500))),
                minimum_applied: false,
                base_fee: 34_000,
                platform_fee: 3_400,
            },
            Case {
                name: "group discount does not apply to seven diners",
                row: |r| r.group_discount_percent = Some(1_500),
                booking_type: np,
                diners: 7,
                lead: SOON,
                repeat_customer: false,
                list_price: dec!(350.00),
                discount: None,
                minimum_applied: false,
                base_fee: 35_000,
                platform_fee: 3_500,
            },
            Case {
                name: "a qualifying discount with no percent on the row does nothing",
                row: unchanged,
                booking_type: np,
                diners: 8,
                lead: TimeDelta::days(30),
                repeat_customer: true,
                list_price: dec!(400.00),
                discount: None,
                minimum_applied: false,
                base_fee: 40_000,
                platform_fee: 4_000,
            },
            Case {
                name: "of all three qualifying, the largest (group) wins",
                row: all_discounts,
                booking_type: np,
                diners: 8,
                lead: TimeDelta::days(30),
                repeat_customer: true,
                list_price: dec!(400.00),
                discount: Some((Group, dec!(0.1500))),
                minimum_applied: false,
                base_fee: 34_000,
                platform_fee: 3_400,
            },
            Case {
                name: "early bird and repeat qualifying, the larger (early bird) wins",
                row: all_discounts,
                booking_type: p,
                diners: 4,
                lead: TimeDelta::days(30),
                repeat_customer: true,
                list_price: dec!(200.00),
                discount: Some((EarlyBird, dec!(0.1000))),
                minimum_applied: false,
                base_fee: 18_000,
                platform_fee: 2_700,
            },
            Case {
                name: "a tie goes to the first of early bird, repeat, group",
                row: |r| {
                    r.early_bird_discount_percent = Some(1_000);
                    r.repeat_customer_discount_percent = Some(1_000);
                },
                booking_type: np,
                diners: 2,
                lead: TimeDelta::days(30),
                repeat_customer: true,
                list_price: dec!(100.00),
                discount: Some((EarlyBird, dec!(0.1000))),
                minimum_applied: false,
                base_fee: 9_000,
                platform_fee: 900,
            },
            Case {
                name: "the minimum amount raises a small base",
                row: |r| r.minimum_booking_amount = 7_500,
                booking_type: np,
                diners: 1,
                lead: SOON,
                repeat_customer: false,
                list_price: dec!(50.00),
                discount: None,
                minimum_applied: true,
                base_fee: 7_500,
                platform_fee: 750,
            },
            Case {
                name: "the minimum applies after the discount",
                row: |r| {
                    r.minimum_booking_amount = 9_500;
                    r.repeat_customer_discount_percent = Some(1_000);
                },
                booking_type: np,
                diners: 2,
                lead: SOON,
                repeat_customer: true,
                list_price: dec!(100.00),
                discount: Some((RepeatCustomer, dec!(0.1000))),
                minimum_applied: true,
                base_fee: 9_500,
                platform_fee: 950,
            },
            Case {
                name: "a base equal to the minimum is not raised",
                row: |r| r.minimum_booking_amount = 10_000,
                booking_type: np,
                diners: 2,
                lead: SOON,
                repeat_customer: false,
                list_price: dec!(100.00),
                discount: None,
                minimum_applied: false,
                base_fee: 10_000,
                platform_fee: 1_000,
            },
            Case {
                name: "platform fee 12.25 * 10 % = 1.225 rounds half away from zero to 1.23",
                row: |r| r.non_prime_per_diner = 1_225,
                booking_type: np,
                diners: 1,
                lead: SOON,
                repeat_customer: false,
                list_price: dec!(12.25),
                discount: None,
                minimum_applied: false,
                base_fee: 1_225,
                platform_fee: 123,
            },
            Case {
                name: "a discount to 11.025 rounds to 11.03, and its fee from the rounded base",
                row: |r| {
                    r.non_prime_per_diner = 1_225;
                    r.repeat_customer_discount_percent = Some(1_000);
                },
                booking_type: np,
                diners: 1,
                lead: SOON,
                repeat_customer: true,
                list_price: dec!(12.25),
                discount: Some((RepeatCustomer, dec!(0.1000))),
                minimum_applied: false,
                // 11.025 -> 11.03; 11.03 * 10 % = 1.103 -> 1.10.
                base_fee: 1_103,
                platform_fee: 110,
            },
            Case {
                name: "intermediates are not rounded: 3 * 3.35 less 10 % is 9.045 -> 9.05",
                row: |r| {
                    r.non_prime_per_diner = 335;
                    r.non_prime_platform_fee_percent = 1_250;
                    r.early_bird_discount_percent = Some(1_000);
                },
                booking_type: np,
                diners: 3,
                lead: TimeDelta::days(8),
                repeat_customer: false,
                list_price: dec!(10.05),
                discount: Some((EarlyBird, dec!(0.1000))),
                minimum_applied: false,
                // 9.05 * 12.5 % = 1.13125 -> 1.13.
                base_fee: 905,
                platform_fee: 113,
            },
        ];
        for case in cases {
            let mut pricing = row();
            (case.row)(&mut pricing);
            let mut req = request(case.booking_type, case.diners, case.lead);
            req.repeat_customer = case.repeat_customer;
            let quote = quote(&pricing, &req).unwrap_or_else(|e| panic!("{}: {e}", case.name));
            let expected_rate = money::rate(match case.booking_type {
                BookingType::NonPrime => pricing.non_prime_platform_fee_percent,
                BookingType::Prime => pricing.prime_platform_fee_percent,
            });
            assert_eq!(
                quote,
                Quote {
                    list_price: case.list_price,
                    discount: case
                        .discount
                        .map(|(kind, rate)| AppliedDiscount { kind, rate }),
                    minimum_applied: case.minimum_applied,
                    base_fee: case.base_fee,
                    platform_fee_rate: expected_rate,
                    platform_fee: case.platform_fee,
                    total_fee: case.base_fee + case.platform_fee,
                },
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn invalid_requests_name_the_field() {
        struct Bad {
            name: &'static str,
            row: fn(&mut venue_pricing::Model),
            diners: i32,
            lead: TimeDelta,
            field: &'static str,
            message: &'static str,
        }
        let cases = vec![
            Bad {
                name: "no diners",
                row: unchanged,
                diners: 0,
                lead: SOON,
                field: "diners",
                message: "between 1 and 20",
            },
            Bad {
                name: "51 diners, even on a row that allows 100",
                row: |r| r.maximum_party_size = 100,
                diners: 51,
                lead: SOON,
                field: "diners",
                message: "between 1 and 50",
            },
            Bad {
                name: "below the row's minimum party size",
                row: |r| r.minimum_party_size = 4,
                diners: 3,
                lead: SOON,
                field: "diners",
                message: "between 4 and 20",
            },
            Bad {
                name: "above the row's maximum party size",
                row: |r| r.maximum_party_size = 10,
                diners: 11,
                lead: SOON,
                field: "diners",
                message: "between 1 and 10",
            },
            Bad {
                name: "booking time in the past",
                row: unchanged,
                diners: 2,
                lead: -TimeDelta::minutes(1),
                field: "bookingTime",
                message: "in the future",
            },
            Bad {
                name: "booking time now",
                row: unchanged,
                diners: 2,
                lead: TimeDelta::zero(),
                field: "bookingTime",
                message: "in the future",
            },
        ];
        for case in cases {
            let mut pricing = row();
            (case.row)(&mut pricing);
            let err = quote(
                &pricing,
                &request(BookingType::NonPrime, case.diners, case.lead),
            )
            .expect_err(case.name);
            match err {
                Error::Invalid { field, message } => {
                    assert_eq!(field, case.field, "{}", case.name);
                    assert!(
                        message.contains(case.message),
                        "{}: {message:?} should say {:?}",
                        case.name,
                        case.message
                    );
                }
                other => panic!("{}: expected Invalid, got {other:?}", case.name),
            }
        }
    }

    proptest! {
        #[test]
        fn fees_always_add_up_and_never_fall_below_the_minimum(
            per_diner in 0i64..100_000,
            base_for_2 in 0i64..500_000,
            additional in 0i64..100_000,
            np_percent in 0i64..=10_000,
            p_percent in 0i64..=10_000,
            minimum in 0i64..200_000,
            early in proptest::option::of(0i64..=10_000),
            repeat in proptest::option::of(0i64..=10_000),
            group in proptest::option::of(0i64..=10_000),
            prime in any::<bool>(),
            diners in 1i32..=50,
            lead_minutes in 1i64..(60 * 24 * 30),
            repeat_customer in any::<bool>(),
        ) {
            let mut pricing = row();
            pricing.non_prime_per_diner = per_diner;
            pricing.prime_base_for_2 = base_for_2;
            pricing.prime_additional_per_person = additional;
            pricing.non_prime_platform_fee_percent = np_percent;
            pricing.prime_platform_fee_percent = p_percent;
            pricing.minimum_booking_amount = minimum;
            pricing.early_bird_discount_percent = early;
            pricing.repeat_customer_discount_percent = repeat;
            pricing.group_discount_percent = group;
            pricing.maximum_party_size = 50;
            let booking_type = if prime { BookingType::Prime } else { BookingType::NonPrime };
            let mut req = request(booking_type, diners, TimeDelta::minutes(lead_minutes));
            req.repeat_customer = repeat_customer;
            let q = quote(&pricing, &req).unwrap();
            prop_assert_eq!(q.total_fee, q.base_fee + q.platform_fee);
            prop_assert!(q.base_fee >= minimum);
            prop_assert_eq!(
                cents(q.platform_fee),
                round_money(cents(q.base_fee) * q.platform_fee_rate)
            );
            prop_assert!(q.platform_fee >= 0);
        }
    }

    async fn insert_pricing(db: &crate::db::Db, model: venue_pricing::Model) {
        venue_pricing::Entity::insert(model.into_active_model())
            .exec_without_returning(&db.conn)
            .await
            .unwrap();
    }

    fn row_of(
        venue: Uuid,
        per_diner: i64,
        from: DateTime<Utc>,
        to: Option<DateTime<Utc>>,
        active: bool,
    ) -> venue_pricing::Model {
        venue_pricing::Model {
            id: Uuid::new_v4(),
            venue_id: venue,
            non_prime_per_diner: per_diner,
            effective_from: from,
            effective_to: to,
            is_active: active,
            ..row()
        }
    }

    #[tokio::test]
    async fn the_row_in_force_ignores_closed_future_and_inactive_rows() {
        let db = fixtures::db().await;
        let venue = fixtures::venue(&db).await;
        let other = fixtures::venue(&db).await;
        assert_eq!(pricing_in_force(&db.conn, venue, t0()).await.unwrap(), None);

        let switch = t0() - Duration::days(10);
        let closed = row_of(venue, 1_000, t0() - Duration::days(100), Some(switch), true);
        let current = row_of(venue, 2_000, switch, None, true);
        let future = row_of(venue, 3_000, t0() + Duration::days(5), None, true);
        let inactive = row_of(venue, 4_000, t0() - Duration::days(1), None, false);
        let elsewhere = row_of(other, 5_000, t0() - Duration::days(1), None, true);
        for r in [&closed, &current, &future, &inactive, &elsewhere] {
            insert_pricing(&db, r.clone()).await;
        }

        let at = |t| pricing_in_force(&db.conn, venue, t);
        assert_eq!(at(t0()).await.unwrap().map(|r| r.id), Some(current.id));
        // The closed row applied before the switch, and the switch instant is the new row's.
        assert_eq!(
            at(switch - Duration::seconds(1))
                .await
                .unwrap()
                .map(|r| r.id),
            Some(closed.id)
        );
        assert_eq!(at(switch).await.unwrap().map(|r| r.id), Some(current.id));
        // Once its time comes, the future row is newest.
        assert_eq!(
            at(t0() + Duration::days(6)).await.unwrap().map(|r| r.id),
            Some(future.id)
        );
        // Before any row started, nothing is in force.
        assert_eq!(at(t0() - Duration::days(200)).await.unwrap(), None);
    }

    #[tokio::test]
    async fn only_a_completed_booking_at_the_same_venue_makes_a_repeat_customer() {
        let db = fixtures::db().await;
        let venue = fixtures::venue(&db).await;
        let other = fixtures::venue(&db).await;
        let booking_id = fixtures::booking(&db, venue, None).await;
        let booking = bookings::Entity::find_by_id(booking_id)
            .one(&db.conn)
            .await
            .unwrap()
            .unwrap();
        let guest = booking.guest_id;

        // CONFIRMED, not yet COMPLETED: not a repeat customer.
        assert!(!is_repeat_customer(&db.conn, guest, venue).await.unwrap());

        let mut active = booking.into_active_model();
        active.status = Set(BookingStatus::Completed);
        active.completed_at = Set(Some(t0() + Duration::days(3)));
        active.update(&db.conn).await.unwrap();

        assert!(is_repeat_customer(&db.conn, guest, venue).await.unwrap());
        assert!(!is_repeat_customer(&db.conn, guest, other).await.unwrap());
        assert!(
            !is_repeat_customer(&db.conn, Uuid::new_v4(), venue)
                .await
                .unwrap()
        );
    }
}
