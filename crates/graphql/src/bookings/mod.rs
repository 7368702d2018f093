//! Bookings: the `booking` query and the `Booking` type with its relations.

pub mod mutation;

use async_graphql::{Context, ID, InputObject, Object};
use chrono::{DateTime, Utc};
use prima_entity::enums::{BookingSource, BookingStatus, BookingType};
use prima_entity::{booking_history, bookings};
use prima_service::bookings::{BookingFilter, BookingOrder, BookingQuery};
use uuid::Uuid;

use crate::connection::{Conn, PageRequest, nested, nested_connection};
use crate::context::{actor, loader};
use crate::error::{ApiError, Result, parse_id};
use crate::guests::Guest;
use crate::ledger::Transaction;
use crate::loaders::{BookingId, VenueId};
use crate::promoters::Promoter;
use crate::scalars::Money;
use crate::venues::{Venue, venue_by_id};

/// A booking of a guest at a venue, with its fees locked in when it was made.
#[derive(Clone)]
pub struct Booking(pub bookings::Model);

/// The currency of a venue's amounts (the venue is usually in the loader's cache already).
pub(crate) async fn currency_of(ctx: &Context<'_>, venue_id: Uuid) -> Result<String> {
    loader(ctx)?
        .load_one(VenueId(venue_id))
        .await?
        .map(|venue| venue.currency)
        .ok_or(ApiError(prima_service::Error::NotFound { what: "venue" }))
}

/// A booking of a guest at a venue, with its fees locked in when it was made.
#[Object]
impl Booking {
    /// Unique identifier.
    pub(crate) async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The venue booked.
    async fn venue(&self, ctx: &Context<'_>) -> Result<Venue> {
        venue_by_id(ctx, self.0.venue_id).await
    }
    /// The guest who booked; contact data masked for COORDINATOR and VIEWER.
    async fn guest(&self) -> Guest {
        Guest::of_readable_booking(self.0.guest_id)
    }
    /// The promoter who brought the booking, if any (null too when your role may not see
    /// promoters).
    async fn promoter(&self, ctx: &Context<'_>) -> Result<Option<Promoter>> {
        match self.0.promoter_id {
            Some(id) => crate::promoters::promoter_by_id(ctx, id).await,
            None => Ok(None),
        }
    }
    /// Ledger transactions of this booking, oldest first (MANAGER or above).
    async fn transactions(&self, ctx: &Context<'_>) -> Result<Vec<Transaction>> {
        crate::ledger::booking_transactions(ctx, self.0.id).await
    }
    /// Every change of this booking, oldest first (each edit is an entry: paged).
    async fn history(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Return the first n entries (at most 100, default 20).")] first: Option<
            i32,
        >,
        #[graphql(desc = "Return entries after this cursor.")] after: Option<String>,
        #[graphql(desc = "Return the last n entries (at most 100).")] last: Option<i32>,
        #[graphql(desc = "Return entries before this cursor.")] before: Option<String>,
    ) -> Result<Conn<BookingHistoryEntry>> {
        let page = PageRequest::of(ctx, first, after, last, before);
        nested(ctx, self.0.id, BookingHistory { page }, BookingHistoryEntry).await
    }
    /// Number of diners (1 to 50).
    async fn diners(&self) -> i32 {
        self.0.diners
    }
    /// When the guests arrive.
    async fn booking_time(&self) -> DateTime<Utc> {
        self.0.booking_time
    }
    /// Planned length of the visit, in minutes.
    async fn duration_minutes(&self) -> i32 {
        self.0.duration_minutes
    }
    /// The guest's requests.
    async fn special_requests(&self) -> Option<&str> {
        self.0.special_requests.as_deref()
    }
    /// Staff notes.
    async fn notes(&self) -> Option<&str> {
        self.0.notes.as_deref()
    }
    /// PRIME or NON_PRIME: which price list applies.
    async fn r#type(&self) -> BookingType {
        self.0.r#type
    }
    /// Where the booking came from.
    async fn source(&self) -> BookingSource {
        self.0.source
    }
    /// Where the booking is in its lifecycle.
    async fn status(&self) -> BookingStatus {
        self.0.status
    }
    /// The venue's fee (after discount and minimum), locked at creation.
    async fn base_fee(&self, ctx: &Context<'_>) -> Result<Money> {
        Ok(Money::cents(
            self.0.base_fee,
            &currency_of(ctx, self.0.venue_id).await?,
        ))
    }
    /// The platform's fee on top of the base fee.
    async fn platform_fee(&self, ctx: &Context<'_>) -> Result<Money> {
        Ok(Money::cents(
            self.0.platform_fee,
            &currency_of(ctx, self.0.venue_id).await?,
        ))
    }
    /// What the guest pays: base fee plus platform fee.
    async fn total_fee(&self, ctx: &Context<'_>) -> Result<Money> {
        Ok(Money::cents(
            self.0.total_fee,
            &currency_of(ctx, self.0.venue_id).await?,
        ))
    }
    /// The promoter's commission, computed at confirmation (0 until then). MANAGER or
    /// above: null with a FORBIDDEN error for COORDINATOR and VIEWER, like `transactions`.
    async fn promoter_commission(&self, ctx: &Context<'_>) -> Result<Option<Money>> {
        let cents = prima_service::bookings::promoter_commission(actor(ctx)?, &self.0)?;
        Ok(Some(Money::cents(
            cents,
            &currency_of(ctx, self.0.venue_id).await?,
        )))
    }
    /// When it was confirmed.
    async fn confirmed_at(&self) -> Option<DateTime<Utc>> {
        self.0.confirmed_at
    }
    /// When it was cancelled.
    async fn cancelled_at(&self) -> Option<DateTime<Utc>> {
        self.0.cancelled_at
    }
    /// When it was marked a no-show.
    async fn no_show_at(&self) -> Option<DateTime<Utc>> {
        self.0.no_show_at
    }
    /// When it was completed.
    async fn completed_at(&self) -> Option<DateTime<Utc>> {
        self.0.completed_at
    }
    /// Referrer of the booking request, if recorded.
    async fn referrer(&self) -> Option<&str> {
        self.0.referrer.as_deref()
    }
    /// When the booking was made.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the booking last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// One change of a booking: what, from, to, why, and by whom.
#[derive(Clone)]
pub struct BookingHistoryEntry(pub booking_history::Model);

/// One change of a booking: what, from, to, why, and by whom.
#[Object]
impl BookingHistoryEntry {
    /// Unique identifier.
    pub(crate) async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// What happened, e.g. `CREATED`, `STATUS_CHANGED`, `UPDATED`.
    async fn action(&self) -> &str {
        &self.0.action
    }
    /// The changed values before, as JSON.
    async fn previous_value(&self) -> Option<async_graphql::Json<serde_json::Value>> {
        self.0.previous_value.clone().map(async_graphql::Json)
    }
    /// The changed values after, as JSON.
    async fn new_value(&self) -> Option<async_graphql::Json<serde_json::Value>> {
        self.0.new_value.clone().map(async_graphql::Json)
    }
    /// Why, when a reason was given.
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }
    /// Name of the person who did it.
    async fn performed_by_name(&self) -> &str {
        &self.0.performed_by_name
    }
    /// Their role at the time.
    async fn performed_by_role(&self) -> &str {
        &self.0.performed_by_role
    }
    /// When it happened.
    async fn timestamp(&self) -> DateTime<Utc> {
        self.0.timestamp
    }
}

/// Filters of a booking list; every given filter must match.
#[derive(InputObject, Default)]
pub struct BookingFilterInput {
    /// Only these statuses.
    pub statuses: Option<Vec<BookingStatus>>,
    /// Only these types.
    pub types: Option<Vec<BookingType>>,
    /// Only these sources.
    pub sources: Option<Vec<BookingSource>>,
    /// Only bookings brought by this promoter.
    pub promoter_id: Option<ID>,
    /// Only bookings of this guest.
    pub guest_id: Option<ID>,
    /// Only bookings at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Only bookings before this time.
    pub to: Option<DateTime<Utc>>,
}

/// Which field orders a booking list.
#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq, Default)]
pub enum BookingOrderField {
    /// When the guests arrive.
    #[default]
    BookingTime,
    /// When the booking was made.
    CreatedAt,
}

/// Sort direction.
#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq, Default)]
pub enum OrderDirection {
    /// Smallest first.
    #[default]
    Asc,
    /// Largest first.
    Desc,
}

/// How to order a booking list.
#[derive(InputObject, Default)]
pub struct BookingOrderInput {
    /// The field (default BOOKING_TIME).
    #[graphql(default)]
    pub field: BookingOrderField,
    /// The direction (default ASC).
    #[graphql(default)]
    pub direction: OrderDirection,
}

/// Converts a booking list's arguments into a service query.
pub(crate) fn booking_query(
    filter: Option<BookingFilterInput>,
    order: Option<BookingOrderInput>,
    page: PageRequest,
) -> Result<BookingQuery> {
    let filter = filter.unwrap_or_default();
    let order = order.unwrap_or_default();
    Ok(BookingQuery {
        filter: BookingFilter {
            statuses: filter.statuses.unwrap_or_default(),
            types: filter.types.unwrap_or_default(),
            sources: filter.sources.unwrap_or_default(),
            promoter_id: filter
                .promoter_id
                .map(|id| parse_id("filter.promoterId", &id))
                .transpose()?,
            guest_id: filter
                .guest_id
                .map(|id| parse_id("filter.guestId", &id))
                .transpose()?,
            from: filter.from,
            to: filter.to,
        },
        order: match (order.field, order.direction) {
            (BookingOrderField::BookingTime, OrderDirection::Asc) => BookingOrder::BookingTimeAsc,
            (BookingOrderField::BookingTime, OrderDirection::Desc) => BookingOrder::BookingTimeDesc,
            (BookingOrderField::CreatedAt, OrderDirection::Asc) => BookingOrder::CreatedAtAsc,
            (BookingOrderField::CreatedAt, OrderDirection::Desc) => BookingOrder::CreatedAtDesc,
        },
        page: page.page,
        with_total: page.with_total,
    })
}

nested_connection!(
    /// A venue's bookings.
    VenueBookings(BookingQuery) => bookings::Model, prima_service::bookings::pages_by_venue
);
nested_connection!(
    /// A promoter's bookings (at venues the caller can see).
    PromoterBookings(BookingQuery) => bookings::Model, prima_service::bookings::pages_by_promoter
);
nested_connection!(
    /// A guest's bookings (at venues the caller can see).
    GuestBookings(BookingQuery) => bookings::Model, prima_service::bookings::pages_by_guest
);

/// Booking queries.
#[derive(Default)]
pub struct BookingQueryRoot;

/// Booking queries.
#[Object]
impl BookingQueryRoot {
    /// One booking by id; NOT_FOUND when it does not exist or you have no access to its venue.
    async fn booking(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The booking's id.")] id: ID,
    ) -> Result<Booking> {
        let id = parse_id("id", &id)?;
        loader(ctx)?
            .load_one(BookingId(id))
            .await?
            .map(Booking)
            .ok_or(ApiError(prima_service::Error::NotFound { what: "booking" }))
    }
}

nested_connection!(
    /// A page of a booking's history.
    BookingHistory => booking_history::Model, prima_service::bookings::history_pages
);
