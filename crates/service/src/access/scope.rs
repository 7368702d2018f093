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
    QueryTrait, Select,
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

/// Pages, per venue, the rows of `select` whose `venue` column is that venue, for the venues
/// where the caller holds financial reads, in one statement; the other venues get their
/// FORBIDDEN / NOT_FOUND error. The shape of every financial list under a venue (promoters,
/// commission rates, incentives).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn financial_pages_by_venue<E>(
    db: &impl ConnectionTrait,
    actor: &Actor,
    venue_ids: &[Uuid],
    select: Select<E>,
    venue: E::Column,
    sort: &Sort,
    page: &PageArgs,
    with_total: bool,
) -> Result<PagesOrDenied<E::Model>>
where
    E: EntityTrait,
    E::Model: FromQueryResult,
{
    let window = page.window(sort)?;
    let (allowed, denied) = split_financial_venues(actor, venue_ids);
    let inner = select
        .filter(venue.is_in(allowed.iter().copied()))
        .filter(
            actor
                .venues_where(Capability::ReadFinancial)
                .condition((E::default(), venue)),
        )
        .expr_as(Expr::col((E::default(), venue)), PARENT)
        .into_query();
    let pages = paging::fetch_pages(db, inner, &allowed, sort, &window, with_total).await?;
    Ok(with_denied(&allowed, pages, denied, &window, with_total))
}
