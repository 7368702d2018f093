//! The booking write path over HTTP (DOMAIN.md "Booking lifecycle", "Transactions",
//! "Idempotency", "Access"): making, editing, confirming, cancelling, completing and
//! marking no-shows, by users holding each role at venues the tests build. Allowed transitions write their ledger and history;
//! anything else is refused with the documented code and changes nothing.

use chrono::{Duration, SecondsFormat, Utc};
use prima_tests::{Pricing, Role, TestApp, error_codes, eventually};
use rust_decimal::{Decimal, RoundingStrategy};
use sea_orm::EntityTrait;
use serde_json::{Value, json};

/// What the tests read of a booking (as MANAGER or above: `transactions` is a financial
/// read).
const BOOKING: &str = r#"fragment B on Booking {
    id status type source diners bookingTime durationMinutes notes specialRequests referrer
    baseFee { amount currency } platformFee { amount currency } totalFee { amount currency }
    promoterCommission { amount currency }
    confirmedAt cancelledAt completedAt noShowAt
    promoter { id } guest { id }
    transactions { type status amount { amount currency } }
    history { nodes { action reason performedByRole } }
}"#;

/// What a COORDINATOR may read of a booking.
const BOOKING_LITE: &str = "fragment B on Booking { id status confirmedAt cancelledAt }";

fn create(fragment: &str) -> String {
    format!(
        "mutation($input: CreateBookingInput!) {{ createBooking(input: $input) {{ booking {{ ...B }} }} }} {fragment}"
    )
}

fn mutation(name: &str, input: &str, fragment: &str) -> String {
    format!(
        "mutation($input: {input}!) {{ {name}(input: $input) {{ booking {{ ...B }} }} }} {fragment}"
    )
}

fn read(fragment: &str) -> String {
    format!("query($id: ID!) {{ booking(id: $id) {{ ...B }} }} {fragment}")
}

const QUOTE: &str = r#"query($input: QuoteBookingInput!) { quoteBooking(input: $input) {
    baseFee { amount } platformFee { amount } totalFee { amount currency } } }"#;

const COUNT: &str = "query($id: ID!) { venue(id: $id) { bookings(first: 1) { totalCount } } }";

/// An RFC 3339 time `from_now` ahead (negative: in the past).
fn at(from_now: Duration) -> String {
    (Utc::now() + from_now).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A venue that needs approval (new bookings start PENDING) and takes parties of 1 to 8,
/// seen by its venue ADMIN, with a guest of its own and an ACTIVE promoter paid a FLAT_RATE
/// commission of 15.00 per booking, all made through the API.
struct World {
    app: TestApp,
    /// The venue ADMIN of `venue`.
    gm: String,
    venue: String,
    guest: String,
    promoter: String,
}

/// The world's prices: the demo's approval venue's (early-bird and repeat-customer
/// discounts, parties of 1 to 8).
fn pricing() -> Pricing {
    Pricing {
        non_prime_per_diner: "40.00",
        non_prime_platform_fee: "0.12",
        prime_base_for_2: "150.00",
        prime_additional_per_person: "60.00",
        prime_platform_fee: "0.13",
        minimum_booking_amount: "50.00",
        minimum_party_size: 1,
        maximum_party_size: 8,
        early_bird_discount: Some("0.05"),
        repeat_customer_discount: Some("0.075"),
        group_discount: None,
    }
}

async fn world() -> World {
    // Behind a proxy that sets X-Forwarded-For, so the recorded client address can be checked.
    let app = TestApp::empty_with(prima_server::config::ServeArgs {
        login: prima_server::config::LoginArgs {
            trust_forwarded_for: true,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let venue = app
        .venue()
        .requiring_approval()
        .with_pricing(pricing())
        .create()
        .await;
    let gm = app.user_with_role(&venue, Role::Admin).await.token;
    let guest = ok(
        &app,
        &gm,
        "mutation($input: CreateGuestInput!) { createGuest(input: $input) { guest { id } } }",
        json!({ "venueId": venue, "firstName": "Ada", "lastName": "Quinn", "email": "ada.quinn@example.com" }),
    )
    .await["createGuest"]["guest"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let promoter = ok(
        &app,
        &gm,
        "mutation($input: CreatePromoterInput!) { createPromoter(input: $input) { promoter { id } } }",
        json!({ "venueId": venue, "firstName": "Rae", "lastName": "Lopez", "email": "rae@example.com" }),
    )
    .await["createPromoter"]["promoter"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(
        &app,
        &gm,
        "mutation($input: ApprovePromoterInput!) { approvePromoter(input: $input) { promoter { id } } }",
        json!({ "promoterId": promoter }),
    )
    .await;
    let rate = ok(
        &app,
        &gm,
        "mutation($input: CreateCommissionRateInput!) { createCommissionRate(input: $input) { commissionRate { id } } }",
        json!({ "venueId": venue, "tier": "STANDARD", "model": "FLAT_RATE", "value": "15" }),
    )
    .await["createCommissionRate"]["commissionRate"]["id"]
        .clone();
    ok(
        &app,
        &gm,
        "mutation($input: AssignCommissionRateInput!) { assignCommissionRate(input: $input) { assignment { id } } }",
        json!({ "promoterId": promoter, "commissionRateId": rate }),
    )
    .await;
    World {
        app,
        gm,
        venue,
        guest,
        promoter,
    }
}

impl World {
    /// A NON_PRIME booking of the world's guest, brought by its promoter.
    fn input(&self, diners: i32, booking_time: &str) -> Value {
        json!({
            "venueId": self.venue,
            "guestId": self.guest,
            "promoterId": self.promoter,
            "type": "NON_PRIME",
            "diners": diners,
            "bookingTime": booking_time,
        })
    }

    /// Makes a booking as the venue ADMIN and returns it.
    async fn book(&self, input: Value) -> Value {
        ok(&self.app, &self.gm, &create(BOOKING), input).await["createBooking"]["booking"].clone()
    }

    /// Runs a lifecycle mutation (`confirmBooking`, ...) as the venue ADMIN; the whole
    /// response.
    async fn apply(&self, name: &str, input: Value) -> Value {
        let input_type = format!("{}{}Input", name[..1].to_uppercase(), &name[1..]);
        self.app
            .graphql(
                Some(&self.gm),
                &mutation(name, &input_type, BOOKING),
                json!({ "input": input }),
            )
            .await
    }

    /// Runs a lifecycle mutation that must succeed; the booking it returns.
    async fn apply_ok(&self, name: &str, input: Value) -> Value {
        let response = self.apply(name, input).await;
        assert!(response.get("errors").is_none(), "{name}: {response}");
        response["data"][name]["booking"].clone()
    }

    /// The booking as the venue ADMIN reads it now.
    async fn booking(&self, id: &Value) -> Value {
        self.app
            .query_ok(&self.gm, &read(BOOKING), json!({ "id": id }))
            .await["booking"]
            .clone()
    }

    async fn bookings_count(&self) -> u64 {
        bookings_count(&self.app, &self.gm, &self.venue).await
    }

    /// What `createBooking` would charge the world's guest now.
    async fn quote(&self, diners: i32, booking_time: &str) -> Value {
        let mut input = self.input(diners, booking_time);
        input.as_object_mut().unwrap().remove("promoterId");
        self.app
            .query_ok(&self.gm, QUOTE, json!({ "input": input }))
            .await["quoteBooking"]
            .clone()
    }
}

async fn ok(app: &TestApp, token: &str, mutation: &str, input: Value) -> Value {
    app.query_ok(token, mutation, json!({ "input": input }))
        .await
}

async fn bookings_count(app: &TestApp, token: &str, venue: &str) -> u64 {
    app.query_ok(token, COUNT, json!({ "id": venue })).await["venue"]["bookings"]["totalCount"]
        .as_u64()
        .unwrap()
}

fn assert_bad_input(response: &Value, field: &str) {
    assert_eq!(error_codes(response), ["BAD_USER_INPUT"], "{response}");
    assert_eq!(
        response["errors"][0]["extensions"]["field"], field,
        "{response}"
    );
}

fn assert_conflict(response: &Value, says: &str) {
    assert_eq!(error_codes(response), ["CONFLICT"], "{response}");
    let message = response["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains(says), "{message:?} says {says:?}");
}

/// `(type, status, amount)` of each ledger entry of a booking, sorted.
fn ledger(booking: &Value) -> Vec<(String, String, String)> {
    let mut rows: Vec<_> = booking["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["type"].as_str().unwrap().to_owned(),
                t["status"].as_str().unwrap().to_owned(),
                t["amount"]["amount"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    rows.sort();
    rows
}

fn entry(kind: &str, status: &str, amount: &Value) -> (String, String, String) {
    (
        kind.to_owned(),
        status.to_owned(),
        amount.as_str().unwrap().to_owned(),
    )
}

fn actions(booking: &Value) -> Vec<&str> {
    booking["history"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["action"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn a_booking_that_needs_approval_starts_pending_and_confirming_puts_it_on_the_ledger() {
    let w = world().await;
    let time = at(Duration::days(2));
    let quote = w.quote(2, &time).await;

    let booking = w.book(w.input(2, &time)).await;
    assert_eq!(booking["status"], "PENDING");
    assert_eq!(
        booking["source"], "PROMOTER",
        "a promoter's booking by default"
    );
    assert_eq!(booking["durationMinutes"], 120);
    assert_eq!(booking["promoter"]["id"], w.promoter.as_str());
    assert_eq!(booking["baseFee"]["amount"], quote["baseFee"]["amount"]);
    assert_eq!(
        booking["platformFee"]["amount"],
        quote["platformFee"]["amount"]
    );
    assert_eq!(
        booking["totalFee"], quote["totalFee"],
        "amounts are decimal strings"
    );
    assert!(booking["totalFee"]["amount"].is_string());
    assert_eq!(booking["promoterCommission"]["amount"], "0.00");
    assert!(booking["confirmedAt"].is_null());
    assert_eq!(
        ledger(&booking),
        [],
        "nothing is on the ledger until confirmed"
    );
    assert_eq!(actions(&booking), ["CREATED"]);

    let id = json!({ "bookingId": booking["id"] });
    let confirmed = w.apply_ok("confirmBooking", id.clone()).await;
    assert_eq!(confirmed["status"], "CONFIRMED");
    assert!(confirmed["confirmedAt"].is_string());
    assert_eq!(confirmed["promoterCommission"]["amount"], "15.00");
    assert_eq!(
        confirmed["totalFee"], booking["totalFee"],
        "the price is kept"
    );
    let mut expected = vec![
        entry("BOOKING_FEE", "PENDING", &booking["baseFee"]["amount"]),
        entry("PLATFORM_FEE", "PENDING", &booking["platformFee"]["amount"]),
        entry("PROMOTER_COMMISSION", "PENDING", &json!("15.00")),
    ];
    expected.sort();
    assert_eq!(ledger(&confirmed), expected);
    assert_eq!(actions(&confirmed), ["CREATED", "STATUS_CHANGED"]);
    assert_eq!(confirmed["history"]["nodes"][1]["performedByRole"], "ADMIN");

    // Confirming twice is one confirmation: one commission, one set of ledger entries.
    let again = w.apply("confirmBooking", id.clone()).await;
    assert_conflict(&again, "PENDING");
    assert_eq!(ledger(&w.booking(&booking["id"]).await), expected);

    // Cancelling needs a reason; with one, the pending entries are cancelled.
    let blank = w
        .apply(
            "cancelBooking",
            json!({ "bookingId": booking["id"], "reason": "  " }),
        )
        .await;
    assert_bad_input(&blank, "reason");
    let cancelled = w
        .apply_ok(
            "cancelBooking",
            json!({ "bookingId": booking["id"], "reason": "The guest called to cancel" }),
        )
        .await;
    assert_eq!(cancelled["status"], "CANCELLED");
    assert!(cancelled["cancelledAt"].is_string());
    assert!(
        ledger(&cancelled)
            .iter()
            .all(|(_, status, _)| status == "CANCELLED"),
        "{cancelled}"
    );
    assert_eq!(ledger(&cancelled).len(), 3, "amounts are kept, not deleted");
    assert_eq!(
        cancelled["history"]["nodes"][2]["reason"],
        "The guest called to cancel"
    );
    assert_conflict(
        &w.apply("confirmBooking", id).await,
        "this booking is CANCELLED",
    );
}

#[tokio::test]
async fn a_confirmed_booking_is_completed_or_marked_a_no_show_once_its_time_has_passed() {
    let w = world().await;
    // Two bookings a few seconds ahead (creation refuses a time in the past), confirmed at
    // once, then past their time.
    let soon = Utc::now() + Duration::seconds(3);
    let time = soon.to_rfc3339_opts(SecondsFormat::Millis, true);
    let arrived = w.book(w.input(2, &time)).await;
    let absent = w.book(w.input(3, &time)).await;
    for booking in [&arrived, &absent] {
        w.apply_ok("confirmBooking", json!({ "bookingId": booking["id"] }))
            .await;
    }
    // Until the server's clock passes the booking time, completing is refused as too early
    // (and writes nothing); then it goes through.
    let completed = eventually(
        "the booking time to pass",
        std::time::Duration::from_secs(15),
        async || {
            let response = w
                .apply("completeBooking", json!({ "bookingId": arrived["id"] }))
                .await;
            if response.get("errors").is_none() {
                return Some(response["data"]["completeBooking"]["booking"].clone());
            }
            assert_conflict(&response, "before its booking time");
            None
        },
    )
    .await;
    assert_eq!(completed["status"], "COMPLETED");
    assert!(completed["completedAt"].is_string());
    let mut earned = vec![
        entry("BOOKING_FEE", "CONFIRMED", &arrived["baseFee"]["amount"]),
        entry(
            "PLATFORM_FEE",
            "CONFIRMED",
            &arrived["platformFee"]["amount"],
        ),
        entry("PROMOTER_COMMISSION", "CONFIRMED", &json!("15.00")),
    ];
    earned.sort();
    assert_eq!(ledger(&completed), earned);

    // The venue ADMIN refunds 10.00: a negative REFUND, and the 15.00 commission clawed back
    // in proportion to what was charged.
    const REFUND: &str = "mutation($input: RefundBookingInput!) { refundBooking(input: $input) { \
        booking { status } refund { type status amount { amount } } \
        clawback { type status amount { amount } } refundable { amount } } }";
    let charged: Decimal = completed["totalFee"]["amount"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let refund = |amount: Option<&str>, reason: &str| {
        let mut input = json!({ "bookingId": completed["id"], "reason": reason });
        if let Some(amount) = amount {
            input["amount"] = json!(amount);
        }
        w.app
            .graphql(Some(&w.gm), REFUND, json!({ "input": input }))
    };
    let first = refund(Some("10.00"), "Cold starter").await;
    let made = &first["data"]["refundBooking"];
    assert_eq!(made["booking"]["status"], "COMPLETED", "{first}");
    assert_eq!(made["refund"]["type"], "REFUND");
    assert_eq!(made["refund"]["amount"]["amount"], "-10.00");
    let clawed = (Decimal::new(1500, 2) * Decimal::new(1000, 2) / charged)
        .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    assert_eq!(made["clawback"]["type"], "ADJUSTMENT");
    assert_eq!(made["clawback"]["amount"]["amount"], format!("-{clawed}"));
    let left = charged - Decimal::new(1000, 2);
    assert_eq!(made["refundable"]["amount"], left.to_string());
    // More than is left is refused naming `amount`.
    let over = (left + Decimal::new(1, 2)).to_string();
    assert_bad_input(&refund(Some(&over), "Too much").await, "amount");
    let rest = refund(None, "Goodwill").await;
    let rest = &rest["data"]["refundBooking"];
    assert_eq!(rest["refund"]["amount"]["amount"], format!("-{left}"));
    assert_eq!(
        rest["clawback"]["amount"]["amount"],
        format!("-{}", Decimal::new(1500, 2) - clawed),
        "the clawbacks add up to the commission"
    );
    assert_eq!(rest["refundable"]["amount"], "0.00");

    let no_show = w
        .apply_ok(
            "markNoShow",
            json!({ "bookingId": absent["id"], "reason": "No answer at the door" }),
        )
        .await;
    assert_eq!(no_show["status"], "NO_SHOW");
    assert!(no_show["noShowAt"].is_string());
    let mut kept = vec![
        entry("BOOKING_FEE", "CONFIRMED", &absent["baseFee"]["amount"]),
        entry(
            "PLATFORM_FEE",
            "CONFIRMED",
            &absent["platformFee"]["amount"],
        ),
        entry("PROMOTER_COMMISSION", "CANCELLED", &json!("15.00")),
    ];
    kept.sort();
    assert_eq!(ledger(&no_show), kept, "the venue keeps its fees");
    assert_eq!(
        actions(&no_show),
        ["CREATED", "STATUS_CHANGED", "STATUS_CHANGED"]
    );
    assert_eq!(
        no_show["history"]["nodes"][2]["reason"],
        "No answer at the door"
    );

    // Final states stay final, and a booking whose time has passed cannot be cancelled.
    assert_conflict(
        &w.apply(
            "cancelBooking",
            json!({ "bookingId": completed["id"], "reason": "too late" }),
        )
        .await,
        "COMPLETED",
    );
    assert_conflict(
        &w.apply("completeBooking", json!({ "bookingId": no_show["id"] }))
            .await,
        "NO_SHOW",
    );
}

#[tokio::test]
async fn completing_a_pending_booking_is_a_conflict_and_changes_nothing() {
    let w = world().await;
    let booking = w.book(w.input(2, &at(Duration::days(2)))).await;
    let id = json!({ "bookingId": booking["id"] });

    assert_conflict(
        &w.apply("completeBooking", id.clone()).await,
        "only a CONFIRMED booking can be completed",
    );
    assert_conflict(&w.apply("markNoShow", id.clone()).await, "PENDING");
    assert_eq!(
        w.booking(&booking["id"]).await,
        booking,
        "the refused changes wrote nothing"
    );

    // Confirmed, it still cannot be completed before its time.
    let confirmed = w.apply_ok("confirmBooking", id.clone()).await;
    assert_conflict(
        &w.apply("completeBooking", id.clone()).await,
        "before its booking time",
    );
    assert_conflict(
        &w.apply("markNoShow", id.clone()).await,
        "before its booking time",
    );
    assert_eq!(w.booking(&booking["id"]).await, confirmed);
}

#[tokio::test]
async fn only_a_manager_or_above_confirms_and_other_venues_bookings_are_not_found() {
    let app = TestApp::empty().await;
    let venue = app.bookable_venue().await;
    let owner = app.user_with_role(&venue, Role::Owner).await.token;
    let coordinator = app.user_with_role(&venue, Role::Coordinator).await.token;
    let elsewhere = app.venue().with_pricing(Pricing::default()).create().await;
    let manager = app.user_with_role(&elsewhere, Role::Manager).await.token;
    // The coordinator's venue auto-confirms; make it wait for approval instead.
    ok(
        &app,
        &owner,
        "mutation($input: UpdateVenueInput!) { updateVenue(input: $input) { venue { id } } }",
        json!({ "venueId": venue, "requireApproval": true }),
    )
    .await;
    let guest = ok(
        &app,
        &coordinator,
        "mutation($input: CreateGuestInput!) { createGuest(input: $input) { guest { id } } }",
        json!({ "venueId": venue, "firstName": "Bo", "lastName": "Lind", "email": "bo@example.com" }),
    )
    .await["createGuest"]["guest"]["id"]
        .clone();
    let booking = ok(
        &app,
        &coordinator,
        &create(BOOKING_LITE),
        json!({
            "venueId": venue, "guestId": guest, "type": "PRIME", "diners": 4,
            "bookingTime": at(Duration::days(3)),
        }),
    )
    .await["createBooking"]["booking"]
        .clone();
    assert_eq!(booking["status"], "PENDING");
    let id = json!({ "bookingId": booking["id"] });
    let confirm = mutation("confirmBooking", "ConfirmBookingInput", BOOKING_LITE);
    let cancel = mutation("cancelBooking", "CancelBookingInput", BOOKING_LITE);
    let update = mutation("updateBooking", "UpdateBookingInput", BOOKING_LITE);

    let response = app
        .graphql(Some(&coordinator), &confirm, json!({ "input": id }))
        .await;
    assert_eq!(error_codes(&response), ["FORBIDDEN"], "{response}");
    let unchanged = app
        .query_ok(
            &coordinator,
            &read(BOOKING_LITE),
            json!({ "id": booking["id"] }),
        )
        .await;
    assert_eq!(unchanged["booking"], booking);

    // The manager of another venue cannot tell the booking exists; nor can anyone tell a
    // made-up id from it.
    let hidden = [
        ("confirm", &confirm, &manager, id.clone()),
        (
            "cancel",
            &cancel,
            &manager,
            json!({ "bookingId": booking["id"], "reason": "not mine" }),
        ),
        (
            "update",
            &update,
            &manager,
            json!({ "bookingId": booking["id"], "diners": 2 }),
        ),
        (
            "confirm a made-up id",
            &confirm,
            &owner,
            json!({ "bookingId": uuid::Uuid::new_v4().to_string() }),
        ),
    ];
    for (what, query, token, input) in hidden {
        let response = app
            .graphql(Some(token), query, json!({ "input": input }))
            .await;
        assert_eq!(error_codes(&response), ["NOT_FOUND"], "{what}: {response}");
    }

    // The owner confirms; the coordinator may still cancel it, before its time.
    let confirmed = app.query_ok(&owner, &confirm, json!({ "input": id })).await["confirmBooking"]
        ["booking"]
        .clone();
    assert_eq!(confirmed["status"], "CONFIRMED");
    let cancelled = app
        .query_ok(
            &coordinator,
            &cancel,
            json!({ "input": { "bookingId": booking["id"], "reason": "Change of plans" } }),
        )
        .await["cancelBooking"]["booking"]
        .clone();
    assert_eq!(cancelled["status"], "CANCELLED");
}

#[tokio::test]
async fn bad_booking_input_names_the_field_and_writes_nothing() {
    let w = world().await;
    let before = w.bookings_count().await;
    let future = at(Duration::days(2));
    let refuse = |input: Value| {
        let w = &w;
        async move {
            w.app
                .graphql(Some(&w.gm), &create(BOOKING), json!({ "input": input }))
                .await
        }
    };

    let cases: Vec<(&str, Value)> = vec![
        ("diners", w.input(0, &future)),
        ("diners", w.input(51, &future)),
        // The venue takes parties of 1 to 8.
        ("diners", w.input(9, &future)),
        ("bookingTime", w.input(2, &at(-Duration::hours(1)))),
        ("durationMinutes", {
            let mut input = w.input(2, &future);
            input["durationMinutes"] = json!(5);
            input
        }),
        ("promoterId", {
            let mut input = w.input(2, &future);
            input["promoterId"] = json!(uuid::Uuid::new_v4().to_string());
            input
        }),
        ("promoterId", {
            let mut input = w.input(2, &future);
            input.as_object_mut().unwrap().remove("promoterId");
            input["source"] = json!("PROMOTER");
            input
        }),
        ("venueId", {
            let mut input = w.input(2, &future);
            input["venueId"] = json!("not-an-id");
            input
        }),
        ("idempotencyKey", {
            let mut input = w.input(2, &future);
            input["idempotencyKey"] = json!(" padded ");
            input
        }),
    ];
    for (field, input) in cases {
        let response = refuse(input.clone()).await;
        assert_bad_input(&response, field);
    }

    assert_eq!(w.bookings_count().await, before, "nothing was written");

    // A guest who booked and was then BLOCKED cannot book again. (`setGuestStatus` needs
    // the guest to have booked at the venue.)
    w.book(w.input(2, &future)).await;
    ok(
        &w.app,
        &w.gm,
        "mutation($input: SetGuestStatusInput!) { setGuestStatus(input: $input) { guest { status } } }",
        json!({ "guestId": w.guest, "status": "BLOCKED" }),
    )
    .await;
    assert_bad_input(&refuse(w.input(2, &future)).await, "guestId");
    assert_eq!(w.bookings_count().await, before + 1);

    // A venue without pricing cannot take bookings.
    let admin = w.app.admin().await.token.clone();
    let bare = ok(
        &w.app,
        &admin,
        "mutation($input: CreateVenueInput!) { createVenue(input: $input) { venue { id } } }",
        json!({
            "name": "Bare Room", "type": "RESTAURANT", "tier": "CASUAL",
            "addressStreet": "2 Pier Rd", "addressCity": "Boston", "addressState": "MA",
            "addressZip": "02110", "addressCountry": "US", "timezone": "America/New_York",
            "currency": "USD", "capacitySeated": 20, "status": "ACTIVE",
        }),
    )
    .await["createVenue"]["venue"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let guest = ok(
        &w.app,
        &admin,
        "mutation($input: CreateGuestInput!) { createGuest(input: $input) { guest { id } } }",
        json!({ "venueId": bare, "firstName": "Cy", "lastName": "Ng", "email": "cy@example.com" }),
    )
    .await["createGuest"]["guest"]["id"]
        .clone();
    let response = w
        .app
        .graphql(
            Some(&admin),
            &create(BOOKING),
            json!({ "input": {
                "venueId": bare, "guestId": guest, "type": "NON_PRIME", "diners": 2,
                "bookingTime": future,
            } }),
        )
        .await;
    assert_bad_input(&response, "venueId");
    assert_eq!(bookings_count(&w.app, &admin, &bare).await, 0);
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_booking_and_refuses_other_input() {
    let w = world().await;
    let before = w.bookings_count().await;
    let key = uuid::Uuid::new_v4().to_string();
    let mut input = w.input(2, &at(Duration::days(2)));
    input["idempotencyKey"] = json!(key);

    let first = w.book(input.clone()).await;
    let retry = w.book(input.clone()).await;
    assert_eq!(retry["id"], first["id"]);
    assert_eq!(retry, first, "the retry answers with the booking as it is");
    assert_eq!(w.bookings_count().await, before + 1, "one booking was made");

    let mut other = input.clone();
    other["diners"] = json!(3);
    let response = w
        .app
        .graphql(Some(&w.gm), &create(BOOKING), json!({ "input": other }))
        .await;
    assert_conflict(&response, "idempotency key");
    assert_eq!(w.bookings_count().await, before + 1);

    // Keys belong to the user who sent them: the venue's manager using the same key makes
    // a booking of their own.
    let manager = w.app.user_with_role(&w.venue, Role::Manager).await.token;
    let theirs =
        ok(&w.app, &manager, &create(BOOKING), input).await["createBooking"]["booking"].clone();
    assert_ne!(theirs["id"], first["id"]);
    assert_eq!(w.bookings_count().await, before + 2);
}

#[tokio::test]
async fn a_pending_booking_is_repriced_with_its_own_pricing_and_a_confirmed_one_keeps_its_price() {
    let w = world().await;
    let time = at(Duration::days(2));
    let booking = w.book(w.input(2, &time)).await;
    let four = w.quote(4, &time).await;
    assert_ne!(four["totalFee"], booking["totalFee"]);

    // New prices from now on do not touch the booking, even when it is re-priced.
    ok(
        &w.app,
        &w.gm,
        "mutation($input: SetVenuePricingInput!) { setVenuePricing(input: $input) { pricing { id } } }",
        json!({
            "venueId": w.venue, "nonPrimePerDiner": "99", "nonPrimePlatformFeePercent": "0.2",
            "primeBaseFor2": "300", "primeAdditionalPerPerson": "120",
            "primePlatformFeePercent": "0.2", "minimumBookingAmount": "10",
            "minimumPartySize": 1, "maximumPartySize": 20,
        }),
    )
    .await;
    let update = |changes: Value| {
        let w = &w;
        let mut input = changes;
        input["bookingId"] = booking["id"].clone();
        async move { w.apply("updateBooking", input).await }
    };
    let response = update(json!({ "diners": 4, "notes": "Window table" })).await;
    assert!(response.get("errors").is_none(), "{response}");
    let repriced = &response["data"]["updateBooking"]["booking"];
    assert_eq!(repriced["status"], "PENDING");
    assert_eq!(repriced["diners"], 4);
    assert_eq!(repriced["notes"], "Window table");
    assert_eq!(repriced["baseFee"]["amount"], four["baseFee"]["amount"]);
    assert_eq!(
        repriced["platformFee"]["amount"],
        four["platformFee"]["amount"]
    );
    assert_eq!(repriced["totalFee"], four["totalFee"]);
    assert_eq!(actions(repriced), ["CREATED", "UPDATED"]);
    // The party limits of the booking's pricing (1 to 8) apply, not the new ones.
    assert_bad_input(&update(json!({ "diners": 9 })).await, "diners");
    assert_bad_input(
        &update(json!({ "bookingTime": at(-Duration::minutes(5)) })).await,
        "bookingTime",
    );

    // Once confirmed, price and commission are locked; the details still change.
    let confirmed = w
        .apply_ok("confirmBooking", json!({ "bookingId": booking["id"] }))
        .await;
    assert_eq!(confirmed["totalFee"], four["totalFee"]);
    let response = update(json!({
        "diners": 6,
        "bookingTime": at(Duration::days(3)),
        "specialRequests": "Birthday cake",
        "notes": "",
    }))
    .await;
    assert!(response.get("errors").is_none(), "{response}");
    let edited = &response["data"]["updateBooking"]["booking"];
    assert_eq!(edited["status"], "CONFIRMED");
    assert_eq!(edited["diners"], 6);
    assert_eq!(edited["specialRequests"], "Birthday cake");
    assert!(edited["notes"].is_null(), "an empty text clears: {edited}");
    assert_eq!(edited["baseFee"], confirmed["baseFee"]);
    assert_eq!(edited["totalFee"], confirmed["totalFee"]);
    assert_eq!(
        edited["promoterCommission"],
        confirmed["promoterCommission"]
    );
    assert_eq!(
        ledger(edited),
        ledger(&confirmed),
        "the ledger is untouched"
    );
    assert_eq!(
        actions(edited),
        ["CREATED", "UPDATED", "STATUS_CHANGED", "UPDATED"]
    );
}

#[tokio::test]
async fn a_booking_records_where_its_request_came_from() {
    let w = world().await;
    let response: Value = reqwest::Client::new()
        .post(w.app.url("/graphql"))
        .bearer_auth(&w.gm)
        .header("User-Agent", "prima-tests/1.0")
        .header("Referer", "https://partners.example/book")
        .header("X-Forwarded-For", "203.0.113.7, 10.0.0.1")
        .json(&json!({
            "query": create(BOOKING),
            "variables": { "input": w.input(2, &at(Duration::days(2))) },
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let booking = &response["data"]["createBooking"]["booking"];
    assert_eq!(
        booking["referrer"], "https://partners.example/book",
        "{response}"
    );

    let id: uuid::Uuid = booking["id"].as_str().unwrap().parse().unwrap();
    let row = prima_entity::bookings::Entity::find_by_id(id)
        .one(&w.app.db.db.conn)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        row.ip_address.as_deref(),
        Some("203.0.113.7"),
        "the client, first in the list"
    );
    assert_eq!(row.user_agent.as_deref(), Some("prima-tests/1.0"));
}
