//! The `graphql-ws` npm client (the one Apollo Client and urql use), unmodified, against a
//! real server: it subscribes to `bookingChanged` and receives the changes, and a bad token
//! ends its connection with 4403 (Forbidden, as the protocol recommends for a refused
//! `connection_init`; the client would retry a 4403, unlike a 4401, but the script turns
//! retries off). The client runs in Node (`tests/js/subscribe.mjs`); its packages are
//! installed from `tests/js/package-lock.json` (`npm ci --prefix tests/js`), by this test
//! itself when `tests/js/node_modules` is missing or stale.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use prima_tests::{Pricing, Role, TestApp};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

const INSTALL: &str = "npm ci --prefix tests/js";

/// `tests/js`.
fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("js")
}

/// Makes sure Node 20+ runs and the client's packages are installed, running `npm ci` (once
/// per test binary) when `tests/js/node_modules` lacks them or holds other versions than
/// `package-lock.json`; fails the test otherwise.
async fn node_ready() {
    static READY: tokio::sync::OnceCell<Result<(), String>> = tokio::sync::OnceCell::const_new();
    if let Err(problem) = READY.get_or_init(prepare_node).await {
        panic!("{problem}");
    }
}

async fn prepare_node() -> Result<(), String> {
    let version = Command::new("node")
        .arg("--version")
        .output()
        .await
        .map_err(|err| {
            format!(
                "the graphql-ws client test needs Node.js 20 or later on PATH (`node`: {err}); \
                 install it, then run `{INSTALL}`"
            )
        })?;
    let version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|major| major.parse().ok())
        .unwrap_or(0);
    if major < 20 {
        return Err(format!(
            "the graphql-ws client test needs Node.js 20 or later, `node --version` says {version:?}"
        ));
    }
    let dir = js_dir();
    if installed(&dir) {
        return Ok(());
    }
    // Exactly the versions of package-lock.json, as CI installs them.
    let output = Command::new("npm")
        .args([
            "ci",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            "--prefix",
        ])
        .arg(&dir)
        .output()
        .await
        .map_err(|err| {
            format!(
                "tests/js/node_modules is missing or stale and `npm` could not run ({err}); run `{INSTALL}`"
            )
        })?;
    if !output.status.success() {
        return Err(format!(
            "tests/js/node_modules is missing or stale and `npm ci` failed ({}); run `{INSTALL}`\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    if !installed(&dir) {
        return Err(format!(
            "`npm ci` left tests/js/node_modules without the packages of package-lock.json; run `{INSTALL}`"
        ));
    }
    Ok(())
}

/// Whether `node_modules` holds every package of `package-lock.json`, at its version.
fn installed(dir: &Path) -> bool {
    let read = |path: PathBuf| -> Option<Value> {
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    };
    let Some(lock) = read(dir.join("package-lock.json")) else {
        return false;
    };
    let Some(packages) = lock["packages"].as_object() else {
        return false;
    };
    packages
        .iter()
        .filter(|(path, _)| path.starts_with("node_modules/"))
        .all(|(path, locked)| {
            read(dir.join(path).join("package.json"))
                .is_some_and(|package| package["version"] == locked["version"])
        })
}

/// `node tests/js/subscribe.mjs <args>`, its stdout and stderr piped, killed if dropped.
fn subscribe_mjs(args: &[&str]) -> tokio::process::Child {
    let dir = js_dir();
    Command::new("node")
        .arg(dir.join("subscribe.mjs"))
        .args(args)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("starting node")
}

/// The script's exit within 30 s (it gives up by itself after 20 s).
async fn finished(child: tokio::process::Child) -> Output {
    tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("subscribe.mjs did not exit within 30 s")
        .expect("waiting for node")
}

fn url(app: &TestApp) -> String {
    format!("ws://{}/graphql/ws", app.addr)
}

#[tokio::test]
async fn the_graphql_ws_client_receives_the_changes_of_a_booking() {
    node_ready().await;
    let app = TestApp::empty().await;
    // gm's only venue; its bookings wait for approval.
    let venue = app
        .venue()
        .requiring_approval()
        .with_pricing(Pricing::default())
        .create()
        .await;
    let admin = app.admin().await.token.clone();
    let gm = app.user_with_role(&venue, Role::Admin).await.token;

    let mut child = subscribe_mjs(&[&url(&app), &gm, &venue, "2"]);
    // Its stderr: wait for `subscribed`, then keep the rest for failure messages.
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut early = Vec::new();
    let subscribed = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = stderr.next_line().await.expect("reading stderr") {
            if line == "subscribed" {
                return true;
            }
            early.push(line);
        }
        false
    })
    .await;
    if subscribed != Ok(true) {
        let mut stdout = String::new();
        let _ = child
            .stdout
            .take()
            .expect("stdout")
            .read_to_string(&mut stdout)
            .await;
        panic!(
            "subscribe.mjs did not subscribe ({subscribed:?}, {:?})\nstdout:\n{stdout}\nstderr:\n{}",
            child.try_wait(),
            early.join("\n")
        );
    }
    let rest = tokio::spawn(async move {
        let mut rest = early;
        while let Ok(Some(line)) = stderr.next_line().await {
            rest.push(line);
        }
        rest.join("\n")
    });
    // The `subscribe` message is sent; wait for the server to start the feed (a
    // subscription without `after` begins with the changes committed after it starts).
    app.subscribers_at_least(1).await;

    // A booking at gm's venue, made by the admin (PENDING), then confirmed by gm.
    let guest = app
        .query_ok(
            &admin,
            "mutation($input: CreateGuestInput!) { createGuest(input: $input) { guest { id } } }",
            json!({ "input": { "venueId": venue, "firstName": "Lee", "lastName": "Park",
                               "email": format!("{}@example.com", uuid::Uuid::new_v4()) } }),
        )
        .await["createGuest"]["guest"]["id"]
        .clone();
    let time = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    let booking = app
        .query_ok(
            &admin,
            "mutation($input: CreateBookingInput!) { createBooking(input: $input) { booking { id status } } }",
            json!({ "input": { "venueId": venue, "guestId": guest, "type": "NON_PRIME",
                               "diners": 4, "bookingTime": time } }),
        )
        .await["createBooking"]["booking"]
        .clone();
    assert_eq!(booking["status"], "PENDING", "{booking}");
    let booking = booking["id"].as_str().unwrap().to_owned();
    app.query_ok(
        &gm,
        "mutation($input: ConfirmBookingInput!) { confirmBooking(input: $input) { booking { id } } }",
        json!({ "input": { "bookingId": booking } }),
    )
    .await;

    let output = finished(child).await;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = rest.await.expect("reading stderr");
    assert!(
        output.status.success(),
        "subscribe.mjs failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    let payloads: Vec<Value> = stdout
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|err| panic!("not a JSON line ({err}): {line:?}\n{stdout}"))
        })
        .collect();
    assert_eq!(payloads.len(), 2, "exactly two events:\n{stdout}");
    let cursor = |payload: &Value| -> i64 {
        payload["data"]["bookingChanged"]["cursor"]
            .as_str()
            .and_then(|cursor| cursor.parse().ok())
            .unwrap_or_else(|| panic!("a cursor: {payload}"))
    };
    let (created, confirmed) = (cursor(&payloads[0]), cursor(&payloads[1]));
    assert!(created < confirmed, "{stdout}");
    // The whole payloads, exactly (no `errors`, nothing else).
    assert_eq!(
        payloads,
        [
            json!({ "data": { "bookingChanged": {
                "cursor": created.to_string(), "action": "CREATED", "previousStatus": null,
                "booking": { "id": booking, "status": "PENDING" } } } }),
            json!({ "data": { "bookingChanged": {
                "cursor": confirmed.to_string(), "action": "STATUS_CHANGED",
                "previousStatus": "PENDING",
                "booking": { "id": booking, "status": "CONFIRMED" } } } }),
        ]
    );
}

#[tokio::test]
async fn the_graphql_ws_client_is_refused_with_4403_without_a_valid_token() {
    node_ready().await;
    let app = TestApp::empty().await;
    let url = url(&app);
    for args in [
        vec!["--unauthorized", &url, "not-a-token"],
        vec!["--unauthorized", &url],
    ] {
        let output = finished(subscribe_mjs(&args)).await;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "{args:?}: subscribe.mjs failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}",
            output.status
        );
        let closed: Value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|err| panic!("{args:?}: not one JSON line ({err}): {stdout:?}"));
        assert_eq!(closed["code"], 4403, "{args:?}: {closed}");
        assert!(
            !closed["reason"].as_str().unwrap_or_default().is_empty(),
            "{args:?}: {closed}"
        );
    }
}
