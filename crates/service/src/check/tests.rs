//! The invariants against the seeded demo portfolio, untouched and tampered with.

use chrono::{DateTime, TimeDelta, Utc};
use prima_entity::enums::{BookingStatus, TransactionStatus, TransactionType};
use prima_entity::{bookings, guest_venue_stats, guests, payouts, promoters, transactions, venues};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter,
    QueryOrder,
};
use uuid::Uuid;

use super::*;
use crate::money::cents;
use crate::seed::{SeedOptions, seed};
use crate::testing::TestDb;

/// A fresh database with the demo portfolio of 400 bookings, and the seed's `now`.
async fn seeded() -> (TestDb, DateTime<Utc>) {
    let db = TestDb::new().await;
    let now = crate::time::now();
    seed(&db.conn, &SeedOptions { bookings: 400, now })
        .await
        .expect("seeding");
    (db, now)
}

/// (kind, id) of every discrepancy, for assertions that name exactly what was found.
fn found(report: &CheckReport) -> Vec<(&'static str, Uuid)> {
    report
        .discrepancies
        .iter()
        .map(|d| (d.kind, d.id))
        .collect()
}

async fn platform_fee_rows(db: &TestDb) -> Vec<transactions::Model> {
    transactions::Entity::find()
        .filter(transactions::Column::Type.eq(TransactionType::PlatformFee))
        .order_by_asc(transactions::Column::Id)
        .all(&db.conn)
        .await
        .unwrap()
}

async fn add_to_amount(db: &TestDb, transaction: Uuid, cents: i64) {
    transactions::Entity::update_many()
        .col_expr(
            transactions::Column::Amount,
            Expr::col(transactions::Column::Amount).add(cents),
        )
        .filter(transactions::Column::Id.eq(transaction))
        .exec(&db.conn)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_seeded_demo_portfolio_has_no_discrepancies() {
    let (db, now) = seeded().await;
    let report = run_at(&db.conn, None, now).await.expect("check");
    assert_eq!(report.discrepancies, Vec::new());
    assert_eq!(report.bookings_checked, 400);
    assert_eq!(report.guests_checked, 50);
    assert_eq!(
        report.promoters_checked,
        promoters::Entity::find().count(&db.conn).await.unwrap()
    );
    assert_eq!(
        report.transactions_checked,
        transactions::Entity::find().count(&db.conn).await.unwrap()
    );
    assert!(report.transactions_checked > 400);
    // And so does every venue on its own.
    let first = bookings::Entity::find()
        .one(&db.conn)
        .await
        .unwrap()
        .unwrap();
    let venue = run_at(&db.conn, Some(first.venue_id), now).await.unwrap();
    assert_eq!(venue.discrepancies, Vec::new());
}

#[tokio::test]
async fn a_changed_fee_promoter_total_and_guest_total_are_each_reported_once() {
    let (db, now) = seeded().await;
    let fee = platform_fee_rows(&db).await.remove(0);
    let booking = fee.booking_id.unwrap();
    add_to_amount(&db, fee.id, 100).await;

    let promoter = promoters::Entity::find()
        .order_by_asc(promoters::Column::Id)
        .one(&db.conn)
        .await
        .unwrap()
        .unwrap();
    promoters::Entity::update_many()
        .col_expr(
            promoters::Column::TotalBookings,
            Expr::col(promoters::Column::TotalBookings).add(1),
        )
        .filter(promoters::Column::Id.eq(promoter.id))
        .exec(&db.conn)
        .await
        .unwrap();

    let guest = guests::Entity::find()
        .order_by_asc(guests::Column::Id)
        .one(&db.conn)
        .await
        .unwrap()
        .unwrap();
    guests::Entity::update_many()
        .col_expr(
            guests::Column::TotalSpent,
            Expr::col(guests::Column::TotalSpent).add(1_050),
        )
        .filter(guests::Column::Id.eq(guest.id))
        .exec(&db.conn)
        .await
        .unwrap();

    let report = run_at(&db.conn, None, now).await.expect("check");
    assert_eq!(
        found(&report),
        vec![
            ("ledger", booking),
            ("promoter_aggregate", promoter.id),
            ("guest_aggregate", guest.id),
            // The guest row no longer agrees with its per-venue rows either.
            ("guest_venue_sum", guest.id),
        ],
        "{:#?}",
        report.discrepancies
    );
    let messages: Vec<_> = report.discrepancies.iter().map(|d| &d.message).collect();
    assert_eq!(
        messages[0],
        &format!(
            "PLATFORM_FEE: expected one row of {} (platform_fee), found 1 row(s) totalling {}",
            cents(fee.amount),
            cents(fee.amount + 100)
        )
    );
    assert_eq!(
        messages[1],
        &format!(
            "total_bookings: stored {}, recomputed {}",
            promoter.total_bookings + 1,
            promoter.total_bookings
        )
    );
    assert_eq!(
        messages[2],
        &format!(
            "total_spent: stored {}, recomputed {}",
            cents(guest.total_spent + 1_050),
            cents(guest.total_spent)
        )
    );
    assert_eq!(
        messages[3],
        &format!(
            "total_spent: guest row {}, sum over venues {}",
            cents(guest.total_spent + 1_050),
            cents(guest.total_spent)
        )
    );
    assert_eq!(report.discrepancies[0].entity, "booking");
    assert_eq!(report.discrepancies[1].entity, "promoter");
    assert_eq!(report.discrepancies[2].entity, "guest");
}

#[tokio::test]
async fn a_corrupted_promoter_counter_and_guest_total_diners_are_reported() {
    let (db, now) = seeded().await;
    let promoter = promoters::Entity::find()
        .order_by_asc(promoters::Column::Id)
        .one(&db.conn)
        .await
        .unwrap()
        .unwrap();
    promoters::Entity::update_many()
        .col_expr(
            promoters::Column::CancelledBookings,
            Expr::col(promoters::Column::CancelledBookings).add(1),
        )
        .filter(promoters::Column::Id.eq(promoter.id))
        .exec(&db.conn)
        .await
        .unwrap();
    let guest = guests::Entity::find()
        .order_by_asc(guests::Column::Id)
        .one(&db.conn)
        .await
        .unwrap()
        .unwrap();
    guests::Entity::update_many()
        .col_expr(
            guests::Column::TotalDiners,
            Expr::col(guests::Column::TotalDiners).add(1),
        )
        .filter(guests::Column::Id.eq(guest.id))
        .exec(&db.conn)
        .await
        .unwrap();

    let report = run_at(&db.conn, None, now).await.expect("check");
    assert_eq!(
        found(&report),
        vec![
            ("promoter_aggregate", promoter.id),
            ("guest_aggregate", guest.id),
            ("guest_venue_sum", guest.id),
        ],
        "{:#?}",
        report.discrepancies
    );
    assert_eq!(
        report.discrepancies[0].message,
        format!(
            "cancelled_bookings: stored {}, recomputed {}",
            promoter.cancelled_bookings + 1,
            promoter.cancelled_bookings
        )
    );
    assert_eq!(
        report.discrepancies[1].message,
        format!(
            "total_diners: stored {}, recomputed {}",
            guest.total_diners + 1,
            guest.total_diners
        )
    );
}

/// The first guest's row at the first venue where they booked.
async fn first_guest_venue_row(db: &TestDb) -> guest_venue_stats::Model {
    guest_venue_stats::Entity::find()
        .order_by_asc(guest_venue_stats::Column::GuestId)
        .order_by_asc(guest_venue_stats::Column::VenueId)
        .one(&db.conn)
        .await
        .unwrap()
        .expect("the seed fills guest_venue_stats")
}

#[tokio::test]
async fn the_seeded_per_venue_guest_rows_equal_the_bookings_and_sum_to_the_guest_rows() {
    let (db, _) = seeded().await;
    let rows = guest_venue_stats::Entity::find()
        .all(&db.conn)
        .await
        .unwrap();
    let all = bookings::Entity::find().all(&db.conn).await.unwrap();
    let pairs: std::collections::BTreeSet<_> =
        all.iter().map(|b| (b.guest_id, b.venue_id)).collect();
    assert_eq!(
        rows.len(),
        pairs.len(),
        "one row per (guest, venue) with bookings"
    );
    for row in &rows {
        let mine: Vec<_> = all
            .iter()
            .filter(|b| b.guest_id == row.guest_id && b.venue_id == row.venue_id)
            .collect();
        assert_eq!(row.total_bookings as usize, mine.len());
        assert_eq!(
            row.total_spent,
            mine.iter()
                .filter(|b| b.status == BookingStatus::Completed)
                .map(|b| b.total_fee)
                .sum::<i64>()
        );
        assert_eq!(
            row.last_booking_at,
            mine.iter().map(|b| b.booking_time).max()
        );
    }
    assert_eq!(
        guest_venue_aggregates_match_bookings(&db.conn, None)
            .await
            .unwrap(),
        Vec::new()
    );
    assert_eq!(
        guest_venue_aggregates_sum_to_guest(&db.conn, None)
            .await
            .unwrap(),
        Vec::new()
    );
}

#[tokio::test]
async fn a_tampered_per_venue_guest_row_is_reported_against_the_bookings_and_the_guest_row() {
    let (db, now) = seeded().await;
    let row = first_guest_venue_row(&db).await;
    guest_venue_stats::Entity::update_many()
        .col_expr(
            guest_venue_stats::Column::CancelledBookings,
            Expr::col(guest_venue_stats::Column::CancelledBookings).add(2),
        )
        .filter(guest_venue_stats::Column::GuestId.eq(row.guest_id))
        .filter(guest_venue_stats::Column::VenueId.eq(row.venue_id))
        .exec(&db.conn)
        .await
        .unwrap();

    let report = run_at(&db.conn, None, now).await.expect("check");
    assert_eq!(
        found(&report),
        vec![
            ("guest_venue_aggregate", row.guest_id),
            ("guest_venue_sum", row.guest_id),
        ],
        "{:#?}",
        report.discrepancies
    );
    let guest = guests::Entity::find_by_id(row.guest_id)
        .one(&db.conn)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        report.discrepancies[0].message,
        format!(
            "venue {}: cancelled_bookings: stored {}, recomputed {}",
            row.venue_id,
            row.cancelled_bookings + 2,
            row.cancelled_bookings
        )
    );
    assert_eq!(
        report.discrepancies[1].message,
        format!(
            "cancelled_bookings: guest row {}, sum over venues {}",
            guest.cancelled_bookings,
            guest.cancelled_bookings + 2
        )
    );
    // Scoped to that venue it is found too; scoped to a venue where the guest never
    // booked, not.
    let scoped = run_at(&db.conn, Some(row.venue_id), now).await.unwrap();
    assert_eq!(found(&scoped), found(&report));
    let booked: Vec<Uuid> = bookings::Entity::find()
        .filter(bookings::Column::GuestId.eq(row.guest_id))
        .all(&db.conn)
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.venue_id)
        .collect();
    let elsewhere = venues::Entity::find()
        .filter(venues::Column::Id.is_not_in(booked))
        .one(&db.conn)
        .await
        .unwrap();
    if let Some(elsewhere) = elsewhere {
        let other = run_at(&db.conn, Some(elsewhere.id), now).await.unwrap();
        assert_eq!(other.discrepancies, Vec::new());
    }
}

#[tokio::test]
async fn a_missing_per_venue_guest_row_is_reported() {
    let (db, now) = seeded().await;
    let row = first_guest_venue_row(&db).await;
    guest_venue_stats::Entity::delete_many()
        .filter(guest_venue_stats::Column::GuestId.eq(row.guest_id))
        .filter(guest_venue_stats::Column::VenueId.eq(row.venue_id))
        .exec(&db.conn)
        .await
        .unwrap();
    let report = run_at(&db.conn, None, now).await.expect("check");
    assert_eq!(
        found(&report),
        vec![
            ("guest_venue_aggregate", row.guest_id),
            ("guest_venue_sum", row.guest_id),
        ],
        "{:#?}",
        report.discrepancies
    );
    assert_eq!(
        report.discrepancies[0].message,
        format!(
            "venue {}: no guest_venue_stats row for {} booking(s)",
            row.venue_id, row.total_bookings
        )
    );
}

#[tokio::test]
async fn checking_one_venue_reports_only_that_venues_discrepancies() {
    let (db, now) = seeded().await;
    let fees = platform_fee_rows(&db).await;
    let here = fees[0].clone();
    let elsewhere = fees
        .iter()
        .find(|t| t.venue_id != here.venue_id)
        .unwrap()
        .clone();
    add_to_amount(&db, here.id, -1).await;
    add_to_amount(&db, elsewhere.id, -1).await;
    let other_promoter = promoters::Entity::find()
        .filter(promoters::Column::VenueId.ne(here.venue_id))
        .one(&db.conn)
        .await
        .unwrap()
        .unwrap();
    promoters::Entity::update_many()
        .col_expr(promoters::Column::CancelRate, Expr::value(9_999i64))
        .filter(promoters::Column::Id.eq(other_promoter.id))
        .exec(&db.conn)
        .await
        .unwrap();

    let report = run_at(&db.conn, Some(here.venue_id), now).await.unwrap();
    assert_eq!(found(&report), vec![("ledger", here.booking_id.unwrap())]);
    assert_eq!(
        report.bookings_checked,
        bookings::Entity::find()
            .filter(bookings::Column::VenueId.eq(here.venue_id))
            .count(&db.conn)
            .await
            .unwrap()
    );
    assert_eq!(
        report.promoters_checked,
        promoters::Entity::find()
            .filter(promoters::Column::VenueId.eq(here.venue_id))
            .count(&db.conn)
            .await
            .unwrap()
    );

    let everything = run_at(&db.conn, None, now).await.unwrap();
    assert_eq!(everything.discrepancies.len(), 3);
}

#[tokio::test]
async fn fee_rows_whose_status_does_not_follow_the_booking_are_reported() {
    let (db, now) = seeded().await;
    let completed = bookings::Entity::find()
        .filter(bookings::Column::Status.eq(BookingStatus::Completed))
        .one(&db.conn)
        .await
        .unwrap()
        .unwrap();
    transactions::Entity::update_many()
        .col_expr(
            transactions::Column::Status,
            Expr::value(TransactionStatus::Pending.as_str()),
        )
        .filter(transactions::Column::BookingId.eq(completed.id))
        .filter(transactions::Column::Type.eq(TransactionType::BookingFee))
        .exec(&db.conn)
        .await
        .unwrap();
    let report = run_at(&db.conn, None, now).await.unwrap();
    assert_eq!(found(&report), vec![("ledger", completed.id)]);
    assert!(
        report.discrepancies[0]
            .message
            .starts_with("a COMPLETED booking's fee rows must be CONFIRMED or SETTLED")
            && report.discrepancies[0]
                .message
                .ends_with("but its BOOKING_FEE is PENDING"),
        "{}",
        report.discrepancies[0].message
    );
}

#[tokio::test]
async fn transactions_of_a_booking_never_confirmed_are_reported() {
    let (db, now) = seeded().await;
    let completed = bookings::Entity::find()
        .filter(bookings::Column::Status.eq(BookingStatus::Completed))
        .one(&db.conn)
        .await
        .unwrap()
        .unwrap();
    bookings::Entity::update_many()
        .col_expr(
            bookings::Column::ConfirmedAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(bookings::Column::Id.eq(completed.id))
        .exec(&db.conn)
        .await
        .unwrap();
    let rows = transactions::Entity::find()
        .filter(transactions::Column::BookingId.eq(completed.id))
        .count(&db.conn)
        .await
        .unwrap();
    let report = run_at(&db.conn, None, now).await.unwrap();
    assert_eq!(found(&report), vec![("ledger", completed.id)]);
    assert_eq!(
        report.discrepancies[0].message,
        format!(
            "status COMPLETED but confirmed_at is not set; never confirmed but has {rows} transaction(s)"
        )
    );
}

#[tokio::test]
async fn refunds_up_to_the_charge_are_allowed_and_beyond_it_are_reported() {
    let (db, now) = seeded().await;
    let completed = bookings::Entity::find()
        .filter(bookings::Column::Status.eq(BookingStatus::Completed))
        .one(&db.conn)
        .await
        .unwrap()
        .unwrap();
    let fee = transactions::Entity::find()
        .filter(transactions::Column::BookingId.eq(completed.id))
        .filter(transactions::Column::Type.eq(TransactionType::BookingFee))
        .one(&db.conn)
        .await
        .unwrap()
        .unwrap();
    let refund = |amount: i64| transactions::Model {
        id: Uuid::new_v4(),
        r#type: TransactionType::Refund,
        amount,
        description: "refund".into(),
        status: TransactionStatus::Confirmed,
        promoter_id: None,
        commission_rate: None,
        commission_amount: None,
        commission_tier: None,
        payout_id: None,
        settled_at: None,
        ..fee.clone()
    };
    refund(-completed.total_fee)
        .into_active_model()
        .insert(&db.conn)
        .await
        .unwrap();
    let report = run_at(&db.conn, None, now).await.unwrap();
    assert_eq!(report.discrepancies, Vec::new(), "a full refund is allowed");

    refund(-1)
        .into_active_model()
        .insert(&db.conn)
        .await
        .unwrap();
    let report = run_at(&db.conn, None, now).await.unwrap();
    assert_eq!(found(&report), vec![("ledger", completed.id)]);
    assert!(report.discrepancies[0].message.starts_with(&format!(
        "refunds of {} against {} of live fees",
        cents(-completed.total_fee - 1),
        cents(completed.total_fee)
    )));
}

#[tokio::test]
async fn a_changed_paid_out_amount_and_a_changed_payout_total_are_reported() {
    let (db, now) = seeded().await;
    let paid = transactions::Entity::find()
        .filter(transactions::Column::PayoutId.is_not_null())
        .order_by_asc(transactions::Column::Id)
        .one(&db.conn)
        .await
        .unwrap()
        .expect("the demo has paid-out commissions");
    add_to_amount(&db, paid.id, 500).await;
    let payout = payouts::Entity::find()
        .filter(payouts::Column::Id.ne(paid.payout_id.unwrap()))
        .one(&db.conn)
        .await
        .unwrap()
        .unwrap();
    payouts::Entity::update_many()
        .col_expr(
            payouts::Column::Amount,
            Expr::col(payouts::Column::Amount).add(1),
        )
        .filter(payouts::Column::Id.eq(payout.id))
        .exec(&db.conn)
        .await
        .unwrap();

    let report = run_at(&db.conn, None, now).await.unwrap();
    assert_eq!(
        found(&report),
        vec![
            // The commission no longer matches the booking's locked-in commission...
            ("ledger", paid.booking_id.unwrap()),
            // ...nor the amount its payout paid out.
            ("ledger_amount_changed", paid.id),
            ("payout_amount", payout.id),
        ],
        "{:#?}",
        report.discrepancies
    );
    assert!(
        report.discrepancies[1]
            .message
            .contains(&format!("paid it out as {}", cents(paid.amount))),
        "{}",
        report.discrepancies[1].message
    );
    assert!(
        report.discrepancies[2].message.starts_with(&format!(
            "amount {} but commissions",
            cents(payout.amount + 1)
        )),
        "{}",
        report.discrepancies[2].message
    );
}

#[tokio::test]
async fn month_fields_are_recomputed_for_the_month_of_now() {
    let (db, now) = seeded().await;
    // Two months later the stored month fields describe a month that is over.
    let report = run_at(&db.conn, None, now + TimeDelta::days(62))
        .await
        .unwrap();
    assert!(!report.discrepancies.is_empty());
    for d in &report.discrepancies {
        assert_eq!(d.kind, "promoter_aggregate");
        for problem in d.message.split("; ") {
            assert!(problem.starts_with("month_"), "{problem}");
        }
    }
}

/// One item of a payout.
async fn first_item(db: &TestDb, payout: Uuid) -> prima_entity::payout_items::Model {
    prima_entity::payout_items::Entity::find()
        .filter(prima_entity::payout_items::Column::PayoutId.eq(payout))
        .order_by_asc(prima_entity::payout_items::Column::Id)
        .one(&db.conn)
        .await
        .unwrap()
        .expect("the payout has an item")
}

/// A payout of the demo in `status`.
async fn demo_payout(db: &TestDb, status: prima_entity::enums::PayoutStatus) -> payouts::Model {
    payouts::Entity::find()
        .filter(payouts::Column::Status.eq(status))
        .order_by_asc(payouts::Column::Id)
        .one(&db.conn)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("the demo has a {status} payout"))
}

#[tokio::test]
async fn a_failed_payout_that_still_claims_or_a_settled_transaction_outside_a_completed_one_is_found()
 {
    use prima_entity::enums::PayoutStatus;
    let (db, now) = seeded().await;
    // A FAILED payout's released transaction pointed at it again, and its item made live
    // again.
    let failed = demo_payout(&db, PayoutStatus::Failed).await;
    let item = first_item(&db, failed.id).await;
    transactions::Entity::update_many()
        .col_expr(transactions::Column::PayoutId, Expr::value(failed.id))
        .filter(transactions::Column::Id.eq(item.transaction_id))
        .exec(&db.conn)
        .await
        .unwrap();
    prima_entity::payout_items::Entity::update_many()
        .col_expr(
            prima_entity::payout_items::Column::ReleasedAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(prima_entity::payout_items::Column::Id.eq(item.id))
        .exec(&db.conn)
        .await
        .unwrap();
    // A transaction of an APPROVED payout marked SETTLED, as if paid.
    let approved = demo_payout(&db, PayoutStatus::Approved).await;
    let paid_early = transactions::Entity::find()
        .filter(transactions::Column::PayoutId.eq(approved.id))
        .one(&db.conn)
        .await
        .unwrap()
        .unwrap();
    transactions::Entity::update_many()
        .col_expr(
            transactions::Column::Status,
            Expr::value(TransactionStatus::Settled),
        )
        .filter(transactions::Column::Id.eq(paid_early.id))
        .exec(&db.conn)
        .await
        .unwrap();
    let report = run_at(&db.conn, None, now).await.unwrap();
    let claims: Vec<(&str, Uuid)> = found(&report)
        .into_iter()
        .filter(|(kind, _)| *kind == "payout_claim")
        .collect();
    assert!(
        claims.contains(&("payout_claim", failed.id)),
        "{:#?}",
        report.discrepancies
    );
    assert!(
        claims.contains(&("payout_claim", item.transaction_id)),
        "{:#?}",
        report.discrepancies
    );
    assert!(
        claims.contains(&("payout_claim", paid_early.id)),
        "{:#?}",
        report.discrepancies
    );
}

#[tokio::test]
async fn a_transaction_in_two_live_payouts_is_refused_by_the_database() {
    use prima_entity::enums::PayoutStatus;
    let (db, _) = seeded().await;
    let one = demo_payout(&db, PayoutStatus::Draft).await;
    let other = demo_payout(&db, PayoutStatus::Approved).await;
    let item = first_item(&db, one.id).await;
    let mut twice = item.clone();
    twice.id = Uuid::new_v4();
    twice.payout_id = other.id;
    let err = prima_entity::payout_items::Entity::insert(twice.into_active_model())
        .exec(&db.conn)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.sql_err(),
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
        ),
        "{err}"
    );
}
