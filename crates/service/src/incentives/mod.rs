//! Incentive programmes, their progress rows and leaderboards: reads scoped to the venues
//! where the caller holds financial reads (DOMAIN.md "Access", "Incentives").
//!
//! Progress rows have no venue of their own: they are scoped through their programme's
//! venue (`incentives.venue_id`), joined in the same SQL statement.
//!
//! The leaderboard uses competition ranking (equal values share a rank: 1, 2, 2, 4),
//! computed in SQL with `RANK() OVER (PARTITION BY incentive_id ORDER BY current_value
//! DESC)` over every participant, before paging, so a row's rank is the same on every
//! page. Rows of equal value are listed by promoter id.
//!
//! This file holds the reads; [`progress`] keeps the progress rows current in the
//! transaction of every booking change.

pub mod facts;
pub mod finalize;
pub mod manage;
pub mod progress;

#[cfg(test)]
mod manage_tests;

use std::collections::HashMap;

use prima_entity::{incentive_progress, incentives};
use sea_orm::sea_query::{Alias, Expr, Order, WindowStatement};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, JoinType, QueryFilter,
    QueryResult, QuerySelect, QueryTrait, RelationTrait,
};
use uuid::Uuid;

use crate::access::{Actor, Capability};
use crate::error::Result;
use crate::paging::{self, KeyKind, PARENT, Page, PageArgs, Sort};

const RANK: &str = "__rank";

/// A progress row with its leaderboard rank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ranked {
    /// The promoter's progress.
    pub progress: incentive_progress::Model,
    /// Competition rank within the programme: 1 for the highest value, equal values share
    /// a rank and the next rank skips (1, 2, 2, 4).
    pub rank: i64,
}

impl FromQueryResult for Ranked {
    fn from_query_result(row: &QueryResult, pre: &str) -> Result<Self, DbErr> {
        Ok(Ranked {
            progress: incentive_progress::Model::from_query_result(row, pre)?,
            rank: row.try_get(pre, RANK)?,
        })
    }
}

// By id and by venue: `access::scope::{financial_by_ids, financial_get, financial_pages}`,
// in the order below.

/// A venue's programmes: latest period first.
pub(crate) const INCENTIVE_SORT: Sort = Sort {
    name: "incentives.period_start.desc",
    keys: &[
        Sort::key("period_start", KeyKind::Time, true),
        Sort::key("id", KeyKind::Uuid, true),
    ],
};

/// Progress rows whose programme is at a venue where the caller holds financial reads.
fn visible_progress(actor: &Actor) -> sea_orm::Select<incentive_progress::Entity> {
    incentive_progress::Entity::find()
        .join(
            JoinType::InnerJoin,
            incentive_progress::Relation::Incentives.def(),
        )
        .filter(
            actor
                .venues_where(Capability::ReadFinancial)
                .condition((incentives::Entity, incentives::Column::VenueId)),
        )
}

/// The progress rows among `ids` that the caller may see (financial reads at the
/// programme's venue).
pub async fn progress_by_ids(
    db: &impl ConnectionTrait,
    actor: &Actor,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, incentive_progress::Model>> {
    let rows = visible_progress(actor)
        .filter(incentive_progress::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|row| (row.id, row)).collect())
}

const LEADERBOARD_SORT: Sort = Sort {
    name: "incentive_progress.leaderboard",
    keys: &[
        Sort::key("current_value", KeyKind::Int, true),
        // Unique within a programme (one progress row per promoter).
        Sort::key("promoter_id", KeyKind::Uuid, false),
    ],
};

/// For each programme, a page of its leaderboard: participants by value, highest first,
/// then by promoter id, each with its competition rank.
#[tracing::instrument(skip_all, fields(incentives = incentive_ids.len()))]
pub async fn leaderboard_pages(
    db: &impl ConnectionTrait,
    actor: &Actor,
    incentive_ids: &[Uuid],
    page: &PageArgs,
    with_total: bool,
) -> Result<HashMap<Uuid, Page<Ranked>>> {
    let window = page.window(&LEADERBOARD_SORT)?;
    let progress_col = |column| Expr::col((incentive_progress::Entity, column));
    let mut over = WindowStatement::partition_by((
        incentive_progress::Entity,
        incentive_progress::Column::IncentiveId,
    ));
    over.order_by(
        (
            incentive_progress::Entity,
            incentive_progress::Column::CurrentValue,
        ),
        Order::Desc,
    );
    let mut inner = visible_progress(actor)
        .filter(incentive_progress::Column::IncentiveId.is_in(incentive_ids.iter().copied()))
        .expr_as(
            progress_col(incentive_progress::Column::IncentiveId),
            PARENT,
        )
        .into_query();
    inner.expr_window_as(Expr::cust("RANK()"), over, Alias::new(RANK));
    let pages = paging::fetch_pages(
        db,
        inner,
        incentive_ids,
        &LEADERBOARD_SORT,
        &window,
        with_total,
    )
    .await?;
    Ok(paging::pages_for(incentive_ids, pages, &window, with_total))
}

/// One promoter's place in a programme, wherever it is on the leaderboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    /// Their progress row.
    pub progress: incentive_progress::Model,
    /// Competition rank: 1 + how many participants have a higher value.
    pub rank: i64,
    /// How far (hundredths of the unit) the next better value is: what moving up one rank
    /// takes. `None` for the leaders.
    pub gap_to_next_rank: Option<i64>,
    /// How many take part.
    pub participants: i64,
}

/// Where `promoter` stands in programme `incentive` (financial reads at its venue); `None`
/// when they do not take part or the caller cannot see it. Two statements: the row, then
/// the rank, the next better value and the count.
#[tracing::instrument(skip_all, fields(incentive = %incentive, promoter = %promoter))]
pub async fn standing(
    db: &impl ConnectionTrait,
    actor: &Actor,
    incentive: Uuid,
    promoter: Uuid,
) -> Result<Option<Standing>> {
    let Some(progress) = visible_progress(actor)
        .filter(incentive_progress::Column::IncentiveId.eq(incentive))
        .filter(incentive_progress::Column::PromoterId.eq(promoter))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let row = db
        .query_one_raw(sea_orm::Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT \
               (SELECT COUNT(*) FROM incentive_progress WHERE incentive_id = $1 AND current_value > $2), \
               (SELECT MIN(current_value) FROM incentive_progress WHERE incentive_id = $1 AND current_value > $2), \
               (SELECT COUNT(*) FROM incentive_progress WHERE incentive_id = $1)",
            [incentive.into(), progress.current_value.into()],
        ))
        .await?
        .ok_or_else(|| crate::error::Error::internal(anyhow::anyhow!("no standing row")))?;
    let above: i64 = row.try_get_by_index(0)?;
    let next: Option<i64> = row.try_get_by_index(1)?;
    let participants: i64 = row.try_get_by_index(2)?;
    Ok(Some(Standing {
        gap_to_next_rank: next.map(|v| v - progress.current_value),
        rank: above + 1,
        participants,
        progress,
    }))
}

const PROGRESS_SORT: Sort = Sort {
    name: "incentive_progress.created_at.desc",
    keys: &[
        Sort::key("created_at", KeyKind::Time, true),
        Sort::key("id", KeyKind::Uuid, true),
    ],
};

/// For each promoter, a page of their progress rows (one per programme they take part in)
/// at venues where the caller holds financial reads, newest first.
#[tracing::instrument(skip_all, fields(promoters = promoter_ids.len()))]
pub async fn progress_pages_by_promoter(
    db: &impl ConnectionTrait,
    actor: &Actor,
    promoter_ids: &[Uuid],
    page: &PageArgs,
    with_total: bool,
) -> Result<HashMap<Uuid, Page<incentive_progress::Model>>> {
    let window = page.window(&PROGRESS_SORT)?;
    let inner = visible_progress(actor)
        .filter(incentive_progress::Column::PromoterId.is_in(promoter_ids.iter().copied()))
        .expr_as(
            Expr::col((
                incentive_progress::Entity,
                incentive_progress::Column::PromoterId,
            )),
            PARENT,
        )
        .into_query();
    let pages =
        paging::fetch_pages(db, inner, promoter_ids, &PROGRESS_SORT, &window, with_total).await?;
    Ok(paging::pages_for(promoter_ids, pages, &window, with_total))
}

#[cfg(test)]
mod tests {
    use prima_entity::enums::UserRole;

    use super::*;
    use crate::access::Level;
    use crate::access::scope::{financial_by_ids, financial_get, financial_pages};
    use crate::testing::fixtures::*;

    #[tokio::test]
    async fn the_leaderboard_ranks_ties_alike_and_skips_the_next_rank() {
        let db = db().await;
        let by = user(&db).await;
        let a = venue(&db).await;
        let program = incentive(&db, a, by).await;
        let mut promoters = Vec::new();
        for (name, value) in [("A", 900), ("B", 500), ("C", 500), ("D", 100), ("E", 0)] {
            let p = promoter(&db, a, name).await;
            progress(&db, program, p, value).await;
            promoters.push((p, value));
        }
        let admin = actor(by, UserRole::Admin, &[]);
        let pages = leaderboard_pages(&db.conn, &admin, &[program], &PageArgs::default(), true)
            .await
            .unwrap();
        let page = &pages[&program];
        assert_eq!(page.total_count, Some(5));
        let ranks: Vec<(i64, i64)> = page
            .edges
            .iter()
            .map(|e| (e.node.progress.current_value, e.node.rank))
            .collect();
        assert_eq!(ranks, [(900, 1), (500, 2), (500, 2), (100, 4), (0, 5)]);
        // Equal values are listed by promoter id.
        let tied: Vec<Uuid> = page.edges[1..3]
            .iter()
            .map(|e| e.node.progress.promoter_id)
            .collect();
        assert!(tied[0] < tied[1]);

        // Paging keeps each row's rank: the rank is computed over the whole programme.
        let second = leaderboard_pages(
            &db.conn,
            &admin,
            &[program],
            &PageArgs {
                first: Some(2),
                after: Some(page.edges[2].cursor.clone()),
                ..Default::default()
            },
            false,
        )
        .await
        .unwrap();
        let ranks: Vec<i64> = second[&program].edges.iter().map(|e| e.node.rank).collect();
        assert_eq!(ranks, [4, 5]);
        assert!(!second[&program].has_next_page);

        // Any promoter's standing, in the top or not: rank and the gap to the next rank.
        for (promoter, value) in &promoters {
            let found = standing(&db.conn, &admin, program, *promoter)
                .await
                .unwrap()
                .unwrap();
            let expected = match value {
                900 => (1, None),
                500 => (2, Some(400)),
                100 => (4, Some(400)),
                _ => (5, Some(100)),
            };
            assert_eq!((found.rank, found.gap_to_next_rank), expected, "{value}");
            assert_eq!(found.participants, 5);
        }
        let outsider = promoter(&db, a, "Outsider").await;
        assert!(
            standing(&db.conn, &admin, program, outsider)
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_manager_of_venue_a_gets_no_incentive_or_progress_of_venue_b() {
        let db = db().await;
        let by = user(&db).await;
        let (a, b) = (venue(&db).await, venue(&db).await);
        let (ia, ib) = (incentive(&db, a, by).await, incentive(&db, b, by).await);
        // One promoter of A takes part in a programme of B.
        let p = promoter(&db, a, "Adams").await;
        progress(&db, ia, p, 100).await;
        progress(&db, ib, p, 200).await;
        let manager = actor(by, UserRole::Manager, &[(a, Level::Manager)]);

        let found = financial_by_ids::<incentives::Entity>(&db.conn, &manager, &[ia, ib])
            .await
            .unwrap();
        assert_eq!(found.keys().copied().collect::<Vec<_>>(), [ia]);
        assert_eq!(
            financial_get::<incentives::Entity>(&db.conn, &manager, ib)
                .await
                .unwrap_err()
                .code(),
            "NOT_FOUND"
        );
        let boards = leaderboard_pages(&db.conn, &manager, &[ia, ib], &PageArgs::default(), true)
            .await
            .unwrap();
        assert_eq!(boards[&ia].total_count, Some(1));
        assert_eq!(boards[&ib].total_count, Some(0));
        let mine = progress_pages_by_promoter(&db.conn, &manager, &[p], &PageArgs::default(), true)
            .await
            .unwrap();
        assert_eq!(mine[&p].total_count, Some(1));
        assert_eq!(mine[&p].edges[0].node.incentive_id, ia);
        let by_venue = financial_pages::<incentives::Entity>(
            &db.conn,
            &manager,
            &[a, b],
            &PageArgs::default(),
            false,
        )
        .await
        .unwrap();
        assert_eq!(by_venue[&a].as_ref().unwrap().edges.len(), 1);
        assert!(by_venue[&b].is_err());
    }

    #[tokio::test]
    async fn a_coordinator_is_forbidden_a_venues_incentives() {
        let db = db().await;
        let by = user(&db).await;
        let a = venue(&db).await;
        incentive(&db, a, by).await;
        let coordinator = actor(by, UserRole::Coordinator, &[(a, Level::Coordinator)]);
        let pages = financial_pages::<incentives::Entity>(
            &db.conn,
            &coordinator,
            &[a],
            &PageArgs::default(),
            false,
        )
        .await
        .unwrap();
        assert_eq!(pages[&a].as_ref().unwrap_err().code(), "FORBIDDEN");
    }
}
