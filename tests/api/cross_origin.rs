//! A browser page on another origin (the dashboard's dev server, or its production host)
//! calling the API: CORS preflights and the headers on every answer. The same flow in a
//! real headless browser is `browser.rs`.

use prima_server::config::ServeArgs;
use prima_tests::TestApp;
use reqwest::{Method, StatusCode};

const DASHBOARD: &str = "https://dashboard.example.test";

async fn app_allowing(origins: &str) -> TestApp {
    TestApp::empty_with(ServeArgs {
        cors_origins: Some(origins.parse().expect("origins parse")),
        ..ServeArgs::default()
    })
    .await
}

/// What the browser sends before a POST with `Authorization` and a JSON body.
async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(Method::OPTIONS, app.url("/graphql"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .expect("preflight answered")
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response
        .headers()
        .get(name)
        .map(|value| value.to_str().expect("an ASCII header"))
}

fn vary_names_origin(response: &reqwest::Response) -> bool {
    response.headers().get_all("vary").iter().any(|value| {
        value
            .to_str()
            .unwrap_or("")
            .to_lowercase()
            .contains("origin")
    })
}

#[tokio::test]
async fn an_allowed_origin_gets_its_preflight_answered_with_the_dashboards_methods_and_headers() {
    let app = app_allowing(&format!("{DASHBOARD},http://localhost:*")).await;
    for origin in [DASHBOARD, "http://localhost:5173"] {
        let answer = preflight(&app, origin).await;
        assert!(answer.status().is_success(), "{}", answer.status());
        assert_eq!(header(&answer, "access-control-allow-origin"), Some(origin));
        let methods = header(&answer, "access-control-allow-methods").unwrap_or("");
        assert!(
            methods.contains("POST") && methods.contains("GET"),
            "{methods}"
        );
        let headers = header(&answer, "access-control-allow-headers")
            .unwrap_or("")
            .to_lowercase();
        assert!(
            headers.contains("authorization") && headers.contains("content-type"),
            "{headers}"
        );
        assert!(header(&answer, "access-control-max-age").is_some());
        assert!(vary_names_origin(&answer));
    }
}

#[tokio::test]
async fn another_origin_gets_no_allowance_and_the_answer_still_varies_by_origin() {
    let app = app_allowing(DASHBOARD).await;
    for origin in [
        "https://evil.example.test",
        "https://dashboard.example.test.evil.test",
        "http://dashboard.example.test",
        "null",
    ] {
        let answer = preflight(&app, origin).await;
        assert_eq!(
            header(&answer, "access-control-allow-origin"),
            None,
            "{origin}"
        );
        assert!(vary_names_origin(&answer), "{origin}");
    }
    // The request itself still runs (CORS is the browser's rule, not an access check), but
    // the browser keeps its answer from the page.
    let answer = reqwest::Client::new()
        .post(app.url("/graphql"))
        .header("origin", "https://evil.example.test")
        .json(&serde_json::json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(header(&answer, "access-control-allow-origin"), None);
}

#[tokio::test]
async fn an_allowed_origins_answers_name_it_and_expose_the_request_id() {
    let app = app_allowing(DASHBOARD).await;
    let answer = reqwest::Client::new()
        .post(app.url("/graphql"))
        .header("origin", DASHBOARD)
        .json(&serde_json::json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(
        header(&answer, "access-control-allow-origin"),
        Some(DASHBOARD)
    );
    assert!(vary_names_origin(&answer));
    let exposed = header(&answer, "access-control-expose-headers")
        .unwrap_or("")
        .to_lowercase();
    assert!(exposed.contains("x-request-id"), "{exposed}");
    // Errors too: a page must be able to read a refusal.
    let refused = reqwest::Client::new()
        .post(app.url("/graphql"))
        .header("origin", DASHBOARD)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        header(&refused, "access-control-allow-origin"),
        Some(DASHBOARD)
    );
}

#[tokio::test]
async fn any_origin_is_a_wildcard_and_none_allows_nothing() {
    let any = app_allowing("*").await;
    let answer = preflight(&any, "https://anyone.test").await;
    assert_eq!(header(&answer, "access-control-allow-origin"), Some("*"));
    let none = app_allowing("none").await;
    let answer = preflight(&none, "http://localhost:5173").await;
    assert_eq!(header(&answer, "access-control-allow-origin"), None);
}
