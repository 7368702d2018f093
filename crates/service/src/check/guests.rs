//! Invariants 3 and 3b: the guest aggregates, and the guests' per-venue rows
//! (`guest_venue_stats`), equal a recomputation from the bookings; the per-venue rows sum to
//! the guest row.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult};
use uuid::Uuid;

use super::{Differences, Discrepancy, Params, fetch};
use crate::error::Result;
use crate::money::from_units;

#[derive(Debug, FromQueryResult)]
struct GuestRow {
    id: Uuid,
    total_bookings: i64,
    cancelled_bookings: i64,
    no_show_bookings: i64,
    total_spent: i64,
    average_party_size: i64,
    total_diners: i64,
    last_booking_at: Option<DateTime<Utc>>,
    expected_total_bookings: i64,
    expected_cancelled_bookings: i64,
    expected_no_show_bookings: i64,
    expected_total_spent: i64,
    expected_average_party_size: i64,
    expected_total_diners: i64,
    expected_last_booking_at: Option<DateTime<Utc>>,
}

/// **Guest aggregates equal a recomputation from the bookings** (DOMAIN.md "Promoter and
/// guest metrics", with the seed's definitions), over all of the guest's bookings at every
/// venue: `total_bookings` (every status), `cancelled_bookings`, `no_show_bookings`,
/// `total_spent` (sum of `total_fee` of the COMPLETED bookings), `average_party_size` (mean
/// diners over all bookings in tenths, rounded half away from zero; 2.0, the column default,
/// without bookings), `total_diners` (sum of `diners` over all bookings, every status; 0
/// without bookings) and `last_booking_at` (latest `booking_time`, any status; NULL without
/// bookings).
///
/// Guests are many (one per eight bookings in the demo), so the comparison happens in the
/// database and only the guests that disagree come back. The mean is rounded with integer
/// arithmetic, exact for these non-negative numbers: `round(diners * 10 / n) =
/// (2 * diners * 10 + n) / (2 * n)` in integer division.
#[tracing::instrument(skip_all)]
pub async fn guest_aggregates_match_bookings(
    db: &impl ConnectionTrait,
    venue: Option<Uuid>,
) -> Result<Vec<Discrepancy>> {
    let params = Params::new(db.get_database_backend(), venue);
    let sql = format!(
        "SELECT * FROM ( \
           SELECT g.id, \
             CAST(g.total_bookings AS BIGINT) AS total_bookings, \
             CAST(g.cancelled_bookings AS BIGINT) AS cancelled_bookings, \
             CAST(g.no_show_bookings AS BIGINT) AS no_show_bookings, \
             g.total_spent, g.average_party_size, \
             CAST(g.total_diners AS BIGINT) AS total_diners, g.last_booking_at, \
             COALESCE(e.bookings, 0) AS expected_total_bookings, \
             COALESCE(e.cancelled, 0) AS expected_cancelled_bookings, \
             COALESCE(e.no_show, 0) AS expected_no_show_bookings, \
             COALESCE(e.spent, 0) AS expected_total_spent, \
             CAST(CASE WHEN e.bookings IS NULL THEN 20 \
               ELSE (2 * e.diners * 10 + e.bookings) / (2 * e.bookings) END AS BIGINT) \
               AS expected_average_party_size, \
             COALESCE(e.diners, 0) AS expected_total_diners, \
             e.last_booking_at AS expected_last_booking_at \
           FROM guests g LEFT JOIN ( \
             SELECT b.guest_id, COUNT(*) AS bookings, \
               COUNT(CASE WHEN b.status = 'CANCELLED' THEN 1 END) AS cancelled, \
               COUNT(CASE WHEN b.status = 'NO_SHOW' THEN 1 END) AS no_show, \
               CAST(COALESCE(SUM(CASE WHEN b.status = 'COMPLETED' THEN b.total_fee END), 0) AS BIGINT) AS spent, \
               CAST(SUM(b.diners) AS BIGINT) AS diners, \
               MAX(b.booking_time) AS last_booking_at \
             FROM bookings b WHERE {bookings_scope} \
             GROUP BY b.guest_id \
           ) e ON e.guest_id = g.id \
           WHERE {guests_scope} \
         ) x \
         WHERE x.total_bookings <> x.expected_total_bookings \
           OR x.cancelled_bookings <> x.expected_cancelled_bookings \
           OR x.no_show_bookings <> x.expected_no_show_bookings \
           OR x.total_spent <> x.expected_total_spent \
           OR x.average_party_size <> x.expected_average_party_size \
           OR x.total_diners <> x.expected_total_diners \
           OR x.last_booking_at IS DISTINCT FROM x.expected_last_booking_at \
         ORDER BY x.id",
        bookings_scope = params.guest_in_scope("b.guest_id"),
        guests_scope = params.guest_in_scope("g.id"),
    );
    let rows: Vec<GuestRow> = fetch(db, params, sql).await?;
    Ok(rows
        .into_iter()
        .map(|row| Discrepancy {
            kind: "guest_aggregate",
            entity: "guest",
            id: row.id,
            message: guest_message(&row),
        })
        .collect())
}

/// The fields of one guest that disagree with the recomputation.
fn guest_message(row: &GuestRow) -> String {
    let mut diff = Differences::new("stored", "recomputed");
    diff.count(
        "total_bookings",
        row.total_bookings,
        row.expected_total_bookings,
    );
    diff.count(
        "cancelled_bookings",
        row.cancelled_bookings,
        row.expected_cancelled_bookings,
    );
    diff.count(
        "no_show_bookings",
        row.no_show_bookings,
        row.expected_no_show_bookings,
    );
    diff.money("total_spent", row.total_spent, row.expected_total_spent);
    diff.compare(
        "average_party_size",
        row.average_party_size,
        row.expected_average_party_size,
        |tenths| from_units(tenths, 1).to_string(),
    );
    diff.count("total_diners", row.total_diners, row.expected_total_diners);
    diff.time(
        "last_booking_at",
        row.last_booking_at,
        row.expected_last_booking_at,
    );
    diff.or_form_only().join("; ")
}

// ---------------------------------------------------------------------------------------
// 3b. Guest aggregates per venue
// ---------------------------------------------------------------------------------------

/// A guest's counters as two sources give them (stored and expected, or the guest row and
/// the sum of its per-venue rows).
#[derive(Debug, FromQueryResult)]
struct GuestVenueRow {
    guest_id: Uuid,
    venue_id: Option<Uuid>,
    stored: bool,
    total_bookings: i64,
    cancelled_bookings: i64,
    no_show_bookings: i64,
    total_spent: i64,
    total_diners: i64,
    last_booking_at: Option<DateTime<Utc>>,
    expected_total_bookings: i64,
    expected_cancelled_bookings: i64,
    expected_no_show_bookings: i64,
    expected_total_spent: i64,
    expected_total_diners: i64,
    expected_last_booking_at: Option<DateTime<Utc>>,
}

/// The columns of [`GuestVenueRow`] that differ, named and shown as `first` against
/// `second` (e.g. "stored 3, recomputed 2").
fn guest_counter_problems(
    row: &GuestVenueRow,
    first: &'static str,
    second: &'static str,
) -> Vec<String> {
    let mut diff = Differences::new(first, second);
    diff.count(
        "total_bookings",
        row.total_bookings,
        row.expected_total_bookings,
    );
    diff.count(
        "cancelled_bookings",
        row.cancelled_bookings,
        row.expected_cancelled_bookings,
    );
    diff.count(
        "no_show_bookings",
        row.no_show_bookings,
        row.expected_no_show_bookings,
    );
    diff.money("total_spent", row.total_spent, row.expected_total_spent);
    diff.count("total_diners", row.total_diners, row.expected_total_diners);
    diff.time(
        "last_booking_at",
        row.last_booking_at,
        row.expected_last_booking_at,
    );
    diff.or_form_only()
}

/// `x.<column> <> x.expected_<column>` for every counter of [`GuestVenueRow`], OR-ed.
const GUEST_COUNTERS_DIFFER: &str = "x.total_bookings <> x.expected_total_bookings \
     OR x.cancelled_bookings <> x.expected_cancelled_bookings \
     OR x.no_show_bookings <> x.expected_no_show_bookings \
     OR x.total_spent <> x.expected_total_spent \
     OR x.total_diners <> x.expected_total_diners \
     OR x.last_booking_at IS DISTINCT FROM x.expected_last_booking_at";

/// **Each guest's per-venue row equals a recomputation from the guest's bookings at that
/// venue** (DOMAIN.md "Promoter and guest metrics": what a user sees of a guest covers only
/// the venues they can read, so the counters are kept per guest and venue, in
/// `guest_venue_stats`): `total_bookings` (every status), `cancelled_bookings`,
/// `no_show_bookings`, `total_spent` (sum of `total_fee` of the COMPLETED bookings),
/// `total_diners` (sum of `diners`, every status) and `last_booking_at` (latest
/// `booking_time`, any status). A (guest, venue) pair with bookings and no row is reported
/// too; a row without bookings must hold zeros.
///
/// Two set-based halves joined by `UNION ALL` (the stored rows against the recomputation,
/// and the recomputed pairs that have no row), so only the pairs that disagree come back.
/// With a venue, only that venue's rows and bookings.
#[tracing::instrument(skip_all)]
pub async fn guest_venue_aggregates_match_bookings(
    db: &impl ConnectionTrait,
    venue: Option<Uuid>,
) -> Result<Vec<Discrepancy>> {
    let params = Params::new(db.get_database_backend(), venue);
    let expected = format!(
        "SELECT b.guest_id, b.venue_id, COUNT(*) AS bookings, \
           COUNT(CASE WHEN b.status = 'CANCELLED' THEN 1 END) AS cancelled, \
           COUNT(CASE WHEN b.status = 'NO_SHOW' THEN 1 END) AS no_show, \
           CAST(COALESCE(SUM(CASE WHEN b.status = 'COMPLETED' THEN b.total_fee END), 0) AS BIGINT) AS spent, \
           CAST(SUM(b.diners) AS BIGINT) AS diners, \
           MAX(b.booking_time) AS last_booking_at \
         FROM bookings b WHERE {scope} \
         GROUP BY b.guest_id, b.venue_id",
        scope = params.venue_is("b.venue_id"),
    );
    let sql = format!(
        "SELECT * FROM ( \
           SELECT s.guest_id, s.venue_id, TRUE AS stored, \
             CAST(s.total_bookings AS BIGINT) AS total_bookings, \
             CAST(s.cancelled_bookings AS BIGINT) AS cancelled_bookings, \
             CAST(s.no_show_bookings AS BIGINT) AS no_show_bookings, \
             s.total_spent, \
             CAST(s.total_diners AS BIGINT) AS total_diners, \
             s.last_booking_at, \
             CAST(COALESCE(e.bookings, 0) AS BIGINT) AS expected_total_bookings, \
             CAST(COALESCE(e.cancelled, 0) AS BIGINT) AS expected_cancelled_bookings, \
             CAST(COALESCE(e.no_show, 0) AS BIGINT) AS expected_no_show_bookings, \
             CAST(COALESCE(e.spent, 0) AS BIGINT) AS expected_total_spent, \
             CAST(COALESCE(e.diners, 0) AS BIGINT) AS expected_total_diners, \
             e.last_booking_at AS expected_last_booking_at \
           FROM guest_venue_stats s LEFT JOIN ({expected}) e \
             ON e.guest_id = s.guest_id AND e.venue_id = s.venue_id \
           WHERE {rows_scope} \
           UNION ALL \
           SELECT e.guest_id, e.venue_id, FALSE AS stored, \
             CAST(0 AS BIGINT), CAST(0 AS BIGINT), CAST(0 AS BIGINT), CAST(0 AS BIGINT), \
             CAST(0 AS BIGINT), NULL, \
             CAST(e.bookings AS BIGINT), CAST(e.cancelled AS BIGINT), \
             CAST(e.no_show AS BIGINT), CAST(e.spent AS BIGINT), CAST(e.diners AS BIGINT), \
             e.last_booking_at \
           FROM ({expected}) e LEFT JOIN guest_venue_stats s \
             ON s.guest_id = e.guest_id AND s.venue_id = e.venue_id \
           WHERE s.guest_id IS NULL \
         ) x \
         WHERE x.stored = FALSE OR {GUEST_COUNTERS_DIFFER} \
         ORDER BY x.guest_id, x.venue_id",
        rows_scope = params.venue_is("s.venue_id"),
    );
    let rows: Vec<GuestVenueRow> = fetch(db, params, sql).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let venue = row.venue_id.map_or("none".to_owned(), |id| id.to_string());
            let message = if row.stored {
                format!(
                    "venue {venue}: {}",
                    guest_counter_problems(&row, "stored", "recomputed").join("; ")
                )
            } else {
                format!(
                    "venue {venue}: no guest_venue_stats row for {} booking(s)",
                    row.expected_total_bookings
                )
            };
            Discrepancy {
                kind: "guest_venue_aggregate",
                entity: "guest",
                id: row.guest_id,
                message,
            }
        })
        .collect())
}

/// **A guest's per-venue rows sum to the guest row**: the counts, `total_spent` and
/// `total_diners` add up, and the latest `last_booking_at` of the rows is the guest's. With
/// [`guest_aggregates_match_bookings`] and [`guest_venue_aggregates_match_bookings`] this
/// says the two stores agree; on its own, scoped to a venue, it also catches a row at
/// another venue that drifted from the guest row. Every guest in scope (those who booked at
/// the venue, with one) over all of their rows.
#[tracing::instrument(skip_all)]
pub async fn guest_venue_aggregates_sum_to_guest(
    db: &impl ConnectionTrait,
    venue: Option<Uuid>,
) -> Result<Vec<Discrepancy>> {
    let params = Params::new(db.get_database_backend(), venue);
    let sql = format!(
        "SELECT * FROM ( \
           SELECT g.id AS guest_id, CAST(NULL AS {uuid}) AS venue_id, TRUE AS stored, \
             CAST(g.total_bookings AS BIGINT) AS total_bookings, \
             CAST(g.cancelled_bookings AS BIGINT) AS cancelled_bookings, \
             CAST(g.no_show_bookings AS BIGINT) AS no_show_bookings, \
             g.total_spent, \
             CAST(g.total_diners AS BIGINT) AS total_diners, \
             g.last_booking_at, \
             CAST(COALESCE(s.bookings, 0) AS BIGINT) AS expected_total_bookings, \
             CAST(COALESCE(s.cancelled, 0) AS BIGINT) AS expected_cancelled_bookings, \
             CAST(COALESCE(s.no_show, 0) AS BIGINT) AS expected_no_show_bookings, \
             CAST(COALESCE(s.spent, 0) AS BIGINT) AS expected_total_spent, \
             CAST(COALESCE(s.diners, 0) AS BIGINT) AS expected_total_diners, \
             s.last_booking_at AS expected_last_booking_at \
           FROM guests g LEFT JOIN ( \
             SELECT r.guest_id, SUM(r.total_bookings) AS bookings, \
               SUM(r.cancelled_bookings) AS cancelled, SUM(r.no_show_bookings) AS no_show, \
               SUM(r.total_spent) AS spent, SUM(r.total_diners) AS diners, \
               MAX(r.last_booking_at) AS last_booking_at \
             FROM guest_venue_stats r WHERE {rows_scope} GROUP BY r.guest_id \
           ) s ON s.guest_id = g.id \
           WHERE {guests_scope} \
         ) x \
         WHERE {GUEST_COUNTERS_DIFFER} \
         ORDER BY x.guest_id",
        uuid = match params.backend {
            DbBackend::Postgres => "UUID",
            _ => "BLOB",
        },
        rows_scope = params.guest_in_scope("r.guest_id"),
        guests_scope = params.guest_in_scope("g.id"),
    );
    let rows: Vec<GuestVenueRow> = fetch(db, params, sql).await?;
    Ok(rows
        .into_iter()
        .map(|row| Discrepancy {
            kind: "guest_venue_sum",
            entity: "guest",
            id: row.guest_id,
            message: guest_counter_problems(&row, "guest row", "sum over venues").join("; "),
        })
        .collect())
}
