//! Bookings: reads scoped to the caller's venues (this file), and the write path that makes,
//! edits and moves bookings through their lifecycle (DOMAIN.md "Booking lifecycle",
//! "Transactions", "Commissions", "Promoter and guest metrics", "Idempotency"):
//! [`create`], [`edit`], [`transition`] (confirm, cancel, complete, no-show) and [`refund`],
//! with the steps they share in [`change`] (input limits, ledger rows, and the one ending
//! every change's transaction goes through) and the promoter and guest aggregates in
//! [`aggregates`].
//!
//! # Writing
//!
//! Every change is one database transaction holding, together or not at all:
//! the booking's new state, its `booking_history` row, its ledger rows, its commission, the
//! promoter's and guest's aggregates ([`aggregates`]), the promoter's incentive progress
//! ([`crate::incentives::progress`]) and the `outbox_events` rows describing it
//! ([`crate::events::outbox`]). After the booking's own write, every change ends in
//! `change::finish`, which takes these steps in the lock order below, commits, and then
//! rings the relay's doorbell ([`crate::db::Db::relay`]) so the event goes out at once.
//!
//! Policy:
//! - Input is validated, and the caller's role checked, before anything is written. Bad
//!   input is BAD_USER_INPUT naming the field; an invisible booking, venue or guest is
//!   NOT_FOUND; a role too low is FORBIDDEN.
//! - A transition the lifecycle does not allow from the booking's current status, or at
//!   this time, is CONFLICT ("the request conflicts with the booking's state") with a
//!   message saying what is allowed, and changes nothing.
//! - The first statement of each transaction is the booking's own write: a conditional
//!   `UPDATE ... WHERE status = <expected>` (or the INSERT). Of concurrent changes to one
//!   booking exactly one matches; the others match no row and get CONFLICT, so there is
//!   never a second confirmation, commission or ledger set. Writing first also makes SQLite
//!   take its write lock at once instead of failing to upgrade a read lock.
//! - Row locks follow the one global order below. Whatever still makes the database give
//!   up on a transaction (a deadlock, a serialization failure, a busy SQLite) runs it again
//!   from its first statement ([`crate::db::retry_transient`], bounded); the client never
//!   sees INTERNAL for it, at worst CONFLICT "try again".
//! - Timestamps come from one `now` per change ([`crate::time::now`]); the `*_at` variants
//!   take it as a parameter for tests.
//!
//! # Lock order
//!
//! Every write path of the service (booking changes and refunds here; the writes of venues,
//! access grants, guests, promoters and commissions; idempotency keys; the outbox) takes its
//! row locks in this one order, so no two transactions can each hold a lock the other waits
//! for. A transaction takes only
//! the locks it needs, but never one listed above a lock it already holds:
//!
//! 1. **Venue**: `crate::venues::lock_venue`, a no-op UPDATE that venue writes take first
//!    (settings, pricing, access grants); for a grant, then the granted user's row (a
//!    no-op UPDATE: one user's grants change one at a time); then that venue's
//!    `venue_pricing` or `user_venue_access` rows. Booking changes never lock a venue.
//! 2. **Booking**: the conditional UPDATE, or the INSERT, that is the first statement of
//!    every booking change and refund.
//! 3. **Promoter**: the counter UPDATE of [`aggregates`] (then its `month_*` recompute);
//!    the status and tier updates of [`crate::promoters::write`]; the no-op UPDATE before a
//!    commission assignment changes ([`crate::commissions::rates`]), then that promoter's
//!    `commission_assignments` rows.
//! 4. **Guest**: the counter UPDATE of [`aggregates`] (then `last_booking_at`); the detail
//!    and status updates of [`crate::guests::write`].
//! 5. **Guest-venue aggregates**: the guest's row at the booking's venue, right after the
//!    guest's own.
//! 6. **Incentive programmes**, in ascending id: [`crate::incentives::progress`] locks every
//!    programme a change moves (one `SELECT ... ORDER BY id FOR UPDATE`) before writing any
//!    progress row.
//! 7. **Incentive progress** rows, by (incentive, promoter): written only under their
//!    programme's lock.
//! 8. **The booking's ledger and history**: its `transactions` rows (inserted, or moved
//!    by one UPDATE; written only under the booking's lock) and its `booking_history` row.
//!    They are held in the change's [`crate::tail::Tail`] and sent with the outbox rows in
//!    one statement after the idempotency key: a change that takes a key (making a booking)
//!    only inserts there, which waits for no lock, and a change that moves existing ledger
//!    rows takes no key.
//! 9. **Idempotency key**: [`crate::idempotency::record`]'s INSERT, which waits for a
//!    concurrent first use of the same key and so must come after everything it could be
//!    waited for by.
//! 10. **Outbox**: [`crate::events::outbox`] INSERTs, which wait for nothing; the relay
//!     numbers and publishes committed rows in transactions of its own that lock nothing
//!     else.
//!
//! And three rules beside the order:
//! - A row that a transaction locks alone (a commission rate being deactivated, a user at
//!   login) cannot close a cycle and stands outside the list. PostgreSQL's KEY SHARE locks
//!   on rows a new row refers to (a booking's venue, guest and promoter) conflict only with
//!   deletes and changes of a unique column (a guest's email), and those transactions lock
//!   that one row alone.
//! - A transaction waits for nothing that may itself wait for a pool connection: it uses
//!   only its own (`txn`, never the pool, until it has committed or been dropped) and hands
//!   events to the in-process hub only after commit ([`crate::events`]).
//! - New work that locks several rows of one table locks them in ascending id, in its place
//!   in this list (payout generation: the promoter, then its transactions); a programme's
//!   finalisation takes the programme's lock before its progress rows.

pub mod aggregates;
pub mod change;
pub mod create;
pub mod edit;
pub mod refund;
pub mod transition;

#[cfg(test)]
mod retry_tests;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use prima_entity::enums::{BookingSource, BookingStatus, BookingType};
use prima_entity::{booking_history, bookings, venues};
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

/// One booking the caller can see and its venue, read in one statement; NOT_FOUND
/// otherwise. A status change needs both before it writes (the venue's month and its
/// commission rules), and a round trip fewer is a round trip fewer on every change.
pub async fn get_with_venue(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
) -> Result<(bookings::Model, venues::Model)> {
    let found = bookings::Entity::find_by_id(id)
        .filter(
            actor
                .venues_where(Capability::Read)
                .condition((bookings::Entity, bookings::Column::VenueId)),
        )
        .find_also_related(venues::Entity)
        .one(db)
        .await?;
    match found {
        Some((booking, Some(venue))) => Ok((booking, venue)),
        _ => Err(Error::NotFound { what: "booking" }),
    }
}

/// The history entries among `ids` that the caller can see (they read the booking).
pub async fn history_by_ids(
    db: &impl ConnectionTrait,
    actor: &Actor,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, booking_history::Model>> {
    let rows = crate::access::scope::children_by_ids::<booking_history::Entity, bookings::Entity>(
        db,
        actor,
        Capability::Read,
        (booking_history::Column::Id, bookings::Column::VenueId),
        ids,
    )
    .await?;
    Ok(rows.into_iter().map(|(row, _)| (row.id, row)).collect())
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

/// What a `bookingChanged` subscriber receives: the booking changes
/// ([`BOOKING_CHANGED`](crate::events::outbox::BOOKING_CHANGED)) of the venues asked for
/// (every venue the subscriber can read when `None`), at venues where they may read
/// bookings, and, when `statuses` is given, only those that left the booking in one of
/// them. The feed applies it ([`crate::events::feed::feed`]).
pub fn change_feed_filter(
    venues: Option<Vec<Uuid>>,
    statuses: Option<Vec<BookingStatus>>,
) -> crate::events::feed::FeedFilter {
    let statuses: Option<std::collections::HashSet<BookingStatus>> =
        statuses.map(|s| s.into_iter().collect());
    crate::events::feed::FeedFilter {
        topic: crate::events::outbox::BOOKING_CHANGED,
        capability: crate::access::Capability::Read,
        venues,
        accept: Box::new(move |event: &crate::events::Event| match &statuses {
            None => true,
            Some(wanted) => {
                serde_json::from_value::<BookingStatus>(event.payload["booking"]["status"].clone())
                    .is_ok_and(|status| wanted.contains(&status))
            }
        }),
    }
}
