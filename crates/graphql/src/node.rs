//! Relay's `Node` interface: `node(id:)` and `nodes(ids:)` refetch an object by its id
//! alone. The ids are the objects' own (UUIDs, unchanged), which are unique across every
//! table, so an id names one object whatever its type.
//!
//! A round of lookups takes two steps, each through the request's loaders: which table
//! each id names ([`prima_service::identify`], one statement for every id of the round),
//! then each object through its type's loader and so the same access rules as every other
//! read (one statement per type found). The statements grow with the types asked for,
//! never with the ids. An object that does not exist or that the caller may not see is
//! null, never an error; a malformed id is BAD_USER_INPUT.

use async_graphql::{Context, ID, Interface, Object};
use prima_service::identify::Kind;
use uuid::Uuid;

use crate::bookings::{Booking, BookingHistoryEntry};
use crate::commissions::{CommissionAssignment, CommissionRate};
use crate::context::loader;
use crate::error::{Result, parse_id};
use crate::guests::Guest;
use crate::incentives::{Incentive, IncentiveProgress};
use crate::ledger::Transaction;
use crate::loaders::{
    BookingId, CommissionAssignmentId, CommissionRateId, GuestId, HistoryEntryId, IncentiveId,
    KindOf, PayoutAuditId, PayoutHoldId, PayoutId, PayoutItemId, ProgressId, PromoterId,
    TransactionId, UserId, VenueId, VenuePricingId,
};
use crate::payouts::{Payout, PayoutAuditEntry, PayoutHold, PayoutItem};
use crate::promoters::Promoter;
use crate::users::User;
use crate::venues::{Venue, VenuePricing};

/// Most ids of one `nodes` call (the bound the query cost counts with).
pub const MAX_NODES: u64 = 100;

/// An object with an id that `node(id:)` finds again (Relay's Node).
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID", desc = "Unique identifier."))]
pub enum Node {
    /// A venue.
    Venue(Venue),
    /// One of a venue's pricing rows.
    VenuePricing(VenuePricing),
    /// A booking.
    Booking(Booking),
    /// An entry of a booking's history.
    BookingHistoryEntry(BookingHistoryEntry),
    /// A guest.
    Guest(Guest),
    /// A promoter.
    Promoter(Promoter),
    /// A commission rate.
    CommissionRate(CommissionRate),
    /// A promoter's commission assignment.
    CommissionAssignment(CommissionAssignment),
    /// A ledger transaction.
    Transaction(Transaction),
    /// A payout.
    Payout(Payout),
    /// A transaction a payout pays.
    PayoutItem(PayoutItem),
    /// A hold on a payout.
    PayoutHold(PayoutHold),
    /// A status change of a payout.
    PayoutAuditEntry(PayoutAuditEntry),
    /// An incentive programme.
    Incentive(Incentive),
    /// A promoter's progress in a programme.
    IncentiveProgress(IncentiveProgress),
    /// A user.
    User(User),
}

/// The root fields of Relay's object identification.
#[derive(Default)]
pub struct NodeQuery;

#[Object]
impl NodeQuery {
    /// The object with this id, of any type that implements `Node`; null when there is
    /// none or you may not see it.
    async fn node(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The object's id.")] id: ID,
    ) -> Result<Option<Node>> {
        find(ctx, parse_id("id", &id)?).await
    }

    /// The objects with these ids, in the same order (at most 100 ids); each null when
    /// there is none or you may not see it.
    async fn nodes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The objects' ids.")] ids: Vec<ID>,
    ) -> Result<Vec<Option<Node>>> {
        if ids.len() as u64 > MAX_NODES {
            return Err(crate::error::ApiError(prima_service::Error::invalid(
                "ids",
                format!("at most {MAX_NODES} ids"),
            )));
        }
        let ids = ids
            .iter()
            .map(|id| parse_id("ids", id))
            .collect::<Result<Vec<_>>>()?;
        futures::future::try_join_all(ids.into_iter().map(|id| find(ctx, id))).await
    }
}

/// The object `id` names: its table first, then the object through that table's loader
/// (the request's batcher sends one statement per step for all the ids of the round).
async fn find(ctx: &Context<'_>, id: Uuid) -> Result<Option<Node>> {
    let loader = loader(ctx)?;
    let Some(kind) = loader.load_one(KindOf(id)).await? else {
        return Ok(None);
    };
    Ok(match kind {
        Kind::Venue => loader
            .load_one(VenueId(id))
            .await?
            .map(|row| Node::Venue(Venue(row))),
        Kind::VenuePricing => loader
            .load_one(VenuePricingId(id))
            .await?
            .map(|(row, currency)| Node::VenuePricing(VenuePricing(row, currency))),
        Kind::Booking => loader
            .load_one(BookingId(id))
            .await?
            .map(|row| Node::Booking(Booking(row))),
        Kind::BookingHistoryEntry => loader
            .load_one(HistoryEntryId(id))
            .await?
            .map(|row| Node::BookingHistoryEntry(BookingHistoryEntry(row))),
        Kind::Guest => loader
            .load_one(GuestId(id))
            .await?
            .map(|view| Node::Guest(Guest::from(view))),
        Kind::Promoter => loader
            .load_one(PromoterId(id))
            .await?
            .map(|row| Node::Promoter(Promoter(row))),
        Kind::CommissionRate => loader
            .load_one(CommissionRateId(id))
            .await?
            .map(|row| Node::CommissionRate(CommissionRate(row))),
        Kind::CommissionAssignment => loader
            .load_one(CommissionAssignmentId(id))
            .await?
            .map(|row| Node::CommissionAssignment(CommissionAssignment(row))),
        Kind::Transaction => loader
            .load_one(TransactionId(id))
            .await?
            .map(|row| Node::Transaction(Transaction(row))),
        Kind::Payout => loader
            .load_one(PayoutId(id))
            .await?
            .map(|row| Node::Payout(Payout(row))),
        Kind::PayoutItem => loader
            .load_one(PayoutItemId(id))
            .await?
            .map(|(row, currency)| Node::PayoutItem(PayoutItem(row, currency))),
        Kind::PayoutHold => loader
            .load_one(PayoutHoldId(id))
            .await?
            .map(|(row, currency)| Node::PayoutHold(PayoutHold(row, currency))),
        Kind::PayoutAuditEntry => loader
            .load_one(PayoutAuditId(id))
            .await?
            .map(|row| Node::PayoutAuditEntry(PayoutAuditEntry(row))),
        Kind::Incentive => loader
            .load_one(IncentiveId(id))
            .await?
            .map(|row| Node::Incentive(Incentive(row))),
        Kind::IncentiveProgress => loader.load_one(ProgressId(id)).await?.map(|row| {
            Node::IncentiveProgress(IncentiveProgress {
                row,
                rank: None,
                promoter: None,
            })
        }),
        Kind::User => loader
            .load_one(UserId(id))
            .await?
            .map(|row| Node::User(User(row))),
    })
}
