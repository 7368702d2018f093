//! Venues and their pricing: reads scoped to the caller's venues (this file), and the venue
//! row lock every venue write takes first (`lock_venue`). Writes: [`settings`] (creating a
//! venue, changing its settings) and [`pricing`] (setting its prices); access grants are
//! [`crate::access::grants`].
//!
//! Pricing history is kept, never overwritten (DOMAIN.md "Pricing a booking"): the row in
//! force at an instant is the active row with `effective_from <= t < effective_to` (or no
//! end). Reading pricing needs only read access to the venue.

pub mod pricing;
pub mod settings;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use prima_entity::enums::{VenueStatus, VenueTier, VenueType};
use prima_entity::{venue_pricing, venues};
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait,
};
use uuid::Uuid;

use crate::access::{Actor, Capability};
use crate::error::{Error, Result};
use crate::paging::{self, KeyKind, PARENT, Page, PageArgs, Sort};

/// Filters of the venue list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct VenueFilter {
    /// Only venues of this type.
    pub r#type: Option<VenueType>,
    /// Only venues of this tier.
    pub tier: Option<VenueTier>,
    /// Only venues in this status.
    pub status: Option<VenueStatus>,
    /// Only venues in this city (case-insensitive).
    pub city: Option<String>,
    /// Only venues whose name contains this text (case-insensitive).
    pub search: Option<String>,
}

/// Orderings of the venue list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum VenueOrder {
    /// By name, A to Z (the default).
    #[default]
    NameAsc,
    /// By name, Z to A.
    NameDesc,
    /// Oldest first.
    CreatedAtAsc,
    /// Newest first.
    CreatedAtDesc,
}

impl VenueOrder {
    fn sort(self) -> &'static Sort {
        const NAME_ASC: Sort = Sort {
            name: "venues.name.asc",
            keys: &[
                Sort::key("name", KeyKind::Text, false),
                Sort::key("id", KeyKind::Uuid, false),
            ],
        };
        const NAME_DESC: Sort = Sort {
            name: "venues.name.desc",
            keys: &[
                Sort::key("name", KeyKind::Text, true),
                Sort::key("id", KeyKind::Uuid, true),
            ],
        };
        const CREATED_ASC: Sort = Sort {
            name: "venues.created_at.asc",
            keys: &[
                Sort::key("created_at", KeyKind::Time, false),
                Sort::key("id", KeyKind::Uuid, false),
            ],
        };
        const CREATED_DESC: Sort = Sort {
            name: "venues.created_at.desc",
            keys: &[
                Sort::key("created_at", KeyKind::Time, true),
                Sort::key("id", KeyKind::Uuid, true),
            ],
        };
        match self {
            VenueOrder::NameAsc => &NAME_ASC,
            VenueOrder::NameDesc => &NAME_DESC,
            VenueOrder::CreatedAtAsc => &CREATED_ASC,
            VenueOrder::CreatedAtDesc => &CREATED_DESC,
        }
    }
}

/// A case-insensitive "contains" pattern with LIKE's wildcards escaped.
pub(crate) fn contains_pattern(text: &str) -> LikeExpr {
    let escaped = text
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    LikeExpr::new(format!("%{escaped}%")).escape('\\')
}

/// The venues the caller can see, filtered, ordered and paged.
#[tracing::instrument(skip_all)]
pub async fn page(
    db: &impl ConnectionTrait,
    actor: &Actor,
    filter: &VenueFilter,
    order: VenueOrder,
    args: &PageArgs,
    with_total: bool,
) -> Result<Page<venues::Model>> {
    let sort = order.sort();
    let window = args.window(sort)?;
    let mut condition = actor
        .venues_where(Capability::Read)
        .condition((venues::Entity, venues::Column::Id));
    if let Some(t) = filter.r#type {
        condition = condition.add(venues::Column::Type.eq(t));
    }
    if let Some(tier) = filter.tier {
        condition = condition.add(venues::Column::Tier.eq(tier));
    }
    if let Some(status) = filter.status {
        condition = condition.add(venues::Column::Status.eq(status));
    }
    if let Some(city) = &filter.city {
        condition = condition.add(
            Expr::expr(Func::lower(Expr::col((
                venues::Entity,
                venues::Column::AddressCity,
            ))))
            .eq(city.trim().to_lowercase()),
        );
    }
    if let Some(search) = filter.search.as_deref().filter(|s| !s.trim().is_empty()) {
        condition = condition.add(
            Expr::expr(Func::lower(Expr::col((
                venues::Entity,
                venues::Column::Name,
            ))))
            .like(contains_pattern(search.trim())),
        );
    }
    let inner = venues::Entity::find()
        .filter(condition)
        .expr_as(Expr::val(Uuid::nil()), PARENT)
        .into_query();
    let mut pages =
        paging::fetch_pages(db, inner, &[Uuid::nil()], sort, &window, with_total).await?;
    Ok(pages
        .remove(&Uuid::nil())
        .unwrap_or_else(|| Page::empty(&window, with_total)))
}

/// The venues among `ids` that the caller can see.
pub async fn by_ids(
    db: &impl ConnectionTrait,
    actor: &Actor,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, venues::Model>> {
    let rows = venues::Entity::find()
        .filter(venues::Column::Id.is_in(ids.iter().copied()))
        .filter(
            actor
                .venues_where(Capability::Read)
                .condition((venues::Entity, venues::Column::Id)),
        )
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|v| (v.id, v)).collect())
}

/// One venue the caller can see; NOT_FOUND otherwise, whether it exists or not.
pub async fn get(db: &impl ConnectionTrait, actor: &Actor, id: Uuid) -> Result<venues::Model> {
    by_ids(db, actor, &[id])
        .await?
        .remove(&id)
        .ok_or(Error::NotFound { what: "venue" })
}

/// Condition: the pricing row is active and in force at `at`.
pub(crate) fn pricing_in_force(at: DateTime<Utc>) -> Condition {
    Condition::all()
        .add(venue_pricing::Column::IsActive.eq(true))
        .add(venue_pricing::Column::EffectiveFrom.lte(at))
        .add(
            Condition::any()
                .add(venue_pricing::Column::EffectiveTo.is_null())
                .add(venue_pricing::Column::EffectiveTo.gt(at)),
        )
}

/// The pricing in force at `at` for each of the venues the caller can see.
pub async fn pricing_at(
    db: &impl ConnectionTrait,
    actor: &Actor,
    venue_ids: &[Uuid],
    at: DateTime<Utc>,
) -> Result<HashMap<Uuid, venue_pricing::Model>> {
    let rows = venue_pricing::Entity::find()
        .filter(venue_pricing::Column::VenueId.is_in(venue_ids.iter().copied()))
        .filter(
            actor
                .venues_where(Capability::Read)
                .condition((venue_pricing::Entity, venue_pricing::Column::VenueId)),
        )
        .filter(pricing_in_force(at))
        .order_by_desc(venue_pricing::Column::EffectiveFrom)
        .all(db)
        .await?;
    let mut current = HashMap::new();
    for row in rows {
        // Newest first: the first row per venue wins should two ever overlap.
        current.entry(row.venue_id).or_insert(row);
    }
    Ok(current)
}

/// The pricing rows among `ids` of venues the caller can see, with their venue's currency.
pub async fn pricing_by_ids(
    db: &impl ConnectionTrait,
    actor: &Actor,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, (venue_pricing::Model, String)>> {
    let rows = crate::access::scope::children_by_ids::<venue_pricing::Entity, venues::Entity>(
        db,
        actor,
        Capability::Read,
        (venue_pricing::Column::Id, venues::Column::Id),
        ids,
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|(row, venue)| (row.id, (row, venue.currency)))
        .collect())
}

const PRICING_SORT: Sort = Sort {
    name: "venue_pricing.effective_from.desc",
    keys: &[
        Sort::key("effective_from", KeyKind::Time, true),
        Sort::key("id", KeyKind::Uuid, true),
    ],
};

/// Every pricing row of each venue, newest first, paged per venue.
pub async fn pricing_history_pages(
    db: &impl ConnectionTrait,
    actor: &Actor,
    venue_ids: &[Uuid],
    args: &PageArgs,
    with_total: bool,
) -> Result<HashMap<Uuid, Page<venue_pricing::Model>>> {
    let window = args.window(&PRICING_SORT)?;
    let inner = venue_pricing::Entity::find()
        .filter(venue_pricing::Column::VenueId.is_in(venue_ids.iter().copied()))
        .filter(
            actor
                .venues_where(Capability::Read)
                .condition((venue_pricing::Entity, venue_pricing::Column::VenueId)),
        )
        .expr_as(
            Expr::col((venue_pricing::Entity, venue_pricing::Column::VenueId)),
            PARENT,
        )
        .into_query();
    let pages =
        paging::fetch_pages(db, inner, venue_ids, &PRICING_SORT, &window, with_total).await?;
    Ok(paging::pages_for(venue_ids, pages, &window, with_total))
}

/// NOT_FOUND unless the venue exists: what a write that hangs a new row under a venue checks
/// inside its transaction.
pub(crate) async fn require_exists(txn: &impl ConnectionTrait, venue_id: Uuid) -> Result<()> {
    use prima_entity::venues;
    match venues::Entity::find_by_id(venue_id).one(txn).await? {
        Some(_) => Ok(()),
        None => Err(Error::NotFound { what: "venue" }),
    }
}

/// Takes the row lock of a venue inside `txn` (a no-op `UPDATE`), so changes that close one
/// row of the venue and open another run one at a time. The first statement of a
/// transaction, it also makes SQLite take its write lock up front. NOT_FOUND when the venue
/// does not exist.
pub(crate) async fn lock_venue(txn: &impl ConnectionTrait, venue_id: Uuid) -> Result<()> {
    use prima_entity::venues;
    let locked = venues::Entity::update_many()
        .col_expr(
            venues::Column::UpdatedAt,
            Expr::col(venues::Column::UpdatedAt),
        )
        .filter(venues::Column::Id.eq(venue_id))
        .exec(txn)
        .await?;
    if locked.rows_affected == 0 {
        return Err(Error::NotFound { what: "venue" });
    }
    Ok(())
}
