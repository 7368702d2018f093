//! Incentives: the `incentive` query, `Venue.incentives`, the `Incentive` type with its
//! live leaderboard, and `IncentiveProgress`. Visible to MANAGER or above at the venue
//! (financial reads).

pub mod mutation;

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};
use prima_entity::enums::{
    IncentiveStatus, IncentiveType, PeriodType, ProgressStatus, PromoterTier, RewardType,
    TargetComparison,
};
use prima_entity::{incentive_progress, incentives, promoters};
use prima_service::access;
use prima_service::incentives::Ranked;
use prima_service::money;
use rust_decimal::Decimal;
use std::sync::Arc;

use crate::connection::{Conn, PageRequest, nested, nested_connection};
use crate::context::{actor, loader};
use crate::error::{ApiError, Result, parse_id};
use crate::loaders::IncentiveId;
use crate::promoters::{Promoter, promoter_by_id};
use crate::scalars::Money;
use crate::venues::{Venue, venue_by_id};

/// Hundredths of the measured unit as a decimal (`2000` is `20.00`).
fn hundredths(units: i64) -> Decimal {
    money::from_units(units, 2)
}

/// The GraphQL `Incentive` type; its schema description is on the `#[Object]` impl.
#[derive(Clone)]
pub struct Incentive(pub incentives::Model);

impl Incentive {
    /// One of the programme's amounts, for a caller with financial reads at its venue (the
    /// service's field rule, [`prima_service::access::financial`]).
    fn financial(&self, ctx: &Context<'_>, units: i64) -> Result<i64> {
        Ok(access::financial(actor(ctx)?, self.0.venue_id, units)?)
    }
}

/// An incentive programme a venue runs for its promoters: a target over a period and a
/// reward for the winners.
#[Object]
impl Incentive {
    /// Unique identifier.
    pub(crate) async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The venue running the programme.
    async fn venue(&self, ctx: &Context<'_>) -> Result<Venue> {
        venue_by_id(ctx, self.0.venue_id).await
    }
    /// Display name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// What the programme is about.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// What is measured for each promoter.
    async fn r#type(&self) -> IncentiveType {
        self.0.r#type
    }
    /// Name of the measured metric, as the venue labels it.
    async fn target_metric(&self) -> &str {
        &self.0.target_metric
    }
    /// The threshold in the measured unit (`20.00` bookings, an amount of money, or N for
    /// TOP_N).
    async fn target_threshold(&self, ctx: &Context<'_>) -> Result<Decimal> {
        Ok(hundredths(self.financial(ctx, self.0.target_threshold)?))
    }
    /// How a promoter's value is compared with the threshold.
    async fn target_comparison(&self) -> TargetComparison {
        self.0.target_comparison
    }
    /// What winners receive.
    async fn reward_type(&self) -> RewardType {
        self.0.reward_type
    }
    /// The reward: an amount in `rewardCurrency` for FIXED_AMOUNT, a percent of the
    /// promoter's commissions in the period for PERCENTAGE_BONUS (`10.00` = 10 %).
    async fn reward_value(&self, ctx: &Context<'_>) -> Result<Decimal> {
        Ok(hundredths(self.financial(ctx, self.0.reward_value)?))
    }
    /// ISO 4217 currency of the reward.
    async fn reward_currency(&self) -> &str {
        &self.0.reward_currency
    }
    /// The reward in words.
    async fn reward_description(&self) -> Option<&str> {
        self.0.reward_description.as_deref()
    }
    /// Length of a period.
    async fn period_type(&self) -> PeriodType {
        self.0.period_type
    }
    /// Start of the current period (inclusive).
    async fn period_start(&self) -> DateTime<Utc> {
        self.0.period_start
    }
    /// End of the current period (exclusive).
    async fn period_end(&self) -> DateTime<Utc> {
        self.0.period_end
    }
    /// Whether a new period opens when this one is finalised.
    async fn is_recurring(&self) -> bool {
        self.0.is_recurring
    }
    /// When the programme was finalised; null before.
    async fn finalized_at(&self) -> Option<DateTime<Utc>> {
        self.0.finalized_at
    }
    /// The promoter tiers that may take part.
    async fn eligible_tiers(&self) -> Vec<PromoterTier> {
        serde_json::from_value(self.0.eligible_tiers.clone()).unwrap_or_default()
    }
    /// Promoters must have joined at least this many days before the period starts.
    async fn min_tenure_days(&self) -> i32 {
        self.0.min_tenure_days
    }
    /// Promoters with this many wins in the venue's earlier programmes are not eligible.
    async fn max_previous_wins(&self) -> Option<i32> {
        self.0.max_previous_wins
    }
    /// Life of the programme.
    async fn status(&self) -> IncentiveStatus {
        self.0.status
    }
    /// Eligible promoters taking part.
    async fn participant_count(&self) -> i32 {
        self.0.participant_count
    }
    /// Winners, once finalised.
    async fn winner_count(&self) -> i32 {
        self.0.winner_count
    }
    /// Rewards paid out, once finalised.
    async fn total_payout(&self, ctx: &Context<'_>) -> Result<Money> {
        Ok(Money::cents(
            self.financial(ctx, self.0.total_payout)?,
            &self.0.reward_currency,
        ))
    }
    /// Id of the user who created the programme.
    async fn created_by(&self) -> ID {
        ID(self.0.created_by.to_string())
    }
    /// When the programme was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the programme last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// Where one promoter stands, wherever that is on the leaderboard: their rank and what
    /// moving up one rank takes. Null when they do not take part.
    async fn standing(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The promoter.")] promoter_id: ID,
    ) -> Result<Option<IncentiveStanding>> {
        let promoter = parse_id("promoterId", &promoter_id)?;
        let found = prima_service::incentives::standing(
            &crate::context::deps(ctx).db.conn,
            actor(ctx)?,
            self.0.id,
            promoter,
        )
        .await?;
        Ok(found.map(IncentiveStanding))
    }
    /// The live leaderboard: participants by value, highest first (equal values by
    /// promoter id), each with its competition rank (1, 2, 2, 4).
    async fn leaderboard(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Return the first n participants (at most 100, default 20).")]
        first: Option<i32>,
        #[graphql(desc = "Return participants after this cursor.")] after: Option<String>,
        #[graphql(desc = "Return the last n participants (at most 100).")] last: Option<i32>,
        #[graphql(desc = "Return participants before this cursor.")] before: Option<String>,
    ) -> Result<Conn<IncentiveProgress>> {
        let page = PageRequest::of(ctx, first, after, last, before);
        nested(ctx, self.0.id, Leaderboard { page }, |ranked| {
            IncentiveProgress {
                row: ranked.progress,
                rank: Some(ranked.rank),
                promoter: None,
            }
        })
        .await
    }
}

/// The GraphQL `IncentiveStanding` type; its schema description is on the `#[Object]` impl.
pub struct IncentiveStanding(prima_service::incentives::Standing);

/// One promoter's place in a programme.
#[Object]
impl IncentiveStanding {
    /// Competition rank (1, 2, 2, 4): one more than the participants with a higher value.
    async fn rank(&self) -> i64 {
        self.0.rank
    }
    /// How much more (in the measured unit) the promoter needs to reach the next better
    /// value, and so move up one rank; null for the leaders.
    async fn gap_to_next_rank(&self) -> Option<Decimal> {
        self.0.gap_to_next_rank.map(hundredths)
    }
    /// How many promoters take part.
    async fn participants(&self) -> i64 {
        self.0.participants
    }
    /// The promoter's progress.
    async fn progress(&self) -> IncentiveProgress {
        IncentiveProgress {
            row: self.0.progress.clone(),
            rank: Some(self.0.rank),
            promoter: None,
        }
    }
}

/// The GraphQL `IncentiveProgress` type; its schema description is on the `#[Object]` impl.
#[derive(Clone)]
pub struct IncentiveProgress {
    /// The stored row.
    pub row: incentive_progress::Model,
    /// The leaderboard rank, when read through a leaderboard.
    pub rank: Option<i64>,
    /// The promoter, already read for a caller who may see them: a shared live board
    /// carries its participants' promoters, so its subscribers resolve `promoter` without
    /// a statement each. `None`: loaded (and access-checked) when asked for.
    pub promoter: Option<Arc<promoters::Model>>,
}

/// A promoter's progress in one incentive programme.
#[Object]
impl IncentiveProgress {
    /// Unique identifier.
    pub(crate) async fn id(&self) -> ID {
        ID(self.row.id.to_string())
    }
    /// Competition rank in the programme (1, 2, 2, 4); null unless read through
    /// `Incentive.leaderboard`.
    async fn rank(&self) -> Option<i64> {
        self.rank
    }
    /// The programme.
    async fn incentive(&self, ctx: &Context<'_>) -> Result<Option<Incentive>> {
        Ok(loader(ctx)?
            .load_one(IncentiveId(self.row.incentive_id))
            .await?
            .map(Incentive))
    }
    /// The promoter; null when your role may not see them.
    async fn promoter(&self, ctx: &Context<'_>) -> Result<Option<Promoter>> {
        if let Some(known) = &self.promoter {
            return Ok(Some(Promoter(known.as_ref().clone())));
        }
        promoter_by_id(ctx, self.row.promoter_id).await
    }
    /// The measured value so far, in the programme's unit.
    async fn current_value(&self) -> Decimal {
        hundredths(self.row.current_value)
    }
    /// The value to reach, in the programme's unit.
    async fn target_value(&self) -> Decimal {
        hundredths(self.row.target_value)
    }
    /// `min(100, current / target * 100)`, as a percent (`75.50` = 75.5 %).
    async fn percent_complete(&self) -> Decimal {
        hundredths(self.row.percent_complete)
    }
    /// The promoter's standing in the programme.
    async fn status(&self) -> ProgressStatus {
        self.row.status
    }
    /// When the target was first met.
    async fn achieved_at(&self) -> Option<DateTime<Utc>> {
        self.row.achieved_at
    }
    /// The reward earned, in the programme's reward currency, once finalised.
    async fn reward_earned(&self, ctx: &Context<'_>) -> Result<Option<Money>> {
        let Some(cents) = self.row.reward_earned else {
            return Ok(None);
        };
        let incentive = loader(ctx)?
            .load_one(IncentiveId(self.row.incentive_id))
            .await?
            .ok_or(ApiError(prima_service::Error::NotFound {
                what: "incentive",
            }))?;
        let cents = access::financial(actor(ctx)?, incentive.venue_id, cents)?;
        Ok(Some(Money::cents(cents, &incentive.reward_currency)))
    }
    /// When the reward was paid.
    async fn reward_paid_at(&self) -> Option<DateTime<Utc>> {
        self.row.reward_paid_at
    }
    /// When the value last changed.
    async fn last_updated(&self) -> DateTime<Utc> {
        self.row.last_updated
    }
    /// When the promoter joined the programme.
    async fn created_at(&self) -> DateTime<Utc> {
        self.row.created_at
    }
}

nested_connection!(
    /// `Venue.incentives`: the venue's programmes, latest period first; FORBIDDEN below
    /// MANAGER.
    VenueIncentives => incentives::Model,
    prima_service::access::scope::financial_pages::<incentives::Entity>
);
nested_connection!(
    /// A programme's leaderboard.
    Leaderboard => Ranked, prima_service::incentives::leaderboard_pages
);

/// Incentive queries.
#[derive(Default)]
pub struct IncentiveQuery;

/// Incentive queries.
#[Object]
impl IncentiveQuery {
    /// One incentive programme by id; NOT_FOUND when it does not exist or your role at
    /// its venue may not see financial data (MANAGER or above).
    async fn incentive(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The programme's id.")] id: ID,
    ) -> Result<Incentive> {
        let id = parse_id("id", &id)?;
        loader(ctx)?
            .load_one(IncentiveId(id))
            .await?
            .map(Incentive)
            .ok_or(ApiError(prima_service::Error::NotFound {
                what: "incentive",
            }))
    }
}
