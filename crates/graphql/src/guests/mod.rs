//! Guests: the `guest` query and the `Guest` type, masked per the caller's role.

pub mod mutation;

use async_graphql::{Context, ID, Object};
use std::sync::OnceLock;

use chrono::{DateTime, NaiveDate, Utc};
use prima_entity::enums::{Gender, GuestStatus, SeatingPreference};
use prima_service::guests::{GuestFigures, GuestView};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::bookings::{
    Booking, BookingFilterInput, BookingOrderInput, GuestBookings, booking_query,
};
use crate::connection::{Conn, PageRequest, nested, nested_connection};
use crate::context::loader;
use crate::error::{ApiError, Result, parse_id};
use crate::loaders::{GuestFiguresOf, GuestId};

/// A guest who books at the portfolio's venues. Last name, email and phone are masked
/// (`J***`, `j***@example.com`) unless you are MANAGER or above where they booked.
#[derive(Clone)]
pub struct Guest {
    id: Uuid,
    /// The guest as the caller may see them: given, or loaded by the first field that needs
    /// more than the id (through the request's dataloader, so once per level).
    view: OnceLock<GuestView>,
}

impl From<GuestView> for Guest {
    fn from(view: GuestView) -> Self {
        Guest {
            id: view.guest.id,
            view: OnceLock::from(view),
        }
    }
}

fn strings(json: &Option<serde_json::Value>) -> Vec<String> {
    json.as_ref()
        .and_then(|v| v.as_array())
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

impl Guest {
    /// The guest of a booking the caller can read. Anyone who can read a booking can read
    /// its guest (a guest is visible at every venue they booked at), so nothing is loaded
    /// until a field asks for more than `id`: `guest { id }` costs no statement.
    pub fn of_readable_booking(id: Uuid) -> Self {
        Guest {
            id,
            view: OnceLock::new(),
        }
    }

    /// The guest as the caller may see them, loading them on first use.
    async fn view(&self, ctx: &Context<'_>) -> Result<&GuestView> {
        if let Some(view) = self.view.get() {
            return Ok(view);
        }
        let view = loader(ctx)?
            .load_one(GuestId(self.id))
            .await?
            .ok_or(ApiError(prima_service::Error::NotFound { what: "guest" }))?;
        Ok(self.view.get_or_init(|| view))
    }

    /// The guest's figures over the caller's venues, through the request's dataloader (one
    /// statement for every guest of the response).
    async fn figures(&self, ctx: &Context<'_>) -> Result<GuestFigures> {
        Ok(loader(ctx)?
            .load_one(GuestFiguresOf(self.id))
            .await?
            .unwrap_or(GuestFigures::NONE))
    }
}

/// A guest who books at the portfolio's venues. Last name, email and phone are masked
/// (`J***`, `j***@example.com`) unless you are MANAGER or above where they booked. Their
/// booking figures cover only the venues you can see.
#[Object]
impl Guest {
    /// Unique identifier.
    pub(crate) async fn id(&self) -> ID {
        ID(self.id.to_string())
    }
    /// First name.
    async fn first_name(&self, ctx: &Context<'_>) -> Result<&str> {
        let view = self.view(ctx).await?;
        Ok(&view.guest.first_name)
    }
    /// Last name (masked for COORDINATOR and VIEWER).
    async fn last_name(&self, ctx: &Context<'_>) -> Result<&str> {
        let view = self.view(ctx).await?;
        Ok(&view.guest.last_name)
    }
    /// Email (masked for COORDINATOR and VIEWER).
    async fn email(&self, ctx: &Context<'_>) -> Result<&str> {
        let view = self.view(ctx).await?;
        Ok(&view.guest.email)
    }
    /// Phone (masked for COORDINATOR and VIEWER).
    async fn phone(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        let view = self.view(ctx).await?;
        Ok(view.guest.phone.as_deref())
    }
    /// Whether contact fields were masked for you.
    async fn contact_masked(&self, ctx: &Context<'_>) -> Result<bool> {
        let view = self.view(ctx).await?;
        Ok(view.masked)
    }
    /// Date of birth.
    async fn birth_date(&self, ctx: &Context<'_>) -> Result<Option<NaiveDate>> {
        let view = self.view(ctx).await?;
        Ok(view.guest.birth_date)
    }
    /// Gender, if given.
    async fn gender(&self, ctx: &Context<'_>) -> Result<Option<Gender>> {
        let view = self.view(ctx).await?;
        Ok(view.guest.gender)
    }
    /// Dietary restrictions, e.g. `vegetarian`.
    async fn dietary_restrictions(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        let view = self.view(ctx).await?;
        Ok(strings(&view.guest.dietary_restrictions))
    }
    /// Preferred seating.
    async fn seating_preference(&self, ctx: &Context<'_>) -> Result<Option<SeatingPreference>> {
        let view = self.view(ctx).await?;
        Ok(view.guest.seating_preference)
    }
    /// Accepts email.
    async fn communication_email(&self, ctx: &Context<'_>) -> Result<bool> {
        let view = self.view(ctx).await?;
        Ok(view.guest.communication_email)
    }
    /// Accepts SMS.
    async fn communication_sms(&self, ctx: &Context<'_>) -> Result<bool> {
        let view = self.view(ctx).await?;
        Ok(view.guest.communication_sms)
    }
    /// Accepts push notifications.
    async fn communication_push(&self, ctx: &Context<'_>) -> Result<bool> {
        let view = self.view(ctx).await?;
        Ok(view.guest.communication_push)
    }
    /// Bookings made at the venues you can see (every status; every venue for a global
    /// ADMIN).
    async fn total_bookings(&self, ctx: &Context<'_>) -> Result<i32> {
        Ok(self.figures(ctx).await?.total_bookings)
    }
    /// Of those, bookings cancelled.
    async fn cancelled_bookings(&self, ctx: &Context<'_>) -> Result<i32> {
        Ok(self.figures(ctx).await?.cancelled_bookings)
    }
    /// Of those, bookings not shown up for.
    async fn no_show_bookings(&self, ctx: &Context<'_>) -> Result<i32> {
        Ok(self.figures(ctx).await?.no_show_bookings)
    }
    /// Sum of the total fees of the completed bookings at the venues you can see, in the
    /// venues' currency. Mixed currencies are not converted; prefer per-venue figures for
    /// money.
    async fn total_spent(&self, ctx: &Context<'_>) -> Result<Decimal> {
        Ok(prima_service::money::cents(
            self.figures(ctx).await?.total_spent,
        ))
    }
    /// Average party size of the bookings at the venues you can see (2.0 without any).
    async fn average_party_size(&self, ctx: &Context<'_>) -> Result<Decimal> {
        Ok(prima_service::money::from_units(
            self.figures(ctx).await?.average_party_size,
            1,
        ))
    }
    /// Time of the latest booking at the venues you can see.
    async fn last_booking_at(&self, ctx: &Context<'_>) -> Result<Option<DateTime<Utc>>> {
        Ok(self.figures(ctx).await?.last_booking_at)
    }
    /// ACTIVE, VIP or BLOCKED (a blocked guest cannot book).
    async fn status(&self, ctx: &Context<'_>) -> Result<GuestStatus> {
        let view = self.view(ctx).await?;
        Ok(view.guest.status)
    }
    /// Free tags.
    async fn tags(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        let view = self.view(ctx).await?;
        Ok(strings(&view.guest.tags))
    }
    /// When the guest was created.
    async fn created_at(&self, ctx: &Context<'_>) -> Result<DateTime<Utc>> {
        let view = self.view(ctx).await?;
        Ok(view.guest.created_at)
    }
    /// The guest's bookings at venues you can see.
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
        let query = GuestBookings(booking_query(filter, order_by, page)?);
        nested(ctx, self.id, query, Booking).await
    }
}

nested_connection!(
    /// The guests who booked at a venue.
    VenueGuests => GuestView, prima_service::guests::pages_by_venue
);

/// Guest queries.
#[derive(Default)]
pub struct GuestQuery;

/// Guest queries.
#[Object]
impl GuestQuery {
    /// One guest by id; NOT_FOUND unless they booked at a venue you can see.
    async fn guest(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The guest's id.")] id: ID,
    ) -> Result<Guest> {
        let id = parse_id("id", &id)?;
        loader(ctx)?
            .load_one(GuestId(id))
            .await?
            .map(Guest::from)
            .ok_or(ApiError(prima_service::Error::NotFound { what: "guest" }))
    }
}
