//! Guest writes: `createGuest`, `updateGuest` and `setGuestStatus`. Each resolver takes the
//! caller and the database, makes one service call (`prima_service::guests::write`, where
//! validation, masking and permission checks live) and converts.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, SimpleObject};
use chrono::NaiveDate;
use prima_entity::enums::{Gender, GuestStatus, SeatingPreference};

use super::Guest;
use crate::context::{actor, deps};
use crate::error::{Result, parse_id};

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

/// Guest mutations: registering guests, changing their details and their status.
#[derive(Default)]
pub struct GuestMutation;

/// Guest mutations: registering guests, changing their details and their status.
#[Object]
impl GuestMutation {
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
        Ok(CreateGuestPayload {
            guest: Guest::from(view),
        })
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
        Ok(UpdateGuestPayload {
            guest: Guest::from(view),
        })
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
        Ok(SetGuestStatusPayload {
            guest: Guest::from(view),
        })
    }
}
