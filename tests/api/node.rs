//! Relay's object identification: `node(id:)` and `nodes(ids:)` find any `Node` by its id,
//! through the same access rules as every other read (a hidden object is null), in
//! statements that grow with the types asked for, never with the ids.

use prima_tests::{Role, TestApp, error_codes};
use serde_json::{Value, json};

const NODES: &str = "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }";

#[tokio::test]
async fn nodes_finds_each_object_by_its_id_alone_in_the_order_asked() {
    let app = TestApp::empty().await;
    let venue = app.bookable_venue().await;
    let owner = app.user_with_role(&venue, Role::Owner).await;
    let guest = app.guest(&venue).await;
    let promoter = app.promoter(&venue).create().await;
    let booking = app.booking_by(&venue, &guest, &promoter).await;
    let transaction = app
        .query_ok(
            &owner.token,
            "query($b: ID!) { booking(id: $b) { transactions { id } } }",
            json!({ "b": booking }),
        )
        .await["booking"]["transactions"][0]["id"]
        .as_str()
        .expect("a confirmed booking has ledger rows")
        .to_owned();
    let unknown = uuid::Uuid::new_v4().to_string();
    let ids = [
        &venue,
        &booking,
        &guest,
        &promoter,
        &transaction,
        &owner.id,
        &unknown,
    ];
    let found = app
        .query_ok(&owner.token, NODES, json!({ "ids": ids }))
        .await;
    let expected: Vec<Value> = [
        "Venue",
        "Booking",
        "Guest",
        "Promoter",
        "Transaction",
        "User",
    ]
    .iter()
    .zip(ids)
    .map(|(kind, id)| json!({ "__typename": kind, "id": id }))
    .chain([Value::Null])
    .collect();
    assert_eq!(found["nodes"], Value::Array(expected), "{found}");
    // One object, with its own fields through a fragment.
    let one = app
        .query_ok(
            &owner.token,
            "query($id: ID!) { node(id: $id) { id ... on Booking { status guest { id } } } }",
            json!({ "id": booking }),
        )
        .await;
    assert_eq!(one["node"]["guest"]["id"], guest.as_str(), "{one}");
    // The statements do not grow with the number of ids: 7 ids, then each twice.
    let before = app.statements();
    app.query_ok(&owner.token, NODES, json!({ "ids": ids }))
        .await;
    let for_seven = app.statements() - before;
    let twice: Vec<&String> = ids.iter().chain(&ids).copied().collect();
    let before = app.statements();
    app.query_ok(&owner.token, NODES, json!({ "ids": twice }))
        .await;
    assert_eq!(
        app.statements() - before,
        for_seven,
        "the same statements for 7 and 14 ids"
    );
}

#[tokio::test]
async fn a_hidden_object_is_null_and_a_malformed_id_is_bad_input() {
    let app = TestApp::empty().await;
    let venue = app.bookable_venue().await;
    let elsewhere = app.bookable_venue().await;
    let guest = app.guest(&elsewhere).await;
    let hidden_booking = app.booking(&elsewhere, &guest).await;
    let coordinator = app.user_with_role(&venue, Role::Coordinator).await;
    let promoter = app.promoter(&venue).create().await;
    let found = app
        .query_ok(
            &coordinator.token,
            NODES,
            json!({ "ids": [&elsewhere, &hidden_booking, &promoter, &venue] }),
        )
        .await;
    assert_eq!(
        found["nodes"],
        json!([null, null, null, { "__typename": "Venue", "id": venue }]),
        "another venue's objects, and a promoter below MANAGER, are null: {found}"
    );
    for (query, variables) in [
        (
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": "not-a-uuid" }),
        ),
        (NODES, json!({ "ids": ["not-a-uuid"] })),
    ] {
        let answer = app
            .graphql(Some(&coordinator.token), query, variables)
            .await;
        assert_eq!(error_codes(&answer), ["BAD_USER_INPUT"], "{answer}");
    }
    let too_many: Vec<String> = (0..101).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let answer = app
        .graphql(Some(&coordinator.token), NODES, json!({ "ids": too_many }))
        .await;
    assert!(!error_codes(&answer).is_empty(), "{answer}");
    assert!(answer["data"]["nodes"].is_null(), "{answer}");
}

/// The first node id of a connection at `path` in `answer`.
fn first_id(answer: &Value, path: &[&str]) -> String {
    let mut at = answer;
    for key in path {
        at = &at[*key];
    }
    at["edges"][0]["node"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a row at {path:?}: {answer}"))
        .to_owned()
}

#[tokio::test]
async fn child_records_are_nodes_too_scoped_by_their_parents_and_found_in_two_steps() {
    let app = TestApp::empty().await;
    let venue = app.bookable_venue().await;
    let owner = app.user_with_role(&venue, Role::Owner).await;
    let coordinator = app.user_with_role(&venue, Role::Coordinator).await;
    let guest = app.guest(&venue).await;
    let promoter = app
        .promoter(&venue)
        .with_commission("PERCENT_OF_SPEND", "0.1000")
        .create()
        .await;
    let booking = app.booking_by(&venue, &guest, &promoter).await;
    let payout = app
        .payout(&venue, &promoter, std::slice::from_ref(&booking))
        .await;
    let incentive = app
        .incentive(&venue)
        .with_participant(&promoter, 3)
        .create()
        .await;
    let rows = app
        .query_ok(
            &owner.token,
            "query($v: ID!, $b: ID!, $p: ID!, $pay: ID!, $i: ID!) {
                venue(id: $v) { pricingHistory(first: 1) { edges { node { id } } } }
                booking(id: $b) { history(first: 1) { edges { node { id } } } }
                promoter(id: $p) {
                    commissionAssignments(first: 1) { edges { node { id } } }
                    incentiveProgress(first: 1) { edges { node { id } } } }
                payout(id: $pay) { items(first: 1) { edges { node { id } } } }
                incentive(id: $i) { id } }",
            json!({ "v": venue, "b": booking, "p": promoter, "pay": payout, "i": incentive }),
        )
        .await;
    let children = [
        (
            "VenuePricing",
            first_id(&rows, &["venue", "pricingHistory"]),
        ),
        (
            "BookingHistoryEntry",
            first_id(&rows, &["booking", "history"]),
        ),
        (
            "CommissionAssignment",
            first_id(&rows, &["promoter", "commissionAssignments"]),
        ),
        (
            "IncentiveProgress",
            first_id(&rows, &["promoter", "incentiveProgress"]),
        ),
        ("PayoutItem", first_id(&rows, &["payout", "items"])),
    ];
    let ids: Vec<&str> = children.iter().map(|(_, id)| id.as_str()).collect();
    let expected: Vec<Value> = children
        .iter()
        .map(|(kind, id)| json!({ "__typename": kind, "id": id }))
        .collect();
    let before = app.statements();
    let found = app
        .query_ok(&owner.token, NODES, json!({ "ids": ids }))
        .await;
    assert_eq!(found["nodes"], Value::Array(expected.clone()), "{found}");
    // Which table each id names (one statement), then one statement per type found.
    let for_five_types = app.statements() - before;
    let doubled: Vec<&str> = ids.iter().chain(&ids).copied().collect();
    let before = app.statements();
    app.query_ok(&owner.token, NODES, json!({ "ids": doubled }))
        .await;
    assert_eq!(
        app.statements() - before,
        for_five_types,
        "twice the ids of the same types, the same statements"
    );
    let before = app.statements();
    app.query_ok(&owner.token, NODES, json!({ "ids": [ids[0]] }))
        .await;
    assert_eq!(
        for_five_types - (app.statements() - before),
        4,
        "four types fewer, four statements fewer"
    );
    // Each child's own fields answer through a fragment.
    let item = app
        .query_ok(
            &owner.token,
            "query($id: ID!) { node(id: $id) { ... on PayoutItem { amount { currency } } } }",
            json!({ "id": ids[4] }),
        )
        .await;
    assert!(item["node"]["amount"]["currency"].is_string(), "{item}");
    // A COORDINATOR reads the venue's pricing and the booking's history, not its money.
    let seen = app
        .query_ok(&coordinator.token, NODES, json!({ "ids": ids }))
        .await;
    assert_eq!(
        seen["nodes"],
        json!([expected[0], expected[1], null, null, null]),
        "{seen}"
    );
    // Another venue's owner sees none of them.
    let elsewhere = app.bookable_venue().await;
    let stranger = app.user_with_role(&elsewhere, Role::Owner).await;
    let seen = app
        .query_ok(&stranger.token, NODES, json!({ "ids": ids }))
        .await;
    assert_eq!(
        seen["nodes"],
        json!([null, null, null, null, null]),
        "{seen}"
    );
}
