//! Managing programmes: periods, the rules' checks, activation's starting values and
//! eligibility, pause and resume, cancellation; on SQLite, or PostgreSQL with
//! TEST_DATABASE_URL.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use prima_entity::enums::{
    BookingStatus, IncentiveStatus, IncentiveType, PeriodType, ProgressStatus, PromoterStatus,
    PromoterTier, RewardType, TargetComparison, UserRole,
};
use prima_entity::{bookings, incentive_progress, incentives, outbox_events, promoters};
use rust_decimal::Decimal;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use uuid::Uuid;

use super::manage::*;
use crate::access::{Actor, Level};
use crate::testing::TestDb;
use crate::testing::fixtures::*;
use crate::time::now;

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

#[test]
fn calendar_periods_start_at_local_midnight_even_across_a_daylight_saving_change() {
    let chicago: Tz = "America/Chicago".parse().unwrap();
    // The week of 2026-03-08 (clocks go forward that Sunday): Monday 00:00 CST to Monday
    // 00:00 CDT, 167 hours.
    let (start, end) = calendar_period(chicago, PeriodType::Weekly, date("2026-03-08")).unwrap();
    assert_eq!(start, utc("2026-03-02T06:00:00Z"));
    assert_eq!(end, utc("2026-03-09T05:00:00Z"));
    assert_eq!(end - start, Duration::hours(167));
    // A Monday is the first day of its own week.
    let (monday, _) = calendar_period(chicago, PeriodType::Weekly, date("2026-03-09")).unwrap();
    assert_eq!(monday, end);
    // The week clocks go back (2026-11-01): 169 hours.
    let (start, end) = calendar_period(chicago, PeriodType::Weekly, date("2026-10-29")).unwrap();
    assert_eq!(
        (start, end - start),
        (utc("2026-10-26T05:00:00Z"), Duration::hours(169))
    );
    assert_eq!(
        calendar_period(chicago, PeriodType::Monthly, date("2026-02-28")).unwrap(),
        (utc("2026-02-01T06:00:00Z"), utc("2026-03-01T06:00:00Z"))
    );
    assert_eq!(
        calendar_period(chicago, PeriodType::Quarterly, date("2026-05-15")).unwrap(),
        (utc("2026-04-01T05:00:00Z"), utc("2026-07-01T05:00:00Z"))
    );
    assert_eq!(
        calendar_period(chicago, PeriodType::Quarterly, date("2026-12-31")).unwrap(),
        (utc("2026-10-01T05:00:00Z"), utc("2027-01-01T06:00:00Z"))
    );
    assert!(calendar_period(chicago, PeriodType::Custom, date("2026-12-31")).is_err());
}

struct World {
    db: TestDb,
    venue: Uuid,
    manager: Actor,
}

async fn world() -> World {
    let db = db().await;
    let by = user(&db).await;
    let venue = venue(&db).await;
    let manager = actor(by, UserRole::Manager, &[(venue, Level::Manager)]);
    World { db, venue, manager }
}

/// Rules of a GREATER_EQUAL BOOKING_COUNT programme over `[now - 10 days, now + 10 days)`.
fn rules(threshold: i64) -> Rules {
    let at = now();
    Rules {
        name: "Spring push".into(),
        description: None,
        kind: IncentiveType::BookingCount,
        target_threshold: Decimal::from(threshold),
        target_comparison: TargetComparison::GreaterEqual,
        reward_type: RewardType::FixedAmount,
        reward_value: Some(Decimal::from(50)),
        reward_description: None,
        period: PeriodInput::Custom(at - Duration::days(10), at + Duration::days(10)),
        is_recurring: false,
        eligible_tiers: None,
        min_tenure_days: None,
        max_previous_wins: None,
    }
}

/// A booking of `promoter` at `at` in `status` with a total fee of `fee` cents (a new
/// guest unless `guest` is given).
async fn booked(
    w: &World,
    promoter: Uuid,
    at: DateTime<Utc>,
    status: BookingStatus,
    fee: i64,
    guest: Option<Uuid>,
) -> Uuid {
    let id = booking(&w.db, w.venue, Some(promoter)).await;
    let mut update = bookings::Entity::update_many()
        .col_expr(bookings::Column::BookingTime, Expr::value(at))
        .col_expr(bookings::Column::Status, Expr::value(status))
        .col_expr(bookings::Column::TotalFee, Expr::value(fee))
        .filter(bookings::Column::Id.eq(id));
    if let Some(guest) = guest {
        update = update.col_expr(bookings::Column::GuestId, Expr::value(guest));
    }
    update.exec(&w.db.conn).await.unwrap();
    id
}

async fn progress_of(w: &World, program: Uuid, promoter: Uuid) -> incentive_progress::Model {
    incentive_progress::Entity::find()
        .filter(incentive_progress::Column::IncentiveId.eq(program))
        .filter(incentive_progress::Column::PromoterId.eq(promoter))
        .one(&w.db.conn)
        .await
        .unwrap()
        .unwrap()
}

async fn activate(w: &World, rules: Rules) -> incentives::Model {
    let created = create_incentive(&w.db.conn, &w.manager, w.venue, rules)
        .await
        .unwrap();
    move_incentive(&w.db.conn, &w.manager, created.id, Step::Activate)
        .await
        .unwrap()
}

#[tokio::test]
async fn bad_rules_get_a_typed_error_naming_the_field_and_write_nothing() {
    let w = world().await;
    let at = now();
    let mut top = rules(3);
    top.target_comparison = TargetComparison::TopN;
    top.target_threshold = Decimal::new(25, 1);
    let mut rate = rules(3);
    rate.kind = IncentiveType::ConversionRate;
    rate.target_threshold = Decimal::from(101);
    let mut upgrade = rules(3);
    upgrade.reward_type = RewardType::TierUpgrade;
    let mut bonus = rules(3);
    bonus.reward_type = RewardType::PercentageBonus;
    bonus.reward_value = Some(Decimal::from(150));
    let mut backwards = rules(3);
    backwards.period = PeriodInput::Custom(at + Duration::days(2), at + Duration::days(1));
    let mut over = rules(3);
    over.period = PeriodInput::Custom(at - Duration::days(9), at - Duration::days(1));
    let mut long = rules(3);
    long.period = PeriodInput::Custom(at, at + Duration::days(400));
    let mut no_tiers = rules(3);
    no_tiers.eligible_tiers = Some(vec![]);
    let mut tenure = rules(3);
    tenure.min_tenure_days = Some(-1);
    let mut wins = rules(3);
    wins.max_previous_wins = Some(0);
    let mut name = rules(3);
    name.name = "  ".into();
    let cases = [
        (rules(0), "targetThreshold"),
        (rules(-5), "targetThreshold"),
        (top, "targetThreshold"),
        (rate, "targetThreshold"),
        (upgrade, "rewardValue"),
        (bonus, "rewardValue"),
        (backwards, "periodEnd"),
        (over, "periodEnd"),
        (long, "periodEnd"),
        (no_tiers, "eligibleTiers"),
        (tenure, "minTenureDays"),
        (wins, "maxPreviousWins"),
        (name, "name"),
    ];
    for (rules, field) in cases {
        let err = create_incentive(&w.db.conn, &w.manager, w.venue, rules)
            .await
            .unwrap_err();
        match err {
            crate::error::Error::Invalid { field: f, .. } => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    let coordinator = actor(
        w.manager.user_id,
        UserRole::Coordinator,
        &[(w.venue, Level::Coordinator)],
    );
    let err = create_incentive(&w.db.conn, &coordinator, w.venue, rules(3))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "FORBIDDEN");
    assert_eq!(
        incentives::Entity::find().count(&w.db.conn).await.unwrap(),
        0
    );
    assert_eq!(
        outbox_events::Entity::find()
            .count(&w.db.conn)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn a_draft_is_created_in_the_venues_calendar_and_edited_until_it_is_activated() {
    let w = world().await;
    let mut weekly = rules(3);
    weekly.period = PeriodInput::Calendar(PeriodType::Weekly, None);
    weekly.eligible_tiers = Some(vec![PromoterTier::Vip, PromoterTier::Standard]);
    let draft = create_incentive(&w.db.conn, &w.manager, w.venue, weekly)
        .await
        .unwrap();
    assert_eq!(draft.status, IncentiveStatus::Draft);
    assert_eq!(draft.target_threshold, 300);
    assert_eq!(draft.reward_value, 5000);
    assert_eq!(draft.target_metric, "bookings");
    assert_eq!(draft.eligible_tiers, serde_json::json!(["STANDARD", "VIP"]));
    // This week at the venue (Chicago): a Monday-to-Monday period holding now.
    let chicago: Tz = "America/Chicago".parse().unwrap();
    let today = now().with_timezone(&chicago).date_naive();
    assert_eq!(
        (draft.period_start, draft.period_end),
        calendar_period(chicago, PeriodType::Weekly, today).unwrap()
    );

    let edited = update_incentive(
        &w.db.conn,
        &w.manager,
        draft.id,
        RulesPatch {
            name: Some("Summer push".into()),
            target_threshold: Some(Decimal::new(45, 1)),
            period_type: Some(PeriodType::Monthly),
            max_previous_wins: Some(Some(2)),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(edited.name, "Summer push");
    assert_eq!(edited.target_threshold, 450);
    assert_eq!(edited.period_type, PeriodType::Monthly);
    assert_eq!(edited.max_previous_wins, Some(2));
    assert_eq!(edited.reward_value, 5000, "what the patch leaves out stays");
    // A bad patch changes nothing.
    let err = update_incentive(
        &w.db.conn,
        &w.manager,
        draft.id,
        RulesPatch {
            target_threshold: Some(Decimal::ZERO),
            name: Some("Never".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "BAD_USER_INPUT");
    // Ends are for CUSTOM periods only.
    let err = update_incentive(
        &w.db.conn,
        &w.manager,
        draft.id,
        RulesPatch {
            period_ends: Some((now(), now() + Duration::days(3))),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, crate::error::Error::Invalid { ref field, .. } if field == "periodStart")
    );
    let active = move_incentive(&w.db.conn, &w.manager, draft.id, Step::Activate)
        .await
        .unwrap();
    assert_eq!(active.name, "Summer push");
    let err = update_incentive(
        &w.db.conn,
        &w.manager,
        draft.id,
        RulesPatch {
            target_threshold: Some(Decimal::from(1)),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "CONFLICT");
    let err = move_incentive(&w.db.conn, &w.manager, draft.id, Step::Activate)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "CONFLICT", "activating twice");
    let events = outbox_events::Entity::find()
        .filter(outbox_events::Column::Topic.eq(INCENTIVE_CHANGED))
        .count(&w.db.conn)
        .await
        .unwrap();
    assert_eq!(events, 2, "created and activated");
}

#[tokio::test]
async fn activation_starts_each_eligible_promoter_from_the_periods_bookings() {
    let w = world().await;
    let at = now();
    let counted = promoter(&w.db, w.venue, "Counted").await;
    let premium = promoter(&w.db, w.venue, "Premium").await;
    let newcomer = promoter(&w.db, w.venue, "Newcomer").await;
    let inactive = promoter(&w.db, w.venue, "Inactive").await;
    let winner = promoter(&w.db, w.venue, "Winner").await;
    let set = |id: Uuid, column: promoters::Column, value: sea_orm::Value| {
        promoters::Entity::update_many()
            .col_expr(column, Expr::value(value))
            .filter(promoters::Column::Id.eq(id))
    };
    set(
        premium,
        promoters::Column::Tier,
        PromoterTier::Premium.into(),
    )
    .exec(&w.db.conn)
    .await
    .unwrap();
    set(
        newcomer,
        promoters::Column::JoinedAt,
        (at - Duration::days(12)).into(),
    )
    .exec(&w.db.conn)
    .await
    .unwrap();
    set(
        inactive,
        promoters::Column::Status,
        PromoterStatus::Inactive.into(),
    )
    .exec(&w.db.conn)
    .await
    .unwrap();
    let day = |d: i64| at - Duration::days(d);
    // Counted: a CONFIRMED and a COMPLETED booking in the period count; PENDING, CANCELLED
    // and one before the period do not.
    booked(&w, counted, day(1), BookingStatus::Confirmed, 11_000, None).await;
    booked(&w, counted, day(2), BookingStatus::Completed, 20_000, None).await;
    booked(&w, counted, day(3), BookingStatus::Pending, 11_000, None).await;
    booked(&w, counted, day(4), BookingStatus::Cancelled, 11_000, None).await;
    booked(&w, counted, day(30), BookingStatus::Completed, 11_000, None).await;
    for d in 1..=3 {
        booked(&w, winner, day(d), BookingStatus::Completed, 11_000, None).await;
    }
    let mut only_standard = rules(3);
    only_standard.eligible_tiers = Some(vec![PromoterTier::Standard]);
    only_standard.min_tenure_days = Some(5);
    let program = activate(&w, only_standard).await;
    assert_eq!(program.status, IncentiveStatus::Active);
    // Premium (tier), Newcomer (joined 12 days ago, 2 before the period: under 5 days of
    // tenure) and Inactive are not eligible.
    let rows = incentive_progress::Entity::find()
        .filter(incentive_progress::Column::IncentiveId.eq(program.id))
        .all(&w.db.conn)
        .await
        .unwrap();
    let mut who: Vec<Uuid> = rows.iter().map(|r| r.promoter_id).collect();
    who.sort();
    let mut expected = vec![counted, winner];
    expected.sort();
    assert_eq!(who, expected);
    assert_eq!((program.participant_count, program.winner_count), (2, 1));
    let c = progress_of(&w, program.id, counted).await;
    assert_eq!(
        (c.current_value, c.target_value, c.percent_complete),
        (200, 300, 6_667)
    );
    assert_eq!(
        (c.completed_bookings, c.closed_bookings),
        (0, 0),
        "CONVERSION_RATE's counts only"
    );
    assert_eq!(c.status, ProgressStatus::InProgress);
    let win = progress_of(&w, program.id, winner).await;
    assert_eq!(
        win.status,
        ProgressStatus::Achieved,
        "3 >= 3 from the start"
    );
    assert!(win.achieved_at.is_some());
    let events = outbox_events::Entity::find()
        .filter(outbox_events::Column::Topic.eq(super::progress::PROGRESS_CHANGED))
        .count(&w.db.conn)
        .await
        .unwrap();
    assert_eq!(events, 2, "one per participant");
}

#[tokio::test]
async fn each_measure_starts_from_its_definition() {
    let w = world().await;
    let at = now();
    let p = promoter(&w.db, w.venue, "Measured").await;
    // A regular guest who first came before the period is not new; two new guests.
    let first = booked(
        &w,
        p,
        at - Duration::days(40),
        BookingStatus::Completed,
        5_000,
        None,
    )
    .await;
    let guest = bookings::Entity::find_by_id(first)
        .one(&w.db.conn)
        .await
        .unwrap()
        .unwrap()
        .guest_id;
    booked(
        &w,
        p,
        at - Duration::days(1),
        BookingStatus::Completed,
        10_000,
        Some(guest),
    )
    .await;
    booked(
        &w,
        p,
        at - Duration::days(2),
        BookingStatus::Completed,
        20_000,
        None,
    )
    .await;
    booked(
        &w,
        p,
        at - Duration::days(3),
        BookingStatus::NoShow,
        30_000,
        None,
    )
    .await;
    let kinds = [
        (IncentiveType::BookingCount, 200),
        (IncentiveType::RevenueTarget, 30_000),
        (IncentiveType::NewGuests, 200),
        // 2 completed of 3 closed: 66.67 %.
        (IncentiveType::ConversionRate, 6_667),
    ];
    for (kind, value) in kinds {
        let mut r = rules(50);
        r.kind = kind;
        let program = activate(&w, r).await;
        let row = progress_of(&w, program.id, p).await;
        assert_eq!(row.current_value, value, "{kind}");
        assert_eq!(
            (row.completed_bookings, row.closed_bookings),
            if kind == IncentiveType::ConversionRate {
                (2, 3)
            } else {
                (0, 0)
            },
            "{kind}"
        );
    }
}

#[tokio::test]
async fn previous_wins_at_the_venue_make_a_promoter_ineligible() {
    let w = world().await;
    let at = now();
    let champion = promoter(&w.db, w.venue, "Champion").await;
    let other = promoter(&w.db, w.venue, "Other").await;
    for d in 1..=3 {
        booked(
            &w,
            champion,
            at - Duration::days(d),
            BookingStatus::Completed,
            1_000,
            None,
        )
        .await;
    }
    // An earlier programme (it started a day before) that the champion won.
    let mut earlier = rules(1);
    earlier.period = PeriodInput::Custom(at - Duration::days(11), at + Duration::days(5));
    let won = activate(&w, earlier).await;
    assert_eq!(
        progress_of(&w, won.id, champion).await.status,
        ProgressStatus::Achieved
    );
    let mut limited = rules(3);
    limited.max_previous_wins = Some(1);
    let program = activate(&w, limited).await;
    let who: Vec<Uuid> = incentive_progress::Entity::find()
        .filter(incentive_progress::Column::IncentiveId.eq(program.id))
        .all(&w.db.conn)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.promoter_id)
        .collect();
    assert_eq!(who, [other]);
    // A win in a CANCELLED programme is no win.
    move_incentive(&w.db.conn, &w.manager, won.id, Step::Cancel)
        .await
        .unwrap();
    let mut again = rules(3);
    again.max_previous_wins = Some(1);
    let program = activate(&w, again).await;
    assert_eq!(program.participant_count, 2);
}

#[tokio::test]
async fn a_paused_programme_does_not_move_and_resuming_catches_up() {
    let w = world().await;
    let at = now();
    let p = promoter(&w.db, w.venue, "Paused").await;
    booked(
        &w,
        p,
        at - Duration::days(1),
        BookingStatus::Confirmed,
        1_000,
        None,
    )
    .await;
    let program = activate(&w, rules(2)).await;
    assert_eq!(progress_of(&w, program.id, p).await.current_value, 100);
    let paused = move_incentive(&w.db.conn, &w.manager, program.id, Step::Pause)
        .await
        .unwrap();
    assert_eq!(paused.status, IncentiveStatus::Paused);
    let err = move_incentive(&w.db.conn, &w.manager, program.id, Step::Pause)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "CONFLICT");
    // Bookings confirmed while paused (written directly: the booking path skips a paused
    // programme) are counted when it resumes.
    booked(
        &w,
        p,
        at - Duration::days(2),
        BookingStatus::Confirmed,
        1_000,
        None,
    )
    .await;
    assert_eq!(progress_of(&w, program.id, p).await.current_value, 100);
    let resumed = move_incentive(&w.db.conn, &w.manager, program.id, Step::Resume)
        .await
        .unwrap();
    assert_eq!(resumed.status, IncentiveStatus::Active);
    let row = progress_of(&w, program.id, p).await;
    assert_eq!(row.current_value, 200);
    assert_eq!(row.status, ProgressStatus::Achieved);
    assert_eq!(resumed.winner_count, 1);
    let cancelled = move_incentive(&w.db.conn, &w.manager, program.id, Step::Cancel)
        .await
        .unwrap();
    assert_eq!(cancelled.status, IncentiveStatus::Cancelled);
    for step in [Step::Resume, Step::Pause, Step::Cancel, Step::Activate] {
        let err = move_incentive(&w.db.conn, &w.manager, program.id, step)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "CONFLICT", "{step:?} after cancel");
    }
}

#[tokio::test]
async fn a_manager_of_another_venue_cannot_see_or_move_a_programme() {
    let w = world().await;
    let draft = create_incentive(&w.db.conn, &w.manager, w.venue, rules(3))
        .await
        .unwrap();
    let elsewhere = venue(&w.db).await;
    let stranger = actor(
        w.manager.user_id,
        UserRole::Manager,
        &[(elsewhere, Level::Manager)],
    );
    let err = move_incentive(&w.db.conn, &stranger, draft.id, Step::Activate)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "NOT_FOUND");
    let err = create_incentive(&w.db.conn, &stranger, w.venue, rules(3))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "NOT_FOUND");
}

// ---------------------------------------------------------------------------------------
// Finalisation
// ---------------------------------------------------------------------------------------

mod finalising {
    use prima_entity::enums::{TransactionStatus, TransactionType};
    use prima_entity::{promoter_tier_changes, transactions};

    use super::*;
    use crate::incentives::finalize::{finalize_due, finalize_incentive};

    fn admin(w: &World) -> Actor {
        actor(
            w.manager.user_id,
            UserRole::Manager,
            &[(w.venue, Level::Admin)],
        )
    }

    async fn rewards(w: &World, program: Uuid) -> Vec<transactions::Model> {
        transactions::Entity::find()
            .filter(transactions::Column::IncentiveId.eq(program))
            .all(&w.db.conn)
            .await
            .unwrap()
    }

    /// Ends a programme's period a second ago, as time passing would.
    async fn end_period(w: &World, program: Uuid) {
        incentives::Entity::update_many()
            .col_expr(
                incentives::Column::PeriodEnd,
                Expr::value(now() - Duration::seconds(1)),
            )
            .filter(incentives::Column::Id.eq(program))
            .exec(&w.db.conn)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn winners_get_their_reward_once_and_the_next_payout_takes_it() {
        let w = world().await;
        let at = now();
        let a = promoter(&w.db, w.venue, "Achiever").await;
        let b = promoter(&w.db, w.venue, "Behind").await;
        for d in 1..=3 {
            booked(
                &w,
                a,
                at - Duration::days(d),
                BookingStatus::Completed,
                1_000,
                None,
            )
            .await;
        }
        booked(
            &w,
            b,
            at - Duration::days(1),
            BookingStatus::Completed,
            1_000,
            None,
        )
        .await;
        let program = activate(&w, rules(2)).await;

        // Before its end: only with `early`, and only for ADMIN or OWNER.
        let err = finalize_incentive(&w.db.conn, &admin(&w), program.id, false)
            .await
            .unwrap_err();
        assert!(matches!(err, crate::error::Error::Invalid { ref field, .. } if field == "early"));
        let err = finalize_incentive(&w.db.conn, &w.manager, program.id, true)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "FORBIDDEN");
        assert!(rewards(&w, program.id).await.is_empty());

        let done = finalize_incentive(&w.db.conn, &admin(&w), program.id, true)
            .await
            .unwrap();
        let finished = done.incentive;
        assert_eq!(finished.status, IncentiveStatus::Completed);
        assert!(finished.finalized_at.is_some());
        assert_eq!(
            (
                finished.participant_count,
                finished.winner_count,
                finished.total_payout
            ),
            (2, 1, 5_000)
        );
        assert!(done.next.is_none());
        let won = progress_of(&w, program.id, a).await;
        assert_eq!(
            (won.status, won.reward_earned),
            (ProgressStatus::Achieved, Some(5_000))
        );
        let lost = progress_of(&w, program.id, b).await;
        assert_eq!(
            (lost.status, lost.reward_earned),
            (ProgressStatus::Missed, None)
        );
        let paid = rewards(&w, program.id).await;
        assert_eq!(paid.len(), 1);
        assert_eq!(
            (
                paid[0].r#type,
                paid[0].status,
                paid[0].amount,
                paid[0].promoter_id
            ),
            (
                TransactionType::IncentivePayout,
                TransactionStatus::Confirmed,
                5_000,
                Some(a)
            )
        );
        let err = finalize_incentive(&w.db.conn, &admin(&w), program.id, true)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "CONFLICT", "finalising twice");
        assert_eq!(rewards(&w, program.id).await.len(), 1);

        // The reward reaches the promoter's next payout.
        let later = now() + Duration::minutes(2);
        let generated = crate::payouts::generate::generate_payout_at(
            &w.db,
            &admin(&w),
            crate::payouts::generate::Request {
                venue_id: w.venue,
                promoter_id: a,
                period_from: at - Duration::days(1),
                period_to: now() + Duration::minutes(1),
                scheduled_for: None,
                method: None,
                fees: None,
                idempotency_key: None,
            },
            later,
        )
        .await
        .unwrap();
        let payout = generated.payout.expect("a payout");
        assert_eq!((payout.amount, payout.incentives_amount), (5_000, 5_000));
    }

    #[tokio::test]
    async fn top_n_breaks_a_tie_at_the_cut_off_by_who_reached_the_value_first() {
        let w = world().await;
        let names = ["Lead", "Early", "Late", "Idle"];
        let mut ids = Vec::new();
        for name in names {
            ids.push(promoter(&w.db, w.venue, name).await);
        }
        let mut top = rules(2);
        top.target_comparison = TargetComparison::TopN;
        let program = activate(&w, top).await;
        let at = now();
        let set = |p: Uuid, value: i64, reached: DateTime<Utc>| {
            incentive_progress::Entity::update_many()
                .col_expr(incentive_progress::Column::CurrentValue, Expr::value(value))
                .col_expr(
                    incentive_progress::Column::ValueReachedAt,
                    Expr::value(reached),
                )
                .filter(incentive_progress::Column::IncentiveId.eq(program.id))
                .filter(incentive_progress::Column::PromoterId.eq(p))
        };
        set(ids[0], 300, at).exec(&w.db.conn).await.unwrap();
        set(ids[1], 200, at - Duration::hours(2))
            .exec(&w.db.conn)
            .await
            .unwrap();
        set(ids[2], 200, at - Duration::hours(1))
            .exec(&w.db.conn)
            .await
            .unwrap();
        let rows = incentive_progress::Entity::find()
            .filter(incentive_progress::Column::IncentiveId.eq(program.id))
            .all(&w.db.conn)
            .await
            .unwrap();
        let mut won = crate::incentives::finalize::winners(&program, &rows);
        won.sort();
        let mut expected = vec![ids[0], ids[1]];
        expected.sort();
        assert_eq!(won, expected, "the earlier of the two at 200 wins");
        // Reached at the same moment: the lower promoter id wins; a zero never wins.
        let mut same = rows.clone();
        for r in &mut same {
            if r.promoter_id == ids[2] {
                r.value_reached_at = Some(at - Duration::hours(2));
            }
        }
        let won = crate::incentives::finalize::winners(&program, &same);
        assert!(won.contains(&ids[0]) && won.contains(&ids[1].min(ids[2])));
        let mut one = program.clone();
        one.target_threshold = 1_000;
        let many = crate::incentives::finalize::winners(&one, &rows);
        assert_eq!(many.len(), 3, "ten places, three values above zero");

        let done = finalize_incentive(&w.db.conn, &admin(&w), program.id, true)
            .await
            .unwrap();
        assert_eq!(done.incentive.winner_count, 2);
        assert_eq!(
            progress_of(&w, program.id, ids[2]).await.status,
            ProgressStatus::Missed
        );
        assert_eq!(
            progress_of(&w, program.id, ids[1]).await.status,
            ProgressStatus::Achieved
        );
    }

    #[tokio::test]
    async fn a_percentage_bonus_pays_a_share_of_the_periods_commissions_and_a_tier_upgrade_raises_the_tier()
     {
        let w = world().await;
        let at = now();
        let p = promoter(&w.db, w.venue, "Bonus").await;
        // Two COMPLETED bookings with a 5.00 commission each, and a CONFIRMED one (not earned).
        booked(
            &w,
            p,
            at - Duration::days(1),
            BookingStatus::Completed,
            1_000,
            None,
        )
        .await;
        booked(
            &w,
            p,
            at - Duration::days(2),
            BookingStatus::Completed,
            1_000,
            None,
        )
        .await;
        booked(
            &w,
            p,
            at - Duration::days(3),
            BookingStatus::Confirmed,
            1_000,
            None,
        )
        .await;
        let mut bonus = rules(1);
        bonus.reward_type = RewardType::PercentageBonus;
        bonus.reward_value = Some(Decimal::new(125, 1)); // 12.5 % of 10.00
        let program = activate(&w, bonus).await;
        let done = finalize_incentive(&w.db.conn, &admin(&w), program.id, true)
            .await
            .unwrap();
        assert_eq!(done.incentive.total_payout, 125);
        assert_eq!(rewards(&w, program.id).await[0].amount, 125);

        let mut upgrade = rules(1);
        upgrade.reward_type = RewardType::TierUpgrade;
        upgrade.reward_value = None;
        let program = activate(&w, upgrade).await;
        finalize_incentive(&w.db.conn, &admin(&w), program.id, true)
            .await
            .unwrap();
        let tier = promoters::Entity::find_by_id(p)
            .one(&w.db.conn)
            .await
            .unwrap()
            .unwrap()
            .tier;
        assert_eq!(tier, PromoterTier::Premium);
        let audit = promoter_tier_changes::Entity::find()
            .filter(promoter_tier_changes::Column::PromoterId.eq(p))
            .all(&w.db.conn)
            .await
            .unwrap();
        assert_eq!(audit.len(), 1);
        assert_eq!(
            (audit[0].from_tier, audit[0].to_tier, audit[0].incentive_id),
            (
                PromoterTier::Standard,
                PromoterTier::Premium,
                Some(program.id)
            )
        );
        assert!(
            rewards(&w, program.id).await.is_empty(),
            "no money for a tier"
        );
    }

    #[tokio::test]
    async fn concurrent_finalisations_and_two_schedulers_finalise_once() {
        let w = world().await;
        let at = now();
        let p = promoter(&w.db, w.venue, "Once").await;
        booked(
            &w,
            p,
            at - Duration::days(1),
            BookingStatus::Completed,
            1_000,
            None,
        )
        .await;
        let by_hand = activate(&w, rules(1)).await;
        let admin = admin(&w);
        let calls = (0..8).map(|_| finalize_incentive(&w.db.conn, &admin, by_hand.id, true));
        let results = futures::future::join_all(calls).await;
        let ok = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(ok, 1, "{results:?}");
        assert!(
            results
                .iter()
                .filter_map(|r| r.as_ref().err())
                .all(|e| e.code() == "CONFLICT"),
            "{results:?}"
        );
        assert_eq!(rewards(&w, by_hand.id).await.len(), 1);

        // Two replicas' schedulers on the same due programme: one finalises it.
        let due = activate(&w, rules(1)).await;
        end_period(&w, due.id).await;
        let (a, b) = tokio::join!(
            finalize_due(&w.db.conn, now()),
            finalize_due(&w.db.conn, now())
        );
        assert_eq!(a.unwrap() + b.unwrap(), 1);
        assert_eq!(rewards(&w, due.id).await.len(), 1);
        // And after a restart nothing is due any more.
        assert_eq!(finalize_due(&w.db.conn, now()).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_recurring_weekly_programme_opens_the_next_week_with_the_same_rules() {
        let w = world().await;
        let p = promoter(&w.db, w.venue, "Weekly").await;
        let mut weekly = rules(5);
        weekly.period = PeriodInput::Calendar(PeriodType::Weekly, None);
        weekly.is_recurring = true;
        let program = activate(&w, weekly).await;
        let done = finalize_incentive(&w.db.conn, &admin(&w), program.id, true)
            .await
            .unwrap();
        let next = done.next.expect("the next week");
        assert_eq!(next.status, IncentiveStatus::Active);
        assert_eq!(next.period_start, program.period_end);
        let chicago: Tz = "America/Chicago".parse().unwrap();
        let monday = next.period_start.with_timezone(&chicago).date_naive();
        assert_eq!(
            (next.period_start, next.period_end),
            calendar_period(chicago, PeriodType::Weekly, monday).unwrap()
        );
        assert_eq!(
            (next.name.as_str(), next.target_threshold, next.is_recurring),
            (program.name.as_str(), program.target_threshold, true)
        );
        assert_ne!(next.id, program.id);
        assert_eq!(next.participant_count, 1);
        assert_eq!(progress_of(&w, next.id, p).await.current_value, 0);
    }

    #[tokio::test]
    async fn a_paused_programme_is_brought_up_to_date_before_it_is_finalised() {
        let w = world().await;
        let at = now();
        let p = promoter(&w.db, w.venue, "Paused").await;
        let program = activate(&w, rules(1)).await;
        move_incentive(&w.db.conn, &w.manager, program.id, Step::Pause)
            .await
            .unwrap();
        booked(
            &w,
            p,
            at - Duration::days(1),
            BookingStatus::Completed,
            1_000,
            None,
        )
        .await;
        let done = finalize_incentive(&w.db.conn, &admin(&w), program.id, true)
            .await
            .unwrap();
        assert_eq!(done.incentive.winner_count, 1);
        assert_eq!(
            progress_of(&w, program.id, p).await.status,
            ProgressStatus::Achieved
        );
    }
}

#[tokio::test]
async fn a_promoter_who_becomes_eligible_mid_period_joins_with_the_periods_bookings() {
    let w = world().await;
    let at = now();
    let waiting = promoter(&w.db, w.venue, "Waiting").await;
    let standard = promoter(&w.db, w.venue, "Standard").await;
    promoters::Entity::update_many()
        .col_expr(
            promoters::Column::Status,
            Expr::value(PromoterStatus::PendingApproval),
        )
        .filter(promoters::Column::Id.eq(waiting))
        .exec(&w.db.conn)
        .await
        .unwrap();
    booked(
        &w,
        waiting,
        at - Duration::days(1),
        BookingStatus::Confirmed,
        1_000,
        None,
    )
    .await;
    booked(
        &w,
        standard,
        at - Duration::days(1),
        BookingStatus::Confirmed,
        1_000,
        None,
    )
    .await;
    booked(
        &w,
        standard,
        at - Duration::days(2),
        BookingStatus::Confirmed,
        1_000,
        None,
    )
    .await;
    let open = activate(&w, rules(2)).await;
    let mut premium_only = rules(2);
    premium_only.eligible_tiers = Some(vec![PromoterTier::Premium]);
    let premium = activate(&w, premium_only).await;
    assert_eq!(
        open.participant_count, 1,
        "only Standard: Waiting is not approved"
    );
    assert_eq!(premium.participant_count, 0);

    crate::promoters::write::approve_promoter(&w.db.conn, &w.manager, waiting)
        .await
        .unwrap();
    assert_eq!(progress_of(&w, open.id, waiting).await.current_value, 100);
    crate::promoters::write::set_promoter_tier(
        &w.db.conn,
        &w.manager,
        standard,
        PromoterTier::Premium,
    )
    .await
    .unwrap();
    let joined = progress_of(&w, premium.id, standard).await;
    assert_eq!(
        (joined.current_value, joined.status),
        (200, ProgressStatus::Achieved)
    );
    let counts = |id: Uuid| {
        let db = &w.db.conn;
        async move {
            let p = incentives::Entity::find_by_id(id)
                .one(db)
                .await
                .unwrap()
                .unwrap();
            (p.participant_count, p.winner_count)
        }
    };
    assert_eq!(counts(open.id).await, (2, 1));
    assert_eq!(counts(premium.id).await, (1, 1));
    // Raising the tier again joins nothing twice.
    crate::promoters::write::set_promoter_tier(
        &w.db.conn,
        &w.manager,
        standard,
        PromoterTier::Premium,
    )
    .await
    .unwrap();
    assert_eq!(counts(premium.id).await, (1, 1));
}

#[tokio::test]
async fn prima_check_reports_progress_and_counters_that_disagree() {
    let w = world().await;
    let at = now();
    let p = promoter(&w.db, w.venue, "Checked").await;
    booked(
        &w,
        p,
        at - Duration::days(1),
        BookingStatus::Completed,
        1_000,
        None,
    )
    .await;
    let program = activate(&w, rules(1)).await;
    assert!(kinds(&w.db).await.is_empty());
    incentive_progress::Entity::update_many()
        .col_expr(incentive_progress::Column::CurrentValue, Expr::value(900))
        .filter(incentive_progress::Column::IncentiveId.eq(program.id))
        .exec(&w.db.conn)
        .await
        .unwrap();
    assert_eq!(kinds(&w.db).await, ["incentive_progress"]);
    incentive_progress::Entity::update_many()
        .col_expr(incentive_progress::Column::CurrentValue, Expr::value(100))
        .filter(incentive_progress::Column::IncentiveId.eq(program.id))
        .exec(&w.db.conn)
        .await
        .unwrap();
    let admin = actor(
        w.manager.user_id,
        UserRole::Manager,
        &[(w.venue, Level::Admin)],
    );
    crate::incentives::finalize::finalize_incentive(&w.db.conn, &admin, program.id, true)
        .await
        .unwrap();
    assert!(kinds(&w.db).await.is_empty(), "finalised and consistent");
    incentives::Entity::update_many()
        .col_expr(incentives::Column::TotalPayout, Expr::value(1))
        .filter(incentives::Column::Id.eq(program.id))
        .exec(&w.db.conn)
        .await
        .unwrap();
    assert_eq!(kinds(&w.db).await, ["incentive_counters"]);
}

/// The kinds of incentive discrepancy `prima check` reports, sorted (the bookings these
/// tests write directly have no ledger or aggregates, which it reports too).
async fn kinds(db: &TestDb) -> Vec<&'static str> {
    let report = crate::check::run(&db.conn, None).await.unwrap();
    let mut kinds: Vec<&str> = report
        .discrepancies
        .iter()
        .map(|d| d.kind)
        .filter(|k| k.starts_with("incentive"))
        .collect();
    kinds.sort();
    kinds
}
