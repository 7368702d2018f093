//! The migrations on SQLite (in memory) and PostgreSQL (when `TEST_DATABASE_URL` is set):
//! up, down, up again; exact money sums; the constraints that guard the data model; the
//! entities of `prima-entity` reading and writing the migrated schema; and the backfills of
//! the booking counters (migration 8) and of the per-(guest, venue) aggregates (migration
//! 10) from bookings already stored.

use std::error::Error;

use chrono::{DateTime, Duration, Timelike, Utc};
use prima_entity::{enums, incentives, prelude::*};
use prima_migration::{Migrator, MigratorTrait};
use sea_orm_migration::sea_orm::{
    ActiveModelTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend,
    EntityTrait, NotSet, QuerySelect, Set, Statement,
};
use sea_orm_migration::{SchemaManager, prelude::*};
use uuid::Uuid;

type TestResult = Result<(), Box<dyn Error>>;

/// Every table the migrations create.
const TABLES: [&str; 21] = [
    "users",
    "venues",
    "user_venue_access",
    "venue_pricing",
    "guests",
    "promoters",
    "bookings",
    "booking_history",
    "commission_rates",
    "commission_assignments",
    "incentives",
    "incentive_progress",
    "payouts",
    "transactions",
    "payout_items",
    "payout_holds",
    "payout_audit",
    "outbox_events",
    "idempotency_keys",
    "guest_venue_stats",
    "promoter_tier_changes",
];

fn ensure(cond: bool, msg: impl Into<String>) -> TestResult {
    if cond { Ok(()) } else { Err(msg.into().into()) }
}

/// A fresh in-memory SQLite database. Every connection to `sqlite::memory:` is a database of
/// its own, so the pool holds exactly one connection.
async fn sqlite() -> Result<DatabaseConnection, Box<dyn Error>> {
    let mut opt = ConnectOptions::new("sqlite::memory:");
    opt.max_connections(1)
        .min_connections(1)
        .sqlx_logging(false);
    let db = Database::connect(opt).await?;
    db.execute_unprepared("PRAGMA foreign_keys = ON").await?;
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Sqlite,
            "PRAGMA foreign_keys",
        ))
        .await?
        .ok_or("PRAGMA foreign_keys returned nothing")?;
    ensure(
        row.try_get_by_index::<i32>(0)? == 1,
        "foreign keys are not enforced",
    )?;
    Ok(db)
}

/// Runs `body` on a fresh PostgreSQL database `prima_mig_<uuid>` created from
/// `TEST_DATABASE_URL`, and drops that database afterwards whatever the outcome.
/// Without the variable the test is skipped.
async fn with_postgres<F, Fut>(name: &str, body: F) -> TestResult
where
    F: FnOnce(DatabaseConnection) -> Fut,
    Fut: Future<Output = TestResult>,
{
    let Ok(url) = std::env::var("TEST_DATABASE_URL") else {
        println!("{name}: skipped, TEST_DATABASE_URL is not set");
        return Ok(());
    };
    let db_name = format!("prima_mig_{}", Uuid::new_v4().simple());
    let mut admin_opt = ConnectOptions::new(url.clone());
    admin_opt.max_connections(1).sqlx_logging(false);
    let admin = Database::connect(admin_opt).await?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{db_name}\""))
        .await?;

    let outcome = async {
        let mut opt = ConnectOptions::new(with_database(&url, &db_name));
        opt.max_connections(2).sqlx_logging(false);
        let db = Database::connect(opt).await?;
        let result = body(db.clone()).await;
        db.close().await?;
        result
    }
    .await;

    let dropped = admin
        .execute_unprepared(&format!(
            "DROP DATABASE IF EXISTS \"{db_name}\" WITH (FORCE)"
        ))
        .await;
    admin.close().await?;
    outcome?;
    dropped?;
    Ok(())
}

/// `url` with its database name replaced by `db_name` (query string kept).
fn with_database(url: &str, db_name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{db_name}?{query}"),
        None => format!("{base}/{db_name}"),
    }
}

/// Now, truncated to whole seconds so values read back compare equal on both databases.
fn now() -> DateTime<Utc> {
    Utc::now()
        .with_nanosecond(0)
        .expect("zero nanoseconds is valid")
}

async fn table_count(db: &DatabaseConnection, present: bool) -> Result<usize, Box<dyn Error>> {
    let manager = SchemaManager::new(db);
    let mut n = 0;
    for table in TABLES {
        if manager.has_table(table).await? == present {
            n += 1;
        }
    }
    Ok(n)
}

// ---------------------------------------------------------------- scenarios

async fn up_down_up(db: DatabaseConnection) -> TestResult {
    Migrator::up(&db, None).await?;
    ensure(
        table_count(&db, true).await? == TABLES.len(),
        "up: not every table exists",
    )?;
    ensure(
        Migrator::get_pending_migrations(&db).await?.is_empty(),
        "up: migrations left pending",
    )?;

    Migrator::down(&db, None).await?;
    ensure(
        table_count(&db, false).await? == TABLES.len(),
        "down: some table is left",
    )?;
    ensure(
        Migrator::get_applied_migrations(&db).await?.is_empty(),
        "down: migrations left applied",
    )?;

    Migrator::up(&db, None).await?;
    ensure(
        table_count(&db, true).await? == TABLES.len(),
        "up again: not every table exists",
    )?;
    // The schema works after the round trip.
    Parents::insert(&db).await?;
    Ok(())
}

/// The minimal rows other rows need.
struct Parents {
    user: Uuid,
    venue: Uuid,
    guest: Uuid,
    booking: Uuid,
}

impl Parents {
    async fn insert(db: &DatabaseConnection) -> Result<Self, Box<dyn Error>> {
        let now = now();
        let p = Parents {
            user: Uuid::new_v4(),
            venue: Uuid::new_v4(),
            guest: Uuid::new_v4(),
            booking: Uuid::new_v4(),
        };
        db.execute(
            Query::insert()
                .into_table("users")
                .columns([
                    "id",
                    "email",
                    "password_hash",
                    "first_name",
                    "last_name",
                    "role",
                    "created_at",
                    "updated_at",
                ])
                .values_panic([
                    p.user.into(),
                    format!("{}@example.com", p.user.simple()).into(),
                    "x".into(),
                    "Ada".into(),
                    "Admin".into(),
                    "ADMIN".into(),
                    now.into(),
                    now.into(),
                ]),
        )
        .await?;
        db.execute(&venue_insert(p.venue, "RESTAURANT")).await?;
        db.execute(
            Query::insert()
                .into_table("guests")
                .columns([
                    "id",
                    "first_name",
                    "last_name",
                    "email",
                    "created_at",
                    "updated_at",
                ])
                .values_panic([
                    p.guest.into(),
                    "Grace".into(),
                    "Guest".into(),
                    "grace@example.com".into(),
                    now.into(),
                    now.into(),
                ]),
        )
        .await?;
        db.execute(&booking_insert(&p, p.booking, 2, "CONFIRMED"))
            .await?;
        Ok(p)
    }
}

fn venue_insert(id: Uuid, venue_type: &str) -> InsertStatement {
    let now = now();
    Query::insert()
        .into_table("venues")
        .columns([
            "id",
            "name",
            "type",
            "tier",
            "address_street",
            "address_city",
            "address_state",
            "address_zip",
            "capacity_seated",
            "created_at",
            "updated_at",
        ])
        .values_panic([
            id.into(),
            "Chez Test".into(),
            venue_type.into(),
            "HIGH_END".into(),
            "1 Main St".into(),
            "New York".into(),
            "NY".into(),
            "10001".into(),
            40.into(),
            now.into(),
            now.into(),
        ])
        .to_owned()
}

fn booking_insert(p: &Parents, id: Uuid, diners: i32, status: &str) -> InsertStatement {
    let now = now();
    Query::insert()
        .into_table("bookings")
        .columns([
            "id",
            "venue_id",
            "guest_id",
            "diners",
            "booking_time",
            "type",
            "source",
            "status",
            "base_fee",
            "platform_fee",
            "total_fee",
            "created_at",
            "updated_at",
        ])
        .values_panic([
            id.into(),
            p.venue.into(),
            p.guest.into(),
            diners.into(),
            (now + Duration::days(3)).into(),
            "NON_PRIME".into(),
            "DIRECT".into(),
            status.into(),
            10_000i64.into(),
            1_000i64.into(),
            11_000i64.into(),
            now.into(),
            now.into(),
        ])
        .to_owned()
}

fn pricing_insert(venue: Uuid, effective_from: DateTime<Utc>, active: bool) -> InsertStatement {
    let now = now();
    Query::insert()
        .into_table("venue_pricing")
        .columns([
            "id",
            "venue_id",
            "non_prime_per_diner",
            "prime_base_for_2",
            "prime_additional_per_person",
            "effective_from",
            "is_active",
            "created_at",
            "updated_at",
        ])
        .values_panic([
            Uuid::new_v4().into(),
            venue.into(),
            2_500i64.into(),
            8_000i64.into(),
            3_000i64.into(),
            effective_from.into(),
            active.into(),
            now.into(),
            now.into(),
        ])
        .to_owned()
}

/// 0.10 + 0.20 + 0.05 and 300 times 0.01, summed by the database: exactly 335 cents, as i64.
async fn money_sums_exact(db: DatabaseConnection) -> TestResult {
    Migrator::up(&db, None).await?;
    let p = Parents::insert(&db).await?;
    let now = now();
    let mut insert = Query::insert();
    insert.into_table("transactions").columns([
        "id",
        "booking_id",
        "venue_id",
        "type",
        "amount",
        "description",
        "created_at",
        "updated_at",
    ]);
    let amounts = [10i64, 20, 5]
        .into_iter()
        .chain(std::iter::repeat_n(1i64, 300));
    for amount in amounts {
        insert.values_panic([
            Uuid::new_v4().into(),
            p.booking.into(),
            p.venue.into(),
            "BOOKING_FEE".into(),
            amount.into(),
            "fee".into(),
            now.into(),
            now.into(),
        ]);
    }
    db.execute(&insert).await?;

    let backend = db.get_database_backend();
    // Portable form: PostgreSQL's SUM(bigint) is NUMERIC, so cast back to BIGINT.
    let row = db
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS total FROM transactions",
        ))
        .await?
        .ok_or("no row")?;
    let total: i64 = row.try_get("", "total")?;
    ensure(total == 335, format!("CAST(SUM) = {total}, expected 335"))?;

    let row = db
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT COALESCE(SUM(amount), 0) AS total FROM transactions",
        ))
        .await?
        .ok_or("no row")?;
    match backend {
        DbBackend::Sqlite => {
            let total: i64 = row.try_get("", "total")?;
            ensure(total == 335, format!("SUM = {total}, expected 335"))?;
        }
        _ => {
            // The trap: without the cast, PostgreSQL returns NUMERIC and i64 does not decode.
            ensure(
                row.try_get::<i64>("", "total").is_err(),
                "PostgreSQL SUM(bigint) unexpectedly decoded as i64; update the README",
            )?;
        }
    }

    // An empty sum is 0, not NULL.
    let row = db
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS total FROM transactions \
             WHERE type = 'REFUND'",
        ))
        .await?
        .ok_or("no row")?;
    ensure(row.try_get::<i64>("", "total")? == 0, "empty sum is not 0")?;
    Ok(())
}

async fn constraints(db: DatabaseConnection) -> TestResult {
    Migrator::up(&db, None).await?;
    let p = Parents::insert(&db).await?;

    // Diners: 1..=50.
    for diners in [0, 51, -1] {
        let r = db
            .execute(&booking_insert(&p, Uuid::new_v4(), diners, "PENDING"))
            .await;
        ensure(
            r.is_err(),
            format!("booking with {diners} diners was accepted"),
        )?;
    }
    for diners in [1, 50] {
        db.execute(&booking_insert(&p, Uuid::new_v4(), diners, "PENDING"))
            .await?;
    }

    // Enums are CHECKed text.
    let r = db
        .execute(&booking_insert(&p, Uuid::new_v4(), 2, "BOGUS"))
        .await;
    ensure(r.is_err(), "booking status BOGUS was accepted")?;
    let r = db
        .execute(&booking_insert(&p, Uuid::new_v4(), 2, "confirmed"))
        .await;
    ensure(r.is_err(), "lower-case booking status was accepted")?;
    let r = db.execute(&venue_insert(Uuid::new_v4(), "DISCO")).await;
    ensure(r.is_err(), "venue type DISCO was accepted")?;

    // Foreign keys are enforced.
    let stranger = Parents {
        user: p.user,
        venue: Uuid::new_v4(),
        guest: p.guest,
        booking: p.booking,
    };
    let r = db
        .execute(&booking_insert(&stranger, Uuid::new_v4(), 2, "PENDING"))
        .await;
    ensure(r.is_err(), "booking of an unknown venue was accepted")?;

    // One active pricing row per venue and effective_from; inactive duplicates are history.
    let from = now();
    db.execute(&pricing_insert(p.venue, from, true)).await?;
    let r = db.execute(&pricing_insert(p.venue, from, true)).await;
    ensure(
        r.is_err(),
        "a second active pricing row with the same effective_from was accepted",
    )?;
    db.execute(&pricing_insert(p.venue, from, false)).await?;
    db.execute(&pricing_insert(p.venue, from, false)).await?;
    db.execute(&pricing_insert(p.venue, from + Duration::days(1), true))
        .await?;

    // Rates are fractions of 1 in ten-thousandths.
    let r = db
        .execute(
            &Query::insert()
                .into_table("venue_pricing")
                .columns([
                    "id",
                    "venue_id",
                    "non_prime_per_diner",
                    "prime_base_for_2",
                    "prime_additional_per_person",
                    "non_prime_platform_fee_percent",
                    "effective_from",
                    "created_at",
                    "updated_at",
                ])
                .values_panic([
                    Uuid::new_v4().into(),
                    p.venue.into(),
                    1i64.into(),
                    1i64.into(),
                    1i64.into(),
                    10_001i64.into(),
                    (from + Duration::days(3)).into(),
                    from.into(),
                    from.into(),
                ])
                .to_owned(),
        )
        .await;
    ensure(r.is_err(), "a platform fee above 100 % was accepted")?;

    // A ledger row needs a booking unless it is an incentive payout or an adjustment.
    let ledger = |booking: Option<Uuid>, kind: &str| {
        let now = now();
        Query::insert()
            .into_table("transactions")
            .columns([
                "id",
                "booking_id",
                "venue_id",
                "type",
                "amount",
                "description",
                "created_at",
                "updated_at",
            ])
            .values_panic([
                Uuid::new_v4().into(),
                booking.into(),
                p.venue.into(),
                kind.into(),
                100i64.into(),
                "x".into(),
                now.into(),
                now.into(),
            ])
            .to_owned()
    };
    ensure(
        db.execute(&ledger(None, "BOOKING_FEE")).await.is_err(),
        "a BOOKING_FEE without a booking was accepted",
    )?;
    db.execute(&ledger(None, "INCENTIVE_PAYOUT")).await?;
    db.execute(&ledger(None, "ADJUSTMENT")).await?;
    db.execute(&ledger(Some(p.booking), "BOOKING_FEE")).await?;

    // Payout amount and period.
    let payout = |amount: i64, days: i64| {
        let now = now();
        Query::insert()
            .into_table("payouts")
            .columns([
                "id",
                "venue_id",
                "amount",
                "period_from",
                "period_to",
                "scheduled_for",
                "created_at",
                "updated_at",
            ])
            .values_panic([
                Uuid::new_v4().into(),
                p.venue.into(),
                amount.into(),
                now.into(),
                (now + Duration::days(days)).into(),
                now.into(),
                now.into(),
                now.into(),
            ])
            .to_owned()
    };
    ensure(
        db.execute(&payout(-1, 7)).await.is_err(),
        "a negative payout was accepted",
    )?;
    ensure(
        db.execute(&payout(100, 0)).await.is_err(),
        "an empty payout period was accepted",
    )?;
    db.execute(&payout(100, 7)).await?;
    Ok(())
}

/// The entities decode the rows the migrations' schema holds, and database defaults fill
/// what an insert leaves unset (here the JSON default of `incentives.eligible_tiers`).
async fn entities_round_trip(db: DatabaseConnection) -> TestResult {
    Migrator::up(&db, None).await?;
    let p = Parents::insert(&db).await?;
    db.execute(&pricing_insert(p.venue, now(), true)).await?;

    let user = Users::find_by_id(p.user)
        .one(&db)
        .await?
        .ok_or("user not found")?;
    ensure(user.role == enums::UserRole::Admin, "user role")?;
    ensure(
        user.status == enums::UserStatus::Active,
        "default user status",
    )?;
    ensure(!user.email_verified, "default email_verified")?;
    let venue = Venues::find_by_id(p.venue)
        .one(&db)
        .await?
        .ok_or("venue not found")?;
    ensure(
        venue.prime_ratio == 60 && venue.average_booking_value == 12_000,
        "venue defaults",
    )?;
    ensure(
        venue.timezone == "America/New_York" && venue.currency == "USD",
        "venue text defaults",
    )?;
    let booking = Bookings::find_by_id(p.booking)
        .one(&db)
        .await?
        .ok_or("booking not found")?;
    ensure(booking.booking_time > booking.created_at, "booking time")?;
    ensure(
        booking.r#type == enums::BookingType::NonPrime,
        "booking type",
    )?;
    let pricing = VenuePricing::find().all(&db).await?;
    ensure(pricing.len() == 1, "pricing rows")?;
    ensure(pricing[0].prime_base_for_2 == 8_000, "prime_base_for_2")?;
    ensure(
        pricing[0].non_prime_platform_fee_percent == 1_000,
        "default platform fee",
    )?;
    let guest = Guests::find_by_id(p.guest)
        .one(&db)
        .await?
        .ok_or("guest not found")?;
    ensure(
        guest.average_party_size == 20 && guest.dietary_restrictions.is_none(),
        "guest",
    )?;

    let now = now();
    let inserted = incentives::ActiveModel {
        id: Set(Uuid::new_v4()),
        venue_id: Set(p.venue),
        name: Set("Spring sprint".to_owned()),
        r#type: Set(enums::IncentiveType::BookingCount),
        target_metric: Set("bookings".to_owned()),
        target_threshold: Set(2_000),
        target_comparison: Set(enums::TargetComparison::GreaterEqual),
        reward_type: Set(enums::RewardType::FixedAmount),
        reward_value: Set(10_000),
        period_type: Set(enums::PeriodType::Monthly),
        period_start: Set(now),
        period_end: Set(now + Duration::days(30)),
        eligible_tiers: NotSet,
        created_by: Set(p.user),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&db)
    .await?;
    let read = Incentives::find_by_id(inserted.id)
        .one(&db)
        .await?
        .ok_or("incentive not found")?;
    ensure(
        read == inserted,
        format!("incentive differs: {read:?} vs {inserted:?}"),
    )?;
    ensure(
        read.eligible_tiers == serde_json::json!(["STANDARD", "PREMIUM", "VIP"]),
        format!("eligible_tiers default: {}", read.eligible_tiers),
    )?;
    ensure(
        read.status == enums::IncentiveStatus::Draft,
        "incentive default status",
    )?;

    // Every entity's columns exist in the schema.
    Users::find().all(&db).await?;
    UserVenueAccess::find().all(&db).await?;
    Promoters::find().all(&db).await?;
    BookingHistory::find().all(&db).await?;
    CommissionRates::find().all(&db).await?;
    CommissionAssignments::find().all(&db).await?;
    Transactions::find().all(&db).await?;
    Payouts::find().all(&db).await?;
    PayoutItems::find().all(&db).await?;
    PayoutHolds::find().all(&db).await?;
    PayoutAudit::find().all(&db).await?;
    IncentiveProgress::find().all(&db).await?;
    OutboxEvents::find().all(&db).await?;
    IdempotencyKeys::find().all(&db).await?;
    GuestVenueStats::find().all(&db).await?;
    Ok(())
}

/// `outbox_events.id` is generated and increasing (on SQLite an INTEGER PRIMARY KEY
/// AUTOINCREMENT, so ids of deleted rows are never reused).
async fn outbox_ids(db: DatabaseConnection) -> TestResult {
    Migrator::up(&db, None).await?;
    let insert = || {
        Query::insert()
            .into_table("outbox_events")
            .columns(["topic", "payload", "created_at"])
            .values_panic([
                "booking".into(),
                serde_json::json!({"n": 1}).into(),
                now().into(),
            ])
            .to_owned()
    };
    db.execute(&insert()).await?;
    db.execute(&insert()).await?;
    db.execute_unprepared("DELETE FROM outbox_events WHERE id = 2")
        .await?;
    db.execute(&insert()).await?;
    let ids: Vec<i64> = OutboxEvents::find()
        .all(&db)
        .await?
        .into_iter()
        .map(|e| e.id)
        .collect();
    ensure(
        ids == vec![1, 3],
        format!("outbox ids {ids:?}, expected [1, 3]"),
    )?;
    Ok(())
}

/// Migration 8 adds the booking counters and backfills them from the bookings already
/// stored: per promoter every status, COMPLETED, CANCELLED, NO_SHOW; per guest the sum of
/// diners. It undoes cleanly and backfills again, and the counters cannot go negative.
async fn counters_backfilled(db: DatabaseConnection) -> TestResult {
    Migrator::up(&db, Some(7)).await?;
    // A booking without a promoter (CONFIRMED, 2 diners), counted for the guest only.
    let p = Parents::insert(&db).await?;
    let now = now();
    let promoter = |id: Uuid| {
        Query::insert()
            .into_table("promoters")
            .columns([
                "id",
                "venue_id",
                "first_name",
                "last_name",
                "email",
                "joined_at",
                "created_at",
                "updated_at",
            ])
            .values_panic([
                id.into(),
                p.venue.into(),
                "Pat".into(),
                "Promoter".into(),
                format!("{}@example.com", id.simple()).into(),
                now.into(),
                now.into(),
                now.into(),
            ])
            .to_owned()
    };
    let (busy, idle) = (Uuid::new_v4(), Uuid::new_v4());
    db.execute(&promoter(busy)).await?;
    db.execute(&promoter(idle)).await?;
    let lonely_guest = Uuid::new_v4();
    db.execute(
        Query::insert()
            .into_table("guests")
            .columns([
                "id",
                "first_name",
                "last_name",
                "email",
                "created_at",
                "updated_at",
            ])
            .values_panic([
                lonely_guest.into(),
                "Lone".into(),
                "Guest".into(),
                "lone@example.com".into(),
                now.into(),
                now.into(),
            ]),
    )
    .await?;
    let bookings = [
        ("PENDING", 3),
        ("CONFIRMED", 2),
        ("COMPLETED", 4),
        ("COMPLETED", 1),
        ("CANCELLED", 5),
        ("NO_SHOW", 6),
    ];
    for (status, diners) in bookings {
        let id = Uuid::new_v4();
        db.execute(&booking_insert(&p, id, diners, status)).await?;
        db.execute(
            Query::update()
                .table("bookings")
                .value("promoter_id", busy)
                .and_where(Expr::col("id").eq(id)),
        )
        .await?;
    }

    let expect = |db: DatabaseConnection, stage: &'static str| async move {
        // Only the counters: the entity's later columns (migration 11) do not exist yet.
        let counters = |id| {
            use prima_entity::promoters::Column;
            Promoters::find_by_id(id)
                .select_only()
                .columns([
                    Column::AllBookings,
                    Column::CompletedBookings,
                    Column::CancelledBookings,
                    Column::NoShowBookings,
                ])
                .into_tuple::<(i32, i32, i32, i32)>()
                .one(&db)
        };
        let busy_row = counters(busy).await?.ok_or("busy promoter not found")?;
        ensure(
            busy_row == (6, 2, 1, 1),
            format!("{stage}: busy promoter counters {busy_row:?}"),
        )?;
        let idle_row = counters(idle).await?.ok_or("idle promoter not found")?;
        ensure(
            idle_row == (0, 0, 0, 0),
            format!("{stage}: idle promoter counters {idle_row:?}"),
        )?;
        let guest = Guests::find_by_id(p.guest)
            .one(&db)
            .await?
            .ok_or("guest not found")?;
        ensure(
            guest.total_diners == 2 + 3 + 2 + 4 + 1 + 5 + 6,
            format!("{stage}: guest total_diners {}", guest.total_diners),
        )?;
        let lonely = Guests::find_by_id(lonely_guest)
            .one(&db)
            .await?
            .ok_or("lonely guest not found")?;
        ensure(
            lonely.total_diners == 0,
            format!(
                "{stage}: guest without bookings total_diners {}",
                lonely.total_diners
            ),
        )?;
        TestResult::Ok(())
    };

    // Migration 8 alone, so that one step down undoes exactly it.
    Migrator::up(&db, Some(1)).await?;
    expect(db.clone(), "up").await?;

    // CHECK (x >= 0) on every counter.
    for (table, column) in [
        ("promoters", "all_bookings"),
        ("promoters", "completed_bookings"),
        ("promoters", "cancelled_bookings"),
        ("promoters", "no_show_bookings"),
        ("guests", "total_diners"),
    ] {
        let r = db
            .execute(Query::update().table(table).value(column, -1))
            .await;
        ensure(r.is_err(), format!("{table}.{column} = -1 was accepted"))?;
    }

    // down removes the columns and keeps the rows; up backfills again.
    Migrator::down(&db, Some(1)).await?;
    let manager = SchemaManager::new(&db);
    for (table, column) in [
        ("promoters", "all_bookings"),
        ("promoters", "no_show_bookings"),
        ("guests", "total_diners"),
    ] {
        ensure(
            !manager.has_column(table, column).await?,
            format!("down: {table}.{column} is left"),
        )?;
    }
    ensure(
        manager.has_column("guests", "registered_venue_id").await?,
        "down went further than migration 8",
    )?;
    Migrator::up(&db, None).await?;
    expect(db.clone(), "up again").await?;
    Ok(())
}

/// Migration 10 creates `guest_venue_stats` and backfills it from the bookings already
/// stored: one row per (guest, venue) pair with bookings, equal to a recomputation from those
/// bookings (every status counted, CANCELLED, NO_SHOW, the COMPLETED `total_fee`, the diners,
/// the latest `booking_time`), no row for a guest without bookings, and the rows of a guest
/// sum to the counters migration 8 backfilled on the guest row. The counters cannot go
/// negative, a pair has one row, and `down` one step drops the table and nothing else.
async fn guest_venue_stats_backfilled(db: DatabaseConnection) -> TestResult {
    // The bookings predate migration 8 too, so the guest rows' diners are backfilled.
    Migrator::up(&db, Some(7)).await?;
    let p = Parents::insert(&db).await?;
    let second_venue = Uuid::new_v4();
    db.execute(&venue_insert(second_venue, "BAR")).await?;
    let second_guest = Uuid::new_v4();
    let idle_guest = Uuid::new_v4();
    for (id, name) in [(second_guest, "Second"), (idle_guest, "Idle")] {
        db.execute(
            Query::insert()
                .into_table("guests")
                .columns([
                    "id",
                    "first_name",
                    "last_name",
                    "email",
                    "created_at",
                    "updated_at",
                ])
                .values_panic([
                    id.into(),
                    name.into(),
                    "Guest".into(),
                    format!("{}@example.com", id.simple()).into(),
                    now().into(),
                    now().into(),
                ]),
        )
        .await?;
    }
    // (guest, venue, status, diners, total_fee, days from now). `Parents` already stored
    // one CONFIRMED booking of 2 diners at the first venue, 3 days out, 110.00.
    let mut bookings = vec![(p.guest, p.venue, "CONFIRMED", 2, 11_000i64, 3i64)];
    bookings.extend([
        (p.guest, p.venue, "COMPLETED", 4, 20_050, 5),
        (p.guest, p.venue, "COMPLETED", 1, 5_005, 9),
        (p.guest, p.venue, "CANCELLED", 6, 30_000, 12),
        (p.guest, p.venue, "NO_SHOW", 3, 9_000, 4),
        (p.guest, second_venue, "PENDING", 8, 40_000, 20),
        (p.guest, second_venue, "COMPLETED", 2, 7_777, 2),
        (second_guest, second_venue, "CANCELLED", 5, 12_000, 7),
    ]);
    for &(guest, venue, status, diners, fee, days) in &bookings[1..] {
        let id = Uuid::new_v4();
        let owner = Parents {
            user: p.user,
            venue,
            guest,
            booking: id,
        };
        db.execute(&booking_insert(&owner, id, diners, status))
            .await?;
        db.execute(
            Query::update()
                .table("bookings")
                .value("total_fee", fee)
                .value("booking_time", now() + Duration::days(days))
                .and_where(Expr::col("id").eq(id)),
        )
        .await?;
    }

    // The recomputation, from the bookings as inserted.
    type Key = (Uuid, Uuid);
    /// Bookings, cancelled, no-shows, spent, diners, last booking.
    type Counters = (i32, i32, i32, i64, i32, DateTime<Utc>);
    let mut expected: std::collections::BTreeMap<Key, Counters> = std::collections::BTreeMap::new();
    for &(guest, venue, status, diners, fee, days) in &bookings {
        let at = now() + Duration::days(days);
        let row = expected
            .entry((guest, venue))
            .or_insert((0, 0, 0, 0, 0, at));
        row.0 += 1;
        row.1 += i32::from(status == "CANCELLED");
        row.2 += i32::from(status == "NO_SHOW");
        row.3 += if status == "COMPLETED" { fee } else { 0 };
        row.4 += diners;
        row.5 = Ord::max(row.5, at);
    }

    let expect = |db: DatabaseConnection, stage: &'static str| {
        let expected = expected.clone();
        async move {
            let rows = GuestVenueStats::find().all(&db).await?;
            let stored: std::collections::BTreeMap<Key, _> = rows
                .into_iter()
                .map(|r| -> Result<_, Box<dyn Error>> {
                    Ok((
                        (r.guest_id, r.venue_id),
                        (
                            r.total_bookings,
                            r.cancelled_bookings,
                            r.no_show_bookings,
                            r.total_spent,
                            r.total_diners,
                            r.last_booking_at.ok_or("a row without last_booking_at")?,
                        ),
                    ))
                })
                .collect::<Result<_, Box<dyn Error>>>()?;
            ensure(
                stored == expected,
                format!("{stage}: stored {stored:?}, recomputed {expected:?}"),
            )?;
            ensure(
                !stored.keys().any(|(guest, _)| *guest == idle_guest),
                format!("{stage}: a guest without bookings has a row"),
            )?;
            // The rows of each guest sum to the diners migration 8 backfilled on the guest
            // row (the other guest counters were never set on these raw inserts).
            for guest in Guests::find().all(&db).await? {
                let diners: i32 = stored
                    .iter()
                    .filter(|((g, _), _)| *g == guest.id)
                    .map(|(_, v)| v.4)
                    .sum();
                ensure(
                    diners == guest.total_diners,
                    format!(
                        "{stage}: guest {} rows sum to {diners} diners, the guest row has {}",
                        guest.id, guest.total_diners
                    ),
                )?;
            }
            TestResult::Ok(())
        }
    };

    // Migrations 8 and 9, then 10 alone, so that one step down undoes exactly it.
    Migrator::up(&db, Some(2)).await?;
    Migrator::up(&db, Some(1)).await?;
    expect(db.clone(), "up").await?;

    // CHECK (x >= 0) on every counter, and one row per pair.
    for column in [
        "total_bookings",
        "cancelled_bookings",
        "no_show_bookings",
        "total_spent",
        "total_diners",
    ] {
        let r = db
            .execute(Query::update().table("guest_venue_stats").value(column, -1))
            .await;
        ensure(
            r.is_err(),
            format!("guest_venue_stats.{column} = -1 was accepted"),
        )?;
    }
    let duplicate = db
        .execute(
            Query::insert()
                .into_table("guest_venue_stats")
                .columns(["guest_id", "venue_id"])
                .values_panic([p.guest.into(), p.venue.into()]),
        )
        .await;
    ensure(
        duplicate.is_err(),
        "a second row for one (guest, venue) was accepted",
    )?;
    let unknown = db
        .execute(
            Query::insert()
                .into_table("guest_venue_stats")
                .columns(["guest_id", "venue_id"])
                .values_panic([idle_guest.into(), Uuid::new_v4().into()]),
        )
        .await;
    ensure(unknown.is_err(), "a row of an unknown venue was accepted")?;

    // down removes the table and nothing else; up backfills again.
    Migrator::down(&db, Some(1)).await?;
    let manager = SchemaManager::new(&db);
    ensure(
        !manager.has_table("guest_venue_stats").await?,
        "down: guest_venue_stats is left",
    )?;
    ensure(
        manager.has_column("outbox_events", "seq").await?,
        "down went further than migration 10",
    )?;
    Migrator::up(&db, None).await?;
    expect(db.clone(), "up again").await?;
    Ok(())
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn sqlite_up_down_up() -> TestResult {
    up_down_up(sqlite().await?).await
}

#[tokio::test]
async fn sqlite_money_sums_exact() -> TestResult {
    money_sums_exact(sqlite().await?).await
}

#[tokio::test]
async fn sqlite_constraints() -> TestResult {
    constraints(sqlite().await?).await
}

#[tokio::test]
async fn sqlite_entities_round_trip() -> TestResult {
    entities_round_trip(sqlite().await?).await
}

#[tokio::test]
async fn sqlite_outbox_ids() -> TestResult {
    outbox_ids(sqlite().await?).await
}

#[tokio::test]
async fn sqlite_counters_backfilled() -> TestResult {
    counters_backfilled(sqlite().await?).await
}

#[tokio::test]
async fn sqlite_guest_venue_stats_backfilled() -> TestResult {
    guest_venue_stats_backfilled(sqlite().await?).await
}

#[tokio::test]
async fn postgres_up_down_up() -> TestResult {
    with_postgres("postgres_up_down_up", up_down_up).await
}

#[tokio::test]
async fn postgres_money_sums_exact() -> TestResult {
    with_postgres("postgres_money_sums_exact", money_sums_exact).await
}

#[tokio::test]
async fn postgres_constraints() -> TestResult {
    with_postgres("postgres_constraints", constraints).await
}

#[tokio::test]
async fn postgres_entities_round_trip() -> TestResult {
    with_postgres("postgres_entities_round_trip", entities_round_trip).await
}

#[tokio::test]
async fn postgres_outbox_ids() -> TestResult {
    with_postgres("postgres_outbox_ids", outbox_ids).await
}

#[tokio::test]
async fn postgres_counters_backfilled() -> TestResult {
    with_postgres("postgres_counters_backfilled", counters_backfilled).await
}

#[tokio::test]
async fn postgres_guest_venue_stats_backfilled() -> TestResult {
    with_postgres(
        "postgres_guest_venue_stats_backfilled",
        guest_venue_stats_backfilled,
    )
    .await
}

#[test]
fn database_name_is_replaced() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        with_database("postgres://u:p@h/db?sslmode=disable", "x"),
        "postgres://u:p@h/x?sslmode=disable"
    );
    assert_eq!(
        with_database("postgres://h:5432", "x"),
        "postgres://h:5432/x"
    );
}
