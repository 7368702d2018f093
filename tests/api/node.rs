//! Relay's object identification: `node(id:)` and `nodes(ids:)` find any `Node` by its id,
//! through the same access rules as every other read (a hidden object is null), in one
//! round of statements however many ids are asked for.

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
    // The statements do not grow with the number of ids: one round, one per type.
    let before = app.statements();
    app.query_ok(&owner.token, NODES, json!({ "ids": [&venue] }))
        .await;
    let for_one = app.statements() - before;
    let before = app.statements();
    app.query_ok(&owner.token, NODES, json!({ "ids": ids }))
        .await;
    assert_eq!(
        app.statements() - before,
        for_one,
        "the same statements for 1 and 7 ids"
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
