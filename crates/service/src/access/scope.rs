//! The venue scoping every query uses: the set of venues a caller may act on for one
//! capability, as SQL ([`Scope`], made by [`Actor::venues_where`]), and the split of a
//! list's parents into those the caller may see and the errors of the rest, for nested lists
//! under venues and for the financial ones (promoters, commission rates, incentives,
//! payouts: MANAGER or above, DOMAIN.md "Access").

use std::collections::HashMap;
use std::sync::Arc;

use sea_orm::sea_query::{Condition, Expr, ExprTrait, IntoColumnRef};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, QuerySelect,
    QueryTrait, Related, Select,
};
use uuid::Uuid;

use super::{Actor, Capability};
use crate::error::{Error, Result};
use crate::paging::{self, PARENT, Page, PageArgs, PagesOrDenied, Sort, Window};

/// A set of venues a caller may act on for one capability, ready to go into SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every venue (global ADMIN).
    All,
    /// Only these venues (possibly none).
    Venues(Arc<[Uuid]>),
}

impl Scope {
    /// `column IN (...)`, or always true for [`Scope::All`], or always false for no venues.
    pub fn condition<C: IntoColumnRef>(&self, column: C) -> Condition {
        match self {
            Scope::All => Condition::all(),
            Scope::Venues(ids) => {
                Condition::all().add(Expr::col(column).is_in(ids.iter().copied()))
            }
        }
    }

    /// Whether the venue is in the set.
    pub fn contains(&self, venue_id: Uuid) -> bool {
        match self {
            Scope::All => true,
            Scope::Venues(ids) => ids.contains(&venue_id),
        }
    }
}

/// Splits parents into those where the caller holds the capability and FORBIDDEN/NOT_FOUND
/// errors for the rest, so a nested list under a visible venue answers "your role does not
/// allow this" instead of silently looking empty.
pub fn split_by_capability(
    actor: &Actor,
    venue_of: impl IntoIterator<Item = (Uuid, Uuid)>,
    capability: Capability,
) -> (Vec<Uuid>, HashMap<Uuid, Error>) {
    let mut allowed = Vec::new();
    let mut denied = HashMap::new();
    for (parent, venue) in venue_of {
        match actor.require(venue, capability) {
            Ok(()) => allowed.push(parent),
            Err(err) => {
                denied.insert(parent, err);
            }
        }
    }
    (allowed, denied)
}

/// Splits venue parents into those where the caller holds financial reads and the errors
/// of the rest (FORBIDDEN for a venue the caller can read, NOT_FOUND otherwise).
pub(crate) fn split_financial_venues(
    actor: &Actor,
    venue_ids: &[Uuid],
) -> (Vec<Uuid>, HashMap<Uuid, Error>) {
    split_by_capability(
        actor,
        venue_ids.iter().map(|venue| (*venue, *venue)),
        Capability::ReadFinancial,
    )
}

/// Joins the pages of the allowed parents (an empty page for one without rows) with the
/// errors of the denied ones.
pub(crate) fn with_denied<M>(
    allowed: &[Uuid],
    pages: HashMap<Uuid, Page<M>>,
    denied: HashMap<Uuid, Error>,
    window: &Window,
    with_total: bool,
) -> PagesOrDenied<M> {
    let mut out: PagesOrDenied<M> = paging::pages_for(allowed, pages, window, with_total)
        .into_iter()
        .map(|(parent, page)| (parent, Ok(page)))
        .collect();
    out.extend(denied.into_iter().map(|(parent, err)| (parent, Err(err))));
    out
}

/// A table whose every row belongs to one venue and is financial data, visible to MANAGER
/// or above at that venue and to a global ADMIN (DOMAIN.md "Access"). Reading such rows by
/// id and paging them under their venues is written once, here, for every table listed in
/// `financial_tables!` below.
pub trait FinancialTable: EntityTrait<Model: FromQueryResult + Send + Sync> {
    /// The primary key.
    const ID: Self::Column;
    /// The venue a row belongs to.
    const VENUE: Self::Column;
    /// What a NOT_FOUND calls one row.
    const WHAT: &'static str;
    /// A row's id.
    fn id(row: &Self::Model) -> Uuid;
}

/// A financial table listed under its venues (`Venue.promoters`, `Venue.incentives`), in
/// this order.
pub trait VenueList: FinancialTable {
    /// The order of a venue's page of rows.
    const SORT: Sort;
}

macro_rules! financial_tables {
    ($($table:ident => $what:literal $(, listed by $sort:path)?;)*) => {$(
        impl FinancialTable for prima_entity::$table::Entity {
            const ID: Self::Column = prima_entity::$table::Column::Id;
            const VENUE: Self::Column = prima_entity::$table::Column::VenueId;
            const WHAT: &'static str = $what;
            fn id(row: &Self::Model) -> Uuid {
                row.id
            }
        }
        $(impl VenueList for prima_entity::$table::Entity {
            const SORT: Sort = $sort;
        })?
    )*};
}

financial_tables! {
    promoters => "promoter", listed by crate::promoters::PROMOTER_SORT;
    commission_rates => "commission rate";
    transactions => "transaction";
    payouts => "payout";
    incentives => "incentive", listed by crate::incentives::INCENTIVE_SORT;
}

/// The rows among `ids` that the caller may see (financial reads at their venue), in one
/// statement.
#[tracing::instrument(skip_all, fields(table = E::default().table_name(), ids = ids.len()))]
pub async fn financial_by_ids<E: FinancialTable>(
    db: &impl ConnectionTrait,
    actor: &Actor,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, E::Model>> {
    let rows = E::find()
        .filter(E::ID.is_in(ids.iter().copied()))
        .filter(
            actor
                .venues_where(Capability::ReadFinancial)
                .condition((E::default(), E::VENUE)),
        )
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|row| (E::id(&row), row)).collect())
}

/// The rows among `ids` of a table whose rows hang under a parent that belongs to one venue
/// (a booking's history, a payout's items), each with its parent, where the caller holds
/// `capability` at the parent's venue (`venue`, a column of the parent), in one statement:
/// the by-id read of every such child table (Relay's `node`), scoped as its lists are.
pub(crate) async fn children_by_ids<E, P>(
    db: &impl ConnectionTrait,
    actor: &Actor,
    capability: Capability,
    (id, venue): (E::Column, P::Column),
    ids: &[Uuid],
) -> Result<Vec<(E::Model, P::Model)>>
where
    E: EntityTrait + Related<P>,
    P: EntityTrait,
{
    let rows = E::find()
        .filter(id.is_in(ids.iter().copied()))
        .find_also_related(P::default())
        .filter(
            actor
                .venues_where(capability)
                .condition((P::default(), venue)),
        )
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(row, parent)| Some((row, parent?)))
        .collect())
}

/// One row the caller may see; NOT_FOUND otherwise, whether it exists or not.
pub async fn financial_get<E: FinancialTable>(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
) -> Result<E::Model> {
    financial_by_ids::<E>(db, actor, &[id])
        .await?
        .remove(&id)
        .ok_or(Error::NotFound { what: E::WHAT })
}

/// For each venue, a page of its rows in the table's [`VenueList::SORT`] order; FORBIDDEN
/// (or NOT_FOUND) for a venue where the caller lacks financial reads.
pub async fn financial_pages<E: VenueList>(
    db: &impl ConnectionTrait,
    actor: &Actor,
    venue_ids: &[Uuid],
    page: &PageArgs,
    with_total: bool,
) -> Result<PagesOrDenied<E::Model>> {
    financial_pages_by_venue(db, actor, venue_ids, E::find(), &E::SORT, page, with_total).await
}

/// Pages, per venue, the rows of `select` whose venue is that venue, for the venues where
/// the caller holds financial reads, in one statement; the other venues get their
/// FORBIDDEN / NOT_FOUND error. The shape of every financial list under a venue (promoters,
/// commission rates, incentives).
#[tracing::instrument(skip_all, fields(table = E::default().table_name(), venues = venue_ids.len()))]
pub(crate) async fn financial_pages_by_venue<E: FinancialTable>(
    db: &impl ConnectionTrait,
    actor: &Actor,
    venue_ids: &[Uuid],
    select: Select<E>,
    sort: &Sort,
    page: &PageArgs,
    with_total: bool,
) -> Result<PagesOrDenied<E::Model>> {
    let window = page.window(sort)?;
    let (allowed, denied) = split_financial_venues(actor, venue_ids);
    let inner = select
        .filter(E::VENUE.is_in(allowed.iter().copied()))
        .filter(
            actor
                .venues_where(Capability::ReadFinancial)
                .condition((E::default(), E::VENUE)),
        )
        .expr_as(Expr::col((E::default(), E::VENUE)), PARENT)
        .into_query();
    let pages = paging::fetch_pages(db, inner, &allowed, sort, &window, with_total).await?;
    Ok(with_denied(&allowed, pages, denied, &window, with_total))
}
