//! The bank file: a venue's payouts, one row each with the promoter, for finance teams who
//! pay from a file (`GET /exports/payouts.csv`). Financial reads at the venue (MANAGER or
//! above); read in keyset pages so the export streams whatever the number of payouts.

use chrono::{DateTime, Utc};
use prima_entity::enums::PayoutStatus;
use prima_entity::{payouts, promoters};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::access::{Actor, Capability};
use crate::error::Result;

/// Rows read per statement.
pub const PAGE: u64 = 500;

/// One payout of the file, with its promoter.
#[derive(Debug, Clone)]
pub struct ExportRow {
    /// The payout.
    pub payout: payouts::Model,
    /// Its promoter (none for a payout without one).
    pub promoter: Option<promoters::Model>,
}

/// Where the next page starts: after this payout in the file's order (oldest period first,
/// then id).
pub type Cursor = (DateTime<Utc>, Uuid);

/// Checks that the caller may export the venue's payouts: NOT_FOUND when they cannot see
/// the venue, FORBIDDEN below financial reads.
pub fn allowed(actor: &Actor, venue_id: Uuid) -> Result<()> {
    actor.require(venue_id, Capability::ReadFinancial)
}

/// A page of the venue's payouts in one of `statuses` (any when empty), oldest period
/// first, after `after`; the caller must pass [`allowed`] (checked again here, in SQL).
pub async fn page(
    db: &impl ConnectionTrait,
    actor: &Actor,
    venue_id: Uuid,
    statuses: &[PayoutStatus],
    after: Option<Cursor>,
) -> Result<Vec<ExportRow>> {
    allowed(actor, venue_id)?;
    let mut query = payouts::Entity::find()
        .find_also_related(promoters::Entity)
        .filter(payouts::Column::VenueId.eq(venue_id))
        .filter(
            actor
                .venues_where(Capability::ReadFinancial)
                .condition((payouts::Entity, payouts::Column::VenueId)),
        );
    if !statuses.is_empty() {
        query = query.filter(payouts::Column::Status.is_in(statuses.iter().copied()));
    }
    if let Some((from, id)) = after {
        query = query.filter(
            Condition::any()
                .add(payouts::Column::PeriodFrom.gt(from))
                .add(
                    Condition::all()
                        .add(payouts::Column::PeriodFrom.eq(from))
                        .add(payouts::Column::Id.gt(id)),
                ),
        );
    }
    let rows = query
        .order_by_asc(payouts::Column::PeriodFrom)
        .order_by_asc(payouts::Column::Id)
        .limit(PAGE)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(payout, promoter)| ExportRow { payout, promoter })
        .collect())
}
