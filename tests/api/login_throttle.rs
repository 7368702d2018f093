//! Logging in is throttled: per email and per client address, growing waits and then a
//! lockout, refused before any password is hashed, with when to retry in
//! `extensions.retryAfter` and the `Retry-After` header; and password hashing is bounded.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use prima_server::config::{LoginArgs, ServeArgs};
use prima_tests::{PASSWORD, TestApp, eventually};
use serde_json::{Value, json};

const LOGIN: &str =
    "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }";

/// One login attempt's answer: the JSON body and the `Retry-After` header.
#[derive(Debug)]
struct Answer {
    body: Value,
    retry_after_header: Option<u64>,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or(if self.body["data"]["login"]["token"].is_string() {
                "OK"
            } else {
                "<none>"
            })
    }

    fn retry_after(&self) -> Option<u64> {
        self.body["errors"][0]["extensions"]["retryAfter"].as_u64()
    }

    fn message(&self) -> &str {
        self.body["errors"][0]["message"].as_str().unwrap_or("")
    }
}

/// POSTs a login to the server at `addr`, optionally with an `X-Forwarded-For` header.
async fn attempt_at(
    addr: SocketAddr,
    email: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> Answer {
    let mut request = reqwest::Client::new()
        .post(format!("http://{addr}/graphql"))
        .json(&json!({ "query": LOGIN, "variables": { "e": email, "p": password } }));
    if let Some(forwarded_for) = forwarded_for {
        request = request.header("X-Forwarded-For", forwarded_for);
    }
    let response = request.send().await.expect("sending a login");
    assert!(response.status().is_success(), "{}", response.status());
    let retry_after_header = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().parse().unwrap());
    Answer {
        body: response.json().await.expect("a JSON answer"),
        retry_after_header,
    }
}

async fn attempt(app: &TestApp, email: &str, password: &str) -> Answer {
    attempt_at(app.addr, email, password, None).await
}

fn with_login(login: LoginArgs) -> ServeArgs {
    ServeArgs {
        login,
        ..ServeArgs::default()
    }
}

#[tokio::test]
async fn the_fourth_and_later_wrong_passwords_are_throttled_with_when_to_retry() {
    let app = TestApp::empty().await;
    let user = app.staff().await.email;
    for _ in 0..3 {
        let answer = attempt(&app, &user, "not-the-password").await;
        assert_eq!(answer.code(), "UNAUTHENTICATED", "{answer:?}");
        assert_eq!(answer.retry_after_header, None);
    }
    for _ in 3..10 {
        let answer = attempt(&app, &user, "not-the-password").await;
        assert_eq!(answer.code(), "THROTTLED", "{answer:?}");
        let seconds = answer.retry_after().expect("extensions.retryAfter");
        assert_eq!(seconds, 1, "the first wait is a second: {answer:?}");
        assert_eq!(
            answer.retry_after_header,
            Some(seconds),
            "the header agrees"
        );
        assert!(answer.message().contains("too many failed logins"));
    }
    let answer = attempt(&app, &user, PASSWORD).await;
    assert_eq!(answer.code(), "THROTTLED", "even the right password waits");
}

#[tokio::test]
async fn after_the_lockout_threshold_even_the_right_password_is_refused_until_it_ends() {
    let app = TestApp::empty_with(with_login(LoginArgs {
        login_free_failures: 10,
        login_lockout_failures: 3,
        login_lockout_secs: 2,
        ..LoginArgs::default()
    }))
    .await;
    let user = app.staff().await.email;
    for _ in 0..3 {
        assert_eq!(
            attempt(&app, &user, "wrong").await.code(),
            "UNAUTHENTICATED"
        );
    }
    let locked_at = Instant::now();
    let answer = attempt(&app, &user, PASSWORD).await;
    assert_eq!(answer.code(), "THROTTLED", "{answer:?}");
    assert!(answer.message().contains("locked"), "{answer:?}");
    assert_eq!(answer.retry_after(), Some(2));
    assert_eq!(answer.retry_after_header, Some(2));
    // Poll with the right password until it gets in: refused until the lockout ends. The
    // lockout runs on the server's real clock, so its passing is waited for, not faked.
    eventually("the lockout to end", Duration::from_secs(15), async || {
        let answer = attempt(&app, &user, PASSWORD).await;
        if answer.code() == "OK" {
            return Some(());
        }
        assert_eq!(answer.code(), "THROTTLED", "{answer:?}");
        None
    })
    .await;
    assert!(
        locked_at.elapsed() >= Duration::from_millis(1_500),
        "got in after {:?}, before the lockout ended",
        locked_at.elapsed()
    );
}

#[tokio::test]
async fn an_unknown_email_is_throttled_exactly_like_a_known_one() {
    let app = TestApp::empty().await;
    let known = app.staff().await.email;
    let mut answers = Vec::new();
    for email in [known.as_str(), "nobody@prima.test"] {
        let mut seen = Vec::new();
        for _ in 0..6 {
            let answer = attempt(&app, email, "wrong").await;
            seen.push((
                answer.code().to_owned(),
                answer.message().to_owned(),
                answer.retry_after(),
                answer.retry_after_header,
            ));
        }
        answers.push(seen);
    }
    assert_eq!(
        answers[0], answers[1],
        "the answers tell nothing about the email"
    );
    assert_eq!(answers[0][3].0, "THROTTLED");
}

#[tokio::test]
async fn a_right_password_before_the_threshold_resets_the_count() {
    let app = TestApp::empty().await;
    let user = app.staff().await.email;
    for _ in 0..2 {
        assert_eq!(
            attempt(&app, &user, "wrong").await.code(),
            "UNAUTHENTICATED"
        );
    }
    assert_eq!(attempt(&app, &user, PASSWORD).await.code(), "OK");
    for _ in 0..3 {
        assert_eq!(
            attempt(&app, &user, "wrong").await.code(),
            "UNAUTHENTICATED",
            "three free failures again"
        );
    }
    assert_eq!(attempt(&app, &user, "wrong").await.code(), "THROTTLED");
}

#[tokio::test]
async fn one_address_is_throttled_across_emails_and_x_forwarded_for_is_trusted_only_when_set() {
    // Not trusted (the default): a client naming another address each time is still one
    // address, and after 10 failures every email waits. None of the emails exists: the
    // count is the address's, whoever it names.
    let app = TestApp::empty().await;
    for i in 0..10 {
        let answer = attempt_at(
            app.addr,
            &format!("guess{i}@prima.test"),
            "wrong",
            Some(&format!("203.0.113.{i}")),
        )
        .await;
        assert_eq!(answer.code(), "UNAUTHENTICATED", "{answer:?}");
    }
    let answer = attempt_at(
        app.addr,
        "guess10@prima.test",
        "wrong",
        Some("198.51.100.1"),
    )
    .await;
    assert_eq!(answer.code(), "THROTTLED", "{answer:?}");

    // Trusted (behind a proxy that sets it): each forwarded address counts on its own.
    let app = TestApp::empty_with(with_login(LoginArgs {
        trust_forwarded_for: true,
        ..LoginArgs::default()
    }))
    .await;
    for i in 0..12 {
        let answer = attempt_at(
            app.addr,
            &format!("guess{i}@prima.test"),
            "wrong",
            Some(&format!("203.0.113.{i}, 10.0.0.1")),
        )
        .await;
        assert_eq!(answer.code(), "UNAUTHENTICATED", "{answer:?}");
    }
}

#[tokio::test]
async fn two_replicas_sharing_redis_share_the_count() {
    if std::env::var("TEST_REDIS_URL").map_or(true, |url| url.is_empty()) {
        return;
    }
    let app = TestApp::empty().await;
    let user = app.staff().await.email;
    let replica = app.replica().await;
    for _ in 0..3 {
        assert_eq!(
            attempt(&app, &user, "wrong").await.code(),
            "UNAUTHENTICATED"
        );
    }
    let answer = attempt_at(replica.addr, &user, "wrong", None).await;
    assert_eq!(
        answer.code(),
        "THROTTLED",
        "the replica saw the failures: {answer:?}"
    );
    assert_eq!(answer.retry_after_header, Some(1));
    replica.stop().await;
}

#[tokio::test]
async fn parallel_logins_beyond_the_hash_queue_are_refused_rather_than_all_hashed() {
    let app = TestApp::empty_with(with_login(LoginArgs {
        login_hash_concurrency: Some(1),
        login_hash_queue: 1,
        login_address_free_failures: 100_000,
        login_address_lockout_failures: 0,
        ..LoginArgs::default()
    }))
    .await;
    // A burst of 32 wrong passwords for 32 unknown emails (an unknown email is hashed like
    // a known one): one hashes, one waits, the rest that
    // arrive meanwhile are refused. Bursts repeat until one shows it (each takes only
    // milliseconds per refusal), within a bound.
    for burst in 0..20 {
        let addr = app.addr;
        let answers = futures::future::join_all((0..32).map(|i| async move {
            let email = format!("burst{burst}-{i}@prima.test");
            attempt_at(addr, &email, "wrong", None).await
        }))
        .await;
        let busy: Vec<&Answer> = answers
            .iter()
            .filter(|answer| answer.code() == "THROTTLED")
            .collect();
        assert!(
            answers
                .iter()
                .all(|answer| matches!(answer.code(), "THROTTLED" | "UNAUTHENTICATED")),
            "{answers:?}"
        );
        assert!(
            answers
                .iter()
                .any(|answer| answer.code() == "UNAUTHENTICATED"),
            "some were checked"
        );
        if let Some(answer) = busy.first() {
            assert!(
                answer.message().contains("too many passwords"),
                "{answer:?}"
            );
            assert_eq!(answer.retry_after(), Some(1));
            assert_eq!(answer.retry_after_header, Some(1));
            return;
        }
    }
    panic!("20 bursts of 32 parallel logins never filled a queue of 1");
}
