//! Payout writes (DOMAIN.md "Payouts"): generation for one promoter or a whole venue, the
//! approval and payment steps, and holds. Every one needs ADMIN or OWNER at the venue (a
//! global ADMIN anywhere); each resolver makes one call to `prima_service::payouts`
//! (`generate`, `lifecycle`), where the rules, the conditional updates, the audit trail and
//! the outbox events live, and converts.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use prima_entity::enums::PayoutMethod;
use prima_service::payouts::generate::{self, Generated, Outcome};
use prima_service::payouts::lifecycle::{self, HoldRequest, Step};
use rust_decimal::Decimal;

use super::{Payout, PayoutHold};
use crate::context::{actor, deps};
use crate::error::{Result, parse_id};
use crate::promoters::{Promoter, promoter_by_id};
use crate::scalars::Money;

/// A payout to generate for one promoter at one venue.
#[derive(InputObject)]
pub struct GeneratePayoutInput {
    /// The promoter; one of the venue's.
    pub promoter_id: ID,
    /// The venue that pays.
    pub venue_id: ID,
    /// Start of the period (inclusive).
    pub period_from: DateTime<Utc>,
    /// End of the period (exclusive): after `periodFrom`, at most 366 days later, and not in
    /// the future (a period is paid once it has ended).
    pub period_to: DateTime<Utc>,
    /// When it is to be paid: not before `periodTo` (default: now).
    pub scheduled_for: Option<DateTime<Utc>>,
    /// How it is paid (default BANK_TRANSFER).
    pub method: Option<PayoutMethod>,
    /// Fees deducted from the payout, in the venue's currency (default 0); at most what it
    /// pays.
    pub fees: Option<Decimal>,
    /// Makes retries safe, as Stripe's idempotency keys do: the same key and input return
    /// the payout the first request made; the same key with other input is a CONFLICT.
    /// (Generating twice for one period returns the same payout anyway, key or not.)
    pub idempotency_key: Option<String>,
}

/// What a generation found for a promoter.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum PayoutGenerationOutcome {
    /// A new DRAFT payout.
    Created,
    /// The payout the promoter already had for this period (it did not FAIL).
    Existing,
    /// The promoter's unpaid transactions came to less than zero (clawbacks larger than
    /// earnings): no payout; the next period's payout deducts the balance.
    CarriedNegative,
    /// Nothing unpaid in the period.
    Nothing,
}

impl From<Outcome> for PayoutGenerationOutcome {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Created => PayoutGenerationOutcome::Created,
            Outcome::Existing => PayoutGenerationOutcome::Existing,
            Outcome::CarriedNegative => PayoutGenerationOutcome::CarriedNegative,
            Outcome::Nothing => PayoutGenerationOutcome::Nothing,
        }
    }
}

/// The payout generated, or why there is none.
#[derive(SimpleObject)]
pub struct GeneratePayoutPayload {
    /// What happened.
    pub outcome: PayoutGenerationOutcome,
    /// The payout, created or existing; null when the balance was carried or there was
    /// nothing to pay.
    pub payout: Option<Payout>,
    /// What the promoter's unpaid transactions came to: the payout's amount before fees, or
    /// the negative balance carried (0 for nothing).
    pub balance: Money,
}

/// The answer of a generation for one promoter of a venue.
pub struct PayoutGeneration(Generated);

/// The answer of a generation for one promoter.
#[Object]
impl PayoutGeneration {
    /// What happened.
    async fn outcome(&self) -> PayoutGenerationOutcome {
        self.0.outcome.into()
    }
    /// The promoter.
    async fn promoter(&self, ctx: &Context<'_>) -> Result<Option<Promoter>> {
        promoter_by_id(ctx, self.0.promoter_id).await
    }
    /// The payout, created or existing; null when the balance was carried or there was
    /// nothing to pay.
    async fn payout(&self) -> Option<Payout> {
        self.0.payout.clone().map(Payout)
    }
    /// What the promoter's unpaid transactions came to: the payout's amount before fees, or
    /// the negative balance carried (0 for nothing).
    async fn balance(&self) -> Money {
        Money::cents(self.0.balance, &self.0.currency)
    }
}

/// The payouts of every promoter of a venue to generate.
#[derive(InputObject)]
pub struct GenerateVenuePayoutsInput {
    /// The venue.
    pub venue_id: ID,
    /// Start of the period (inclusive).
    pub period_from: DateTime<Utc>,
    /// End of the period (exclusive), as for `generatePayout`.
    pub period_to: DateTime<Utc>,
    /// When they are to be paid: not before `periodTo` (default: now).
    pub scheduled_for: Option<DateTime<Utc>>,
}

/// Every promoter's answer, and the counts.
#[derive(SimpleObject)]
pub struct GenerateVenuePayoutsPayload {
    /// One answer per promoter of the venue, by last name.
    pub results: Vec<PayoutGeneration>,
    /// How many got a new payout.
    pub created: i32,
    /// How many already had theirs.
    pub existing: i32,
    /// How many carried a negative balance.
    pub carried_negative: i32,
    /// How many had nothing to pay.
    pub nothing: i32,
}

/// A payout to move one step.
#[derive(InputObject)]
pub struct PayoutStepInput {
    /// The payout.
    pub payout_id: ID,
}

/// A payout to send back to DRAFT.
#[derive(InputObject)]
pub struct ReturnPayoutToDraftInput {
    /// The payout; PENDING_APPROVAL or APPROVED.
    pub payout_id: ID,
    /// Why, 1 to 2000 characters; kept in the audit trail.
    pub reason: String,
}

/// A payout that was paid.
#[derive(InputObject)]
pub struct CompletePayoutInput {
    /// The payout; PROCESSING.
    pub payout_id: ID,
    /// The payment's reference (bank or provider), 1 to 255 characters.
    pub reference: String,
}

/// A payout whose payment failed.
#[derive(InputObject)]
pub struct FailPayoutInput {
    /// The payout; PROCESSING.
    pub payout_id: ID,
    /// Why, 1 to 2000 characters; kept in the audit trail.
    pub reason: String,
}

/// The payout as changed.
#[derive(SimpleObject)]
pub struct PayoutPayload {
    /// The payout, with its new status.
    pub payout: Payout,
}

/// A hold to place on a payout.
#[derive(InputObject)]
pub struct PlacePayoutHoldInput {
    /// The payout; DRAFT, PENDING_APPROVAL or APPROVED.
    pub payout_id: ID,
    /// How much is held: more than 0 and at most the payout's amount.
    pub amount: Decimal,
    /// Why, 1 to 2000 characters.
    pub reason: String,
    /// The hold ends by itself at this time (in the future); leave it out for a hold that
    /// lasts until released.
    pub hold_until: Option<DateTime<Utc>>,
}

/// A hold to release.
#[derive(InputObject)]
pub struct ReleasePayoutHoldInput {
    /// The hold.
    pub hold_id: ID,
}

/// The hold and its payout.
#[derive(SimpleObject)]
pub struct PayoutHoldPayload {
    /// The hold as it is now.
    pub hold: PayoutHold,
    /// Its payout.
    pub payout: Payout,
}

/// Payout writes.
#[derive(Default)]
pub struct PayoutMutation;

impl PayoutMutation {
    async fn step(ctx: &Context<'_>, id: &ID, step: Step) -> Result<PayoutPayload> {
        let id = parse_id("payoutId", id)?;
        let payout = lifecycle::advance(&deps(ctx).db, actor(ctx)?, id, step).await?;
        Ok(PayoutPayload {
            payout: Payout(payout),
        })
    }
}

/// Payout writes.
#[Object]
impl PayoutMutation {
    /// Generates a promoter's DRAFT payout for a period (ADMIN or OWNER at the venue): every
    /// CONFIRMED commission, incentive reward and adjustment created in `[periodFrom,
    /// periodTo)` and in no live payout, plus a negative balance carried from before. A
    /// negative total creates nothing (CARRIED_NEGATIVE). Generating again for the same
    /// period returns the same payout unless it FAILED.
    async fn generate_payout(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The promoter, venue, period and terms.")] input: GeneratePayoutInput,
    ) -> Result<GeneratePayoutPayload> {
        let request = generate::Request {
            venue_id: parse_id("venueId", &input.venue_id)?,
            promoter_id: parse_id("promoterId", &input.promoter_id)?,
            period_from: input.period_from,
            period_to: input.period_to,
            scheduled_for: input.scheduled_for,
            method: input.method,
            fees: input.fees,
            idempotency_key: input.idempotency_key,
        };
        let generated = generate::generate_payout(&deps(ctx).db, actor(ctx)?, request).await?;
        Ok(GeneratePayoutPayload {
            outcome: generated.outcome.into(),
            balance: Money::cents(generated.balance, &generated.currency),
            payout: generated.payout.map(Payout),
        })
    }

    /// Generates the payouts of every promoter of a venue for a period (ADMIN or OWNER), each
    /// with `generatePayout`'s rules and no fees; idempotent as a whole (again, it answers
    /// EXISTING for what it made and makes only what is missing).
    async fn generate_venue_payouts(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The venue and the period.")] input: GenerateVenuePayoutsInput,
    ) -> Result<GenerateVenuePayoutsPayload> {
        let venue = parse_id("venueId", &input.venue_id)?;
        let run = generate::generate_venue_payouts(
            &deps(ctx).db,
            actor(ctx)?,
            venue,
            (input.period_from, input.period_to),
            input.scheduled_for,
        )
        .await?;
        let count = |outcome: Outcome| {
            let n = run.results.iter().filter(|r| r.outcome == outcome).count();
            i32::try_from(n).unwrap_or(i32::MAX)
        };
        Ok(GenerateVenuePayoutsPayload {
            created: count(Outcome::Created),
            existing: count(Outcome::Existing),
            carried_negative: count(Outcome::CarriedNegative),
            nothing: count(Outcome::Nothing),
            results: run.results.into_iter().map(PayoutGeneration).collect(),
        })
    }

    /// DRAFT -> PENDING_APPROVAL (ADMIN or OWNER). Whoever submits cannot approve.
    async fn submit_payout(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The payout.")] input: PayoutStepInput,
    ) -> Result<PayoutPayload> {
        Self::step(ctx, &input.payout_id, Step::Submit).await
    }

    /// PENDING_APPROVAL -> APPROVED, by an ADMIN or OWNER of the venue who did not submit
    /// it (four eyes: FORBIDDEN for the submitter).
    async fn approve_payout(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The payout.")] input: PayoutStepInput,
    ) -> Result<PayoutPayload> {
        Self::step(ctx, &input.payout_id, Step::Approve).await
    }

    /// PENDING_APPROVAL or APPROVED -> DRAFT, with a reason (ADMIN or OWNER); the approval
    /// is cleared and it must be submitted again.
    async fn return_payout_to_draft(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The payout and why.")] input: ReturnPayoutToDraftInput,
    ) -> Result<PayoutPayload> {
        let step = Step::ReturnToDraft {
            reason: input.reason,
        };
        Self::step(ctx, &input.payout_id, step).await
    }

    /// APPROVED -> PROCESSING (ADMIN or OWNER): the payment is being made. CONFLICT while a
    /// hold is active (not released, `holdUntil` not passed).
    async fn start_payout_processing(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The payout.")] input: PayoutStepInput,
    ) -> Result<PayoutPayload> {
        Self::step(ctx, &input.payout_id, Step::StartProcessing).await
    }

    /// PROCESSING -> COMPLETED with the payment's reference (ADMIN or OWNER): its
    /// transactions become SETTLED.
    async fn complete_payout(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The payout and its payment reference.")] input: CompletePayoutInput,
    ) -> Result<PayoutPayload> {
        let step = Step::Complete {
            reference: input.reference,
        };
        Self::step(ctx, &input.payout_id, step).await
    }

    /// PROCESSING -> FAILED with a reason (ADMIN or OWNER): its transactions are released,
    /// so generating for the period again makes a new payout of them.
    async fn fail_payout(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The payout and why.")] input: FailPayoutInput,
    ) -> Result<PayoutPayload> {
        let step = Step::Fail {
            reason: input.reason,
        };
        Self::step(ctx, &input.payout_id, step).await
    }

    /// Places a hold on a payout not yet PROCESSING (ADMIN or OWNER): while it is active the
    /// payout cannot start processing. At most 20 active holds per payout.
    async fn place_payout_hold(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The payout, amount, reason and end.")] input: PlacePayoutHoldInput,
    ) -> Result<PayoutHoldPayload> {
        let request = HoldRequest {
            payout_id: parse_id("payoutId", &input.payout_id)?,
            amount: input.amount,
            reason: input.reason,
            hold_until: input.hold_until,
        };
        let (hold, payout) = lifecycle::place_hold(&deps(ctx).db, actor(ctx)?, request).await?;
        let currency = payout.currency.clone();
        Ok(PayoutHoldPayload {
            hold: PayoutHold(hold, currency),
            payout: Payout(payout),
        })
    }

    /// Releases a hold (ADMIN or OWNER); CONFLICT when it was released already.
    async fn release_payout_hold(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The hold.")] input: ReleasePayoutHoldInput,
    ) -> Result<PayoutHoldPayload> {
        let id = parse_id("holdId", &input.hold_id)?;
        let (hold, payout) = lifecycle::release_hold(&deps(ctx).db, actor(ctx)?, id).await?;
        let currency = payout.currency.clone();
        Ok(PayoutHoldPayload {
            hold: PayoutHold(hold, currency),
            payout: Payout(payout),
        })
    }
}
