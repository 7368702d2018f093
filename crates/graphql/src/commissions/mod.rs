//! Commissions: `Venue.commissionRates`, the `CommissionRate` type, and the
//! `CommissionAssignment` type (a promoter's rate over a period). Visible to MANAGER or
//! above at the venue (financial reads).

pub mod mutation;

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};
use prima_entity::enums::{CommissionModel, PromoterTier};
use prima_entity::{commission_assignments, commission_rates};
use prima_service::access;
use prima_service::money;
use rust_decimal::Decimal;

use crate::bookings::currency_of;
use crate::connection::nested_connection;
use crate::context::{actor, loader};
use crate::error::Result;
use crate::loaders::CommissionRateId;
use crate::promoters::{Promoter, promoter_by_id};
use crate::scalars::Money;
use crate::venues::{Venue, venue_by_id};

/// The GraphQL `CommissionRate` type; its schema description is on the `#[Object]` impl.
#[derive(Clone)]
pub struct CommissionRate(pub commission_rates::Model);

impl CommissionRate {
    /// One of the rate's terms, for a caller with financial reads at its venue (the
    /// service's field rule, [`prima_service::access::financial`]).
    fn financial<T>(&self, ctx: &Context<'_>, value: T) -> Result<T> {
        Ok(access::financial(actor(ctx)?, self.0.venue_id, value)?)
    }
}

/// A venue's commission rate for one promoter tier and model, over a period. For
/// TIERED, the venue's active rows of one tier form a ladder by `minMonthlyBookings`.
#[Object]
impl CommissionRate {
    /// Unique identifier.
    pub(crate) async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The venue that pays the commission.
    async fn venue(&self, ctx: &Context<'_>) -> Result<Venue> {
        venue_by_id(ctx, self.0.venue_id).await
    }
    /// The promoter tier this rate applies to.
    async fn tier(&self) -> PromoterTier {
        self.0.tier
    }
    /// How the commission is computed.
    async fn model(&self) -> CommissionModel {
        self.0.model
    }
    /// The rate: a fraction of the base fee for PERCENT_OF_SPEND and TIERED (`0.1000` =
    /// 10 %), an amount in the venue's currency per diner for PER_COVER and per booking for
    /// FLAT_RATE.
    async fn value(&self, ctx: &Context<'_>) -> Result<Decimal> {
        Ok(money::rate(self.financial(ctx, self.0.value)?))
    }
    /// No commission for a booking whose base fee is below this.
    async fn minimum_booking(&self, ctx: &Context<'_>) -> Result<Money> {
        Ok(Money::cents(
            self.financial(ctx, self.0.minimum_booking)?,
            &currency_of(ctx, self.0.venue_id).await?,
        ))
    }
    /// The most one booking's commission can be; null for no cap.
    async fn maximum_payout(&self, ctx: &Context<'_>) -> Result<Option<Money>> {
        Ok(match self.financial(ctx, self.0.maximum_payout)? {
            Some(cents) => Some(Money::cents(
                cents,
                &currency_of(ctx, self.0.venue_id).await?,
            )),
            None => None,
        })
    }
    /// TIERED: the promoter's bookings this month from which this rung applies.
    async fn min_monthly_bookings(&self) -> Option<i32> {
        self.0.min_monthly_bookings
    }
    /// Eligibility: the least conversion rate the promoter needs, as a fraction.
    async fn min_conversion_rate(&self) -> Option<Decimal> {
        self.0.min_conversion_rate.map(money::rate)
    }
    /// Eligibility: the highest cancel rate the promoter may have, as a fraction.
    async fn max_cancel_rate(&self) -> Option<Decimal> {
        self.0.max_cancel_rate.map(money::rate)
    }
    /// Start of validity.
    async fn effective_from(&self) -> DateTime<Utc> {
        self.0.effective_from
    }
    /// End of validity (exclusive); null while in force.
    async fn effective_to(&self) -> Option<DateTime<Utc>> {
        self.0.effective_to
    }
    /// Whether the rate may apply at all.
    async fn is_active(&self) -> bool {
        self.0.is_active
    }
    /// Id of the user who created the rate.
    async fn created_by(&self) -> ID {
        ID(self.0.created_by.to_string())
    }
    /// When the rate was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the rate was last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// The GraphQL `CommissionAssignment` type; its schema description is on the `#[Object]` impl.
#[derive(Clone)]
pub struct CommissionAssignment(pub commission_assignments::Model);

/// Which commission rate applies to a promoter over which period; its tier, model and rate
/// are copied from the rate when assigned.
#[Object]
impl CommissionAssignment {
    /// Unique identifier.
    pub(crate) async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The promoter; null when your role may not see them.
    async fn promoter(&self, ctx: &Context<'_>) -> Result<Option<Promoter>> {
        promoter_by_id(ctx, self.0.promoter_id).await
    }
    /// The rate assigned; null when your role may not see it.
    async fn commission_rate(&self, ctx: &Context<'_>) -> Result<Option<CommissionRate>> {
        Ok(loader(ctx)?
            .load_one(CommissionRateId(self.0.commission_rate_id))
            .await?
            .map(CommissionRate))
    }
    /// The promoter tier at assignment.
    async fn tier(&self) -> PromoterTier {
        self.0.tier
    }
    /// How the commission is computed.
    async fn model(&self) -> CommissionModel {
        self.0.model
    }
    /// The rate, with the meaning of `CommissionRate.value` for this model. (An assignment
    /// is only ever loaded for a caller with financial reads at its promoter's venue.)
    async fn rate(&self) -> Decimal {
        money::rate(self.0.rate)
    }
    /// Start of validity: bookings at or after this time use this assignment.
    async fn effective_from(&self) -> DateTime<Utc> {
        self.0.effective_from
    }
    /// End of validity (exclusive); null while in force.
    async fn effective_to(&self) -> Option<DateTime<Utc>> {
        self.0.effective_to
    }
    /// Id of the user who made the assignment.
    async fn assigned_by(&self) -> ID {
        ID(self.0.assigned_by.to_string())
    }
    /// When the assignment was made.
    async fn assigned_at(&self) -> DateTime<Utc> {
        self.0.assigned_at
    }
    /// Notes.
    async fn notes(&self) -> Option<&str> {
        self.0.notes.as_deref()
    }
}

nested_connection!(
    /// `Venue.commissionRates`: the venue's rates, newest `effectiveFrom` first; FORBIDDEN
    /// below MANAGER.
    VenueRates {
        /// Only rates that are active.
        active_only: bool,
    } => commission_rates::Model, prima_service::commissions::rate_pages_by_venue
);
