//! DOMAIN.md "Access": a venue the caller cannot see is indistinguishable from one that does
//! not exist, on every path; contact data is masked for COORDINATOR and VIEWER.

use prima_tests::{TestApp, error_codes};
use serde_json::{Value, json};

const VENUES: &str = "{ venues(first: 100) { totalCount edges { node { id name } } } }";

async fn venue_ids(app: &TestApp, token: &str) -> Vec<String> {
    let data = app.query_ok(token, VENUES, json!({})).await;
    let edges = data["venues"]["edges"].as_array().unwrap();
    assert_eq!(
        data["venues"]["totalCount"].as_u64().unwrap() as usize,
        edges.len()
    );
    edges
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap().to_owned())
        .collect()
}

/// For one venue (as an admin): one booking, its guest, and ids of its promoter, payout
/// and incentive when it has them.
async fn things_of(app: &TestApp, admin: &str, venue: &str) -> Value {
    app.query_ok(
        admin,
        r#"query($id: ID!) { venue(id: $id) {
            bookings(first: 1) { edges { node { id guest { id } } } }
            promoters(first: 1) { edges { node { id } } }
            payouts(first: 1) { edges { node { id } } }
            incentives(first: 1) { edges { node { id } } }
        } }"#,
        json!({ "id": venue }),
    )
    .await
}

fn first_id(things: &Value, list: &str) -> Option<String> {
    things["venue"][list]["edges"][0]["node"]["id"]
        .as_str()
        .map(str::to_owned)
}

#[tokio::test]
async fn each_staff_user_sees_exactly_the_venues_granted_to_them() {
    let app = TestApp::demo(200).await;
    let all = venue_ids(&app, &app.login("admin@prima.demo").await).await;
    let owned = venue_ids(&app, &app.login("owner@prima.demo").await).await;
    assert_eq!(
        owned.len(),
        all.len() - 1,
        "the owner owns every demo venue but one"
    );
    for email in [
        "manager@prima.demo",
        "coordinator@prima.demo",
        "viewer@prima.demo",
    ] {
        let seen = venue_ids(&app, &app.login(email).await).await;
        assert_eq!(seen.len(), 1, "{email} has access to exactly one venue");
    }
    let revoked = venue_ids(&app, &app.login("revoked@prima.demo").await).await;
    assert!(
        revoked.is_empty(),
        "revoked access shows nothing: {revoked:?}"
    );
}

#[tokio::test]
async fn a_venue_without_access_is_not_found_through_every_path() {
    let app = TestApp::demo(300).await;
    let admin = app.login("admin@prima.demo").await;
    let manager = app.login("manager@prima.demo").await;
    let visible = venue_ids(&app, &manager).await;
    let hidden: Vec<String> = venue_ids(&app, &admin)
        .await
        .into_iter()
        .filter(|id| !visible.contains(id))
        .collect();
    assert!(!hidden.is_empty());
    for venue in &hidden {
        let things = things_of(&app, &admin, venue).await;
        let mut probes = vec![(
            "venue",
            "query($id: ID!) { venue(id: $id) { id } }".to_owned(),
            venue.clone(),
        )];
        if let Some(booking) = first_id(&things, "bookings") {
            probes.push((
                "booking",
                "query($id: ID!) { booking(id: $id) { id } }".into(),
                booking,
            ));
        }
        if let Some(promoter) = first_id(&things, "promoters") {
            probes.push((
                "promoter",
                "query($id: ID!) { promoter(id: $id) { id } }".into(),
                promoter,
            ));
        }
        if let Some(payout) = first_id(&things, "payouts") {
            probes.push((
                "payout",
                "query($id: ID!) { payout(id: $id) { id } }".into(),
                payout,
            ));
        }
        if let Some(incentive) = first_id(&things, "incentives") {
            probes.push((
                "incentive",
                "query($id: ID!) { incentive(id: $id) { id } }".into(),
                incentive,
            ));
        }
        for (what, query, id) in probes {
            let response = app
                .graphql(Some(&manager), &query, json!({ "id": id }))
                .await;
            assert_eq!(
                error_codes(&response),
                ["NOT_FOUND"],
                "{what} {id}: {response}"
            );
            // The same answer as for an id that never existed.
            let missing = app
                .graphql(
                    Some(&manager),
                    &query,
                    json!({ "id": uuid::Uuid::new_v4().to_string() }),
                )
                .await;
            assert_eq!(
                response["errors"][0]["message"],
                missing["errors"][0]["message"]
            );
        }
    }
}

#[tokio::test]
async fn nested_lists_never_reach_into_a_hidden_venue() {
    let app = TestApp::demo(300).await;
    let admin = app.login("admin@prima.demo").await;
    let manager = app.login("manager@prima.demo").await;
    let visible = venue_ids(&app, &manager).await;
    // Every booking reachable from the manager's graph belongs to the visible venue, even
    // through guests and promoters who also booked elsewhere.
    let data = app
        .query_ok(
            &manager,
            r#"{ venues(first: 10) { edges { node { id
                bookings(first: 20) { edges { node { venue { id }
                    guest { bookings(first: 10) { edges { node { venue { id } } } } }
                    promoter { bookings(first: 10) { edges { node { venue { id } } } } }
                    transactions { venue { id } }
                } } }
                guests(first: 20) { edges { node { bookings(first: 10) { edges { node { venue { id } } } } } } }
            } } } }"#,
            json!({}),
        )
        .await;
    let mut seen = Vec::new();
    collect_venue_ids(&data, &mut seen);
    assert!(!seen.is_empty());
    for id in seen {
        assert!(
            visible.contains(&id),
            "reached venue {id} through a nested path"
        );
    }
    // And the admin does see more than that through the same query.
    let all = venue_ids(&app, &admin).await;
    assert!(all.len() > visible.len());
}

fn collect_venue_ids(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if key == "venue"
                    && let Some(id) = child["id"].as_str()
                {
                    out.push(id.to_owned());
                }
                collect_venue_ids(child, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_venue_ids(item, out)),
        _ => {}
    }
}

const GUESTS: &str = r#"query($id: ID!) { venue(id: $id) {
    guests(first: 20) { edges { node { firstName lastName email contactMasked } } }
    bookings(first: 5) { edges { node { guest { lastName email contactMasked } } } }
} }"#;

#[tokio::test]
async fn guest_contact_data_is_masked_for_coordinators_and_viewers_only() {
    let app = TestApp::demo(300).await;
    for (email, masked) in [
        ("coordinator@prima.demo", true),
        ("viewer@prima.demo", true),
        ("manager@prima.demo", false),
    ] {
        let token = app.login(email).await;
        let venue = venue_ids(&app, &token).await.remove(0);
        let data = app.query_ok(&token, GUESTS, json!({ "id": venue })).await;
        let guests = data["venue"]["guests"]["edges"].as_array().unwrap();
        assert!(!guests.is_empty(), "{email} sees guests");
        for guest in guests.iter().map(|e| &e["node"]) {
            let last = guest["lastName"].as_str().unwrap();
            let mail = guest["email"].as_str().unwrap();
            assert_eq!(guest["contactMasked"], masked, "{email}: {guest}");
            if masked {
                assert!(
                    last.ends_with("***") && last.chars().count() == 4,
                    "{email}: {last}"
                );
                assert!(mail.contains("***@"), "{email}: {mail}");
            } else {
                assert!(
                    !last.contains("***") && !mail.contains("***"),
                    "{email}: {guest}"
                );
            }
        }
        for booking in data["venue"]["bookings"]["edges"].as_array().unwrap() {
            assert_eq!(booking["node"]["guest"]["contactMasked"], masked);
        }
    }
}

#[tokio::test]
async fn a_coordinator_gets_forbidden_for_financial_lists_of_their_own_venue() {
    let app = TestApp::demo(200).await;
    let token = app.login("coordinator@prima.demo").await;
    let venue = venue_ids(&app, &token).await.remove(0);
    for list in ["promoters", "payouts", "incentives", "commissionRates"] {
        let query = format!(
            "query($id: ID!) {{ venue(id: $id) {{ name {list}(first: 5) {{ totalCount }} }} }}"
        );
        let response = app
            .graphql(Some(&token), &query, json!({ "id": venue }))
            .await;
        assert_eq!(error_codes(&response), ["FORBIDDEN"], "{list}: {response}");
        assert!(
            response["data"]["venue"]["name"].is_string(),
            "the venue itself stays readable"
        );
    }
}

#[tokio::test]
async fn financial_paths_of_a_manager_stay_inside_their_venue() {
    let app = TestApp::demo(400).await;
    let manager = app.login("manager@prima.demo").await;
    let visible = venue_ids(&app, &manager).await;
    let data = app
        .query_ok(
            &manager,
            r#"{ venues(first: 5) { edges { node {
                promoters(first: 10) { edges { node { venue { id }
                    bookings(first: 10) { edges { node { venue { id } } } }
                    payouts(first: 5) { edges { node { venue { id } items { nodes { transaction { venue { id } } } } } } }
                    incentiveProgress(first: 5) { edges { node { incentive { venue { id } } } } }
                    commissionAssignments(first: 5) { edges { node { commissionRate { venue { id } } } } }
                } } }
                payouts(first: 10) { edges { node { venue { id } promoter { venue { id } }
                    items { nodes { transaction { venue { id } booking { venue { id } } } } } } } }
                incentives(first: 5) { edges { node { venue { id }
                    leaderboard(first: 10) { edges { node { rank promoter { venue { id } } } } } } } }
                commissionRates(first: 10) { edges { node { venue { id } } } }
            } } } }"#,
            json!({}),
        )
        .await;
    let mut seen = Vec::new();
    collect_venue_ids(&data, &mut seen);
    assert!(
        seen.len() > 10,
        "the manager's venue has financial data: {data}"
    );
    for id in seen {
        assert!(
            visible.contains(&id),
            "reached venue {id} through a financial path"
        );
    }
}
