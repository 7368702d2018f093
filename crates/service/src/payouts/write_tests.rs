//! The payout rules of DOMAIN.md "Payouts", on the service: generation, the lifecycle,
//! holds, four eyes, balances and statements. They run on SQLite in memory, or on a fresh
//! PostgreSQL database with `TEST_DATABASE_URL`.

use chrono::{DateTime, Duration, Utc};
use prima_entity::enums::{PayoutStatus, TransactionStatus, TransactionType, UserRole};
use prima_entity::{payout_audit, payout_items, payouts, transactions};
use rust_decimal::Decimal;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use super::balance::{LineKind, balances, statements};
use super::generate::{Outcome, Request, generate_payout_at, generate_venue_payouts_at};
use super::lifecycle::{HoldRequest, Step, advance_at, place_hold_at, release_hold_at};
use crate::access::{Actor, Level};
use crate::db::Db;
use crate::testing::fixtures::*;

/// A venue with a promoter and two of its OWNERs (four eyes need two).
struct World {
    db: crate::testing::TestDb,
    venue: Uuid,
    promoter: Uuid,
    alice: Actor,
    bob: Actor,
}

async fn world() -> World {
    let db = db().await;
    let venue = venue(&db).await;
    let promoter = promoter(&db, venue, "Adams").await;
    let (a, b) = (user(&db).await, user(&db).await);
    World {
        alice: actor(a, UserRole::Manager, &[(venue, Level::Owner)]),
        bob: actor(b, UserRole::Manager, &[(venue, Level::Admin)]),
        db,
        venue,
        promoter,
    }
}

/// The first of the month periods the tests use: [t0 + 30 d * n, t0 + 30 d * (n + 1)).
fn period(n: i64) -> (DateTime<Utc>, DateTime<Utc>) {
    (
        t0() + Duration::days(30 * n),
        t0() + Duration::days(30 * (n + 1)),
    )
}

/// Long after every period the tests use.
fn later() -> DateTime<Utc> {
    t0() + Duration::days(400)
}

/// A CONFIRMED (earned) ledger row of the promoter, created at `at`.
async fn earned(db: &Db, w: &World, kind: TransactionType, amount: i64, at: DateTime<Utc>) -> Uuid {
    let booking = match kind {
        TransactionType::IncentivePayout | TransactionType::Adjustment => None,
        _ => Some(booking(db, w.venue, Some(w.promoter)).await),
    };
    let id = transaction(db, w.venue, booking, Some(w.promoter), kind, amount, at).await;
    transactions::Entity::update_many()
        .col_expr(
            transactions::Column::Status,
            Expr::value(TransactionStatus::Confirmed),
        )
        .filter(transactions::Column::Id.eq(id))
        .exec(&db.conn)
        .await
        .unwrap();
    id
}

async fn commission(w: &World, amount: i64, at: DateTime<Utc>) -> Uuid {
    earned(&w.db, w, TransactionType::PromoterCommission, amount, at).await
}

fn request(w: &World, (from, to): (DateTime<Utc>, DateTime<Utc>)) -> Request {
    Request {
        venue_id: w.venue,
        promoter_id: w.promoter,
        period_from: from,
        period_to: to,
        scheduled_for: None,
        method: None,
        fees: None,
        idempotency_key: None,
    }
}

async fn generate(w: &World, period: (DateTime<Utc>, DateTime<Utc>)) -> super::generate::Generated {
    generate_payout_at(&w.db, &w.alice, request(w, period), later())
        .await
        .unwrap()
}

async fn step(w: &World, by: &Actor, id: Uuid, step: Step) -> crate::Result<payouts::Model> {
    advance_at(&w.db, by, id, step, later()).await
}

/// Submitted by alice, approved by bob.
async fn approved(w: &World, id: Uuid) {
    step(w, &w.alice, id, Step::Submit).await.unwrap();
    step(w, &w.bob, id, Step::Approve).await.unwrap();
}

async fn payout_of(w: &World, id: Uuid) -> Option<Uuid> {
    transactions::Entity::find_by_id(id)
        .one(&w.db.conn)
        .await
        .unwrap()
        .unwrap()
        .payout_id
}

/// The payout invariants of `prima check` hold (the fixtures' bookings are not priced, so
/// the ledger invariants are not asked here; the black-box and property tests run all).
async fn clean(w: &World) {
    let mut found = crate::check::payouts::paid_out_amounts_unchanged(&w.db.conn, None)
        .await
        .unwrap();
    found.extend(
        crate::check::payouts::payout_claims_hold(&w.db.conn, None)
            .await
            .unwrap(),
    );
    assert!(found.is_empty(), "prima check: {found:#?}");
}

#[tokio::test]
async fn a_payout_takes_the_period_from_its_start_up_to_but_not_including_its_end() {
    let w = world().await;
    let (from, to) = period(0);
    let before = commission(&w, 100, from - Duration::microseconds(1)).await;
    let first = commission(&w, 200, from).await;
    let last = commission(&w, 300, to - Duration::microseconds(1)).await;
    let at_end = commission(&w, 400, to).await;
    let booked = booking(&w.db, w.venue, Some(w.promoter)).await;
    let pending = transaction(
        &w.db,
        w.venue,
        Some(booked),
        Some(w.promoter),
        TransactionType::PromoterCommission,
        50,
        from,
    )
    .await;
    let fee = earned(&w.db, &w, TransactionType::BookingFee, 70, from).await;

    let made = generate(&w, (from, to)).await;
    assert_eq!(made.outcome, Outcome::Created);
    let payout = made.payout.unwrap();
    assert_eq!((payout.amount, payout.commissions_amount), (500, 500));
    assert_eq!(payout.status, PayoutStatus::Draft);
    assert_eq!(payout.created_by, Some(w.alice.user_id));
    for (id, inside) in [
        (before, false),
        (first, true),
        (last, true),
        (at_end, false),
        (pending, false),
        (fee, false),
    ] {
        assert_eq!(payout_of(&w, id).await.is_some(), inside, "{id}");
    }
    let items = payout_items::Entity::find()
        .filter(payout_items::Column::PayoutId.eq(payout.id))
        .all(&w.db.conn)
        .await
        .unwrap();
    assert_eq!(items.len(), 2);
    let audit = payout_audit::Entity::find()
        .filter(payout_audit::Column::PayoutId.eq(payout.id))
        .all(&w.db.conn)
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(
        (audit[0].from_status, audit[0].to_status),
        (None, PayoutStatus::Draft)
    );
    clean(&w).await;
}

#[tokio::test]
async fn generating_again_returns_the_same_payout_and_takes_nothing_new() {
    let w = world().await;
    let p = period(0);
    commission(&w, 100, p.0).await;
    let first = generate(&w, p).await.payout.unwrap();
    let late = commission(&w, 999, p.0 + Duration::days(1)).await;
    let again = generate(&w, p).await;
    assert_eq!(again.outcome, Outcome::Existing);
    assert_eq!(again.payout.unwrap().id, first.id);
    assert_eq!(
        payout_of(&w, late).await,
        None,
        "the existing payout is not changed"
    );
    let count = payouts::Entity::find().all(&w.db.conn).await.unwrap().len();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn eight_concurrent_generations_make_one_payout() {
    let w = world().await;
    let p = period(0);
    for i in 0..20 {
        commission(&w, 100 + i, p.0 + Duration::hours(i)).await;
    }
    let runs = (0..8).map(|_| generate_payout_at(&w.db, &w.alice, request(&w, p), later()));
    let results = futures::future::join_all(runs).await;
    let mut ids = std::collections::HashSet::new();
    let mut created = 0;
    for result in results {
        let generated = result.expect("every concurrent generation answers with the payout");
        created += usize::from(generated.outcome == Outcome::Created);
        ids.insert(generated.payout.unwrap().id);
    }
    assert_eq!((created, ids.len()), (1, 1));
    let items = payout_items::Entity::find().all(&w.db.conn).await.unwrap();
    assert_eq!(items.len(), 20);
    clean(&w).await;
}

#[tokio::test]
async fn an_idempotency_key_replays_its_payout_and_refuses_other_input() {
    let w = world().await;
    let p = period(0);
    commission(&w, 100, p.0).await;
    let mut keyed = request(&w, p);
    keyed.idempotency_key = Some("po-1".into());
    let first = generate_payout_at(&w.db, &w.alice, keyed.clone(), later())
        .await
        .unwrap();
    let again = generate_payout_at(&w.db, &w.alice, keyed.clone(), later())
        .await
        .unwrap();
    assert_eq!(again.payout.unwrap().id, first.payout.unwrap().id);
    keyed.fees = Some(Decimal::new(10, 2));
    let err = generate_payout_at(&w.db, &w.alice, keyed, later())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "CONFLICT");
}

#[tokio::test]
async fn a_failed_payout_releases_its_transactions_to_the_next_one() {
    let w = world().await;
    let p = period(0);
    let t = commission(&w, 100, p.0).await;
    let failed = generate(&w, p).await.payout.unwrap();
    approved(&w, failed.id).await;
    step(&w, &w.alice, failed.id, Step::StartProcessing)
        .await
        .unwrap();
    let done = step(
        &w,
        &w.alice,
        failed.id,
        Step::Fail {
            reason: "bank rejected the account".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(done.status, PayoutStatus::Failed);
    assert_eq!(payout_of(&w, t).await, None);
    clean(&w).await;

    let next = generate(&w, p).await;
    assert_eq!(
        next.outcome,
        Outcome::Created,
        "a FAILED payout does not count"
    );
    let next = next.payout.unwrap();
    assert_ne!(next.id, failed.id);
    assert_eq!(payout_of(&w, t).await, Some(next.id));
    let released = payout_items::Entity::find()
        .filter(payout_items::Column::PayoutId.eq(failed.id))
        .one(&w.db.conn)
        .await
        .unwrap()
        .unwrap();
    assert!(
        released.released_at.is_some(),
        "the failed payout keeps its item, released"
    );
    clean(&w).await;
}

#[tokio::test]
async fn completing_settles_the_transactions_and_the_audit_tells_every_step() {
    let w = world().await;
    let p = period(0);
    let t = commission(&w, 100, p.0).await;
    let payout = generate(&w, p).await.payout.unwrap();
    approved(&w, payout.id).await;
    step(&w, &w.alice, payout.id, Step::StartProcessing)
        .await
        .unwrap();
    let err = step(
        &w,
        &w.alice,
        payout.id,
        Step::Complete {
            reference: " ".into(),
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "BAD_USER_INPUT");
    let done = step(
        &w,
        &w.bob,
        payout.id,
        Step::Complete {
            reference: "BANK-123".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(done.status, PayoutStatus::Completed);
    assert_eq!(done.reference.as_deref(), Some("BANK-123"));
    let row = transactions::Entity::find_by_id(t)
        .one(&w.db.conn)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, TransactionStatus::Settled);
    assert_eq!(row.settled_at, Some(later()));
    let trail: Vec<(Option<PayoutStatus>, PayoutStatus)> = payout_audit::Entity::find()
        .filter(payout_audit::Column::PayoutId.eq(payout.id))
        .order_by_asc(payout_audit::Column::CreatedAt)
        .all(&w.db.conn)
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.from_status, a.to_status))
        .collect();
    use PayoutStatus as S;
    assert_eq!(trail.len(), 5);
    for step in [
        (None, S::Draft),
        (Some(S::Draft), S::PendingApproval),
        (Some(S::PendingApproval), S::Approved),
        (Some(S::Approved), S::Processing),
        (Some(S::Processing), S::Completed),
    ] {
        assert!(trail.contains(&step), "{step:?} in {trail:?}");
    }
    let err = step(
        &w,
        &w.alice,
        payout.id,
        Step::Complete {
            reference: "again".into(),
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "CONFLICT", "{err}");
    assert!(
        err.to_string().contains("only a PROCESSING payout"),
        "{err}"
    );
    let hold = HoldRequest {
        payout_id: payout.id,
        amount: Decimal::new(1, 2),
        reason: "too late".into(),
        hold_until: None,
    };
    let err = place_hold_at(&w.db, &w.alice, hold, later())
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        "CONFLICT",
        "no hold on a COMPLETED payout: {err}"
    );
    let balance = &balances(&w.db.conn, &w.alice, &[w.promoter]).await.unwrap()[&w.promoter];
    assert_eq!(
        (balance.paid, balance.in_payout, balance.earned_unpaid),
        (100, 0, 0)
    );
    clean(&w).await;
}

#[tokio::test]
async fn the_submitter_cannot_approve_and_neither_can_a_manager() {
    let w = world().await;
    let p = period(0);
    commission(&w, 100, p.0).await;
    let payout = generate(&w, p).await.payout.unwrap();
    step(&w, &w.alice, payout.id, Step::Submit).await.unwrap();
    let err = step(&w, &w.alice, payout.id, Step::Approve)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "FORBIDDEN", "{err}");
    assert!(err.to_string().contains("four eyes"));
    let manager = actor(
        user(&w.db).await,
        UserRole::Manager,
        &[(w.venue, Level::Manager)],
    );
    assert_eq!(
        step(&w, &manager, payout.id, Step::Approve)
            .await
            .unwrap_err()
            .code(),
        "FORBIDDEN"
    );
    let outsider = actor(user(&w.db).await, UserRole::Manager, &[]);
    assert_eq!(
        step(&w, &outsider, payout.id, Step::Approve)
            .await
            .unwrap_err()
            .code(),
        "NOT_FOUND"
    );

    // Returned to draft and submitted again by bob: now alice may approve, bob may not.
    step(
        &w,
        &w.bob,
        payout.id,
        Step::ReturnToDraft {
            reason: "check the fees".into(),
        },
    )
    .await
    .unwrap();
    step(&w, &w.bob, payout.id, Step::Submit).await.unwrap();
    assert_eq!(
        step(&w, &w.bob, payout.id, Step::Approve)
            .await
            .unwrap_err()
            .code(),
        "FORBIDDEN"
    );
    let approved = step(&w, &w.alice, payout.id, Step::Approve).await.unwrap();
    assert_eq!(approved.approved_by, Some(w.alice.user_id));
}

#[tokio::test]
async fn an_active_hold_blocks_processing_until_released_or_expired() {
    let w = world().await;
    let p = period(0);
    commission(&w, 1000, p.0).await;
    let payout = generate(&w, p).await.payout.unwrap();
    let hold = |amount: i64, until: Option<DateTime<Utc>>| HoldRequest {
        payout_id: payout.id,
        amount: Decimal::new(amount, 2),
        reason: "disputed booking".into(),
        hold_until: until,
    };
    let err = place_hold_at(&w.db, &w.alice, hold(1001, None), later())
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        "BAD_USER_INPUT",
        "a hold larger than the payout: {err}"
    );
    let (open, _) = place_hold_at(&w.db, &w.alice, hold(300, None), later())
        .await
        .unwrap();
    let (timed, _) = place_hold_at(
        &w.db,
        &w.alice,
        hold(200, Some(later() + Duration::hours(1))),
        later(),
    )
    .await
    .unwrap();
    approved(&w, payout.id).await;
    let err = step(&w, &w.alice, payout.id, Step::StartProcessing)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "CONFLICT");
    assert!(err.to_string().contains(&open.id.to_string()), "{err}");
    release_hold_at(&w.db, &w.bob, open.id, later())
        .await
        .unwrap();
    assert_eq!(
        release_hold_at(&w.db, &w.bob, open.id, later())
            .await
            .unwrap_err()
            .code(),
        "CONFLICT"
    );
    let err = step(&w, &w.alice, payout.id, Step::StartProcessing)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(&timed.id.to_string()),
        "the timed hold still holds: {err}"
    );
    let after = later() + Duration::hours(1);
    let started = advance_at(&w.db, &w.alice, payout.id, Step::StartProcessing, after)
        .await
        .unwrap();
    assert_eq!(started.status, PayoutStatus::Processing);
    let err = place_hold_at(&w.db, &w.alice, hold(100, None), after)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "CONFLICT", "no hold once PROCESSING");
    clean(&w).await;
}

#[tokio::test]
async fn a_clawback_is_deducted_and_a_negative_balance_carries_into_the_next_period() {
    let w = world().await;
    let (p0, p1, p2) = (period(0), period(1), period(2));
    // Period 0: paid 500.
    let c0 = commission(&w, 500, p0.0).await;
    let first = generate(&w, p0).await.payout.unwrap();
    assert_eq!(first.amount, 500);
    // Period 1: earns 100, but a refund claws back 300 of period 0's commission.
    commission(&w, 100, p1.0).await;
    let claw = earned(
        &w.db,
        &w,
        TransactionType::Adjustment,
        -300,
        p1.0 + Duration::days(1),
    )
    .await;
    transactions::Entity::update_many()
        .col_expr(transactions::Column::ReversesTransactionId, Expr::value(c0))
        .filter(transactions::Column::Id.eq(claw))
        .exec(&w.db.conn)
        .await
        .unwrap();
    let carried = generate(&w, p1).await;
    assert_eq!(
        (carried.outcome, carried.balance),
        (Outcome::CarriedNegative, -200)
    );
    assert!(carried.payout.is_none());
    let balance = &balances(&w.db.conn, &w.alice, &[w.promoter]).await.unwrap()[&w.promoter];
    assert_eq!(
        (
            balance.carried_negative,
            balance.earned_unpaid,
            balance.in_payout
        ),
        (-200, 0, 500)
    );
    clean(&w).await;
    // Period 2: earns 450; the payout deducts the 200 carried.
    commission(&w, 450, p2.0).await;
    let next = generate(&w, p2).await.payout.unwrap();
    assert_eq!(
        (
            next.amount,
            next.commissions_amount,
            next.adjustments_amount
        ),
        (250, 550, -300)
    );
    assert_eq!(payout_of(&w, claw).await, Some(next.id));
    let statement = &statements(&w.db.conn, &w.alice, &[next.id]).await.unwrap()[&next.id];
    let lines: Vec<(LineKind, i64, i64)> = statement
        .lines
        .iter()
        .map(|l| (l.kind, l.count, l.amount))
        .collect();
    assert_eq!(
        lines,
        [
            (LineKind::Commissions, 1, 450),
            (LineKind::CarriedBalance, 2, -200)
        ]
    );
    assert_eq!(
        statement.lines.iter().map(|l| l.amount).sum::<i64>(),
        statement.amount
    );
    let balance = &balances(&w.db.conn, &w.alice, &[w.promoter]).await.unwrap()[&w.promoter];
    assert_eq!((balance.carried_negative, balance.in_payout), (0, 750));
    clean(&w).await;
}

#[tokio::test]
async fn a_statement_shows_clawbacks_and_fees_and_adds_up_to_the_amount() {
    let w = world().await;
    let p = period(0);
    let c = commission(&w, 800, p.0).await;
    earned(&w.db, &w, TransactionType::IncentivePayout, 150, p.0).await;
    earned(&w.db, &w, TransactionType::Adjustment, 25, p.0).await;
    let claw = earned(&w.db, &w, TransactionType::Adjustment, -100, p.0).await;
    transactions::Entity::update_many()
        .col_expr(transactions::Column::ReversesTransactionId, Expr::value(c))
        .filter(transactions::Column::Id.eq(claw))
        .exec(&w.db.conn)
        .await
        .unwrap();
    let mut req = request(&w, p);
    req.fees = Some(Decimal::new(75, 2));
    let payout = generate_payout_at(&w.db, &w.alice, req.clone(), later())
        .await
        .unwrap()
        .payout
        .unwrap();
    assert_eq!(payout.amount, 800 + 150 + 25 - 100 - 75);
    let statement = &statements(&w.db.conn, &w.alice, &[payout.id])
        .await
        .unwrap()[&payout.id];
    let lines: Vec<(LineKind, i64)> = statement.lines.iter().map(|l| (l.kind, l.amount)).collect();
    assert_eq!(
        lines,
        [
            (LineKind::Commissions, 800),
            (LineKind::Incentives, 150),
            (LineKind::Adjustments, 25),
            (LineKind::Clawbacks, -100),
            (LineKind::Fees, -75),
        ]
    );
    assert_eq!(
        statement.lines.iter().map(|l| l.amount).sum::<i64>(),
        payout.amount
    );
    clean(&w).await;
}

#[tokio::test]
async fn bad_input_gets_a_typed_error_and_changes_nothing() {
    let w = world().await;
    let p = period(0);
    commission(&w, 100, p.0).await;
    let cases: Vec<(Request, &str)> = {
        let mut backwards = request(&w, p);
        backwards.period_to = backwards.period_from;
        let mut future = request(&w, (later(), later() + Duration::days(1)));
        future.period_to = later() + Duration::days(1);
        let mut early = request(&w, p);
        early.scheduled_for = Some(p.0);
        let mut fees = request(&w, p);
        fees.fees = Some(Decimal::new(101, 2));
        let mut other = request(&w, p);
        let elsewhere = venue(&w.db).await;
        other.promoter_id = promoter(&w.db, elsewhere, "Baker").await;
        vec![
            (backwards, "periodTo"),
            (future, "periodTo"),
            (early, "scheduledFor"),
            (fees, "fees"),
            (other, "promoterId"),
        ]
    };
    for (req, field) in cases {
        match generate_payout_at(&w.db, &w.alice, req, later())
            .await
            .unwrap_err()
        {
            crate::Error::Invalid { field: got, .. } => assert_eq!(got, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    assert!(
        payouts::Entity::find()
            .all(&w.db.conn)
            .await
            .unwrap()
            .is_empty()
    );
    let manager = actor(
        user(&w.db).await,
        UserRole::Manager,
        &[(w.venue, Level::Manager)],
    );
    let err = generate_payout_at(&w.db, &manager, request(&w, p), later())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "FORBIDDEN");
    let overlap = (p.0 + Duration::days(1), p.1 + Duration::days(1));
    generate(&w, p).await;
    let err = generate_payout_at(&w.db, &w.alice, request(&w, overlap), later())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "CONFLICT", "{err}");
}

#[tokio::test]
async fn a_venue_run_reports_each_promoter_and_is_idempotent() {
    let w = world().await;
    let p = period(0);
    commission(&w, 100, p.0).await;
    let negative = promoter(&w.db, w.venue, "Baker").await;
    let id = transaction(
        &w.db,
        w.venue,
        None,
        Some(negative),
        TransactionType::Adjustment,
        -40,
        p.0,
    )
    .await;
    transactions::Entity::update_many()
        .col_expr(
            transactions::Column::Status,
            Expr::value(TransactionStatus::Confirmed),
        )
        .filter(transactions::Column::Id.eq(id))
        .exec(&w.db.conn)
        .await
        .unwrap();
    promoter(&w.db, w.venue, "Clark").await;
    let run = generate_venue_payouts_at(&w.db, &w.alice, w.venue, p, None, later())
        .await
        .unwrap();
    let outcomes: Vec<(Outcome, i64)> =
        run.results.iter().map(|r| (r.outcome, r.balance)).collect();
    assert_eq!(
        outcomes,
        [
            (Outcome::Created, 100),
            (Outcome::CarriedNegative, -40),
            (Outcome::Nothing, 0)
        ]
    );
    let again = generate_venue_payouts_at(&w.db, &w.alice, w.venue, p, None, later())
        .await
        .unwrap();
    let outcomes: Vec<Outcome> = again.results.iter().map(|r| r.outcome).collect();
    assert_eq!(
        outcomes,
        [
            Outcome::Existing,
            Outcome::CarriedNegative,
            Outcome::Nothing
        ]
    );
    assert_eq!(
        run.results[0].payout.as_ref().unwrap().id,
        again.results[0].payout.as_ref().unwrap().id
    );
    clean(&w).await;
}

#[tokio::test]
async fn concurrent_approvals_starts_and_completions_each_take_effect_once() {
    let w = world().await;
    let p = period(0);
    commission(&w, 100, p.0).await;
    let payout = generate(&w, p).await.payout.unwrap();
    step(&w, &w.alice, payout.id, Step::Submit).await.unwrap();
    let carol = actor(
        user(&w.db).await,
        UserRole::Manager,
        &[(w.venue, Level::Owner)],
    );
    for (steps, by) in [
        (vec![Step::Approve; 6], [&w.bob, &carol]),
        (vec![Step::StartProcessing; 6], [&w.alice, &w.bob]),
        (
            (0..6)
                .map(|i| Step::Complete {
                    reference: format!("ref-{i}"),
                })
                .collect(),
            [&w.alice, &carol],
        ),
    ] {
        let runs = steps
            .into_iter()
            .enumerate()
            .map(|(i, s)| advance_at(&w.db, by[i % 2], payout.id, s, later()));
        let results = futures::future::join_all(runs).await;
        let ok = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(ok, 1, "{results:?}");
        for err in results.iter().filter_map(|r| r.as_ref().err()) {
            assert_eq!(err.code(), "CONFLICT", "{err}");
        }
    }
    let audit = payout_audit::Entity::find()
        .filter(payout_audit::Column::PayoutId.eq(payout.id))
        .all(&w.db.conn)
        .await
        .unwrap();
    assert_eq!(
        audit.len(),
        5,
        "generated, submitted, approved, processing, completed"
    );
    clean(&w).await;
}

#[tokio::test]
async fn every_change_writes_an_outbox_event() {
    let w = world().await;
    let p = period(0);
    commission(&w, 100, p.0).await;
    let payout = generate(&w, p).await.payout.unwrap();
    step(&w, &w.alice, payout.id, Step::Submit).await.unwrap();
    let events = prima_entity::outbox_events::Entity::find()
        .filter(prima_entity::outbox_events::Column::Topic.eq(super::PAYOUT_CHANGED))
        .order_by_asc(prima_entity::outbox_events::Column::Id)
        .all(&w.db.conn)
        .await
        .unwrap();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e.payload["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["GENERATED", "SUBMITTED"]);
    assert_eq!(events[1].payload["payout"]["status"], "PENDING_APPROVAL");
    assert_eq!(events[1].payload["previousStatus"], "DRAFT");
    assert_eq!(events[1].venue_id, Some(w.venue));
}
