//! The relay, the hub and the bus together, against a real database (and Redis with
//! `TEST_REDIS_URL`).

use std::sync::Arc;
use std::time::Duration;

use prima_entity::outbox_events;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    TransactionTrait,
};
use uuid::Uuid;

use super::bus::Bus;
use super::hub::{Following, Hub};
use super::relay::{Relay, RelayOptions};
use super::{Event, Events};
use crate::testing::TestDb;

async fn append(db: &impl ConnectionTrait, n: usize) {
    for i in 0..n {
        super::outbox::append(
            db,
            super::outbox::BOOKING_CHANGED,
            None,
            serde_json::json!({ "n": i }),
            crate::time::now(),
        )
        .await
        .unwrap();
    }
}

async fn seqs(db: &TestDb) -> Vec<(i64, Option<i64>)> {
    outbox_events::Entity::find()
        .order_by_asc(outbox_events::Column::Id)
        .all(&db.conn)
        .await
        .unwrap()
        .into_iter()
        .map(|row| (row.id, row.seq))
        .collect()
}

fn relay(db: &TestDb, hub: &Arc<Hub>) -> Relay {
    Relay {
        db: db.conn.clone(),
        bus: Bus::InProcess,
        hub: hub.clone(),
    }
}

async fn received(rx: &mut Following) -> Vec<i64> {
    let mut out = Vec::new();
    while let Ok(event) = rx.try_recv() {
        out.push(event.seq);
    }
    out
}

#[tokio::test]
async fn numbering_is_gap_free_in_id_order_and_publishing_marks_rows() {
    let db = TestDb::new().await;
    let hub = Hub::new(db.conn.clone()).await.unwrap();
    let (mut rx, last) = hub.subscribe().await;
    assert_eq!(last, 0);
    append(&db.conn, 3).await;
    let relay = relay(&db, &hub);
    assert_eq!(relay.number().await.unwrap(), 3);
    let numbered = seqs(&db).await;
    assert_eq!(
        numbered.iter().map(|(_, s)| *s).collect::<Vec<_>>(),
        [Some(1), Some(2), Some(3)]
    );
    append(&db.conn, 2).await;
    assert_eq!(relay.number().await.unwrap(), 2);
    assert_eq!(relay.number().await.unwrap(), 0, "nothing left to number");
    assert_eq!(relay.publish().await.unwrap(), 5);
    assert_eq!(relay.publish().await.unwrap(), 0, "published once");
    assert_eq!(received(&mut rx).await, [1, 2, 3, 4, 5]);
    let unpublished = outbox_events::Entity::find()
        .filter(outbox_events::Column::PublishedAt.is_null())
        .count(&db.conn)
        .await
        .unwrap();
    assert_eq!(unpublished, 0);
}

#[tokio::test]
async fn a_row_committed_late_is_numbered_after_the_rows_already_visible() {
    let db = TestDb::new().await;
    if db.conn.get_database_backend() != DbBackend::Postgres {
        // SQLite has one writer: a row cannot commit after a later one.
        return;
    }
    let hub = Hub::new(db.conn.clone()).await.unwrap();
    let relay = relay(&db, &hub);
    // id 1 is inserted first but commits last.
    let slow = db.conn.begin().await.unwrap();
    append(&slow, 1).await;
    append(&db.conn, 1).await;
    assert_eq!(relay.number().await.unwrap(), 1);
    slow.commit().await.unwrap();
    assert_eq!(relay.number().await.unwrap(), 1);
    let numbered = seqs(&db).await;
    // The late row (smaller id) gets the larger seq: "after 1" still finds it.
    assert!(numbered[0].0 < numbered[1].0);
    assert_eq!((numbered[0].1, numbered[1].1), (Some(2), Some(1)));
}

#[tokio::test]
async fn concurrent_writers_and_relays_number_every_row_once_without_gaps() {
    let db = TestDb::new().await;
    let hub = Hub::new(db.conn.clone()).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let conn = db.conn.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..25 {
                append(&conn, 1).await;
            }
        }));
    }
    for _ in 0..3 {
        let relay = relay(&db, &hub);
        tasks.push(tokio::spawn(async move {
            for _ in 0..10 {
                relay.number().await.unwrap();
                tokio::task::yield_now().await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    relay(&db, &hub).number().await.unwrap();
    let mut numbered: Vec<i64> = seqs(&db)
        .await
        .into_iter()
        .map(|(_, s)| s.unwrap())
        .collect();
    numbered.sort();
    assert_eq!(numbered, (1..=100).collect::<Vec<_>>());
}

#[tokio::test]
async fn the_hub_delivers_in_order_drops_duplicates_and_fills_gaps_from_the_outbox() {
    let db = TestDb::new().await;
    let hub = Hub::new(db.conn.clone()).await.unwrap();
    let (mut rx, _) = hub.subscribe().await;
    append(&db.conn, 5).await;
    relay(&db, &hub).number().await.unwrap();
    let event = |seq: i64| Event {
        seq,
        topic: "t".into(),
        venue_id: None,
        payload: serde_json::json!({}),
        created_at: crate::time::now(),
    };
    // 3 arrives first: 1 and 2 are read from the outbox before it.
    hub.deliver(vec![event(3)]).await.unwrap();
    assert_eq!(received(&mut rx).await, [1, 2, 3]);
    hub.deliver(vec![event(2), event(3)]).await.unwrap();
    assert!(received(&mut rx).await.is_empty(), "duplicates are dropped");
    hub.deliver(vec![event(5), event(4)]).await.unwrap();
    assert_eq!(received(&mut rx).await, [4, 5]);
    append(&db.conn, 1).await;
    relay(&db, &hub).number().await.unwrap();
    hub.catch_up().await.unwrap();
    assert_eq!(
        received(&mut rx).await,
        [6],
        "the poll finds what no bus brought"
    );
}

/// Two replicas on one database and one Redis channel, neither polling the outbox: what
/// one publishes reaches the other through Redis. A held relay (a process that died
/// between commit and publish) publishes nothing; the next relay to start does.
#[tokio::test]
async fn events_cross_replicas_through_redis_and_a_held_event_is_published_after_restart() {
    let Some(url) = std::env::var("TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        return;
    };
    let db = TestDb::new().await;
    let options = RelayOptions {
        channel: format!("prima:test:{}", Uuid::new_v4()),
        poll: Duration::from_secs(3600),
        sweep: Duration::from_millis(100),
        ..RelayOptions::default()
    };
    let client = || Some(redis::Client::open(url.as_str()).unwrap());
    let held = Events::start(
        &db,
        client(),
        RelayOptions {
            hold: true,
            ..options.clone()
        },
    )
    .await
    .unwrap();
    let watcher = Events::start(
        &db,
        client(),
        RelayOptions {
            hold: true,
            ..options.clone()
        },
    )
    .await
    .unwrap();
    let (mut rx, _) = watcher.hub.subscribe().await;
    // Let the watcher's listener subscribe.
    tokio::time::sleep(Duration::from_millis(300)).await;
    append(&db.conn, 1).await;
    held.written();
    let nothing = tokio::time::timeout(Duration::from_millis(600), rx.recv()).await;
    assert!(nothing.is_err(), "a held relay publishes nothing");
    drop(held);
    let restarted = Events::start(&db, client(), options.clone()).await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("delivered after the restart")
        .unwrap();
    assert_eq!(event.seq, 1);
    append(&db.conn, 1).await;
    restarted.written();
    let event = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("delivered through redis")
        .unwrap();
    assert_eq!(event.seq, 2);
}

#[tokio::test]
async fn the_hub_routes_each_event_only_to_the_feeds_of_its_topic_and_venue() {
    use super::hub::{Audience, Route};
    let db = TestDb::new().await;
    let hub = Hub::new(db.conn.clone()).await.unwrap();
    let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
    let route = |topic: &'static str, venues: Option<Vec<Uuid>>| Route {
        topic: Some(topic),
        venues: venues.map(|v| v.into_iter().collect()),
    };
    let (mut at_a, _) = hub
        .follow(route("t", Some(vec![a])), Audience::new(1))
        .await;
    let (mut at_both, _) = hub
        .follow(route("t", Some(vec![a, b])), Audience::new(1))
        .await;
    let (mut everywhere, _) = hub.follow(route("t", None), Audience::new(3)).await;
    let (mut other_topic, _) = hub.follow(route("u", None), Audience::new(1)).await;
    let (mut everything, _) = hub.subscribe().await;
    assert_eq!((hub.feeds(), hub.subscribers()), (5, 7));
    let event = |seq: i64, topic: &str, venue: Option<Uuid>| Event {
        seq,
        topic: topic.into(),
        venue_id: venue,
        payload: serde_json::json!({}),
        created_at: crate::time::now(),
    };
    hub.deliver(vec![
        event(1, "t", Some(a)),
        event(2, "t", Some(b)),
        event(3, "u", Some(a)),
        event(4, "t", None),
    ])
    .await
    .unwrap();
    assert_eq!(received(&mut at_a).await, [1, 4]);
    assert_eq!(received(&mut at_both).await, [1, 2, 4], "each event once");
    assert_eq!(received(&mut everywhere).await, [1, 2, 4]);
    assert_eq!(received(&mut other_topic).await, [3]);
    assert_eq!(received(&mut everything).await, [1, 2, 3, 4]);

    // A feed that follows other venues from now on; one that leaves is forgotten.
    at_a.reroute(Some(&[b].into_iter().collect()));
    drop(at_both);
    assert_eq!((hub.feeds(), hub.subscribers()), (4, 6));
    hub.deliver(vec![event(5, "t", Some(a)), event(6, "t", Some(b))])
        .await
        .unwrap();
    assert_eq!(received(&mut at_a).await, [6]);
    assert_eq!(received(&mut everywhere).await, [5, 6]);
}

#[tokio::test]
async fn a_feed_whose_queue_overflowed_reads_what_it_missed_from_the_outbox() {
    use super::feed::{FeedFilter, FeedOptions, feed};
    use crate::access::{Actor, Capability};
    use futures::StreamExt;
    let db = TestDb::new().await;
    let hub = Hub::new(db.conn.clone()).await.unwrap();
    let admin = Arc::new(Actor {
        user_id: Uuid::new_v4(),
        name: "Admin".into(),
        role: prima_entity::enums::UserRole::Admin,
        venues: Arc::default(),
    });
    let filter = FeedFilter {
        topic: super::outbox::BOOKING_CHANGED,
        capability: Capability::Read,
        venues: None,
        accept: Box::new(|_| true),
    };
    let stream = feed(
        db.conn.clone(),
        hub.clone(),
        admin,
        filter,
        None,
        // The admin exists only here: no re-check during the test.
        FeedOptions {
            revalidate: Duration::from_secs(3600),
            audience: None,
        },
    )
    .await
    .unwrap();
    // More events than a feed's queue holds arrive while it is not read.
    let n = 1_100;
    append(&db.conn, n).await;
    relay(&db, &hub).number().await.unwrap();
    hub.catch_up().await.unwrap();
    let seqs: Vec<i64> = tokio::time::timeout(
        Duration::from_secs(10),
        stream.take(n).map(|event| event.seq).collect(),
    )
    .await
    .expect("every event arrives");
    assert_eq!(
        seqs,
        (1..=n as i64).collect::<Vec<_>>(),
        "all, in order, once"
    );
}

#[tokio::test]
async fn re_reading_many_subscribers_at_once_costs_a_few_statements_not_two_each() {
    use crate::testing::fixtures;
    use prima_entity::enums::VenueRole;
    let db = TestDb::new().await;
    let hub = Hub::new(db.conn.clone()).await.unwrap();
    let venue = fixtures::venue(&db).await;
    let mut ids = Vec::new();
    for _ in 0..60 {
        let id = fixtures::user(&db).await;
        fixtures::grant(&db, id, venue, VenueRole::Coordinator).await;
        ids.push(id);
    }
    let suspended = ids[7];
    fixtures::suspend(&db, suspended).await;
    let gone = Uuid::new_v4();
    ids.push(gone);

    let before = db.stats.statements();
    let asked = ids.iter().map(|id| hub.actor(*id, Duration::from_secs(60)));
    let actors = futures::future::join_all(asked).await;
    let statements = db.stats.statements() - before;
    // The first ask starts a read of one user; the other 60 wait for the next round.
    assert!(statements <= 4, "{statements} statements for 61 users");
    for (id, actor) in ids.iter().zip(&actors) {
        match *id {
            id if id == suspended || id == gone => {
                assert_eq!(actor.as_ref().unwrap_err().code(), "UNAUTHENTICATED")
            }
            id => {
                let actor = actor.as_ref().unwrap();
                assert_eq!(actor.user_id, id);
                assert!(actor.can(venue, crate::access::Capability::WriteBookings));
            }
        }
    }
    // Fresh entries are answered without a statement.
    let before = db.stats.statements();
    hub.actor(ids[0], Duration::from_secs(60)).await.unwrap();
    hub.actor(suspended, Duration::from_secs(60))
        .await
        .unwrap_err();
    assert_eq!(db.stats.statements(), before);
}
