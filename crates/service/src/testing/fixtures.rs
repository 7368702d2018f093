//! Minimal rows for the service's unit tests: a fresh database, a fixed instant, a caller
//! with given levels, and one inserted row of each kind the tests need (users and grants,
//! venues, promoters, bookings with their guest, transactions, payouts and holds,
//! commission rates and assignments, incentives and progress).

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use prima_entity::enums::*;
use prima_entity::{
    bookings, commission_assignments, commission_rates, guests, incentive_progress, incentives,
    payout_holds, payouts, promoters, transactions, users, venues,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, Set,
};
use uuid::Uuid;

use crate::access::{Actor, Level};
use crate::db::Db;

/// A fresh, migrated database: SQLite in memory, or PostgreSQL with TEST_DATABASE_URL.
pub async fn db() -> crate::testing::TestDb {
    crate::testing::TestDb::new().await
}

/// A fixed instant, so tests never depend on the clock.
pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-05T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// A caller with the given levels.
pub fn actor(user_id: Uuid, role: UserRole, venues: &[(Uuid, Level)]) -> Actor {
    Actor {
        user_id,
        name: "Test User".into(),
        role,
        venues: Arc::new(venues.iter().copied().collect()),
    }
}

async fn insert<A>(db: &impl ConnectionTrait, model: impl IntoActiveModel<A>)
where
    A: ActiveModelTrait + Send,
{
    <A::Entity as EntityTrait>::insert(model.into_active_model().reset_all())
        .exec_without_returning(db)
        .await
        .unwrap();
}

/// A user.
pub async fn user(db: &Db) -> Uuid {
    let id = Uuid::new_v4();
    insert(
        &db.conn,
        users::Model {
            id,
            email: format!("{id}@example.com"),
            password_hash: "x".into(),
            first_name: "Una".into(),
            last_name: "User".into(),
            phone: None,
            role: UserRole::Manager,
            status: UserStatus::Active,
            email_verified: true,
            two_factor_enabled: false,
            preferences: None,
            last_login_at: None,
            created_at: t0(),
            updated_at: t0(),
        },
    )
    .await;
    id
}

/// Suspends a user (as an admin would).
pub async fn suspend(db: &Db, user: Uuid) {
    let mut row = users::Entity::find_by_id(user)
        .one(&db.conn)
        .await
        .expect("reading the user")
        .expect("the user exists")
        .into_active_model();
    row.status = Set(UserStatus::Suspended);
    row.update(&db.conn).await.expect("suspending the user");
}

/// Grants a user a role at a venue.
pub async fn grant(db: &Db, user: Uuid, venue: Uuid, role: VenueRole) {
    insert(
        &db.conn,
        prima_entity::user_venue_access::Model {
            id: Uuid::new_v4(),
            user_id: user,
            venue_id: venue,
            role,
            granted_by: None,
            granted_at: t0(),
            revoked_at: None,
        },
    )
    .await;
}

/// A venue.
pub async fn venue(db: &Db) -> Uuid {
    let id = Uuid::new_v4();
    insert(
        &db.conn,
        venues::Model {
            id,
            name: "Venue".into(),
            r#type: VenueType::Restaurant,
            tier: VenueTier::Casual,
            address_street: "1 Main St".into(),
            address_city: "Springfield".into(),
            address_state: "IL".into(),
            address_zip: "62701".into(),
            address_country: "US".into(),
            coordinates_lat: None,
            coordinates_lng: None,
            timezone: "America/Chicago".into(),
            contact_phone: None,
            contact_email: None,
            contact_website: None,
            capacity_seated: 50,
            capacity_standing: None,
            capacity_private: None,
            currency: "USD".into(),
            language: "en".into(),
            auto_confirm_bookings: false,
            require_approval: false,
            average_daily_bookings: 0,
            prime_ratio: 0,
            average_booking_value: 0,
            status: VenueStatus::Active,
            created_at: t0(),
            updated_at: t0(),
        },
    )
    .await;
    id
}

/// A promoter of a venue.
pub async fn promoter(db: &Db, venue: Uuid, last_name: &str) -> Uuid {
    let id = Uuid::new_v4();
    insert(
        &db.conn,
        promoters::Model {
            id,
            venue_id: venue,
            first_name: "Pat".into(),
            last_name: last_name.into(),
            email: format!("{id}@example.com"),
            phone: None,
            title: None,
            company: None,
            bio: None,
            social_media: None,
            total_bookings: 0,
            total_revenue: 0,
            average_booking_value: 0,
            conversion_rate: 0,
            no_show_rate: 0,
            cancel_rate: 0,
            month_bookings: 0,
            month_revenue: 0,
            month_new_guests: 0,
            month_repeat_guests: 0,
            status: PromoterStatus::Active,
            tier: PromoterTier::Standard,
            joined_at: t0(),
            last_active_at: None,
            created_at: t0(),
            updated_at: t0(),
            all_bookings: 0,
            completed_bookings: 0,
            cancelled_bookings: 0,
            no_show_bookings: 0,
            month_start: None,
        },
    )
    .await;
    id
}

/// A confirmed booking at a venue, brought by a promoter.
pub async fn booking(db: &Db, venue: Uuid, promoter: Option<Uuid>) -> Uuid {
    let guest = Uuid::new_v4();
    insert(
        &db.conn,
        guests::Model {
            id: guest,
            first_name: "Gus".into(),
            last_name: "Guest".into(),
            email: format!("{guest}@example.com"),
            phone: None,
            birth_date: None,
            gender: None,
            dietary_restrictions: None,
            seating_preference: None,
            communication_email: true,
            communication_sms: false,
            communication_push: false,
            total_bookings: 0,
            cancelled_bookings: 0,
            no_show_bookings: 0,
            total_spent: 0,
            average_party_size: 0,
            last_booking_at: None,
            status: GuestStatus::Active,
            tags: None,
            created_at: t0(),
            updated_at: t0(),
            registered_venue_id: None,
            total_diners: 0,
        },
    )
    .await;
    let id = Uuid::new_v4();
    insert(
        &db.conn,
        bookings::Model {
            id,
            venue_id: venue,
            promoter_id: promoter,
            guest_id: guest,
            diners: 2,
            booking_time: t0() + Duration::days(3),
            duration_minutes: 120,
            special_requests: None,
            notes: None,
            r#type: BookingType::NonPrime,
            source: BookingSource::Promoter,
            status: BookingStatus::Confirmed,
            base_fee: 10000,
            platform_fee: 1000,
            total_fee: 11000,
            promoter_commission: 500,
            confirmed_at: Some(t0()),
            cancelled_at: None,
            no_show_at: None,
            completed_at: None,
            ip_address: None,
            user_agent: None,
            referrer: None,
            created_at: t0(),
            updated_at: t0(),
        },
    )
    .await;
    id
}

/// A ledger row of a venue.
pub async fn transaction(
    db: &Db,
    venue: Uuid,
    booking: Option<Uuid>,
    promoter: Option<Uuid>,
    r#type: TransactionType,
    amount: i64,
    created_at: DateTime<Utc>,
) -> Uuid {
    let id = Uuid::new_v4();
    insert(
        &db.conn,
        transactions::Model {
            id,
            booking_id: booking,
            promoter_id: promoter,
            venue_id: venue,
            r#type,
            amount,
            currency: "USD".into(),
            description: "test".into(),
            commission_rate: None,
            commission_amount: None,
            commission_tier: None,
            status: TransactionStatus::Pending,
            processed_at: None,
            settled_at: None,
            external_transaction_id: None,
            payout_id: None,
            created_at,
            updated_at: created_at,
            reverses_transaction_id: None,
            incentive_id: None,
        },
    )
    .await;
    id
}

/// A draft payout of a promoter at a venue for the period starting at `from`.
pub async fn payout(db: &Db, venue: Uuid, promoter: Uuid, from: DateTime<Utc>) -> Uuid {
    let id = Uuid::new_v4();
    insert(
        &db.conn,
        payouts::Model {
            id,
            venue_id: venue,
            promoter_id: Some(promoter),
            amount: 500,
            currency: "USD".into(),
            period_from: from,
            period_to: from + Duration::days(7),
            status: PayoutStatus::Draft,
            scheduled_for: from + Duration::days(8),
            processed_at: None,
            commissions_amount: 500,
            incentives_amount: 0,
            adjustments_amount: 0,
            fees_amount: 0,
            method: PayoutMethod::BankTransfer,
            reference: None,
            approved_by: None,
            approved_at: None,
            created_at: t0(),
            updated_at: t0(),
            created_by: None,
            submitted_by: None,
        },
    )
    .await;
    id
}

/// A hold on a payout.
pub async fn hold(
    db: &Db,
    payout: Uuid,
    by: Uuid,
    hold_until: Option<DateTime<Utc>>,
    released_at: Option<DateTime<Utc>>,
) -> payout_holds::Model {
    let model = payout_holds::Model {
        id: Uuid::new_v4(),
        payout_id: payout,
        amount: 100,
        reason: "dispute".into(),
        hold_until,
        created_by: by,
        created_at: t0(),
        released_by: released_at.map(|_| by),
        released_at,
    };
    insert(&db.conn, model.clone()).await;
    model
}

/// A commission rate of a venue.
pub async fn rate(db: &Db, venue: Uuid, by: Uuid, active: bool) -> Uuid {
    let id = Uuid::new_v4();
    insert(
        &db.conn,
        commission_rates::Model {
            id,
            venue_id: venue,
            tier: PromoterTier::Standard,
            model: CommissionModel::PercentOfSpend,
            value: 1000,
            minimum_booking: 0,
            maximum_payout: None,
            min_monthly_bookings: None,
            min_conversion_rate: None,
            max_cancel_rate: None,
            effective_from: t0() + Duration::seconds(id.as_u128() as i64 % 1000),
            effective_to: None,
            is_active: active,
            created_by: by,
            created_at: t0(),
            updated_at: t0(),
        },
    )
    .await;
    id
}

/// An assignment of a rate to a promoter from `from`.
pub async fn assignment(
    db: &Db,
    promoter: Uuid,
    rate: Uuid,
    by: Uuid,
    from: DateTime<Utc>,
) -> Uuid {
    let id = Uuid::new_v4();
    insert(
        &db.conn,
        commission_assignments::Model {
            id,
            promoter_id: promoter,
            commission_rate_id: rate,
            tier: PromoterTier::Standard,
            model: CommissionModel::PercentOfSpend,
            rate: 1000,
            effective_from: from,
            effective_to: None,
            assigned_by: by,
            assigned_at: t0(),
            notes: None,
        },
    )
    .await;
    id
}

/// An active BOOKING_COUNT incentive of a venue.
pub async fn incentive(db: &Db, venue: Uuid, by: Uuid) -> Uuid {
    let id = Uuid::new_v4();
    insert(
        &db.conn,
        incentives::Model {
            id,
            venue_id: venue,
            name: "Top sellers".into(),
            description: None,
            r#type: IncentiveType::BookingCount,
            target_metric: "bookings".into(),
            target_threshold: 300,
            target_comparison: TargetComparison::TopN,
            reward_type: RewardType::FixedAmount,
            reward_value: 10000,
            reward_currency: "USD".into(),
            reward_description: None,
            period_type: PeriodType::Monthly,
            period_start: t0(),
            period_end: t0() + Duration::days(30),
            is_recurring: false,
            eligible_tiers: serde_json::json!(["STANDARD", "PREMIUM"]),
            min_tenure_days: 0,
            max_previous_wins: None,
            status: IncentiveStatus::Active,
            participant_count: 0,
            winner_count: 0,
            total_payout: 0,
            created_by: by,
            created_at: t0(),
            updated_at: t0(),
            finalized_at: None,
        },
    )
    .await;
    id
}

/// A promoter's progress in an incentive.
pub async fn progress(db: &Db, incentive: Uuid, promoter: Uuid, current: i64) -> Uuid {
    let id = Uuid::new_v4();
    insert(
        &db.conn,
        incentive_progress::Model {
            id,
            incentive_id: incentive,
            promoter_id: promoter,
            current_value: current,
            target_value: 2000,
            percent_complete: (current * 10000 / 2000).min(10000),
            status: ProgressStatus::InProgress,
            achieved_at: None,
            reward_earned: None,
            reward_paid_at: None,
            last_updated: t0(),
            created_at: t0(),
            completed_bookings: 0,
            closed_bookings: 0,
            value_reached_at: Some(t0()),
        },
    )
    .await;
    // The programme counts its participant, as activation and joining do.
    incentives::Entity::update_many()
        .col_expr(
            incentives::Column::ParticipantCount,
            sea_orm::sea_query::ExprTrait::add(
                sea_orm::sea_query::Expr::col(incentives::Column::ParticipantCount),
                1,
            ),
        )
        .filter(incentives::Column::Id.eq(incentive))
        .exec(&db.conn)
        .await
        .unwrap();
    id
}
