//! GraphQL over HTTP, as the GraphQL-over-HTTP spec has it: which media type an answer
//! is in, which status it gets, what a GET may run, and batches.
//!
//! - **Media types.** `application/graphql-response+json` when the client's `Accept`
//!   prefers it; `application/json` when it asks for that, for `application/*` or `*/*`, or
//!   sends no `Accept`; 406 when it accepts neither.
//! - **Status.** A request error (the request could not run: it does not parse or
//!   validate, or a limit refused it) has no `data`. With `application/graphql-response+json`
//!   it is answered 400 (405 for a mutation sent with GET, 429 when THROTTLED); with
//!   `application/json`, 200 as before (405 for a mutation sent with GET). An answer with
//!   `data`, even null, is 200.
//! - **GET** runs queries only, from `query`, `variables`, `operationName` and `extensions`
//!   in the URL; a browser (one that accepts `text/html`) gets GraphiQL instead.
//! - **POST** needs `Content-Type: application/json` (415 otherwise), utf-8 only. A JSON
//!   array is a batch of at most [`MAX_BATCH`] operations, run one after another, each
//!   through every limit and charged to the caller's rate budget like a request of its own.

use async_graphql::{BatchRequest, Request, Response, Value};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response as HttpResponse};
use prima_graphql::limits::METHOD_NOT_ALLOWED;

/// Most operations in one batched request.
pub const MAX_BATCH: usize = 10;

/// The media type of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    /// `application/json`: a request error is still 200.
    Json,
    /// `application/graphql-response+json`: a request error is 4xx.
    GraphqlResponse,
}

impl MediaType {
    fn header(self) -> &'static str {
        match self {
            MediaType::Json => "application/json; charset=utf-8",
            MediaType::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
        }
    }
}

/// What the `Accept` header prefers: by quality, `application/graphql-response+json` on a
/// tie with `application/json`; None when it accepts neither.
pub fn negotiate(headers: &HeaderMap) -> Option<MediaType> {
    let mut seen = false;
    let (mut json, mut graphql) = (0.0f32, 0.0f32);
    for value in headers.get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else { continue };
        for range in value.split(',') {
            let mut parts = range.split(';');
            let kind = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            if kind.is_empty() {
                continue;
            }
            seen = true;
            let quality = parts
                .filter_map(|param| param.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0)
                .clamp(0.0, 1.0);
            match kind.as_str() {
                "application/graphql-response+json" => graphql = graphql.max(quality),
                "application/json" | "application/*" | "*/*" => json = json.max(quality),
                _ => {}
            }
        }
    }
    if !seen {
        return Some(MediaType::Json);
    }
    match (json, graphql) {
        (j, g) if g > 0.0 && g >= j => Some(MediaType::GraphqlResponse),
        (j, _) if j > 0.0 => Some(MediaType::Json),
        _ => None,
    }
}

/// Whether a GET comes from a browser that wants a page (GraphiQL), not an answer.
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.to_ascii_lowercase().contains("text/html"))
}

/// Why a request is not a GraphQL request: an HTTP status and a message.
#[derive(Debug)]
pub struct Malformed {
    /// 400, 406, 413 or 415.
    pub status: StatusCode,
    /// What is wrong, for the client.
    pub message: String,
}

impl Malformed {
    fn new(status: StatusCode, message: impl Into<String>) -> Malformed {
        Malformed {
            status,
            message: message.into(),
        }
    }

    /// The error code the answer carries.
    pub fn code(&self) -> &'static str {
        match self.status {
            StatusCode::PAYLOAD_TOO_LARGE => "PAYLOAD_TOO_LARGE",
            StatusCode::NOT_ACCEPTABLE => "NOT_ACCEPTABLE",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "UNSUPPORTED_MEDIA_TYPE",
            _ => "BAD_REQUEST",
        }
    }
}

/// The request of a GET's URL parameters: `query`, `operationName`, and `variables` and
/// `extensions` as JSON objects. (async-graphql's own reading of them misses
/// `operationName`, and lets a malformed one through.)
pub fn from_uri(uri: &Uri) -> Result<BatchRequest, Malformed> {
    let bad = |why: String| {
        Malformed::new(
            StatusCode::BAD_REQUEST,
            format!("the URL's parameters are not a GraphQL request: {why}"),
        )
    };
    let axum::extract::Query(pairs) =
        axum::extract::Query::<Vec<(String, String)>>::try_from_uri(uri)
            .map_err(|err| bad(err.body_text()))?;
    let mut fields = serde_json::Map::new();
    for (name, value) in pairs {
        let value = match name.as_str() {
            "query" | "operationName" | "documentId" => serde_json::Value::String(value),
            "variables" | "extensions" => serde_json::from_str(&value)
                .map_err(|err| bad(format!("`{name}` is not JSON: {err}")))?,
            _ => continue,
        };
        if fields.insert(name.clone(), value).is_some() {
            return Err(bad(format!("`{name}` is given twice")));
        }
    }
    let mut json = serde_json::Value::Object(fields);
    well_typed(&json).map_err(bad)?;
    if let Some(fields) = json.as_object_mut() {
        document_id_into_extensions(fields);
    }
    serde_json::from_value(json)
        .map(BatchRequest::Single)
        .map_err(|err| bad(err.to_string()))
}

/// The request(s) of a POST body.
pub fn from_body(headers: &HeaderMap, body: &[u8]) -> Result<BatchRequest, Malformed> {
    let kind = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let mut parts = kind.split(';');
    let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    if media != "application/json" {
        return Err(Malformed::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the request as `Content-Type: application/json`",
        ));
    }
    let utf8 = parts.all(|param| {
        param
            .trim()
            .strip_prefix("charset=")
            .is_none_or(|charset| charset.trim_matches('"').eq_ignore_ascii_case("utf-8"))
    });
    if !utf8 {
        return Err(Malformed::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the request body must be utf-8",
        ));
    }
    let not_a_request = |why: String| {
        Malformed::new(
            StatusCode::BAD_REQUEST,
            format!("the request body is not a GraphQL request: {why}"),
        )
    };
    let json: serde_json::Value =
        serde_json::from_slice(body).map_err(|err| not_a_request(err.to_string()))?;
    // async-graphql's own reading lets a wrongly typed `query` through as empty.
    match &json {
        serde_json::Value::Array(requests) => requests.iter().try_for_each(well_typed),
        single => well_typed(single),
    }
    .map_err(not_a_request)?;
    let one = |mut json: serde_json::Value| {
        if let Some(fields) = json.as_object_mut() {
            document_id_into_extensions(fields);
        }
        serde_json::from_value::<Request>(json).map_err(|err| not_a_request(err.to_string()))
    };
    let batch = match json {
        serde_json::Value::Array(requests) => {
            BatchRequest::Batch(requests.into_iter().map(one).collect::<Result<_, _>>()?)
        }
        single => BatchRequest::Single(one(single)?),
    };
    if let BatchRequest::Batch(requests) = &batch {
        if requests.is_empty() {
            return Err(Malformed::new(
                StatusCode::BAD_REQUEST,
                "a batch needs at least one operation",
            ));
        }
        if requests.len() > MAX_BATCH {
            return Err(Malformed::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "a batch has at most {MAX_BATCH} operations; this one has {}",
                    requests.len()
                ),
            ));
        }
    }
    Ok(batch)
}

/// Whether a request's parameters have the spec's types: an object whose `query` and
/// `operationName` are strings (or absent or null) and whose `variables` and `extensions`
/// are objects (or absent or null).
fn well_typed(request: &serde_json::Value) -> Result<(), String> {
    use serde_json::Value::{Null, Object, String as Text};
    let Object(fields) = request else {
        return Err("each request is a JSON object".into());
    };
    for (name, value) in fields {
        let fits = match name.as_str() {
            "query" | "operationName" => matches!(value, Text(_) | Null),
            "variables" | "extensions" => matches!(value, Object(_) | Null),
            "documentId" => matches!(value, Text(_)),
            _ => true,
        };
        if !fits {
            return Err(format!("`{name}` has the wrong type"));
        }
    }
    Ok(())
}

/// A request that names no document: no `query`, no persisted query's hash and no
/// `documentId`.
pub fn lacks_document(request: &Request) -> bool {
    request.query.trim().is_empty()
        && !request.extensions.contains_key("persistedQuery")
        && !request.extensions.contains_key("documentId")
}

/// A top-level `documentId` (the persisted-documents form of the GraphQL-over-HTTP work,
/// and Relay's) moves into the extensions, where [`crate::persisted`] reads it.
fn document_id_into_extensions(fields: &mut serde_json::Map<String, serde_json::Value>) {
    if let Some(id) = fields.remove("documentId") {
        let extensions = fields
            .entry("extensions")
            .or_insert_with(|| serde_json::Value::Object(Default::default()));
        if let Some(extensions) = extensions.as_object_mut() {
            extensions.insert("documentId".into(), id);
        }
    }
}

/// The answer to one request, or to a batch, in `media`.
pub fn answer(media: MediaType, responses: Vec<Response>, batch: bool) -> HttpResponse {
    let mut headers = HeaderMap::new();
    let mut status = StatusCode::OK;
    for response in &responses {
        if !batch {
            status = status_of(media, response);
        }
        for (name, value) in response.http_headers.iter() {
            headers.insert(name.clone(), value.clone());
        }
    }
    let bodies: Vec<Body<'_>> = responses.iter().map(Body::of).collect();
    // Serialized straight from async-graphql's values, whose maps keep the fields' order
    // (a `serde_json::Value` would sort them).
    let bytes = match (batch, bodies.as_slice()) {
        (false, [one]) => serde_json::to_vec(one),
        _ => serde_json::to_vec(&bodies),
    }
    .unwrap_or_default();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(media.header()),
    );
    (status, headers, bytes).into_response()
}

/// An answer as it is written: a request error has no `data` entry at all.
#[derive(serde::Serialize)]
struct Body<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a Value>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [async_graphql::ServerError],
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    extensions: &'a std::collections::BTreeMap<String, Value>,
}

impl<'a> Body<'a> {
    fn of(response: &'a Response) -> Body<'a> {
        Body {
            data: (!is_request_error(response)).then_some(&response.data),
            errors: &response.errors,
            extensions: &response.extensions,
        }
    }
}

/// The error answer to a request that is not a GraphQL request.
pub fn refuse(media: MediaType, malformed: &Malformed, id: Option<&str>) -> HttpResponse {
    let mut extensions = serde_json::json!({ "code": malformed.code() });
    if let Some(id) = id {
        extensions["requestId"] = id.into();
    }
    let body = serde_json::json!({
        "errors": [{ "message": malformed.message, "extensions": extensions }]
    });
    (
        malformed.status,
        [(header::CONTENT_TYPE, media.header())],
        serde_json::to_vec(&body).unwrap_or_default(),
    )
        .into_response()
}

/// Whether the request never ran: no data, and no error at a field of it.
pub fn is_request_error(response: &Response) -> bool {
    response.data == Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|error| error.path.is_empty())
}

fn has_code(response: &Response, code: &str) -> bool {
    response.errors.iter().any(|error| {
        error
            .extensions
            .as_ref()
            .and_then(|extensions| extensions.get("code"))
            .is_some_and(|value| *value == Value::from(code))
    })
}

fn status_of(media: MediaType, response: &Response) -> StatusCode {
    if !is_request_error(response) {
        return StatusCode::OK;
    }
    if has_code(response, METHOD_NOT_ALLOWED) {
        return StatusCode::METHOD_NOT_ALLOWED;
    }
    match media {
        MediaType::Json => StatusCode::OK,
        MediaType::GraphqlResponse if has_code(response, "THROTTLED") => {
            StatusCode::TOO_MANY_REQUESTS
        }
        MediaType::GraphqlResponse => StatusCode::BAD_REQUEST,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, value.parse().unwrap());
        headers
    }

    #[test]
    fn the_answer_is_in_the_type_the_client_prefers() {
        use MediaType::*;
        assert_eq!(negotiate(&HeaderMap::new()), Some(Json));
        for (value, expected) in [
            ("application/json", Some(Json)),
            ("*/*", Some(Json)),
            ("application/*", Some(Json)),
            ("application/graphql-response+json", Some(GraphqlResponse)),
            (
                "application/graphql-response+json, application/json",
                Some(GraphqlResponse),
            ),
            (
                "application/json, application/graphql-response+json;q=0.9",
                Some(Json),
            ),
            (
                "application/json;q=0.5, application/graphql-response+json",
                Some(GraphqlResponse),
            ),
            ("text/html", None),
            ("application/graphql-response+json;q=0", None),
            ("text/html, */*;q=0.8", Some(Json)),
        ] {
            assert_eq!(negotiate(&accept(value)), expected, "{value}");
        }
    }

    #[test]
    fn a_url_carries_the_query_its_operation_and_json_variables() {
        let uri: Uri =
            "/graphql?query=query%20A%20%7B%20a%20%7D&operationName=A&variables=%7B%22x%22%3A1%7D"
                .parse()
                .unwrap();
        let Ok(BatchRequest::Single(request)) = from_uri(&uri) else {
            panic!("a request");
        };
        assert_eq!(request.query, "query A { a }");
        assert_eq!(request.operation_name.as_deref(), Some("A"));
        assert_eq!(request.variables.to_string(), r#"{x: 1}"#);
        for bad in [
            "/graphql?query=a&query=b",
            "/graphql?query=a&variables=nope",
            "/graphql?query=a&variables=%5B%5D",
            "/graphql?query=a&extensions=1",
        ] {
            let uri: Uri = bad.parse().unwrap();
            assert_eq!(
                from_uri(&uri).unwrap_err().status,
                StatusCode::BAD_REQUEST,
                "{bad}"
            );
        }
    }

    #[test]
    fn a_body_must_be_json_in_utf8_and_a_batch_is_bounded() {
        let mut headers = HeaderMap::new();
        let body = br#"{"query":"{ __typename }"}"#;
        assert_eq!(
            from_body(&headers, body).unwrap_err().status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        headers.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert_eq!(
            from_body(&headers, body).unwrap_err().status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        headers.insert(
            header::CONTENT_TYPE,
            "application/json; charset=latin1".parse().unwrap(),
        );
        assert_eq!(
            from_body(&headers, body).unwrap_err().status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        headers.insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().unwrap(),
        );
        assert!(matches!(
            from_body(&headers, body),
            Ok(BatchRequest::Single(_))
        ));
        for bad in [
            r#"{"query": 1}"#,
            r#"{"query": {}}"#,
            r#"{"query": ["{ a }"]}"#,
            r#"{"query": true}"#,
            r#"{"query": "{ a }", "operationName": 1}"#,
            r#"{"query": "{ a }", "variables": "{}"}"#,
            r#"{"query": "{ a }", "extensions": []}"#,
            r#""{ a }""#,
            r#"[1]"#,
        ] {
            let refused = from_body(&headers, bad.as_bytes()).unwrap_err();
            assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{bad}");
        }
        assert_eq!(
            from_body(&headers, b"[]").unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        let batch = |n: usize| format!("[{}]", vec![r#"{"query":"{ __typename }"}"#; n].join(","));
        assert!(matches!(
            from_body(&headers, batch(MAX_BATCH).as_bytes()),
            Ok(BatchRequest::Batch(requests)) if requests.len() == MAX_BATCH
        ));
        let over = from_body(&headers, batch(MAX_BATCH + 1).as_bytes()).unwrap_err();
        assert_eq!(over.status, StatusCode::BAD_REQUEST);
        assert!(over.message.contains("at most"), "{}", over.message);
    }
}
