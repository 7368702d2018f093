//! Bookings: reads scoped to the caller's venues (this module), and, with the write path,
//! the lifecycle of DOMAIN.md "Booking lifecycle".

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use prima_entity::enums::{BookingSource, BookingStatus, BookingType};
use prima_entity::{booking_history, bookings};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, JoinType, QueryFilter, QuerySelect,
    QueryTrait, RelationTrait,
};
use uuid::Uuid;

use crate::access::{Actor, Capability};
use crate::error::{Error, Result};
use crate::paging::{self, KeyKind, PARENT, Page, PageArgs, Sort};

/// Filters of a booking list; empty lists mean "any".
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct BookingFilter {
    /// Only these statuses.
    pub statuses: Vec<BookingStatus>,
    /// Only these types (PRIME, NON_PRIME).
    pub types: Vec<BookingType>,
    /// Only these sources.
    pub sources: Vec<BookingSource>,
    /// Only bookings brought by this promoter.
    pub promoter_id: Option<Uuid>,
    /// Only bookings of this guest.
    pub guest_id: Option<Uuid>,
    /// Only bookings at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Only bookings before this time.
    pub to: Option<DateTime<Utc>>,
}

/// Orderings of a booking list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum BookingOrder {
    /// Soonest booking time first (the default).
    #[default]
    BookingTimeAsc,
    /// Latest booking time first.
    BookingTimeDesc,
    /// Oldest booking first.
    CreatedAtAsc,
    /// Newest booking first.
    CreatedAtDesc,
}

impl BookingOrder {
    fn sort(self) -> &'static Sort {
        const TIME_ASC: Sort = Sort {
            name: "bookings.booking_time.asc",
            keys: &[
                Sort::key("booking_time", KeyKind::Time, false),
                Sort::key("id", KeyKind::Uuid, false),
            ],
        };
        const TIME_DESC: Sort = Sort {
            name: "bookings.booking_time.desc",
            keys: &[
                Sort::key("booking_time", KeyKind::Time, true),
                Sort::key("id", KeyKind::Uuid, true),
            ],
        };
        const CREATED_ASC: Sort = Sort {
            name: "bookings.created_at.asc",
            keys: &[
                Sort::key("created_at", KeyKind::Time, false),
                Sort::key("id", KeyKind::Uuid, false),
            ],
        };
        const CREATED_DESC: Sort = Sort {
            name: "bookings.created_at.desc",
            keys: &[
                Sort::key("created_at", KeyKind::Time, true),
                Sort::key("id", KeyKind::Uuid, true),
            ],
        };
        match self {
            BookingOrder::BookingTimeAsc => &TIME_ASC,
            BookingOrder::BookingTimeDesc => &TIME_DESC,
            BookingOrder::CreatedAtAsc => &CREATED_ASC,
            BookingOrder::CreatedAtDesc => &CREATED_DESC,
        }
    }
}

/// A booking list request: filter, order, page, and whether to count.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct BookingQuery {
    /// Which bookings.
    pub filter: BookingFilter,
    /// In which order.
    pub order: BookingOrder,
    /// Which page.
    pub page: PageArgs,
    /// Count the matching bookings too.
    pub with_total: bool,
}

impl BookingFilter {
    fn condition(&self) -> Result<Condition> {
        if let (Some(from), Some(to)) = (self.from, self.to)
            && from > to
        {
            return Err(Error::invalid(
                "filter.to",
                "`to` must not be before `from`",
            ));
        }
        let mut c = Condition::all();
        if !self.statuses.is_empty() {
            c = c.add(bookings::Column::Status.is_in(self.statuses.iter().copied()));
        }
        if !self.types.is_empty() {
            c = c.add(bookings::Column::Type.is_in(self.types.iter().copied()));
        }
        if !self.sources.is_empty() {
            c = c.add(bookings::Column::Source.is_in(self.sources.iter().copied()));
        }
        if let Some(promoter) = self.promoter_id {
            c = c.add(bookings::Column::PromoterId.eq(promoter));
        }
        if let Some(guest) = self.guest_id {
            c = c.add(bookings::Column::GuestId.eq(guest));
        }
        if let Some(from) = self.from {
            c = c.add(bookings::Column::BookingTime.gte(from));
        }
        if let Some(to) = self.to {
            c = c.add(bookings::Column::BookingTime.lt(to));
        }
        Ok(c)
    }
}

async fn pages_by(
    db: &impl ConnectionTrait,
    actor: &Actor,
    parent: bookings::Column,
    parents: &[Uuid],
    query: &BookingQuery,
) -> Result<HashMap<Uuid, Page<bookings::Model>>> {
    let sort = query.order.sort();
    let window = query.page.window(sort)?;
    let inner = bookings::Entity::find()
        .filter(Expr::col((bookings::Entity, parent)).is_in(parents.iter().copied()))
        .filter(
            actor
                .venues_where(Capability::Read)
                .condition((bookings::Entity, bookings::Column::VenueId)),
        )
        .filter(query.filter.condition()?)
        .expr_as(Expr::col((bookings::Entity, parent)), PARENT)
        .into_query();
    let pages = paging::fetch_pages(db, inner, parents, sort, &window, query.with_total).await?;
    Ok(paging::pages_for(parents, pages, &window, query.with_total))
}

/// A page of bookings for each venue, in one statement.
#[tracing::instrument(skip_all, fields(venues = venue_ids.len()))]
pub async fn pages_by_venue(
    db: &impl ConnectionTrait,
    actor: &Actor,
    venue_ids: &[Uuid],
    query: &BookingQuery,
) -> Result<HashMap<Uuid, Page<bookings::Model>>> {
    pages_by(db, actor, bookings::Column::VenueId, venue_ids, query).await
}

/// A page of bookings for each promoter (only at venues the caller can see).
#[tracing::instrument(skip_all, fields(promoters = promoter_ids.len()))]
pub async fn pages_by_promoter(
    db: &impl ConnectionTrait,
    actor: &Actor,
    promoter_ids: &[Uuid],
    query: &BookingQuery,
) -> Result<HashMap<Uuid, Page<bookings::Model>>> {
    pages_by(db, actor, bookings::Column::PromoterId, promoter_ids, query).await
}

/// A page of bookings for each guest (only at venues the caller can see).
#[tracing::instrument(skip_all, fields(guests = guest_ids.len()))]
pub async fn pages_by_guest(
    db: &impl ConnectionTrait,
    actor: &Actor,
    guest_ids: &[Uuid],
    query: &BookingQuery,
) -> Result<HashMap<Uuid, Page<bookings::Model>>> {
    pages_by(db, actor, bookings::Column::GuestId, guest_ids, query).await
}

/// The bookings among `ids` that the caller can see.
pub async fn by_ids(
    db: &impl ConnectionTrait,
    actor: &Actor,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, bookings::Model>> {
    let rows = bookings::Entity::find()
        .filter(bookings::Column::Id.is_in(ids.iter().copied()))
        .filter(
            actor
                .venues_where(Capability::Read)
                .condition((bookings::Entity, bookings::Column::VenueId)),
        )
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|b| (b.id, b)).collect())
}

/// The booking's promoter commission, cents, for a caller with financial reads at its venue
/// (DOMAIN.md "Access"): a COORDINATOR or VIEWER reads the booking and its fees, not what
/// its promoter earns on it, and gets FORBIDDEN, as for its transactions.
pub fn promoter_commission(actor: &Actor, booking: &bookings::Model) -> Result<i64> {
    crate::access::financial(actor, booking.venue_id, booking.promoter_commission)
}

/// One booking the caller can see; NOT_FOUND otherwise.
pub async fn get(db: &impl ConnectionTrait, actor: &Actor, id: Uuid) -> Result<bookings::Model> {
    by_ids(db, actor, &[id])
        .await?
        .remove(&id)
        .ok_or(Error::NotFound { what: "booking" })
}

const HISTORY_SORT: Sort = Sort {
    name: "booking_history.timestamp.asc",
    keys: &[
        Sort::key("timestamp", KeyKind::Time, false),
        Sort::key("id", KeyKind::Uuid, false),
    ],
};

/// For each booking, a page of its history, oldest entry first (every edit is an entry, so
/// the list has no natural bound and is paged), scoped through the booking's venue in the
/// same statement.
#[tracing::instrument(skip_all, fields(bookings = booking_ids.len()))]
pub async fn history_pages(
    db: &impl ConnectionTrait,
    actor: &Actor,
    booking_ids: &[Uuid],
    page: &PageArgs,
    with_total: bool,
) -> Result<HashMap<Uuid, Page<booking_history::Model>>> {
    let window = page.window(&HISTORY_SORT)?;
    if booking_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let inner = booking_history::Entity::find()
        .join(
            JoinType::InnerJoin,
            booking_history::Relation::Bookings.def(),
        )
        .filter(booking_history::Column::BookingId.is_in(booking_ids.iter().copied()))
        .filter(
            actor
                .venues_where(Capability::Read)
                .condition((bookings::Entity, bookings::Column::VenueId)),
        )
        .expr_as(
            Expr::col((booking_history::Entity, booking_history::Column::BookingId)),
            PARENT,
        )
        .into_query();
    let pages =
        paging::fetch_pages(db, inner, booking_ids, &HISTORY_SORT, &window, with_total).await?;
    Ok(paging::pages_for(booking_ids, pages, &window, with_total))
}
