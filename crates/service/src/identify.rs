//! Which table an id names. Every id is a random UUID, unique across the tables, so an id
//! alone names one row of one table: Relay's `node(id:)` asks here first (one statement
//! for every id of a round), then reads each row through its table's own by-id read and
//! access rules. A kind says nothing a caller may not know: an object the caller may not
//! see answers null, as one that does not exist does.

use std::collections::HashMap;

use prima_entity::{
    booking_history, bookings, commission_assignments, commission_rates, guests,
    incentive_progress, incentives, payout_audit, payout_holds, payout_items, payouts, promoters,
    transactions, users, venue_pricing, venues,
};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query, SelectStatement, UnionType};
use sea_orm::{ConnectionTrait, EntityName};
use uuid::Uuid;

use crate::error::Result;

/// A table whose rows have an id of their own that a client may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A venue.
    Venue,
    /// One of a venue's pricing rows.
    VenuePricing,
    /// A booking.
    Booking,
    /// An entry of a booking's history.
    BookingHistoryEntry,
    /// A guest.
    Guest,
    /// A promoter.
    Promoter,
    /// A commission rate.
    CommissionRate,
    /// A promoter's commission assignment.
    CommissionAssignment,
    /// A ledger transaction.
    Transaction,
    /// A payout.
    Payout,
    /// A transaction a payout pays.
    PayoutItem,
    /// A hold on a payout.
    PayoutHold,
    /// A status change of a payout.
    PayoutAuditEntry,
    /// An incentive programme.
    Incentive,
    /// A promoter's progress in a programme.
    IncentiveProgress,
    /// A user.
    User,
}

/// The name of a table.
type TableName = fn() -> &'static str;

/// Every kind, with its table.
const TABLES: [(Kind, TableName); 16] = [
    (Kind::Venue, || venues::Entity.table_name()),
    (Kind::VenuePricing, || venue_pricing::Entity.table_name()),
    (Kind::Booking, || bookings::Entity.table_name()),
    (Kind::BookingHistoryEntry, || {
        booking_history::Entity.table_name()
    }),
    (Kind::Guest, || guests::Entity.table_name()),
    (Kind::Promoter, || promoters::Entity.table_name()),
    (Kind::CommissionRate, || {
        commission_rates::Entity.table_name()
    }),
    (Kind::CommissionAssignment, || {
        commission_assignments::Entity.table_name()
    }),
    (Kind::Transaction, || transactions::Entity.table_name()),
    (Kind::Payout, || payouts::Entity.table_name()),
    (Kind::PayoutItem, || payout_items::Entity.table_name()),
    (Kind::PayoutHold, || payout_holds::Entity.table_name()),
    (Kind::PayoutAuditEntry, || payout_audit::Entity.table_name()),
    (Kind::Incentive, || incentives::Entity.table_name()),
    (Kind::IncentiveProgress, || {
        incentive_progress::Entity.table_name()
    }),
    (Kind::User, || users::Entity.table_name()),
];

/// The most ids one statement asks about: each id is a parameter once per table, and
/// SQLite takes at most 32,766 parameters in one statement.
const IDS_PER_STATEMENT: usize = 2_000;

/// The kind of each of `ids` that names a row (unknown ids are absent): one `UNION ALL`
/// of primary-key lookups per 2,000 ids.
#[tracing::instrument(skip_all, fields(ids = ids.len()))]
pub async fn kinds(db: &impl ConnectionTrait, ids: &[Uuid]) -> Result<HashMap<Uuid, Kind>> {
    let mut found = HashMap::new();
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let rows = db.query_all(&lookup(chunk)).await?;
        for row in rows {
            let index: i32 = row.try_get("", "kind")?;
            let id: Uuid = row.try_get("", "id")?;
            if let Some((kind, _)) = usize::try_from(index).ok().and_then(|i| TABLES.get(i)) {
                found.insert(id, *kind);
            }
        }
    }
    Ok(found)
}

/// `SELECT <index> AS kind, id FROM <table> WHERE id IN (...)` for every table, as one
/// statement.
fn lookup(ids: &[Uuid]) -> SelectStatement {
    let select = |index: usize, table: &'static str| {
        let mut select = Query::select();
        select
            .expr_as(Expr::cust(index.to_string()), Alias::new("kind"))
            .column(Alias::new("id"))
            .from(Alias::new(table))
            .and_where(Expr::col(Alias::new("id")).is_in(ids.iter().copied()));
        select
    };
    let mut statement = select(0, TABLES[0].1());
    for (index, (_, table)) in TABLES.iter().enumerate().skip(1) {
        statement.union(UnionType::All, select(index, table()));
    }
    statement
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use prima_entity::enums::UserRole;

    use super::*;
    use crate::access::Level;
    use crate::testing::fixtures::*;

    #[tokio::test]
    async fn each_id_is_found_in_its_own_table_and_an_unknown_one_nowhere() {
        let db = db().await;
        let by = user(&db).await;
        let venue = venue(&db).await;
        let promoter = promoter(&db, venue, "Lee").await;
        let booking = booking(&db, venue, Some(promoter)).await;
        let payout = payout(&db, venue, promoter, t0()).await;
        let hold = hold(&db, payout, by, None, None).await.id;
        let rate = rate(&db, venue, by, true).await;
        let assignment = assignment(&db, promoter, rate, by, t0()).await;
        let incentive = incentive(&db, venue, by).await;
        let progress = progress(&db, incentive, promoter, 1).await;
        let unknown = Uuid::new_v4();
        let asked = [
            (venue, Kind::Venue),
            (promoter, Kind::Promoter),
            (booking, Kind::Booking),
            (payout, Kind::Payout),
            (hold, Kind::PayoutHold),
            (rate, Kind::CommissionRate),
            (assignment, Kind::CommissionAssignment),
            (incentive, Kind::Incentive),
            (progress, Kind::IncentiveProgress),
            (by, Kind::User),
        ];
        let ids: Vec<Uuid> = asked.iter().map(|(id, _)| *id).chain([unknown]).collect();
        let found = kinds(&db.conn, &ids).await.unwrap();
        assert_eq!(found, HashMap::from(asked));
        assert!(kinds(&db.conn, &[]).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_child_row_by_id_is_scoped_by_its_parents_venue_and_capability() {
        let db = db().await;
        let by = user(&db).await;
        let elsewhere = venue(&db).await;
        let venue = venue(&db).await;
        let promoter = promoter(&db, venue, "Lee").await;
        let payout = payout(&db, venue, promoter, t0()).await;
        let hold = hold(&db, payout, by, None, None).await.id;
        let incentive = incentive(&db, venue, by).await;
        let progress = progress(&db, incentive, promoter, 1).await;
        let seen = async |level: Level, at: Uuid| {
            let actor = actor(Uuid::new_v4(), UserRole::Viewer, &[(at, level)]);
            let holds = crate::payouts::holds_by_ids(&db.conn, &actor, &[hold])
                .await
                .unwrap();
            let progress = crate::incentives::progress_by_ids(&db.conn, &actor, &[progress])
                .await
                .unwrap();
            (holds.len(), progress.len())
        };
        assert_eq!(seen(Level::Manager, venue).await, (1, 1));
        assert_eq!(
            seen(Level::Coordinator, venue).await,
            (0, 0),
            "no financial reads"
        );
        assert_eq!(seen(Level::Owner, elsewhere).await, (0, 0), "another venue");
    }

    #[test]
    fn every_kind_is_listed_once() {
        let kinds: HashSet<Kind> = TABLES.iter().map(|(kind, _)| *kind).collect();
        assert_eq!(kinds.len(), TABLES.len());
    }
}
