//! GraphiQL, served whole by the binary: the page at `GET /graphql` (for a browser, which
//! asks for `text/html`) and its assets under [`ASSETS_PATH`], GraphiQL 3.9.0 and React
//! 18.3.1 from npm, unmodified, with their licences (`assets/graphiql/LICENSES.txt`, also
//! served). No request leaves the machine: the page works offline, and its
//! Content-Security-Policy allows nothing but this server.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Where the assets are served; the version is in the path, so they can be cached forever.
pub const ASSETS_PATH: &str = "/graphiql/3.9.0";

/// The assets: name, media type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "graphiql.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/graphiql/graphiql.min.js"),
    ),
    (
        "graphiql.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/graphiql/graphiql.min.css"),
    ),
    (
        "react.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/graphiql/react.production.min.js"),
    ),
    (
        "react-dom.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/graphiql/react-dom.production.min.js"),
    ),
    (
        "prima.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/graphiql.js"),
    ),
    (
        "LICENSES.txt",
        "text/plain; charset=utf-8",
        include_bytes!("../assets/graphiql/LICENSES.txt"),
    ),
];

/// Scripts and styles from this server only (GraphiQL's inline styles and `data:` fonts
/// and icons aside); requests to this server only (HTTP and WebSocket).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; font-src 'self' data:; img-src 'self' data:; \
     connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The headers editor's starting text. ASCII only: a browser refuses to send any other
/// character in a header.
const HEADERS_TEMPLATE: &str = r#"{"Authorization": "Bearer <token from login>"}"#;

/// The editor's starting text.
const FIRST_QUERY: &str = "# Log in, then paste the token into the Authorization header below.
mutation LogIn($email: String!, $password: String!) {
  login(email: $email, password: $password) {
    token
  }
}
";

/// The page, with the endpoints it talks to.
pub fn page(endpoint: &str, subscriptions: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        html(endpoint, subscriptions),
    )
        .into_response()
}

fn html(endpoint: &str, subscriptions: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="robots" content="noindex">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>PRIMA Partner API</title>
<!-- GraphiQL 3.9.0 and React 18.3.1 (MIT), served by this server. -->
<link rel="license" href="{assets}/LICENSES.txt">
<link rel="stylesheet" href="{assets}/graphiql.min.css">
<style>body {{ margin: 0; height: 100vh; overflow: hidden; }} #graphiql {{ height: 100vh; }}</style>
</head>
<body>
<div id="graphiql" data-endpoint="{endpoint}" data-subscriptions="{subscriptions}" data-headers="{headers}" data-query="{query}">Loading…</div>
<script src="{assets}/react.production.min.js"></script>
<script src="{assets}/react-dom.production.min.js"></script>
<script src="{assets}/graphiql.min.js"></script>
<script src="{assets}/prima.js"></script>
</body>
</html>
"#,
        assets = ASSETS_PATH,
        endpoint = attribute(endpoint),
        subscriptions = attribute(subscriptions),
        headers = attribute(HEADERS_TEMPLATE),
        query = attribute(FIRST_QUERY),
    )
}

/// One asset, or 404.
pub async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(file, _, _)| *file == name) {
        Some((_, media_type, bytes)) => (
            [
                (header::CONTENT_TYPE, *media_type),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            *bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

/// Text for a double-quoted HTML attribute.
fn attribute(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_only_served_assets_and_nothing_from_elsewhere() {
        let response = page("/graphql", "/graphql/ws");
        let csp = response.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"));
        let html = html("/graphql", "/graphql/ws");
        let mut named = 0;
        for (at, _) in html.match_indices("=\"") {
            let value = &html[at + 2..];
            let value = &value[..value.find('"').unwrap()];
            assert!(!value.contains("//"), "only this server: {value}");
            if let Some(name) = value.strip_prefix(&format!("{ASSETS_PATH}/")) {
                assert!(ASSETS.iter().any(|(file, _, _)| *file == name), "{name}");
                named += 1;
            }
        }
        assert_eq!(named, 6, "a stylesheet, four scripts and the licences");
        assert!(ASSETS.iter().all(|(_, _, bytes)| !bytes.is_empty()));
    }

    #[test]
    fn attribute_text_cannot_close_its_attribute() {
        assert_eq!(attribute(r#""><script>&"#), "&quot;&gt;&lt;script&gt;&amp;");
    }
}
