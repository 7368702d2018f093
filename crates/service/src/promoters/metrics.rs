//! The promoter and guest ratios, each defined once (DOMAIN.md "Promoter and guest
//! metrics"). The write path keeps them in the same `UPDATE` as the counters they derive
//! from, in SQL ([`crate::bookings::aggregates`], with the `*_sql` forms); `prima check`
//! recomputes them from the bookings in exact decimals ([`crate::check`], with the plain
//! forms). Both read the same definitions here:
//!
//! - `average_booking_value = total_revenue / total_bookings` (the CONFIRMED + COMPLETED
//!   bookings and the sum of their `total_fee`), to the cent;
//! - `cancel_rate = cancelled / all` (every status, PENDING included);
//! - `no_show_rate = no_show / (completed + no_show)`;
//! - `conversion_rate = completed / (completed + cancelled + no_show)`;
//!   the three rates in ten-thousandths (4 places);
//! - the guest's `average_party_size`: mean diners over all bookings, in tenths; 2.0 (20, the
//!   column default) for a guest without bookings.
//!
//! Every ratio is rounded once, half away from zero, and is 0 when the divisor is 0 (unless
//! said otherwise). The write path, `prima check` and the demo seed ([`crate::seed`]) all
//! compute them here.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};

/// `num / den * scale`, rounded half away from zero to an integer; 0 when `den` is 0.
pub(crate) fn ratio(num: i64, den: i64, scale: i64) -> i64 {
    if den == 0 {
        return 0;
    }
    (Decimal::from(num) * Decimal::from(scale) / Decimal::from(den))
        .round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero)
        .to_i64()
        .unwrap_or(i64::MAX)
}

/// `num / den` scaled and rounded half away from zero, in SQL integer arithmetic (both
/// operands are non-negative); `zero` when the divisor is 0.
pub(crate) fn ratio_sql(num: &str, den: &str, scale: i64, zero: i64) -> String {
    format!(
        "CASE WHEN ({den}) = 0 THEN {zero} ELSE (2 * ({num}) * {scale} + ({den})) / (2 * ({den})) END"
    )
}

/// A promoter's `average_booking_value`: `revenue / counted` to the cent (amounts in cents).
pub(crate) fn average_booking_value(revenue: i64, counted: i64) -> i64 {
    ratio(revenue, counted, 1)
}

/// A promoter's `conversion_rate`: `completed / (completed + cancelled + no_show)`.
pub(crate) fn conversion_rate(completed: i64, cancelled: i64, no_show: i64) -> i64 {
    ratio(completed, completed + cancelled + no_show, 10_000)
}

/// A promoter's `no_show_rate`: `no_show / (completed + no_show)`.
pub(crate) fn no_show_rate(completed: i64, no_show: i64) -> i64 {
    ratio(no_show, completed + no_show, 10_000)
}

/// A promoter's `cancel_rate`: `cancelled / all`, over every status.
pub(crate) fn cancel_rate(cancelled: i64, all: i64) -> i64 {
    ratio(cancelled, all, 10_000)
}

/// [`average_booking_value`] over SQL expressions of the counters.
pub(crate) fn average_booking_value_sql(revenue: &str, counted: &str) -> String {
    ratio_sql(revenue, counted, 1, 0)
}

/// [`conversion_rate`] over SQL expressions of the counters.
pub(crate) fn conversion_rate_sql(completed: &str, cancelled: &str, no_show: &str) -> String {
    ratio_sql(
        completed,
        &format!("{completed} + {cancelled} + {no_show}"),
        10_000,
        0,
    )
}

/// [`no_show_rate`] over SQL expressions of the counters.
pub(crate) fn no_show_rate_sql(completed: &str, no_show: &str) -> String {
    ratio_sql(no_show, &format!("{completed} + {no_show}"), 10_000, 0)
}

/// [`cancel_rate`] over SQL expressions of the counters.
pub(crate) fn cancel_rate_sql(cancelled: &str, all: &str) -> String {
    ratio_sql(cancelled, all, 10_000, 0)
}

/// A guest's `average_party_size` over SQL expressions of the counters: `diners / bookings`
/// in tenths, 20 (2.0) without bookings.
pub(crate) fn average_party_size_sql(diners: &str, bookings: &str) -> String {
    ratio_sql(diners, bookings, 10, 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_round_half_away_from_zero_like_the_seed() {
        assert_eq!(ratio(1, 8, 10_000), 1_250);
        assert_eq!(ratio(1, 3, 10_000), 3_333);
        assert_eq!(ratio(2, 3, 10_000), 6_667);
        assert_eq!(ratio(5, 0, 10_000), 0);
        assert_eq!(ratio(25, 2, 1), 13);
    }

    #[test]
    fn the_sql_ratio_rounds_half_away_from_zero() {
        // (2 * 1 * 10000 + 8) / 16 = 1250 (0.125 exactly); 1/3 -> 3333; 2/3 -> 6667.
        let eval = |num: i64, den: i64, scale: i64| (2 * num * scale + den) / (2 * den);
        assert_eq!(eval(1, 8, 10_000), 1250);
        assert_eq!(eval(1, 3, 10_000), 3333);
        assert_eq!(eval(2, 3, 10_000), 6667);
        assert_eq!(eval(5, 2, 1), 3);
        assert!(ratio_sql("a", "b", 10, 20).contains("THEN 20"));
    }
}
