//! Shared output types: money.

use async_graphql::SimpleObject;
use rust_decimal::Decimal;

/// An exact amount of money in one currency. Amounts are decimals serialised as strings
/// (`"120.50"`), never floats.
#[derive(Debug, Clone, SimpleObject)]
pub struct Money {
    /// The exact amount, e.g. `"120.50"`.
    pub amount: Decimal,
    /// ISO 4217 currency code of the venue, e.g. `USD`.
    pub currency: String,
}

impl Money {
    /// Stored cents in a currency.
    pub fn cents(units: i64, currency: &str) -> Self {
        Money {
            amount: prima_service::money::cents(units),
            currency: currency.to_owned(),
        }
    }
}
