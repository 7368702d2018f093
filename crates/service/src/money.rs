//! Money and other exact decimals, and the one place where their stored form is converted.
//!
//! Every DECIMAL(p, s) column of the data model is stored as a BIGINT holding
//! `value * 10^s` (see migration/README.md): money in cents (s = 2), rates and percents in
//! ten-thousandths (s = 4). In Rust the values are [`Decimal`]; floats never appear.
//! Computed amounts are rounded once, at the end, half away from zero, to the cent.

use rust_decimal::{Decimal, RoundingStrategy};

/// Scale of money columns: cents.
pub const MONEY_SCALE: u32 = 2;
/// Scale of rate and percent columns: ten-thousandths (`0.1000` is stored as `1000`).
pub const RATE_SCALE: u32 = 4;

/// A stored integer of the given scale as an exact decimal (`1234` at scale 2 is `12.34`).
pub fn from_units(units: i64, scale: u32) -> Decimal {
    Decimal::new(units, scale)
}

/// A decimal as stored units of the given scale. The value must already be rounded to that
/// scale; anything finer is an error rather than a silent rounding.
pub fn to_units(value: Decimal, scale: u32) -> Option<i64> {
    let rescaled = value * Decimal::from(10i64.pow(scale));
    if rescaled.fract() != Decimal::ZERO {
        return None;
    }
    i64::try_from(rescaled.trunc()).ok()
}

/// Cents as an exact amount.
pub fn cents(units: i64) -> Decimal {
    from_units(units, MONEY_SCALE)
}

/// Ten-thousandths as an exact fraction (`1000` is `0.1000`).
pub fn rate(units: i64) -> Decimal {
    from_units(units, RATE_SCALE)
}

/// Rounds a computed amount to the cent, half away from zero: the only rounding rule.
pub fn round_money(value: Decimal) -> Decimal {
    value.round_dp_with_strategy(MONEY_SCALE, RoundingStrategy::MidpointAwayFromZero)
}

/// An amount in a currency. Amounts of different currencies never add up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Money {
    /// The exact amount.
    pub amount: Decimal,
    /// ISO 4217 code, from the venue.
    pub currency: String,
}

impl Money {
    /// Stored cents in a currency.
    pub fn from_cents(units: i64, currency: impl Into<String>) -> Self {
        Money {
            amount: cents(units),
            currency: currency.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn stored_units_round_trip_exactly() {
        assert_eq!(cents(1234), dec!(12.34));
        assert_eq!(rate(1000), dec!(0.1000));
        assert_eq!(to_units(dec!(12.34), 2), Some(1234));
        assert_eq!(to_units(dec!(0.1), 4), Some(1000));
        assert_eq!(to_units(dec!(-0.01), 2), Some(-1));
    }

    #[test]
    fn a_value_finer_than_the_column_is_refused_not_rounded() {
        assert_eq!(to_units(dec!(12.345), 2), None);
    }

    #[test]
    fn money_rounds_half_away_from_zero_at_the_cent() {
        assert_eq!(round_money(dec!(2.345)), dec!(2.35));
        assert_eq!(round_money(dec!(-2.345)), dec!(-2.35));
        assert_eq!(round_money(dec!(2.3449)), dec!(2.34));
        assert_eq!(round_money(dec!(0.005)), dec!(0.01));
    }

    #[test]
    fn ten_cents_three_times_is_exactly_thirty_cents() {
        let sum: Decimal = [cents(10), cents(10), cents(10)].iter().sum();
        assert_eq!(sum, dec!(0.30));
    }
}
