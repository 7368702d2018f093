//! Incentive programme writes: `createIncentive`, `updateIncentive` (a DRAFT's rules),
//! `activateIncentive`, `pauseIncentive`, `resumeIncentive` and `cancelIncentive`, each for
//! MANAGER or above at the programme's venue. Each resolver makes one call to
//! `prima_service::incentives::manage`, where the rules, the periods, the conditional
//! updates and the events live, and converts.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use prima_entity::enums::{IncentiveType, PeriodType, PromoterTier, RewardType, TargetComparison};
use prima_service::incentives::manage::{self, PeriodInput, Rules, RulesPatch, Step};
use rust_decimal::Decimal;

use super::Incentive;
use crate::context::{actor, deps};
use crate::error::{ApiError, Result, parse_id};

/// An incentive programme to create, as a DRAFT (MANAGER or above at the venue).
#[derive(InputObject)]
pub struct CreateIncentiveInput {
    /// The venue that runs it.
    pub venue_id: ID,
    /// Display name, 1 to 255 characters.
    pub name: String,
    /// What the programme is about.
    pub description: Option<String>,
    /// What is measured for each promoter.
    pub r#type: IncentiveType,
    /// Positive, at most 2 decimal places: a count (BOOKING_COUNT, NEW_GUESTS), an amount
    /// in the venue's currency (REVENUE_TARGET), a percent of the period's closed bookings
    /// that completed, at most 100 (CONVERSION_RATE: `75.5`), or for TOP_N a whole number
    /// of winners.
    pub target_threshold: Decimal,
    /// How a promoter's value is compared with the threshold.
    pub target_comparison: TargetComparison,
    /// What winners receive.
    pub reward_type: RewardType,
    /// FIXED_AMOUNT: an amount in the venue's currency; PERCENTAGE_BONUS: a percent of the
    /// winner's commissions in the period (0 to 100); TIER_UPGRADE: leave it out.
    pub reward_value: Option<Decimal>,
    /// The reward in words.
    pub reward_description: Option<String>,
    /// WEEKLY (Monday to Monday), MONTHLY, QUARTERLY (from January, April, July, October
    /// 1st), in the venue's time zone, or CUSTOM.
    pub period_type: PeriodType,
    /// WEEKLY, MONTHLY, QUARTERLY: a date in the period, at the venue (default: today
    /// there). The server computes the period's ends.
    pub period_date: Option<NaiveDate>,
    /// CUSTOM only, and required there: start of the period (inclusive).
    pub period_start: Option<DateTime<Utc>>,
    /// CUSTOM only, and required there: end of the period (exclusive), after the start, at
    /// most 366 days later. Every period must end in the future.
    pub period_end: Option<DateTime<Utc>>,
    /// Whether the next period opens when this one is finalised (default false).
    #[graphql(default)]
    pub is_recurring: bool,
    /// The promoter tiers that may take part (default: all).
    pub eligible_tiers: Option<Vec<PromoterTier>>,
    /// Days a promoter must have been with the venue before the period starts, 0 to 3650
    /// (default 0).
    pub min_tenure_days: Option<i32>,
    /// Promoters with this many wins (ACHIEVED) in the venue's earlier programmes are not
    /// eligible, 1 to 1000 (default: no limit).
    pub max_previous_wins: Option<i32>,
}

/// The period of an input: a date for the calendar types, both ends for CUSTOM.
fn period_input(
    kind: PeriodType,
    date: Option<NaiveDate>,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
) -> Result<PeriodInput> {
    let invalid =
        |field: &str, message: &str| ApiError(prima_service::error::Error::invalid(field, message));
    match (kind, start, end) {
        (PeriodType::Custom, Some(start), Some(end)) if date.is_none() => {
            Ok(PeriodInput::Custom(start, end))
        }
        (PeriodType::Custom, _, _) => Err(invalid(
            "periodStart",
            "a CUSTOM period takes `periodStart` and `periodEnd` (and no `periodDate`)",
        )),
        (kind, None, None) => Ok(PeriodInput::Calendar(kind, date)),
        (_, _, _) => Err(invalid(
            "periodStart",
            "only a CUSTOM period takes `periodStart` and `periodEnd`; give `periodDate`",
        )),
    }
}

/// Changes to a DRAFT programme's rules (MANAGER or above): each field given replaces the
/// current one, with the same rules as `createIncentive`.
#[derive(InputObject)]
pub struct UpdateIncentiveInput {
    /// The programme, a DRAFT.
    pub incentive_id: ID,
    /// New name.
    pub name: Option<String>,
    /// New description; null clears it.
    pub description: MaybeUndefined<String>,
    /// New measure.
    pub r#type: Option<IncentiveType>,
    /// New threshold.
    pub target_threshold: Option<Decimal>,
    /// New comparison.
    pub target_comparison: Option<TargetComparison>,
    /// New reward type.
    pub reward_type: Option<RewardType>,
    /// New reward value.
    pub reward_value: Option<Decimal>,
    /// New reward description; null clears it.
    pub reward_description: MaybeUndefined<String>,
    /// New period type (with neither a date nor ends: the period holding the current
    /// start, or for CUSTOM the current ends).
    pub period_type: Option<PeriodType>,
    /// A date in the new period (WEEKLY, MONTHLY, QUARTERLY).
    pub period_date: Option<NaiveDate>,
    /// New start (CUSTOM, with `periodEnd`).
    pub period_start: Option<DateTime<Utc>>,
    /// New end (CUSTOM, with `periodStart`).
    pub period_end: Option<DateTime<Utc>>,
    /// Whether the next period opens when this one is finalised.
    pub is_recurring: Option<bool>,
    /// New eligible tiers.
    pub eligible_tiers: Option<Vec<PromoterTier>>,
    /// New tenure.
    pub min_tenure_days: Option<i32>,
    /// New limit on previous wins; null removes it.
    pub max_previous_wins: MaybeUndefined<i32>,
}

fn cleared(text: MaybeUndefined<String>) -> Option<String> {
    match text {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(String::new()),
        MaybeUndefined::Value(v) => Some(v),
    }
}

impl UpdateIncentiveInput {
    fn patch(self) -> Result<RulesPatch> {
        let period_ends = match (self.period_start, self.period_end) {
            (Some(start), Some(end)) => Some((start, end)),
            (None, None) => None,
            _ => {
                return Err(ApiError(prima_service::error::Error::invalid(
                    "periodStart",
                    "give `periodStart` and `periodEnd` together",
                )));
            }
        };
        Ok(RulesPatch {
            name: self.name,
            description: cleared(self.description),
            kind: self.r#type,
            target_threshold: self.target_threshold,
            target_comparison: self.target_comparison,
            reward_type: self.reward_type,
            reward_value: self.reward_value,
            reward_description: cleared(self.reward_description),
            period_type: self.period_type,
            period_date: self.period_date,
            period_ends,
            is_recurring: self.is_recurring,
            eligible_tiers: self.eligible_tiers,
            min_tenure_days: self.min_tenure_days,
            max_previous_wins: match self.max_previous_wins {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(v) => Some(Some(v)),
            },
        })
    }
}

/// A programme to move: activate, pause, resume or cancel (MANAGER or above).
#[derive(InputObject)]
pub struct IncentiveStepInput {
    /// The programme.
    pub incentive_id: ID,
}

/// A programme to finalise (ADMIN or OWNER at its venue).
#[derive(InputObject)]
pub struct FinalizeIncentiveInput {
    /// The programme, ACTIVE or PAUSED.
    pub incentive_id: ID,
    /// Finalise before the period ends (the values as they are now); without it, a
    /// programme whose period has not ended is refused.
    #[graphql(default)]
    pub early: bool,
}

/// The programme finalised.
#[derive(SimpleObject)]
pub struct FinalizeIncentivePayload {
    /// The programme, COMPLETED, with its winners and rewards.
    pub incentive: Incentive,
    /// For a recurring programme, the next period's programme, ACTIVE.
    pub next_incentive: Option<Incentive>,
}

/// The programme written.
#[derive(SimpleObject)]
pub struct IncentivePayload {
    /// The programme as it is now.
    pub incentive: Incentive,
}

/// Incentive programme mutations.
#[derive(Default)]
pub struct IncentiveMutation;

impl IncentiveMutation {
    async fn step(
        ctx: &Context<'_>,
        input: IncentiveStepInput,
        step: Step,
    ) -> Result<IncentivePayload> {
        let actor = actor(ctx)?;
        let id = parse_id("incentiveId", &input.incentive_id)?;
        let program = manage::move_incentive(&deps(ctx).db.conn, actor, id, step).await?;
        Ok(IncentivePayload {
            incentive: Incentive(program),
        })
    }
}

/// Incentive programme mutations.
#[Object]
impl IncentiveMutation {
    /// Creates an incentive programme as a DRAFT (MANAGER or above at the venue); its period
    /// is computed in the venue's time zone.
    async fn create_incentive(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The programme's rules and venue.")] input: CreateIncentiveInput,
    ) -> Result<IncentivePayload> {
        let actor = actor(ctx)?;
        let venue_id = parse_id("venueId", &input.venue_id)?;
        let period = period_input(
            input.period_type,
            input.period_date,
            input.period_start,
            input.period_end,
        )?;
        let rules = Rules {
            name: input.name,
            description: input.description,
            kind: input.r#type,
            target_threshold: input.target_threshold,
            target_comparison: input.target_comparison,
            reward_type: input.reward_type,
            reward_value: input.reward_value,
            reward_description: input.reward_description,
            period,
            is_recurring: input.is_recurring,
            eligible_tiers: input.eligible_tiers,
            min_tenure_days: input.min_tenure_days,
            max_previous_wins: input.max_previous_wins,
        };
        let program = manage::create_incentive(&deps(ctx).db.conn, actor, venue_id, rules).await?;
        Ok(IncentivePayload {
            incentive: Incentive(program),
        })
    }

    /// Changes a DRAFT programme's rules (MANAGER or above). Once it is ACTIVE its rules
    /// are fixed: CONFLICT.
    async fn update_incentive(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The programme and the rules to change.")] input: UpdateIncentiveInput,
    ) -> Result<IncentivePayload> {
        let actor = actor(ctx)?;
        let id = parse_id("incentiveId", &input.incentive_id)?;
        let program =
            manage::update_incentive(&deps(ctx).db.conn, actor, id, input.patch()?).await?;
        Ok(IncentivePayload {
            incentive: Incentive(program),
        })
    }

    /// Activates a DRAFT programme (MANAGER or above): every eligible promoter gets a
    /// progress row with the bookings already in the period. CONFLICT when it is not a
    /// DRAFT (activating twice).
    async fn activate_incentive(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The programme.")] input: IncentiveStepInput,
    ) -> Result<IncentivePayload> {
        Self::step(ctx, input, Step::Activate).await
    }

    /// Pauses an ACTIVE programme (MANAGER or above): its progress stops moving until it
    /// is resumed.
    async fn pause_incentive(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The programme.")] input: IncentiveStepInput,
    ) -> Result<IncentivePayload> {
        Self::step(ctx, input, Step::Pause).await
    }

    /// Resumes a PAUSED programme (MANAGER or above): every participant's progress is
    /// recomputed from the period's bookings, including those that changed while paused.
    async fn resume_incentive(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The programme.")] input: IncentiveStepInput,
    ) -> Result<IncentivePayload> {
        Self::step(ctx, input, Step::Resume).await
    }

    /// Finalises an ACTIVE or PAUSED programme (ADMIN or OWNER): winners ACHIEVED and the
    /// rest MISSED, rewards written as INCENTIVE_PAYOUT transactions the next payout takes
    /// (or a tier raised), counters set, and a recurring programme's next period opened, in
    /// one transaction. The scheduler does the same at `periodEnd`; whichever comes first
    /// finalises, the other gets CONFLICT.
    async fn finalize_incentive(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The programme.")] input: FinalizeIncentiveInput,
    ) -> Result<FinalizeIncentivePayload> {
        let actor = actor(ctx)?;
        let id = parse_id("incentiveId", &input.incentive_id)?;
        let done = prima_service::incentives::finalize::finalize_incentive(
            &deps(ctx).db.conn,
            actor,
            id,
            input.early,
        )
        .await?;
        Ok(FinalizeIncentivePayload {
            incentive: Incentive(done.incentive),
            next_incentive: done.next.map(Incentive),
        })
    }

    /// Cancels a DRAFT, ACTIVE or PAUSED programme (MANAGER or above): no one wins and no
    /// reward is paid; progress rows stay as they were.
    async fn cancel_incentive(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The programme.")] input: IncentiveStepInput,
    ) -> Result<IncentivePayload> {
        Self::step(ctx, input, Step::Cancel).await
    }
}
