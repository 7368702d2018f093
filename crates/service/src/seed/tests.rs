//! The seed against its own rules: prices, commissions, determinism, and a whole seeded
//! portfolio checked row by row.

use std::collections::{BTreeMap, HashMap};

use rust_decimal_macros::dec;
use sea_orm::{ConnectionTrait, EntityTrait, PaginatorTrait, QueryOrder};

use super::*;
use crate::pricing::DiscountKind;
use crate::promoters::metrics::ratio;
use prima_entity::enums::{IncentiveStatus, ProgressStatus, TargetComparison};
use prima_entity::{incentive_progress, incentives};

/// A fixed reference instant, with microseconds, in the middle of a month.
fn fixed_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 18, 15, 30, 12).unwrap() + TimeDelta::microseconds(123_456)
}

/// A fresh migrated database: SQLite in memory, or PostgreSQL with TEST_DATABASE_URL.
async fn fresh() -> crate::testing::TestDb {
    crate::testing::TestDb::new().await
}

fn options(bookings: u64) -> SeedOptions {
    SeedOptions {
        bookings,
        now: fixed_now(),
    }
}

#[test]
fn prices_follow_the_domain_rules() {
    let now = fixed_now();
    let (soon, far) = (now + days(1), now + days(7));
    let mut pricing = empty_pricing();
    pricing.maximum_party_size = 12;
    pricing.non_prime_per_diner = 1_500;
    pricing.non_prime_platform_fee_percent = 1_000;
    pricing.prime_base_for_2 = 5_000;
    pricing.prime_additional_per_person = 2_000;
    pricing.prime_platform_fee_percent = 1_200;
    pricing.minimum_booking_amount = 2_500;
    pricing.early_bird_discount_percent = Some(1_000);
    pricing.repeat_customer_discount_percent = Some(500);
    pricing.group_discount_percent = Some(1_500);
    // PRIME, 4 diners: 50 + 2 * 20 = 90; early bird 10 % -> 81; platform 12 % -> 9.72.
    let fees = price(&pricing, BookingType::Prime, 4, far, now, true).unwrap();
    assert_eq!(
        (fees.base_fee, fees.platform_fee, fees.total_fee),
        (8_100, 972, 9_072)
    );
    assert_eq!(fees.discount.map(|d| d.kind), Some(DiscountKind::EarlyBird));
    // One diner non-prime: 15.00 is below the 25.00 minimum.
    let fees = price(&pricing, BookingType::NonPrime, 1, soon, now, false).unwrap();
    assert_eq!(
        (fees.base_fee, fees.platform_fee, fees.total_fee),
        (2_500, 250, 2_750)
    );
    // Group of 8 with every discount: only the largest (group, 15 %) applies.
    let fees = price(&pricing, BookingType::NonPrime, 8, far, now, true).unwrap();
    assert_eq!(fees.base_fee, 10_200);
    assert_eq!(fees.discount.map(|d| d.kind), Some(DiscountKind::Group));
    // Rounding once, half away from zero: 3 * 3.35 = 10.05, 10 % early bird -> 9.045 -> 9.05.
    pricing.non_prime_per_diner = 335;
    pricing.minimum_booking_amount = 0;
    pricing.non_prime_platform_fee_percent = 1_250;
    let fees = price(&pricing, BookingType::NonPrime, 3, far, now, false).unwrap();
    assert_eq!(fees.base_fee, 905);
    let once = crate::money::round_money(dec!(9.05) * dec!(0.125));
    assert_eq!(Some(fees.platform_fee), crate::money::to_units(once, 2));
    assert_eq!(fees.platform_fee, 113);
    // The generator never asks for what the rules refuse; if it did, seeding fails.
    assert!(price(&pricing, BookingType::NonPrime, 13, far, now, false).is_err());
}

/// Terms of a rate row and an assignment that copies it.
fn terms(
    model: CommissionModel,
    value: i64,
    minimum_booking: i64,
    maximum_payout: Option<i64>,
) -> Terms {
    let rate = commission_rates::Model {
        id: Uuid::nil(),
        venue_id: Uuid::nil(),
        tier: PromoterTier::Standard,
        model,
        value,
        minimum_booking,
        maximum_payout,
        min_monthly_bookings: None,
        min_conversion_rate: None,
        max_cancel_rate: None,
        effective_from: fixed_now(),
        effective_to: None,
        is_active: true,
        created_by: Uuid::nil(),
        created_at: fixed_now(),
        updated_at: fixed_now(),
    };
    let assignment = commission_assignments::Model {
        id: Uuid::nil(),
        promoter_id: Uuid::nil(),
        commission_rate_id: rate.id,
        tier: rate.tier,
        model,
        rate: value,
        effective_from: fixed_now(),
        effective_to: None,
        assigned_by: Uuid::nil(),
        assigned_at: fixed_now(),
        notes: None,
    };
    Terms { assignment, rate }
}

#[test]
fn commissions_apply_minimum_and_cap() {
    let promoter = confirming_promoter(
        Uuid::nil(),
        Uuid::nil(),
        PromoterTier::Standard,
        fixed_now(),
    );
    let amount =
        |terms: &Terms, diners, base_fee| commission(terms, &promoter, diners, base_fee).amount;
    let per_cover = terms(CommissionModel::PerCover, 40_000, 2_000, Some(3_000));
    assert_eq!(amount(&per_cover, 4, 5_000), 1_600);
    assert_eq!(amount(&per_cover, 12, 5_000), 3_000, "capped");
    assert_eq!(amount(&per_cover, 4, 1_999), 0, "below the minimum booking");
    // 12.5 % of 90.10 = 11.2625 -> 11.26.
    let percent = terms(CommissionModel::PercentOfSpend, 1_250, 2_000, None);
    assert_eq!(amount(&percent, 2, 9_010), 1_126);
    let flat = terms(CommissionModel::FlatRate, 75_000, 2_000, Some(3_000));
    assert_eq!(amount(&flat, 2, 9_010), 750);
}

#[test]
fn the_generator_is_deterministic() {
    let (mut a, mut b) = (Rng::new(7), Rng::new(7));
    for _ in 0..100 {
        assert_eq!(a.uuid(), b.uuid());
    }
    let id = Rng::new(1).uuid();
    assert_eq!(id.get_version_num(), 4);
}

/// Every table of the demo portfolio.
async fn table_counts<C: ConnectionTrait>(db: &C) -> BTreeMap<&'static str, u64> {
    let mut counts = BTreeMap::new();
    counts.insert("users", users::Entity::find().count(db).await.unwrap());
    counts.insert(
        "user_venue_access",
        user_venue_access::Entity::find().count(db).await.unwrap(),
    );
    counts.insert("venues", venues::Entity::find().count(db).await.unwrap());
    counts.insert(
        "venue_pricing",
        venue_pricing::Entity::find().count(db).await.unwrap(),
    );
    counts.insert("guests", guests::Entity::find().count(db).await.unwrap());
    counts.insert(
        "promoters",
        promoters::Entity::find().count(db).await.unwrap(),
    );
    counts.insert(
        "commission_rates",
        commission_rates::Entity::find().count(db).await.unwrap(),
    );
    counts.insert(
        "commission_assignments",
        commission_assignments::Entity::find()
            .count(db)
            .await
            .unwrap(),
    );
    counts.insert(
        "bookings",
        bookings::Entity::find().count(db).await.unwrap(),
    );
    counts.insert(
        "booking_history",
        booking_history::Entity::find().count(db).await.unwrap(),
    );
    counts.insert(
        "transactions",
        transactions::Entity::find().count(db).await.unwrap(),
    );
    counts.insert("payouts", payouts::Entity::find().count(db).await.unwrap());
    counts.insert(
        "payout_items",
        payout_items::Entity::find().count(db).await.unwrap(),
    );
    counts.insert(
        "payout_holds",
        payout_holds::Entity::find().count(db).await.unwrap(),
    );
    counts.insert(
        "payout_audit",
        payout_audit::Entity::find().count(db).await.unwrap(),
    );
    counts.insert(
        "incentives",
        incentives::Entity::find().count(db).await.unwrap(),
    );
    counts.insert(
        "incentive_progress",
        incentive_progress::Entity::find().count(db).await.unwrap(),
    );
    counts
}

/// Checks the seeded data against DOMAIN.md, recomputing everything from the rows.
async fn check_portfolio<C: ConnectionTrait>(db: &C, report: &SeedReport, expected: u64) {
    let now = fixed_now();
    let counts = table_counts(db).await;
    for (table, count) in &counts {
        assert!(*count > 0, "{table} has rows");
    }
    assert_eq!(counts["bookings"], expected);
    assert_eq!(report.bookings, expected);
    assert_eq!(report.transactions, counts["transactions"]);
    assert_eq!(report.history, counts["booking_history"]);
    assert_eq!(report.guests, counts["guests"]);
    assert_eq!(report.promoters, counts["promoters"]);
    assert_eq!(report.payouts, counts["payouts"]);
    assert_eq!(report.incentives, counts["incentives"]);
    assert_eq!(report.users, counts["users"]);
    assert_eq!(report.venues, 6);

    let venue_rows = venues::Entity::find().all(db).await.unwrap();
    let currency: HashMap<Uuid, String> = venue_rows
        .iter()
        .map(|v| (v.id, v.currency.clone()))
        .collect();
    let pricing = venue_pricing::Entity::find().all(db).await.unwrap();
    let bookings = bookings::Entity::find()
        .order_by_asc(bookings::Column::CreatedAt)
        .order_by_asc(bookings::Column::Id)
        .all(db)
        .await
        .unwrap();
    let transactions = transactions::Entity::find().all(db).await.unwrap();
    let mut ledger: HashMap<Uuid, Vec<&transactions::Model>> = HashMap::new();
    for t in &transactions {
        if t.r#type == TransactionType::IncentivePayout {
            // A programme's reward: checked with the programmes below.
            assert!(t.booking_id.is_none() && t.incentive_id.is_some());
            assert_eq!(currency[&t.venue_id], t.currency);
            continue;
        }
        ledger
            .entry(t.booking_id.expect("booking transactions"))
            .or_default()
            .push(t);
        assert_eq!(
            currency[&t.venue_id], t.currency,
            "ledger currency is the venue's"
        );
    }

    // Fees recomputed with the pricing row in force at creation and the discounts.
    let mut completed_at: HashMap<(Uuid, Uuid), DateTime<Utc>> = HashMap::new();
    for b in &bookings {
        assert!(b.booking_time > b.created_at);
        assert!(b.created_at <= now && b.booking_time <= now + days(30));
        assert!(b.booking_time >= now - days(120));
        assert!((1..=12).contains(&b.diners));
        assert_eq!(
            b.total_fee,
            b.base_fee + b.platform_fee,
            "total = base + platform"
        );
        let row = pricing
            .iter()
            .find(|p| {
                p.venue_id == b.venue_id
                    && p.is_active
                    && p.effective_from <= b.created_at
                    && p.effective_to.is_none_or(|to| b.created_at < to)
            })
            .expect("a pricing row in force at creation");
        assert!(row.minimum_party_size <= b.diners && b.diners <= row.maximum_party_size);
        let repeat = completed_at
            .get(&(b.guest_id, b.venue_id))
            .is_some_and(|done| *done < b.created_at);
        let fees = price(
            row,
            b.r#type,
            b.diners,
            b.booking_time,
            b.created_at,
            repeat,
        )
        .unwrap();
        assert_eq!(
            (fees.base_fee, fees.platform_fee, fees.total_fee),
            (b.base_fee, b.platform_fee, b.total_fee)
        );
        if let Some(done) = b.completed_at {
            completed_at
                .entry((b.guest_id, b.venue_id))
                .and_modify(|t| *t = (*t).min(done))
                .or_insert(done);
        }
        // Status consistent with its timestamps and with now.
        match b.status {
            BookingStatus::Completed => assert!(
                b.completed_at
                    .is_some_and(|t| t <= now && t >= b.booking_time)
            ),
            BookingStatus::NoShow => assert!(
                b.no_show_at
                    .is_some_and(|t| t <= now && t >= b.booking_time)
            ),
            BookingStatus::Cancelled => assert!(
                b.cancelled_at
                    .is_some_and(|t| t <= now && t < b.booking_time)
            ),
            BookingStatus::Pending => assert!(b.confirmed_at.is_none() && b.booking_time > now),
            BookingStatus::Confirmed => assert!(b.confirmed_at.is_some()),
        }
        assert_eq!(b.source == BookingSource::Promoter, b.promoter_id.is_some());
        if b.confirmed_at.is_none() || b.promoter_id.is_none() {
            assert_eq!(b.promoter_commission, 0);
        }

        // The ledger reconciles with the booking.
        let rows = ledger.get(&b.id).cloned().unwrap_or_default();
        if b.confirmed_at.is_some() {
            let fee_sum: i64 = rows
                .iter()
                .filter(|t| {
                    matches!(
                        t.r#type,
                        TransactionType::BookingFee | TransactionType::PlatformFee
                    )
                })
                .map(|t| t.amount)
                .sum();
            assert_eq!(
                fee_sum, b.total_fee,
                "BOOKING_FEE + PLATFORM_FEE = total_fee"
            );
            let commission: Vec<_> = rows
                .iter()
                .filter(|t| t.r#type == TransactionType::PromoterCommission)
                .collect();
            assert_eq!(commission.len(), usize::from(b.promoter_commission > 0));
            for t in &rows {
                let fee = t.r#type != TransactionType::PromoterCommission;
                let expected = match (b.status, fee) {
                    (BookingStatus::Completed, _) => {
                        &[TransactionStatus::Confirmed, TransactionStatus::Settled][..]
                    }
                    (BookingStatus::NoShow, true) => &[TransactionStatus::Confirmed][..],
                    (BookingStatus::NoShow, false) | (BookingStatus::Cancelled, _) => {
                        &[TransactionStatus::Cancelled][..]
                    }
                    _ => &[TransactionStatus::Pending][..],
                };
                assert!(
                    expected.contains(&t.status),
                    "{:?} {:?} transaction of a {:?} booking",
                    t.status,
                    t.r#type,
                    b.status
                );
            }
        } else {
            assert!(rows.is_empty(), "no ledger for a booking never confirmed");
        }
    }

    // Promoter and guest metrics recomputed from the bookings.
    let promoter_rows = promoters::Entity::find().all(db).await.unwrap();
    for p in &promoter_rows {
        let mine: Vec<_> = bookings
            .iter()
            .filter(|b| Some(p.id) == b.promoter_id)
            .collect();
        let counted: Vec<_> = mine
            .iter()
            .filter(|b| {
                matches!(
                    b.status,
                    BookingStatus::Confirmed | BookingStatus::Completed
                )
            })
            .collect();
        let count = |s: BookingStatus| mine.iter().filter(|b| b.status == s).count() as i64;
        let (completed, cancelled, no_show) = (
            count(BookingStatus::Completed),
            count(BookingStatus::Cancelled),
            count(BookingStatus::NoShow),
        );
        assert_eq!(
            p.total_bookings as usize,
            counted.len(),
            "total_bookings of {}",
            p.first_name
        );
        let revenue: i64 = counted.iter().map(|b| b.total_fee).sum();
        assert_eq!(p.total_revenue, revenue);
        assert_eq!(
            p.average_booking_value,
            ratio(revenue, counted.len() as i64, 1)
        );
        assert_eq!(
            (
                i64::from(p.all_bookings),
                i64::from(p.completed_bookings),
                i64::from(p.cancelled_bookings),
                i64::from(p.no_show_bookings)
            ),
            (mine.len() as i64, completed, cancelled, no_show),
            "counters of {}",
            p.first_name
        );
        assert_eq!(p.cancel_rate, ratio(cancelled, mine.len() as i64, 10_000));
        assert_eq!(p.no_show_rate, ratio(no_show, completed + no_show, 10_000));
        assert_eq!(
            p.conversion_rate,
            ratio(completed, completed + cancelled + no_show, 10_000)
        );
    }
    let guest_rows = guests::Entity::find().all(db).await.unwrap();
    for g in &guest_rows {
        let mine: Vec<_> = bookings.iter().filter(|b| b.guest_id == g.id).collect();
        assert_eq!(g.total_bookings as usize, mine.len());
        assert_eq!(
            g.total_diners,
            mine.iter().map(|b| b.diners).sum::<i32>(),
            "total_diners"
        );
        assert_eq!(
            g.total_spent,
            mine.iter()
                .filter(|b| b.status == BookingStatus::Completed)
                .map(|b| b.total_fee)
                .sum::<i64>()
        );
        assert_eq!(g.last_booking_at, mine.iter().map(|b| b.booking_time).max());
        let currencies: std::collections::BTreeSet<_> = mine
            .iter()
            .map(|b| currency[&b.venue_id].as_str())
            .collect();
        assert!(
            currencies.len() <= 1,
            "a guest's total never mixes currencies"
        );
    }

    // Payouts: amount = items - fees; settled transactions point at completed payouts.
    let payouts = payouts::Entity::find().all(db).await.unwrap();
    let items = payout_items::Entity::find().all(db).await.unwrap();
    for payout in &payouts {
        let sum: i64 = items
            .iter()
            .filter(|i| i.payout_id == payout.id)
            .map(|i| i.amount)
            .sum();
        assert_eq!(payout.commissions_amount, sum);
        assert_eq!(
            payout.amount,
            payout.commissions_amount + payout.incentives_amount + payout.adjustments_amount
                - payout.fees_amount
        );
        for item in items.iter().filter(|i| i.payout_id == payout.id) {
            let t = transactions
                .iter()
                .find(|t| t.id == item.transaction_id)
                .unwrap();
            assert_eq!(t.amount, item.amount);
            if payout.status == PayoutStatus::Failed {
                assert!(
                    item.released_at.is_some(),
                    "a FAILED payout released its items"
                );
                assert_eq!(t.payout_id, None);
                continue;
            }
            assert_eq!(t.payout_id, Some(payout.id));
            assert!(t.created_at >= payout.period_from && t.created_at < payout.period_to);
            let expected = if payout.status == PayoutStatus::Completed {
                TransactionStatus::Settled
            } else {
                TransactionStatus::Confirmed
            };
            assert_eq!(t.status, expected);
        }
    }
    // Every status, an active hold, and a promoter whose balance is carried negative.
    use PayoutStatus as S;
    for status in [
        S::Draft,
        S::PendingApproval,
        S::Approved,
        S::Processing,
        S::Completed,
        S::Failed,
    ] {
        assert!(
            payouts.iter().any(|p| p.status == status),
            "a {status} payout"
        );
    }
    let holds = payout_holds::Entity::find().all(db).await.unwrap();
    assert!(holds.iter().any(|h| crate::payouts::hold_is_active(h, now)));
    let admin = crate::access::Actor {
        user_id: Uuid::nil(),
        name: "check".into(),
        role: prima_entity::enums::UserRole::Admin,
        venues: Default::default(),
    };
    let promoter_ids: Vec<Uuid> = promoters::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    let balances = crate::payouts::balance::balances(db, &admin, &promoter_ids)
        .await
        .unwrap();
    assert!(
        balances.values().any(|b| b.carried_negative < 0),
        "a promoter carries a negative balance"
    );

    // History: one CREATED row per booking and one STATUS_CHANGED row per change, and the
    // payout tour's one refund.
    let history = booking_history::Entity::find().all(db).await.unwrap();
    let mut per_booking: HashMap<Uuid, (usize, usize)> = HashMap::new();
    let mut refunds = 0;
    for h in &history {
        let entry = per_booking.entry(h.booking_id).or_default();
        match h.action.as_str() {
            "CREATED" => entry.0 += 1,
            "STATUS_CHANGED" => entry.1 += 1,
            "REFUNDED" => refunds += 1,
            other => panic!("unexpected history action {other}"),
        }
    }
    assert_eq!(refunds, 1, "the payout tour's refund");
    for b in &bookings {
        let changes = [b.cancelled_at, b.completed_at, b.no_show_at]
            .iter()
            .filter(|t| t.is_some())
            .count()
            + usize::from(b.confirmed_at.is_some_and(|c| c != b.created_at));
        assert_eq!(
            per_booking.get(&b.id).copied().unwrap_or_default(),
            (1, changes)
        );
    }

    // The blocked guest has nothing open after being blocked.
    let blocked = guest_rows
        .iter()
        .find(|g| g.status == GuestStatus::Blocked)
        .unwrap();
    for b in bookings.iter().filter(|b| b.guest_id == blocked.id) {
        assert!(b.created_at < now - days(21));
        if b.booking_time > now - days(21) {
            assert_eq!(b.status, BookingStatus::Cancelled);
        }
    }

    // Every venue has last month's sprint finalised (by the incentive service functions:
    // its winners rewarded, its next period opened) and this month's three programmes.
    let programmes = incentives::Entity::find().all(db).await.unwrap();
    let progress = incentive_progress::Entity::find().all(db).await.unwrap();
    let venues = venues::Entity::find().all(db).await.unwrap();
    assert_eq!(programmes.len(), venues.len() * 4);
    for venue in &venues {
        let of = |status| {
            programmes
                .iter()
                .filter(|i| i.venue_id == venue.id && i.status == status)
                .count()
        };
        assert_eq!(of(IncentiveStatus::Completed), 1, "{}", venue.name);
        assert_eq!(of(IncentiveStatus::Active), 3, "{}", venue.name);
    }
    let rewards = transactions::Entity::find()
        .filter(transactions::Column::Type.eq(TransactionType::IncentivePayout))
        .all(db)
        .await
        .unwrap();
    let mut winners = 0;
    for done in programmes
        .iter()
        .filter(|i| i.status == IncentiveStatus::Completed)
    {
        assert!(done.finalized_at.is_some());
        let rows: Vec<_> = progress
            .iter()
            .filter(|r| r.incentive_id == done.id)
            .collect();
        assert_eq!(rows.len(), done.participant_count as usize);
        let won: Vec<_> = rows
            .iter()
            .filter(|r| r.status == ProgressStatus::Achieved)
            .collect();
        assert!(
            rows.iter()
                .all(|r| matches!(r.status, ProgressStatus::Achieved | ProgressStatus::Missed))
        );
        assert_eq!(won.len(), done.winner_count as usize);
        let paid: i64 = won.iter().map(|r| r.reward_earned.unwrap()).sum();
        assert_eq!(paid, done.total_payout);
        let written: i64 = rewards
            .iter()
            .filter(|t| t.incentive_id == Some(done.id))
            .map(|t| t.amount)
            .sum();
        assert_eq!(written, done.total_payout, "{}", done.name);
        winners += won.len();
    }
    assert!(winners > 0, "the demo shows rewarded winners");

    // This month's progress agrees with the promoters' month metrics.
    for row in &progress {
        let programme = programmes
            .iter()
            .find(|i| i.id == row.incentive_id)
            .unwrap();
        if programme.status != IncentiveStatus::Active {
            continue;
        }
        let promoter = promoter_rows
            .iter()
            .find(|p| p.id == row.promoter_id)
            .unwrap();
        assert_eq!(promoter.status, PromoterStatus::Active);
        assert!(row.percent_complete <= 10_000);
        match programme.r#type {
            IncentiveType::BookingCount => {
                assert_eq!(row.current_value, i64::from(promoter.month_bookings) * 100)
            }
            IncentiveType::RevenueTarget => {
                assert_eq!(row.current_value, promoter.month_revenue)
            }
            _ => assert!(row.current_value <= i64::from(promoter.month_new_guests) * 100),
        }
        assert_eq!(
            row.status == ProgressStatus::Achieved,
            row.achieved_at.is_some()
        );
        if row.status == ProgressStatus::Achieved {
            assert!(programme.target_comparison != TargetComparison::TopN);
        }
    }

    // Statuses the demo promises.
    for status in [
        PromoterStatus::Active,
        PromoterStatus::Inactive,
        PromoterStatus::Suspended,
        PromoterStatus::PendingApproval,
    ] {
        assert!(
            promoter_rows.iter().any(|p| p.status == status),
            "a {status} promoter"
        );
    }
    assert_eq!(
        guest_rows
            .iter()
            .filter(|g| g.status == GuestStatus::Blocked)
            .count(),
        1
    );
}

#[tokio::test]
async fn seeds_a_consistent_portfolio() {
    let db = fresh().await;
    let report = seed(&db.conn, &options(300)).await.expect("seed");
    check_portfolio(&db.conn, &report, 300).await;
}

#[tokio::test]
async fn the_same_now_gives_the_same_bookings() {
    let mut ids = Vec::new();
    for _ in 0..2 {
        let db = fresh().await;
        seed(&db.conn, &options(250)).await.expect("seed");
        let rows = bookings::Entity::find()
            .order_by_asc(bookings::Column::CreatedAt)
            .order_by_asc(bookings::Column::Id)
            .all(&db.conn)
            .await
            .unwrap();
        ids.push(
            rows.into_iter()
                .map(|b| (b.id, b.total_fee, b.status))
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(ids[0].len(), 250);
    assert_eq!(ids[0], ids[1]);
}

#[tokio::test]
async fn seeding_a_seeded_database_is_an_error() {
    let db = fresh().await;
    seed(&db.conn, &options(60)).await.expect("first seed");
    let before = table_counts(&db.conn).await;
    let err = seed(&db.conn, &options(60)).await.expect_err("second seed");
    assert!(err.to_string().contains("already seeded"), "{err}");
    assert_eq!(table_counts(&db.conn).await, before, "nothing written");
}
