//! The dashboard's portfolio graph in one query, and its SQL statement count: it must not
//! grow with the data (no N+1).

use prima_tests::TestApp;
use serde_json::{Value, json};

/// Bookings of last month: those are paid out (the seed pays every past month) whatever
/// the date and the data size (the newest bookings, early in a month, are all in the month
/// that has no payout yet; the oldest, at 20,000 bookings, before the paid months).
const PORTFOLIO: &str = "query($from: DateTime!, $to: DateTime!) { venues(first: 10) { edges { node { bookings(first: 50, filter: {from: $from, to: $to}) { edges { node { guest { id } promoter { id } transactions { payout { id } } } } } } } } }";

/// Last calendar month, a day in from each end (venue time zones differ from UTC).
fn last_month() -> Value {
    use chrono::{Datelike, Duration, TimeZone, Utc};
    let now = Utc::now();
    let this_month = Utc
        .with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .unwrap();
    let previous = this_month - Duration::days(1);
    let start = Utc
        .with_ymd_and_hms(previous.year(), previous.month(), 1, 0, 0, 0)
        .unwrap();
    json!({
        "from": (start + Duration::days(1)).to_rfc3339(),
        "to": (this_month - Duration::days(1)).to_rfc3339(),
    })
}

/// Threads that spin on every core until dropped: a machine with no CPU to spare.
struct Saturated {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Saturated {
    fn now() -> Saturated {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads = (0..cores)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        Saturated { stop, threads }
    }
}

impl Drop for Saturated {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// The statements of the portfolio query at `bookings` demo bookings, counted on an idle
/// machine and on one whose cores are all busy, with the server's default settings; both
/// counts and the answer.
async fn statements_for_portfolio(bookings: u64) -> (u64, u64, Value) {
    let app = TestApp::demo(bookings).await;
    let token = app.login("owner@prima.demo").await;
    // Warm-up: the first request of a fresh pool may prepare things; count the second.
    app.query_ok(&token, PORTFOLIO, last_month()).await;
    let before = app.statements();
    let data = app.query_ok(&token, PORTFOLIO, last_month()).await;
    let idle = app.statements() - before;
    let busy = {
        let _saturated = Saturated::now();
        let before = app.statements();
        let again = app.query_ok(&token, PORTFOLIO, last_month()).await;
        assert_eq!(again, data, "the same answer on a busy machine");
        app.statements() - before
    };
    (idle, busy, data)
}

fn count(data: &Value, path: &[&str]) -> usize {
    fn walk(value: &Value, path: &[&str]) -> usize {
        match (value, path.split_first()) {
            (Value::Array(items), _) => items.iter().map(|item| walk(item, path)).sum(),
            (_, None) => usize::from(!value.is_null()),
            (_, Some((head, rest))) => walk(&value[*head], rest),
        }
    }
    walk(data, path)
}

#[tokio::test]
async fn the_portfolio_query_runs_the_same_few_statements_at_two_data_sizes_and_on_a_busy_machine()
{
    let (small, small_busy, small_data) = statements_for_portfolio(2_000).await;
    let (large, large_busy, large_data) = statements_for_portfolio(20_000).await;
    let bookings = ["venues", "edges", "node", "bookings", "edges", "node"];
    let payouts = [
        "venues",
        "edges",
        "node",
        "bookings",
        "edges",
        "node",
        "transactions",
        "payout",
    ];
    eprintln!(
        "portfolio query: {small} statements at 2,000 bookings ({} bookings, {} payouts returned); \
         {large} at 20,000 ({} bookings, {} payouts)",
        count(&small_data, &bookings),
        count(&small_data, &payouts),
        count(&large_data, &bookings),
        count(&large_data, &payouts),
    );
    assert!(
        count(&small_data, &bookings) > 100,
        "the query returns a real graph"
    );
    assert!(
        count(&large_data, &payouts) > 0,
        "some bookings lead to a payout"
    );
    assert_eq!(
        small, large,
        "the statement count must not depend on the data size"
    );
    assert_eq!(
        (small_busy, large_busy),
        (small, large),
        "the statement count must not depend on the machine's load"
    );
    assert_eq!(
        small, 6,
        "one to authenticate the caller, then one per level: venues, bookings, promoters, \
         transactions, payouts (`guest {{ id }}` is answered from the booking)"
    );
}

#[tokio::test]
async fn a_bookings_guest_id_costs_no_statement_and_any_other_guest_field_one_per_level() {
    let app = TestApp::demo(2_000).await;
    let token = app.login("coordinator@prima.demo").await;
    let page = |guest: &str| {
        format!(
            "{{ venues(first: 10) {{ nodes {{ bookings(first: 20) {{ nodes {{ guest {{ {guest} }} }} }} }} }} }}"
        )
    };
    let mut counts = Vec::new();
    let mut answers = Vec::new();
    for guest in [
        "id",
        "id lastName contactMasked",
        "... on Guest { id email }",
    ] {
        let query = page(guest);
        app.query_ok(&token, &query, json!({})).await;
        let before = app.statements();
        answers.push(app.query_ok(&token, &query, json!({})).await);
        counts.push(app.statements() - before);
    }
    assert_eq!(
        counts[1],
        counts[0] + 1,
        "one statement for every guest of the page: {counts:?}"
    );
    assert_eq!(counts[2], counts[1], "fragments too: {counts:?}");
    let nodes = |answer: &Value| -> Vec<Value> {
        answer["venues"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|venue| venue["bookings"]["nodes"].as_array().unwrap().clone())
            .map(|booking| booking["guest"].clone())
            .collect()
    };
    let (ids, loaded, contacts) = (nodes(&answers[0]), nodes(&answers[1]), nodes(&answers[2]));
    assert!(ids.len() >= 20, "a real page: {}", ids.len());
    for ((id_only, full), contact) in ids.iter().zip(&loaded).zip(&contacts) {
        assert_eq!(id_only["id"], full["id"], "the same guests, in order");
        assert_eq!(
            full["contactMasked"], true,
            "a COORDINATOR sees masked contacts"
        );
        assert!(
            full["lastName"].as_str().unwrap().ends_with("***"),
            "{full}"
        );
        assert!(
            contact["email"].as_str().unwrap().contains("***"),
            "{contact}"
        );
    }
}
