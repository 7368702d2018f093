//! Payouts, their items, holds and audit trail: reads scoped to the venues where the caller
//! holds financial reads (DOMAIN.md "Access", "Payouts").
//!
//! Items, holds and audit rows have no venue of their own: they are scoped through their
//! payout's venue (`payouts.venue_id`), joined in the same SQL statement.
//!
//! Writes, one module each: [`generate`] (what a payout takes, exactly once), [`lifecycle`]
//! (DRAFT -> PENDING_APPROVAL -> APPROVED -> PROCESSING -> COMPLETED or FAILED, four eyes,
//! holds), each a conditional update on the expected state that writes a `payout_audit`
//! row and a [`PAYOUT_CHANGED`] outbox event in its transaction ([`Change::record`]).
//! Reads beyond the lists: [`balance`] (a promoter's balance, a payout's statement).

pub mod balance;
pub mod export;
pub mod generate;
pub mod lifecycle;
#[cfg(test)]
mod write_tests;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use prima_entity::{payout_audit, payout_holds, payout_items, payouts};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, JoinType, QueryFilter, QuerySelect, QueryTrait,
    RelationTrait,
};
use uuid::Uuid;

use crate::access::scope::{split_financial_venues, with_denied};
use crate::access::{Actor, Capability};
use crate::error::Result;
use crate::paging::{self, KeyKind, PARENT, Page, PageArgs, PagesOrDenied, Sort};
use crate::tail::Tail;

/// Topic of the events describing a payout generated or changing (status, holds).
pub const PAYOUT_CHANGED: &str = "payout.changed";

/// What happened to a payout, as its event and audit row say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PayoutAction {
    /// Generated (DRAFT).
    Generated,
    /// DRAFT -> PENDING_APPROVAL.
    Submitted,
    /// PENDING_APPROVAL -> APPROVED.
    Approved,
    /// PENDING_APPROVAL or APPROVED -> DRAFT, with a reason.
    ReturnedToDraft,
    /// APPROVED -> PROCESSING.
    ProcessingStarted,
    /// PROCESSING -> COMPLETED: paid; its transactions are SETTLED.
    Completed,
    /// PROCESSING -> FAILED: its transactions are released.
    Failed,
    /// A hold was placed (the status does not move).
    HoldPlaced,
    /// A hold was released (the status does not move).
    HoldReleased,
}

/// A change to a payout, recorded with it.
pub(crate) struct Change<'a> {
    pub actor: &'a Actor,
    pub action: PayoutAction,
    /// The status before (`None` for a new payout).
    pub from: Option<prima_entity::enums::PayoutStatus>,
    pub reason: Option<String>,
    pub now: DateTime<Utc>,
}

impl Change<'_> {
    /// Holds the change's `payout_audit` row (who, when, from, to, why) and its
    /// [`PAYOUT_CHANGED`] event (the payout as committed) in the transaction's tail.
    pub(crate) fn record(self, tail: &mut Tail, payout: &payouts::Model) {
        let audit = payout_audit::ActiveModel {
            id: sea_orm::ActiveValue::Set(Uuid::new_v4()),
            payout_id: sea_orm::ActiveValue::Set(payout.id),
            from_status: sea_orm::ActiveValue::Set(self.from),
            to_status: sea_orm::ActiveValue::Set(payout.status),
            performed_by: sea_orm::ActiveValue::Set(Some(self.actor.user_id)),
            reason: sea_orm::ActiveValue::Set(self.reason),
            created_at: sea_orm::ActiveValue::Set(self.now),
        };
        tail.insert(payout_audit::Entity::insert(audit).into_query());
        let payload = serde_json::json!({
            "action": self.action,
            "previousStatus": self.from,
            "payout": payout,
        });
        tail.event(PAYOUT_CHANGED, Some(payout.venue_id), payload, self.now);
    }
}

/// Whether a hold still blocks its payout at `now`: it is active until it is released or
/// until `hold_until` passes (a hold without `hold_until` lasts until released). At the
/// very instant `hold_until` the hold has passed.
pub fn hold_is_active(hold: &payout_holds::Model, now: DateTime<Utc>) -> bool {
    hold.released_at.is_none() && hold.hold_until.is_none_or(|until| until > now)
}

/// What a `payoutChanged` subscriber receives: the payout changes ([`PAYOUT_CHANGED`]) of
/// the venues asked for (every venue they can see when `None`), at venues where they hold
/// financial reads, and, when `statuses` is given, only those that left the payout in one
/// of them. The feed applies it ([`crate::events::feed::feed`]), with the same replay and
/// access rules as `bookingChanged`.
pub fn change_feed_filter(
    venues: Option<Vec<Uuid>>,
    statuses: Option<Vec<prima_entity::enums::PayoutStatus>>,
) -> crate::events::feed::FeedFilter {
    let statuses: Option<std::collections::HashSet<prima_entity::enums::PayoutStatus>> =
        statuses.map(|s| s.into_iter().collect());
    crate::events::feed::FeedFilter {
        topic: PAYOUT_CHANGED,
        capability: Capability::ReadFinancial,
        venues,
        accept: Box::new(move |event: &crate::events::Event| match &statuses {
            None => true,
            Some(wanted) => serde_json::from_value::<prima_entity::enums::PayoutStatus>(
                event.payload["payout"]["status"].clone(),
            )
            .is_ok_and(|status| wanted.contains(&status)),
        }),
    }
}

// Payouts by id: `access::scope::{financial_by_ids, financial_get}`.

/// The rows among `ids` of a table under payouts that the caller may see (financial reads
/// at the payout's venue), each with its payout's currency.
async fn under_payouts<E: EntityTrait + sea_orm::Related<payouts::Entity>>(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: E::Column,
    ids: &[Uuid],
) -> Result<Vec<(E::Model, String)>> {
    let rows = crate::access::scope::children_by_ids::<E, payouts::Entity>(
        db,
        actor,
        Capability::ReadFinancial,
        (id, payouts::Column::VenueId),
        ids,
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|(row, payout)| (row, payout.currency))
        .collect())
}

/// The payout items among `ids` that the caller may see, with their payout's currency.
pub async fn items_by_ids(
    db: &impl ConnectionTrait,
    actor: &Actor,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, (payout_items::Model, String)>> {
    let rows =
        under_payouts::<payout_items::Entity>(db, actor, payout_items::Column::Id, ids).await?;
    Ok(rows.into_iter().map(|row| (row.0.id, row)).collect())
}

/// The payout holds among `ids` that the caller may see, with their payout's currency.
pub async fn holds_by_ids(
    db: &impl ConnectionTrait,
    actor: &Actor,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, (payout_holds::Model, String)>> {
    let rows =
        under_payouts::<payout_holds::Entity>(db, actor, payout_holds::Column::Id, ids).await?;
    Ok(rows.into_iter().map(|row| (row.0.id, row)).collect())
}

/// The payout audit entries among `ids` that the caller may see.
pub async fn audit_by_ids(
    db: &impl ConnectionTrait,
    actor: &Actor,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, payout_audit::Model>> {
    let rows =
        under_payouts::<payout_audit::Entity>(db, actor, payout_audit::Column::Id, ids).await?;
    Ok(rows.into_iter().map(|(row, _)| (row.id, row)).collect())
}

const PAYOUT_SORT: Sort = Sort {
    name: "payouts.period_from.desc",
    keys: &[
        Sort::key("period_from", KeyKind::Time, true),
        Sort::key("id", KeyKind::Uuid, true),
    ],
};

/// Which payouts a list shows; every given filter must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PayoutFilter {
    /// Only these statuses (any when empty).
    pub statuses: Vec<prima_entity::enums::PayoutStatus>,
    /// Only payouts whose period starts at or after this.
    pub period_from: Option<DateTime<Utc>>,
    /// Only payouts whose period ends at or before this.
    pub period_to: Option<DateTime<Utc>>,
    /// Only payouts scheduled at or after this.
    pub scheduled_from: Option<DateTime<Utc>>,
    /// Only payouts scheduled before this.
    pub scheduled_to: Option<DateTime<Utc>>,
}

impl PayoutFilter {
    fn condition(&self) -> sea_orm::Condition {
        let mut condition = sea_orm::Condition::all();
        if !self.statuses.is_empty() {
            condition = condition.add(payouts::Column::Status.is_in(self.statuses.iter().copied()));
        }
        if let Some(from) = self.period_from {
            condition = condition.add(payouts::Column::PeriodFrom.gte(from));
        }
        if let Some(to) = self.period_to {
            condition = condition.add(payouts::Column::PeriodTo.lte(to));
        }
        if let Some(from) = self.scheduled_from {
            condition = condition.add(payouts::Column::ScheduledFor.gte(from));
        }
        if let Some(to) = self.scheduled_to {
            condition = condition.add(payouts::Column::ScheduledFor.lt(to));
        }
        condition
    }
}

/// A page of a payout list: which payouts, which page, whether to count them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PayoutListQuery {
    /// Which payouts.
    pub filter: PayoutFilter,
    /// Which page.
    pub page: PageArgs,
    /// Count the matching payouts too.
    pub with_total: bool,
}

async fn pages_by(
    db: &impl ConnectionTrait,
    actor: &Actor,
    parent: payouts::Column,
    parents: &[Uuid],
    query: &PayoutListQuery,
) -> Result<HashMap<Uuid, Page<payouts::Model>>> {
    let (page, with_total) = (&query.page, query.with_total);
    let window = page.window(&PAYOUT_SORT)?;
    if parents.is_empty() {
        return Ok(HashMap::new());
    }
    let inner = payouts::Entity::find()
        .filter(Expr::col((payouts::Entity, parent)).is_in(parents.iter().copied()))
        .filter(query.filter.condition())
        .filter(
            actor
                .venues_where(Capability::ReadFinancial)
                .condition((payouts::Entity, payouts::Column::VenueId)),
        )
        .expr_as(Expr::col((payouts::Entity, parent)), PARENT)
        .into_query();
    let pages = paging::fetch_pages(db, inner, parents, &PAYOUT_SORT, &window, with_total).await?;
    Ok(paging::pages_for(parents, pages, &window, with_total))
}

/// For each venue, a page of its payouts matching the filter, newest period first;
/// FORBIDDEN for a venue where the caller lacks financial reads.
#[tracing::instrument(skip_all, fields(venues = venue_ids.len()))]
pub async fn pages_by_venue(
    db: &impl ConnectionTrait,
    actor: &Actor,
    venue_ids: &[Uuid],
    query: &PayoutListQuery,
) -> Result<PagesOrDenied<payouts::Model>> {
    let window = query.page.window(&PAYOUT_SORT)?;
    let (allowed, denied) = split_financial_venues(actor, venue_ids);
    let pages = pages_by(db, actor, payouts::Column::VenueId, &allowed, query).await?;
    Ok(with_denied(
        &allowed,
        pages,
        denied,
        &window,
        query.with_total,
    ))
}

/// For each promoter, a page of their payouts matching the filter at venues where the
/// caller holds financial reads, newest period first.
#[tracing::instrument(skip_all, fields(promoters = promoter_ids.len()))]
pub async fn pages_by_promoter(
    db: &impl ConnectionTrait,
    actor: &Actor,
    promoter_ids: &[Uuid],
    query: &PayoutListQuery,
) -> Result<HashMap<Uuid, Page<payouts::Model>>> {
    pages_by(db, actor, payouts::Column::PromoterId, promoter_ids, query).await
}

/// Items, holds and audit rows: oldest first.
const OLDEST_FIRST: Sort = Sort {
    name: "payout_rows.created_at.asc",
    keys: &[
        Sort::key("created_at", KeyKind::Time, false),
        Sort::key("id", KeyKind::Uuid, false),
    ],
};

/// For each payout, a page of the rows of `E` (items, holds or audit entries, each with
/// `created_at` and `id`) that point at it through `parent`, oldest first, scoped through
/// the payout's venue (`relation` joins the payout) in the same statement.
async fn payout_rows<E>(
    db: &impl ConnectionTrait,
    actor: &Actor,
    relation: sea_orm::RelationDef,
    parent: E::Column,
    payout_ids: &[Uuid],
    page: &PageArgs,
    with_total: bool,
) -> Result<HashMap<Uuid, Page<E::Model>>>
where
    E: EntityTrait,
    E::Model: sea_orm::FromQueryResult,
{
    let window = page.window(&OLDEST_FIRST)?;
    if payout_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let inner = E::find()
        .join(JoinType::InnerJoin, relation)
        .filter(parent.is_in(payout_ids.iter().copied()))
        .filter(
            actor
                .venues_where(Capability::ReadFinancial)
                .condition((payouts::Entity, payouts::Column::VenueId)),
        )
        .expr_as(Expr::col((parent.entity_name(), parent)), PARENT)
        .into_query();
    let pages =
        paging::fetch_pages(db, inner, payout_ids, &OLDEST_FIRST, &window, with_total).await?;
    Ok(paging::pages_for(payout_ids, pages, &window, with_total))
}

/// For each payout, a page of its items (the transactions it pays), oldest first, in one
/// statement. A payout can pay thousands of transactions: the list is paged.
#[tracing::instrument(skip_all, fields(payouts = payout_ids.len()))]
pub async fn item_pages(
    db: &impl ConnectionTrait,
    actor: &Actor,
    payout_ids: &[Uuid],
    page: &PageArgs,
    with_total: bool,
) -> Result<HashMap<Uuid, Page<payout_items::Model>>> {
    payout_rows::<payout_items::Entity>(
        db,
        actor,
        payout_items::Relation::Payouts.def(),
        payout_items::Column::PayoutId,
        payout_ids,
        page,
        with_total,
    )
    .await
}

/// For each payout, a page of its holds, released ones included, oldest first.
#[tracing::instrument(skip_all, fields(payouts = payout_ids.len()))]
pub async fn hold_pages(
    db: &impl ConnectionTrait,
    actor: &Actor,
    payout_ids: &[Uuid],
    page: &PageArgs,
    with_total: bool,
) -> Result<HashMap<Uuid, Page<payout_holds::Model>>> {
    payout_rows::<payout_holds::Entity>(
        db,
        actor,
        payout_holds::Relation::Payouts.def(),
        payout_holds::Column::PayoutId,
        payout_ids,
        page,
        with_total,
    )
    .await
}

/// For each payout, a page of its audit trail (every status change), oldest first.
#[tracing::instrument(skip_all, fields(payouts = payout_ids.len()))]
pub async fn audit_pages(
    db: &impl ConnectionTrait,
    actor: &Actor,
    payout_ids: &[Uuid],
    page: &PageArgs,
    with_total: bool,
) -> Result<HashMap<Uuid, Page<payout_audit::Model>>> {
    payout_rows::<payout_audit::Entity>(
        db,
        actor,
        payout_audit::Relation::Payouts.def(),
        payout_audit::Column::PayoutId,
        payout_ids,
        page,
        with_total,
    )
    .await
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use prima_entity::enums::UserRole;

    use super::*;
    use crate::access::Level;
    use crate::access::scope::{financial_by_ids, financial_get};
    use crate::testing::fixtures::*;

    fn counted() -> PayoutListQuery {
        PayoutListQuery {
            with_total: true,
            ..PayoutListQuery::default()
        }
    }

    #[tokio::test]
    async fn a_hold_is_active_until_released_or_until_its_date_passes() {
        let db = db().await;
        let by = user(&db).await;
        let a = venue(&db).await;
        let p = promoter(&db, a, "Adams").await;
        let payout = payout(&db, a, p, t0()).await;
        let now = t0() + Duration::days(1);
        let open = hold(&db, payout, by, None, None).await;
        let future = hold(&db, payout, by, Some(now + Duration::hours(1)), None).await;
        let passed = hold(&db, payout, by, Some(now - Duration::hours(1)), None).await;
        let at_the_instant = hold(&db, payout, by, Some(now), None).await;
        let released = hold(&db, payout, by, None, Some(now - Duration::minutes(5))).await;

        assert!(hold_is_active(&open, now));
        assert!(hold_is_active(&future, now));
        assert!(!hold_is_active(&passed, now));
        assert!(!hold_is_active(&at_the_instant, now));
        assert!(!hold_is_active(&released, now));

        let admin = actor(by, UserRole::Admin, &[]);
        let lists = hold_pages(&db.conn, &admin, &[payout], &PageArgs::default(), true)
            .await
            .unwrap();
        assert_eq!(
            lists[&payout].total_count,
            Some(5),
            "released holds stay in the list"
        );
    }

    #[tokio::test]
    async fn a_manager_of_venue_a_gets_no_payout_item_hold_or_audit_of_venue_b() {
        let db = db().await;
        let by = user(&db).await;
        let (a, b) = (venue(&db).await, venue(&db).await);
        let (pa, pb) = (
            promoter(&db, a, "Adams").await,
            promoter(&db, b, "Baker").await,
        );
        let (xa, xb) = (
            payout(&db, a, pa, t0()).await,
            payout(&db, b, pb, t0()).await,
        );
        hold(&db, xa, by, None, None).await;
        hold(&db, xb, by, None, None).await;
        let manager = actor(by, UserRole::Manager, &[(a, Level::Manager)]);

        let found = financial_by_ids::<payouts::Entity>(&db.conn, &manager, &[xa, xb])
            .await
            .unwrap();
        assert_eq!(found.keys().copied().collect::<Vec<_>>(), [xa]);
        assert_eq!(
            financial_get::<payouts::Entity>(&db.conn, &manager, xb)
                .await
                .unwrap_err()
                .code(),
            "NOT_FOUND"
        );
        let all = PageArgs::default();
        let held = hold_pages(&db.conn, &manager, &[xa, xb], &all, true)
            .await
            .unwrap();
        assert_eq!(held[&xa].total_count, Some(1));
        assert!(held[&xb].edges.is_empty());
        let items = item_pages(&db.conn, &manager, &[xb], &all, false)
            .await
            .unwrap();
        assert!(items[&xb].edges.is_empty());
        let audit = audit_pages(&db.conn, &manager, &[xb], &all, false)
            .await
            .unwrap();
        assert!(audit[&xb].edges.is_empty());

        let by_promoter = pages_by_promoter(&db.conn, &manager, &[pa, pb], &counted())
            .await
            .unwrap();
        assert_eq!(by_promoter[&pa].total_count, Some(1));
        assert_eq!(by_promoter[&pb].total_count, Some(0));
        let by_venue = pages_by_venue(&db.conn, &manager, &[a, b], &counted())
            .await
            .unwrap();
        assert_eq!(by_venue[&a].as_ref().unwrap().total_count, Some(1));
        assert_eq!(by_venue[&b].as_ref().unwrap_err().code(), "NOT_FOUND");
    }

    #[tokio::test]
    async fn an_approver_is_visible_only_to_users_who_share_a_venue_with_them() {
        use prima_entity::enums::VenueRole;

        let db = db().await;
        let (a, b) = (venue(&db).await, venue(&db).await);
        let (approver, colleague, outsider) = (user(&db).await, user(&db).await, user(&db).await);
        grant(&db, approver, a, VenueRole::Owner).await;
        grant(&db, colleague, a, VenueRole::Manager).await;
        grant(&db, outsider, b, VenueRole::Manager).await;
        let everyone = [approver, colleague, outsider];

        let as_colleague = actor(colleague, UserRole::Manager, &[(a, Level::Manager)]);
        let seen = crate::users::by_ids(&db.conn, &as_colleague, &everyone)
            .await
            .unwrap();
        assert!(seen.contains_key(&approver) && seen.contains_key(&colleague));
        assert!(!seen.contains_key(&outsider));

        let as_outsider = actor(outsider, UserRole::Manager, &[(b, Level::Manager)]);
        let seen = crate::users::by_ids(&db.conn, &as_outsider, &everyone)
            .await
            .unwrap();
        assert_eq!(
            seen.keys().copied().collect::<Vec<_>>(),
            [outsider],
            "only themself"
        );

        let admin = actor(Uuid::new_v4(), UserRole::Admin, &[]);
        assert_eq!(
            crate::users::by_ids(&db.conn, &admin, &everyone)
                .await
                .unwrap()
                .len(),
            3
        );
    }

    #[tokio::test]
    async fn a_payout_list_filters_by_status_period_and_payment_date() {
        use prima_entity::enums::PayoutStatus;
        let db = db().await;
        let a = venue(&db).await;
        let p = promoter(&db, a, "Adams").await;
        // Weekly periods from t0, t0 + 7 d and t0 + 14 d; each scheduled a day after its end.
        let ids = [
            payout(&db, a, p, t0()).await,
            payout(&db, a, p, t0() + Duration::days(7)).await,
            payout(&db, a, p, t0() + Duration::days(14)).await,
        ];
        payouts::Entity::update_many()
            .col_expr(
                payouts::Column::Status,
                Expr::value(PayoutStatus::Completed),
            )
            .filter(payouts::Column::Id.eq(ids[0]))
            .exec(&db.conn)
            .await
            .unwrap();
        let owner = actor(Uuid::new_v4(), UserRole::Manager, &[(a, Level::Owner)]);
        let listed = async |filter: PayoutFilter| {
            let query = PayoutListQuery {
                filter,
                ..PayoutListQuery::default()
            };
            let pages = pages_by_venue(&db.conn, &owner, &[a], &query)
                .await
                .unwrap();
            let mut found: Vec<Uuid> = pages[&a]
                .as_ref()
                .unwrap()
                .edges
                .iter()
                .map(|e| e.node.id)
                .collect();
            found.sort_by_key(|id| ids.iter().position(|i| i == id));
            found
        };
        let drafts = PayoutFilter {
            statuses: vec![PayoutStatus::Draft],
            ..PayoutFilter::default()
        };
        assert_eq!(listed(drafts).await, [ids[1], ids[2]]);
        let from_the_second_week = PayoutFilter {
            period_from: Some(t0() + Duration::days(7)),
            ..PayoutFilter::default()
        };
        assert_eq!(listed(from_the_second_week).await, [ids[1], ids[2]]);
        let ending_by_the_second_week = PayoutFilter {
            period_to: Some(t0() + Duration::days(14)),
            ..PayoutFilter::default()
        };
        assert_eq!(listed(ending_by_the_second_week).await, [ids[0], ids[1]]);
        // Scheduled at t0 + 8 d, + 15 d, + 22 d: [t0 + 15 d, t0 + 22 d) holds only the second.
        let scheduled = PayoutFilter {
            scheduled_from: Some(t0() + Duration::days(15)),
            scheduled_to: Some(t0() + Duration::days(22)),
            ..PayoutFilter::default()
        };
        assert_eq!(listed(scheduled).await, [ids[1]]);
    }

    #[tokio::test]
    async fn a_coordinator_is_forbidden_a_venues_payouts_and_periods_come_newest_first() {
        let db = db().await;
        let a = venue(&db).await;
        let p = promoter(&db, a, "Adams").await;
        let old = payout(&db, a, p, t0()).await;
        let new = payout(&db, a, p, t0() + Duration::days(7)).await;
        let coordinator = actor(
            Uuid::new_v4(),
            UserRole::Coordinator,
            &[(a, Level::Coordinator)],
        );
        let pages = pages_by_venue(&db.conn, &coordinator, &[a], &PayoutListQuery::default())
            .await
            .unwrap();
        assert_eq!(pages[&a].as_ref().unwrap_err().code(), "FORBIDDEN");

        let owner = actor(Uuid::new_v4(), UserRole::Manager, &[(a, Level::Owner)]);
        let pages = pages_by_venue(&db.conn, &owner, &[a], &PayoutListQuery::default())
            .await
            .unwrap();
        let ids: Vec<Uuid> = pages[&a]
            .as_ref()
            .unwrap()
            .edges
            .iter()
            .map(|e| e.node.id)
            .collect();
        assert_eq!(ids, [new, old]);
    }
}
