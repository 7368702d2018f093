//! DOMAIN.md "Access": a venue the caller cannot see is indistinguishable from one that does
//! not exist, on every path; contact data is masked for COORDINATOR and VIEWER. Each test
//! builds the venues, the users holding each role there and the rows it reaches for.

use prima_tests::{Pricing, Role, TestApp, error_codes};
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

/// The ids, sorted.
fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

/// A venue with financial rows of every kind: it confirms bookings at creation and has
/// prices, a promoter on a FLAT_RATE commission who brought two bookings (of two guests),
/// the payout of their commissions and an incentive programme the promoter takes part in.
/// `(venue, promoter, guests)`.
async fn financial_venue(app: &TestApp) -> (String, String, Vec<String>) {
    let venue = app.bookable_venue().await;
    let promoter = app
        .promoter(&venue)
        .with_commission("FLAT_RATE", "15")
        .create()
        .await;
    let guests = vec![app.guest(&venue).await, app.guest(&venue).await];
    let mut bookings = Vec::new();
    for guest in &guests {
        bookings.push(app.booking_by(&venue, guest, &promoter).await);
    }
    app.payout(&venue, &promoter, &bookings).await;
    app.incentive(&venue)
        .with_participant(&promoter, 2)
        .create()
        .await;
    (venue, promoter, guests)
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
    let app = TestApp::empty().await;
    let mut venues = Vec::new();
    for _ in 0..4 {
        venues.push(app.venue().create().await);
    }
    // The owner owns every venue but the last; the others hold one row each.
    let owner = app.user_with_role(&venues[0], Role::Owner).await;
    for venue in &venues[1..3] {
        app.grant(&owner, venue, Role::Owner).await;
    }
    let manager = app.user_with_role(&venues[3], Role::Manager).await;
    let coordinator = app.user_with_role(&venues[0], Role::Coordinator).await;
    let viewer = app.user_with_role(&venues[1], Role::Viewer).await;
    let revoked = app.user_with_role(&venues[2], Role::Coordinator).await;
    app.revoke(&revoked, &venues[2]).await;

    let all = venue_ids(&app, &app.admin().await.token).await;
    assert_eq!(sorted(all.clone()), sorted(venues.clone()));
    let owned = venue_ids(&app, &owner.token).await;
    assert_eq!(
        owned.len(),
        all.len() - 1,
        "the owner owns every venue but one"
    );
    assert_eq!(sorted(owned), sorted(venues[..3].to_vec()));
    for (user, venue) in [
        (&manager, &venues[3]),
        (&coordinator, &venues[0]),
        (&viewer, &venues[1]),
    ] {
        let seen = venue_ids(&app, &user.token).await;
        assert_eq!(
            seen,
            std::slice::from_ref(venue),
            "{} has access to exactly one venue",
            user.email
        );
    }
    let revoked = venue_ids(&app, &app.login(&revoked.email).await).await;
    assert!(
        revoked.is_empty(),
        "revoked access shows nothing: {revoked:?}"
    );
}

#[tokio::test]
async fn a_venue_without_access_is_not_found_through_every_path() {
    let app = TestApp::empty().await;
    let admin = app.admin().await.token.clone();
    let (own, _, _) = financial_venue(&app).await;
    let manager = app.user_with_role(&own, Role::Manager).await.token;
    // A venue with a row of every kind, none of them the manager's.
    financial_venue(&app).await;
    let visible = venue_ids(&app, &manager).await;
    assert_eq!(visible, [own]);
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
        for (what, list) in [
            ("booking", "bookings"),
            ("promoter", "promoters"),
            ("payout", "payouts"),
            ("incentive", "incentives"),
        ] {
            let id = first_id(&things, list)
                .unwrap_or_else(|| panic!("the hidden venue has a {what}: {things}"));
            probes.push((
                what,
                format!("query($id: ID!) {{ {what}(id: $id) {{ id }} }}"),
                id,
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
    let app = TestApp::empty().await;
    let admin = app.admin().await.token.clone();
    let (own, _, own_guests) = financial_venue(&app).await;
    let manager = app.user_with_role(&own, Role::Manager).await.token;
    let (other, other_promoter, other_guests) = financial_venue(&app).await;
    // Guests who booked at both venues: the manager's guest also booked the other venue
    // (with its promoter), the other venue's guest also booked the manager's.
    app.booking_by(&other, &own_guests[0], &other_promoter)
        .await;
    app.booking(&own, &other_guests[0]).await;
    let visible = venue_ids(&app, &manager).await;
    assert_eq!(visible, [own]);
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
    let app = TestApp::empty().await;
    let venue = app.venue().with_pricing(Pricing::default()).create().await;
    let guests = [app.guest(&venue).await, app.guest(&venue).await];
    for guest in &guests {
        app.booking(&venue, guest).await;
    }
    for (role, masked) in [
        (Role::Coordinator, true),
        (Role::Viewer, true),
        (Role::Manager, false),
    ] {
        let user = app.user_with_role(&venue, role).await;
        let (email, token) = (user.email, user.token);
        assert_eq!(venue_ids(&app, &token).await, std::slice::from_ref(&venue));
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
        let bookings = data["venue"]["bookings"]["edges"].as_array().unwrap();
        assert!(!bookings.is_empty(), "{email} sees bookings");
        for booking in bookings {
            assert_eq!(booking["node"]["guest"]["contactMasked"], masked);
        }
    }
}

#[tokio::test]
async fn a_coordinator_gets_forbidden_for_financial_lists_of_their_own_venue() {
    let app = TestApp::empty().await;
    let (venue, _, _) = financial_venue(&app).await;
    let token = app.user_with_role(&venue, Role::Coordinator).await.token;
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
    let app = TestApp::empty().await;
    let (own, _, _) = financial_venue(&app).await;
    let manager = app.user_with_role(&own, Role::Manager).await.token;
    // Another venue with the same rows, which no path may reach.
    financial_venue(&app).await;
    let visible = venue_ids(&app, &manager).await;
    assert_eq!(visible, [own]);
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
