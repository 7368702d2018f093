//! Fixture builders: a test states the world it needs (a venue with pricing, a user with a
//! role there, a guest, a promoter on a commission) instead of leaning on what the demo
//! seed happens to hold. Everything is made as an operator and an admin would make it:
//! users through `prima_service::users::create_user` (what `prima create-user` calls, the
//! API has no sign-up), everything else through the public GraphQL API as a global ADMIN,
//! so a fixture obeys the same validation and access rules as a client. What the API cannot
//! make (payouts come from the payout run, incentive programmes from the Incentives work, a
//! user's status from `prima`'s operators) is inserted as the rows the service itself
//! writes, consistent with `prima check`'s invariants.
//!
//! ```ignore
//! let app = TestApp::empty().await;
//! let venue = app.venue().requiring_approval().with_pricing(Pricing::default()).create().await;
//! let gm = app.user_with_role(&venue, Role::Admin).await;
//! let guest = app.guest(&venue).await;
//! let promoter = app.promoter(&venue).with_commission("FLAT_RATE", "15").create().await;
//! let booking = app.booking_by(&venue, &guest, &promoter).await;
//! let payout = app.payout(&venue, &promoter, &[booking]).await;
//! let programme = app.incentive(&venue).with_participant(&promoter, 3).create().await;
//! ```

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use prima_entity::enums::{
    IncentiveStatus, IncentiveType, PayoutMethod, PayoutStatus, PeriodType, ProgressStatus,
    RewardType, TargetComparison, TransactionType, UserRole, UserStatus, VenueRole,
};
use prima_entity::{incentive_progress, incentives, payout_items, payouts, transactions, users};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{PASSWORD, TestApp};

/// A user's standing at one venue, as DOMAIN.md "Access" names the levels. `Viewer` is a
/// global VIEWER holding a COORDINATOR row there (read-only whatever the row says), as the
/// demo's viewer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Venue OWNER.
    Owner,
    /// Venue ADMIN.
    Admin,
    /// Venue MANAGER.
    Manager,
    /// Venue COORDINATOR.
    Coordinator,
    /// Read-only (global VIEWER).
    Viewer,
}

impl Role {
    /// The global role of a user made for this role (MANAGER for the venue-level roles, as
    /// the demo's owner and managers have).
    fn global(self) -> UserRole {
        match self {
            Role::Owner | Role::Admin | Role::Manager => UserRole::Manager,
            Role::Coordinator => UserRole::Coordinator,
            Role::Viewer => UserRole::Viewer,
        }
    }

    /// The `VenueRole` value of the access row.
    fn venue_role(self) -> &'static str {
        match self {
            Role::Owner => "OWNER",
            Role::Admin => "ADMIN",
            Role::Manager => "MANAGER",
            Role::Coordinator | Role::Viewer => "COORDINATOR",
        }
    }

    fn word(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::Coordinator => "coordinator",
            Role::Viewer => "viewer",
        }
    }
}

/// A user who can sign in, with a token from a real login.
#[derive(Debug, Clone)]
pub struct User {
    /// The user's id.
    pub id: String,
    /// Their login email.
    pub email: String,
    /// A bearer token from `login`.
    pub token: String,
}

/// A venue's prices (`setVenuePricing`), as decimal strings. The default is a plausible
/// restaurant: 25.00 a diner off-peak, 100.00 for two at prime time, 10 % / 12 % platform
/// fees, a 30.00 minimum, parties of 1 to 20, no discounts.
#[derive(Debug, Clone)]
pub struct Pricing {
    /// `nonPrimePerDiner`.
    pub non_prime_per_diner: &'static str,
    /// `nonPrimePlatformFeePercent` (a fraction).
    pub non_prime_platform_fee: &'static str,
    /// `primeBaseFor2`.
    pub prime_base_for_2: &'static str,
    /// `primeAdditionalPerPerson`.
    pub prime_additional_per_person: &'static str,
    /// `primePlatformFeePercent` (a fraction).
    pub prime_platform_fee: &'static str,
    /// `minimumBookingAmount`.
    pub minimum_booking_amount: &'static str,
    /// `minimumPartySize`.
    pub minimum_party_size: i32,
    /// `maximumPartySize`.
    pub maximum_party_size: i32,
    /// `earlyBirdDiscountPercent` (a fraction), if any.
    pub early_bird_discount: Option<&'static str>,
    /// `repeatCustomerDiscountPercent` (a fraction), if any.
    pub repeat_customer_discount: Option<&'static str>,
    /// `groupDiscountPercent` (a fraction), if any.
    pub group_discount: Option<&'static str>,
}

impl Default for Pricing {
    fn default() -> Self {
        Pricing {
            non_prime_per_diner: "25.00",
            non_prime_platform_fee: "0.10",
            prime_base_for_2: "100.00",
            prime_additional_per_person: "40.00",
            prime_platform_fee: "0.12",
            minimum_booking_amount: "30.00",
            minimum_party_size: 1,
            maximum_party_size: 20,
            early_bird_discount: None,
            repeat_customer_discount: None,
            group_discount: None,
        }
    }
}

impl Pricing {
    /// The `SetVenuePricingInput` for `venue`.
    pub fn input(&self, venue: &str) -> Value {
        json!({
            "venueId": venue,
            "nonPrimePerDiner": self.non_prime_per_diner,
            "nonPrimePlatformFeePercent": self.non_prime_platform_fee,
            "primeBaseFor2": self.prime_base_for_2,
            "primeAdditionalPerPerson": self.prime_additional_per_person,
            "primePlatformFeePercent": self.prime_platform_fee,
            "minimumBookingAmount": self.minimum_booking_amount,
            "minimumPartySize": self.minimum_party_size,
            "maximumPartySize": self.maximum_party_size,
            "earlyBirdDiscountPercent": self.early_bird_discount,
            "repeatCustomerDiscountPercent": self.repeat_customer_discount,
            "groupDiscountPercent": self.group_discount,
        })
    }
}

/// A venue to create: ACTIVE, bookings confirmed by hand, no pricing unless asked.
#[must_use = "a builder does nothing until `create`"]
pub struct VenueBuilder<'a> {
    app: &'a TestApp,
    name: String,
    require_approval: bool,
    auto_confirm: bool,
    pricing: Option<Pricing>,
}

impl VenueBuilder<'_> {
    /// Its name (default: "Venue n").
    pub fn named(mut self, name: &str) -> Self {
        self.name = name.to_owned();
        self
    }

    /// New bookings wait for approval (`requireApproval`: they start PENDING).
    pub fn requiring_approval(mut self) -> Self {
        self.require_approval = true;
        self
    }

    /// New bookings are confirmed at once (`autoConfirmBookings`).
    pub fn auto_confirming(mut self) -> Self {
        self.auto_confirm = true;
        self
    }

    /// Prices in force from creation on (without them the venue cannot take bookings).
    pub fn with_pricing(mut self, pricing: Pricing) -> Self {
        self.pricing = Some(pricing);
        self
    }

    /// Creates it (and its pricing) as the global ADMIN; returns its id.
    pub async fn create(self) -> String {
        let admin = self.app.admin().await;
        let data = self
            .app
            .query_ok(
                &admin.token,
                "mutation($input: CreateVenueInput!) { createVenue(input: $input) { venue { id } } }",
                json!({ "input": {
                    "name": self.name,
                    "type": "RESTAURANT",
                    "tier": "HIGH_END",
                    "addressStreet": "1 Test St",
                    "addressCity": "Boston",
                    "addressState": "MA",
                    "addressZip": "02110",
                    "addressCountry": "US",
                    "timezone": "America/New_York",
                    "currency": "USD",
                    "capacitySeated": 60,
                    "requireApproval": self.require_approval,
                    "autoConfirmBookings": self.auto_confirm,
                    "status": "ACTIVE",
                } }),
            )
            .await;
        let venue = data["createVenue"]["venue"]["id"]
            .as_str()
            .expect("the new venue's id")
            .to_owned();
        if let Some(pricing) = self.pricing {
            self.app
                .query_ok(
                    &admin.token,
                    "mutation($input: SetVenuePricingInput!) { setVenuePricing(input: $input) { pricing { id } } }",
                    json!({ "input": pricing.input(&venue) }),
                )
                .await;
        }
        venue
    }
}

/// A promoter to sign up at a venue: approved (ACTIVE) and on no commission unless asked.
#[must_use = "a builder does nothing until `create`"]
pub struct PromoterBuilder<'a> {
    app: &'a TestApp,
    venue: String,
    approved: bool,
    commission: Option<(String, String)>,
}

impl PromoterBuilder<'_> {
    /// Left PENDING_APPROVAL.
    pub fn pending(mut self) -> Self {
        self.approved = false;
        self
    }

    /// On a new STANDARD commission rate of the venue (`model` as `CommissionModel`, e.g.
    /// `FLAT_RATE`, `value` a decimal string), assigned from now on.
    pub fn with_commission(mut self, model: &str, value: &str) -> Self {
        self.commission = Some((model.to_owned(), value.to_owned()));
        self
    }

    /// Creates it (approval, rate and assignment included) as the global ADMIN; returns its
    /// id.
    pub async fn create(self) -> String {
        let app = self.app;
        let admin = app.admin().await;
        let n = next();
        let promoter = app
            .query_ok(
                &admin.token,
                "mutation($input: CreatePromoterInput!) { createPromoter(input: $input) { promoter { id } } }",
                json!({ "input": { "venueId": self.venue, "firstName": "Promoter",
                                   "lastName": format!("Number {n}"),
                                   "email": format!("promoter-{n}@prima.test") } }),
            )
            .await["createPromoter"]["promoter"]["id"]
            .as_str()
            .expect("the new promoter's id")
            .to_owned();
        if self.approved {
            app.query_ok(
                &admin.token,
                "mutation($input: ApprovePromoterInput!) { approvePromoter(input: $input) { promoter { id } } }",
                json!({ "input": { "promoterId": promoter } }),
            )
            .await;
        }
        if let Some((model, value)) = self.commission {
            let rate = app
                .query_ok(
                    &admin.token,
                    "mutation($input: CreateCommissionRateInput!) { createCommissionRate(input: $input) { commissionRate { id } } }",
                    json!({ "input": { "venueId": self.venue, "tier": "STANDARD",
                                       "model": model, "value": value } }),
                )
                .await["createCommissionRate"]["commissionRate"]["id"]
                .clone();
            app.query_ok(
                &admin.token,
                "mutation($input: AssignCommissionRateInput!) { assignCommissionRate(input: $input) { assignment { id } } }",
                json!({ "input": { "promoterId": promoter, "commissionRateId": rate } }),
            )
            .await;
        }
        promoter
    }
}

/// An incentive programme to insert at a venue (the API makes none): an ACTIVE
/// BOOKING_COUNT programme (GREATER_EQUAL 20 bookings, a fixed reward of 100.00) whose
/// period runs from a day ago to 30 days ahead, with the progress of the promoters who take
/// part. Only participants move (DOMAIN.md "Incentives": who is eligible is decided when a
/// programme opens).
#[must_use = "a builder does nothing until `create`"]
pub struct IncentiveBuilder<'a> {
    app: &'a TestApp,
    venue: String,
    participants: Vec<(String, i64)>,
}

impl IncentiveBuilder<'_> {
    /// `promoter` (of the venue) takes part, with `bookings` bookings counted so far.
    pub fn with_participant(mut self, promoter: &str, bookings: i64) -> Self {
        self.participants.push((promoter.to_owned(), bookings));
        self
    }

    /// Inserts the programme and its progress rows; returns its id.
    pub async fn create(self) -> String {
        let app = self.app;
        let admin = uuid(&app.admin().await.id);
        let now = Utc::now();
        let target = 2000;
        let id = Uuid::new_v4();
        insert(
            app,
            incentives::Model {
                id,
                venue_id: uuid(&self.venue),
                name: format!("Programme {}", next()),
                description: None,
                r#type: IncentiveType::BookingCount,
                target_metric: "bookings".into(),
                target_threshold: target,
                target_comparison: TargetComparison::GreaterEqual,
                reward_type: RewardType::FixedAmount,
                reward_value: 10_000,
                reward_currency: "USD".into(),
                reward_description: None,
                period_type: PeriodType::Monthly,
                period_start: now - chrono::Duration::days(1),
                period_end: now + chrono::Duration::days(30),
                is_recurring: false,
                eligible_tiers: json!(["STANDARD", "PREMIUM", "VIP"]),
                min_tenure_days: 0,
                max_previous_wins: None,
                status: IncentiveStatus::Active,
                participant_count: self.participants.len() as i32,
                winner_count: 0,
                total_payout: 0,
                created_by: admin,
                created_at: now,
                updated_at: now,
                finalized_at: None,
            },
        )
        .await;
        for (promoter, bookings) in self.participants {
            let current = bookings * 100;
            insert(
                app,
                incentive_progress::Model {
                    id: Uuid::new_v4(),
                    incentive_id: id,
                    promoter_id: uuid(&promoter),
                    current_value: current,
                    target_value: target,
                    percent_complete: (current * 10_000 / target).min(10_000),
                    status: ProgressStatus::InProgress,
                    achieved_at: None,
                    reward_earned: None,
                    reward_paid_at: None,
                    last_updated: now,
                    created_at: now,
                    completed_bookings: 0,
                    closed_bookings: 0,
                    value_reached_at: Some(now),
                },
            )
            .await;
        }
        id.to_string()
    }
}

/// A number unique in this test process, for names and emails.
fn next() -> u64 {
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::Relaxed)
}

fn uuid(id: &str) -> Uuid {
    id.parse().expect("a UUID")
}

/// Inserts a row as it is (every column set).
async fn insert<A>(app: &TestApp, model: impl IntoActiveModel<A>)
where
    A: ActiveModelTrait + Send,
{
    <A::Entity as EntityTrait>::insert(model.into_active_model().reset_all())
        .exec_without_returning(&app.db.db.conn)
        .await
        .expect("inserting a fixture row");
}

impl TestApp {
    /// A global ADMIN of this app (made on first use), who builds the other fixtures.
    pub async fn admin(&self) -> &User {
        self.admin
            .get_or_init(|| self.user(UserRole::Admin, "admin"))
            .await
    }

    /// A venue to build: `app.venue().with_pricing(Pricing::default()).create().await`.
    pub fn venue(&self) -> VenueBuilder<'_> {
        VenueBuilder {
            app: self,
            name: format!("Venue {}", next()),
            require_approval: false,
            auto_confirm: false,
            pricing: None,
        }
    }

    /// A venue that takes bookings at once: auto-confirming, with [`Pricing::default`].
    pub async fn bookable_venue(&self) -> String {
        self.venue()
            .auto_confirming()
            .with_pricing(Pricing::default())
            .create()
            .await
    }

    /// A new user holding `role` at `venue` (granted by the global ADMIN), logged in.
    pub async fn user_with_role(&self, venue: &str, role: Role) -> User {
        let user = self.user(role.global(), role.word()).await;
        self.grant(&user, venue, role).await;
        user
    }

    /// Grants `user` `role` at `venue` as the global ADMIN (a user's second venue, say).
    /// The role's global part is the user's own: a VIEWER stays read-only.
    pub async fn grant(&self, user: &User, venue: &str, role: Role) {
        let admin = self.admin().await;
        self.query_ok(
            &admin.token,
            "mutation($input: GrantVenueAccessInput!) { grantVenueAccess(input: $input) { access { role } } }",
            json!({ "input": { "venueId": venue, "userId": user.id, "role": role.venue_role() } }),
        )
        .await;
    }

    /// A guest registered at `venue` by the global ADMIN; returns its id.
    pub async fn guest(&self, venue: &str) -> String {
        let admin = self.admin().await;
        let n = next();
        self.query_ok(
            &admin.token,
            "mutation($input: CreateGuestInput!) { createGuest(input: $input) { guest { id } } }",
            json!({ "input": { "venueId": venue, "firstName": "Guest",
                               "lastName": format!("Number {n}"),
                               "email": format!("guest-{n}@example.com") } }),
        )
        .await["createGuest"]["guest"]["id"]
            .as_str()
            .expect("the new guest's id")
            .to_owned()
    }

    /// A promoter to build at `venue`: `app.promoter(&venue).with_commission(..).create()`.
    pub fn promoter(&self, venue: &str) -> PromoterBuilder<'_> {
        PromoterBuilder {
            app: self,
            venue: venue.to_owned(),
            approved: true,
            commission: None,
        }
    }

    /// A NON_PRIME booking for two of `guest` at `venue` (which needs pricing), two days
    /// ahead, made by the global ADMIN; returns its id.
    pub async fn booking(&self, venue: &str, guest: &str) -> String {
        self.make_booking(venue, guest, None).await
    }

    async fn make_booking(&self, venue: &str, guest: &str, promoter: Option<&str>) -> String {
        let admin = self.admin().await;
        let time = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
        self.query_ok(
            &admin.token,
            "mutation($input: CreateBookingInput!) { createBooking(input: $input) { booking { id } } }",
            json!({ "input": { "venueId": venue, "guestId": guest, "promoterId": promoter,
                               "type": "NON_PRIME", "diners": 2, "bookingTime": time } }),
        )
        .await["createBooking"]["booking"]["id"]
            .as_str()
            .expect("the new booking's id")
            .to_owned()
    }

    /// A NON_PRIME booking for two of `guest` at `venue`, brought by `promoter` (one of the
    /// venue's, ACTIVE), two days ahead, made by the global ADMIN; returns its id.
    pub async fn booking_by(&self, venue: &str, guest: &str, promoter: &str) -> String {
        self.make_booking(venue, guest, Some(promoter)).await
    }

    /// A PENDING_APPROVAL payout of `promoter` at `venue` paying the PROMOTER_COMMISSION
    /// ledger rows of `bookings` (confirmed ones, brought by the promoter on a commission):
    /// one item per row, the rows marked as in the payout, the totals their sum. Inserted,
    /// without waiting for the bookings to complete; returns its id. Its commissions are
    /// still PENDING, which a real generation never takes (`prima check` reports them as
    /// `payout_claim`): tests that run the check earn commissions with
    /// [`TestApp::completed_bookings_by`] and pay them with `generatePayout`.
    pub async fn payout(&self, venue: &str, promoter: &str, bookings: &[String]) -> String {
        let conn = &self.db.db.conn;
        let commissions = transactions::Entity::find()
            .filter(transactions::Column::BookingId.is_in(bookings.iter().map(|b| uuid(b))))
            .filter(transactions::Column::Type.eq(TransactionType::PromoterCommission))
            .all(conn)
            .await
            .expect("reading the bookings' commissions");
        assert!(
            !commissions.is_empty(),
            "the bookings earned no commission to pay out (confirmed, brought by a promoter on a commission?)"
        );
        let total: i64 = commissions.iter().map(|t| t.amount).sum();
        let now = Utc::now();
        let from: DateTime<Utc> = commissions.iter().map(|t| t.created_at).min().unwrap();
        let id = Uuid::new_v4();
        insert(
            self,
            payouts::Model {
                id,
                venue_id: uuid(venue),
                promoter_id: Some(uuid(promoter)),
                amount: total,
                currency: commissions[0].currency.clone(),
                period_from: from - chrono::Duration::days(1),
                period_to: now,
                status: PayoutStatus::PendingApproval,
                scheduled_for: now + chrono::Duration::days(7),
                processed_at: None,
                commissions_amount: total,
                incentives_amount: 0,
                adjustments_amount: 0,
                fees_amount: 0,
                method: PayoutMethod::BankTransfer,
                reference: None,
                approved_by: None,
                approved_at: None,
                created_at: now,
                updated_at: now,
                created_by: None,
                submitted_by: None,
            },
        )
        .await;
        for transaction in &commissions {
            insert(
                self,
                payout_items::Model {
                    id: Uuid::new_v4(),
                    payout_id: id,
                    transaction_id: transaction.id,
                    amount: transaction.amount,
                    r#type: transaction.r#type,
                    created_at: now,
                    released_at: None,
                },
            )
            .await;
        }
        transactions::Entity::update_many()
            .col_expr(
                transactions::Column::PayoutId,
                sea_orm::sea_query::Expr::value(id),
            )
            .filter(transactions::Column::Id.is_in(commissions.iter().map(|t| t.id)))
            .exec(conn)
            .await
            .expect("putting the commissions in the payout");
        id.to_string()
    }

    /// An incentive programme to build at `venue`:
    /// `app.incentive(&venue).with_participant(&promoter, 3).create()`.
    pub fn incentive(&self, venue: &str) -> IncentiveBuilder<'_> {
        IncentiveBuilder {
            app: self,
            venue: venue.to_owned(),
            participants: Vec::new(),
        }
    }

    /// `diners.len()` NON_PRIME bookings of `guest` at `venue` (auto-confirming) brought by
    /// `promoter`, each for `diners[i]`, a second ahead, then COMPLETED once the server's
    /// clock has passed their time (creation refuses a time in the past): commissions
    /// earned through the API. Returns their ids.
    pub async fn completed_bookings_by(
        &self,
        venue: &str,
        guest: &str,
        promoter: &str,
        diners: &[i64],
    ) -> Vec<String> {
        let admin = self.admin().await.token.clone();
        let time = (chrono::Utc::now() + chrono::Duration::seconds(1)).to_rfc3339();
        let mut ids = Vec::new();
        for n in diners {
            let made = self
                .query_ok(
                    &admin,
                    "mutation($input: CreateBookingInput!) { createBooking(input: $input) { booking { id status } } }",
                    json!({ "input": { "venueId": venue, "guestId": guest, "promoterId": promoter,
                                       "type": "NON_PRIME", "diners": n, "bookingTime": time } }),
                )
                .await;
            let booking = &made["createBooking"]["booking"];
            assert_eq!(
                booking["status"], "CONFIRMED",
                "the venue must auto-confirm"
            );
            ids.push(booking["id"].as_str().expect("the booking's id").to_owned());
        }
        for id in &ids {
            crate::eventually(
                "the booking time to pass",
                std::time::Duration::from_secs(15),
                async || {
                    let answer = self
                        .graphql(
                            Some(&admin),
                            "mutation($input: CompleteBookingInput!) { completeBooking(input: $input) { booking { status } } }",
                            json!({ "input": { "bookingId": id } }),
                        )
                        .await;
                    answer.get("errors").is_none().then_some(())
                },
            )
            .await;
        }
        ids
    }

    /// A new ACTIVE global MANAGER with no venue, logged in: someone who can sign in.
    pub async fn staff(&self) -> User {
        self.user(UserRole::Manager, "staff").await
    }

    /// Revokes `user`'s access to `venue` as the global ADMIN.
    pub async fn revoke(&self, user: &User, venue: &str) {
        let admin = self.admin().await;
        self.query_ok(
            &admin.token,
            "mutation($input: RevokeVenueAccessInput!) { revokeVenueAccess(input: $input) { revokedAt } }",
            json!({ "input": { "venueId": venue, "userId": user.id } }),
        )
        .await;
    }

    /// Suspends `user` (status SUSPENDED), as an operator does in the database: the API
    /// has no mutation for a user's status.
    pub async fn suspend(&self, user: &User) {
        users::Entity::update_many()
            .col_expr(
                users::Column::Status,
                sea_orm::sea_query::Expr::value(UserStatus::Suspended),
            )
            .filter(users::Column::Id.eq(uuid(&user.id)))
            .exec(&self.db.db.conn)
            .await
            .expect("suspending a user");
    }

    /// A new ACTIVE user with the global `role` and no venue, logged in.
    async fn user(&self, role: UserRole, word: &str) -> User {
        let n = next();
        let email = format!("{word}-{n}@prima.test");
        let user = prima_service::users::create_user(
            &self.db.db.conn,
            &prima_service::auth::Hasher::new(prima_service::auth::HashLimits::for_machine()),
            prima_service::users::NewUser {
                email: email.clone(),
                password: PASSWORD.to_owned(),
                first_name: "Test".into(),
                last_name: format!("{word} {n}"),
                role,
                venues: Vec::<(uuid::Uuid, VenueRole)>::new(),
            },
        )
        .await
        .expect("creating a fixture user");
        let token = self.login(&email).await;
        User {
            id: user.id.to_string(),
            email,
            token,
        }
    }
}
