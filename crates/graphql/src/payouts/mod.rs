//! Payouts: the `payout` query, `Venue.payouts` and `Promoter.payouts` (filtered), the
//! `Payout` type with its items, holds, audit trail and statement, and a promoter's
//! balance. Visible to MANAGER or above at the venue (financial reads). The writes are in
//! [`mutation`].

pub mod mutation;

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use prima_entity::enums::{PayoutMethod, PayoutStatus, TransactionType};
use prima_entity::{payout_audit, payout_holds, payout_items, payouts};
use prima_service::access;
use uuid::Uuid;

use crate::connection::{Conn, PageRequest, nested, nested_connection};
use crate::context::{actor, loader};
use crate::error::{ApiError, Result, parse_id};
use crate::ledger::Transaction;
use crate::loaders::{PayoutId, StatementOf, TransactionId, UserId};
use crate::promoters::{Promoter, promoter_by_id};
use crate::scalars::Money;
use crate::users::User;
use crate::venues::{Venue, venue_by_id};

/// The GraphQL `Payout` type; its schema description is on the `#[Object]` impl.
#[derive(Clone)]
pub struct Payout(pub payouts::Model);

/// A user by id through the dataloader; null when you may not see them.
async fn user(ctx: &Context<'_>, id: Option<Uuid>) -> Result<Option<User>> {
    Ok(match id {
        Some(id) => loader(ctx)?.load_one(UserId(id)).await?.map(User),
        None => None,
    })
}

impl Payout {
    /// One of the payout's amounts, for a caller with financial reads at its venue (the
    /// service's field rule, [`prima_service::access::financial`]).
    fn money(&self, ctx: &Context<'_>, cents: i64) -> Result<Money> {
        let cents = access::financial(actor(ctx)?, self.0.venue_id, cents)?;
        Ok(Money::cents(cents, &self.0.currency))
    }
}

/// A payment to a promoter at one venue for a period `[periodFrom, periodTo)`, built from
/// their earned transactions: `amount = commissions + incentives + adjustments - fees`.
#[Object]
impl Payout {
    /// Unique identifier.
    pub(crate) async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The venue that pays.
    async fn venue(&self, ctx: &Context<'_>) -> Result<Venue> {
        venue_by_id(ctx, self.0.venue_id).await
    }
    /// The promoter paid.
    async fn promoter(&self, ctx: &Context<'_>) -> Result<Option<Promoter>> {
        match self.0.promoter_id {
            Some(id) => promoter_by_id(ctx, id).await,
            None => Ok(None),
        }
    }
    /// What is paid: commissions + incentives + adjustments - fees.
    async fn amount(&self, ctx: &Context<'_>) -> Result<Money> {
        self.money(ctx, self.0.amount)
    }
    /// ISO 4217 currency of every amount of the payout (the venue's).
    async fn currency(&self) -> &str {
        &self.0.currency
    }
    /// Start of the period (inclusive).
    async fn period_from(&self) -> DateTime<Utc> {
        self.0.period_from
    }
    /// End of the period (exclusive).
    async fn period_to(&self) -> DateTime<Utc> {
        self.0.period_to
    }
    /// Where the payout is in its approval and payment.
    async fn status(&self) -> PayoutStatus {
        self.0.status
    }
    /// When the payment is planned.
    async fn scheduled_for(&self) -> DateTime<Utc> {
        self.0.scheduled_for
    }
    /// When the payment was made.
    async fn processed_at(&self) -> Option<DateTime<Utc>> {
        self.0.processed_at
    }
    /// Sum of the PROMOTER_COMMISSION items.
    async fn commissions_amount(&self, ctx: &Context<'_>) -> Result<Money> {
        self.money(ctx, self.0.commissions_amount)
    }
    /// Sum of the INCENTIVE_PAYOUT items.
    async fn incentives_amount(&self, ctx: &Context<'_>) -> Result<Money> {
        self.money(ctx, self.0.incentives_amount)
    }
    /// Sum of the ADJUSTMENT items; negative when clawbacks exceed other adjustments.
    async fn adjustments_amount(&self, ctx: &Context<'_>) -> Result<Money> {
        self.money(ctx, self.0.adjustments_amount)
    }
    /// Fees deducted.
    async fn fees_amount(&self, ctx: &Context<'_>) -> Result<Money> {
        self.money(ctx, self.0.fees_amount)
    }
    /// How the promoter is paid.
    async fn method(&self) -> PayoutMethod {
        self.0.method
    }
    /// Payment reference.
    async fn reference(&self) -> Option<&str> {
        self.0.reference.as_deref()
    }
    /// Who approved the payout; null until approved, or when you may not see that user.
    async fn approved_by(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        user(ctx, self.0.approved_by).await
    }
    /// When it was approved.
    async fn approved_at(&self) -> Option<DateTime<Utc>> {
        self.0.approved_at
    }
    /// When the payout was generated.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the payout last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// The transactions this payout pays, oldest first (a payout can pay thousands: paged).
    async fn items(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Return the first n items (at most 100, default 20).")] first: Option<i32>,
        #[graphql(desc = "Return items after this cursor.")] after: Option<String>,
        #[graphql(desc = "Return the last n items (at most 100).")] last: Option<i32>,
        #[graphql(desc = "Return items before this cursor.")] before: Option<String>,
    ) -> Result<Conn<PayoutItem>> {
        let page = PageRequest::of(ctx, first, after, last, before);
        let currency = &self.0.currency;
        nested(ctx, self.0.id, PayoutItems { page }, |item| {
            PayoutItem(item, currency.clone())
        })
        .await
    }
    /// Holds on this payout, released ones included, oldest first. An active hold stops
    /// the payout from moving to PROCESSING.
    async fn holds(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Return the first n holds (at most 100, default 20).")] first: Option<i32>,
        #[graphql(desc = "Return holds after this cursor.")] after: Option<String>,
        #[graphql(desc = "Return the last n holds (at most 100).")] last: Option<i32>,
        #[graphql(desc = "Return holds before this cursor.")] before: Option<String>,
    ) -> Result<Conn<PayoutHold>> {
        let page = PageRequest::of(ctx, first, after, last, before);
        let currency = &self.0.currency;
        nested(ctx, self.0.id, PayoutHolds { page }, |hold| {
            PayoutHold(hold, currency.clone())
        })
        .await
    }
    /// Every status change of this payout, oldest first.
    async fn audit(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Return the first n entries (at most 100, default 20).")] first: Option<
            i32,
        >,
        #[graphql(desc = "Return entries after this cursor.")] after: Option<String>,
        #[graphql(desc = "Return the last n entries (at most 100).")] last: Option<i32>,
        #[graphql(desc = "Return entries before this cursor.")] before: Option<String>,
    ) -> Result<Conn<PayoutAuditEntry>> {
        let page = PageRequest::of(ctx, first, after, last, before);
        nested(ctx, self.0.id, PayoutAudit { page }, PayoutAuditEntry).await
    }
    /// How the amount was reached: the items summed by kind (commissions, incentive
    /// rewards, adjustments and clawbacks of the period, a negative balance carried from
    /// before it), minus fees.
    async fn statement(&self, ctx: &Context<'_>) -> Result<PayoutStatement> {
        let found = loader(ctx)?.load_one(StatementOf(self.0.id)).await?;
        let statement = found.ok_or(ApiError(prima_service::Error::NotFound { what: "payout" }))?;
        let currency = &self.0.currency;
        Ok(PayoutStatement {
            lines: statement
                .lines
                .into_iter()
                .map(|line| StatementLine {
                    kind: line.kind.into(),
                    count: i32::try_from(line.count).unwrap_or(i32::MAX),
                    amount: Money::cents(line.amount, currency),
                })
                .collect(),
            amount: Money::cents(statement.amount, currency),
        })
    }
}

/// What a statement line sums.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "prima_service::payouts::balance::LineKind")]
pub enum StatementLineKind {
    /// PROMOTER_COMMISSION transactions created in the period.
    Commissions,
    /// INCENTIVE_PAYOUT transactions (programme rewards) created in the period.
    Incentives,
    /// ADJUSTMENT transactions of the period that reverse nothing.
    Adjustments,
    /// ADJUSTMENT transactions of the period clawing back the commission of a refunded
    /// booking (negative).
    Clawbacks,
    /// Unpaid transactions from before the period that added up to a negative balance, which
    /// this payout deducts (negative).
    CarriedBalance,
    /// The payout's fees (negative).
    Fees,
}

/// One line of a payout statement.
#[derive(SimpleObject)]
pub struct StatementLine {
    /// What it sums.
    pub kind: StatementLineKind,
    /// How many items it sums (0 for fees).
    pub count: i32,
    /// Their sum; negative for clawbacks, a carried balance and fees.
    pub amount: Money,
}

/// How a payout's amount was reached: its lines add up to `amount`. The items themselves,
/// with their bookings, are `Payout.items`.
#[derive(SimpleObject)]
pub struct PayoutStatement {
    /// Non-empty lines: commissions, incentives, adjustments, clawbacks, carried balance,
    /// fees, in that order.
    pub lines: Vec<StatementLine>,
    /// The payout's amount, the sum of the lines.
    pub amount: Money,
}

/// What a promoter is owed and has been paid at their venue.
#[derive(SimpleObject)]
pub struct PromoterBalance {
    /// Commissions and rewards of bookings that have not happened yet (PENDING).
    pub pending: Money,
    /// Earned (CONFIRMED) and in no payout yet, net of clawbacks; 0 when that is negative.
    pub earned_unpaid: Money,
    /// A negative unpaid total (clawbacks of refunded bookings larger than what is owed),
    /// which the next payout deducts; 0 otherwise.
    pub carried_negative: Money,
    /// In payouts generated and not yet completed.
    pub in_payout: Money,
    /// Sent by completed payouts, after their fees.
    pub paid: Money,
}

impl From<prima_service::payouts::balance::Balance> for PromoterBalance {
    fn from(b: prima_service::payouts::balance::Balance) -> Self {
        let money = |cents| Money::cents(cents, &b.currency);
        PromoterBalance {
            pending: money(b.pending),
            earned_unpaid: money(b.earned_unpaid),
            carried_negative: money(b.carried_negative),
            in_payout: money(b.in_payout),
            paid: money(b.paid),
        }
    }
}

/// Which payouts a list shows; every given filter must match.
#[derive(InputObject, Default)]
pub struct PayoutFilterInput {
    /// Only these statuses.
    pub statuses: Option<Vec<PayoutStatus>>,
    /// Only payouts whose period starts at or after this.
    pub period_from: Option<DateTime<Utc>>,
    /// Only payouts whose period ends at or before this.
    pub period_to: Option<DateTime<Utc>>,
    /// Only payouts scheduled at or after this.
    pub scheduled_from: Option<DateTime<Utc>>,
    /// Only payouts scheduled before this.
    pub scheduled_to: Option<DateTime<Utc>>,
}

/// A payout list's query from its field's arguments.
pub fn payout_query(
    filter: Option<PayoutFilterInput>,
    page: PageRequest,
) -> prima_service::payouts::PayoutListQuery {
    let filter = filter.unwrap_or_default();
    let mut statuses = filter.statuses.unwrap_or_default();
    statuses.sort_by_key(|s| s.to_string());
    statuses.dedup();
    prima_service::payouts::PayoutListQuery {
        filter: prima_service::payouts::PayoutFilter {
            statuses,
            period_from: filter.period_from,
            period_to: filter.period_to,
            scheduled_from: filter.scheduled_from,
            scheduled_to: filter.scheduled_to,
        },
        page: page.page,
        with_total: page.with_total,
    }
}

nested_connection!(
    /// A payout's items.
    PayoutItems => payout_items::Model, prima_service::payouts::item_pages
);
nested_connection!(
    /// A payout's holds.
    PayoutHolds => payout_holds::Model, prima_service::payouts::hold_pages
);
nested_connection!(
    /// A payout's audit entries.
    PayoutAudit => payout_audit::Model, prima_service::payouts::audit_pages
);

/// The GraphQL `PayoutItem` type; its schema description is on the `#[Object]` impl.
#[derive(Clone)]
pub struct PayoutItem(pub payout_items::Model, pub String);

/// One transaction a payout pays, with a copy of its amount and type.
#[Object]
impl PayoutItem {
    /// Unique identifier.
    pub(crate) async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The transaction paid.
    async fn transaction(&self, ctx: &Context<'_>) -> Result<Option<Transaction>> {
        Ok(loader(ctx)?
            .load_one(TransactionId(self.0.transaction_id))
            .await?
            .map(Transaction))
    }
    /// The transaction's amount; may be negative (a clawback).
    async fn amount(&self) -> Money {
        Money::cents(self.0.amount, &self.1)
    }
    /// The transaction's type.
    async fn r#type(&self) -> TransactionType {
        self.0.r#type
    }
    /// When the item was added.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// The GraphQL `PayoutHold` type; its schema description is on the `#[Object]` impl.
#[derive(Clone)]
pub struct PayoutHold(pub payout_holds::Model, pub String);

/// A hold that stops a payout from being processed until it is released or `holdUntil`
/// passes.
#[Object]
impl PayoutHold {
    /// Unique identifier.
    pub(crate) async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The amount held.
    async fn amount(&self) -> Money {
        Money::cents(self.0.amount, &self.1)
    }
    /// Why the payout is held.
    async fn reason(&self) -> &str {
        &self.0.reason
    }
    /// The hold ends by itself at this time; null: only when released.
    async fn hold_until(&self) -> Option<DateTime<Utc>> {
        self.0.hold_until
    }
    /// Whether the hold blocks the payout now: not released, and `holdUntil` null or in
    /// the future.
    async fn active(&self) -> bool {
        prima_service::payouts::hold_is_active(&self.0, prima_service::time::now())
    }
    /// Who placed the hold; null when you may not see that user.
    async fn created_by(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        user(ctx, Some(self.0.created_by)).await
    }
    /// When the hold was placed.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Who released the hold; null while held, or when you may not see that user.
    async fn released_by(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        user(ctx, self.0.released_by).await
    }
    /// When the hold was released.
    async fn released_at(&self) -> Option<DateTime<Utc>> {
        self.0.released_at
    }
}

/// The GraphQL `PayoutAuditEntry` type; its schema description is on the `#[Object]` impl.
#[derive(Clone)]
pub struct PayoutAuditEntry(pub payout_audit::Model);

/// One status change of a payout: who, when, from, to.
#[Object]
impl PayoutAuditEntry {
    /// Unique identifier.
    pub(crate) async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The status before; null for the creation of the payout.
    async fn from_status(&self) -> Option<PayoutStatus> {
        self.0.from_status
    }
    /// The status after.
    async fn to_status(&self) -> PayoutStatus {
        self.0.to_status
    }
    /// Who made the change; null for the system, or when you may not see that user.
    async fn performed_by(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        user(ctx, self.0.performed_by).await
    }
    /// Why, when a reason was given.
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }
    /// When the change happened.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

nested_connection!(
    /// `Venue.payouts`: the venue's payouts, newest period first; FORBIDDEN below MANAGER.
    VenuePayouts(prima_service::payouts::PayoutListQuery) => payouts::Model,
    prima_service::payouts::pages_by_venue
);
nested_connection!(
    /// `Promoter.payouts`: the promoter's payouts, newest period first.
    PromoterPayouts(prima_service::payouts::PayoutListQuery) => payouts::Model,
    prima_service::payouts::pages_by_promoter
);

/// Payout queries.
#[derive(Default)]
pub struct PayoutQuery;

/// Payout queries.
#[Object]
impl PayoutQuery {
    /// One payout by id; NOT_FOUND when it does not exist or your role at its venue may
    /// not see financial data (MANAGER or above).
    async fn payout(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The payout's id.")] id: ID,
    ) -> Result<Payout> {
        let id = parse_id("id", &id)?;
        loader(ctx)?
            .load_one(PayoutId(id))
            .await?
            .map(Payout)
            .ok_or(ApiError(prima_service::Error::NotFound { what: "payout" }))
    }
}
