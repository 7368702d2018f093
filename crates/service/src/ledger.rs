//! The ledger (`transactions`): reads scoped to the venues where the caller holds financial
//! reads (DOMAIN.md "Access", "Transactions").
//!
//! A booking's transactions are a plain list, oldest first. Bookings are readable by roles
//! that may not see money (COORDINATOR, VIEWER): for those the list is FORBIDDEN rather than
//! silently empty, decided per booking from the booking's own venue, read in the same
//! statement as the transactions.

use std::collections::HashMap;

use prima_entity::{bookings, transactions};
use sea_orm::sea_query::{Alias, Condition, Expr, ExprTrait, JoinType, Order, Query};
use sea_orm::{ConnectionTrait, FromQueryResult, Iterable};
use uuid::Uuid;

use crate::access::{Actor, Capability};
use crate::error::Result;
use crate::paging::PARENT;

/// The most refunds one booking can take (each writes a REFUND and, when the booking
/// earned a commission, an ADJUSTMENT clawing part of it back).
pub const MAX_REFUNDS_PER_BOOKING: u64 = 10;
/// The most transactions one booking can have: its BOOKING_FEE, PLATFORM_FEE and
/// PROMOTER_COMMISSION, and two per refund. `Booking.transactions` is a plain list with
/// this bound (the query cost counts it).
pub const MAX_TRANSACTIONS_PER_BOOKING: u64 = 3 + 2 * MAX_REFUNDS_PER_BOOKING;

const VENUE: &str = "__venue";

// Transactions by id: `access::scope::financial_by_ids`.

/// The transactions of each booking, oldest first, in one statement.
///
/// Bookings the caller cannot read are absent. A booking the caller can read at a venue
/// where they lack financial reads maps to FORBIDDEN. The statement reads
/// `bookings LEFT JOIN transactions`, so a readable booking without transactions still
/// answers (with an empty list) and its venue decides the capability.
#[tracing::instrument(skip_all, fields(bookings = booking_ids.len()))]
pub async fn by_booking_ids(
    db: &impl ConnectionTrait,
    actor: &Actor,
    booking_ids: &[Uuid],
) -> Result<HashMap<Uuid, Result<Vec<transactions::Model>>>> {
    let mut query = Query::select();
    query
        .expr_as(
            Expr::col((bookings::Entity, bookings::Column::Id)),
            Alias::new(PARENT),
        )
        .expr_as(
            Expr::col((bookings::Entity, bookings::Column::VenueId)),
            Alias::new(VENUE),
        );
    for column in transactions::Column::iter() {
        query.column((transactions::Entity, column));
    }
    query
        .from(bookings::Entity)
        .join(
            JoinType::LeftJoin,
            transactions::Entity,
            Condition::all()
                .add(
                    Expr::col((transactions::Entity, transactions::Column::BookingId))
                        .equals((bookings::Entity, bookings::Column::Id)),
                )
                .add(
                    actor
                        .venues_where(Capability::ReadFinancial)
                        .condition((transactions::Entity, transactions::Column::VenueId)),
                ),
        )
        .and_where(
            Expr::col((bookings::Entity, bookings::Column::Id)).is_in(booking_ids.iter().copied()),
        )
        .cond_where(
            actor
                .venues_where(Capability::Read)
                .condition((bookings::Entity, bookings::Column::VenueId)),
        )
        .order_by((bookings::Entity, bookings::Column::Id), Order::Asc)
        .order_by(
            (transactions::Entity, transactions::Column::CreatedAt),
            Order::Asc,
        )
        .order_by((transactions::Entity, transactions::Column::Id), Order::Asc);

    let rows = db.query_all(&query).await?;
    let mut lists: HashMap<Uuid, Result<Vec<transactions::Model>>> = HashMap::new();
    for row in rows {
        let booking: Uuid = row.try_get("", PARENT)?;
        let venue: Uuid = row.try_get("", VENUE)?;
        let list = lists.entry(booking).or_insert_with(|| {
            actor
                .require(venue, Capability::ReadFinancial)
                .map(|()| Vec::new())
        });
        let Ok(list) = list else { continue };
        if row.try_get::<Option<Uuid>>("", "id")?.is_some() {
            list.push(transactions::Model::from_query_result(&row, "")?);
        }
    }
    Ok(lists)
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use prima_entity::enums::{TransactionType, UserRole};

    use super::*;
    use crate::access::Level;
    use crate::access::scope::financial_by_ids;
    use crate::testing::fixtures::*;

    #[tokio::test]
    async fn a_bookings_transactions_come_oldest_first_and_a_booking_without_any_is_empty() {
        let db = db().await;
        let a = venue(&db).await;
        let p = promoter(&db, a, "Adams").await;
        let (b1, b2) = (booking(&db, a, Some(p)).await, booking(&db, a, None).await);
        let later = transaction(
            &db,
            a,
            Some(b1),
            Some(p),
            TransactionType::PromoterCommission,
            500,
            t0() + Duration::minutes(1),
        )
        .await;
        let first = transaction(
            &db,
            a,
            Some(b1),
            None,
            TransactionType::BookingFee,
            10000,
            t0(),
        )
        .await;
        let manager = actor(Uuid::new_v4(), UserRole::Manager, &[(a, Level::Manager)]);

        let lists = by_booking_ids(&db.conn, &manager, &[b1, b2]).await.unwrap();
        let ids: Vec<Uuid> = lists[&b1].as_ref().unwrap().iter().map(|t| t.id).collect();
        assert_eq!(ids, [first, later]);
        assert!(lists[&b2].as_ref().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_manager_of_venue_a_gets_no_transaction_of_venue_b() {
        let db = db().await;
        let (a, b) = (venue(&db).await, venue(&db).await);
        let (ba, bb) = (booking(&db, a, None).await, booking(&db, b, None).await);
        let ta = transaction(
            &db,
            a,
            Some(ba),
            None,
            TransactionType::BookingFee,
            100,
            t0(),
        )
        .await;
        let tb = transaction(
            &db,
            b,
            Some(bb),
            None,
            TransactionType::BookingFee,
            100,
            t0(),
        )
        .await;
        let manager = actor(Uuid::new_v4(), UserRole::Manager, &[(a, Level::Manager)]);

        let found = financial_by_ids::<transactions::Entity>(&db.conn, &manager, &[ta, tb])
            .await
            .unwrap();
        assert_eq!(found.keys().copied().collect::<Vec<_>>(), [ta]);
        let lists = by_booking_ids(&db.conn, &manager, &[ba, bb]).await.unwrap();
        assert_eq!(lists[&ba].as_ref().unwrap().len(), 1);
        assert!(
            !lists.contains_key(&bb),
            "a booking of venue B is as if missing"
        );
    }

    #[tokio::test]
    async fn a_coordinator_is_forbidden_a_bookings_transactions() {
        let db = db().await;
        let a = venue(&db).await;
        let b = booking(&db, a, None).await;
        transaction(
            &db,
            a,
            Some(b),
            None,
            TransactionType::BookingFee,
            100,
            t0(),
        )
        .await;
        let coordinator = actor(
            Uuid::new_v4(),
            UserRole::Coordinator,
            &[(a, Level::Coordinator)],
        );
        let lists = by_booking_ids(&db.conn, &coordinator, &[b]).await.unwrap();
        assert_eq!(lists[&b].as_ref().unwrap_err().code(), "FORBIDDEN");
        assert!(
            financial_by_ids::<transactions::Entity>(&db.conn, &coordinator, &[b])
                .await
                .unwrap()
                .is_empty()
        );
    }
}
