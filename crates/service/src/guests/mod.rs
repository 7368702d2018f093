//! Guests: the people who book. Guests belong to no venue; a caller sees a guest who has
//! at least one booking at a venue the caller can read, or whom such a venue registered
//! (`registered_venue_id`, so a guest is visible before their first booking). Contact data (last name, email,
//! phone) is masked unless the caller holds MANAGER or above at a venue where the guest
//! booked (DOMAIN.md "Access"): COORDINATOR and VIEWER see `J***`, `j***@example.com`.
//!
//! A guest's figures (bookings, cancellations, no-shows, spend, mean party size, latest
//! booking; [`GuestFigures`]) cover only the venues the caller can read (DOMAIN.md "Promoter
//! and guest metrics"): a global ADMIN gets the guest row, anyone else the sum of the guest's
//! per-venue rows (`guest_venue_stats`) over their venues, in SQL ([`figures_by_ids`]). The
//! guest row itself ([`GuestView::guest`]) still holds the totals over every venue: read the
//! figures only through [`figures_by_ids`].
//!
//! This file holds the reads; [`write`](mod@write) registers guests and changes their
//! details and status.

pub mod write;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use prima_entity::{bookings, guest_venue_stats, guests};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, QuerySelect,
    QueryTrait,
};
use uuid::Uuid;

use crate::access::scope::Scope;
use crate::access::{self, Actor, Capability};
use crate::error::{Error, Result};
use crate::paging::{self, KeyKind, PARENT, Page, PageArgs, Sort};

/// A guest as the caller may see them.
#[derive(Debug, Clone)]
pub struct GuestView {
    /// The guest, with contact fields already masked when `masked`. Its aggregate columns
    /// count every venue: what the caller may see of them is [`figures_by_ids`].
    pub guest: guests::Model,
    /// Whether contact data was masked for this caller.
    pub masked: bool,
}

impl GuestView {
    fn new(mut guest: guests::Model, masked: bool) -> Self {
        if masked {
            guest.last_name = access::mask_name(&guest.last_name);
            guest.email = access::mask_email(&guest.email);
            guest.phone = guest.phone.as_deref().map(access::mask_phone);
        }
        GuestView { guest, masked }
    }
}

/// The guest booked at, or was registered by, a venue in scope (every guest for a global
/// ADMIN).
fn booked_in(scope: &Scope) -> Expr {
    match scope {
        Scope::All => Expr::val(true),
        Scope::Venues(ids) => Expr::col((guests::Entity, guests::Column::RegisteredVenueId))
            .is_in(ids.iter().copied())
            .or(booking_in(scope)),
    }
}

/// `EXISTS (a booking of this guest at a venue in scope)`.
fn booking_in(scope: &Scope) -> Expr {
    Expr::exists(
        Query::select()
            .expr(Expr::val(1))
            .from(bookings::Entity)
            .and_where(
                Expr::col((bookings::Entity, bookings::Column::GuestId))
                    .equals((guests::Entity, guests::Column::Id)),
            )
            .cond_where(scope.condition((bookings::Entity, bookings::Column::VenueId)))
            .to_owned(),
    )
}

#[derive(FromQueryResult)]
struct Unmasked {
    id: Uuid,
    unmasked: bool,
}

/// The guests among `ids` that the caller can see, masked as their role requires.
pub async fn by_ids(
    db: &impl ConnectionTrait,
    actor: &Actor,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, GuestView>> {
    let read = actor.venues_where(Capability::Read);
    let contact = actor.venues_where(Capability::ReadContact);
    let query = guests::Entity::find()
        .filter(guests::Column::Id.is_in(ids.iter().copied()))
        .filter(booked_in(&read))
        .expr_as(booked_in(&contact), "unmasked");
    let rows = db.query_all(&query.into_query()).await?;
    let mut views = HashMap::with_capacity(rows.len());
    for row in rows {
        let guest = guests::Model::from_query_result(&row, "")?;
        let flag = Unmasked::from_query_result(&row, "")?;
        debug_assert_eq!(flag.id, guest.id);
        views.insert(guest.id, GuestView::new(guest, !flag.unmasked));
    }
    Ok(views)
}

/// One guest the caller can see; NOT_FOUND otherwise.
pub async fn get(db: &impl ConnectionTrait, actor: &Actor, id: Uuid) -> Result<GuestView> {
    by_ids(db, actor, &[id])
        .await?
        .remove(&id)
        .ok_or(Error::NotFound { what: "guest" })
}

/// A guest's booking figures over the venues the caller can read (DOMAIN.md "Promoter and
/// guest metrics"); every status counts, refunds do not change them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestFigures {
    /// Bookings of every status.
    pub total_bookings: i32,
    /// CANCELLED bookings.
    pub cancelled_bookings: i32,
    /// NO_SHOW bookings.
    pub no_show_bookings: i32,
    /// Sum of `total_fee` of the COMPLETED bookings, cents (of each venue's currency; the
    /// demo never mixes currencies for one guest, nothing converts).
    pub total_spent: i64,
    /// Mean diners per booking in tenths, rounded half away from zero; 2.0 (the column
    /// default) without bookings.
    pub average_party_size: i64,
    /// Latest `booking_time`, any status.
    pub last_booking_at: Option<DateTime<Utc>>,
}

impl GuestFigures {
    /// The figures of a guest without bookings (at the caller's venues).
    pub const NONE: GuestFigures = GuestFigures {
        total_bookings: 0,
        cancelled_bookings: 0,
        no_show_bookings: 0,
        total_spent: 0,
        average_party_size: 20,
        last_booking_at: None,
    };

    fn of(row: FiguresRow) -> (Uuid, GuestFigures) {
        let count = |n: i64| i32::try_from(n).unwrap_or(i32::MAX);
        let average = if row.total_bookings == 0 {
            GuestFigures::NONE.average_party_size
        } else {
            // round(diners * 10 / n) half away from zero, as the write path stores it.
            (2 * row.total_diners * 10 + row.total_bookings) / (2 * row.total_bookings)
        };
        (
            row.guest_id,
            GuestFigures {
                total_bookings: count(row.total_bookings),
                cancelled_bookings: count(row.cancelled_bookings),
                no_show_bookings: count(row.no_show_bookings),
                total_spent: row.total_spent,
                average_party_size: average,
                last_booking_at: row.last_booking_at,
            },
        )
    }
}

#[derive(FromQueryResult)]
struct FiguresRow {
    guest_id: Uuid,
    total_bookings: i64,
    cancelled_bookings: i64,
    no_show_bookings: i64,
    total_spent: i64,
    total_diners: i64,
    last_booking_at: Option<DateTime<Utc>>,
}

/// The figures of the guests among `ids`, as the caller may see them, in one statement: a
/// global ADMIN gets the guest row (every venue); anyone else the sums of the guest's
/// `guest_venue_stats` rows at the venues they can read (a guest with no booking there gets
/// [`GuestFigures::NONE`]). Which guests the caller may see at all is [`by_ids`]' business;
/// this only ever adds up what the caller's own venues hold.
#[tracing::instrument(skip_all, fields(ids = ids.len()))]
pub async fn figures_by_ids(
    db: &impl ConnectionTrait,
    actor: &Actor,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, GuestFigures>> {
    use guest_venue_stats::Column as S;
    let scope = actor.venues_where(Capability::Read);
    let query = match &scope {
        Scope::All => Query::select()
            .expr_as(Expr::col(guests::Column::Id), "guest_id")
            .expr_as(
                Expr::cust("CAST(total_bookings AS BIGINT)"),
                "total_bookings",
            )
            .expr_as(
                Expr::cust("CAST(cancelled_bookings AS BIGINT)"),
                "cancelled_bookings",
            )
            .expr_as(
                Expr::cust("CAST(no_show_bookings AS BIGINT)"),
                "no_show_bookings",
            )
            .expr_as(Expr::col(guests::Column::TotalSpent), "total_spent")
            .expr_as(Expr::cust("CAST(total_diners AS BIGINT)"), "total_diners")
            .expr_as(Expr::col(guests::Column::LastBookingAt), "last_booking_at")
            .from(guests::Entity)
            .and_where(Expr::col(guests::Column::Id).is_in(ids.iter().copied()))
            .to_owned(),
        Scope::Venues(_) => Query::select()
            .column(S::GuestId)
            .expr_as(
                Expr::cust("CAST(SUM(total_bookings) AS BIGINT)"),
                "total_bookings",
            )
            .expr_as(
                Expr::cust("CAST(SUM(cancelled_bookings) AS BIGINT)"),
                "cancelled_bookings",
            )
            .expr_as(
                Expr::cust("CAST(SUM(no_show_bookings) AS BIGINT)"),
                "no_show_bookings",
            )
            .expr_as(
                Expr::cust("CAST(SUM(total_spent) AS BIGINT)"),
                "total_spent",
            )
            .expr_as(
                Expr::cust("CAST(SUM(total_diners) AS BIGINT)"),
                "total_diners",
            )
            .expr_as(Expr::cust("MAX(last_booking_at)"), "last_booking_at")
            .from(guest_venue_stats::Entity)
            .and_where(Expr::col(S::GuestId).is_in(ids.iter().copied()))
            .cond_where(scope.condition(S::VenueId))
            .group_by_col(S::GuestId)
            .to_owned(),
    };
    let rows = db.query_all(&query).await?;
    let mut figures = HashMap::with_capacity(ids.len());
    for row in rows {
        let (id, found) = GuestFigures::of(FiguresRow::from_query_result(&row, "")?);
        figures.insert(id, found);
    }
    if matches!(scope, Scope::Venues(_)) {
        for id in ids {
            figures.entry(*id).or_insert(GuestFigures::NONE);
        }
    }
    Ok(figures)
}

const GUEST_SORT: Sort = Sort {
    name: "guests.last_name.asc",
    keys: &[
        Sort::key("last_name", KeyKind::Text, false),
        Sort::key("first_name", KeyKind::Text, false),
        Sort::key("id", KeyKind::Uuid, false),
    ],
};

/// For each venue, a page of the guests who booked there, masked as the caller's role at
/// that venue requires.
pub async fn pages_by_venue(
    db: &impl ConnectionTrait,
    actor: &Actor,
    venue_ids: &[Uuid],
    page: &PageArgs,
    with_total: bool,
) -> Result<HashMap<Uuid, Page<GuestView>>> {
    let window = page.window(&GUEST_SORT)?;
    let visits = Alias::new("visits");
    let pairs = Query::select()
        .distinct()
        .columns([bookings::Column::VenueId, bookings::Column::GuestId])
        .from(bookings::Entity)
        .and_where(Expr::col(bookings::Column::VenueId).is_in(venue_ids.iter().copied()))
        .cond_where(
            actor
                .venues_where(Capability::Read)
                .condition(bookings::Column::VenueId),
        )
        .to_owned();
    let mut inner = guests::Entity::find()
        .expr_as(
            Expr::col((visits.clone(), bookings::Column::VenueId)),
            PARENT,
        )
        .into_query();
    inner.join_subquery(
        sea_orm::sea_query::JoinType::InnerJoin,
        pairs,
        visits.clone(),
        Expr::col((visits.clone(), bookings::Column::GuestId))
            .equals((guests::Entity, guests::Column::Id)),
    );
    let pages = paging::fetch_pages::<guests::Model>(
        db,
        inner,
        venue_ids,
        &GUEST_SORT,
        &window,
        with_total,
    )
    .await?;
    let pages = paging::pages_for(venue_ids, pages, &window, with_total);
    Ok(pages
        .into_iter()
        .map(|(venue, page)| {
            let masked = !actor.can(venue, Capability::ReadContact);
            (venue, page.map(|guest| GuestView::new(guest, masked)))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use prima_entity::enums::UserRole;
    use sea_orm::{ActiveModelTrait, IntoActiveModel, Set};

    use super::*;
    use crate::access::Level;
    use crate::testing::fixtures::*;

    /// A guest with a booking at `a` (the fixture's), and per-venue rows at `a` and `b`
    /// whose sums the guest row holds.
    async fn guest_at_two_venues(db: &crate::testing::TestDb, a: Uuid, b: Uuid) -> Uuid {
        let booking = booking(db, a, None).await;
        let guest = bookings::Entity::find_by_id(booking)
            .one(&db.conn)
            .await
            .unwrap()
            .unwrap()
            .guest_id;
        for (venue, bookings, cancelled, no_show, spent, diners, days) in
            [(a, 3, 1, 0, 22_000, 7, 3), (b, 2, 0, 1, 5_050, 10, 9)]
        {
            guest_venue_stats::Model {
                guest_id: guest,
                venue_id: venue,
                total_bookings: bookings,
                cancelled_bookings: cancelled,
                no_show_bookings: no_show,
                total_spent: spent,
                total_diners: diners,
                last_booking_at: Some(t0() + Duration::days(days)),
            }
            .into_active_model()
            .insert(&db.conn)
            .await
            .unwrap();
        }
        let mut row = guests::Entity::find_by_id(guest)
            .one(&db.conn)
            .await
            .unwrap()
            .unwrap()
            .into_active_model();
        row.total_bookings = Set(5);
        row.cancelled_bookings = Set(1);
        row.no_show_bookings = Set(1);
        row.total_spent = Set(27_050);
        row.total_diners = Set(17);
        row.average_party_size = Set(34);
        row.last_booking_at = Set(Some(t0() + Duration::days(9)));
        row.update(&db.conn).await.unwrap();
        guest
    }

    #[tokio::test]
    async fn a_guests_figures_cover_only_the_venues_the_caller_can_read() {
        let db = db().await;
        let (a, b) = (venue(&db).await, venue(&db).await);
        let guest = guest_at_two_venues(&db, a, b).await;
        let figures = |actor: Actor| {
            let conn = db.conn.clone();
            async move { figures_by_ids(&conn, &actor, &[guest]).await.unwrap()[&guest] }
        };

        let coordinator = actor(
            Uuid::new_v4(),
            UserRole::Coordinator,
            &[(a, Level::Coordinator)],
        );
        assert_eq!(
            figures(coordinator).await,
            GuestFigures {
                total_bookings: 3,
                cancelled_bookings: 1,
                no_show_bookings: 0,
                total_spent: 22_000,
                // 7 diners over 3 bookings: 2.33 -> 2.3.
                average_party_size: 23,
                last_booking_at: Some(t0() + Duration::days(3)),
            }
        );
        let both = actor(
            Uuid::new_v4(),
            UserRole::Manager,
            &[(a, Level::Viewer), (b, Level::Owner)],
        );
        let summed = GuestFigures {
            total_bookings: 5,
            cancelled_bookings: 1,
            no_show_bookings: 1,
            total_spent: 27_050,
            // 17 diners over 5 bookings: 3.4.
            average_party_size: 34,
            last_booking_at: Some(t0() + Duration::days(9)),
        };
        assert_eq!(figures(both).await, summed);
        // A global ADMIN reads the guest row, which equals the sum over every venue.
        assert_eq!(
            figures(actor(Uuid::new_v4(), UserRole::Admin, &[])).await,
            summed
        );
        // A caller with no venue of the guest's adds up nothing.
        let stranger = actor(
            Uuid::new_v4(),
            UserRole::Manager,
            &[(venue(&db).await, Level::Owner)],
        );
        assert_eq!(figures(stranger).await, GuestFigures::NONE);
    }

    #[tokio::test]
    async fn the_figures_of_many_guests_come_in_one_batch() {
        let db = db().await;
        let (a, b) = (venue(&db).await, venue(&db).await);
        let first = guest_at_two_venues(&db, a, b).await;
        let second = guest_at_two_venues(&db, a, b).await;
        let only_b = actor(Uuid::new_v4(), UserRole::Manager, &[(b, Level::Manager)]);
        let found = figures_by_ids(&db.conn, &only_b, &[first, second])
            .await
            .unwrap();
        assert_eq!(found.len(), 2);
        for guest in [first, second] {
            assert_eq!(found[&guest].total_bookings, 2);
            assert_eq!(found[&guest].total_spent, 5_050);
            assert_eq!(found[&guest].average_party_size, 50);
        }
    }
}
