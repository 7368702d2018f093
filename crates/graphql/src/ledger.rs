//! The ledger: the `Transaction` type and `Booking.transactions`. Visible to MANAGER or
//! above at the venue (financial reads).

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};
use prima_entity::enums::{PromoterTier, TransactionStatus, TransactionType};
use prima_entity::transactions;
use prima_service::money;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::bookings::Booking;
use crate::context::loader;
use crate::error::{ApiError, Result};
use crate::incentives::Incentive;
use crate::loaders::{BookingId, IncentiveId, PayoutId, TransactionId, TransactionsOf};
use crate::payouts::Payout;
use crate::promoters::{Promoter, promoter_by_id};
use crate::scalars::Money;
use crate::venues::{Venue, venue_by_id};

/// The GraphQL `Transaction` type; its schema description is on the `#[Object]` impl.
#[derive(Clone)]
pub struct Transaction(pub transactions::Model);

/// One entry of the append-only ledger: a fee, commission, refund, adjustment or incentive
/// reward. Amounts never change after they are written; corrections are new ADJUSTMENT
/// entries.
#[Object]
impl Transaction {
    /// Unique identifier.
    pub(crate) async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The booking this entry belongs to; null for INCENTIVE_PAYOUT and standalone
    /// ADJUSTMENT entries.
    async fn booking(&self, ctx: &Context<'_>) -> Result<Option<Booking>> {
        Ok(match self.0.booking_id {
            Some(id) => loader(ctx)?.load_one(BookingId(id)).await?.map(Booking),
            None => None,
        })
    }
    /// The promoter credited or debited, if any.
    async fn promoter(&self, ctx: &Context<'_>) -> Result<Option<Promoter>> {
        match self.0.promoter_id {
            Some(id) => promoter_by_id(ctx, id).await,
            None => Ok(None),
        }
    }
    /// The venue of the entry.
    async fn venue(&self, ctx: &Context<'_>) -> Result<Venue> {
        venue_by_id(ctx, self.0.venue_id).await
    }
    /// What kind of entry this is.
    async fn r#type(&self) -> TransactionType {
        self.0.r#type
    }
    /// The amount; negative for refunds and clawbacks.
    async fn amount(&self) -> Money {
        Money::cents(self.0.amount, &self.0.currency)
    }
    /// ISO 4217 currency of the amount (the venue's).
    async fn currency(&self) -> &str {
        &self.0.currency
    }
    /// What the entry is for.
    async fn description(&self) -> &str {
        &self.0.description
    }
    /// PROMOTER_COMMISSION: the rate applied, with the meaning of `CommissionRate.value`.
    async fn commission_rate(&self) -> Option<Decimal> {
        self.0.commission_rate.map(money::rate)
    }
    /// PROMOTER_COMMISSION: the commission computed.
    async fn commission_amount(&self) -> Option<Money> {
        self.0
            .commission_amount
            .map(|cents| Money::cents(cents, &self.0.currency))
    }
    /// PROMOTER_COMMISSION: the promoter's tier when it was computed.
    async fn commission_tier(&self) -> Option<PromoterTier> {
        self.0.commission_tier
    }
    /// Where the entry is in its processing.
    async fn status(&self) -> TransactionStatus {
        self.0.status
    }
    /// When it was processed.
    async fn processed_at(&self) -> Option<DateTime<Utc>> {
        self.0.processed_at
    }
    /// When it was paid out (SETTLED).
    async fn settled_at(&self) -> Option<DateTime<Utc>> {
        self.0.settled_at
    }
    /// Reference of the payment provider, if any.
    async fn external_transaction_id(&self) -> Option<&str> {
        self.0.external_transaction_id.as_deref()
    }
    /// The payout that pays this entry, once it is in one.
    async fn payout(&self, ctx: &Context<'_>) -> Result<Option<Payout>> {
        Ok(match self.0.payout_id {
            Some(id) => loader(ctx)?.load_one(PayoutId(id)).await?.map(Payout),
            None => None,
        })
    }
    /// The entry this one reverses (a clawback points at the commission it claws back).
    async fn reverses(&self, ctx: &Context<'_>) -> Result<Option<Transaction>> {
        Ok(match self.0.reverses_transaction_id {
            Some(id) => loader(ctx)?
                .load_one(TransactionId(id))
                .await?
                .map(Transaction),
            None => None,
        })
    }
    /// INCENTIVE_PAYOUT: the programme whose reward this is.
    async fn incentive(&self, ctx: &Context<'_>) -> Result<Option<Incentive>> {
        Ok(match self.0.incentive_id {
            Some(id) => loader(ctx)?.load_one(IncentiveId(id)).await?.map(Incentive),
            None => None,
        })
    }
    /// When the entry was written.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When its status last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// `Booking.transactions`: the booking's ledger entries, oldest first; FORBIDDEN when
/// your role at the booking's venue may not see financial data (the service reads the
/// booking's venue in the same statement as its transactions to decide).
pub async fn booking_transactions(ctx: &Context<'_>, booking_id: Uuid) -> Result<Vec<Transaction>> {
    match loader(ctx)?.load_one(TransactionsOf(booking_id)).await? {
        Some(list) => Ok(list?.into_iter().map(Transaction).collect()),
        None => Err(ApiError(prima_service::Error::NotFound { what: "booking" })),
    }
}
