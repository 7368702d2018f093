//! Commission writes: `createCommissionRate`, `deactivateCommissionRate` and
//! `assignCommissionRate`. Each resolver takes the caller and the database, makes one
//! service call (`prima_service::commissions::rates`, where validation and permission
//! checks live) and converts.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use prima_entity::enums::{CommissionModel, PromoterTier};
use rust_decimal::Decimal;

use super::{CommissionAssignment, CommissionRate};
use crate::context::{actor, deps};
use crate::error::{Result, parse_id};
use crate::promoters::Promoter;

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

/// Commission mutations: creating and deactivating rates, and assigning them to promoters.
#[derive(Default)]
pub struct CommissionMutation;

/// Commission mutations: creating and deactivating rates, and assigning them to promoters.
#[Object]
impl CommissionMutation {
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
