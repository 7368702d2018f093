//! Relay's `Node` interface: `node(id:)` and `nodes(ids:)` refetch an object by its id
//! alone. The ids are the objects' own (UUIDs, unchanged), which are unique across every
//! table, so an id names one object whatever its type.
//!
//! An id is looked up in every table of the interface at once, through the request's
//! loaders and so the same access rules as every other read: one round of one statement
//! per type, however many ids `nodes` asks for. An object that does not exist or that the
//! caller may not see is null, never an error; a malformed id is BAD_USER_INPUT.

use async_graphql::{Context, ID, Interface, Object};
use uuid::Uuid;

use crate::bookings::Booking;
use crate::commissions::CommissionRate;
use crate::context::loader;
use crate::error::{Result, parse_id};
use crate::guests::Guest;
use crate::incentives::Incentive;
use crate::ledger::Transaction;
use crate::loaders::{
    BookingId, CommissionRateId, GuestId, IncentiveId, PayoutId, PromoterId, TransactionId, UserId,
    VenueId,
};
use crate::payouts::Payout;
use crate::promoters::Promoter;
use crate::users::User;
use crate::venues::Venue;

/// Most ids of one `nodes` call (the bound the query cost counts with).
pub const MAX_NODES: u64 = 100;

/// An object with an id that `node(id:)` finds again (Relay's Node).
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID", desc = "Unique identifier."))]
pub enum Node {
    /// A venue.
    Venue(Venue),
    /// A booking.
    Booking(Booking),
    /// A guest.
    Guest(Guest),
    /// A promoter.
    Promoter(Promoter),
    /// A commission rate.
    CommissionRate(CommissionRate),
    /// A ledger transaction.
    Transaction(Transaction),
    /// A payout.
    Payout(Payout),
    /// An incentive programme.
    Incentive(Incentive),
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

/// The object `id` names, asked of every type at once (the request's batcher sends one
/// statement per type for all the ids of the round).
async fn find(ctx: &Context<'_>, id: Uuid) -> Result<Option<Node>> {
    let loader = loader(ctx)?;
    let (venue, booking, guest, promoter, rate, transaction, payout, incentive, user) = futures::try_join!(
        loader.load_one(VenueId(id)),
        loader.load_one(BookingId(id)),
        loader.load_one(GuestId(id)),
        loader.load_one(PromoterId(id)),
        loader.load_one(CommissionRateId(id)),
        loader.load_one(TransactionId(id)),
        loader.load_one(PayoutId(id)),
        loader.load_one(IncentiveId(id)),
        loader.load_one(UserId(id)),
    )?;
    Ok(venue
        .map(|row| Node::Venue(Venue(row)))
        .or_else(|| booking.map(|row| Node::Booking(Booking(row))))
        .or_else(|| guest.map(|view| Node::Guest(Guest::from(view))))
        .or_else(|| promoter.map(|row| Node::Promoter(Promoter(row))))
        .or_else(|| rate.map(|row| Node::CommissionRate(CommissionRate(row))))
        .or_else(|| transaction.map(|row| Node::Transaction(Transaction(row))))
        .or_else(|| payout.map(|row| Node::Payout(Payout(row))))
        .or_else(|| incentive.map(|row| Node::Incentive(Incentive(row))))
        .or_else(|| user.map(|row| Node::User(User(row)))))
}
