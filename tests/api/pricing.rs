//! `quoteBooking`: DOMAIN.md "Pricing a booking" through the API, writing nothing.

use prima_tests::{Pricing, Role, TestApp, error_codes};
use serde_json::{Value, json};

const QUOTE: &str = r#"query($input: QuoteBookingInput!) { quoteBooking(input: $input) {
    listPrice { amount currency } discount { kind rate } minimumApplied
    baseFee { amount currency } platformFeeRate platformFee { amount } totalFee { amount currency }
    pricing { id } } }"#;

fn cents(value: &Value) -> i64 {
    let text = value.as_str().expect("a decimal string");
    let (whole, frac) = text.split_once('.').unwrap_or((text, "0"));
    let frac = format!("{frac:0<2}");
    whole.parse::<i64>().unwrap() * 100 + frac[..2].parse::<i64>().unwrap()
}

#[tokio::test]
async fn a_non_prime_quote_is_the_per_diner_price_plus_the_platform_fee() {
    let app = TestApp::empty().await;
    let venue = app.venue().with_pricing(Pricing::default()).create().await;
    let owner = app.user_with_role(&venue, Role::Owner).await.token;
    let venue = app
        .query_ok(
            &owner,
            "{ venues(first: 1) { edges { node { id currency currentPricing { id
                nonPrimePerDiner { amount } nonPrimePlatformFeePercent minimumBookingAmount { amount } } } } } }",
            json!({}),
        )
        .await["venues"]["edges"][0]["node"]
        .clone();
    let pricing = &venue["currentPricing"];
    // Three diners, two days ahead: no early-bird (7 days), no group (8), no guest.
    let time = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    let input =
        json!({ "venueId": venue["id"], "type": "NON_PRIME", "diners": 3, "bookingTime": time });
    let before = app.statements();
    let quote =
        app.query_ok(&owner, QUOTE, json!({ "input": input })).await["quoteBooking"].clone();
    let list = cents(&pricing["nonPrimePerDiner"]["amount"]) * 3;
    let minimum = cents(&pricing["minimumBookingAmount"]["amount"]);
    let base = list.max(minimum);
    assert_eq!(cents(&quote["listPrice"]["amount"]), list);
    assert!(quote["discount"].is_null());
    assert_eq!(quote["minimumApplied"], minimum > list);
    assert_eq!(cents(&quote["baseFee"]["amount"]), base);
    let rate: f64 = pricing["nonPrimePlatformFeePercent"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let platform = cents(&quote["platformFee"]["amount"]);
    assert!(
        (platform as f64 - base as f64 * rate).abs() <= 0.5,
        "{quote}"
    );
    assert_eq!(cents(&quote["totalFee"]["amount"]), base + platform);
    assert_eq!(quote["totalFee"]["currency"], venue["currency"]);
    assert_eq!(quote["pricing"]["id"], pricing["id"]);
    // A quote is a read: only SELECTs ran (authentication, venue, pricing).
    assert!(app.statements() - before <= 5);
}

#[tokio::test]
async fn a_quote_refuses_bad_party_sizes_past_times_and_hidden_venues() {
    let app = TestApp::empty().await;
    let (venue, managers) = (
        app.venue().with_pricing(Pricing::default()).create().await,
        app.venue().with_pricing(Pricing::default()).create().await,
    );
    let owner = app.user_with_role(&venue, Role::Owner).await;
    app.grant(&owner, &managers, Role::Owner).await;
    let owner = owner.token;
    let manager = app.user_with_role(&managers, Role::Manager).await.token;
    let venues = app
        .query_ok(
            &owner,
            "{ venues(first: 10) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    let future = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    let past = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    for (diners, time, field) in [
        (0, &future, "diners"),
        (51, &future, "diners"),
        (2, &past, "bookingTime"),
    ] {
        let input =
            json!({ "venueId": venue, "type": "PRIME", "diners": diners, "bookingTime": time });
        let response = app
            .graphql(Some(&owner), QUOTE, json!({ "input": input }))
            .await;
        assert_eq!(error_codes(&response), ["BAD_USER_INPUT"], "{response}");
        assert_eq!(response["errors"][0]["extensions"]["field"], field);
    }
    // The manager sees one venue; any other is NOT_FOUND, like a venue that does not exist.
    let mine = app
        .query_ok(&manager, "{ venues { edges { node { id } } } }", json!({}))
        .await["venues"]["edges"][0]["node"]["id"]
        .clone();
    let hidden = venues["venues"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].clone())
        .find(|id| *id != mine)
        .unwrap();
    let input = json!({ "venueId": hidden, "type": "PRIME", "diners": 2, "bookingTime": future });
    let response = app
        .graphql(Some(&manager), QUOTE, json!({ "input": input }))
        .await;
    assert_eq!(error_codes(&response), ["NOT_FOUND"], "{response}");
}
