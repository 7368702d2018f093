//! A booking change that PostgreSQL gives up on (here: the victim of a deadlock that a test
//! transaction closes on purpose) runs again whole, and what it writes exists once: the
//! booking, its aggregates and its idempotency key, which then replays it.

use chrono::Duration;
use prima_entity::enums::{BookingType, UserRole};
use prima_entity::{bookings, idempotency_keys, venue_pricing};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, Statement, TransactionTrait,
};
use uuid::Uuid;

use super::create::*;
use super::*;
use crate::access::Level;
use crate::testing::fixtures::{self, t0};

/// A venue priced 50.00 a diner (NON_PRIME, 10 % platform fee), a guest and an ACTIVE
/// promoter of it, and its manager.
async fn world() -> (crate::testing::TestDb, Uuid, Uuid, Uuid, Actor) {
    let db = fixtures::db().await;
    let venue = fixtures::venue(&db).await;
    let manager = fixtures::actor(
        fixtures::user(&db).await,
        UserRole::Manager,
        &[(venue, Level::Manager)],
    );
    venue_pricing::Model {
        id: Uuid::new_v4(),
        venue_id: venue,
        non_prime_per_diner: 5_000,
        non_prime_platform_fee_percent: 1_000,
        prime_base_for_2: 12_000,
        prime_additional_per_person: 4_000,
        prime_platform_fee_percent: 1_500,
        minimum_booking_amount: 0,
        minimum_party_size: 1,
        maximum_party_size: 20,
        early_bird_discount_percent: None,
        repeat_customer_discount_percent: None,
        group_discount_percent: None,
        effective_from: t0() - Duration::days(365),
        effective_to: None,
        is_active: true,
        updated_by: None,
        created_at: t0() - Duration::days(365),
        updated_at: t0() - Duration::days(365),
    }
    .into_active_model()
    .insert(&db.conn)
    .await
    .unwrap();
    let guest = crate::guests::write::create_guest(
        &db.conn,
        &manager,
        crate::guests::write::NewGuest {
            venue_id: venue,
            first_name: "Gale".into(),
            last_name: "Guest".into(),
            email: format!("{}@example.com", Uuid::new_v4()),
            phone: None,
            birth_date: None,
            gender: None,
            dietary_restrictions: vec![],
            seating_preference: None,
            communication_email: None,
            communication_sms: None,
            communication_push: None,
            tags: vec![],
        },
    )
    .await
    .unwrap()
    .guest
    .id;
    let promoter = fixtures::promoter(&db, venue, "Adams").await;
    (db, venue, guest, promoter, manager)
}

fn no_op(db: &impl ConnectionTrait, table: &str, id: Uuid) -> Statement {
    Statement::from_sql_and_values(
        db.get_database_backend(),
        format!("UPDATE {table} SET updated_at = updated_at WHERE id = $1"),
        [id.into()],
    )
}

#[tokio::test]
async fn a_keyed_booking_that_loses_a_deadlock_runs_again_is_made_once_and_replays() {
    let (db, venue, guest, promoter, manager) = world().await;
    if !db.is_postgres() {
        eprintln!("skipped: a deadlock needs PostgreSQL (TEST_DATABASE_URL)");
        return;
    }
    let input = NewBooking {
        venue_id: venue,
        guest_id: guest,
        promoter_id: Some(promoter),
        booking_type: BookingType::NonPrime,
        diners: 2,
        booking_time: t0() + Duration::days(2),
        duration_minutes: None,
        special_requests: None,
        notes: None,
        source: None,
        client: ClientInfo::default(),
    };
    let retried_before = crate::db::retry_counts().retried;

    // Another transaction holds the guest; the booking will lock the promoter, then wait
    // for the guest; the other transaction then asks for the promoter: a deadlock, which
    // PostgreSQL breaks by failing the booking (it has waited longer).
    let other = db.conn.begin().await.unwrap();
    other
        .execute_raw(no_op(&other, "guests", guest))
        .await
        .unwrap();
    let create = create_booking_at(&db, &manager, input.clone(), Some("key-1"), t0());
    let close_the_cycle = async {
        let waiting = Statement::from_string(
            db.conn.get_database_backend(),
            "SELECT COUNT(*) AS n FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        );
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let row = db
                .conn
                .query_one_raw(waiting.clone())
                .await
                .unwrap()
                .unwrap();
            if row.try_get::<i64>("", "n").unwrap() > 0 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the booking never waited for the guest"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        // Granted once the booking's attempt is rolled back, which proves it was the victim.
        other
            .execute_raw(no_op(&other, "promoters", promoter))
            .await
            .unwrap();
        other.commit().await.unwrap();
    };
    let (made, ()) = tokio::join!(create, close_the_cycle);
    let made = made.expect("the booking is made on its next attempt");
    assert!(crate::db::retry_counts().retried > retried_before);

    // Once: one booking of the guest, one key, aggregates that count it once.
    let of_guest = bookings::Entity::find()
        .filter(bookings::Column::GuestId.eq(guest))
        .count(&db.conn)
        .await
        .unwrap();
    assert_eq!(of_guest, 1);
    let keys = idempotency_keys::Entity::find()
        .filter(idempotency_keys::Column::Key.eq("key-1"))
        .all(&db.conn)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].resource_id, Some(made.id));
    let report = crate::check::run_at(&db.conn, None, t0()).await.unwrap();
    assert!(
        report.discrepancies.is_empty(),
        "{:#?}",
        report.discrepancies
    );

    // The key replays the booking that was made.
    let again = create_booking_at(&db, &manager, input, Some("key-1"), t0())
        .await
        .unwrap();
    assert_eq!(again.id, made.id);
}
