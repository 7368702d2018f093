//! Venues: the `venue` and `venues` queries and the `Venue` type with its nested lists.

pub mod mutation;

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use prima_entity::enums::{VenueStatus, VenueTier, VenueType};
use prima_entity::{venue_pricing, venues};
use prima_service::money;
use prima_service::venues::{VenueFilter, VenueOrder};
use rust_decimal::Decimal;

use crate::bookings::{
    Booking, BookingFilterInput, BookingOrderInput, VenueBookings, booking_query,
};
use crate::commissions::{CommissionRate, VenueRates};
use crate::connection::{Conn, PageRequest, connection, nested, nested_connection};
use crate::context::{actor, deps, loader};
use crate::error::{ApiError, Result, parse_id};
use crate::guests::{Guest, VenueGuests};
use crate::incentives::{Incentive, VenueIncentives};
use crate::loaders::{PricingOf, VenueId};
use crate::payouts::{Payout, PayoutFilterInput, VenuePayouts, payout_query};
use crate::promoters::{Promoter, VenuePromoters};
use crate::scalars::Money;

/// A venue of the portfolio: a restaurant, bar, hotel, event space, cafe or other.
#[derive(Clone)]
pub struct Venue(pub venues::Model);

/// A venue by id, through the request's dataloader; NOT_FOUND when it does not exist or
/// the caller has no access to it.
pub async fn venue_by_id(ctx: &Context<'_>, id: uuid::Uuid) -> Result<Venue> {
    loader(ctx)?
        .load_one(VenueId(id))
        .await?
        .map(Venue)
        .ok_or(ApiError(prima_service::Error::NotFound { what: "venue" }))
}

/// A postal address.
#[derive(SimpleObject)]
pub struct Address {
    /// Street and number.
    pub street: String,
    /// City.
    pub city: String,
    /// State or region.
    pub state: String,
    /// Postal code.
    pub zip: String,
    /// Country code, e.g. `US`.
    pub country: String,
}

/// A point on the map, in degrees.
#[derive(SimpleObject)]
pub struct Coordinates {
    /// Latitude in degrees (8 decimal places).
    pub latitude: Decimal,
    /// Longitude in degrees (8 decimal places).
    pub longitude: Decimal,
}

/// How to reach the venue.
#[derive(SimpleObject)]
pub struct Contact {
    /// Phone number.
    pub phone: Option<String>,
    /// Email address.
    pub email: Option<String>,
    /// Website.
    pub website: Option<String>,
}

/// How many guests the venue holds.
#[derive(SimpleObject)]
pub struct Capacity {
    /// Seated capacity.
    pub seated: i32,
    /// Standing capacity.
    pub standing: Option<i32>,
    /// Capacity of private rooms.
    pub private: Option<i32>,
}

/// A venue of the portfolio: a restaurant, bar, hotel, event space, cafe or other.
#[Object]
impl Venue {
    /// Unique identifier.
    pub(crate) async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Display name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// What kind of venue this is.
    async fn r#type(&self) -> VenueType {
        self.0.r#type
    }
    /// Market tier.
    async fn tier(&self) -> VenueTier {
        self.0.tier
    }
    /// Whether the venue operates.
    async fn status(&self) -> VenueStatus {
        self.0.status
    }
    /// Postal address.
    async fn address(&self) -> Address {
        Address {
            street: self.0.address_street.clone(),
            city: self.0.address_city.clone(),
            state: self.0.address_state.clone(),
            zip: self.0.address_zip.clone(),
            country: self.0.address_country.clone(),
        }
    }
    /// Location on the map, when known.
    async fn coordinates(&self) -> Option<Coordinates> {
        match (self.0.coordinates_lat, self.0.coordinates_lng) {
            (Some(lat), Some(lng)) => Some(Coordinates {
                latitude: money::from_units(lat, 8),
                longitude: money::from_units(lng, 8),
            }),
            _ => None,
        }
    }
    /// IANA time zone, e.g. `America/New_York`; periods and "this month" follow it.
    async fn timezone(&self) -> &str {
        &self.0.timezone
    }
    /// How to reach the venue.
    async fn contact(&self) -> Contact {
        Contact {
            phone: self.0.contact_phone.clone(),
            email: self.0.contact_email.clone(),
            website: self.0.contact_website.clone(),
        }
    }
    /// Capacity.
    async fn capacity(&self) -> Capacity {
        Capacity {
            seated: self.0.capacity_seated,
            standing: self.0.capacity_standing,
            private: self.0.capacity_private,
        }
    }
    /// ISO 4217 currency of every amount at this venue.
    async fn currency(&self) -> &str {
        &self.0.currency
    }
    /// Language code, e.g. `en`.
    async fn language(&self) -> &str {
        &self.0.language
    }
    /// New bookings are confirmed at once (unless approval is required).
    async fn auto_confirm_bookings(&self) -> bool {
        self.0.auto_confirm_bookings
    }
    /// New bookings wait for a manager's approval.
    async fn require_approval(&self) -> bool {
        self.0.require_approval
    }
    /// Planning figure: bookings on an average day.
    async fn average_daily_bookings(&self) -> i32 {
        self.0.average_daily_bookings
    }
    /// Planning figure: share of bookings that are prime, as a fraction (`0.60`).
    async fn prime_ratio(&self) -> Decimal {
        money::from_units(self.0.prime_ratio, 2)
    }
    /// Planning figure: value of an average booking.
    async fn average_booking_value(&self) -> Money {
        Money::cents(self.0.average_booking_value, &self.0.currency)
    }
    /// When the venue was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the venue was last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// The pricing in force now; null when the venue has none (it cannot take bookings).
    async fn current_pricing(&self, ctx: &Context<'_>) -> Result<Option<VenuePricing>> {
        let row = loader(ctx)?.load_one(PricingOf(self.0.id)).await?;
        Ok(row.map(|row| VenuePricing(row, self.0.currency.clone())))
    }

    /// Every pricing row, newest first: history is kept, never overwritten.
    async fn pricing_history(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Return the first n rows (at most 100, default 20).")] first: Option<i32>,
        #[graphql(desc = "Return rows after this cursor.")] after: Option<String>,
        #[graphql(desc = "Return the last n rows (at most 100).")] last: Option<i32>,
        #[graphql(desc = "Return rows before this cursor.")] before: Option<String>,
    ) -> Result<Conn<VenuePricing>> {
        let page = PageRequest::of(ctx, first, after, last, before);
        let currency = &self.0.currency;
        nested(ctx, self.0.id, VenuePricingHistory { page }, |row| {
            VenuePricing(row, currency.clone())
        })
        .await
    }

    /// Bookings at this venue, filtered and ordered in SQL.
    #[allow(clippy::too_many_arguments)]
    async fn bookings(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which bookings.")] filter: Option<BookingFilterInput>,
        #[graphql(desc = "Order (default: booking time, soonest first).")] order_by: Option<
            BookingOrderInput,
        >,
        #[graphql(desc = "Return the first n bookings (at most 100, default 20).")] first: Option<
            i32,
        >,
        #[graphql(desc = "Return bookings after this cursor.")] after: Option<String>,
        #[graphql(desc = "Return the last n bookings (at most 100).")] last: Option<i32>,
        #[graphql(desc = "Return bookings before this cursor.")] before: Option<String>,
    ) -> Result<Conn<Booking>> {
        let page = PageRequest::of(ctx, first, after, last, before);
        let query = VenueBookings(booking_query(filter, order_by, page)?);
        nested(ctx, self.0.id, query, Booking).await
    }

    /// Guests who have booked at this venue, by last name; contact data masked for
    /// COORDINATOR and VIEWER.
    async fn guests(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Return the first n guests (at most 100, default 20).")] first: Option<
            i32,
        >,
        #[graphql(desc = "Return guests after this cursor.")] after: Option<String>,
        #[graphql(desc = "Return the last n guests (at most 100).")] last: Option<i32>,
        #[graphql(desc = "Return guests before this cursor.")] before: Option<String>,
    ) -> Result<Conn<Guest>> {
        let page = PageRequest::of(ctx, first, after, last, before);
        nested(ctx, self.0.id, VenueGuests { page }, Guest::from).await
    }

    /// Promoters whose primary venue this is (MANAGER or above).
    async fn promoters(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Return the first n promoters (at most 100, default 20).")] first: Option<
            i32,
        >,
        #[graphql(desc = "Return promoters after this cursor.")] after: Option<String>,
        #[graphql(desc = "Return the last n promoters (at most 100).")] last: Option<i32>,
        #[graphql(desc = "Return promoters before this cursor.")] before: Option<String>,
    ) -> Result<Conn<Promoter>> {
        let page = PageRequest::of(ctx, first, after, last, before);
        nested(ctx, self.0.id, VenuePromoters { page }, Promoter).await
    }

    /// Commission rates defined at this venue (MANAGER or above).
    async fn commission_rates(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only rates that are active (default: all).")] active_only: Option<bool>,
        #[graphql(desc = "Return the first n rates (at most 100, default 20).")] first: Option<i32>,
        #[graphql(desc = "Return rates after this cursor.")] after: Option<String>,
        #[graphql(desc = "Return the last n rates (at most 100).")] last: Option<i32>,
        #[graphql(desc = "Return rates before this cursor.")] before: Option<String>,
    ) -> Result<Conn<CommissionRate>> {
        let query = VenueRates {
            active_only: active_only.unwrap_or(false),
            page: PageRequest::of(ctx, first, after, last, before),
        };
        nested(ctx, self.0.id, query, CommissionRate).await
    }

    /// Incentive programs of this venue (MANAGER or above).
    async fn incentives(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Return the first n programs (at most 100, default 20).")] first: Option<
            i32,
        >,
        #[graphql(desc = "Return programs after this cursor.")] after: Option<String>,
        #[graphql(desc = "Return the last n programs (at most 100).")] last: Option<i32>,
        #[graphql(desc = "Return programs before this cursor.")] before: Option<String>,
    ) -> Result<Conn<Incentive>> {
        let page = PageRequest::of(ctx, first, after, last, before);
        nested(ctx, self.0.id, VenueIncentives { page }, Incentive).await
    }

    /// Payouts to promoters at this venue, newest period first (MANAGER or above).
    async fn payouts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which payouts (by status, period, payment date).")] filter: Option<
            PayoutFilterInput,
        >,
        #[graphql(desc = "Return the first n payouts (at most 100, default 20).")] first: Option<
            i32,
        >,
        #[graphql(desc = "Return payouts after this cursor.")] after: Option<String>,
        #[graphql(desc = "Return the last n payouts (at most 100).")] last: Option<i32>,
        #[graphql(desc = "Return payouts before this cursor.")] before: Option<String>,
    ) -> Result<Conn<Payout>> {
        let page = PageRequest::of(ctx, first, after, last, before);
        nested(
            ctx,
            self.0.id,
            VenuePayouts(payout_query(filter, page)),
            Payout,
        )
        .await
    }
}

/// A venue's pricing row: what a booking costs (DOMAIN.md "Pricing a booking").
#[derive(Clone)]
pub struct VenuePricing(pub venue_pricing::Model, pub String);

/// A venue's pricing row: what a booking costs (DOMAIN.md "Pricing a booking").
#[Object]
impl VenuePricing {
    /// Unique identifier.
    pub(crate) async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Non-prime bookings: price per diner.
    async fn non_prime_per_diner(&self) -> Money {
        Money::cents(self.0.non_prime_per_diner, &self.1)
    }
    /// Non-prime bookings: platform fee as a fraction of the base fee (`0.1000` = 10 %).
    async fn non_prime_platform_fee_percent(&self) -> Decimal {
        money::rate(self.0.non_prime_platform_fee_percent)
    }
    /// Prime bookings: price for the first two diners.
    async fn prime_base_for_2(&self) -> Money {
        Money::cents(self.0.prime_base_for_2, &self.1)
    }
    /// Prime bookings: price of each diner beyond two.
    async fn prime_additional_per_person(&self) -> Money {
        Money::cents(self.0.prime_additional_per_person, &self.1)
    }
    /// Prime bookings: platform fee as a fraction of the base fee.
    async fn prime_platform_fee_percent(&self) -> Decimal {
        money::rate(self.0.prime_platform_fee_percent)
    }
    /// The least a booking's base fee can be.
    async fn minimum_booking_amount(&self) -> Money {
        Money::cents(self.0.minimum_booking_amount, &self.1)
    }
    /// Smallest party accepted.
    async fn minimum_party_size(&self) -> i32 {
        self.0.minimum_party_size
    }
    /// Largest party accepted.
    async fn maximum_party_size(&self) -> i32 {
        self.0.maximum_party_size
    }
    /// Discount (fraction) for bookings made at least 7 days ahead.
    async fn early_bird_discount_percent(&self) -> Option<Decimal> {
        self.0.early_bird_discount_percent.map(money::rate)
    }
    /// Discount (fraction) for guests with a completed booking here.
    async fn repeat_customer_discount_percent(&self) -> Option<Decimal> {
        self.0.repeat_customer_discount_percent.map(money::rate)
    }
    /// Discount (fraction) for parties of 8 or more.
    async fn group_discount_percent(&self) -> Option<Decimal> {
        self.0.group_discount_percent.map(money::rate)
    }
    /// Start of validity.
    async fn effective_from(&self) -> DateTime<Utc> {
        self.0.effective_from
    }
    /// End of validity (exclusive); null while in force.
    async fn effective_to(&self) -> Option<DateTime<Utc>> {
        self.0.effective_to
    }
    /// Whether the row may apply at all.
    async fn is_active(&self) -> bool {
        self.0.is_active
    }
    /// When the row was written.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// Filters of the `venues` list.
#[derive(InputObject, Default)]
pub struct VenueFilterInput {
    /// Only venues of this type.
    pub r#type: Option<VenueType>,
    /// Only venues of this tier.
    pub tier: Option<VenueTier>,
    /// Only venues in this status.
    pub status: Option<VenueStatus>,
    /// Only venues in this city (case-insensitive, exact).
    pub city: Option<String>,
    /// Only venues whose name contains this text (case-insensitive).
    pub search: Option<String>,
}

/// Orderings of the `venues` list.
#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq, Default)]
pub enum VenueOrderBy {
    /// By name, A to Z.
    #[default]
    NameAsc,
    /// By name, Z to A.
    NameDesc,
    /// Oldest first.
    CreatedAtAsc,
    /// Newest first.
    CreatedAtDesc,
}

nested_connection!(
    /// A venue's pricing rows, newest first.
    VenuePricingHistory => venue_pricing::Model, prima_service::venues::pricing_history_pages
);

/// Venue queries.
#[derive(Default)]
pub struct VenueQuery;

/// Venue queries.
#[Object]
impl VenueQuery {
    /// One venue by id; NOT_FOUND when it does not exist or you have no access to it.
    async fn venue(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The venue's id.")] id: ID,
    ) -> Result<Venue> {
        venue_by_id(ctx, parse_id("id", &id)?).await
    }

    /// The venues you can see, filtered and ordered.
    #[allow(clippy::too_many_arguments)]
    async fn venues(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which venues.")] filter: Option<VenueFilterInput>,
        #[graphql(desc = "Order (default: name A to Z).")] order_by: Option<VenueOrderBy>,
        #[graphql(desc = "Return the first n venues (at most 100, default 20).")] first: Option<
            i32,
        >,
        #[graphql(desc = "Return venues after this cursor.")] after: Option<String>,
        #[graphql(desc = "Return the last n venues (at most 100).")] last: Option<i32>,
        #[graphql(desc = "Return venues before this cursor.")] before: Option<String>,
    ) -> Result<Conn<Venue>> {
        let actor = actor(ctx)?;
        let filter = filter.unwrap_or_default();
        let filter = VenueFilter {
            r#type: filter.r#type,
            tier: filter.tier,
            status: filter.status,
            city: filter.city,
            search: filter.search,
        };
        let order = match order_by.unwrap_or_default() {
            VenueOrderBy::NameAsc => VenueOrder::NameAsc,
            VenueOrderBy::NameDesc => VenueOrder::NameDesc,
            VenueOrderBy::CreatedAtAsc => VenueOrder::CreatedAtAsc,
            VenueOrderBy::CreatedAtDesc => VenueOrder::CreatedAtDesc,
        };
        let request = PageRequest::of(ctx, first, after, last, before);
        let page = prima_service::venues::page(
            &deps(ctx).db.conn,
            actor,
            &filter,
            order,
            &request.page,
            request.with_total,
        )
        .await?;
        // Nested fields that need a venue (a booking's currency) find it here without SQL.
        loader(ctx)?.feed_many(
            page.edges
                .iter()
                .map(|edge| (VenueId(edge.node.id), edge.node.clone())),
        );
        Ok(connection(page, Venue))
    }
}
