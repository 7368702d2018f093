//! The commission of one booking (DOMAIN.md "Commissions"), as a pure function of the rows
//! it depends on. [`super::commission_for_booking`] loads those rows inside the caller's
//! transaction; the seed calls [`compute`] directly with the rows it generates.
//!
//! # Rules
//!
//! - The **model and rate are the assignment's** (`commission_assignments.model` / `.rate`):
//!   the assignment records what was agreed with the promoter, and a later edit of the rate
//!   row must not change it. The **limits are the rate row's**: `minimum_booking`,
//!   `maximum_payout`, `min_conversion_rate` and `max_cancel_rate` of
//!   `commission_rates`, which is where the data model puts them. For TIERED the rate row is
//!   the rung that applies (each rung is a full rate row with its own limits), otherwise the
//!   assignment's `commission_rate_id` row.
//! - Amounts, with rates in ten-thousandths (`money::rate`): PER_COVER `rate * diners`
//!   (250000 = 25.00 a cover), PERCENT_OF_SPEND `rate * base_fee` (1000 = 10 %), FLAT_RATE
//!   `rate` (250000 = 25.00), TIERED `rung.value * base_fee`.
//! - TIERED: of the ladder (the venue's active TIERED rows for the promoter's tier), the
//!   rung with the highest `min_monthly_bookings` (null counts as 0) not above
//!   `month_bookings`; on equal thresholds the newest `effective_from`, then the greatest id.
//!   When no rung qualifies there is no commission (there is no agreed percent to apply).
//! - Eligibility, checked in this order, each giving 0 with its reason: the promoter is not
//!   ACTIVE; its current `conversion_rate` is below the row's `min_conversion_rate`; its
//!   current `cancel_rate` is above the row's `max_cancel_rate` (a rate equal to the limit
//!   passes). Then `base_fee < minimum_booking` gives 0.
//! - The amount is rounded once, half away from zero to the cent, then capped at
//!   `maximum_payout` (a cap in whole cents, so capping before or after rounding agrees).

use prima_entity::enums::{CommissionModel, PromoterStatus, PromoterTier};
use prima_entity::{commission_assignments, commission_rates, promoters};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::money::{self, MONEY_SCALE, cents, round_money};

/// The commission of one booking, with what decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commission {
    /// Cents; 0 when not eligible, below the minimum booking, or without an assignment.
    pub amount: i64,
    /// The rate applied, in ten-thousandths (the unit of the model's value): the
    /// assignment's rate, or for TIERED the rung's value.
    pub rate: i64,
    /// The model applied (the assignment's).
    pub model: CommissionModel,
    /// The tier of the assignment (the promoter's tier when there is no assignment).
    pub tier: PromoterTier,
    /// The assignment in force, if any.
    pub assignment_id: Option<Uuid>,
    /// The `commission_rates` row whose limits applied: the TIERED rung that applied, else
    /// the assignment's rate row.
    pub rate_id: Option<Uuid>,
    /// Why the amount is 0, for the booking's history row; `None` when a commission is due.
    pub ineligible_reason: Option<String>,
}

/// What the rules need, loaded by the caller.
pub struct RuleInput<'a> {
    /// The promoter's assignment in force at `booking_time`.
    pub assignment: &'a commission_assignments::Model,
    /// The assignment's `commission_rates` row.
    pub rate: &'a commission_rates::Model,
    /// The venue's active TIERED rows for the promoter's tier (only read for TIERED).
    pub ladder: &'a [commission_rates::Model],
    /// The promoter, with its current status and metrics.
    pub promoter: &'a promoters::Model,
    /// Party size.
    pub diners: i32,
    /// The booking's base fee, cents.
    pub base_fee: i64,
    /// The promoter's CONFIRMED + COMPLETED bookings at this venue in the calendar month of
    /// `booking_time` (venue time zone), counting this booking (only read for TIERED).
    pub month_bookings: i64,
}

/// The commission of a booking under the rules of this module's documentation.
pub fn compute(input: &RuleInput) -> Commission {
    let assignment = input.assignment;
    let mut result = Commission {
        amount: 0,
        rate: assignment.rate,
        model: assignment.model,
        tier: assignment.tier,
        assignment_id: Some(assignment.id),
        rate_id: Some(input.rate.id),
        ineligible_reason: None,
    };
    let none = |mut result: Commission, reason: String| {
        result.ineligible_reason = Some(reason);
        result
    };

    if input.promoter.status != PromoterStatus::Active {
        return none(result, format!("promoter is {}", input.promoter.status));
    }

    let limits = if assignment.model == CommissionModel::Tiered {
        match rung(input.ladder, input.month_bookings) {
            Some(rung) => {
                result.rate = rung.value;
                result.rate_id = Some(rung.id);
                rung
            }
            None => {
                return none(
                    result,
                    format!(
                        "no TIERED rate applies to {} bookings this month",
                        input.month_bookings
                    ),
                );
            }
        }
    } else {
        input.rate
    };

    let promoter = input.promoter;
    if let Some(min) = limits.min_conversion_rate
        && promoter.conversion_rate < min
    {
        return none(
            result,
            format!(
                "conversion rate {} below minimum {}",
                money::rate(promoter.conversion_rate),
                money::rate(min)
            ),
        );
    }
    if let Some(max) = limits.max_cancel_rate
        && promoter.cancel_rate > max
    {
        return none(
            result,
            format!(
                "cancel rate {} above maximum {}",
                money::rate(promoter.cancel_rate),
                money::rate(max)
            ),
        );
    }
    if input.base_fee < limits.minimum_booking {
        return none(
            result,
            format!(
                "base fee {} below the rate's minimum booking {}",
                cents(input.base_fee),
                cents(limits.minimum_booking)
            ),
        );
    }

    let rate = money::rate(result.rate);
    let raw = match result.model {
        CommissionModel::PerCover => rate * Decimal::from(input.diners),
        CommissionModel::PercentOfSpend | CommissionModel::Tiered => rate * cents(input.base_fee),
        CommissionModel::FlatRate => rate,
    };
    // A rounded amount beyond a BIGINT of cents cannot be stored; the cap (or the column)
    // bounds it, so saturate rather than fail a pure rule.
    let mut amount = money::to_units(round_money(raw), MONEY_SCALE).unwrap_or(i64::MAX);
    if let Some(cap) = limits.maximum_payout {
        amount = amount.min(cap);
    }
    result.amount = amount;
    result
}

/// The rung of a TIERED ladder that applies to a month count: the highest
/// `min_monthly_bookings` (null = 0) not above it; ties go to the newest `effective_from`,
/// then the greatest id.
fn rung(
    ladder: &[commission_rates::Model],
    month_bookings: i64,
) -> Option<&commission_rates::Model> {
    ladder
        .iter()
        .filter(|r| i64::from(r.min_monthly_bookings.unwrap_or(0)) <= month_bookings)
        .max_by_key(|r| (r.min_monthly_bookings.unwrap_or(0), r.effective_from, r.id))
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::testing::fixtures::t0;

    fn rate_row(model: CommissionModel, value: i64) -> commission_rates::Model {
        commission_rates::Model {
            id: Uuid::new_v4(),
            venue_id: Uuid::nil(),
            tier: PromoterTier::Standard,
            model,
            value,
            minimum_booking: 0,
            maximum_payout: None,
            min_monthly_bookings: None,
            min_conversion_rate: None,
            max_cancel_rate: None,
            effective_from: t0() - Duration::days(30),
            effective_to: None,
            is_active: true,
            created_by: Uuid::nil(),
            created_at: t0(),
            updated_at: t0(),
        }
    }

    fn assignment_of(rate: &commission_rates::Model) -> commission_assignments::Model {
        commission_assignments::Model {
            id: Uuid::new_v4(),
            promoter_id: Uuid::nil(),
            commission_rate_id: rate.id,
            tier: rate.tier,
            model: rate.model,
            rate: rate.value,
            effective_from: t0() - Duration::days(30),
            effective_to: None,
            assigned_by: Uuid::nil(),
            assigned_at: t0(),
            notes: None,
        }
    }

    fn promoter() -> promoters::Model {
        promoters::Model {
            id: Uuid::new_v4(),
            venue_id: Uuid::nil(),
            first_name: "Pat".into(),
            last_name: "Promoter".into(),
            email: "pat@example.com".into(),
            phone: None,
            title: None,
            company: None,
            bio: None,
            social_media: None,
            total_bookings: 0,
            total_revenue: 0,
            average_booking_value: 0,
            conversion_rate: 5_000,
            no_show_rate: 0,
            cancel_rate: 1_000,
            month_bookings: 0,
            month_revenue: 0,
            month_new_guests: 0,
            month_repeat_guests: 0,
            status: PromoterStatus::Active,
            tier: PromoterTier::Standard,
            joined_at: t0(),
            last_active_at: None,
            created_at: t0(),
            updated_at: t0(),
            all_bookings: 0,
            completed_bookings: 0,
            cancelled_bookings: 0,
            no_show_bookings: 0,
            month_start: None,
        }
    }

    /// One case: the rate row, the assignment's rate (None: the row's value), the promoter,
    /// the booking; and the expected amount, applied rate and reason.
    struct Case {
        name: &'static str,
        model: CommissionModel,
        value: i64,
        agreed: Option<i64>,
        row: fn(&mut commission_rates::Model),
        promoter: fn(&mut promoters::Model),
        diners: i32,
        base_fee: i64,
        amount: i64,
        reason: Option<&'static str>,
    }

    fn same<T>(_: &mut T) {}

    #[test]
    fn commissions_follow_the_rules() {
        use CommissionModel::*;
        let cases = vec![
            Case {
                name: "per cover: 25.00 a cover for 4 diners",
                model: PerCover,
                value: 250_000,
                agreed: None,
                row: same,
                promoter: same,
                diners: 4,
                base_fee: 10_000,
                amount: 10_000,
                reason: None,
            },
            Case {
                name: "percent of spend: 10 % of 123.45 = 12.345 rounds to 12.35",
                model: PercentOfSpend,
                value: 1_000,
                agreed: None,
                row: same,
                promoter: same,
                diners: 2,
                base_fee: 12_345,
                amount: 1_235,
                reason: None,
            },
            Case {
                name: "flat rate: 25.00 whatever the party",
                model: FlatRate,
                value: 250_000,
                agreed: None,
                row: same,
                promoter: same,
                diners: 12,
                base_fee: 50_000,
                amount: 2_500,
                reason: None,
            },
            Case {
                name: "the assignment's agreed rate wins over the row's value",
                model: PercentOfSpend,
                value: 1_000,
                agreed: Some(1_250),
                row: same,
                promoter: same,
                diners: 2,
                // 12.5 % of 90.10 = 11.2625 -> 11.26.
                base_fee: 9_010,
                amount: 1_126,
                reason: None,
            },
            Case {
                name: "below the minimum booking: nothing",
                model: PercentOfSpend,
                value: 1_000,
                agreed: None,
                row: |r| r.minimum_booking = 2_500,
                promoter: same,
                diners: 2,
                base_fee: 1_000,
                amount: 0,
                reason: Some("base fee 10.00 below the rate's minimum booking 25.00"),
            },
            Case {
                name: "exactly the minimum booking earns",
                model: PercentOfSpend,
                value: 1_000,
                agreed: None,
                row: |r| r.minimum_booking = 2_500,
                promoter: same,
                diners: 2,
                base_fee: 2_500,
                amount: 250,
                reason: None,
            },
            Case {
                name: "capped at the maximum payout",
                model: PerCover,
                value: 40_000,
                agreed: None,
                row: |r| r.maximum_payout = Some(3_000),
                promoter: same,
                diners: 12,
                base_fee: 5_000,
                amount: 3_000,
                reason: None,
            },
            Case {
                name: "under the cap is untouched",
                model: PerCover,
                value: 40_000,
                agreed: None,
                row: |r| r.maximum_payout = Some(3_000),
                promoter: same,
                diners: 4,
                base_fee: 5_000,
                amount: 1_600,
                reason: None,
            },
            Case {
                name: "a suspended promoter earns nothing",
                model: FlatRate,
                value: 250_000,
                agreed: None,
                row: same,
                promoter: |p| p.status = PromoterStatus::Suspended,
                diners: 2,
                base_fee: 10_000,
                amount: 0,
                reason: Some("promoter is SUSPENDED"),
            },
            Case {
                name: "an inactive promoter earns nothing",
                model: FlatRate,
                value: 250_000,
                agreed: None,
                row: same,
                promoter: |p| p.status = PromoterStatus::Inactive,
                diners: 2,
                base_fee: 10_000,
                amount: 0,
                reason: Some("promoter is INACTIVE"),
            },
            Case {
                name: "a promoter pending approval earns nothing",
                model: FlatRate,
                value: 250_000,
                agreed: None,
                row: same,
                promoter: |p| p.status = PromoterStatus::PendingApproval,
                diners: 2,
                base_fee: 10_000,
                amount: 0,
                reason: Some("promoter is PENDING_APPROVAL"),
            },
            Case {
                name: "a conversion rate below the minimum earns nothing",
                model: FlatRate,
                value: 250_000,
                agreed: None,
                row: |r| r.min_conversion_rate = Some(2_000),
                promoter: |p| p.conversion_rate = 1_200,
                diners: 2,
                base_fee: 10_000,
                amount: 0,
                reason: Some("conversion rate 0.1200 below minimum 0.2000"),
            },
            Case {
                name: "a conversion rate at the minimum earns",
                model: FlatRate,
                value: 250_000,
                agreed: None,
                row: |r| r.min_conversion_rate = Some(2_000),
                promoter: |p| p.conversion_rate = 2_000,
                diners: 2,
                base_fee: 10_000,
                amount: 2_500,
                reason: None,
            },
            Case {
                name: "a cancel rate above the maximum earns nothing",
                model: FlatRate,
                value: 250_000,
                agreed: None,
                row: |r| r.max_cancel_rate = Some(2_500),
                promoter: |p| p.cancel_rate = 3_000,
                diners: 2,
                base_fee: 10_000,
                amount: 0,
                reason: Some("cancel rate 0.3000 above maximum 0.2500"),
            },
            Case {
                name: "a cancel rate at the maximum earns",
                model: FlatRate,
                value: 250_000,
                agreed: None,
                row: |r| r.max_cancel_rate = Some(2_500),
                promoter: |p| p.cancel_rate = 2_500,
                diners: 2,
                base_fee: 10_000,
                amount: 2_500,
                reason: None,
            },
        ];
        for case in cases {
            let mut row = rate_row(case.model, case.value);
            (case.row)(&mut row);
            let mut assignment = assignment_of(&row);
            if let Some(agreed) = case.agreed {
                assignment.rate = agreed;
            }
            let mut p = promoter();
            (case.promoter)(&mut p);
            let got = compute(&RuleInput {
                assignment: &assignment,
                rate: &row,
                ladder: &[],
                promoter: &p,
                diners: case.diners,
                base_fee: case.base_fee,
                month_bookings: 1,
            });
            assert_eq!(
                got,
                Commission {
                    amount: case.amount,
                    rate: assignment.rate,
                    model: case.model,
                    tier: PromoterTier::Standard,
                    assignment_id: Some(assignment.id),
                    rate_id: Some(row.id),
                    ineligible_reason: case.reason.map(str::to_owned),
                },
                "{}",
                case.name
            );
        }
    }

    /// A ladder of 0 / 10 / 25 monthly bookings at 6 %, 7.5 % and 9 %; the 0 rung has a null
    /// threshold (it counts as 0).
    fn ladder() -> Vec<commission_rates::Model> {
        [(None, 600), (Some(10), 750), (Some(25), 900)]
            .into_iter()
            .map(|(min, value)| commission_rates::Model {
                min_monthly_bookings: min,
                ..rate_row(CommissionModel::Tiered, value)
            })
            .collect()
    }

    #[test]
    fn tiered_picks_the_highest_rung_reached_this_month() {
        let ladder = ladder();
        let assignment = assignment_of(&ladder[0]);
        let p = promoter();
        // (month bookings, expected rung index, amount on a 100.00 base fee)
        let cases = vec![
            (1, 0, 600),
            (9, 0, 600),
            (10, 1, 750),
            (24, 1, 750),
            (25, 2, 900),
            (400, 2, 900),
        ];
        for (month_bookings, index, amount) in cases {
            let got = compute(&RuleInput {
                assignment: &assignment,
                rate: &ladder[0],
                ladder: &ladder,
                promoter: &p,
                diners: 2,
                base_fee: 10_000,
                month_bookings,
            });
            assert_eq!(got.amount, amount, "{month_bookings} bookings");
            assert_eq!(got.rate, ladder[index].value, "{month_bookings} bookings");
            assert_eq!(
                got.rate_id,
                Some(ladder[index].id),
                "{month_bookings} bookings"
            );
            assert_eq!(got.model, CommissionModel::Tiered);
            assert_eq!(got.ineligible_reason, None);
        }
    }

    #[test]
    fn tiered_uses_the_limits_of_the_rung_that_applies() {
        let mut ladder = ladder();
        ladder[2].min_conversion_rate = Some(5_000);
        ladder[2].maximum_payout = Some(500);
        let assignment = assignment_of(&ladder[0]);
        let mut p = promoter();
        p.conversion_rate = 4_000;
        let input = |month_bookings, p: &promoters::Model| {
            compute(&RuleInput {
                assignment: &assignment,
                rate: &ladder[0],
                ladder: &ladder,
                promoter: p,
                diners: 2,
                base_fee: 10_000,
                month_bookings,
            })
        };
        let top = input(25, &p);
        assert_eq!(top.amount, 0);
        assert_eq!(
            top.ineligible_reason.as_deref(),
            Some("conversion rate 0.4000 below minimum 0.5000")
        );
        assert_eq!(
            input(24, &p).amount,
            750,
            "the middle rung has no such limit"
        );
        p.conversion_rate = 5_000;
        assert_eq!(input(25, &p).amount, 500, "capped by the top rung");
    }

    #[test]
    fn tiered_without_a_rung_reached_earns_nothing() {
        let ladder: Vec<_> = ladder().into_iter().skip(1).collect();
        let assignment = assignment_of(&ladder[0]);
        let got = compute(&RuleInput {
            assignment: &assignment,
            rate: &ladder[0],
            ladder: &ladder,
            promoter: &promoter(),
            diners: 2,
            base_fee: 10_000,
            month_bookings: 3,
        });
        assert_eq!(got.amount, 0);
        assert_eq!(
            got.ineligible_reason.as_deref(),
            Some("no TIERED rate applies to 3 bookings this month")
        );
    }
}
