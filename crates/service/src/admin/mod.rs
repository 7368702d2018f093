//! The write side of the portfolio: venues (and their pricing and access grants), guests,
//! promoters and commissions.
//!
//! Policy, the same for every function here (ARCHITECTURE.md "Writing"):
//!
//! 1. The input is validated first; a bad value is [`Error::Invalid`] naming the camelCase
//!    input field, with a message a person can act on, and nothing is written.
//! 2. The caller's capability is checked with [`Actor::require`](crate::access::Actor::require)
//!    at the venue the change belongs to: NOT_FOUND when the caller cannot see that venue (or
//!    the object), FORBIDDEN when their role there is too low (DOMAIN.md "Access").
//! 3. The change is one database transaction, with timestamps from [`crate::time::now`].
//!    State changes are conditional updates (`WHERE status = <expected>`), and changes that
//!    close one row and open another first lock their parent row, so two concurrent calls
//!    cannot both succeed or leave two open rows. Locks follow the global order of
//!    [`crate::lifecycle`] (a venue before its pricing and grants, a promoter before its
//!    assignments), and the transaction runs again on a transient failure
//!    ([`crate::db::retry_transient`]).
//! 4. The function returns the changed row(s), as the database holds them.

pub mod commissions;
pub mod guests;
pub mod promoters;
pub mod venues;

use rust_decimal::Decimal;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

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

/// Takes the row lock of a venue inside `txn` (a no-op `UPDATE`), so changes that close one
/// row of the venue and open another run one at a time. The first statement of a
/// transaction, it also makes SQLite take its write lock up front. NOT_FOUND when the venue
/// does not exist.
pub(crate) async fn lock_venue(txn: &impl ConnectionTrait, venue_id: Uuid) -> Result<()> {
    use prima_entity::venues;
    let locked = venues::Entity::update_many()
        .col_expr(
            venues::Column::UpdatedAt,
            Expr::col(venues::Column::UpdatedAt),
        )
        .filter(venues::Column::Id.eq(venue_id))
        .exec(txn)
        .await?;
    if locked.rows_affected == 0 {
        return Err(Error::NotFound { what: "venue" });
    }
    Ok(())
}

/// Turns the "venue not found" of [`Actor::require`](crate::access::Actor::require) into
/// "`what` not found" when the caller asked for an object of a venue they cannot see.
pub(crate) fn not_found_as(what: &'static str) -> impl Fn(Error) -> Error {
    move |err| match err {
        Error::NotFound { .. } => Error::NotFound { what },
        other => other,
    }
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
