//! `GET /exports/payouts.csv?venueId=..&status=APPROVED`: a venue's payouts as a bank file,
//! because finance teams pay from a file, not from an API. The same bearer token as the
//! API; financial reads at the venue (MANAGER or above: FORBIDDEN below, NOT_FOUND for a
//! venue the caller cannot see). One row per payout (oldest period first) with the
//! promoter, amount, currency, method, reference and period; streamed page by page
//! ([`prima_service::payouts::export`]), so a large venue's file never sits in memory.
//!
//! Text cells that a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`,
//! a tab or a carriage return) get a leading `'`, as OWASP advises for CSV exports.

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prima_entity::enums::PayoutStatus;
use prima_service::Error;
use prima_service::payouts::export::{self, Cursor, ExportRow};
use serde::Deserialize;
use uuid::Uuid;

use crate::app::AppState;

/// The query string.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportParams {
    /// The venue.
    venue_id: Option<String>,
    /// Statuses, comma-separated (any when left out).
    status: Option<String>,
}

/// The columns, in order.
pub const COLUMNS: [&str; 14] = [
    "payout_id",
    "status",
    "promoter_id",
    "promoter_name",
    "promoter_email",
    "amount",
    "currency",
    "method",
    "reference",
    "period_from",
    "period_to",
    "scheduled_for",
    "approved_at",
    "processed_at",
];

/// The handler.
pub async fn payouts_csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<ExportParams>,
) -> Response {
    match start(&state, &headers, &params).await {
        Ok((actor, venue, statuses)) => stream(state, actor, venue, statuses),
        Err(err) => refuse(&err),
    }
}

/// Checks the caller and the parameters before anything is read.
async fn start(
    state: &AppState,
    headers: &HeaderMap,
    params: &ExportParams,
) -> Result<(prima_service::access::Actor, Uuid, Vec<PayoutStatus>), Error> {
    let token = crate::app::bearer(headers).unwrap_or_else(|| {
        Err(Error::Unauthenticated(
            "log in first: send `Authorization: Bearer <token>`".into(),
        ))
    })?;
    let actor =
        prima_service::auth::authenticate(&state.deps.db.conn, &state.deps.tokens, token).await?;
    let venue = params
        .venue_id
        .as_deref()
        .ok_or_else(|| Error::invalid("venueId", "`venueId` is required"))?;
    let venue = Uuid::parse_str(venue.trim())
        .map_err(|_| Error::invalid("venueId", "`venueId` is not an id"))?;
    let statuses = statuses(params.status.as_deref())?;
    export::allowed(&actor, venue)?;
    Ok((actor, venue, statuses))
}

/// `APPROVED,PROCESSING` to its statuses: at most one of each, no unknown one.
fn statuses(text: Option<&str>) -> Result<Vec<PayoutStatus>, Error> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    if text.len() > 200 {
        return Err(Error::invalid("status", "`status` is too long"));
    }
    let mut found = Vec::new();
    for name in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let status: PayoutStatus = serde_json::from_value(serde_json::Value::String(name.into()))
            .map_err(|_| {
                Error::invalid(
                    "status",
                    format!("`{name}` is not a payout status (DRAFT, PENDING_APPROVAL, APPROVED, PROCESSING, COMPLETED, FAILED)"),
                )
            })?;
        if !found.contains(&status) {
            found.push(status);
        }
    }
    Ok(found)
}

/// An error as JSON in GraphQL's error shape, with its HTTP status.
fn refuse(err: &Error) -> Response {
    let status = match err {
        Error::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        Error::Forbidden(_) => StatusCode::FORBIDDEN,
        Error::NotFound { .. } => StatusCode::NOT_FOUND,
        Error::Invalid { .. } => StatusCode::BAD_REQUEST,
        Error::Conflict(_) => StatusCode::CONFLICT,
        Error::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::Internal(detail) => {
            tracing::error!(error = ?detail, "payout export failed");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    let mut extensions = serde_json::json!({ "code": err.code() });
    if let Error::Invalid { field, .. } = err {
        extensions["field"] = field.as_str().into();
    }
    let body =
        serde_json::json!({ "errors": [{ "message": err.to_string(), "extensions": extensions }] });
    (status, axum::Json(body)).into_response()
}

/// The file: the header row, then a chunk per page. A failure half-way ends the body with
/// an error (the client sees a broken download, never a file that looks complete).
fn stream(
    state: AppState,
    actor: prima_service::access::Actor,
    venue: Uuid,
    statuses: Vec<PayoutStatus>,
) -> Response {
    struct Reading {
        state: AppState,
        actor: prima_service::access::Actor,
        venue: Uuid,
        statuses: Vec<PayoutStatus>,
        after: Option<Option<Cursor>>,
    }
    let reading = Reading {
        state,
        actor,
        venue,
        statuses,
        after: Some(None),
    };
    let header = futures::stream::once(async { Ok::<Bytes, std::io::Error>(render(&[], true)) });
    let pages = futures::stream::unfold(reading, |mut r| async move {
        let after = r.after?;
        let page = export::page(&r.state.deps.db.conn, &r.actor, r.venue, &r.statuses, after).await;
        match page {
            Ok(rows) if rows.is_empty() => None,
            Ok(rows) => {
                r.after = (rows.len() as u64 == export::PAGE).then(|| {
                    let last = &rows[rows.len() - 1].payout;
                    Some((last.period_from, last.id))
                });
                Some((Ok(render(&rows, false)), r))
            }
            Err(err) => {
                tracing::error!(error = ?err, venue = %r.venue, "payout export failed half-way");
                r.after = None;
                Some((Err(std::io::Error::other("the export failed")), r))
            }
        }
    });
    let body = Body::from_stream(futures::StreamExt::chain(header, pages));
    let disposition = format!("attachment; filename=\"payouts-{venue}.csv\"");
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// Rows as CSV (with the header row first when `header`).
fn render(rows: &[ExportRow], header: bool) -> Bytes {
    let mut out = csv::Writer::from_writer(Vec::with_capacity(rows.len() * 200));
    // Writing to a Vec cannot fail; a record with the wrong width would be a bug here.
    if header {
        out.write_record(COLUMNS).expect("the header row");
    }
    for row in rows {
        out.write_record(record(row)).expect("a CSV row");
    }
    Bytes::from(out.into_inner().unwrap_or_default())
}

/// One payout's cells.
fn record(row: &ExportRow) -> [String; 14] {
    let p = &row.payout;
    let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default()
    };
    let (name, email) = match &row.promoter {
        Some(pr) => (
            format!("{} {}", pr.first_name, pr.last_name),
            pr.email.clone(),
        ),
        None => (String::new(), String::new()),
    };
    [
        p.id.to_string(),
        p.status.to_string(),
        p.promoter_id.map(|id| id.to_string()).unwrap_or_default(),
        inert(&name),
        inert(&email),
        prima_service::money::cents(p.amount).to_string(),
        p.currency.clone(),
        p.method.to_string(),
        inert(p.reference.as_deref().unwrap_or_default()),
        time(Some(p.period_from)),
        time(Some(p.period_to)),
        time(Some(p.scheduled_for)),
        time(p.approved_at),
        time(p.processed_at),
    ]
}

/// A text cell a spreadsheet will not run as a formula.
fn inert(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_looking_cells_are_made_inert_and_others_kept() {
        assert_eq!(inert("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(inert("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(inert("-1+2"), "'-1+2");
        assert_eq!(inert("Ada Lovelace"), "Ada Lovelace");
    }

    #[test]
    fn statuses_are_parsed_deduplicated_and_unknown_ones_refused() {
        assert_eq!(
            statuses(Some("APPROVED, PROCESSING,APPROVED")).unwrap(),
            [PayoutStatus::Approved, PayoutStatus::Processing]
        );
        assert!(statuses(None).unwrap().is_empty());
        assert_eq!(statuses(Some("PAID")).unwrap_err().code(), "BAD_USER_INPUT");
    }
}
