//! Guests: the people who book. Guests belong to no venue; a caller sees a guest who has
//! at least one booking at a venue the caller can read, or whom such a venue registered
//! (`registered_venue_id`, so a guest is visible before their first booking). Contact data (last name, email,
//! phone) is masked unless the caller holds MANAGER or above at a venue where the guest
//! booked (DOMAIN.md "Access"): COORDINATOR and VIEWER see `J***`, `j***@example.com`.

use std::collections::HashMap;

use prima_entity::{bookings, guests};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, QuerySelect,
    QueryTrait,
};
use uuid::Uuid;

use crate::access::{self, Actor, Capability, Scope};
use crate::error::{Error, Result};
use crate::paging::{self, KeyKind, PARENT, Page, PageArgs, Sort};

/// A guest as the caller may see them.
#[derive(Debug, Clone)]
pub struct GuestView {
    /// The guest, with contact fields already masked when `masked`.
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
