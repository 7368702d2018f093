//! The end of a write transaction, sent in one round trip: the inserts and updates a change
//! makes after it holds every lock it needs and whose results it never reads back (its
//! history row, its ledger rows, its outbox events, a column of a row it already locked).
//!
//! Each is a round trip of its own when sent as it is made; collected in a [`Tail`] and sent
//! just before the commit they are, on PostgreSQL, one statement (each a data-modifying
//! `WITH` term, which PostgreSQL runs whether or not the main query refers to it, all on the
//! statement's one snapshot), and on SQLite (no data-modifying `WITH`) one statement each, in
//! the order they were added. Outbox rows, whatever their topic, go in one multi-row INSERT
//! after the rest, in the order they were added (their `id`s follow it).
//!
//! What belongs in a tail: a write no later statement of the transaction reads, that waits
//! for no other transaction (inserts of new rows; an update of rows only the holder of a
//! lock the transaction has may write, such as a booking's own row and ledger rows under
//! the booking's lock), and whose failure means the whole change fails (a tail has no
//! partial result). A write whose outcome decides what comes next (an idempotency key's unique
//! insert, a conditional update) is sent on its own.

use chrono::{DateTime, Utc};
use prima_entity::outbox_events;
use sea_orm::sea_query::{
    Alias, CommonTableExpression, Expr, InsertStatement, Query, SubQueryStatement, UpdateStatement,
    WithClause,
};
use sea_orm::{ConnectionTrait, DbBackend, EntityTrait};
use uuid::Uuid;

use crate::error::Result;

/// One write of a tail.
#[derive(Debug)]
enum Write {
    Insert(InsertStatement),
    Update(UpdateStatement),
}

/// Writes held for the end of a transaction (see the module documentation).
#[derive(Debug, Default)]
pub struct Tail {
    writes: Vec<Write>,
    events: Vec<outbox_events::ActiveModel>,
}

impl Tail {
    /// An empty tail.
    pub fn new() -> Tail {
        Tail::default()
    }

    /// Holds an INSERT.
    pub fn insert(&mut self, statement: InsertStatement) {
        self.writes.push(Write::Insert(statement));
    }

    /// Holds an UPDATE of rows no other transaction can be writing (see the module
    /// documentation).
    pub fn update(&mut self, statement: UpdateStatement) {
        self.writes.push(Write::Update(statement));
    }

    /// Holds an outbox row ([`crate::events::outbox`]): the relay numbers it once the
    /// transaction has committed.
    pub fn event(
        &mut self,
        topic: &str,
        venue_id: Option<Uuid>,
        payload: serde_json::Value,
        at: DateTime<Utc>,
    ) {
        self.events
            .push(crate::events::outbox::row(topic, venue_id, payload, at));
    }

    /// Sends everything held, inside `txn`.
    pub async fn send(self, txn: &impl ConnectionTrait) -> Result<()> {
        let mut writes = self.writes;
        if !self.events.is_empty() {
            let events = outbox_events::Entity::insert_many(self.events);
            writes.push(Write::Insert(sea_orm::QueryTrait::into_query(events)));
        }
        let backend = txn.get_database_backend();
        if backend == DbBackend::Postgres && writes.len() > 1 {
            let mut with = WithClause::new();
            for (i, write) in writes.into_iter().enumerate() {
                let query: SubQueryStatement = match write {
                    Write::Insert(insert) => insert.into(),
                    Write::Update(update) => update.into(),
                };
                with.cte(
                    CommonTableExpression::new()
                        .query(query)
                        .table_name(Alias::new(format!("w{i}")))
                        .to_owned(),
                );
            }
            let statement = with.query(Query::select().expr(Expr::val(1)).to_owned());
            txn.execute(&statement).await?;
            return Ok(());
        }
        for write in writes {
            match write {
                Write::Insert(insert) => txn.execute(&insert).await?,
                Write::Update(update) => txn.execute(&update).await?,
            };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use prima_entity::{outbox_events, venues};
    use sea_orm::sea_query::Expr;
    use sea_orm::{
        ColumnTrait, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter, QueryTrait,
        TransactionTrait,
    };

    use super::*;
    use crate::testing::fixtures::{self, t0};

    /// An update of the venue's name and two events, held in a tail.
    fn tail_of(venue: Uuid, name: &str) -> Tail {
        let mut tail = Tail::new();
        tail.update(
            venues::Entity::update_many()
                .col_expr(venues::Column::Name, Expr::value(name))
                .filter(venues::Column::Id.eq(venue))
                .into_query(),
        );
        for n in 0..2 {
            tail.event(
                "test.tail",
                Some(venue),
                serde_json::json!({ "n": n }),
                t0(),
            );
        }
        tail
    }

    #[tokio::test]
    async fn a_tail_is_one_statement_on_postgres_and_its_writes_land_in_order() {
        let db = fixtures::db().await;
        let venue = fixtures::venue(&db).await;
        let txn = db.conn.begin().await.unwrap();
        let before = db.stats.statements();
        tail_of(venue, "Renamed").send(&txn).await.unwrap();
        let sent = db.stats.statements() - before;
        txn.commit().await.unwrap();
        // PostgreSQL: one statement; SQLite: the update, then the events' one INSERT.
        assert_eq!(sent, if db.is_postgres() { 1 } else { 2 });
        let row = venues::Entity::find_by_id(venue)
            .one(&db.conn)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.name, "Renamed");
        let events: Vec<i64> = outbox_events::Entity::find()
            .filter(outbox_events::Column::Topic.eq("test.tail"))
            .all(&db.conn)
            .await
            .unwrap()
            .into_iter()
            .map(|e| {
                assert_eq!(e.venue_id, Some(venue));
                assert_eq!(e.seq, None, "numbered by the relay, not here");
                e.payload["n"].as_i64().unwrap()
            })
            .collect();
        assert_eq!(events, [0, 1], "in the order they were held");
    }

    #[tokio::test]
    async fn a_tail_that_fails_writes_nothing_of_the_change() {
        let db = fixtures::db().await;
        let venue = fixtures::venue(&db).await;
        let row = venues::Entity::find_by_id(venue)
            .one(&db.conn)
            .await
            .unwrap()
            .unwrap();
        let txn = db.conn.begin().await.unwrap();
        let mut tail = tail_of(venue, "Renamed");
        // The same venue again: a primary key violation, after the update and before the
        // events.
        tail.insert(venues::Entity::insert(row.into_active_model()).into_query());
        tail.send(&txn).await.unwrap_err();
        drop(txn);
        let row = venues::Entity::find_by_id(venue)
            .one(&db.conn)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.name, "Venue", "the update went with the transaction");
        let events = outbox_events::Entity::find()
            .filter(outbox_events::Column::Topic.eq("test.tail"))
            .count(&db.conn)
            .await
            .unwrap();
        assert_eq!(events, 0);
    }
}
