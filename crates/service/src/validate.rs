//! The input validators every write shares: texts, email addresses, prices and fractions.
//! Each trims or converts what it accepts and refuses the rest with [`Error::Invalid`]
//! naming the camelCase input field, with a message a person can act on.

use rust_decimal::Decimal;

use crate::error::{Error, Result};
use crate::money::{self, MONEY_SCALE, RATE_SCALE};

/// The largest amount a DECIMAL(8,2) money column holds, in cents (999,999.99).
pub(crate) const MAX_PRICE_CENTS: i64 = 99_999_999;

/// A required text: trimmed, 1 to `max` characters.
pub(crate) fn required_text(field: &str, value: &str, max: usize) -> Result<String> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > max {
        return Err(Error::invalid(
            field,
            format!("`{field}` must have 1 to {max} characters"),
        ));
    }
    Ok(value.to_owned())
}

/// An optional text: trimmed, at most `max` characters; blank means none.
pub(crate) fn optional_text(
    field: &str,
    value: Option<&str>,
    max: usize,
) -> Result<Option<String>> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(value) if value.chars().count() > max => Err(Error::invalid(
            field,
            format!("`{field}` must have at most {max} characters"),
        )),
        Some(value) => Ok(Some(value.to_owned())),
    }
}

/// An email address, trimmed and lower-cased: `name@domain.tld`, at most 255 characters.
pub(crate) fn email(field: &str, value: &str) -> Result<String> {
    let email = value.trim().to_lowercase();
    let valid = email.len() <= 255
        && !email.contains(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain
                    .split_once('.')
                    .is_some_and(|(name, tld)| !name.is_empty() && !tld.is_empty())
        });
    if !valid {
        return Err(Error::invalid(
            field,
            format!("`{field}` must be an email address like name@example.com"),
        ));
    }
    Ok(email)
}

/// An optional email address (blank means none).
pub(crate) fn optional_email(field: &str, value: Option<&str>) -> Result<Option<String>> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(value) => email(field, value).map(Some),
    }
}

/// A price: not negative, whole cents, at most `max_cents`; returned in cents.
pub(crate) fn money_units(field: &str, value: Decimal, max_cents: i64) -> Result<i64> {
    if value.is_sign_negative() && !value.is_zero() {
        return Err(Error::invalid(
            field,
            format!("`{field}` cannot be negative"),
        ));
    }
    let units = money::to_units(value, MONEY_SCALE).ok_or_else(|| {
        Error::invalid(
            field,
            format!("`{field}` must be in whole cents (at most 2 decimal places)"),
        )
    })?;
    if units > max_cents {
        return Err(Error::invalid(
            field,
            format!("`{field}` must be at most {}", money::cents(max_cents)),
        ));
    }
    Ok(units)
}

/// A fraction from 0 to 1 (`0.1` = 10 %), at most 4 decimal places; returned in
/// ten-thousandths.
pub(crate) fn fraction_units(field: &str, value: Decimal) -> Result<i64> {
    if value < Decimal::ZERO || value > Decimal::ONE {
        return Err(Error::invalid(
            field,
            format!("`{field}` is a fraction from 0 to 1 (0.1 = 10 %)"),
        ));
    }
    money::to_units(value, RATE_SCALE).ok_or_else(|| {
        Error::invalid(
            field,
            format!("`{field}` can have at most 4 decimal places"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn money_is_whole_cents_and_never_negative() {
        assert_eq!(money_units("p", dec!(12.5), MAX_PRICE_CENTS).unwrap(), 1250);
        assert_eq!(money_units("p", dec!(0), MAX_PRICE_CENTS).unwrap(), 0);
        for bad in [dec!(-0.01), dec!(1.001), dec!(1000000)] {
            let err = money_units("p", bad, MAX_PRICE_CENTS).unwrap_err();
            assert_eq!(err.code(), "BAD_USER_INPUT", "{bad}");
        }
    }

    #[test]
    fn fractions_are_between_zero_and_one_with_four_places() {
        assert_eq!(fraction_units("f", dec!(0.125)).unwrap(), 1250);
        assert_eq!(fraction_units("f", dec!(1)).unwrap(), 10000);
        for bad in [dec!(-0.1), dec!(1.0001), dec!(0.00001)] {
            assert!(fraction_units("f", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails_need_a_local_part_and_a_dotted_domain() {
        assert_eq!(
            email("e", " Jane@Example.com ").unwrap(),
            "jane@example.com"
        );
        for bad in [
            "jane",
            "@example.com",
            "jane@example",
            "ja ne@example.com",
            "a@b@c.d",
        ] {
            assert!(email("e", bad).is_err(), "{bad}");
        }
    }
}
