//! Commission rates and their assignments to promoters: reads scoped to the venues where
//! the caller holds financial reads (DOMAIN.md "Access", "Commissions").
//!
//! A rate belongs to a venue; an assignment has no venue of its own and is scoped through
//! its rate's venue (`commission_rates.venue_id`), in the same SQL statement.

use std::collections::HashMap;

use prima_entity::{commission_assignments, commission_rates};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, JoinType, QueryFilter, QuerySelect, QueryTrait,
    RelationTrait,
};
use uuid::Uuid;

use crate::access::{Actor, Capability};
use crate::error::Result;
use crate::paging::{self, KeyKind, PARENT, Page, PageArgs, Sort};
use crate::promoters::{PagesOrDenied, split_financial_venues, with_denied};

/// The commission rates among `ids` that the caller may see.
#[tracing::instrument(skip_all, fields(ids = ids.len()))]
pub async fn rates_by_ids(
    db: &impl ConnectionTrait,
    actor: &Actor,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, commission_rates::Model>> {
    let rows = commission_rates::Entity::find()
        .filter(commission_rates::Column::Id.is_in(ids.iter().copied()))
        .filter(
            actor
                .venues_where(Capability::ReadFinancial)
                .condition((commission_rates::Entity, commission_rates::Column::VenueId)),
        )
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|r| (r.id, r)).collect())
}

const RATE_SORT: Sort = Sort {
    name: "commission_rates.effective_from.desc",
    keys: &[
        Sort::key("effective_from", KeyKind::Time, true),
        Sort::key("id", KeyKind::Uuid, true),
    ],
};

/// For each venue, a page of its commission rates, newest `effective_from` first (history
/// included unless `active_only`); FORBIDDEN for a venue where the caller lacks financial
/// reads.
#[tracing::instrument(skip_all, fields(venues = venue_ids.len()))]
pub async fn rate_pages_by_venue(
    db: &impl ConnectionTrait,
    actor: &Actor,
    venue_ids: &[Uuid],
    active_only: bool,
    page: &PageArgs,
    with_total: bool,
) -> Result<PagesOrDenied<commission_rates::Model>> {
    let window = page.window(&RATE_SORT)?;
    let (allowed, denied) = split_financial_venues(actor, venue_ids);
    let pages = if allowed.is_empty() {
        HashMap::new()
    } else {
        let mut query = commission_rates::Entity::find()
            .filter(commission_rates::Column::VenueId.is_in(allowed.iter().copied()))
            .filter(
                actor
                    .venues_where(Capability::ReadFinancial)
                    .condition((commission_rates::Entity, commission_rates::Column::VenueId)),
            );
        if active_only {
            query = query.filter(commission_rates::Column::IsActive.eq(true));
        }
        let inner = query
            .expr_as(
                Expr::col((commission_rates::Entity, commission_rates::Column::VenueId)),
                PARENT,
            )
            .into_query();
        paging::fetch_pages(db, inner, &allowed, &RATE_SORT, &window, with_total).await?
    };
    Ok(with_denied(&allowed, pages, denied, &window, with_total))
}

const ASSIGNMENT_SORT: Sort = Sort {
    name: "commission_assignments.effective_from.desc",
    keys: &[
        Sort::key("effective_from", KeyKind::Time, true),
        Sort::key("id", KeyKind::Uuid, true),
    ],
};

/// For each promoter, a page of their commission assignments, newest `effective_from`
/// first, only those whose rate belongs to a venue where the caller holds financial reads.
#[tracing::instrument(skip_all, fields(promoters = promoter_ids.len()))]
pub async fn assignment_pages_by_promoter(
    db: &impl ConnectionTrait,
    actor: &Actor,
    promoter_ids: &[Uuid],
    page: &PageArgs,
    with_total: bool,
) -> Result<HashMap<Uuid, Page<commission_assignments::Model>>> {
    let window = page.window(&ASSIGNMENT_SORT)?;
    let inner = commission_assignments::Entity::find()
        .join(
            JoinType::InnerJoin,
            commission_assignments::Relation::CommissionRates.def(),
        )
        .filter(commission_assignments::Column::PromoterId.is_in(promoter_ids.iter().copied()))
        .filter(
            actor
                .venues_where(Capability::ReadFinancial)
                .condition((commission_rates::Entity, commission_rates::Column::VenueId)),
        )
        .expr_as(
            Expr::col((
                commission_assignments::Entity,
                commission_assignments::Column::PromoterId,
            )),
            PARENT,
        )
        .into_query();
    let pages = paging::fetch_pages(
        db,
        inner,
        promoter_ids,
        &ASSIGNMENT_SORT,
        &window,
        with_total,
    )
    .await?;
    Ok(paging::pages_for(promoter_ids, pages, &window, with_total))
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use prima_entity::enums::UserRole;

    use super::*;
    use crate::access::Level;
    use crate::promoters::fixtures::*;

    #[tokio::test]
    async fn a_manager_of_venue_a_gets_no_rate_or_assignment_of_venue_b() {
        let db = db().await;
        let by = user(&db).await;
        let (a, b) = (venue(&db).await, venue(&db).await);
        let (ra, rb) = (rate(&db, a, by, true).await, rate(&db, b, by, true).await);
        let pa = promoter(&db, a, "Adams").await;
        // A promoter of A assigned a rate of B: the assignment is B's business.
        assignment(&db, pa, ra, by, t0()).await;
        assignment(&db, pa, rb, by, t0() + Duration::days(1)).await;
        let manager = actor(by, UserRole::Manager, &[(a, Level::Manager)]);

        let rates = rates_by_ids(&db.conn, &manager, &[ra, rb]).await.unwrap();
        assert_eq!(rates.keys().copied().collect::<Vec<_>>(), [ra]);

        let pages = rate_pages_by_venue(
            &db.conn,
            &manager,
            &[a, b],
            false,
            &PageArgs::default(),
            true,
        )
        .await
        .unwrap();
        assert_eq!(pages[&a].as_ref().unwrap().total_count, Some(1));
        assert!(pages[&b].is_err());

        let assignments =
            assignment_pages_by_promoter(&db.conn, &manager, &[pa], &PageArgs::default(), true)
                .await
                .unwrap();
        let page = &assignments[&pa];
        assert_eq!(page.total_count, Some(1));
        assert_eq!(page.edges[0].node.commission_rate_id, ra);
    }

    #[tokio::test]
    async fn a_coordinator_is_forbidden_a_venues_rates() {
        let db = db().await;
        let by = user(&db).await;
        let a = venue(&db).await;
        rate(&db, a, by, true).await;
        let coordinator = actor(by, UserRole::Coordinator, &[(a, Level::Coordinator)]);
        let pages = rate_pages_by_venue(
            &db.conn,
            &coordinator,
            &[a],
            false,
            &PageArgs::default(),
            false,
        )
        .await
        .unwrap();
        assert_eq!(pages[&a].as_ref().unwrap_err().code(), "FORBIDDEN");
    }

    #[tokio::test]
    async fn active_only_leaves_out_inactive_rates_and_assignments_come_newest_first() {
        let db = db().await;
        let by = user(&db).await;
        let a = venue(&db).await;
        let live = rate(&db, a, by, true).await;
        rate(&db, a, by, false).await;
        let admin = actor(by, UserRole::Admin, &[]);
        let pages = rate_pages_by_venue(&db.conn, &admin, &[a], true, &PageArgs::default(), true)
            .await
            .unwrap();
        let page = pages[&a].as_ref().unwrap();
        assert_eq!(page.total_count, Some(1));
        assert_eq!(page.edges[0].node.id, live);

        let p = promoter(&db, a, "Adams").await;
        let old = assignment(&db, p, live, by, t0()).await;
        let new = assignment(&db, p, live, by, t0() + Duration::days(30)).await;
        let pages =
            assignment_pages_by_promoter(&db.conn, &admin, &[p], &PageArgs::default(), false)
                .await
                .unwrap();
        let ids: Vec<Uuid> = pages[&p].edges.iter().map(|e| e.node.id).collect();
        assert_eq!(ids, [new, old]);
    }
}
