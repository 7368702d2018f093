//! Per-request dataloaders: every relation field resolves through here, so the number of SQL
//! statements of a query grows with its depth, never with its number of rows.
//!
//! One [`Loaders`] serves every key type. Each key type maps to one batch function of the
//! service, which applies the caller's access in SQL (a loader never returns a row the
//! caller could not get from a top-level query). Nested connections use [`PageOf`] keys:
//! keys that share the same query arguments are paged for all their parents at once.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use prima_service::Error;
use prima_service::access::Actor;
use prima_service::db::Db;
use prima_service::paging::Page;
use prima_service::paging::PagesOrDenied;
use uuid::Uuid;

/// How long a loader waits, by default, for more keys before it runs its batch. Sibling
/// fields of a list register their keys in one pass, well within this on an idle machine;
/// on a starved CPU a pass can take longer and a batch then splits in two (one more
/// statement, never one per row). `--batch-delay-ms` trades latency for that margin.
pub const BATCH_DELAY: Duration = Duration::from_millis(5);
/// The largest batch: above the most keys one query level can produce (100 parents x 100
/// rows), so a batch is never split and the statement count stays flat.
pub const MAX_BATCH: usize = 10_000;

/// The loader state: the database and the caller whose access every batch applies.
pub struct Loaders {
    /// The database.
    pub db: Db,
    /// The caller.
    pub actor: Arc<Actor>,
}

/// A dataloader for one request.
pub fn new_loader(db: Db, actor: Arc<Actor>, delay: Duration) -> DataLoader<Loaders, HashMapCache> {
    DataLoader::with_cache(Loaders { db, actor }, tokio::spawn, HashMapCache::default())
        .delay(delay)
        .max_batch_size(MAX_BATCH)
}

/// Declares a key type loading one value per id through a service batch function
/// `fn(db, actor, &[Uuid]) -> Result<HashMap<Uuid, V>>`.
macro_rules! by_id {
    ($(#[$doc:meta])* $key:ident => $value:ty, $batch:path) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $key(pub Uuid);

        impl Loader<$key> for Loaders {
            type Value = $value;
            type Error = Error;

            async fn load(&self, keys: &[$key]) -> Result<HashMap<$key, $value>, Error> {
                let ids: Vec<Uuid> = keys.iter().map(|key| key.0).collect();
                let found = $batch(&self.db.conn, &self.actor, &ids).await?;
                Ok(found.into_iter().map(|(id, value)| ($key(id), value)).collect())
            }
        }
    };
}

by_id!(
    /// A venue by id.
    VenueId => prima_entity::venues::Model, prima_service::venues::by_ids
);
by_id!(
    /// A booking by id.
    BookingId => prima_entity::bookings::Model, prima_service::bookings::by_ids
);
by_id!(
    /// A guest by id, masked for the caller.
    GuestId => prima_service::guests::GuestView, prima_service::guests::by_ids
);
by_id!(
    /// A guest's figures over the caller's venues (every venue for a global ADMIN).
    GuestFiguresOf => prima_service::guests::GuestFigures, prima_service::guests::figures_by_ids
);

/// The pricing in force now for a venue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PricingOf(pub Uuid);

impl Loader<PricingOf> for Loaders {
    type Value = prima_entity::venue_pricing::Model;
    type Error = Error;

    async fn load(&self, keys: &[PricingOf]) -> Result<HashMap<PricingOf, Self::Value>, Error> {
        let ids: Vec<Uuid> = keys.iter().map(|key| key.0).collect();
        let found = prima_service::venues::pricing_at(
            &self.db.conn,
            &self.actor,
            &ids,
            prima_service::time::now(),
        )
        .await?;
        Ok(found
            .into_iter()
            .map(|(id, row)| (PricingOf(id), row))
            .collect())
    }
}

/// A nested connection's query: how to page its rows for many parents at once.
pub trait PageQuery: Send + Sync + Hash + Eq + 'static {
    /// The row type.
    type Node: Clone + Send + Sync + 'static;

    /// One page per parent; a parent the caller may not list gets its own error.
    fn fetch(
        &self,
        db: &Db,
        actor: &Actor,
        parents: &[Uuid],
    ) -> impl Future<Output = Result<PagesOrDenied<Self::Node>, Error>> + Send;
}

/// One parent's page of a nested connection.
#[derive(Debug)]
pub struct PageOf<Q> {
    /// The parent's id.
    pub parent: Uuid,
    /// The connection's arguments, shared by the keys of one field.
    pub query: Arc<Q>,
}

impl<Q> Clone for PageOf<Q> {
    fn clone(&self) -> Self {
        PageOf {
            parent: self.parent,
            query: self.query.clone(),
        }
    }
}
impl<Q: PartialEq> PartialEq for PageOf<Q> {
    fn eq(&self, other: &Self) -> bool {
        self.parent == other.parent && self.query == other.query
    }
}
impl<Q: Eq> Eq for PageOf<Q> {}
impl<Q: Hash> Hash for PageOf<Q> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.parent.hash(state);
        self.query.hash(state);
    }
}

impl<Q: PageQuery> Loader<PageOf<Q>> for Loaders {
    type Value = Result<Page<Q::Node>, Error>;
    type Error = Error;

    async fn load(&self, keys: &[PageOf<Q>]) -> Result<HashMap<PageOf<Q>, Self::Value>, Error> {
        let mut groups: HashMap<Arc<Q>, Vec<Uuid>> = HashMap::new();
        for key in keys {
            groups
                .entry(key.query.clone())
                .or_default()
                .push(key.parent);
        }
        let mut out = HashMap::with_capacity(keys.len());
        for (query, parents) in groups {
            let pages = query.fetch(&self.db, &self.actor, &parents).await?;
            for (parent, page) in pages {
                out.insert(
                    PageOf {
                        parent,
                        query: query.clone(),
                    },
                    page,
                );
            }
        }
        Ok(out)
    }
}

/// Wraps pages that need no per-parent permission check.
pub fn all_ok<T>(pages: HashMap<Uuid, Page<T>>) -> HashMap<Uuid, Result<Page<T>, Error>> {
    pages.into_iter().map(|(id, page)| (id, Ok(page))).collect()
}

by_id!(
    /// A promoter by id (financial reads at their venue).
    PromoterId => prima_entity::promoters::Model, prima_service::promoters::by_ids
);
by_id!(
    /// A commission rate by id.
    CommissionRateId => prima_entity::commission_rates::Model,
    prima_service::commissions::rates_by_ids
);
by_id!(
    /// A ledger transaction by id.
    TransactionId => prima_entity::transactions::Model, prima_service::ledger::by_ids
);
by_id!(
    /// A booking's transactions, oldest first, or FORBIDDEN without financial reads.
    TransactionsOf => Result<Vec<prima_entity::transactions::Model>, Error>,
    prima_service::ledger::by_booking_ids
);
by_id!(
    /// A payout by id.
    PayoutId => prima_entity::payouts::Model, prima_service::payouts::by_ids
);
by_id!(
    /// An incentive programme by id.
    IncentiveId => prima_entity::incentives::Model, prima_service::incentives::by_ids
);
by_id!(
    /// A user by id: the caller, or someone who shares a venue with them.
    UserId => prima_entity::users::Model, prima_service::users::by_ids
);
