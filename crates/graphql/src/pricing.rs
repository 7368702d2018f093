//! Pricing: the `quoteBooking` query, what a booking would cost, writing nothing.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use prima_entity::enums::BookingType;
use prima_service::pricing::{DiscountKind, VenueQuote};
use rust_decimal::Decimal;

use crate::context::{actor, deps};
use crate::error::{Result, parse_id};
use crate::scalars::Money;
use crate::venues::VenuePricing;

/// A discount that may lower a booking's price; at most one applies, the largest.
#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq)]
pub enum BookingDiscount {
    /// Booked at least 7 days ahead.
    EarlyBird,
    /// The guest has a completed booking at this venue.
    RepeatCustomer,
    /// A party of 8 or more.
    Group,
}

/// The discount applied to a quote.
#[derive(SimpleObject)]
pub struct AppliedDiscount {
    /// Which discount.
    pub kind: BookingDiscount,
    /// Its rate as a fraction (`0.1000` = 10 %).
    pub rate: Decimal,
}

/// What to quote.
#[derive(InputObject)]
pub struct QuoteBookingInput {
    /// The venue.
    pub venue_id: ID,
    /// The guest, if known (a returning guest may get the repeat-customer discount).
    pub guest_id: Option<ID>,
    /// PRIME or NON_PRIME.
    pub r#type: BookingType,
    /// Party size (1 to 50, within the venue's limits).
    pub diners: i32,
    /// When the guests arrive (in the future).
    pub booking_time: DateTime<Utc>,
}

/// The full price breakdown of a booking as `createBooking` would charge it now.
pub struct BookingQuote(VenueQuote);

/// The full price breakdown of a booking as `createBooking` would charge it now.
#[Object]
impl BookingQuote {
    /// The price before discount and minimum.
    async fn list_price(&self) -> Money {
        Money {
            amount: prima_service::money::round_money(self.0.quote.list_price),
            currency: self.0.currency.clone(),
        }
    }
    /// The discount applied, if any.
    async fn discount(&self) -> Option<AppliedDiscount> {
        self.0.quote.discount.as_ref().map(|d| AppliedDiscount {
            kind: match d.kind {
                DiscountKind::EarlyBird => BookingDiscount::EarlyBird,
                DiscountKind::RepeatCustomer => BookingDiscount::RepeatCustomer,
                DiscountKind::Group => BookingDiscount::Group,
            },
            rate: d.rate,
        })
    }
    /// Whether the venue's minimum booking amount raised the price.
    async fn minimum_applied(&self) -> bool {
        self.0.quote.minimum_applied
    }
    /// The venue's fee.
    async fn base_fee(&self) -> Money {
        Money::cents(self.0.quote.base_fee, &self.0.currency)
    }
    /// The platform fee rate as a fraction of the base fee.
    async fn platform_fee_rate(&self) -> Decimal {
        self.0.quote.platform_fee_rate
    }
    /// The platform's fee.
    async fn platform_fee(&self) -> Money {
        Money::cents(self.0.quote.platform_fee, &self.0.currency)
    }
    /// What the guest pays: base fee plus platform fee.
    async fn total_fee(&self) -> Money {
        Money::cents(self.0.quote.total_fee, &self.0.currency)
    }
    /// The pricing row the quote comes from.
    async fn pricing(&self) -> VenuePricing {
        VenuePricing(self.0.pricing.clone(), self.0.currency.clone())
    }
}

/// Pricing queries.
#[derive(Default)]
pub struct PricingQuery;

#[Object]
impl PricingQuery {
    /// Prices a booking without making it: the same rules and validation as `createBooking`
    /// (party size, a future booking time, the venue's pricing in force).
    async fn quote_booking(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to quote.")] input: QuoteBookingInput,
    ) -> Result<BookingQuote> {
        let venue_id = parse_id("venueId", &input.venue_id)?;
        let guest_id = input
            .guest_id
            .as_ref()
            .map(|id| parse_id("guestId", id))
            .transpose()?;
        let quote = prima_service::pricing::quote_for_venue(
            &deps(ctx).db.conn,
            actor(ctx)?,
            venue_id,
            guest_id,
            input.r#type,
            input.diners,
            input.booking_time,
        )
        .await?;
        Ok(BookingQuote(quote))
    }
}
