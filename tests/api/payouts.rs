//! Payouts as finance uses them (DOMAIN.md "Payouts", issue "Payouts"): earned commissions
//! become a payout, which goes through four-eyes approval, holds and payment; the finance
//! feed sees every step; clawbacks are deducted and a negative balance carries forward; the
//! bank file is for financial roles only. Driven over HTTP and WebSocket as the dashboard
//! would, with `prima check` clean at the end.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use prima_tests::{Role, TestApp, User, error_codes};
use serde_json::{Value, json};

const GENERATE: &str = "mutation($input: GeneratePayoutInput!) { generatePayout(input: $input) {
    outcome balance { amount }
    payout { id status amount { amount currency } commissionsAmount { amount } adjustmentsAmount { amount }
             statement { lines { kind count amount { amount } } amount { amount } } } } }";

const PAYOUT_CHANGED: &str = "subscription($venues: [ID!]) {
    payoutChanged(venueIds: $venues) { cursor action previousStatus payout { id status } } }";

/// A venue with two OWNER-level staff (owner and a venue ADMIN), a MANAGER, a COORDINATOR
/// and a promoter on 10 % of spend.
struct World {
    app: TestApp,
    venue: String,
    guest: String,
    promoter: String,
    owner: User,
    admin: User,
    manager: User,
    coordinator: User,
}

async fn world() -> World {
    let app = TestApp::empty().await;
    let venue = app.bookable_venue().await;
    let guest = app.guest(&venue).await;
    let promoter = app
        .promoter(&venue)
        .with_commission("PERCENT_OF_SPEND", "0.1000")
        .create()
        .await;
    World {
        owner: app.user_with_role(&venue, Role::Owner).await,
        admin: app.user_with_role(&venue, Role::Admin).await,
        manager: app.user_with_role(&venue, Role::Manager).await,
        coordinator: app.user_with_role(&venue, Role::Coordinator).await,
        app,
        venue,
        guest,
        promoter,
    }
}

fn at(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl World {
    async fn call(&self, user: &User, query: &str, input: Value) -> Value {
        self.app
            .graphql(Some(&user.token), query, json!({ "input": input }))
            .await
    }

    async fn ok(&self, user: &User, query: &str, input: Value) -> Value {
        self.app
            .query_ok(&user.token, query, json!({ "input": input }))
            .await
    }

    async fn generate(&self, by: &User, from: DateTime<Utc>, to: DateTime<Utc>) -> Value {
        let input = json!({ "promoterId": self.promoter, "venueId": self.venue,
                            "periodFrom": at(from), "periodTo": at(to) });
        self.ok(by, GENERATE, input).await["generatePayout"].clone()
    }

    /// A payout step by `user`: the whole answer (data or errors).
    async fn step(&self, user: &User, mutation: &str, input: Value) -> Value {
        let query = format!(
            "mutation($input: {input_type}!) {{ {mutation}(input: $input) {{ payout {{ id status }} }} }}",
            input_type = step_input(mutation),
        );
        self.call(user, &query, input).await
    }

    async fn check_clean(&self) {
        let report = prima_service::check::run(&self.app.db.db.conn, None)
            .await
            .expect("running prima check");
        assert!(
            report.discrepancies.is_empty(),
            "prima check: {:#?}",
            report.discrepancies
        );
    }
}

fn step_input(mutation: &str) -> &'static str {
    match mutation {
        "returnPayoutToDraft" => "ReturnPayoutToDraftInput",
        "completePayout" => "CompletePayoutInput",
        "failPayout" => "FailPayoutInput",
        _ => "PayoutStepInput",
    }
}

fn status(answer: &Value, mutation: &str) -> String {
    answer["data"][mutation]["payout"]["status"]
        .as_str()
        .unwrap_or_else(|| panic!("{mutation}: {answer}"))
        .to_owned()
}

#[tokio::test]
async fn a_payout_goes_from_earnings_to_payment_under_four_eyes_and_the_finance_feed_sees_each_step()
 {
    let w = world().await;
    let mut feed = w.app.ws(Some(&w.manager.token)).await;
    assert_eq!(feed.next_json().await["type"], "connection_ack");
    feed.subscribe("p", PAYOUT_CHANGED, json!({ "venues": [w.venue] }))
        .await;
    w.app.subscribers_at_least(1).await;
    // Financial reads only: a COORDINATOR of the venue is refused the finance feed.
    let mut refused = w.app.ws(Some(&w.coordinator.token)).await;
    assert_eq!(refused.next_json().await["type"], "connection_ack");
    refused
        .subscribe("p", PAYOUT_CHANGED, json!({ "venues": [w.venue] }))
        .await;
    let answer = refused.next_json().await;
    assert_eq!(answer["payload"]["data"], Value::Null, "{answer}");
    assert_eq!(
        answer["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{answer}"
    );

    let from = Utc::now() - Duration::hours(1);
    // Two bookings of 2 and 4 diners at 25.00 a diner: 10 % commissions of 5.00 and 10.00.
    w.app
        .completed_bookings_by(&w.venue, &w.guest, &w.promoter, &[2, 4])
        .await;
    let to = Utc::now();
    let made = w.generate(&w.owner, from, to).await;
    assert_eq!(made["outcome"], "CREATED");
    let payout = &made["payout"];
    let id = payout["id"].as_str().unwrap().to_owned();
    assert_eq!(payout["status"], "DRAFT");
    assert_eq!(payout["amount"]["amount"], "15.00");
    assert_eq!(
        payout["statement"]["lines"],
        json!([{ "kind": "COMMISSIONS", "count": 2, "amount": { "amount": "15.00" } }])
    );
    let again = w.generate(&w.admin, from, to).await;
    assert_eq!(
        (&again["outcome"], &again["payout"]["id"]),
        (&json!("EXISTING"), &json!(id))
    );

    let by_id = json!({ "payoutId": id });
    assert_eq!(
        status(
            &w.step(&w.owner, "submitPayout", by_id.clone()).await,
            "submitPayout"
        ),
        "PENDING_APPROVAL"
    );
    let own = w.step(&w.owner, "approvePayout", by_id.clone()).await;
    assert_eq!(error_codes(&own), ["FORBIDDEN"], "four eyes: {own}");
    let manager = w.step(&w.manager, "approvePayout", by_id.clone()).await;
    assert_eq!(
        error_codes(&manager),
        ["FORBIDDEN"],
        "approval is for OWNER or ADMIN"
    );
    assert_eq!(
        status(
            &w.step(&w.admin, "approvePayout", by_id.clone()).await,
            "approvePayout"
        ),
        "APPROVED"
    );

    let held = w
        .ok(
            &w.admin,
            "mutation($input: PlacePayoutHoldInput!) { placePayoutHold(input: $input) { hold { id active amount { amount } } } }",
            json!({ "payoutId": id, "amount": "5.00", "reason": "Guest disputes the bill" }),
        )
        .await;
    let hold = held["placePayoutHold"]["hold"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(held["placePayoutHold"]["hold"]["active"], true);
    let blocked = w
        .step(&w.owner, "startPayoutProcessing", by_id.clone())
        .await;
    assert_eq!(error_codes(&blocked), ["CONFLICT"], "{blocked}");
    w.ok(
        &w.owner,
        "mutation($input: ReleasePayoutHoldInput!) { releasePayoutHold(input: $input) { hold { active } } }",
        json!({ "holdId": hold }),
    )
    .await;
    assert_eq!(
        status(
            &w.step(&w.owner, "startPayoutProcessing", by_id.clone())
                .await,
            "startPayoutProcessing"
        ),
        "PROCESSING"
    );
    let early = w.step(&w.owner, "submitPayout", by_id.clone()).await;
    assert_eq!(error_codes(&early), ["CONFLICT"]);
    let paid = w
        .step(
            &w.owner,
            "completePayout",
            json!({ "payoutId": id, "reference": "BANK-2026-0001" }),
        )
        .await;
    assert_eq!(status(&paid, "completePayout"), "COMPLETED");

    // The items' transactions are settled; the balance says paid; the audit tells all.
    let read = w
        .app
        .query_ok(
            &w.manager.token,
            "query($id: ID!, $p: ID!) {
               payout(id: $id) { reference items { edges { node { transaction { status settledAt } } } }
                 audit { edges { node { id fromStatus toStatus reason performedBy { id } } } } }
               promoter(id: $p) { balance { pending { amount } earnedUnpaid { amount } inPayout { amount } paid { amount } carriedNegative { amount } } } }",
            json!({ "id": id, "p": w.promoter }),
        )
        .await;
    assert_eq!(read["payout"]["reference"], "BANK-2026-0001");
    for edge in read["payout"]["items"]["edges"].as_array().unwrap() {
        assert_eq!(edge["node"]["transaction"]["status"], "SETTLED");
        assert!(edge["node"]["transaction"]["settledAt"].is_string());
    }
    let balance = &read["promoter"]["balance"];
    assert_eq!(balance["paid"]["amount"], "15.00");
    assert_eq!(balance["inPayout"]["amount"], "0.00");
    assert_eq!(balance["earnedUnpaid"]["amount"], "0.00");
    let trail: Vec<(Value, Value)> = read["payout"]["audit"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["node"]["fromStatus"].clone(),
                e["node"]["toStatus"].clone(),
            )
        })
        .collect();
    assert_eq!(
        trail.len(),
        7,
        "generated, submitted, approved, held, released, processing, completed: {trail:?}"
    );
    let approval = read["payout"]["audit"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["node"]["toStatus"] == "APPROVED")
        .unwrap();
    assert_eq!(approval["node"]["performedBy"]["id"], json!(w.admin.id));

    // Holds and audit entries are nodes too, behind the same financial reads.
    let audit_id = approval["node"]["id"].clone();
    let nodes = w
        .app
        .query_ok(
            &w.manager.token,
            "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }",
            json!({ "ids": [hold, audit_id] }),
        )
        .await;
    let kinds: Vec<&Value> = nodes["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| &n["__typename"])
        .collect();
    assert_eq!(kinds, [&json!("PayoutHold"), &json!("PayoutAuditEntry")]);
    let hidden = w
        .app
        .query_ok(
            &w.coordinator.token,
            "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
            json!({ "ids": [hold, audit_id] }),
        )
        .await;
    assert_eq!(hidden["nodes"], json!([null, null]));

    // The finance feed saw every change, in order.
    let mut actions = Vec::new();
    while actions.len() < 7 {
        let frame = feed.next_json().await;
        assert_eq!(frame["type"], "next", "{frame}");
        actions.push(
            frame["payload"]["data"]["payoutChanged"]["action"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(
        actions,
        [
            "GENERATED",
            "SUBMITTED",
            "APPROVED",
            "HOLD_PLACED",
            "HOLD_RELEASED",
            "PROCESSING_STARTED",
            "COMPLETED"
        ]
    );
    w.check_clean().await;
}

#[tokio::test]
async fn a_clawback_is_deducted_and_a_negative_balance_carries_into_the_next_period() {
    let w = world().await;
    let start = Utc::now() - Duration::hours(1);
    // Period one: a booking of 4 (commission 10.00), paid out.
    let first = w
        .app
        .completed_bookings_by(&w.venue, &w.guest, &w.promoter, &[4])
        .await;
    let one_end = Utc::now();
    let one = w.generate(&w.owner, start, one_end).await;
    assert_eq!(one["payout"]["amount"]["amount"], "10.00");
    // Period two: the booking is refunded in full; the 10.00 is clawed back, and there is
    // nothing else: the balance is carried.
    w.ok(
        &w.owner,
        "mutation($input: RefundBookingInput!) { refundBooking(input: $input) { clawback { amount { amount } } } }",
        json!({ "bookingId": first[0], "reason": "Kitchen closed early" }),
    )
    .await;
    let two_end = Utc::now();
    let two = w.generate(&w.owner, one_end, two_end).await;
    assert_eq!(two["outcome"], "CARRIED_NEGATIVE");
    assert_eq!(two["balance"]["amount"], "-10.00");
    assert_eq!(two["payout"], Value::Null);
    let balance = w
        .app
        .query_ok(
            &w.manager.token,
            "query($p: ID!) { promoter(id: $p) { balance { carriedNegative { amount } earnedUnpaid { amount } } } }",
            json!({ "p": w.promoter }),
        )
        .await;
    assert_eq!(
        balance["promoter"]["balance"]["carriedNegative"]["amount"],
        "-10.00"
    );
    // Period three: a booking of 8 (20.00): the payout deducts the 10.00 carried.
    w.app
        .completed_bookings_by(&w.venue, &w.guest, &w.promoter, &[8])
        .await;
    let three = w.generate(&w.owner, two_end, Utc::now()).await;
    assert_eq!(three["outcome"], "CREATED");
    let payout = &three["payout"];
    assert_eq!(payout["amount"]["amount"], "10.00");
    assert_eq!(payout["commissionsAmount"]["amount"], "20.00");
    assert_eq!(payout["adjustmentsAmount"]["amount"], "-10.00");
    assert_eq!(
        payout["statement"]["lines"],
        json!([
            { "kind": "COMMISSIONS", "count": 1, "amount": { "amount": "20.00" } },
            { "kind": "CARRIED_BALANCE", "count": 1, "amount": { "amount": "-10.00" } },
        ])
    );
    w.check_clean().await;
}

#[tokio::test]
async fn the_bank_file_lists_the_venues_payouts_for_financial_roles_only() {
    let w = world().await;
    let bookings = w
        .app
        .completed_bookings_by(&w.venue, &w.guest, &w.promoter, &[2])
        .await;
    assert_eq!(bookings.len(), 1);
    let from = Utc::now() - Duration::hours(2);
    let made = w.generate(&w.owner, from, Utc::now()).await;
    let id = made["payout"]["id"].as_str().unwrap().to_owned();
    let other = w.app.bookable_venue().await;
    let stranger = w.app.user_with_role(&other, Role::Owner).await;
    let client = reqwest::Client::new();
    let get = |token: Option<&str>, query: String| {
        let mut request = client.get(w.app.url(&format!("/exports/payouts.csv?{query}")));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let venue = format!("venueId={}", w.venue);
    for (token, query, expected) in [
        (None, venue.clone(), 401),
        (Some(w.coordinator.token.as_str()), venue.clone(), 403),
        (Some(stranger.token.as_str()), venue.clone(), 404),
        (
            Some(w.manager.token.as_str()),
            "venueId=nope".to_owned(),
            400,
        ),
        (
            Some(w.manager.token.as_str()),
            format!("{venue}&status=PAID"),
            400,
        ),
    ] {
        let response = get(token, query.clone()).await.unwrap();
        assert_eq!(response.status().as_u16(), expected, "{query}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["errors"][0]["extensions"]["code"].is_string(),
            "{body}"
        );
    }

    let response = get(Some(&w.manager.token), venue.clone()).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let text = response.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("payout_id,status,promoter_id,promoter_name,promoter_email,amount,currency,method,reference,period_from,period_to"));
    assert!(
        lines[1].starts_with(&format!("{id},DRAFT,{},", w.promoter)),
        "{}",
        lines[1]
    );
    assert!(
        lines[1].contains(",5.00,USD,BANK_TRANSFER,"),
        "{}",
        lines[1]
    );

    let approved = get(Some(&w.manager.token), format!("{venue}&status=APPROVED"))
        .await
        .unwrap();
    assert_eq!(
        approved.text().await.unwrap().lines().count(),
        1,
        "the header row only"
    );
}

#[tokio::test]
async fn bad_payout_input_gets_a_typed_error_naming_the_field_and_changes_nothing() {
    let w = world().await;
    let other = w.app.bookable_venue().await;
    let outsider = w.app.promoter(&other).create().await;
    let now = Utc::now();
    let cases = [
        (
            json!({ "promoterId": w.promoter, "venueId": w.venue, "periodFrom": at(now - Duration::hours(1)), "periodTo": at(now - Duration::hours(1)) }),
            "periodTo",
        ),
        (
            json!({ "promoterId": w.promoter, "venueId": w.venue, "periodFrom": at(now - Duration::hours(1)), "periodTo": at(now + Duration::days(1)) }),
            "periodTo",
        ),
        (
            json!({ "promoterId": outsider, "venueId": w.venue, "periodFrom": at(now - Duration::hours(1)), "periodTo": at(now) }),
            "promoterId",
        ),
        (
            json!({ "promoterId": w.promoter, "venueId": w.venue, "periodFrom": at(now - Duration::hours(1)), "periodTo": at(now), "fees": "-1" }),
            "fees",
        ),
    ];
    for (input, field) in cases {
        let answer = w.call(&w.owner, GENERATE, input).await;
        assert_eq!(error_codes(&answer), ["BAD_USER_INPUT"], "{answer}");
        assert_eq!(
            answer["errors"][0]["extensions"]["field"], field,
            "{answer}"
        );
    }
    let count = w
        .app
        .query_ok(
            &w.manager.token,
            "query($v: ID!) { venue(id: $v) { payouts { totalCount } } }",
            json!({ "v": w.venue }),
        )
        .await;
    assert_eq!(count["venue"]["payouts"]["totalCount"], 0);

    // A payout the harness made PENDING_APPROVAL: a hold larger than it, completing it before
    // it is PROCESSING, and its submitter approving it are refused.
    let booking = w.app.booking_by(&w.venue, &w.guest, &w.promoter).await;
    let id = w.app.payout(&w.venue, &w.promoter, &[booking]).await;
    let too_big = w
        .call(
            &w.owner,
            "mutation($input: PlacePayoutHoldInput!) { placePayoutHold(input: $input) { hold { id } } }",
            json!({ "payoutId": id, "amount": "1000.00", "reason": "r" }),
        )
        .await;
    assert_eq!(error_codes(&too_big), ["BAD_USER_INPUT"]);
    assert_eq!(too_big["errors"][0]["extensions"]["field"], "amount");
    let early = w
        .step(
            &w.owner,
            "completePayout",
            json!({ "payoutId": id, "reference": "X" }),
        )
        .await;
    assert_eq!(error_codes(&early), ["CONFLICT"]);
    let back = w
        .step(
            &w.owner,
            "returnPayoutToDraft",
            json!({ "payoutId": id, "reason": "fees" }),
        )
        .await;
    assert_eq!(status(&back, "returnPayoutToDraft"), "DRAFT");
    w.step(&w.owner, "submitPayout", json!({ "payoutId": id }))
        .await;
    let own = w
        .step(&w.owner, "approvePayout", json!({ "payoutId": id }))
        .await;
    assert_eq!(error_codes(&own), ["FORBIDDEN"]);
    let filtered = w
        .app
        .query_ok(
            &w.manager.token,
            "query($v: ID!) { venue(id: $v) { pending: payouts(filter: { statuses: [PENDING_APPROVAL] }) { totalCount }
                                              done: payouts(filter: { statuses: [COMPLETED] }) { totalCount } } }",
            json!({ "v": w.venue }),
        )
        .await;
    assert_eq!(filtered["venue"]["pending"]["totalCount"], 1);
    assert_eq!(filtered["venue"]["done"]["totalCount"], 0);
}
