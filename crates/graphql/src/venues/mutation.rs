//! Venue writes: `createVenue`, `updateVenue` and `setVenuePricing`. Each resolver takes
//! the caller and the database, makes one service call (`prima_service::venues::settings`
//! and `prima_service::venues::pricing`, where validation and permission checks live) and
//! converts; the payload holds the changed object(s).

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, SimpleObject};
use prima_entity::enums::{VenueStatus, VenueTier, VenueType};
use rust_decimal::Decimal;

use super::{Venue, VenuePricing};
use crate::context::{actor, deps};
use crate::error::{Result, parse_id};

/// A venue to create (global ADMIN only).
#[derive(InputObject)]
pub struct CreateVenueInput {
    /// Display name, 1 to 255 characters.
    pub name: String,
    /// What kind of venue this is.
    pub r#type: VenueType,
    /// Market tier.
    pub tier: VenueTier,
    /// Street and number.
    pub address_street: String,
    /// City.
    pub address_city: String,
    /// State or region.
    pub address_state: String,
    /// Postal code.
    pub address_zip: String,
    /// Country code, e.g. `US`.
    pub address_country: String,
    /// IANA time zone, e.g. `America/New_York`; periods and "this month" follow it.
    pub timezone: String,
    /// ISO 4217 currency of every amount at the venue: three capital letters, e.g. `USD`.
    pub currency: String,
    /// Language code, e.g. `en` (the default).
    pub language: Option<String>,
    /// Seated capacity, at least 1.
    pub capacity_seated: i32,
    /// Standing capacity.
    pub capacity_standing: Option<i32>,
    /// Capacity of private rooms.
    pub capacity_private: Option<i32>,
    /// Contact phone.
    pub contact_phone: Option<String>,
    /// Contact email.
    pub contact_email: Option<String>,
    /// Website.
    pub contact_website: Option<String>,
    /// Confirm new bookings at once, unless approval is required (default false).
    #[graphql(default)]
    pub auto_confirm_bookings: bool,
    /// New bookings wait for a manager's approval (default false).
    #[graphql(default)]
    pub require_approval: bool,
    /// Status (default PENDING: being onboarded, not live yet).
    pub status: Option<VenueStatus>,
}

/// The venue created.
#[derive(SimpleObject)]
pub struct CreateVenuePayload {
    /// The new venue.
    pub venue: Venue,
}

/// Changes to a venue (venue ADMIN or OWNER): only the fields given change; `null` clears
/// an optional field.
#[derive(InputObject)]
pub struct UpdateVenueInput {
    /// The venue to change.
    pub venue_id: ID,
    /// New display name.
    pub name: Option<String>,
    /// New contact phone; null clears it.
    pub contact_phone: MaybeUndefined<String>,
    /// New contact email; null clears it.
    pub contact_email: MaybeUndefined<String>,
    /// New website; null clears it.
    pub contact_website: MaybeUndefined<String>,
    /// New seated capacity, at least 1.
    pub capacity_seated: Option<i32>,
    /// New standing capacity; null clears it.
    pub capacity_standing: MaybeUndefined<i32>,
    /// New capacity of private rooms; null clears it.
    pub capacity_private: MaybeUndefined<i32>,
    /// Confirm new bookings at once (unless approval is required).
    pub auto_confirm_bookings: Option<bool>,
    /// New bookings wait for a manager's approval.
    pub require_approval: Option<bool>,
    /// New status.
    pub status: Option<VenueStatus>,
}

/// The venue changed.
#[derive(SimpleObject)]
pub struct UpdateVenuePayload {
    /// The venue, as changed.
    pub venue: Venue,
}

/// New prices for a venue from now on (venue ADMIN or OWNER). Money is in the venue's
/// currency, in whole cents; fractions go from 0 to 1 with at most 4 decimal places
/// (`0.1` = 10 %).
#[derive(InputObject)]
pub struct SetVenuePricingInput {
    /// The venue.
    pub venue_id: ID,
    /// Non-prime bookings: price per diner.
    pub non_prime_per_diner: Decimal,
    /// Non-prime bookings: platform fee as a fraction of the base fee.
    pub non_prime_platform_fee_percent: Decimal,
    /// Prime bookings: price for the first two diners.
    pub prime_base_for_2: Decimal,
    /// Prime bookings: price of each diner beyond two.
    pub prime_additional_per_person: Decimal,
    /// Prime bookings: platform fee as a fraction of the base fee.
    pub prime_platform_fee_percent: Decimal,
    /// The least a booking's base fee can be.
    pub minimum_booking_amount: Decimal,
    /// Smallest party accepted, from 1 to 50.
    pub minimum_party_size: i32,
    /// Largest party accepted, from `minimumPartySize` to 50.
    pub maximum_party_size: i32,
    /// Discount (fraction) for bookings made at least 7 days ahead.
    pub early_bird_discount_percent: Option<Decimal>,
    /// Discount (fraction) for guests with a completed booking at the venue.
    pub repeat_customer_discount_percent: Option<Decimal>,
    /// Discount (fraction) for parties of 8 or more.
    pub group_discount_percent: Option<Decimal>,
}

/// The venue's new pricing; the row it replaces is closed, not overwritten.
#[derive(SimpleObject)]
pub struct SetVenuePricingPayload {
    /// The venue (its `currentPricing` is the new row).
    pub venue: Venue,
    /// The new pricing, in force from now.
    pub pricing: VenuePricing,
    /// The pricing in force until now, closed; null when the venue had none.
    pub closed_pricing: Option<VenuePricing>,
}

/// Venue mutations: creating venues, changing their settings and setting their prices.
#[derive(Default)]
pub struct VenueMutation;

/// Venue mutations: creating venues, changing their settings and setting their prices.
#[Object]
impl VenueMutation {
    /// Creates a venue (global ADMIN only). It starts PENDING, with no pricing and no
    /// grants: set its pricing and grant its owner next.
    async fn create_venue(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The venue to create.")] input: CreateVenueInput,
    ) -> Result<CreateVenuePayload> {
        let actor = actor(ctx)?;
        let venue = prima_service::venues::settings::create_venue(
            &deps(ctx).db.conn,
            actor,
            prima_service::venues::settings::NewVenue {
                name: input.name,
                r#type: input.r#type,
                tier: input.tier,
                address_street: input.address_street,
                address_city: input.address_city,
                address_state: input.address_state,
                address_zip: input.address_zip,
                address_country: input.address_country,
                timezone: input.timezone,
                currency: input.currency,
                language: input.language,
                capacity_seated: input.capacity_seated,
                capacity_standing: input.capacity_standing,
                capacity_private: input.capacity_private,
                contact_phone: input.contact_phone,
                contact_email: input.contact_email,
                contact_website: input.contact_website,
                auto_confirm_bookings: input.auto_confirm_bookings,
                require_approval: input.require_approval,
                status: input.status,
            },
        )
        .await?;
        Ok(CreateVenuePayload {
            venue: Venue(venue),
        })
    }

    /// Changes a venue's name, contact, capacity, settings or status (venue ADMIN or OWNER).
    async fn update_venue(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The venue and the fields to change.")] input: UpdateVenueInput,
    ) -> Result<UpdateVenuePayload> {
        let actor = actor(ctx)?;
        let venue_id = parse_id("venueId", &input.venue_id)?;
        let venue = prima_service::venues::settings::update_venue(
            &deps(ctx).db.conn,
            actor,
            venue_id,
            prima_service::venues::settings::VenueChanges {
                name: input.name,
                contact_phone: input.contact_phone.into(),
                contact_email: input.contact_email.into(),
                contact_website: input.contact_website.into(),
                capacity_seated: input.capacity_seated,
                capacity_standing: input.capacity_standing.into(),
                capacity_private: input.capacity_private.into(),
                auto_confirm_bookings: input.auto_confirm_bookings,
                require_approval: input.require_approval,
                status: input.status,
            },
        )
        .await?;
        Ok(UpdateVenuePayload {
            venue: Venue(venue),
        })
    }

    /// Sets a venue's prices from now on (venue ADMIN or OWNER): the pricing in force is
    /// closed (kept in `pricingHistory`) and a new row starts now. Existing bookings keep
    /// the prices they were made with.
    async fn set_venue_pricing(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The venue and its new prices.")] input: SetVenuePricingInput,
    ) -> Result<SetVenuePricingPayload> {
        let actor = actor(ctx)?;
        let venue_id = parse_id("venueId", &input.venue_id)?;
        let change = prima_service::venues::pricing::set_pricing(
            &deps(ctx).db.conn,
            actor,
            venue_id,
            prima_service::venues::pricing::NewPricing {
                non_prime_per_diner: input.non_prime_per_diner,
                non_prime_platform_fee_percent: input.non_prime_platform_fee_percent,
                prime_base_for_2: input.prime_base_for_2,
                prime_additional_per_person: input.prime_additional_per_person,
                prime_platform_fee_percent: input.prime_platform_fee_percent,
                minimum_booking_amount: input.minimum_booking_amount,
                minimum_party_size: input.minimum_party_size,
                maximum_party_size: input.maximum_party_size,
                early_bird_discount_percent: input.early_bird_discount_percent,
                repeat_customer_discount_percent: input.repeat_customer_discount_percent,
                group_discount_percent: input.group_discount_percent,
            },
        )
        .await?;
        let currency = change.venue.currency.clone();
        Ok(SetVenuePricingPayload {
            pricing: VenuePricing(change.pricing, currency.clone()),
            closed_pricing: change.closed.map(|row| VenuePricing(row, currency)),
            venue: Venue(change.venue),
        })
    }
}
