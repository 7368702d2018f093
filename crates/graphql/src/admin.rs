//! The write side of the portfolio: mutations on venues (settings, pricing, access grants),
//! guests, promoters and commission rates. Each mutation is
//! `verbNoun(input: VerbNounInput!): VerbNounPayload!`; the payload holds the changed
//! object(s). Each resolver takes the caller and the database, makes one service call
//! (the `write`, `settings`, `pricing`, `grants` and `rates` modules of each domain in
//! `prima_service`, where validation and permission checks live) and converts.

use async_graphql::{Context, ID, InputObject, Json, MaybeUndefined, Object, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use prima_entity::enums::{
    CommissionModel, Gender, GuestStatus, PromoterTier, SeatingPreference, VenueRole, VenueStatus,
    VenueTier, VenueType,
};
use rust_decimal::Decimal;

use crate::commissions::{CommissionAssignment, CommissionRate};
use crate::context::{actor, deps};
use crate::error::{Result, parse_id};
use crate::guests::Guest;
use crate::promoters::Promoter;
use crate::users::{User, VenueAccess};
use crate::venues::{Venue, VenuePricing};

// ---------------------------------------------------------------------------------------
// Venues

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

/// A role to grant a user at a venue (venue ADMIN or OWNER; only an OWNER grants OWNER).
#[derive(InputObject)]
pub struct GrantVenueAccessInput {
    /// The venue.
    pub venue_id: ID,
    /// The user to grant the role to.
    pub user_id: ID,
    /// The role. A user with a grant at the venue gets this role instead; a revoked grant
    /// is reactivated.
    pub role: VenueRole,
}

/// The grant, as it now stands.
#[derive(SimpleObject)]
pub struct GrantVenueAccessPayload {
    /// The user's role at the venue.
    pub access: VenueAccess,
    /// The user who holds it.
    pub user: User,
}

/// A user's role at a venue to revoke (venue ADMIN or OWNER; only an OWNER revokes an
/// OWNER, and never the venue's last one).
#[derive(InputObject)]
pub struct RevokeVenueAccessInput {
    /// The venue.
    pub venue_id: ID,
    /// The user whose role to revoke.
    pub user_id: ID,
}

/// The revoked grant; the user loses access to the venue on their next request.
#[derive(SimpleObject)]
pub struct RevokeVenueAccessPayload {
    /// The role the user held at the venue.
    pub access: VenueAccess,
    /// The user who held it.
    pub user: User,
    /// When it was revoked.
    pub revoked_at: DateTime<Utc>,
}

// ---------------------------------------------------------------------------------------
// Guests

/// A guest to register (COORDINATOR or above at the registering venue).
#[derive(InputObject)]
pub struct CreateGuestInput {
    /// The venue registering the guest.
    pub venue_id: ID,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Email address.
    pub email: String,
    /// Phone number.
    pub phone: Option<String>,
    /// Date of birth.
    pub birth_date: Option<NaiveDate>,
    /// Gender, if the guest chose to give it.
    pub gender: Option<Gender>,
    /// Dietary restrictions, e.g. `vegetarian`.
    #[graphql(default)]
    pub dietary_restrictions: Vec<String>,
    /// Preferred seating.
    pub seating_preference: Option<SeatingPreference>,
    /// Accepts email (default true).
    pub communication_email: Option<bool>,
    /// Accepts SMS (default false).
    pub communication_sms: Option<bool>,
    /// Accepts push notifications (default false).
    pub communication_push: Option<bool>,
    /// Free tags.
    #[graphql(default)]
    pub tags: Vec<String>,
}

/// The guest registered, unmasked for you who registered them.
#[derive(SimpleObject)]
pub struct CreateGuestPayload {
    /// The new guest.
    pub guest: Guest,
}

/// Changes to a guest (COORDINATOR or above where the guest booked or that registered them; MANAGER or above to
/// change last name, email or phone): only the fields given change; `null` clears an
/// optional field.
#[derive(InputObject)]
pub struct UpdateGuestInput {
    /// The guest to change.
    pub guest_id: ID,
    /// New first name.
    pub first_name: Option<String>,
    /// New last name (MANAGER or above).
    pub last_name: Option<String>,
    /// New email (MANAGER or above).
    pub email: Option<String>,
    /// New phone (MANAGER or above); null clears it.
    pub phone: MaybeUndefined<String>,
    /// New date of birth; null clears it.
    pub birth_date: MaybeUndefined<NaiveDate>,
    /// New gender; null clears it.
    pub gender: MaybeUndefined<Gender>,
    /// New dietary restrictions, replacing the old ones.
    pub dietary_restrictions: Option<Vec<String>>,
    /// New seating preference; null clears it.
    pub seating_preference: MaybeUndefined<SeatingPreference>,
    /// Accepts email.
    pub communication_email: Option<bool>,
    /// Accepts SMS.
    pub communication_sms: Option<bool>,
    /// Accepts push notifications.
    pub communication_push: Option<bool>,
    /// New tags, replacing the old ones.
    pub tags: Option<Vec<String>>,
}

/// The guest changed.
#[derive(SimpleObject)]
pub struct UpdateGuestPayload {
    /// The guest, as changed (masked as your role requires).
    pub guest: Guest,
}

/// A guest's new status (MANAGER or above where the guest booked or that registered them).
#[derive(InputObject)]
pub struct SetGuestStatusInput {
    /// The guest.
    pub guest_id: ID,
    /// ACTIVE, BLOCKED (may not book at any venue) or VIP.
    pub status: GuestStatus,
}

/// The guest with their new status.
#[derive(SimpleObject)]
pub struct SetGuestStatusPayload {
    /// The guest, as changed (masked as your role requires).
    pub guest: Guest,
}

// ---------------------------------------------------------------------------------------
// Promoters

/// A promoter to sign up at a venue (MANAGER or above there). They start PENDING_APPROVAL.
#[derive(InputObject)]
pub struct CreatePromoterInput {
    /// The promoter's primary venue.
    pub venue_id: ID,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Email address.
    pub email: String,
    /// Phone number.
    pub phone: Option<String>,
    /// Job title.
    pub title: Option<String>,
    /// Company the promoter works for.
    pub company: Option<String>,
    /// Short biography.
    pub bio: Option<String>,
    /// Social media handles, a JSON object such as `{"instagram": "@pat"}`.
    pub social_media: Option<Json<serde_json::Value>>,
    /// Tier (default STANDARD).
    pub tier: Option<PromoterTier>,
}

/// The promoter signed up.
#[derive(SimpleObject)]
pub struct CreatePromoterPayload {
    /// The new promoter, PENDING_APPROVAL.
    pub promoter: Promoter,
}

/// A promoter to approve (PENDING_APPROVAL -> ACTIVE; MANAGER or above at their venue).
#[derive(InputObject)]
pub struct ApprovePromoterInput {
    /// The promoter.
    pub promoter_id: ID,
}

/// The promoter approved.
#[derive(SimpleObject)]
pub struct ApprovePromoterPayload {
    /// The promoter, now ACTIVE.
    pub promoter: Promoter,
}

/// A promoter to suspend (ACTIVE -> SUSPENDED; MANAGER or above at their venue).
#[derive(InputObject)]
pub struct SuspendPromoterInput {
    /// The promoter.
    pub promoter_id: ID,
}

/// The promoter suspended.
#[derive(SimpleObject)]
pub struct SuspendPromoterPayload {
    /// The promoter, now SUSPENDED.
    pub promoter: Promoter,
}

/// A promoter's new tier (MANAGER or above at their venue).
#[derive(InputObject)]
pub struct SetPromoterTierInput {
    /// The promoter.
    pub promoter_id: ID,
    /// The new tier.
    pub tier: PromoterTier,
}

/// The promoter with their new tier.
#[derive(SimpleObject)]
pub struct SetPromoterTierPayload {
    /// The promoter, as changed.
    pub promoter: Promoter,
}

// ---------------------------------------------------------------------------------------
// Commissions

/// A commission rate to create at a venue (venue ADMIN or OWNER).
#[derive(InputObject)]
pub struct CreateCommissionRateInput {
    /// The venue that pays the commission.
    pub venue_id: ID,
    /// The promoter tier the rate is for.
    pub tier: PromoterTier,
    /// How the commission is computed.
    pub model: CommissionModel,
    /// Not negative, at most 4 decimal places: a fraction of the base fee from 0 to 1 for
    /// PERCENT_OF_SPEND and TIERED (`0.1` = 10 %), an amount in the venue's currency per
    /// diner for PER_COVER and per booking for FLAT_RATE.
    pub value: Decimal,
    /// No commission for a booking whose base fee is below this (default 0).
    pub minimum_booking: Option<Decimal>,
    /// The most one booking's commission can be (default: no cap).
    pub maximum_payout: Option<Decimal>,
    /// TIERED only, and required there: the promoter's bookings this month from which this
    /// rung applies.
    pub min_monthly_bookings: Option<i32>,
    /// Eligibility: the least conversion rate the promoter needs, a fraction.
    pub min_conversion_rate: Option<Decimal>,
    /// Eligibility: the highest cancel rate the promoter may have, a fraction.
    pub max_cancel_rate: Option<Decimal>,
    /// Start of validity (default now).
    pub effective_from: Option<DateTime<Utc>>,
}

/// The commission rate created.
#[derive(SimpleObject)]
pub struct CreateCommissionRatePayload {
    /// The new rate.
    pub commission_rate: CommissionRate,
}

/// A commission rate to deactivate (venue ADMIN or OWNER). Assignments already made keep
/// running until the promoter is assigned another rate.
#[derive(InputObject)]
pub struct DeactivateCommissionRateInput {
    /// The rate.
    pub commission_rate_id: ID,
}

/// The commission rate deactivated.
#[derive(SimpleObject)]
pub struct DeactivateCommissionRatePayload {
    /// The rate, now inactive and ended.
    pub commission_rate: CommissionRate,
}

/// A commission rate to assign to a promoter from now (MANAGER or above at the promoter's
/// venue). The rate must be an active rate of the promoter's venue.
#[derive(InputObject)]
pub struct AssignCommissionRateInput {
    /// The promoter.
    pub promoter_id: ID,
    /// The rate to assign.
    pub commission_rate_id: ID,
    /// Notes on the assignment.
    pub notes: Option<String>,
}

/// The new assignment and the one it replaced.
#[derive(SimpleObject)]
pub struct AssignCommissionRatePayload {
    /// The new assignment, in force from now; tier, model and rate copied from the rate.
    pub assignment: CommissionAssignment,
    /// The assignment in force until now, closed; null when there was none.
    pub closed_assignment: Option<CommissionAssignment>,
    /// The promoter.
    pub promoter: Promoter,
}

// ---------------------------------------------------------------------------------------
// The mutations

/// Mutations that change venues, guests, promoters and commission rates.
#[derive(Default)]
pub struct AdminMutation;

/// Mutations that change venues, guests, promoters and commission rates.
#[Object]
impl AdminMutation {
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

    /// Grants a user a role at a venue (venue ADMIN or OWNER; only an OWNER grants OWNER).
    /// Takes effect on the user's next request.
    async fn grant_venue_access(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The venue, the user and the role.")] input: GrantVenueAccessInput,
    ) -> Result<GrantVenueAccessPayload> {
        let actor = actor(ctx)?;
        let venue_id = parse_id("venueId", &input.venue_id)?;
        let user_id = parse_id("userId", &input.user_id)?;
        let grant = prima_service::access::grants::grant_access(
            &deps(ctx).db.conn,
            actor,
            venue_id,
            user_id,
            input.role,
        )
        .await?;
        Ok(GrantVenueAccessPayload {
            access: VenueAccess(grant.access),
            user: User(grant.user),
        })
    }

    /// Revokes a user's role at a venue (venue ADMIN or OWNER; only an OWNER revokes an
    /// OWNER). The venue's last OWNER cannot be revoked (CONFLICT).
    async fn revoke_venue_access(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The venue and the user.")] input: RevokeVenueAccessInput,
    ) -> Result<RevokeVenueAccessPayload> {
        let actor = actor(ctx)?;
        let venue_id = parse_id("venueId", &input.venue_id)?;
        let user_id = parse_id("userId", &input.user_id)?;
        let grant = prima_service::access::grants::revoke_access(
            &deps(ctx).db.conn,
            actor,
            venue_id,
            user_id,
        )
        .await?;
        Ok(RevokeVenueAccessPayload {
            revoked_at: grant.access.revoked_at.unwrap_or(grant.access.granted_at),
            access: VenueAccess(grant.access),
            user: User(grant.user),
        })
    }

    /// Registers a guest at a venue (COORDINATOR or above there).
    async fn create_guest(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The guest and the venue registering them.")] input: CreateGuestInput,
    ) -> Result<CreateGuestPayload> {
        let actor = actor(ctx)?;
        let venue_id = parse_id("venueId", &input.venue_id)?;
        let view = prima_service::guests::write::create_guest(
            &deps(ctx).db.conn,
            actor,
            prima_service::guests::write::NewGuest {
                venue_id,
                first_name: input.first_name,
                last_name: input.last_name,
                email: input.email,
                phone: input.phone,
                birth_date: input.birth_date,
                gender: input.gender,
                dietary_restrictions: input.dietary_restrictions,
                seating_preference: input.seating_preference,
                communication_email: input.communication_email,
                communication_sms: input.communication_sms,
                communication_push: input.communication_push,
                tags: input.tags,
            },
        )
        .await?;
        Ok(CreateGuestPayload { guest: Guest(view) })
    }

    /// Changes a guest's details (COORDINATOR or above where the guest booked or that registered them; MANAGER or
    /// above for last name, email and phone).
    async fn update_guest(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The guest and the fields to change.")] input: UpdateGuestInput,
    ) -> Result<UpdateGuestPayload> {
        let actor = actor(ctx)?;
        let guest_id = parse_id("guestId", &input.guest_id)?;
        let view = prima_service::guests::write::update_guest(
            &deps(ctx).db.conn,
            actor,
            guest_id,
            prima_service::guests::write::GuestChanges {
                first_name: input.first_name,
                last_name: input.last_name,
                email: input.email,
                phone: input.phone.into(),
                birth_date: input.birth_date.into(),
                gender: input.gender.into(),
                dietary_restrictions: input.dietary_restrictions,
                seating_preference: input.seating_preference.into(),
                communication_email: input.communication_email,
                communication_sms: input.communication_sms,
                communication_push: input.communication_push,
                tags: input.tags,
            },
        )
        .await?;
        Ok(UpdateGuestPayload { guest: Guest(view) })
    }

    /// Sets a guest's status (MANAGER or above where the guest booked or that registered them). A BLOCKED guest
    /// cannot book at any venue.
    async fn set_guest_status(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The guest and their new status.")] input: SetGuestStatusInput,
    ) -> Result<SetGuestStatusPayload> {
        let actor = actor(ctx)?;
        let guest_id = parse_id("guestId", &input.guest_id)?;
        let view = prima_service::guests::write::set_guest_status(
            &deps(ctx).db.conn,
            actor,
            guest_id,
            input.status,
        )
        .await?;
        Ok(SetGuestStatusPayload { guest: Guest(view) })
    }

    /// Signs up a promoter at a venue (MANAGER or above there); they earn nothing until
    /// approved.
    async fn create_promoter(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The promoter and their venue.")] input: CreatePromoterInput,
    ) -> Result<CreatePromoterPayload> {
        let actor = actor(ctx)?;
        let venue_id = parse_id("venueId", &input.venue_id)?;
        let promoter = prima_service::promoters::write::create_promoter(
            &deps(ctx).db.conn,
            actor,
            prima_service::promoters::write::NewPromoter {
                venue_id,
                first_name: input.first_name,
                last_name: input.last_name,
                email: input.email,
                phone: input.phone,
                title: input.title,
                company: input.company,
                bio: input.bio,
                social_media: input.social_media.map(|json| json.0),
                tier: input.tier,
            },
        )
        .await?;
        Ok(CreatePromoterPayload {
            promoter: Promoter(promoter),
        })
    }

    /// Approves a promoter (PENDING_APPROVAL -> ACTIVE; MANAGER or above at their venue).
    /// Any other starting status is a CONFLICT.
    async fn approve_promoter(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The promoter to approve.")] input: ApprovePromoterInput,
    ) -> Result<ApprovePromoterPayload> {
        let actor = actor(ctx)?;
        let id = parse_id("promoterId", &input.promoter_id)?;
        let promoter =
            prima_service::promoters::write::approve_promoter(&deps(ctx).db.conn, actor, id)
                .await?;
        Ok(ApprovePromoterPayload {
            promoter: Promoter(promoter),
        })
    }

    /// Suspends a promoter (ACTIVE -> SUSPENDED; MANAGER or above at their venue); they
    /// earn no commission while suspended. Any other starting status is a CONFLICT.
    async fn suspend_promoter(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The promoter to suspend.")] input: SuspendPromoterInput,
    ) -> Result<SuspendPromoterPayload> {
        let actor = actor(ctx)?;
        let id = parse_id("promoterId", &input.promoter_id)?;
        let promoter =
            prima_service::promoters::write::suspend_promoter(&deps(ctx).db.conn, actor, id)
                .await?;
        Ok(SuspendPromoterPayload {
            promoter: Promoter(promoter),
        })
    }

    /// Sets a promoter's tier (MANAGER or above at their venue). Their commission
    /// assignment keeps its rate: assign a rate of the new tier to change what they earn.
    async fn set_promoter_tier(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The promoter and their new tier.")] input: SetPromoterTierInput,
    ) -> Result<SetPromoterTierPayload> {
        let actor = actor(ctx)?;
        let id = parse_id("promoterId", &input.promoter_id)?;
        let promoter = prima_service::promoters::write::set_promoter_tier(
            &deps(ctx).db.conn,
            actor,
            id,
            input.tier,
        )
        .await?;
        Ok(SetPromoterTierPayload {
            promoter: Promoter(promoter),
        })
    }

    /// Creates a commission rate at a venue (venue ADMIN or OWNER).
    async fn create_commission_rate(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The rate and its venue.")] input: CreateCommissionRateInput,
    ) -> Result<CreateCommissionRatePayload> {
        let actor = actor(ctx)?;
        let venue_id = parse_id("venueId", &input.venue_id)?;
        let rate = prima_service::commissions::rates::create_rate(
            &deps(ctx).db.conn,
            actor,
            prima_service::commissions::rates::NewRate {
                venue_id,
                tier: input.tier,
                model: input.model,
                value: input.value,
                minimum_booking: input.minimum_booking,
                maximum_payout: input.maximum_payout,
                min_monthly_bookings: input.min_monthly_bookings,
                min_conversion_rate: input.min_conversion_rate,
                max_cancel_rate: input.max_cancel_rate,
                effective_from: input.effective_from,
            },
        )
        .await?;
        Ok(CreateCommissionRatePayload {
            commission_rate: CommissionRate(rate),
        })
    }

    /// Deactivates a commission rate (venue ADMIN or OWNER): it ends now and can no longer
    /// be assigned. Deactivating an inactive rate is a CONFLICT.
    async fn deactivate_commission_rate(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The rate to deactivate.")] input: DeactivateCommissionRateInput,
    ) -> Result<DeactivateCommissionRatePayload> {
        let actor = actor(ctx)?;
        let id = parse_id("commissionRateId", &input.commission_rate_id)?;
        let rate =
            prima_service::commissions::rates::deactivate_rate(&deps(ctx).db.conn, actor, id)
                .await?;
        Ok(DeactivateCommissionRatePayload {
            commission_rate: CommissionRate(rate),
        })
    }

    /// Assigns a commission rate to a promoter from now (MANAGER or above at the promoter's
    /// venue): their current assignment is closed and a new one opens, copying the rate's
    /// tier, model and value.
    async fn assign_commission_rate(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The promoter and the rate.")] input: AssignCommissionRateInput,
    ) -> Result<AssignCommissionRatePayload> {
        let actor = actor(ctx)?;
        let promoter_id = parse_id("promoterId", &input.promoter_id)?;
        let rate_id = parse_id("commissionRateId", &input.commission_rate_id)?;
        let done = prima_service::commissions::rates::assign_rate(
            &deps(ctx).db.conn,
            actor,
            promoter_id,
            rate_id,
            input.notes,
        )
        .await?;
        Ok(AssignCommissionRatePayload {
            assignment: CommissionAssignment(done.assignment),
            closed_assignment: done.closed.map(CommissionAssignment),
            promoter: Promoter(done.promoter),
        })
    }
}
