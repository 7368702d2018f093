//! Persisted documents: Apollo's automatic persisted queries (by hash, asked for once,
//! shared by replicas through Redis), Apollo Client 4 itself using them over batched HTTP,
//! and the trusted-documents mode that runs a manifest's documents and nothing else.

use std::time::Duration;

use prima_server::config::ServeArgs;
use prima_server::persisted::sha256;
use prima_tests::{Role, TestApp};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A document no other test sends (APQ keeps documents by content, in one shared Redis).
fn new_document() -> String {
    format!(
        "query Fresh_{} {{ __typename }}",
        uuid::Uuid::new_v4().simple()
    )
}

fn by_hash(hash: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
}

async fn post(url: &str, body: Value) -> Value {
    let answer = reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    answer.json().await.unwrap()
}

fn code(answer: &Value) -> &str {
    answer["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("")
}

#[tokio::test]
async fn a_hash_is_asked_for_once_then_answered_by_every_replica() {
    let app = TestApp::empty().await;
    let url = app.url("/graphql");
    let document = new_document();
    let hash = sha256(&document);
    let unknown = post(&url, json!({ "extensions": by_hash(&hash) })).await;
    assert_eq!(
        unknown["errors"][0]["message"], "PersistedQueryNotFound",
        "{unknown}"
    );
    assert_eq!(code(&unknown), "PERSISTED_QUERY_NOT_FOUND");
    let sent = post(
        &url,
        json!({ "query": document, "extensions": by_hash(&hash) }),
    )
    .await;
    assert_eq!(sent["data"]["__typename"], "Query", "{sent}");
    let known = post(&url, json!({ "extensions": by_hash(&hash) })).await;
    assert_eq!(known["data"]["__typename"], "Query", "{known}");
    // As Apollo's `useGETForHashedQueries` sends it.
    let get: Value = reqwest::Client::new()
        .get(&url)
        .query(&[("extensions", by_hash(&hash).to_string())])
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(get["data"]["__typename"], "Query", "{get}");
    // A document under another's hash is refused, and a document that does not validate
    // is never kept.
    let wrong = post(
        &url,
        json!({ "query": "{ me { user { id } } }", "extensions": by_hash(&hash) }),
    )
    .await;
    assert_eq!(code(&wrong), "BAD_REQUEST", "{wrong}");
    let invalid = format!("{{ noSuchField_{} }}", uuid::Uuid::new_v4().simple());
    let invalid_hash = sha256(&invalid);
    post(
        &url,
        json!({ "query": invalid, "extensions": by_hash(&invalid_hash) }),
    )
    .await;
    let again = post(&url, json!({ "extensions": by_hash(&invalid_hash) })).await;
    assert_eq!(code(&again), "PERSISTED_QUERY_NOT_FOUND", "{again}");
    // With Redis, every replica knows what one learnt.
    if app.args.redis_url.is_some() {
        let replica = app.replica().await;
        let answer = post(
            &format!("http://{}/graphql", replica.addr),
            json!({ "extensions": by_hash(&hash) }),
        )
        .await;
        assert_eq!(answer["data"]["__typename"], "Query", "{answer}");
        replica.stop().await;
    }
}

#[tokio::test]
async fn apollo_client_persists_its_queries_over_batched_http() {
    prima_tests::node::ready().await;
    let app = TestApp::empty().await;
    let venue = app.venue().create().await;
    let user = app.user_with_role(&venue, Role::Manager).await;
    let seen = prima_tests::node::run_json(
        "apollo.mjs",
        &[&app.url("/graphql"), &user.token],
        Duration::from_secs(30),
    )
    .await;
    eprintln!("Apollo Client: {seen}");
    let email = json!({ "me": { "__typename": "Viewer", "user": { "__typename": "User", "email": user.email } } });
    assert_eq!(seen["answers"][0], email, "{seen}");
    assert_eq!(seen["answers"][1]["__typename"], "Query", "{seen}");
    assert_eq!(seen["answers"][2], email, "{seen}");
    let hash_only = json!({ "hash": true, "document": false });
    let with_document = json!({ "hash": true, "document": true });
    assert_eq!(
        seen["requests"],
        json!([
            [hash_only, hash_only],         // one batch, by hash: unknown
            [with_document, with_document], // again, with the documents
            [hash_only],                    // now known by hash
        ]),
        "{seen}"
    );
}

#[tokio::test]
async fn with_trusted_documents_only_the_manifests_run_over_http_and_websocket() {
    let listed = "query Listed { __typename }";
    let dir = std::env::temp_dir().join(format!("prima-trusted-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = dir.join("persisted-query-manifest.json");
    std::fs::write(
        &manifest,
        json!({
            "format": "apollo-persisted-query-manifest", "version": 1,
            "operations": [
                { "id": sha256(listed), "name": "Listed", "type": "query", "body": listed },
                // The harness logs in (the admin below) with this one.
                { "id": sha256(prima_tests::LOGIN), "name": "LogIn", "type": "mutation",
                  "body": prima_tests::LOGIN },
            ],
        })
        .to_string(),
    )
    .unwrap();
    let app = TestApp::empty_with(ServeArgs {
        trusted_documents: Some(manifest),
        ..ServeArgs::default()
    })
    .await;
    let url = app.url("/graphql");
    for body in [
        json!({ "query": listed }),
        json!({ "extensions": by_hash(&sha256(listed)) }),
        json!({ "documentId": sha256(listed) }),
    ] {
        let answer = post(&url, body.clone()).await;
        assert_eq!(answer["data"]["__typename"], "Query", "{body}: {answer}");
    }
    for body in [
        json!({ "query": "{ __typename }" }),
        json!({ "query": "query Listed { __typename me { user { id } } }" }),
        json!({ "extensions": by_hash(&sha256("{ __typename }")) }),
        json!({ "query": "{ __typename }", "extensions": by_hash(&sha256(listed)) }),
    ] {
        let answer = post(&url, body.clone()).await;
        assert_eq!(
            code(&answer),
            "PERSISTED_QUERY_NOT_ALLOWED",
            "{body}: {answer}"
        );
        assert!(answer.get("data").is_none(), "{answer}");
    }
    // Subscriptions too.
    let token = app.admin().await.token.clone();
    let mut ws = app.ws(Some(&token)).await;
    assert_eq!(ws.next_json().await["type"], "connection_ack");
    ws.subscribe("1", "subscription { bookingChanged { cursor } }", json!({}))
        .await;
    let refused = ws.next_json().await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(
        refused["payload"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_ALLOWED",
        "{refused}"
    );
    ws.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}
