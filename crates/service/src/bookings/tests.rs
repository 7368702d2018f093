//! The booking write path against a real database (SQLite in memory, or PostgreSQL with
//! `TEST_DATABASE_URL`): every transition allowed and refused, the ledger after each, each
//! commission model, idempotency, permissions, bad input, concurrency, and random sequences
//! that must keep every `prima check` invariant.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use prima_entity::enums::{
    BookingStatus, BookingType, CommissionModel, PromoterStatus, PromoterTier, TransactionStatus,
    TransactionType, UserRole,
};
use prima_entity::{
    booking_history, bookings, commission_assignments, commission_rates, guests, outbox_events,
    promoters, transactions, venue_pricing, venues,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter,
    QueryOrder, Set,
};
use uuid::Uuid;

use super::aggregates::refresh_month_fields;
use super::change::*;
use super::create::*;
use super::edit::*;
use super::refund::*;
use super::transition::*;
use super::*;
use crate::access::{Actor, Level};
use crate::testing::TestDb;
use crate::testing::fixtures::{self, t0};

/// "Now" for the tests: the fixtures' fixed instant.
fn now() -> DateTime<Utc> {
    t0()
}

/// A booking two days out (same calendar month as `now`).
fn later() -> DateTime<Utc> {
    now() + Duration::days(2)
}

/// After the booking time of [`later`].
fn after_it() -> DateTime<Utc> {
    later() + Duration::hours(3)
}

struct World {
    db: TestDb,
    venue: Uuid,
    guest: Uuid,
    promoter: Uuid,
    manager: Actor,
    coordinator: Actor,
    viewer: Actor,
    outsider: Actor,
    user: Uuid,
}

/// A venue with pricing (NON_PRIME 50.00 a diner, 10 % platform fee; PRIME 120.00 for two
/// plus 40.00 a person, 15 %; parties of 1 to 20), a guest, and an ACTIVE promoter on a
/// 10 % PERCENT_OF_SPEND assignment; staff of each role.
async fn world() -> World {
    let db = fixtures::db().await;
    let venue = fixtures::venue(&db).await;
    let other_venue = fixtures::venue(&db).await;
    let user = fixtures::user(&db).await;
    pricing_row(&db, venue).await;
    let manager = fixtures::actor(user, UserRole::Manager, &[(venue, Level::Manager)]);
    let coordinator = fixtures::actor(
        fixtures::user(&db).await,
        UserRole::Coordinator,
        &[(venue, Level::Coordinator)],
    );
    let viewer = fixtures::actor(
        fixtures::user(&db).await,
        UserRole::Viewer,
        &[(venue, Level::Viewer)],
    );
    let outsider = fixtures::actor(
        fixtures::user(&db).await,
        UserRole::Manager,
        &[(other_venue, Level::Owner)],
    );
    let guest = guest(&db, &manager, venue).await;
    let promoter = fixtures::promoter(&db, venue, "Promoter").await;
    let rate = rate(
        &db,
        venue,
        user,
        CommissionModel::PercentOfSpend,
        1000,
        |_| {},
    )
    .await;
    assign(&db, promoter, &rate).await;
    World {
        db,
        venue,
        guest,
        promoter,
        manager,
        coordinator,
        viewer,
        outsider,
        user,
    }
}

async fn pricing_row(db: &TestDb, venue: Uuid) {
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
        effective_from: now() - Duration::days(365),
        effective_to: None,
        is_active: true,
        updated_by: None,
        created_at: now() - Duration::days(365),
        updated_at: now() - Duration::days(365),
    }
    .into_active_model()
    .insert(&db.conn)
    .await
    .unwrap();
}

async fn guest(db: &TestDb, actor: &Actor, venue: Uuid) -> Uuid {
    crate::guests::write::create_guest(
        &db.conn,
        actor,
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
    .id
}

async fn rate(
    db: &TestDb,
    venue: Uuid,
    by: Uuid,
    model: CommissionModel,
    value: i64,
    tweak: impl FnOnce(&mut commission_rates::Model),
) -> commission_rates::Model {
    let mut row = commission_rates::Model {
        id: Uuid::new_v4(),
        venue_id: venue,
        tier: PromoterTier::Standard,
        model,
        value,
        minimum_booking: 0,
        maximum_payout: None,
        min_monthly_bookings: None,
        min_conversion_rate: None,
        max_cancel_rate: None,
        // Distinct starts: one active rate per (venue, tier, model, effective_from).
        effective_from: now() - Duration::days(365)
            + Duration::seconds((Uuid::new_v4().as_u128() % 100_000) as i64),
        effective_to: None,
        is_active: true,
        created_by: by,
        created_at: now() - Duration::days(365),
        updated_at: now() - Duration::days(365),
    };
    tweak(&mut row);
    row.clone()
        .into_active_model()
        .insert(&db.conn)
        .await
        .unwrap();
    row
}

/// Assigns a rate to a promoter, closing their previous assignment.
async fn assign(db: &TestDb, promoter: Uuid, rate: &commission_rates::Model) {
    commission_assignments::Entity::delete_many()
        .filter(commission_assignments::Column::PromoterId.eq(promoter))
        .exec(&db.conn)
        .await
        .unwrap();
    commission_assignments::Model {
        id: Uuid::new_v4(),
        promoter_id: promoter,
        commission_rate_id: rate.id,
        tier: rate.tier,
        model: rate.model,
        rate: rate.value,
        effective_from: now() - Duration::days(30),
        effective_to: None,
        assigned_by: rate.created_by,
        assigned_at: now() - Duration::days(30),
        notes: None,
    }
    .into_active_model()
    .insert(&db.conn)
    .await
    .unwrap();
}

fn new_booking(w: &World, diners: i32, promoter: bool) -> NewBooking {
    NewBooking {
        venue_id: w.venue,
        guest_id: w.guest,
        promoter_id: promoter.then_some(w.promoter),
        booking_type: BookingType::NonPrime,
        diners,
        booking_time: later(),
        duration_minutes: None,
        special_requests: None,
        notes: None,
        source: None,
        client: ClientInfo::default(),
    }
}

async fn create(w: &World, diners: i32, promoter: bool) -> bookings::Model {
    create_booking_at(
        &w.db,
        &w.manager,
        new_booking(w, diners, promoter),
        None,
        now(),
    )
    .await
    .unwrap()
}

async fn go(w: &World, id: Uuid, t: Transition, at: DateTime<Utc>) -> Result<bookings::Model> {
    transition_at(&w.db, &w.manager, id, t, at).await
}

fn cancel() -> Transition {
    Transition::Cancel {
        reason: "Guest called".into(),
    }
}

fn no_show() -> Transition {
    Transition::NoShow { reason: None }
}

/// (type, amount, status) of a booking's transactions, ordered by type.
async fn ledger(w: &World, booking: Uuid) -> Vec<(TransactionType, i64, TransactionStatus)> {
    let mut rows: Vec<_> = transactions::Entity::find()
        .filter(transactions::Column::BookingId.eq(booking))
        .all(&w.db.conn)
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.r#type, t.amount, t.status))
        .collect();
    rows.sort_by_key(|(kind, _, _)| kind.as_str());
    rows
}

/// Asserts `prima check` finds nothing, as of `at`.
async fn assert_clean(w: &World, at: DateTime<Utc>) {
    let report = crate::check::run_at(&w.db.conn, None, at).await.unwrap();
    assert!(
        report.discrepancies.is_empty(),
        "prima check found: {:#?}",
        report.discrepancies
    );
}

async fn counts(w: &World) -> (u64, u64, u64, u64) {
    let conn = &w.db.conn;
    (
        bookings::Entity::find().count(conn).await.unwrap(),
        booking_history::Entity::find().count(conn).await.unwrap(),
        transactions::Entity::find().count(conn).await.unwrap(),
        outbox_events::Entity::find().count(conn).await.unwrap(),
    )
}

async fn promoter_row(w: &World) -> promoters::Model {
    promoters::Entity::find_by_id(w.promoter)
        .one(&w.db.conn)
        .await
        .unwrap()
        .unwrap()
}

async fn guest_row(w: &World) -> guests::Model {
    guests::Entity::find_by_id(w.guest)
        .one(&w.db.conn)
        .await
        .unwrap()
        .unwrap()
}

fn field(err: &Error) -> &str {
    match err {
        Error::Invalid { field, .. } => field,
        other => panic!("expected BAD_USER_INPUT, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// The lifecycle table
// ---------------------------------------------------------------------------------------

#[test]
fn the_lifecycle_table_allows_exactly_its_transitions() {
    use BookingStatus::*;
    let time = later();
    let before = time - Duration::hours(1);
    let at = time;
    let all = [Pending, Confirmed, Cancelled, NoShow, Completed];
    let transitions = [
        Transition::Confirm,
        cancel(),
        Transition::Complete,
        no_show(),
    ];
    for from in all {
        for t in &transitions {
            for (when, label) in [(before, "before"), (at, "at")] {
                let allowed = match (t, from) {
                    (Transition::Confirm, Pending) => true,
                    (Transition::Cancel { .. }, Pending | Confirmed) => when < time,
                    (Transition::Complete | Transition::NoShow { .. }, Confirmed) => when >= time,
                    _ => false,
                };
                let result = check_transition(from, t, time, when);
                assert_eq!(
                    result.is_ok(),
                    allowed,
                    "{from} -> {} {label} booking time: {result:?}",
                    t.target()
                );
                if let Err(err) = result {
                    assert_eq!(err.code(), "CONFLICT");
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Each transition, its ledger and aggregates
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_new_booking_is_pending_priced_and_has_no_ledger_yet() {
    let w = world().await;
    let booking = create(&w, 4, true).await;
    assert_eq!(booking.status, BookingStatus::Pending);
    assert_eq!(
        (booking.base_fee, booking.platform_fee, booking.total_fee),
        (20_000, 2_000, 22_000)
    );
    assert_eq!(booking.promoter_commission, 0);
    assert_eq!(booking.source, prima_entity::enums::BookingSource::Promoter);
    assert!(ledger(&w, booking.id).await.is_empty());
    assert_eq!(counts(&w).await, (1, 1, 0, 1));
    let history = booking_history::Entity::find()
        .one(&w.db.conn)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(history.action, "CREATED");
    assert_eq!(history.performed_by_role, "MANAGER");
    assert_eq!(history.performed_by_id, Some(w.user));
    let event = outbox_events::Entity::find()
        .one(&w.db.conn)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event.topic, crate::events::outbox::BOOKING_CHANGED);
    assert_eq!(event.venue_id, Some(w.venue));
    assert_eq!(event.payload["action"], "CREATED");
    assert_eq!(event.payload["booking"]["status"], "PENDING");
    let guest = guest_row(&w).await;
    assert_eq!((guest.total_bookings, guest.average_party_size), (1, 40));
    assert_eq!(guest.last_booking_at, Some(later()));
    let promoter = promoter_row(&w).await;
    assert_eq!((promoter.total_bookings, promoter.all_bookings), (0, 1));
    assert_clean(&w, now()).await;
}

#[tokio::test]
async fn confirm_then_complete_writes_the_fees_and_commission_then_earns_them() {
    let w = world().await;
    let booking = create(&w, 4, true).await;
    let confirmed = go(&w, booking.id, Transition::Confirm, now())
        .await
        .unwrap();
    assert_eq!(confirmed.status, BookingStatus::Confirmed);
    assert_eq!(confirmed.confirmed_at, Some(now()));
    // 10 % of the 200.00 base fee.
    assert_eq!(confirmed.promoter_commission, 2_000);
    use TransactionStatus as S;
    use TransactionType as T;
    assert_eq!(
        ledger(&w, booking.id).await,
        vec![
            (T::BookingFee, 20_000, S::Pending),
            (T::PlatformFee, 2_000, S::Pending),
            (T::PromoterCommission, 2_000, S::Pending),
        ]
    );
    let commission = transactions::Entity::find()
        .filter(transactions::Column::Type.eq(T::PromoterCommission))
        .one(&w.db.conn)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(commission.commission_rate, Some(1000));
    assert_eq!(commission.commission_tier, Some(PromoterTier::Standard));
    assert_eq!(commission.promoter_id, Some(w.promoter));
    assert_eq!(commission.currency, "USD");
    let promoter = promoter_row(&w).await;
    assert_eq!(
        (
            promoter.total_bookings,
            promoter.total_revenue,
            promoter.month_bookings
        ),
        (1, 22_000, 1)
    );
    assert_clean(&w, now()).await;

    let completed = go(&w, booking.id, Transition::Complete, after_it())
        .await
        .unwrap();
    assert_eq!(completed.status, BookingStatus::Completed);
    assert_eq!(completed.completed_at, Some(after_it()));
    assert_eq!(
        ledger(&w, booking.id).await,
        vec![
            (T::BookingFee, 20_000, S::Confirmed),
            (T::PlatformFee, 2_000, S::Confirmed),
            (T::PromoterCommission, 2_000, S::Confirmed),
        ]
    );
    let promoter = promoter_row(&w).await;
    assert_eq!(
        (promoter.completed_bookings, promoter.conversion_rate),
        (1, 10_000)
    );
    assert_eq!(guest_row(&w).await.total_spent, 22_000);
    assert_eq!(counts(&w).await, (1, 3, 3, 3));
    assert_clean(&w, after_it()).await;
}

#[tokio::test]
async fn cancelling_a_pending_booking_writes_no_ledger_and_a_confirmed_one_cancels_it() {
    let w = world().await;
    let pending = create(&w, 2, true).await;
    let cancelled = go(&w, pending.id, cancel(), now()).await.unwrap();
    assert_eq!(cancelled.status, BookingStatus::Cancelled);
    assert_eq!(cancelled.cancelled_at, Some(now()));
    assert!(ledger(&w, pending.id).await.is_empty());

    let confirmed = create(&w, 2, true).await;
    go(&w, confirmed.id, Transition::Confirm, now())
        .await
        .unwrap();
    go(&w, confirmed.id, cancel(), now() + Duration::hours(1))
        .await
        .unwrap();
    assert!(
        ledger(&w, confirmed.id)
            .await
            .iter()
            .all(|(_, _, s)| *s == TransactionStatus::Cancelled)
    );
    assert_eq!(ledger(&w, confirmed.id).await.len(), 3);
    let history = booking_history::Entity::find()
        .filter(booking_history::Column::BookingId.eq(confirmed.id))
        .order_by_desc(booking_history::Column::Timestamp)
        .one(&w.db.conn)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(history.reason.as_deref(), Some("Guest called"));
    assert_eq!(
        history.previous_value,
        Some(serde_json::json!({"status": "CONFIRMED"}))
    );
    let promoter = promoter_row(&w).await;
    assert_eq!(
        (
            promoter.total_bookings,
            promoter.cancel_rate,
            promoter.cancelled_bookings
        ),
        (0, 10_000, 2)
    );
    assert_eq!(guest_row(&w).await.cancelled_bookings, 2);
    assert_clean(&w, now() + Duration::hours(1)).await;
}

#[tokio::test]
async fn a_no_show_keeps_the_venue_fees_and_cancels_the_commission() {
    let w = world().await;
    let booking = create(&w, 3, true).await;
    go(&w, booking.id, Transition::Confirm, now())
        .await
        .unwrap();
    let marked = go(&w, booking.id, no_show(), after_it()).await.unwrap();
    assert_eq!(marked.status, BookingStatus::NoShow);
    assert_eq!(marked.no_show_at, Some(after_it()));
    use TransactionStatus as S;
    use TransactionType as T;
    assert_eq!(
        ledger(&w, booking.id).await,
        vec![
            (T::BookingFee, 15_000, S::Confirmed),
            (T::PlatformFee, 1_500, S::Confirmed),
            (T::PromoterCommission, 1_500, S::Cancelled),
        ]
    );
    let promoter = promoter_row(&w).await;
    assert_eq!(
        (promoter.no_show_rate, promoter.total_bookings),
        (10_000, 0)
    );
    assert_eq!(guest_row(&w).await.no_show_bookings, 1);
    assert_clean(&w, after_it()).await;
}

#[tokio::test]
async fn a_forbidden_transition_changes_nothing() {
    let w = world().await;
    let pending = create(&w, 2, false).await;
    let done = create(&w, 2, false).await;
    go(&w, done.id, Transition::Confirm, now()).await.unwrap();
    go(&w, done.id, Transition::Complete, after_it())
        .await
        .unwrap();
    let before = counts(&w).await;
    let refused = [
        (pending.id, Transition::Complete, after_it()),
        (pending.id, no_show(), after_it()),
        (pending.id, cancel(), after_it()),
        (done.id, Transition::Confirm, after_it()),
        (done.id, cancel(), now()),
        (done.id, no_show(), after_it()),
        (done.id, Transition::Complete, after_it()),
    ];
    for (id, t, at) in refused {
        let target = t.target();
        let err = go(&w, id, t, at).await.unwrap_err();
        assert_eq!(err.code(), "CONFLICT", "{target}: {err}");
    }
    // Complete or no-show before the booking time.
    let confirmed = create(&w, 2, false).await;
    go(&w, confirmed.id, Transition::Confirm, now())
        .await
        .unwrap();
    let before = (before.0 + 1, before.1 + 2, before.2 + 2, before.3 + 2);
    for t in [Transition::Complete, no_show()] {
        let err = go(&w, confirmed.id, t, now()).await.unwrap_err();
        assert!(err.to_string().contains("before its booking time"), "{err}");
    }
    assert_eq!(counts(&w).await, before);
    let unchanged = bookings::Entity::find_by_id(pending.id)
        .one(&w.db.conn)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(unchanged, pending);
    assert_clean(&w, after_it()).await;
}

#[tokio::test]
async fn an_auto_confirming_venue_confirms_at_creation_with_the_ledger() {
    let w = world().await;
    let mut venue: venues::ActiveModel = venues::Entity::find_by_id(w.venue)
        .one(&w.db.conn)
        .await
        .unwrap()
        .unwrap()
        .into();
    venue.auto_confirm_bookings = Set(true);
    venue.update(&w.db.conn).await.unwrap();
    let booking = create(&w, 2, true).await;
    assert_eq!(booking.status, BookingStatus::Confirmed);
    assert_eq!(booking.confirmed_at, Some(now()));
    assert_eq!(booking.promoter_commission, 1_000);
    assert_eq!(ledger(&w, booking.id).await.len(), 3);
    assert_eq!(counts(&w).await, (1, 1, 3, 1));
    assert_clean(&w, now()).await;

    // ...unless it also requires approval.
    let mut venue: venues::ActiveModel = venues::Entity::find_by_id(w.venue)
        .one(&w.db.conn)
        .await
        .unwrap()
        .unwrap()
        .into();
    venue.require_approval = Set(true);
    venue.update(&w.db.conn).await.unwrap();
    assert_eq!(create(&w, 2, true).await.status, BookingStatus::Pending);
}

// ---------------------------------------------------------------------------------------
// Editing
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn editing_reprices_a_pending_booking_and_keeps_a_confirmed_price() {
    let w = world().await;
    let booking = create(&w, 2, true).await;
    let moved = later() + Duration::days(1);
    let edited = update_booking_at(
        &w.db,
        &w.coordinator,
        booking.id,
        BookingChanges {
            diners: Some(6),
            booking_time: Some(moved),
            notes: Some("Window table".into()),
            ..BookingChanges::default()
        },
        now(),
    )
    .await
    .unwrap();
    assert_eq!((edited.diners, edited.booking_time), (6, moved));
    assert_eq!(
        (edited.base_fee, edited.platform_fee, edited.total_fee),
        (30_000, 3_000, 33_000)
    );
    assert_eq!(edited.notes.as_deref(), Some("Window table"));
    let history = booking_history::Entity::find()
        .filter(booking_history::Column::Action.eq("UPDATED"))
        .one(&w.db.conn)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(history.previous_value.as_ref().unwrap()["diners"], 2);
    assert_eq!(history.new_value.as_ref().unwrap()["total_fee"], "330.00");
    assert_eq!(history.metadata.as_ref().unwrap()["repriced"], true);
    let guest = guest_row(&w).await;
    assert_eq!(
        (guest.average_party_size, guest.last_booking_at),
        (60, Some(moved))
    );
    assert_clean(&w, now()).await;

    go(&w, booking.id, Transition::Confirm, now())
        .await
        .unwrap();
    let kept = update_booking_at(
        &w.db,
        &w.manager,
        booking.id,
        BookingChanges {
            diners: Some(8),
            booking_time: Some(later()),
            ..BookingChanges::default()
        },
        now(),
    )
    .await
    .unwrap();
    assert_eq!(kept.diners, 8);
    assert_eq!(kept.total_fee, 33_000, "a confirmed price is kept");
    assert_eq!(guest_row(&w).await.last_booking_at, Some(later()));
    assert_clean(&w, now()).await;

    // Nothing to change writes nothing; a final booking cannot be edited.
    let before = counts(&w).await;
    update_booking_at(
        &w.db,
        &w.manager,
        booking.id,
        BookingChanges {
            diners: Some(8),
            ..BookingChanges::default()
        },
        now(),
    )
    .await
    .unwrap();
    assert_eq!(counts(&w).await, before);
    go(&w, booking.id, cancel(), now()).await.unwrap();
    let err = update_booking_at(
        &w.db,
        &w.manager,
        booking.id,
        BookingChanges {
            diners: Some(3),
            ..BookingChanges::default()
        },
        now(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "CONFLICT");
}

#[tokio::test]
async fn a_repriced_booking_keeps_the_discounts_of_the_moment_it_was_made() {
    let w = world().await;
    let mut row: venue_pricing::ActiveModel = venue_pricing::Entity::find()
        .filter(venue_pricing::Column::VenueId.eq(w.venue))
        .one(&w.db.conn)
        .await
        .unwrap()
        .unwrap()
        .into();
    row.repeat_customer_discount_percent = Set(Some(2_000));
    row.update(&w.db.conn).await.unwrap();
    // Made before the guest's first visit is completed: no repeat-customer discount...
    let mut input = new_booking(&w, 2, false);
    input.booking_time = later() + Duration::days(10);
    let waiting = create_booking_at(&w.db, &w.manager, input, None, now())
        .await
        .unwrap();
    let visit = create(&w, 2, false).await;
    go(&w, visit.id, Transition::Confirm, now()).await.unwrap();
    go(&w, visit.id, Transition::Complete, after_it())
        .await
        .unwrap();
    // ...and re-pricing it after that visit still gives none: 4 x 50.00.
    let edited = update_booking_at(
        &w.db,
        &w.manager,
        waiting.id,
        BookingChanges {
            diners: Some(4),
            ..BookingChanges::default()
        },
        after_it(),
    )
    .await
    .unwrap();
    assert_eq!(edited.base_fee, 20_000);
    // A booking made now is a repeat customer's: 20 % off.
    let mut input = new_booking(&w, 4, false);
    input.booking_time = later() + Duration::days(10);
    let repeat = create_booking_at(&w.db, &w.manager, input, None, after_it())
        .await
        .unwrap();
    assert_eq!(repeat.base_fee, 16_000);
    assert_clean(&w, after_it()).await;
}

#[tokio::test]
async fn bad_edits_name_their_field_and_change_nothing() {
    let w = world().await;
    let booking = create(&w, 2, false).await;
    let cases = [
        (
            BookingChanges {
                diners: Some(21),
                ..BookingChanges::default()
            },
            "diners",
        ),
        (
            BookingChanges {
                diners: Some(0),
                ..BookingChanges::default()
            },
            "diners",
        ),
        (
            BookingChanges {
                booking_time: Some(now() - Duration::minutes(1)),
                ..BookingChanges::default()
            },
            "bookingTime",
        ),
        (
            BookingChanges {
                duration_minutes: Some(5),
                ..BookingChanges::default()
            },
            "durationMinutes",
        ),
        (
            BookingChanges {
                notes: Some("x".repeat(MAX_TEXT + 1)),
                ..BookingChanges::default()
            },
            "notes",
        ),
    ];
    let before = counts(&w).await;
    for (changes, name) in cases {
        let err = update_booking_at(&w.db, &w.manager, booking.id, changes, now())
            .await
            .unwrap_err();
        assert_eq!(field(&err), name);
    }
    assert_eq!(counts(&w).await, before);
}

// ---------------------------------------------------------------------------------------
// Bad input and permissions
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn bad_bookings_are_refused_naming_the_field_and_write_nothing() {
    let w = world().await;
    let base = || new_booking(&w, 2, true);
    let suspended = fixtures::promoter(&w.db, w.venue, "Suspended").await;
    let mut row: promoters::ActiveModel = promoters::Entity::find_by_id(suspended)
        .one(&w.db.conn)
        .await
        .unwrap()
        .unwrap()
        .into();
    row.status = Set(PromoterStatus::Suspended);
    row.update(&w.db.conn).await.unwrap();
    let blocked = guest(&w.db, &w.manager, w.venue).await;
    crate::guests::write::set_guest_status(
        &w.db.conn,
        &fixtures::actor(w.user, UserRole::Admin, &[]),
        blocked,
        prima_entity::enums::GuestStatus::Blocked,
    )
    .await
    .unwrap();
    let no_pricing = fixtures::venue(&w.db).await;
    let admin = fixtures::actor(w.user, UserRole::Admin, &[]);
    let other_venue_promoter = fixtures::promoter(&w.db, no_pricing, "Elsewhere").await;

    let cases: Vec<(NewBooking, &Actor, &str)> = vec![
        (
            NewBooking {
                diners: 0,
                ..base()
            },
            &w.manager,
            "diners",
        ),
        (
            NewBooking {
                diners: 51,
                ..base()
            },
            &w.manager,
            "diners",
        ),
        (
            NewBooking {
                diners: 21,
                ..base()
            },
            &w.manager,
            "diners",
        ),
        (
            NewBooking {
                booking_time: now() - Duration::hours(1),
                ..base()
            },
            &w.manager,
            "bookingTime",
        ),
        (
            NewBooking {
                booking_time: now(),
                ..base()
            },
            &w.manager,
            "bookingTime",
        ),
        (
            NewBooking {
                venue_id: no_pricing,
                promoter_id: None,
                ..base()
            },
            &admin,
            "venueId",
        ),
        (
            NewBooking {
                promoter_id: Some(Uuid::new_v4()),
                ..base()
            },
            &w.manager,
            "promoterId",
        ),
        (
            NewBooking {
                promoter_id: Some(other_venue_promoter),
                ..base()
            },
            &w.manager,
            "promoterId",
        ),
        (
            NewBooking {
                promoter_id: Some(suspended),
                ..base()
            },
            &w.manager,
            "promoterId",
        ),
        (
            NewBooking {
                guest_id: blocked,
                ..base()
            },
            &w.manager,
            "guestId",
        ),
        (
            NewBooking {
                guest_id: Uuid::new_v4(),
                ..base()
            },
            &w.manager,
            "guestId",
        ),
        (
            NewBooking {
                promoter_id: None,
                source: Some(prima_entity::enums::BookingSource::Promoter),
                ..base()
            },
            &w.manager,
            "promoterId",
        ),
        (
            NewBooking {
                duration_minutes: Some(0),
                ..base()
            },
            &w.manager,
            "durationMinutes",
        ),
    ];
    for (input, actor, name) in cases {
        let err = create_booking_at(&w.db, actor, input, None, now())
            .await
            .unwrap_err();
        assert_eq!(field(&err), name, "{err}");
    }
    let err = create_booking_at(&w.db, &w.manager, base(), Some(""), now())
        .await
        .unwrap_err();
    assert_eq!(field(&err), "idempotencyKey");
    assert_eq!(counts(&w).await, (0, 0, 0, 0));
}

#[tokio::test]
async fn each_role_may_do_only_what_the_access_table_allows() {
    let w = world().await;
    // A viewer cannot book; an outsider cannot see the venue.
    let err = create_booking_at(&w.db, &w.viewer, new_booking(&w, 2, false), None, now())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "FORBIDDEN");
    let err = create_booking_at(&w.db, &w.outsider, new_booking(&w, 2, false), None, now())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "NOT_FOUND");

    // A coordinator books, edits and cancels, but cannot confirm.
    let booking = create_booking_at(
        &w.db,
        &w.coordinator,
        new_booking(&w, 2, false),
        None,
        now(),
    )
    .await
    .unwrap();
    let err = transition_at(
        &w.db,
        &w.coordinator,
        booking.id,
        Transition::Confirm,
        now(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "FORBIDDEN");
    for t in [Transition::Confirm, cancel()] {
        let err = transition_at(&w.db, &w.viewer, booking.id, t.clone(), now())
            .await
            .unwrap_err();
        assert_eq!(err.code(), "FORBIDDEN", "viewer {}", t.target());
        let err = transition_at(&w.db, &w.outsider, booking.id, t.clone(), now())
            .await
            .unwrap_err();
        assert_eq!(err.code(), "NOT_FOUND", "outsider {}", t.target());
    }
    let err = update_booking_at(
        &w.db,
        &w.outsider,
        booking.id,
        BookingChanges {
            diners: Some(3),
            ..BookingChanges::default()
        },
        now(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "NOT_FOUND");
    let err = update_booking_at(
        &w.db,
        &w.viewer,
        booking.id,
        BookingChanges {
            diners: Some(3),
            ..BookingChanges::default()
        },
        now(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "FORBIDDEN");
    assert_eq!(counts(&w).await, (1, 1, 0, 1));
    transition_at(&w.db, &w.coordinator, booking.id, cancel(), now())
        .await
        .unwrap();
    // The cancellation needs a reason.
    let other = create(&w, 2, false).await;
    let err = transition_at(
        &w.db,
        &w.coordinator,
        other.id,
        Transition::Cancel { reason: " ".into() },
        now(),
    )
    .await
    .unwrap_err();
    assert_eq!(field(&err), "reason");
}

// ---------------------------------------------------------------------------------------
// Idempotency
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn the_same_key_and_input_returns_the_first_booking_and_other_input_conflicts() {
    let w = world().await;
    let first = create_booking_at(
        &w.db,
        &w.manager,
        new_booking(&w, 2, true),
        Some("order-42"),
        now(),
    )
    .await
    .unwrap();
    let again = create_booking_at(
        &w.db,
        &w.manager,
        new_booking(&w, 2, true),
        Some("order-42"),
        now() + Duration::minutes(5),
    )
    .await
    .unwrap();
    assert_eq!(again.id, first.id);
    assert_eq!(counts(&w).await, (1, 1, 0, 1));
    let err = create_booking_at(
        &w.db,
        &w.manager,
        new_booking(&w, 3, true),
        Some("order-42"),
        now(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "CONFLICT");
    // Keys are per user, and expire after 24 hours.
    let other_user = create_booking_at(
        &w.db,
        &w.coordinator,
        new_booking(&w, 2, true),
        Some("order-42"),
        now(),
    )
    .await
    .unwrap();
    assert_ne!(other_user.id, first.id);
    // After 24 hours the key is forgotten: other input under it makes a new booking.
    let after_expiry = create_booking_at(
        &w.db,
        &w.manager,
        new_booking(&w, 3, true),
        Some("order-42"),
        now() + Duration::hours(25),
    )
    .await
    .unwrap();
    assert_ne!(after_expiry.id, first.id);
    assert_eq!(counts(&w).await.0, 3);
}

#[tokio::test]
async fn concurrent_first_uses_of_one_key_make_one_booking() {
    let w = world().await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let conn = w.db.db.clone();
            let actor = w.manager.clone();
            let input = new_booking(&w, 2, true);
            tokio::spawn(async move {
                create_booking_at(&conn, &actor, input, Some("same"), now()).await
            })
        })
        .collect();
    let mut ids = std::collections::BTreeSet::new();
    for task in tasks {
        ids.insert(task.await.unwrap().unwrap().id);
    }
    assert_eq!(ids.len(), 1, "every retry answers with the one booking");
    assert_eq!(counts(&w).await.0, 1);
    assert_clean(&w, now()).await;
}

// ---------------------------------------------------------------------------------------
// Commissions through the lifecycle
// ---------------------------------------------------------------------------------------

/// Confirms a fresh booking of `diners` under `rate` and returns (commission, history note).
async fn commission_under(
    w: &World,
    rate: &commission_rates::Model,
    diners: i32,
) -> (
    i64,
    Option<String>,
    Vec<(TransactionType, i64, TransactionStatus)>,
) {
    assign(&w.db, w.promoter, rate).await;
    let booking = create(w, diners, true).await;
    let confirmed = go(w, booking.id, Transition::Confirm, now()).await.unwrap();
    let history = booking_history::Entity::find()
        .filter(booking_history::Column::BookingId.eq(booking.id))
        .filter(booking_history::Column::Action.eq("STATUS_CHANGED"))
        .one(&w.db.conn)
        .await
        .unwrap()
        .unwrap();
    let note = history
        .metadata
        .as_ref()
        .and_then(|m| m["commission"]["note"].as_str().map(str::to_owned));
    (
        confirmed.promoter_commission,
        note,
        ledger(w, booking.id).await,
    )
}

#[tokio::test]
async fn every_commission_model_pays_through_the_lifecycle() {
    let w = world().await;
    let by = w.user;
    // PER_COVER 5.00 a diner, 4 diners.
    let per_cover = rate(
        &w.db,
        w.venue,
        by,
        CommissionModel::PerCover,
        50_000,
        |_| {},
    )
    .await;
    assert_eq!(commission_under(&w, &per_cover, 4).await.0, 2_000);
    // FLAT_RATE 12.50.
    let flat = rate(
        &w.db,
        w.venue,
        by,
        CommissionModel::FlatRate,
        125_000,
        |_| {},
    )
    .await;
    assert_eq!(commission_under(&w, &flat, 4).await.0, 1_250);
    // PERCENT_OF_SPEND 7.5 % of 150.00.
    let percent = rate(
        &w.db,
        w.venue,
        by,
        CommissionModel::PercentOfSpend,
        750,
        |_| {},
    )
    .await;
    assert_eq!(commission_under(&w, &percent, 3).await.0, 1_125);
    // TIERED: 5 % from the first booking of the month, 10 % from the third.
    let tier = |min: i32, value: i64| {
        move |r: &mut commission_rates::Model| {
            r.min_monthly_bookings = Some(min);
            r.value = value;
        }
    };
    let low = rate(
        &w.db,
        w.venue,
        by,
        CommissionModel::Tiered,
        500,
        tier(0, 500),
    )
    .await;
    rate(
        &w.db,
        w.venue,
        by,
        CommissionModel::Tiered,
        1000,
        tier(5, 1000),
    )
    .await;
    // The promoter has 3 confirmed bookings this month already: this is the 4th (5 %).
    assert_eq!(commission_under(&w, &low, 2).await.0, 500);
    // The 5th reaches the 10 % rung.
    let (amount, _, rows) = commission_under(&w, &low, 2).await;
    assert_eq!(amount, 1_000);
    assert_eq!(rows.len(), 3);
    let last = transactions::Entity::find()
        .filter(transactions::Column::Type.eq(TransactionType::PromoterCommission))
        .order_by_desc(transactions::Column::Amount)
        .all(&w.db.conn)
        .await
        .unwrap();
    assert!(
        last.iter()
            .any(|t| t.commission_rate == Some(1000) && t.amount == 1_000)
    );
    assert_clean(&w, now()).await;
}

#[tokio::test]
async fn minimum_cap_and_eligibility_limit_the_commission() {
    let w = world().await;
    let by = w.user;
    // Below the rate's minimum booking (base fee 100.00 < 150.00): nothing, no row.
    let minimum = rate(
        &w.db,
        w.venue,
        by,
        CommissionModel::PercentOfSpend,
        1000,
        |r| r.minimum_booking = 15_000,
    )
    .await;
    let (amount, note, rows) = commission_under(&w, &minimum, 2).await;
    assert_eq!(amount, 0);
    assert!(note.is_some(), "the reason is recorded");
    assert_eq!(rows.len(), 2, "no PROMOTER_COMMISSION row for 0");
    // Capped at 3.00.
    let capped = rate(
        &w.db,
        w.venue,
        by,
        CommissionModel::PercentOfSpend,
        1000,
        |r| r.maximum_payout = Some(300),
    )
    .await;
    assert_eq!(commission_under(&w, &capped, 4).await.0, 300);
    // A cancel rate above the rate's limit: the promoter has cancelled nothing yet, so
    // cancel one booking to 1 of 3 (0.3333 > 0.2).
    let strict = rate(
        &w.db,
        w.venue,
        by,
        CommissionModel::PercentOfSpend,
        1000,
        |r| r.max_cancel_rate = Some(2000),
    )
    .await;
    let victim = create(&w, 2, true).await;
    go(&w, victim.id, cancel(), now()).await.unwrap();
    let (amount, note, _) = commission_under(&w, &strict, 2).await;
    assert_eq!(amount, 0);
    assert!(
        note.unwrap().contains("cancel"),
        "reason names the cancel rate"
    );
    // A promoter suspended after the booking was made earns nothing on confirmation.
    let plain = rate(
        &w.db,
        w.venue,
        by,
        CommissionModel::PercentOfSpend,
        1000,
        |_| {},
    )
    .await;
    assign(&w.db, w.promoter, &plain).await;
    let booking = create(&w, 2, true).await;
    let mut row: promoters::ActiveModel = promoter_row(&w).await.into();
    row.status = Set(PromoterStatus::Suspended);
    row.update(&w.db.conn).await.unwrap();
    let confirmed = go(&w, booking.id, Transition::Confirm, now())
        .await
        .unwrap();
    assert_eq!(confirmed.promoter_commission, 0);
    assert_clean(&w, now()).await;
}

// ---------------------------------------------------------------------------------------
// Incentive progress
// ---------------------------------------------------------------------------------------

/// A programme of the world's venue over [now, now + 30 days) with the world's promoter in
/// it (progress 0).
async fn programme(
    w: &World,
    kind: prima_entity::enums::IncentiveType,
    comparison: prima_entity::enums::TargetComparison,
    threshold: i64,
) -> Uuid {
    use prima_entity::incentives;
    let id = fixtures::incentive(&w.db, w.venue, w.user).await;
    let mut row: incentives::ActiveModel = incentives::Entity::find_by_id(id)
        .one(&w.db.conn)
        .await
        .unwrap()
        .unwrap()
        .into();
    row.r#type = Set(kind);
    row.target_comparison = Set(comparison);
    row.target_threshold = Set(threshold);
    row.update(&w.db.conn).await.unwrap();
    let progress = fixtures::progress(&w.db, id, w.promoter, 0).await;
    let mut row: prima_entity::incentive_progress::ActiveModel =
        prima_entity::incentive_progress::Entity::find_by_id(progress)
            .one(&w.db.conn)
            .await
            .unwrap()
            .unwrap()
            .into();
    row.target_value = Set(threshold);
    row.update(&w.db.conn).await.unwrap();
    id
}

async fn progress_of(
    w: &World,
    incentive: Uuid,
    promoter: Uuid,
) -> prima_entity::incentive_progress::Model {
    use prima_entity::incentive_progress;
    incentive_progress::Entity::find()
        .filter(incentive_progress::Column::IncentiveId.eq(incentive))
        .filter(incentive_progress::Column::PromoterId.eq(promoter))
        .one(&w.db.conn)
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn booking_changes_move_incentive_progress_in_the_same_transaction() {
    use prima_entity::enums::{IncentiveType as K, ProgressStatus, TargetComparison as C};
    let w = world().await;
    let count = programme(&w, K::BookingCount, C::GreaterEqual, 200).await;
    let revenue = programme(&w, K::RevenueTarget, C::GreaterEqual, 100_000).await;
    let guests = programme(&w, K::NewGuests, C::GreaterEqual, 500).await;
    let top = programme(&w, K::BookingCount, C::TopN, 300).await;
    let rival = fixtures::promoter(&w.db, w.venue, "Rival").await;
    fixtures::progress(&w.db, top, rival, 0).await;
    // The rival leads the TOP_N programme with five confirmed bookings of their own.
    for _ in 0..5 {
        let booking = create_booking_at(
            &w.db,
            &w.manager,
            NewBooking {
                promoter_id: Some(rival),
                ..new_booking(&w, 2, false)
            },
            None,
            now(),
        )
        .await
        .unwrap();
        go(&w, booking.id, Transition::Confirm, now())
            .await
            .unwrap();
    }
    assert_eq!(progress_of(&w, top, rival).await.current_value, 500);

    // PENDING counts for nothing yet, but the guest is new to the promoter.
    let first = create(&w, 4, true).await;
    assert_eq!(progress_of(&w, count, w.promoter).await.current_value, 0);
    assert_eq!(progress_of(&w, guests, w.promoter).await.current_value, 100);
    assert_eq!(
        progress_of(&w, guests, w.promoter).await.percent_complete,
        2_000
    );

    go(&w, first.id, Transition::Confirm, now()).await.unwrap();
    let c = progress_of(&w, count, w.promoter).await;
    assert_eq!(
        (c.current_value, c.percent_complete, c.status),
        (100, 5_000, ProgressStatus::InProgress)
    );
    assert_eq!(
        progress_of(&w, revenue, w.promoter).await.current_value,
        22_000
    );

    let second = create(&w, 2, true).await;
    go(&w, second.id, Transition::Confirm, now()).await.unwrap();
    let c = progress_of(&w, count, w.promoter).await;
    assert_eq!(
        (c.current_value, c.percent_complete, c.status),
        (200, 10_000, ProgressStatus::Achieved)
    );
    assert_eq!(c.achieved_at, Some(now()));
    // The same guest again is not a new guest.
    assert_eq!(progress_of(&w, guests, w.promoter).await.current_value, 100);
    // TOP 3 of two participants: the target is the second best value (200), the rival leads.
    let t = progress_of(&w, top, w.promoter).await;
    assert_eq!(
        (t.current_value, t.target_value, t.percent_complete),
        (200, 200, 10_000)
    );
    assert_eq!(progress_of(&w, top, rival).await.target_value, 200);

    // A cancellation takes the booking back out; an achievement stays.
    go(&w, second.id, cancel(), now()).await.unwrap();
    let c = progress_of(&w, count, w.promoter).await;
    assert_eq!((c.current_value, c.status), (100, ProgressStatus::Achieved));
    assert_eq!(
        progress_of(&w, revenue, w.promoter).await.current_value,
        22_000
    );
    assert_eq!(progress_of(&w, top, w.promoter).await.target_value, 100);
    let winners = prima_entity::incentives::Entity::find_by_id(count)
        .one(&w.db.conn)
        .await
        .unwrap()
        .unwrap()
        .winner_count;
    assert_eq!(winners, 1);

    // A booking moved out of the period leaves it; each change was published.
    move_booking(&w, first.id, now() + Duration::days(40)).await;
    assert_eq!(progress_of(&w, count, w.promoter).await.current_value, 0);
    // The guest's first booking with the promoter is now the cancelled one, still in the
    // period (any status counts for "new").
    assert_eq!(progress_of(&w, guests, w.promoter).await.current_value, 100);
    let events = outbox_events::Entity::find()
        .filter(outbox_events::Column::Topic.eq(crate::incentives::progress::PROGRESS_CHANGED))
        .count(&w.db.conn)
        .await
        .unwrap();
    assert!(events >= 10, "{events} progress events");
    assert_clean(&w, now()).await;
}

#[tokio::test]
async fn conversion_rate_follows_completed_over_closed_bookings_by_deltas() {
    use prima_entity::enums::{IncentiveType as K, ProgressStatus, TargetComparison as C};
    let w = world().await;
    // 75 % to win.
    let rate = programme(&w, K::ConversionRate, C::GreaterEqual, 7_500).await;
    let count = programme(&w, K::BookingCount, C::GreaterEqual, 1_000).await;
    let facts = |p: prima_entity::incentive_progress::Model| {
        (p.current_value, p.completed_bookings, p.closed_bookings)
    };
    let first = completed(&w, 2).await;
    assert_eq!(
        facts(progress_of(&w, rate, w.promoter).await),
        (10_000, 1, 1)
    );
    assert_eq!(
        progress_of(&w, rate, w.promoter).await.status,
        ProgressStatus::Achieved
    );
    // A BOOKING_COUNT programme counts the booking once and keeps no counts.
    assert_eq!(facts(progress_of(&w, count, w.promoter).await), (100, 0, 0));
    let second = create(&w, 2, true).await;
    go(&w, second.id, cancel(), now()).await.unwrap();
    assert_eq!(
        facts(progress_of(&w, rate, w.promoter).await),
        (5_000, 1, 2)
    );
    let third = create(&w, 2, true).await;
    go(&w, third.id, Transition::Confirm, now()).await.unwrap();
    go(
        &w,
        third.id,
        Transition::NoShow { reason: None },
        after_it(),
    )
    .await
    .unwrap();
    // 1 of 3: 33.33 %.
    assert_eq!(
        facts(progress_of(&w, rate, w.promoter).await),
        (3_333, 1, 3)
    );
    // A booking moved out of the period before it closes never counts.
    let fourth = create(&w, 2, true).await;
    move_booking(&w, fourth.id, now() + Duration::days(40)).await;
    go(&w, fourth.id, cancel(), now()).await.unwrap();
    assert_eq!(
        facts(progress_of(&w, rate, w.promoter).await),
        (3_333, 1, 3)
    );
    assert_eq!(first.status, BookingStatus::Completed);
    assert_clean(&w, now()).await;
}

// ---------------------------------------------------------------------------------------
// Refunds
// ---------------------------------------------------------------------------------------

async fn completed(w: &World, diners: i32) -> bookings::Model {
    let booking = create(w, diners, true).await;
    go(w, booking.id, Transition::Confirm, now()).await.unwrap();
    go(w, booking.id, Transition::Complete, after_it())
        .await
        .unwrap()
}

#[tokio::test]
async fn partial_refunds_claw_back_the_commission_in_proportion_and_never_exceed_the_charge() {
    let w = world().await;
    let owner = fixtures::actor(w.user, UserRole::Manager, &[(w.venue, Level::Owner)]);
    // 4 diners: 200.00 + 20.00 charged, 20.00 commission.
    let booking = completed(&w, 4).await;
    let at = after_it() + Duration::hours(1);
    let first = refund_booking_at(
        &w.db,
        &owner,
        booking.id,
        Some(rust_decimal_macros::dec!(100.00)),
        "Cold food".into(),
        at,
    )
    .await
    .unwrap();
    assert_eq!(first.refund.amount, -10_000);
    assert_eq!(first.refund.r#type, TransactionType::Refund);
    // 20.00 * 100 / 220 = 9.0909... -> 9.09
    let clawback = first.clawback.unwrap();
    assert_eq!(clawback.amount, -909);
    assert_eq!(clawback.promoter_id, Some(w.promoter));
    assert!(clawback.reverses_transaction_id.is_some());
    assert_eq!(first.refundable, 12_000);
    assert_clean(&w, at).await;

    // More than what is left: refused, nothing written.
    let before = counts(&w).await;
    let err = refund_booking_at(
        &w.db,
        &owner,
        booking.id,
        Some(rust_decimal_macros::dec!(120.01)),
        "More".into(),
        at,
    )
    .await
    .unwrap_err();
    assert_eq!(field(&err), "amount");
    assert_eq!(counts(&w).await, before);

    // The rest: the clawbacks add up to exactly the commission.
    let rest = refund_booking_at(&w.db, &owner, booking.id, None, "Goodwill".into(), at)
        .await
        .unwrap();
    assert_eq!(rest.refund.amount, -12_000);
    assert_eq!(rest.clawback.unwrap().amount, -1_091);
    assert_eq!(rest.refundable, 0);
    assert_eq!(rest.booking.status, BookingStatus::Completed);
    let err = refund_booking_at(&w.db, &owner, booking.id, None, "Again".into(), at)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "CONFLICT");
    assert_clean(&w, at).await;
}

#[tokio::test]
async fn a_booking_takes_at_most_the_refunds_its_transaction_bound_allows() {
    let w = world().await;
    let owner = fixtures::actor(w.user, UserRole::Manager, &[(w.venue, Level::Owner)]);
    let booking = completed(&w, 4).await;
    let at = after_it() + Duration::hours(1);
    let cent = Some(rust_decimal_macros::dec!(0.01));
    for _ in 0..crate::ledger::MAX_REFUNDS_PER_BOOKING {
        refund_booking_at(&w.db, &owner, booking.id, cent, "Part".into(), at)
            .await
            .unwrap();
    }
    let before = counts(&w).await;
    let err = refund_booking_at(&w.db, &owner, booking.id, cent, "One more".into(), at)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "CONFLICT");
    assert_eq!(counts(&w).await, before);
    let transactions = prima_entity::transactions::Entity::find()
        .filter(prima_entity::transactions::Column::BookingId.eq(booking.id))
        .all(&w.db.conn)
        .await
        .unwrap();
    assert!(transactions.len() as u64 <= crate::ledger::MAX_TRANSACTIONS_PER_BOOKING);
    assert_clean(&w, at).await;
}

#[tokio::test]
async fn only_an_admin_or_owner_refunds_and_only_a_completed_booking() {
    let w = world().await;
    let booking = completed(&w, 2).await;
    let at = after_it() + Duration::hours(1);
    let err = refund_booking_at(&w.db, &w.manager, booking.id, None, "No".into(), at)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "FORBIDDEN");
    let err = refund_booking_at(&w.db, &w.outsider, booking.id, None, "No".into(), at)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "NOT_FOUND");
    let admin = fixtures::actor(w.user, UserRole::Admin, &[]);
    let pending = create(&w, 2, true).await;
    let err = refund_booking_at(&w.db, &admin, pending.id, None, "No".into(), at)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "CONFLICT");
    for (amount, reason, name) in [
        (Some(rust_decimal_macros::dec!(0)), "Why", "amount"),
        (Some(rust_decimal_macros::dec!(-5)), "Why", "amount"),
        (Some(rust_decimal_macros::dec!(1.001)), "Why", "amount"),
        (None, " ", "reason"),
    ] {
        let err = refund_booking_at(&w.db, &admin, booking.id, amount, reason.into(), at)
            .await
            .unwrap_err();
        assert_eq!(field(&err), name);
    }
    // Concurrent full refunds: one wins, the charge is refunded once.
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let conn = w.db.db.clone();
            let admin = admin.clone();
            tokio::spawn(async move {
                refund_booking_at(&conn, &admin, booking.id, None, "Dup".into(), at).await
            })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => wins += 1,
            Err(err) => assert_eq!(err.code(), "CONFLICT", "{err}"),
        }
    }
    assert_eq!(wins, 1);
    assert_clean(&w, at).await;
}

// ---------------------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn concurrent_confirms_and_cancels_leave_one_outcome_and_one_ledger() {
    let w = world().await;
    for round in 0..3 {
        let booking = create(&w, 2, true).await;
        let tasks: Vec<_> = (0..12)
            .map(|i| {
                let conn = w.db.db.clone();
                let actor = w.manager.clone();
                let t = if (i + round) % 2 == 0 {
                    Transition::Confirm
                } else {
                    cancel()
                };
                tokio::spawn(
                    async move { transition_at(&conn, &actor, booking.id, t, now()).await },
                )
            })
            .collect();
        let mut won = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                Ok(b) => won.push(b.status),
                Err(err) => assert_eq!(err.code(), "CONFLICT", "{err}"),
            }
        }
        // Confirm then cancel may both win (a legal sequence); never two of one kind.
        let confirms = won
            .iter()
            .filter(|s| **s == BookingStatus::Confirmed)
            .count();
        let cancels = won
            .iter()
            .filter(|s| **s == BookingStatus::Cancelled)
            .count();
        assert!(confirms <= 1 && cancels <= 1 && !won.is_empty(), "{won:?}");
        let rows = ledger(&w, booking.id).await;
        assert!(rows.len() == 3 || rows.is_empty(), "{rows:?}");
        let commissions = rows
            .iter()
            .filter(|(t, _, _)| *t == TransactionType::PromoterCommission)
            .count();
        assert!(commissions <= 1);
    }
    assert_clean(&w, now()).await;
}

// ---------------------------------------------------------------------------------------
// Random sequences keep every invariant
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Create {
        diners: i32,
        promoter: bool,
        days: i64,
    },
    Edit {
        pick: usize,
        diners: i32,
        days: i64,
    },
    Confirm {
        pick: usize,
    },
    Cancel {
        pick: usize,
    },
    Complete {
        pick: usize,
    },
    NoShow {
        pick: usize,
    },
    /// A refund of part (`percent` of what is left, 0 meaning all) of a booking.
    Refund {
        pick: usize,
        percent: i64,
    },
    /// A promoter's booking made, confirmed and completed a day later (the clock moves
    /// past it): a commission earned.
    Earn {
        diners: i32,
    },
    /// The clock moves on.
    Wait {
        days: i64,
    },
    /// A payout generation for one of the weekly periods that have ended.
    Generate {
        period: usize,
    },
    /// A payout step (or a hold, or its release) on one of the payouts.
    Payout {
        pick: usize,
        step: u8,
    },
}

/// Booking changes mixed with refunds and payout operations.
fn money_op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        3 => op(),
        3 => (1..=12i32).prop_map(|diners| Op::Earn { diners }),
        2 => (any::<usize>(), 0..=100i64).prop_map(|(pick, percent)| Op::Refund { pick, percent }),
        1 => (1..=10i64).prop_map(|days| Op::Wait { days }),
        3 => any::<usize>().prop_map(|period| Op::Generate { period }),
        5 => (any::<usize>(), 0..8u8).prop_map(|(pick, step)| Op::Payout { pick, step }),
    ]
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        3 => (1..=12i32, any::<bool>(), 1..=20i64)
            .prop_map(|(diners, promoter, days)| Op::Create { diners, promoter, days }),
        1 => (any::<usize>(), 1..=12i32, 1..=20i64)
            .prop_map(|(pick, diners, days)| Op::Edit { pick, diners, days }),
        2 => any::<usize>().prop_map(|pick| Op::Confirm { pick }),
        1 => any::<usize>().prop_map(|pick| Op::Cancel { pick }),
        1 => any::<usize>().prop_map(|pick| Op::Complete { pick }),
        1 => any::<usize>().prop_map(|pick| Op::NoShow { pick }),
    ]
}

/// Runs a sequence of operations on random bookings (each may be refused: that is part of
/// the test) and checks every invariant after each one. Completing and no-shows happen "a
/// month" later (after every booking time), so the clock moves forward only.
async fn run_ops(ops: Vec<Op>) {
    let w = world().await;
    let second_guest = guest(&w.db, &w.manager, w.venue).await;
    // A NEW_GUESTS programme over days 5 to 15 of the 1-20 day range bookings are made in, so
    // first bookings enter and leave its period; its value moves by deltas and must always
    // equal a recount.
    let new_guests =
        new_guests_programme(&w, now() + Duration::days(5), now() + Duration::days(15)).await;
    let mut ids: Vec<Uuid> = Vec::new();
    let mut payouts: Vec<Uuid> = Vec::new();
    let owners = [
        fixtures::actor(
            fixtures::user(&w.db).await,
            UserRole::Manager,
            &[(w.venue, Level::Owner)],
        ),
        fixtures::actor(
            fixtures::user(&w.db).await,
            UserRole::Manager,
            &[(w.venue, Level::Admin)],
        ),
    ];
    let mut clock = now();
    let pick = |ids: &[Uuid], i: usize| (!ids.is_empty()).then(|| ids[i % ids.len()]);
    for op in ops {
        match op {
            Op::Refund { pick: i, percent } => {
                if let Some(id) = pick(&ids, i) {
                    let amount = (percent > 0).then(|| {
                        rust_decimal::Decimal::new(percent, 2) // 0.01 to 1.00
                    });
                    let _ =
                        refund_booking_at(&w.db, &owners[0], id, amount, "Refund".into(), clock)
                            .await;
                }
            }
            Op::Wait { days } => clock += Duration::days(days),
            Op::Earn { diners } => {
                let mut input = new_booking(&w, diners, true);
                input.booking_time = clock + Duration::days(1);
                let made = create_booking_at(&w.db, &w.manager, input, None, clock).await;
                if let Ok(b) = made {
                    ids.push(b.id);
                    let _ = go(&w, b.id, Transition::Confirm, clock).await;
                    clock = b.booking_time + Duration::hours(1);
                    let _ = go(&w, b.id, Transition::Complete, clock).await;
                }
            }
            Op::Generate { period } => {
                let ended = (clock - now()).num_days() / 7;
                if ended > 0 {
                    let k = (period as i64) % ended;
                    let from = now() + Duration::days(7 * k);
                    let request = crate::payouts::generate::Request {
                        venue_id: w.venue,
                        promoter_id: w.promoter,
                        period_from: from,
                        period_to: from + Duration::days(7),
                        scheduled_for: None,
                        method: None,
                        fees: None,
                        idempotency_key: None,
                    };
                    let by = &owners[period % 2];
                    if let Ok(g) =
                        crate::payouts::generate::generate_payout_at(&w.db, by, request, clock)
                            .await
                        && let Some(p) = g.payout
                        && !payouts.contains(&p.id)
                    {
                        payouts.push(p.id);
                    }
                }
            }
            Op::Payout { pick: i, step } => {
                if let Some(id) = pick(&payouts, i) {
                    payout_op(&w, &owners, id, step, clock).await;
                }
            }
            Op::Create {
                diners,
                promoter,
                days,
            } => {
                let mut input = new_booking(&w, diners, promoter);
                input.booking_time = clock + Duration::days(days);
                if days % 2 == 0 {
                    input.guest_id = second_guest;
                }
                if let Ok(b) = create_booking_at(&w.db, &w.manager, input, None, clock).await {
                    ids.push(b.id);
                }
            }
            Op::Edit {
                pick: i,
                diners,
                days,
            } => {
                if let Some(id) = pick(&ids, i) {
                    let _ = update_booking_at(
                        &w.db,
                        &w.manager,
                        id,
                        BookingChanges {
                            diners: Some(diners),
                            booking_time: Some(clock + Duration::days(days)),
                            ..BookingChanges::default()
                        },
                        clock,
                    )
                    .await;
                }
            }
            Op::Confirm { pick: i } => {
                if let Some(id) = pick(&ids, i) {
                    let _ = go(&w, id, Transition::Confirm, clock).await;
                }
            }
            Op::Cancel { pick: i } => {
                if let Some(id) = pick(&ids, i) {
                    let _ = go(&w, id, cancel(), clock).await;
                }
            }
            Op::Complete { pick: i } | Op::NoShow { pick: i } => {
                if let Some(id) = pick(&ids, i) {
                    let t = if matches!(op, Op::Complete { .. }) {
                        Transition::Complete
                    } else {
                        no_show()
                    };
                    let booking = bookings::Entity::find_by_id(id)
                        .one(&w.db.conn)
                        .await
                        .unwrap()
                        .unwrap();
                    let at = booking.booking_time + Duration::hours(1);
                    if at > clock {
                        clock = at;
                    }
                    let _ = go(&w, id, t, clock).await;
                }
            }
        }
        let report = crate::check::run_at(&w.db.conn, None, clock).await.unwrap();
        // The month fields are only as fresh as the last change of each promoter (the
        // clock may have moved into a new month since): refresh, then every invariant
        // must hold.
        let month_only = report
            .discrepancies
            .iter()
            .all(|d| d.kind == "promoter_aggregate" && d.message.contains("month_"));
        if !report.discrepancies.is_empty() && month_only {
            refresh_month_fields(&w.db.conn, clock).await.unwrap();
        }
        assert_clean(&w, clock).await;
        assert_eq!(
            progress_of(&w, new_guests, w.promoter).await.current_value,
            100 * recount_new_guests(&w, new_guests).await,
            "NEW_GUESTS progress after {op:?}"
        );
    }
}

/// Moves a booking to `at` (the manager edits only its time, now).
async fn move_booking(w: &World, id: Uuid, at: DateTime<Utc>) {
    update_booking_at(
        &w.db,
        &w.manager,
        id,
        BookingChanges {
            booking_time: Some(at),
            ..BookingChanges::default()
        },
        now(),
    )
    .await
    .unwrap();
}

/// A NEW_GUESTS programme (GREATER_EQUAL 5 guests) over `[from, to)` in which the world's
/// promoter takes part from 0.
async fn new_guests_programme(w: &World, from: DateTime<Utc>, to: DateTime<Utc>) -> Uuid {
    use prima_entity::enums::{IncentiveType, TargetComparison};
    use prima_entity::incentives;
    let id = programme(
        w,
        IncentiveType::NewGuests,
        TargetComparison::GreaterEqual,
        500,
    )
    .await;
    let mut row: incentives::ActiveModel = incentives::Entity::find_by_id(id)
        .one(&w.db.conn)
        .await
        .unwrap()
        .unwrap()
        .into();
    row.period_start = Set(from);
    row.period_end = Set(to);
    row.update(&w.db.conn).await.unwrap();
    id
}

/// The guests whose first booking with the world's promoter (any status) is in the
/// programme's period, counted from the bookings.
async fn recount_new_guests(w: &World, programme: Uuid) -> i64 {
    let p = prima_entity::incentives::Entity::find_by_id(programme)
        .one(&w.db.conn)
        .await
        .unwrap()
        .unwrap();
    let firsts: Vec<(Uuid, Option<DateTime<Utc>>)> = bookings::Entity::find()
        .select_only()
        .column(bookings::Column::GuestId)
        .column_as(bookings::Column::BookingTime.min(), "first_at")
        .filter(bookings::Column::PromoterId.eq(w.promoter))
        .group_by(bookings::Column::GuestId)
        .into_tuple()
        .all(&w.db.conn)
        .await
        .unwrap();
    firsts
        .into_iter()
        .filter(|(_, at)| at.is_some_and(|at| at >= p.period_start && at < p.period_end))
        .count() as i64
}

#[tokio::test]
async fn a_guest_becomes_new_in_a_period_when_their_earlier_first_booking_moves_out() {
    let w = world().await;
    let programme =
        new_guests_programme(&w, now() + Duration::days(5), now() + Duration::days(15)).await;
    let at = |days: i64| now() + Duration::days(days);
    let early = create(&w, 2, true).await; // day 2: before the period
    let mut input = new_booking(&w, 2, true);
    input.booking_time = at(10);
    create_booking_at(&w.db, &w.manager, input, None, now())
        .await
        .unwrap();
    // The guest's first booking (day 2) is before the period: not new in it.
    assert_eq!(
        progress_of(&w, programme, w.promoter).await.current_value,
        0
    );
    let month = promoter_row(&w).await;
    assert_eq!((month.month_new_guests, month.month_repeat_guests), (1, 0));
    // Day 2 moves to day 20: neither the old nor the new time of the edited booking is in
    // the period, but the first booking is now day 10, which is.
    move_booking(&w, early.id, at(20)).await;
    assert_eq!(
        progress_of(&w, programme, w.promoter).await.current_value,
        100
    );
    assert_eq!(recount_new_guests(&w, programme).await, 1);
    // And back: the guest leaves the period's new guests again.
    move_booking(&w, early.id, at(3)).await;
    assert_eq!(
        progress_of(&w, programme, w.promoter).await.current_value,
        0
    );
    assert_clean(&w, now()).await;
}

#[tokio::test]
async fn month_fields_move_by_deltas_in_their_month_and_are_recounted_once_it_turns() {
    let w = world().await;
    let chicago: chrono_tz::Tz = "America/Chicago".parse().unwrap();
    let (start, _) = crate::commissions::month::month_bounds(chicago, now());
    // The first change of a promoter whose month is not known yet recounts it and records
    // which month the fields cover; later changes in that month move them by deltas.
    assert_eq!(promoter_row(&w).await.month_start, None);
    let one = create(&w, 2, true).await;
    assert_eq!(promoter_row(&w).await.month_start, Some(start));
    go(&w, one.id, Transition::Confirm, now()).await.unwrap();
    let two = create(&w, 4, true).await;
    go(&w, two.id, Transition::Confirm, now()).await.unwrap();
    let row = promoter_row(&w).await;
    assert_eq!(
        (
            row.month_bookings,
            row.month_revenue,
            row.month_new_guests,
            row.month_repeat_guests
        ),
        (2, one.total_fee + two.total_fee, 1, 0)
    );
    assert_clean(&w, now()).await;

    // Forty days on, the month has turned: the next change recounts the new month (one
    // booking in it; the guest, first seen last month, is a repeat guest) and records it.
    let next = now() + Duration::days(40);
    let (next_start, _) = crate::commissions::month::month_bounds(chicago, next);
    let mut input = new_booking(&w, 2, true);
    input.booking_time = next + Duration::days(1);
    let three = create_booking_at(&w.db, &w.manager, input, None, next)
        .await
        .unwrap();
    go(&w, three.id, Transition::Confirm, next).await.unwrap();
    let row = promoter_row(&w).await;
    assert_eq!(row.month_start, Some(next_start));
    assert_eq!(
        (
            row.month_bookings,
            row.month_revenue,
            row.month_new_guests,
            row.month_repeat_guests
        ),
        (1, three.total_fee, 0, 1)
    );
    assert_clean(&w, next).await;
}

/// One payout operation of the random sequences, by either owner (the four-eyes rule
/// refuses some approvals): mostly the payout's next step from where it is (a start with
/// an active hold is refused, a processing payout completes or fails), sometimes a return
/// to draft, a hold for a day or the release of its holds.
async fn payout_op(w: &World, owners: &[Actor; 2], id: Uuid, step: u8, clock: DateTime<Utc>) {
    use crate::payouts::lifecycle::{self, HoldRequest, Step};
    use prima_entity::enums::PayoutStatus as S;
    let by = &owners[usize::from(step % 2)];
    let status = prima_entity::payouts::Entity::find_by_id(id)
        .one(&w.db.conn)
        .await
        .unwrap()
        .unwrap()
        .status;
    let next = match (status, step % 8) {
        (_, 6) => {
            let hold = HoldRequest {
                payout_id: id,
                amount: rust_decimal::Decimal::new(1, 2),
                reason: "query".into(),
                hold_until: Some(clock + Duration::days(1)),
            };
            let _ = lifecycle::place_hold_at(&w.db, by, hold, clock).await;
            return;
        }
        (_, 7) => {
            let holds = prima_entity::payout_holds::Entity::find()
                .filter(prima_entity::payout_holds::Column::PayoutId.eq(id))
                .all(&w.db.conn)
                .await
                .unwrap();
            for hold in holds {
                let _ = lifecycle::release_hold_at(&w.db, by, hold.id, clock).await;
            }
            return;
        }
        (S::PendingApproval | S::Approved, 5) => Step::ReturnToDraft {
            reason: "recheck".into(),
        },
        (S::Draft, _) => Step::Submit,
        (S::PendingApproval, _) => Step::Approve,
        (S::Approved, _) => Step::StartProcessing,
        (S::Processing, 0..=3) => Step::Complete {
            reference: "REF".into(),
        },
        (S::Processing, _) => Step::Fail {
            reason: "bounced".into(),
        },
        (S::Completed | S::Failed, _) => Step::Submit,
    };
    let _ = lifecycle::advance_at(&w.db, by, id, next, clock).await;
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 12,
        ..proptest::prelude::ProptestConfig::default()
    })]
    #[test]
    fn random_bookings_refunds_and_payouts_keep_every_invariant(ops in proptest::collection::vec(money_op(), 1..60)) {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(run_ops(ops));
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 12,
        ..proptest::prelude::ProptestConfig::default()
    })]
    #[test]
    fn random_operation_sequences_keep_every_invariant(ops in proptest::collection::vec(op(), 1..25)) {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(run_ops(ops));
    }
}

// ---------------------------------------------------------------------------------------
// The one ending of every change
// ---------------------------------------------------------------------------------------

/// What committed changes left behind so far: history rows by action, `booking.changed`
/// events by action, and rings of the relay's doorbell.
type Endings = (BTreeMap<String, u64>, BTreeMap<String, u64>, u64);

async fn endings(w: &World) -> Endings {
    let conn = &w.db.conn;
    let mut history = BTreeMap::new();
    for row in booking_history::Entity::find().all(conn).await.unwrap() {
        *history.entry(row.action).or_default() += 1;
    }
    let mut events = BTreeMap::new();
    for row in outbox_events::Entity::find()
        .filter(outbox_events::Column::Topic.eq(crate::events::outbox::BOOKING_CHANGED))
        .all(conn)
        .await
        .unwrap()
    {
        let action = row.payload["action"].as_str().unwrap().to_owned();
        *events.entry(action).or_default() += 1;
    }
    (history, events, w.db.relay.rung())
}

#[tokio::test]
async fn every_kind_of_change_writes_one_history_row_and_one_event_and_wakes_the_relay_once() {
    let w = world().await;
    let admin = fixtures::actor(w.user, UserRole::Admin, &[]);
    let mut was = endings(&w).await;
    // After each change: one more history row and event, both saying `action`, and one more
    // ring; after a change that wrote nothing, none of the three.
    macro_rules! ended {
        ($what:literal, $action:literal) => {{
            let now = endings(&w).await;
            let mut expected = was.clone();
            *expected.0.entry($action.to_owned()).or_default() += 1;
            *expected.1.entry($action.to_owned()).or_default() += 1;
            expected.2 += 1;
            assert_eq!(now, expected, "{}", $what);
            was = now;
        }};
        ($what:literal) => {{
            let now = endings(&w).await;
            assert_eq!(now, was, "{} writes nothing and wakes no one", $what);
        }};
    }

    let input = new_booking(&w, 4, true);
    let booking = create_booking_at(&w.db, &w.manager, input.clone(), Some("k"), now())
        .await
        .unwrap();
    ended!("making a booking", "CREATED");
    create_booking_at(&w.db, &w.manager, input, Some("k"), now())
        .await
        .unwrap();
    ended!("a replay of a keyed booking");

    let edit = || BookingChanges {
        diners: Some(6),
        ..BookingChanges::default()
    };
    update_booking_at(&w.db, &w.manager, booking.id, edit(), now())
        .await
        .unwrap();
    ended!("an edit", "UPDATED");
    update_booking_at(&w.db, &w.manager, booking.id, edit(), now())
        .await
        .unwrap();
    ended!("an edit that changes nothing");

    go(&w, booking.id, Transition::Confirm, now())
        .await
        .unwrap();
    ended!("a confirmation", "STATUS_CHANGED");
    go(&w, booking.id, Transition::Complete, after_it())
        .await
        .unwrap();
    ended!("a completion", "STATUS_CHANGED");
    go(&w, booking.id, cancel(), after_it()).await.unwrap_err();
    ended!("a refused transition");

    refund_booking_at(
        &w.db,
        &admin,
        booking.id,
        Some(rust_decimal_macros::dec!(10.00)),
        "Cold food".into(),
        after_it(),
    )
    .await
    .unwrap();
    ended!("a refund", "REFUNDED");

    let other = create(&w, 2, true).await;
    ended!("making another booking", "CREATED");
    go(&w, other.id, cancel(), now()).await.unwrap();
    ended!("a cancellation", "STATUS_CHANGED");

    let third = create(&w, 2, true).await;
    ended!("making a third booking", "CREATED");
    go(&w, third.id, Transition::Confirm, now()).await.unwrap();
    ended!("confirming it", "STATUS_CHANGED");
    go(&w, third.id, no_show(), after_it()).await.unwrap();
    ended!("a no-show", "STATUS_CHANGED");
    refund_booking_at(&w.db, &admin, third.id, None, "No".into(), after_it())
        .await
        .unwrap_err();
    ended!("a refused refund");
}

/// How many statements a change sends (the booking write path's round trips), per backend.
async fn statements_of<T>(w: &World, change: impl std::future::Future<Output = T>) -> u64 {
    let before = w.db.stats.statements();
    change.await;
    w.db.stats.statements() - before
}

#[tokio::test]
async fn each_change_sends_the_same_few_statements_with_two_programmes_running() {
    use prima_entity::enums::{IncentiveType as K, TargetComparison as C};
    let w = world().await;
    programme(&w, K::BookingCount, C::GreaterEqual, 10_000).await;
    programme(&w, K::RevenueTarget, C::GreaterEqual, 10_000_000).await;
    let pg = w.db.is_postgres();
    let mut seen = Vec::new();
    for round in 0..3 {
        let mut booking = None;
        let create = statements_of(&w, async {
            booking = Some(create(&w, 4, true).await);
        })
        .await;
        let id = booking.unwrap().id;
        let confirm = statements_of(&w, async {
            go(&w, id, Transition::Confirm, now()).await.unwrap();
        })
        .await;
        let complete = statements_of(&w, async {
            go(&w, id, Transition::Complete, after_it()).await.unwrap();
        })
        .await;
        seen.push((round, create, confirm, complete));
    }
    // Rounds after the first (which computes the promoter's month once): the same counts
    // every time, whatever the promoter's bookings so far. A confirmation on PostgreSQL:
    // the booking read with its venue (one statement), then in the transaction the status
    // UPDATE, the promoter's counters (returning the row the commission uses), the
    // programmes, their locks (one statement), one progress UPDATE per programme, the
    // commission assignment, and the tail (commission, ledger rows, history, events: one
    // statement). SQLite sends the tail's writes one by one (four) and takes no programme
    // lock. BEGIN and COMMIT are not counted.
    let expected = if pg { (12, 9, 7) } else { (13, 11, 9) };
    for (round, create, confirm, complete) in &seen[1..] {
        assert_eq!(
            (*create, *confirm, *complete),
            expected,
            "round {round}: create, confirm, complete (all rounds: {seen:?})"
        );
    }
    assert_clean(&w, after_it()).await;
}
