//! Promoters: reads scoped to the venues where the caller holds financial reads.
//!
//! Policy (DOMAIN.md "Access"): promoters are financial data, visible to MANAGER or above
//! at the promoter's venue and to a global ADMIN. A promoter of any other venue is
//! indistinguishable from one that does not exist; a venue's promoter list under a venue
//! the caller can read but without the capability is FORBIDDEN for that venue.
//!
//! This file holds the reads; [`write`](mod@write) signs promoters up, approves, suspends
//! and re-tiers them; [`metrics`] defines the promoter and guest ratios.

pub mod metrics;
pub mod write;

use crate::paging::{KeyKind, Sort};

// By id and by venue: `access::scope::{financial_by_ids, financial_get, financial_pages}`,
// in the order below.

/// A venue's promoters: by last name, first name, id.
pub(crate) const PROMOTER_SORT: Sort = Sort {
    name: "promoters.last_name.asc",
    keys: &[
        Sort::key("last_name", KeyKind::Text, false),
        Sort::key("first_name", KeyKind::Text, false),
        Sort::key("id", KeyKind::Uuid, false),
    ],
};

#[cfg(test)]
mod tests {
    use prima_entity::enums::UserRole;
    use prima_entity::promoters;
    use uuid::Uuid;

    use crate::access::Level;
    use crate::access::scope::{financial_by_ids, financial_get, financial_pages};
    use crate::paging::PageArgs;
    use crate::testing::fixtures::*;

    #[tokio::test]
    async fn a_manager_of_venue_a_gets_nothing_of_venue_b() {
        let db = db().await;
        let (a, b) = (venue(&db).await, venue(&db).await);
        let pa = promoter(&db, a, "Adams").await;
        let pb = promoter(&db, b, "Baker").await;
        let manager = actor(Uuid::new_v4(), UserRole::Manager, &[(a, Level::Manager)]);

        let found = financial_by_ids::<promoters::Entity>(&db.conn, &manager, &[pa, pb])
            .await
            .unwrap();
        assert!(found.contains_key(&pa));
        assert!(
            !found.contains_key(&pb),
            "a promoter of venue B must be invisible"
        );
        assert_eq!(
            financial_get::<promoters::Entity>(&db.conn, &manager, pb)
                .await
                .unwrap_err()
                .code(),
            "NOT_FOUND"
        );

        let pages = financial_pages::<promoters::Entity>(
            &db.conn,
            &manager,
            &[a, b],
            &PageArgs::default(),
            true,
        )
        .await
        .unwrap();
        let page_a = pages[&a].as_ref().unwrap();
        assert_eq!(page_a.edges.len(), 1);
        assert_eq!(page_a.total_count, Some(1));
        assert_eq!(pages[&b].as_ref().unwrap_err().code(), "NOT_FOUND");
    }

    #[tokio::test]
    async fn a_coordinator_is_forbidden_a_venues_promoters() {
        let db = db().await;
        let a = venue(&db).await;
        promoter(&db, a, "Adams").await;
        let coordinator = actor(
            Uuid::new_v4(),
            UserRole::Coordinator,
            &[(a, Level::Coordinator)],
        );
        let pages = financial_pages::<promoters::Entity>(
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

    #[tokio::test]
    async fn a_venues_promoters_are_ordered_by_last_then_first_name() {
        let db = db().await;
        let a = venue(&db).await;
        for name in ["Young", "Adams", "Miller"] {
            promoter(&db, a, name).await;
        }
        let admin = actor(Uuid::new_v4(), UserRole::Admin, &[]);
        let pages = financial_pages::<promoters::Entity>(
            &db.conn,
            &admin,
            &[a],
            &PageArgs {
                first: Some(2),
                ..Default::default()
            },
            false,
        )
        .await
        .unwrap();
        let page = pages[&a].as_ref().unwrap();
        let names: Vec<&str> = page
            .edges
            .iter()
            .map(|e| e.node.last_name.as_str())
            .collect();
        assert_eq!(names, ["Adams", "Miller"]);
        assert!(page.has_next_page);
    }
}
