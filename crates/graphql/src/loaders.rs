//! Per-request dataloaders: every relation field resolves through here, so the number of SQL
//! statements of a query grows with its depth, never with its number of rows.
//!
//! One [`Loaders`] serves every key type. Each key type maps to one batch function of the
//! service, which applies the caller's access in SQL (a loader never returns a row the
//! caller could not get from a top-level query). Nested connections load through the same
//! loader with the keys of [`crate::connection`]. The request's [`crate::batch::Batcher`]
//! gathers the keys: one round per level of the selection, whatever the machine's load.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use prima_service::Error;
use prima_service::access::Actor;
use prima_service::access::scope::financial_by_ids;
use prima_service::db::Db;
use uuid::Uuid;

/// The most keys one statement takes (a round with more runs several): above the most
/// keys one query level can produce at the default limits (100 parents x 100 rows), and
/// far below PostgreSQL's 65,535 parameters of one statement.
pub const MAX_BATCH: usize = 10_000;

/// The loader state: the database and the caller whose access every batch applies.
pub struct Loaders {
    /// The database.
    pub db: Db,
    /// The caller.
    pub actor: Arc<Actor>,
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

by_id!(
    /// A promoter by id (financial reads at their venue).
    PromoterId => prima_entity::promoters::Model,
    financial_by_ids::<prima_entity::promoters::Entity>
);
by_id!(
    /// A commission rate by id.
    CommissionRateId => prima_entity::commission_rates::Model,
    financial_by_ids::<prima_entity::commission_rates::Entity>
);
by_id!(
    /// A ledger transaction by id.
    TransactionId => prima_entity::transactions::Model,
    financial_by_ids::<prima_entity::transactions::Entity>
);
by_id!(
    /// A booking's transactions, oldest first, or FORBIDDEN without financial reads.
    TransactionsOf => Result<Vec<prima_entity::transactions::Model>, Error>,
    prima_service::ledger::by_booking_ids
);
by_id!(
    /// A payout by id.
    PayoutId => prima_entity::payouts::Model,
    financial_by_ids::<prima_entity::payouts::Entity>
);
by_id!(
    /// An incentive programme by id.
    IncentiveId => prima_entity::incentives::Model,
    financial_by_ids::<prima_entity::incentives::Entity>
);
by_id!(
    /// A user by id: the caller, or someone who shares a venue with them.
    UserId => prima_entity::users::Model, prima_service::users::by_ids
);
by_id!(
    /// A pricing row by id, with its venue's currency.
    VenuePricingId => (prima_entity::venue_pricing::Model, String),
    prima_service::venues::pricing_by_ids
);
by_id!(
    /// An entry of a booking's history by id.
    HistoryEntryId => prima_entity::booking_history::Model,
    prima_service::bookings::history_by_ids
);
by_id!(
    /// A commission assignment by id.
    CommissionAssignmentId => prima_entity::commission_assignments::Model,
    prima_service::commissions::assignments_by_ids
);
by_id!(
    /// A payout item by id, with its payout's currency.
    PayoutItemId => (prima_entity::payout_items::Model, String),
    prima_service::payouts::items_by_ids
);
by_id!(
    /// A payout hold by id, with its payout's currency.
    PayoutHoldId => (prima_entity::payout_holds::Model, String),
    prima_service::payouts::holds_by_ids
);
by_id!(
    /// A payout audit entry by id.
    PayoutAuditId => prima_entity::payout_audit::Model,
    prima_service::payouts::audit_by_ids
);
by_id!(
    /// How a payout's amount was reached, by payout id.
    StatementOf => prima_service::payouts::balance::Statement,
    prima_service::payouts::balance::statements
);
by_id!(
    /// A promoter's balance at their venue, by promoter id.
    BalanceOf => prima_service::payouts::balance::Balance,
    prima_service::payouts::balance::balances
);
by_id!(
    /// An incentive progress row by id.
    ProgressId => prima_entity::incentive_progress::Model,
    prima_service::incentives::progress_by_ids
);

/// Which table an id names (Relay's `node` asks this before it reads the row through the
/// table's own loader and access rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KindOf(pub Uuid);

impl Loader<KindOf> for Loaders {
    type Value = prima_service::identify::Kind;
    type Error = Error;

    async fn load(&self, keys: &[KindOf]) -> Result<HashMap<KindOf, Self::Value>, Error> {
        let ids: Vec<Uuid> = keys.iter().map(|key| key.0).collect();
        let found = prima_service::identify::kinds(&self.db.conn, &ids).await?;
        Ok(found
            .into_iter()
            .map(|(id, kind)| (KindOf(id), kind))
            .collect())
    }
}
