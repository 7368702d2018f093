//! Response fields come in the order of the selection set (the spec's serialized map
//! ordering), whatever order async-graphql's concurrent resolvers finish in: a field that
//! reads the database (`bookings`) between two that do not used to come last.

use prima_tests::{Pricing, Role, TestApp};
use serde_json::json;

/// The response keys of every object on the path, in the order the server wrote them
/// (async-graphql's `Value` keeps the text's order; serde_json's map would sort them).
fn keys_at(value: &async_graphql::Value, path: &[&str]) -> Vec<String> {
    let mut value = value;
    for step in path {
        value = match value {
            async_graphql::Value::Object(map) => &map[*step],
            async_graphql::Value::List(items) => match step.parse::<usize>() {
                Ok(at) => &items[at],
                Err(_) => panic!("{step} on a list"),
            },
            other => panic!("{step} on {other}"),
        };
    }
    match value {
        async_graphql::Value::Object(map) => map.keys().map(|key| key.to_string()).collect(),
        other => panic!("not an object at {path:?}: {other}"),
    }
}

#[tokio::test]
async fn fields_come_in_selection_order_at_every_depth_with_aliases_and_fragments() {
    let app = TestApp::empty().await;
    let venue = app
        .venue()
        .named("Ordered")
        .with_pricing(Pricing::default())
        .create()
        .await;
    let guest = app.guest(&venue).await;
    app.booking(&venue, &guest).await;
    let owner = app.user_with_role(&venue, Role::Owner).await;
    let query = "query {
      z: me { user { b: email a: id } }
      y: venues(first: 5) { nodes {
        c: name
        b: bookings(first: 5) { totalCount nodes { z: id ...G a: status } }
        a: id
      } }
      a: __typename
    }
    fragment G on Booking { guest { b: lastName a: firstName } y: diners }";
    let text = reqwest::Client::new()
        .post(app.url("/graphql"))
        .bearer_auth(&owner.token)
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let answer: async_graphql::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(keys_at(&answer, &[]), ["data", "extensions"], "{text}");
    assert_eq!(keys_at(&answer, &["data"]), ["z", "y", "a"], "{text}");
    assert_eq!(keys_at(&answer, &["data", "z", "user"]), ["b", "a"]);
    let venue = ["data", "y", "nodes", "0"];
    assert_eq!(keys_at(&answer, &venue), ["c", "b", "a"], "{text}");
    let booking = ["data", "y", "nodes", "0", "b", "nodes", "0"];
    assert_eq!(
        keys_at(&answer, &booking),
        ["z", "guest", "y", "a"],
        "{text}"
    );
    let guest = ["data", "y", "nodes", "0", "b", "nodes", "0", "guest"];
    assert_eq!(keys_at(&answer, &guest), ["b", "a"], "{text}");
}
