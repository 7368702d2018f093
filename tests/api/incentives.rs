//! Incentive programmes as a venue manager runs them (DOMAIN.md "Incentives", issue
//! "Incentive programmes end to end"): created as a DRAFT, activated with every eligible
//! promoter, moved by real bookings, paused and resumed, and refused with a typed error
//! when the input or the status is wrong. Driven over HTTP as the dashboard would, with
//! `prima check` clean at the end.

use chrono::{Duration, SecondsFormat, Utc};
use prima_tests::{Role, TestApp, User, error_codes};
use serde_json::{Value, json};

const CREATE: &str = "mutation($input: CreateIncentiveInput!) { createIncentive(input: $input) {
    incentive { id status periodType periodStart periodEnd targetThreshold eligibleTiers } } }";

const BOARD: &str =
    "query($id: ID!) { node(id: $id) { ... on Incentive { status participantCount winnerCount
    leaderboard { edges { node { rank currentValue status promoter { id } } } } } } }";

fn step(mutation: &str) -> String {
    format!(
        "mutation($input: IncentiveStepInput!) {{ {mutation}(input: $input) {{ incentive {{ id status participantCount }} }} }}"
    )
}

struct World {
    app: TestApp,
    venue: String,
    guest: String,
    promoter: String,
    manager: User,
    owner: User,
}

async fn world() -> World {
    let app = TestApp::empty().await;
    let venue = app.bookable_venue().await;
    let guest = app.guest(&venue).await;
    let promoter = app.promoter(&venue).create().await;
    World {
        manager: app.user_with_role(&venue, Role::Manager).await,
        owner: app.user_with_role(&venue, Role::Owner).await,
        app,
        venue,
        guest,
        promoter,
    }
}

impl World {
    async fn call(&self, user: &User, query: &str, input: Value) -> Value {
        self.app
            .graphql(Some(&user.token), query, json!({ "input": input }))
            .await
    }

    /// A CUSTOM BOOKING_COUNT programme from a minute from now for ten days (after the
    /// promoter joined), at least two bookings to win.
    fn rules(&self) -> Value {
        let at = |d: Duration| (Utc::now() + d).to_rfc3339_opts(SecondsFormat::Micros, true);
        json!({ "venueId": self.venue, "name": "Ten-day push", "type": "BOOKING_COUNT",
                "targetThreshold": "2", "targetComparison": "GREATER_EQUAL",
                "rewardType": "FIXED_AMOUNT", "rewardValue": "50", "periodType": "CUSTOM",
                "periodStart": at(Duration::minutes(1)), "periodEnd": at(Duration::days(10)) })
    }

    /// A booking of the promoter two days ahead, CONFIRMED.
    async fn confirmed_booking(&self) {
        let id = self
            .app
            .booking_by(&self.venue, &self.guest, &self.promoter)
            .await;
        let admin = self.app.admin().await.token.clone();
        let status = self
            .app
            .query_ok(
                &admin,
                "query($id: ID!) { booking(id: $id) { status } }",
                json!({ "id": id }),
            )
            .await["booking"]["status"]
            .clone();
        if status == "PENDING" {
            self.app
                .query_ok(
                    &admin,
                    "mutation($input: ConfirmBookingInput!) { confirmBooking(input: $input) { booking { status } } }",
                    json!({ "input": { "bookingId": id } }),
                )
                .await;
        }
    }

    async fn board(&self, id: &str) -> Value {
        self.app
            .query_ok(&self.manager.token, BOARD, json!({ "id": id }))
            .await["node"]
            .clone()
    }
}

#[tokio::test]
async fn a_manager_runs_a_programme_that_real_bookings_move_and_a_pause_holds() {
    let w = world().await;
    let created = w.call(&w.manager, CREATE, w.rules()).await;
    let incentive = &created["data"]["createIncentive"]["incentive"];
    assert_eq!(incentive["status"], "DRAFT", "{created}");
    assert_eq!(incentive["targetThreshold"], "2.00");
    assert_eq!(
        incentive["eligibleTiers"],
        json!(["STANDARD", "PREMIUM", "VIP"])
    );
    let id = incentive["id"].as_str().unwrap().to_owned();

    let activated = w
        .call(
            &w.manager,
            &step("activateIncentive"),
            json!({ "incentiveId": id }),
        )
        .await;
    let program = &activated["data"]["activateIncentive"]["incentive"];
    assert_eq!(program["status"], "ACTIVE", "{activated}");
    assert_eq!(program["participantCount"], 1);
    let again = w
        .call(
            &w.manager,
            &step("activateIncentive"),
            json!({ "incentiveId": id }),
        )
        .await;
    assert_eq!(error_codes(&again), ["CONFLICT"], "{again}");

    // A confirmed booking of the promoter in the period moves their progress.
    w.confirmed_booking().await;
    let board = w.board(&id).await;
    let first = &board["leaderboard"]["edges"][0]["node"];
    assert_eq!(first["promoter"]["id"], w.promoter.as_str());
    assert_eq!(
        (first["rank"].clone(), first["currentValue"].clone()),
        (json!(1), json!("1.00"))
    );

    // Paused, it holds still; resumed, it catches up and the promoter has won.
    let paused = w
        .call(
            &w.manager,
            &step("pauseIncentive"),
            json!({ "incentiveId": id }),
        )
        .await;
    assert_eq!(
        paused["data"]["pauseIncentive"]["incentive"]["status"],
        "PAUSED"
    );
    w.confirmed_booking().await;
    assert_eq!(
        w.board(&id).await["leaderboard"]["edges"][0]["node"]["currentValue"],
        "1.00"
    );
    let resumed = w
        .call(
            &w.manager,
            &step("resumeIncentive"),
            json!({ "incentiveId": id }),
        )
        .await;
    assert_eq!(
        resumed["data"]["resumeIncentive"]["incentive"]["status"],
        "ACTIVE"
    );
    let board = w.board(&id).await;
    let first = &board["leaderboard"]["edges"][0]["node"];
    assert_eq!(first["currentValue"], "2.00");
    assert_eq!(first["status"], "ACHIEVED");
    assert_eq!(board["winnerCount"], 1);
    let standing = w
        .app
        .query_ok(
            &w.manager.token,
            "query($id: ID!, $p: ID!) { node(id: $id) { ... on Incentive {
                standing(promoterId: $p) { rank gapToNextRank participants progress { currentValue } } } } }",
            json!({ "id": id, "p": w.promoter }),
        )
        .await;
    assert_eq!(
        standing["node"]["standing"],
        json!({ "rank": 1, "gapToNextRank": null, "participants": 1,
                "progress": { "currentValue": "2.00" } })
    );

    // An active programme's rules are fixed.
    let edit = w
        .call(
            &w.manager,
            "mutation($input: UpdateIncentiveInput!) { updateIncentive(input: $input) { incentive { id } } }",
            json!({ "incentiveId": id, "targetThreshold": "5" }),
        )
        .await;
    assert_eq!(error_codes(&edit), ["CONFLICT"], "{edit}");

    // Finalising: ADMIN or OWNER, before the end only with `early`, once.
    const FINALIZE: &str =
        "mutation($input: FinalizeIncentiveInput!) { finalizeIncentive(input: $input) {
        incentive { status winnerCount finalizedAt } nextIncentive { id } } }";
    let by_manager = w
        .call(
            &w.manager,
            FINALIZE,
            json!({ "incentiveId": id, "early": true }),
        )
        .await;
    assert_eq!(error_codes(&by_manager), ["FORBIDDEN"], "{by_manager}");
    let too_soon = w
        .call(&w.owner, FINALIZE, json!({ "incentiveId": id }))
        .await;
    assert_eq!(error_codes(&too_soon), ["BAD_USER_INPUT"], "{too_soon}");
    assert_eq!(too_soon["errors"][0]["extensions"]["field"], "early");
    let done = w
        .call(
            &w.owner,
            FINALIZE,
            json!({ "incentiveId": id, "early": true }),
        )
        .await;
    let finished = &done["data"]["finalizeIncentive"];
    assert_eq!(finished["incentive"]["status"], "COMPLETED", "{done}");
    assert_eq!(finished["incentive"]["winnerCount"], 1);
    assert!(finished["incentive"]["finalizedAt"].is_string());
    assert!(finished["nextIncentive"].is_null());
    let twice = w
        .call(
            &w.owner,
            FINALIZE,
            json!({ "incentiveId": id, "early": true }),
        )
        .await;
    assert_eq!(error_codes(&twice), ["CONFLICT"], "{twice}");

    let report = prima_service::check::run(&w.app.db.db.conn, None)
        .await
        .expect("running prima check");
    assert!(
        report.discrepancies.is_empty(),
        "{:#?}",
        report.discrepancies
    );
}

#[tokio::test]
async fn bad_programme_input_gets_a_typed_error_and_creates_nothing() {
    let w = world().await;
    let coordinator = w.app.user_with_role(&w.venue, Role::Coordinator).await;
    let forbidden = w.call(&coordinator, CREATE, w.rules()).await;
    assert_eq!(error_codes(&forbidden), ["FORBIDDEN"], "{forbidden}");
    let with = |field: &str, value: Value| {
        let mut rules = w.rules();
        rules[field] = value;
        rules
    };
    let cases = [
        (with("targetThreshold", json!("0")), "targetThreshold"),
        (with("targetThreshold", json!("-3")), "targetThreshold"),
        (
            with("periodEnd", json!("2020-01-01T00:00:00Z")),
            "periodEnd",
        ),
        (with("periodType", json!("WEEKLY")), "periodStart"),
        (with("rewardType", json!("TIER_UPGRADE")), "rewardValue"),
        (with("eligibleTiers", json!([])), "eligibleTiers"),
    ];
    for (input, field) in cases {
        let answer = w.call(&w.manager, CREATE, input).await;
        assert_eq!(
            error_codes(&answer),
            ["BAD_USER_INPUT"],
            "{field}: {answer}"
        );
        assert_eq!(
            answer["errors"][0]["extensions"]["field"], field,
            "{answer}"
        );
    }
    // An unknown tier is refused by the schema before any work.
    let answer = w
        .call(&w.manager, CREATE, with("eligibleTiers", json!(["GOLD"])))
        .await;
    assert!(answer["errors"].is_array(), "{answer}");
    let listed = w
        .app
        .query_ok(
            &w.manager.token,
            "query($id: ID!) { venue(id: $id) { incentives { totalCount } } }",
            json!({ "id": w.venue }),
        )
        .await;
    assert_eq!(listed["venue"]["incentives"]["totalCount"], 0, "{listed}");
}

#[tokio::test]
async fn twenty_leaderboard_subscribers_share_one_read_per_push_and_end_on_the_final_standings() {
    let w = world().await;
    let mut rules = w.rules();
    rules["targetThreshold"] = json!("100");
    let created = w.call(&w.manager, CREATE, rules).await;
    let id = created["data"]["createIncentive"]["incentive"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let activated = w
        .call(
            &w.manager,
            &step("activateIncentive"),
            json!({ "incentiveId": id }),
        )
        .await;
    assert_eq!(
        activated["data"]["activateIncentive"]["incentive"]["status"],
        "ACTIVE"
    );

    const BOARD_FEED: &str =
        "subscription($id: ID!) { incentiveLeaderboard(incentiveId: $id, top: 3) {
        cursor entries { rank currentValue promoter { id } } } }";
    let mut boards = Vec::new();
    for _ in 0..20 {
        let mut ws = w.app.ws(Some(&w.manager.token)).await;
        assert_eq!(ws.next_json().await["type"], "connection_ack");
        ws.subscribe("b", BOARD_FEED, json!({ "id": id })).await;
        let first = ws.next_json().await;
        assert_eq!(
            first["payload"]["data"]["incentiveLeaderboard"]["entries"][0]["currentValue"], "0.00",
            "{first}"
        );
        boards.push(ws);
    }
    w.app.subscribers_at_least(20).await;
    let metrics = w.app.url("/metrics");
    let reads = prima_tests::gauge(&metrics, "prima_leaderboard_reads_total").await;
    assert_eq!(prima_tests::gauge(&metrics, "prima_leaderboards").await, 1);

    let bookings = 6;
    for _ in 0..bookings {
        w.confirmed_booking().await;
    }
    let last = format!("{bookings}.00");
    let mut most_pushes = 0;
    for ws in &mut boards {
        let mut pushes = 0;
        loop {
            let frame = ws.next_json().await;
            pushes += 1;
            let value =
                &frame["payload"]["data"]["incentiveLeaderboard"]["entries"][0]["currentValue"];
            if *value == last.as_str() {
                // The promoter comes with the shared standings, seen with this caller's rights.
                let entry = &frame["payload"]["data"]["incentiveLeaderboard"]["entries"][0];
                assert_eq!(entry["promoter"]["id"], w.promoter.as_str(), "{frame}");
                break;
            }
        }
        most_pushes = most_pushes.max(pushes);
    }
    let spent = prima_tests::gauge(&metrics, "prima_leaderboard_reads_total").await - reads;
    // One read per push for all twenty, never one per subscriber.
    assert!(
        spent >= 1 && spent <= bookings,
        "{spent} reads for {most_pushes} pushes"
    );
    assert!(most_pushes <= bookings, "{most_pushes} pushes");

    // The last subscriber to leave stops the programme's board.
    for ws in boards {
        ws.close().await;
    }
    prima_tests::eventually(
        "the board to stop",
        std::time::Duration::from_secs(10),
        async || (prima_tests::gauge(&metrics, "prima_leaderboards").await == 0).then_some(()),
    )
    .await;
}
