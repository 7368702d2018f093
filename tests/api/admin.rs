//! The write side, over HTTP as users holding each role at venues the tests build: venues, pricing, access grants, guests,
//! promoters and commission rates. Each mutation is refused with FORBIDDEN for the roles
//! DOMAIN.md "Access" excludes and NOT_FOUND for a venue the caller cannot see; bad input
//! names the field and writes nothing.

use prima_tests::{Pricing, Role, TestApp, error_codes};
use serde_json::{Value, json};

async fn venue_ids(app: &TestApp, token: &str) -> Vec<String> {
    let data = app
        .query_ok(
            token,
            "{ venues(first: 100) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    data["venues"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Runs a mutation and returns the whole response.
async fn mutate(app: &TestApp, token: &str, mutation: &str, input: Value) -> Value {
    app.graphql(Some(token), mutation, json!({ "input": input }))
        .await
}

/// Runs a mutation that must succeed and returns its `data`.
async fn mutate_ok(app: &TestApp, token: &str, mutation: &str, input: Value) -> Value {
    app.query_ok(token, mutation, json!({ "input": input }))
        .await
}

fn assert_bad_input(response: &Value, field: &str) {
    assert_eq!(error_codes(response), ["BAD_USER_INPUT"], "{response}");
    assert_eq!(
        response["errors"][0]["extensions"]["field"], field,
        "{response}"
    );
}

const SET_PRICING: &str = r#"mutation($input: SetVenuePricingInput!) {
    setVenuePricing(input: $input) {
        venue { id currentPricing { id } }
        pricing { id effectiveFrom effectiveTo nonPrimePerDiner { amount currency } primePlatformFeePercent }
        closedPricing { id effectiveTo }
    } }"#;

fn pricing_input(venue: &str) -> Value {
    json!({
        "venueId": venue,
        "nonPrimePerDiner": "27.50",
        "nonPrimePlatformFeePercent": "0.1",
        "primeBaseFor2": "120",
        "primeAdditionalPerPerson": "45.25",
        "primePlatformFeePercent": "0.125",
        "minimumBookingAmount": "30",
        "minimumPartySize": 1,
        "maximumPartySize": 20,
        "groupDiscountPercent": "0.1",
    })
}

const PRICING_OF: &str = r#"query($id: ID!) { venue(id: $id) {
    currentPricing { id }
    pricingHistory(first: 100) { totalCount edges { node { id effectiveFrom effectiveTo } } }
} }"#;

const CREATE_RATE: &str = r#"mutation($input: CreateCommissionRateInput!) {
    createCommissionRate(input: $input) { commissionRate { id value model isActive } } }"#;

const RATES_OF: &str =
    "query($id: ID!) { venue(id: $id) { commissionRates(first: 100) { totalCount } } }";

const CREATE_PROMOTER: &str = r#"mutation($input: CreatePromoterInput!) {
    createPromoter(input: $input) { promoter { id status tier venue { id } } } }"#;

const APPROVE_PROMOTER: &str = r#"mutation($input: ApprovePromoterInput!) {
    approvePromoter(input: $input) { promoter { id status } } }"#;

const CREATE_GUEST: &str = r#"mutation($input: CreateGuestInput!) {
    createGuest(input: $input) { guest { id firstName lastName email contactMasked status } } }"#;

const UPDATE_VENUE: &str = r#"mutation($input: UpdateVenueInput!) {
    updateVenue(input: $input) { venue { id name requireApproval autoConfirmBookings contact { phone } } } }"#;

const CREATE_VENUE: &str = r#"mutation($input: CreateVenueInput!) {
    createVenue(input: $input) { venue { id status timezone currency } } }"#;

const GRANT: &str = r#"mutation($input: GrantVenueAccessInput!) {
    grantVenueAccess(input: $input) { access { role venue { id } } user { email } } }"#;

const REVOKE: &str = r#"mutation($input: RevokeVenueAccessInput!) {
    revokeVenueAccess(input: $input) { access { role } revokedAt } }"#;

const ASSIGN: &str = r#"mutation($input: AssignCommissionRateInput!) {
    assignCommissionRate(input: $input) {
        assignment { id rate model effectiveFrom effectiveTo commissionRate { id } }
        closedAssignment { id effectiveTo }
    } }"#;

fn rate_input(venue: &str, model: &str, value: &str) -> Value {
    json!({ "venueId": venue, "tier": "STANDARD", "model": model, "value": value })
}

fn promoter_input(venue: &str) -> Value {
    json!({
        "venueId": venue,
        "firstName": "Nia",
        "lastName": "Okafor",
        "email": "nia@example.com",
        "socialMedia": { "instagram": "@nia" },
    })
}

fn guest_input(venue: &str) -> Value {
    json!({
        "venueId": venue,
        "firstName": "Jane",
        "lastName": "Johnson",
        "email": "jane.johnson@example.com",
        "phone": "+1 555 0100",
        "dietaryRestrictions": ["vegetarian"],
    })
}

fn venue_input(timezone: &str) -> Value {
    json!({
        "name": "Harbour Room",
        "type": "RESTAURANT",
        "tier": "HIGH_END",
        "addressStreet": "1 Quay St",
        "addressCity": "Boston",
        "addressState": "MA",
        "addressZip": "02110",
        "addressCountry": "US",
        "timezone": timezone,
        "currency": "USD",
        "capacitySeated": 60,
    })
}

async fn user_id(app: &TestApp, token: &str) -> String {
    app.query_ok(token, "{ me { user { id } } }", json!({}))
        .await["me"]["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn setting_venue_pricing_closes_the_current_row_and_keeps_the_history() {
    let app = TestApp::empty().await;
    let venue = app.venue().with_pricing(Pricing::default()).create().await;
    let owner = app.user_with_role(&venue, Role::Owner).await.token;
    let before = app
        .query_ok(&owner, PRICING_OF, json!({ "id": venue }))
        .await;
    let old_id = before["venue"]["currentPricing"]["id"].clone();
    let old_count = before["venue"]["pricingHistory"]["totalCount"]
        .as_u64()
        .unwrap();

    let data = mutate_ok(&app, &owner, SET_PRICING, pricing_input(&venue)).await;
    let payload = &data["setVenuePricing"];
    let new = &payload["pricing"];
    assert_eq!(new["nonPrimePerDiner"]["amount"], "27.50");
    assert_eq!(new["primePlatformFeePercent"], "0.1250");
    assert!(new["effectiveTo"].is_null());
    assert_eq!(payload["closedPricing"]["id"], old_id);
    assert_eq!(
        payload["closedPricing"]["effectiveTo"],
        new["effectiveFrom"]
    );
    assert_eq!(payload["venue"]["currentPricing"]["id"], new["id"]);

    let after = app
        .query_ok(&owner, PRICING_OF, json!({ "id": venue }))
        .await;
    assert_eq!(after["venue"]["currentPricing"]["id"], new["id"]);
    assert_eq!(
        after["venue"]["pricingHistory"]["totalCount"]
            .as_u64()
            .unwrap(),
        old_count + 1,
        "history is kept, not overwritten"
    );
    let rows = after["venue"]["pricingHistory"]["edges"]
        .as_array()
        .unwrap();
    let closed = rows
        .iter()
        .map(|e| &e["node"])
        .find(|row| row["id"] == old_id)
        .expect("the old row is still in the history");
    assert_eq!(closed["effectiveTo"], new["effectiveFrom"]);
    assert_eq!(rows[0]["node"]["id"], new["id"], "newest first");
}

#[tokio::test]
async fn each_mutation_is_forbidden_to_the_roles_the_domain_excludes() {
    let app = TestApp::empty().await;
    let (manager_venue, coordinator_venue, viewer_venue) = (
        app.venue().create().await,
        app.venue().create().await,
        app.venue().create().await,
    );
    let owner = app
        .user_with_role(&coordinator_venue, Role::Owner)
        .await
        .token;
    let manager = app
        .user_with_role(&manager_venue, Role::Manager)
        .await
        .token;
    let coordinator = app
        .user_with_role(&coordinator_venue, Role::Coordinator)
        .await
        .token;
    let viewer = app.user_with_role(&viewer_venue, Role::Viewer).await;
    let (someone, viewer) = (viewer.id, viewer.token);

    let refused: Vec<(&str, &str, &str, Value)> = vec![
        (
            "coordinator sets pricing",
            &coordinator,
            SET_PRICING,
            pricing_input(&coordinator_venue),
        ),
        (
            "coordinator creates a promoter",
            &coordinator,
            CREATE_PROMOTER,
            promoter_input(&coordinator_venue),
        ),
        (
            "coordinator creates a rate",
            &coordinator,
            CREATE_RATE,
            rate_input(&coordinator_venue, "PERCENT_OF_SPEND", "0.1"),
        ),
        (
            "coordinator changes venue settings",
            &coordinator,
            UPDATE_VENUE,
            json!({ "venueId": coordinator_venue, "requireApproval": true }),
        ),
        (
            "viewer registers a guest",
            &viewer,
            CREATE_GUEST,
            guest_input(&viewer_venue),
        ),
        (
            "manager sets pricing",
            &manager,
            SET_PRICING,
            pricing_input(&manager_venue),
        ),
        (
            "manager creates a rate",
            &manager,
            CREATE_RATE,
            rate_input(&manager_venue, "PERCENT_OF_SPEND", "0.1"),
        ),
        (
            "manager grants access",
            &manager,
            GRANT,
            json!({ "venueId": manager_venue, "userId": someone, "role": "COORDINATOR" }),
        ),
        (
            "an owner (not a global admin) creates a venue",
            &owner,
            CREATE_VENUE,
            venue_input("America/New_York"),
        ),
    ];
    for (what, token, mutation, input) in refused {
        let response = mutate(&app, token, mutation, input).await;
        assert_eq!(error_codes(&response), ["FORBIDDEN"], "{what}: {response}");
    }
    let unchanged = app
        .query_ok(
            &coordinator,
            "query($id: ID!) { venue(id: $id) { requireApproval } }",
            json!({ "id": coordinator_venue }),
        )
        .await;
    assert_eq!(unchanged["venue"]["requireApproval"], false);

    // What the same roles may do.
    let data = mutate_ok(
        &app,
        &manager,
        CREATE_PROMOTER,
        promoter_input(&manager_venue),
    )
    .await;
    assert_eq!(
        data["createPromoter"]["promoter"]["status"],
        "PENDING_APPROVAL"
    );
    let data = mutate_ok(
        &app,
        &coordinator,
        CREATE_GUEST,
        guest_input(&coordinator_venue),
    )
    .await;
    assert_eq!(data["createGuest"]["guest"]["status"], "ACTIVE");
}

#[tokio::test]
async fn a_venue_the_caller_cannot_see_is_not_found_for_every_mutation() {
    let app = TestApp::empty().await;
    let (managers_venue, hidden, owners_venue) = (
        app.venue().create().await,
        app.venue().create().await,
        app.venue().create().await,
    );
    let manager = app
        .user_with_role(&managers_venue, Role::Manager)
        .await
        .token;
    let owner = app.user_with_role(&owners_venue, Role::Owner).await.token;
    let mine = venue_ids(&app, &manager).await;
    assert!(!mine.contains(&hidden));
    let promoter = app.promoter(&hidden).pending().create().await;

    let probes: Vec<(&str, &str, Value)> = vec![
        (SET_PRICING, &manager, pricing_input(&hidden)),
        (CREATE_PROMOTER, &manager, promoter_input(&hidden)),
        (CREATE_GUEST, &manager, guest_input(&hidden)),
        (CREATE_RATE, &manager, rate_input(&hidden, "FLAT_RATE", "5")),
        (
            UPDATE_VENUE,
            &manager,
            json!({ "venueId": hidden, "name": "Mine now" }),
        ),
        (
            APPROVE_PROMOTER,
            &manager,
            json!({ "promoterId": promoter }),
        ),
        (
            UPDATE_VENUE,
            &owner,
            json!({ "venueId": uuid::Uuid::new_v4().to_string(), "name": "Nowhere" }),
        ),
    ];
    for (mutation, token, input) in probes {
        let response = mutate(&app, token, mutation, input.clone()).await;
        assert_eq!(error_codes(&response), ["NOT_FOUND"], "{input}: {response}");
    }
    // The owner's venue is not the manager's either.
    assert!(!mine.contains(&owners_venue));
}

#[tokio::test]
async fn bad_input_names_the_field_and_writes_nothing() {
    let app = TestApp::empty().await;
    let admin = app.admin().await.token.clone();
    let venue = app.venue().with_pricing(Pricing::default()).create().await;
    let owner = app.user_with_role(&venue, Role::Owner).await.token;

    let rates = app.query_ok(&owner, RATES_OF, json!({ "id": venue })).await;
    let response = mutate(
        &app,
        &owner,
        CREATE_RATE,
        rate_input(&venue, "PERCENT_OF_SPEND", "-0.05"),
    )
    .await;
    assert_bad_input(&response, "value");
    assert_eq!(
        app.query_ok(&owner, RATES_OF, json!({ "id": venue })).await,
        rates
    );

    let pricing = app
        .query_ok(&owner, PRICING_OF, json!({ "id": venue }))
        .await;
    let mut input = pricing_input(&venue);
    input["minimumPartySize"] = json!(0);
    let response = mutate(&app, &owner, SET_PRICING, input).await;
    assert_bad_input(&response, "minimumPartySize");
    let mut input = pricing_input(&venue);
    input["nonPrimePerDiner"] = json!("10.005");
    let response = mutate(&app, &owner, SET_PRICING, input).await;
    assert_bad_input(&response, "nonPrimePerDiner");
    assert_eq!(
        app.query_ok(&owner, PRICING_OF, json!({ "id": venue }))
            .await,
        pricing
    );

    let count = "{ venues { totalCount } }";
    let venues = app.query_ok(&admin, count, json!({})).await;
    let response = mutate(&app, &admin, CREATE_VENUE, venue_input("Mars/Olympus_Mons")).await;
    assert_bad_input(&response, "timezone");
    assert_eq!(app.query_ok(&admin, count, json!({})).await, venues);

    // The same input with a real time zone works, and the venue starts PENDING.
    let data = mutate_ok(&app, &admin, CREATE_VENUE, venue_input("America/New_York")).await;
    assert_eq!(data["createVenue"]["venue"]["status"], "PENDING");
    assert_eq!(data["createVenue"]["venue"]["timezone"], "America/New_York");
}

#[tokio::test]
async fn approving_a_promoter_twice_is_a_conflict() {
    let app = TestApp::empty().await;
    let venue = app.venue().create().await;
    let manager = app.user_with_role(&venue, Role::Manager).await.token;
    let data = mutate_ok(&app, &manager, CREATE_PROMOTER, promoter_input(&venue)).await;
    let promoter = &data["createPromoter"]["promoter"];
    assert_eq!(promoter["status"], "PENDING_APPROVAL");
    assert_eq!(promoter["tier"], "STANDARD");
    assert_eq!(promoter["venue"]["id"], venue.as_str());
    let input = json!({ "promoterId": promoter["id"] });

    let data = mutate_ok(&app, &manager, APPROVE_PROMOTER, input.clone()).await;
    assert_eq!(data["approvePromoter"]["promoter"]["status"], "ACTIVE");
    let again = mutate(&app, &manager, APPROVE_PROMOTER, input.clone()).await;
    assert_eq!(error_codes(&again), ["CONFLICT"], "{again}");
    assert!(
        again["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("PENDING_APPROVAL"),
        "the message says what was expected: {again}"
    );

    let data = mutate_ok(
        &app,
        &manager,
        r#"mutation($input: SuspendPromoterInput!) {
            suspendPromoter(input: $input) { promoter { status } } }"#,
        input.clone(),
    )
    .await;
    assert_eq!(data["suspendPromoter"]["promoter"]["status"], "SUSPENDED");
    let data = mutate_ok(
        &app,
        &manager,
        r#"mutation($input: SetPromoterTierInput!) {
            setPromoterTier(input: $input) { promoter { tier } } }"#,
        json!({ "promoterId": promoter["id"], "tier": "VIP" }),
    )
    .await;
    assert_eq!(data["setPromoterTier"]["promoter"]["tier"], "VIP");
}

#[tokio::test]
async fn assigning_a_commission_rate_closes_the_previous_assignment() {
    let app = TestApp::empty().await;
    let venue = app.venue().create().await;
    let owner = app.user_with_role(&venue, Role::Owner).await.token;
    let promoter = app.promoter(&venue).create().await;
    let percent = mutate_ok(
        &app,
        &owner,
        CREATE_RATE,
        rate_input(&venue, "PERCENT_OF_SPEND", "0.12"),
    )
    .await["createCommissionRate"]["commissionRate"]["id"]
        .clone();
    let flat = mutate_ok(
        &app,
        &owner,
        CREATE_RATE,
        rate_input(&venue, "FLAT_RATE", "15"),
    )
    .await["createCommissionRate"]["commissionRate"]["id"]
        .clone();

    let first = mutate_ok(
        &app,
        &owner,
        ASSIGN,
        json!({ "promoterId": promoter, "commissionRateId": percent }),
    )
    .await["assignCommissionRate"]
        .clone();
    assert_eq!(first["assignment"]["rate"], "0.1200");
    assert_eq!(first["assignment"]["model"], "PERCENT_OF_SPEND");
    assert!(first["assignment"]["effectiveTo"].is_null());

    let second = mutate_ok(
        &app,
        &owner,
        ASSIGN,
        json!({ "promoterId": promoter, "commissionRateId": flat, "notes": "flat for the summer" }),
    )
    .await["assignCommissionRate"]
        .clone();
    assert_eq!(second["closedAssignment"]["id"], first["assignment"]["id"]);
    assert_eq!(
        second["closedAssignment"]["effectiveTo"],
        second["assignment"]["effectiveFrom"]
    );
    assert_eq!(second["assignment"]["rate"], "15.0000");
    assert_eq!(second["assignment"]["commissionRate"]["id"], flat);

    let history = app
        .query_ok(
            &owner,
            r#"query($id: ID!) { promoter(id: $id) {
                commissionAssignments(first: 100) { edges { node { id effectiveTo } } } } }"#,
            json!({ "id": promoter }),
        )
        .await;
    let open: Vec<&Value> = history["promoter"]["commissionAssignments"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"])
        .filter(|a| a["effectiveTo"].is_null())
        .collect();
    assert_eq!(open.len(), 1, "one open assignment: {history}");
    assert_eq!(open[0]["id"], second["assignment"]["id"]);

    // Deactivated rates cannot be assigned any more.
    let data = mutate_ok(
        &app,
        &owner,
        r#"mutation($input: DeactivateCommissionRateInput!) {
            deactivateCommissionRate(input: $input) { commissionRate { isActive effectiveTo } } }"#,
        json!({ "commissionRateId": percent }),
    )
    .await;
    assert_eq!(
        data["deactivateCommissionRate"]["commissionRate"]["isActive"],
        false
    );
    let response = mutate(
        &app,
        &owner,
        ASSIGN,
        json!({ "promoterId": promoter, "commissionRateId": percent }),
    )
    .await;
    assert_bad_input(&response, "commissionRateId");
}

#[tokio::test]
async fn granting_and_revoking_access_takes_effect_on_the_next_request() {
    let app = TestApp::empty().await;
    let (venue, elsewhere) = (app.venue().create().await, app.venue().create().await);
    // The venue's only owner, and a manager of another venue.
    let owner = app.user_with_role(&venue, Role::Owner).await.token;
    let manager = app.user_with_role(&elsewhere, Role::Manager).await;
    let (manager_email, manager) = (manager.email, manager.token);
    let manager_id = user_id(&app, &manager).await;
    let input = json!({ "venueId": venue, "userId": manager_id });
    let before = venue_ids(&app, &manager).await.len();

    let mut grant = input.clone();
    grant["role"] = json!("COORDINATOR");
    let data = mutate_ok(&app, &owner, GRANT, grant.clone()).await;
    assert_eq!(data["grantVenueAccess"]["access"]["role"], "COORDINATOR");
    assert_eq!(data["grantVenueAccess"]["user"]["email"], manager_email);
    assert_eq!(venue_ids(&app, &manager).await.len(), before + 1);

    let data = mutate_ok(&app, &owner, REVOKE, input.clone()).await;
    assert!(data["revokeVenueAccess"]["revokedAt"].is_string());
    assert_eq!(venue_ids(&app, &manager).await.len(), before);
    let again = mutate(&app, &owner, REVOKE, input.clone()).await;
    assert_eq!(error_codes(&again), ["NOT_FOUND"], "{again}");

    // Re-granting reactivates the revoked grant.
    mutate_ok(&app, &owner, GRANT, grant).await;
    assert_eq!(venue_ids(&app, &manager).await.len(), before + 1);

    // The venue's only owner cannot revoke themselves.
    let owner_id = user_id(&app, &owner).await;
    let response = mutate(
        &app,
        &owner,
        REVOKE,
        json!({ "venueId": venue, "userId": owner_id }),
    )
    .await;
    assert_eq!(error_codes(&response), ["CONFLICT"], "{response}");
}

#[tokio::test]
async fn guests_are_registered_unmasked_and_managed_by_role() {
    let app = TestApp::empty().await;
    let venue = app.venue().with_pricing(Pricing::default()).create().await;
    let coordinator = app.user_with_role(&venue, Role::Coordinator).await.token;
    let owner = app.user_with_role(&venue, Role::Owner).await.token;

    let data = mutate_ok(&app, &coordinator, CREATE_GUEST, guest_input(&venue)).await;
    let guest = &data["createGuest"]["guest"];
    assert_eq!(guest["lastName"], "Johnson");
    assert_eq!(guest["email"], "jane.johnson@example.com");
    assert_eq!(guest["contactMasked"], false);
    // The registering venue makes the guest visible before any booking (masked for a
    // coordinator on later reads, like any guest).
    let read = app
        .query_ok(
            &coordinator,
            "query($id: ID!) { guest(id: $id) { firstName contactMasked } }",
            json!({ "id": guest["id"] }),
        )
        .await;
    assert_eq!(read["guest"]["firstName"], "Jane");
    assert_eq!(read["guest"]["contactMasked"], true);
    let mut bad = guest_input(&venue);
    bad["email"] = json!("jane-at-example");
    assert_bad_input(
        &mutate(&app, &coordinator, CREATE_GUEST, bad).await,
        "email",
    );

    // A guest who booked at the coordinator's venue: preferences yes, status no.
    let booked = app.guest(&venue).await;
    app.booking(&venue, &booked).await;
    let data = mutate_ok(
        &app,
        &coordinator,
        r#"mutation($input: UpdateGuestInput!) {
            updateGuest(input: $input) { guest { seatingPreference contactMasked } } }"#,
        json!({ "guestId": booked, "seatingPreference": "OUTDOOR" }),
    )
    .await;
    assert_eq!(data["updateGuest"]["guest"]["seatingPreference"], "OUTDOOR");
    assert_eq!(data["updateGuest"]["guest"]["contactMasked"], true);
    let status = r#"mutation($input: SetGuestStatusInput!) {
        setGuestStatus(input: $input) { guest { status } } }"#;
    let input = json!({ "guestId": booked, "status": "VIP" });
    let response = mutate(&app, &coordinator, status, input.clone()).await;
    assert_eq!(error_codes(&response), ["FORBIDDEN"], "{response}");
    let data = mutate_ok(&app, &owner, status, input).await;
    assert_eq!(data["setGuestStatus"]["guest"]["status"], "VIP");
}
