//! Promoters: the `promoter` query, `Venue.promoters`, and the `Promoter` type with its
//! bookings, commission assignments, incentive progress and payouts. Visible to MANAGER or
//! above at the promoter's venue (financial reads).

pub mod mutation;

use async_graphql::{Context, ID, Json, Object};
use chrono::{DateTime, Utc};
use prima_entity::enums::{PromoterStatus, PromoterTier};
use prima_entity::{commission_assignments, incentive_progress, promoters};
use prima_service::access;
use prima_service::money;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::bookings::{
    Booking, BookingFilterInput, BookingOrderInput, PromoterBookings, booking_query, currency_of,
};
use crate::commissions::CommissionAssignment;
use crate::connection::{Conn, PageRequest, nested, nested_connection};
use crate::context::{actor, loader};
use crate::error::{ApiError, Result, parse_id};
use crate::incentives::IncentiveProgress;
use crate::loaders::PromoterId;
use crate::payouts::{Payout, PayoutFilterInput, PromoterBalance, PromoterPayouts, payout_query};
use crate::scalars::Money;
use crate::venues::{Venue, venue_by_id};

/// The GraphQL `Promoter` type; its schema description is on the `#[Object]` impl.
#[derive(Clone)]
pub struct Promoter(pub promoters::Model);

impl Promoter {
    /// One of the promoter's amounts, in their venue's currency; financial reads at the
    /// venue (the service's field rule, [`prima_service::access::financial`]).
    async fn money(&self, ctx: &Context<'_>, cents: i64) -> Result<Money> {
        let cents = access::financial(actor(ctx)?, self.0.venue_id, cents)?;
        Ok(Money::cents(
            cents,
            &currency_of(ctx, self.0.venue_id).await?,
        ))
    }
}

/// A promoter who brings bookings to a venue and earns commissions, with their aggregated
/// performance. Visible to MANAGER or above at their venue.
#[Object]
impl Promoter {
    /// Unique identifier.
    pub(crate) async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The promoter's primary venue.
    async fn venue(&self, ctx: &Context<'_>) -> Result<Venue> {
        venue_by_id(ctx, self.0.venue_id).await
    }
    /// First name.
    async fn first_name(&self) -> &str {
        &self.0.first_name
    }
    /// Last name.
    async fn last_name(&self) -> &str {
        &self.0.last_name
    }
    /// Email address.
    async fn email(&self) -> &str {
        &self.0.email
    }
    /// Phone number.
    async fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }
    /// Job title.
    async fn title(&self) -> Option<&str> {
        self.0.title.as_deref()
    }
    /// Company the promoter works for.
    async fn company(&self) -> Option<&str> {
        self.0.company.as_deref()
    }
    /// Short biography.
    async fn bio(&self) -> Option<&str> {
        self.0.bio.as_deref()
    }
    /// Social media handles, as a JSON object (e.g. `{"instagram": "@pat"}`).
    async fn social_media(&self) -> Option<Json<serde_json::Value>> {
        self.0.social_media.clone().map(Json)
    }
    /// Confirmed and completed bookings brought, ever.
    async fn total_bookings(&self) -> i32 {
        self.0.total_bookings
    }
    /// Total fees of those bookings.
    async fn total_revenue(&self, ctx: &Context<'_>) -> Result<Money> {
        self.money(ctx, self.0.total_revenue).await
    }
    /// Total revenue divided by total bookings.
    async fn average_booking_value(&self, ctx: &Context<'_>) -> Result<Money> {
        self.money(ctx, self.0.average_booking_value).await
    }
    /// Completed over completed, cancelled and no-show bookings, as a fraction (`0.8500`).
    async fn conversion_rate(&self) -> Decimal {
        money::rate(self.0.conversion_rate)
    }
    /// No-shows over completed and no-show bookings, as a fraction.
    async fn no_show_rate(&self) -> Decimal {
        money::rate(self.0.no_show_rate)
    }
    /// Cancelled over all bookings, as a fraction.
    async fn cancel_rate(&self) -> Decimal {
        money::rate(self.0.cancel_rate)
    }
    /// Confirmed and completed bookings this calendar month (venue time zone).
    async fn month_bookings(&self) -> i32 {
        self.0.month_bookings
    }
    /// Revenue of this month's bookings.
    async fn month_revenue(&self, ctx: &Context<'_>) -> Result<Money> {
        self.money(ctx, self.0.month_revenue).await
    }
    /// Guests whose first booking with this promoter falls in this month.
    async fn month_new_guests(&self) -> i32 {
        self.0.month_new_guests
    }
    /// Guests who booked with this promoter this month and before.
    async fn month_repeat_guests(&self) -> i32 {
        self.0.month_repeat_guests
    }
    /// Whether the promoter may bring bookings and earn commissions.
    async fn status(&self) -> PromoterStatus {
        self.0.status
    }
    /// Level, which selects the commission rates and incentive programmes that apply.
    async fn tier(&self) -> PromoterTier {
        self.0.tier
    }
    /// When the promoter joined the venue.
    async fn joined_at(&self) -> DateTime<Utc> {
        self.0.joined_at
    }
    /// When the promoter last brought a booking.
    async fn last_active_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_active_at
    }
    /// When the promoter was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the promoter was last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// Bookings this promoter brought, at venues you can see, filtered and ordered in SQL.
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
        let query = PromoterBookings(booking_query(filter, order_by, page)?);
        nested(ctx, self.0.id, query, Booking).await
    }

    /// The promoter's commission assignments (which rate applied when), newest
    /// `effectiveFrom` first.
    async fn commission_assignments(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Return the first n assignments (at most 100, default 20).")]
        first: Option<i32>,
        #[graphql(desc = "Return assignments after this cursor.")] after: Option<String>,
        #[graphql(desc = "Return the last n assignments (at most 100).")] last: Option<i32>,
        #[graphql(desc = "Return assignments before this cursor.")] before: Option<String>,
    ) -> Result<Conn<CommissionAssignment>> {
        let page = PageRequest::of(ctx, first, after, last, before);
        nested(
            ctx,
            self.0.id,
            PromoterAssignments { page },
            CommissionAssignment,
        )
        .await
    }

    /// The promoter's progress in each incentive programme they take part in, newest
    /// first. `rank` is null here; see `Incentive.leaderboard`.
    async fn incentive_progress(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Return the first n rows (at most 100, default 20).")] first: Option<i32>,
        #[graphql(desc = "Return rows after this cursor.")] after: Option<String>,
        #[graphql(desc = "Return the last n rows (at most 100).")] last: Option<i32>,
        #[graphql(desc = "Return rows before this cursor.")] before: Option<String>,
    ) -> Result<Conn<IncentiveProgress>> {
        let page = PageRequest::of(ctx, first, after, last, before);
        nested(ctx, self.0.id, PromoterProgress { page }, |row| {
            IncentiveProgress {
                row,
                rank: None,
                promoter: None,
            }
        })
        .await
    }

    /// What the promoter is owed and has been paid at their venue: pending, earned and
    /// unpaid, a negative balance carried into the next payout, in payouts, paid.
    async fn balance(&self, ctx: &Context<'_>) -> Result<PromoterBalance> {
        let found = loader(ctx)?
            .load_one(crate::loaders::BalanceOf(self.0.id))
            .await?;
        found
            .map(PromoterBalance::from)
            .ok_or(crate::error::ApiError(prima_service::Error::NotFound {
                what: "promoter",
            }))
    }

    /// Payouts to this promoter, newest period first.
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
            PromoterPayouts(payout_query(filter, page)),
            Payout,
        )
        .await
    }
}

/// A promoter by id, through the request's dataloader; null when it does not exist or
/// your role may not see it.
pub async fn promoter_by_id(ctx: &Context<'_>, id: Uuid) -> Result<Option<Promoter>> {
    Ok(loader(ctx)?.load_one(PromoterId(id)).await?.map(Promoter))
}

nested_connection!(
    /// `Venue.promoters`: the venue's promoters by last name, first name, id; FORBIDDEN
    /// below MANAGER.
    VenuePromoters => promoters::Model,
    prima_service::access::scope::financial_pages::<promoters::Entity>
);
nested_connection!(
    /// A promoter's commission assignments.
    PromoterAssignments => commission_assignments::Model,
    prima_service::commissions::assignment_pages_by_promoter
);
nested_connection!(
    /// A promoter's incentive progress rows.
    PromoterProgress => incentive_progress::Model,
    prima_service::incentives::progress_pages_by_promoter
);

/// Promoter queries.
#[derive(Default)]
pub struct PromoterQuery;

/// Promoter queries.
#[Object]
impl PromoterQuery {
    /// One promoter by id; NOT_FOUND when it does not exist or your role at its venue may
    /// not see promoters (MANAGER or above).
    async fn promoter(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The promoter's id.")] id: ID,
    ) -> Result<Promoter> {
        let id = parse_id("id", &id)?;
        promoter_by_id(ctx, id)
            .await?
            .ok_or(ApiError(prima_service::Error::NotFound {
                what: "promoter",
            }))
    }
}
