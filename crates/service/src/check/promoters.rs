//! Invariant 2: the promoter aggregates equal a recomputation from the bookings.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use prima_entity::venues;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, QuerySelect,
};
use uuid::Uuid;

use super::{Differences, Discrepancy, Params, fetch};
use crate::error::Result;
use crate::money::rate;
use crate::promoters::metrics;

#[derive(Debug, FromQueryResult)]
struct PromoterRow {
    id: Uuid,
    timezone: String,
    total_bookings: i64,
    total_revenue: i64,
    average_booking_value: i64,
    conversion_rate: i64,
    no_show_rate: i64,
    cancel_rate: i64,
    month_bookings: i64,
    month_revenue: i64,
    month_new_guests: i64,
    month_repeat_guests: i64,
    stored_all_bookings: i64,
    stored_completed_bookings: i64,
    stored_cancelled_bookings: i64,
    stored_no_show_bookings: i64,
    month_known: bool,
    all_bookings: i64,
    counted: i64,
    revenue: i64,
    completed: i64,
    cancelled: i64,
    no_show: i64,
    expected_month_bookings: i64,
    expected_month_revenue: i64,
    new_guests: i64,
    repeat_guests: i64,
}

/// **Promoter aggregates equal a recomputation from the bookings** (DOMAIN.md "Promoter and
/// guest metrics", with the seed's definitions), over all of the promoter's bookings:
///
/// - `total_bookings` counts, and `total_revenue` sums the `total_fee` of, the CONFIRMED and
///   COMPLETED bookings; `average_booking_value = total_revenue / total_bookings`, to the cent.
/// - The counters behind the rates: `all_bookings` counts every status (PENDING included),
///   `completed_bookings`, `cancelled_bookings`, `no_show_bookings` their status.
/// - `cancel_rate = cancelled / all` (every status, PENDING included), `no_show_rate =
///   no_show / (completed + no_show)`, `conversion_rate = completed / (completed + cancelled
///   + no_show)`, each to 4 places; 0 when the divisor is 0.
/// - The month fields cover the bookings whose `booking_time` is in the calendar month of
///   `now` in the time zone of the promoter's venue: `month_bookings` / `month_revenue` as
///   above; `month_new_guests` counts guests whose first booking (earliest `booking_time`,
///   any status) with the promoter is in the month, `month_repeat_guests` guests with a
///   booking (any status) in the month whose first booking with the promoter is earlier.
///   These depend on `now`: a month that has turned since they were written shows up here
///   until they are refreshed.
///
/// Every ratio is rounded once, half away from zero. One statement: the month boundaries of
/// each time zone are computed here and joined in as a `VALUES` list; counts and sums are
/// grouped by promoter, first bookings by (promoter, guest). Promoters are few, so each comes
/// back and the rates are computed in exact decimals, exactly as the seed does.
#[tracing::instrument(skip_all)]
pub async fn promoter_aggregates_match_bookings(
    db: &impl ConnectionTrait,
    venue: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<Vec<Discrepancy>> {
    let zones = time_zones(db, venue).await?;
    if zones.is_empty() {
        return Ok(Vec::new());
    }
    let mut params = Params::new(db.get_database_backend(), venue);
    let months = month_values(&mut params, &zones, now);
    let sql = promoter_sql(&months, &params.venue_is("p.venue_id"));
    let rows: Vec<PromoterRow> = fetch(db, params, sql).await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let problems = promoter_problems(&row);
            (!problems.is_empty()).then(|| Discrepancy {
                kind: "promoter_aggregate",
                entity: "promoter",
                id: row.id,
                message: problems.join("; "),
            })
        })
        .collect())
}

/// The time zones of the venues in scope (one venue, or all).
async fn time_zones(db: &impl ConnectionTrait, venue: Option<Uuid>) -> Result<Vec<String>> {
    let mut query = venues::Entity::find()
        .select_only()
        .column(venues::Column::Timezone)
        .distinct();
    if let Some(venue) = venue {
        query = query.filter(venues::Column::Id.eq(venue));
    }
    Ok(query.into_tuple().all(db).await?)
}

/// The `VALUES` rows `(timezone, month_start, month_end)` of the month of `now` in each of
/// `zones`, bound into `params`.
fn month_values(params: &mut Params, zones: &[String], now: DateTime<Utc>) -> String {
    zones
        .iter()
        .map(|zone| {
            // An unknown time zone gets no bounds: its promoters' month fields are reported
            // as unchecked rather than compared with a guess.
            let (start, end) = match month_bounds(zone, now) {
                Some((start, end)) => (Some(start), Some(end)),
                None => (None, None),
            };
            format!(
                "({}, {}, {})",
                params.bind(zone.clone()),
                params.bind(start),
                params.bind(end)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The one statement: each promoter in `scope` (an SQL condition on `p.venue_id`) with its
/// stored aggregates and their recomputation from the bookings, using the `months` rows.
fn promoter_sql(months: &str, scope: &str) -> String {
    const COUNTED: &str = "b.status IN ('CONFIRMED', 'COMPLETED')";
    const IN_MONTH: &str = "b.booking_time >= s.month_start AND b.booking_time < s.month_end";
    format!(
        "WITH months (timezone, month_start, month_end) AS (VALUES {months}), \
         scope AS ( \
           SELECT p.id, v.timezone, m.month_start, m.month_end \
           FROM promoters p JOIN venues v ON v.id = p.venue_id \
           LEFT JOIN months m ON m.timezone = v.timezone \
           WHERE {scope} \
         ), \
         counts AS ( \
           SELECT b.promoter_id, \
             COUNT(*) AS all_bookings, \
             COUNT(CASE WHEN {COUNTED} THEN 1 END) AS counted, \
             CAST(COALESCE(SUM(CASE WHEN {COUNTED} THEN b.total_fee END), 0) AS BIGINT) AS revenue, \
             COUNT(CASE WHEN b.status = 'COMPLETED' THEN 1 END) AS completed, \
             COUNT(CASE WHEN b.status = 'CANCELLED' THEN 1 END) AS cancelled, \
             COUNT(CASE WHEN b.status = 'NO_SHOW' THEN 1 END) AS no_show, \
             COUNT(CASE WHEN {COUNTED} AND {IN_MONTH} THEN 1 END) AS month_bookings, \
             CAST(COALESCE(SUM(CASE WHEN {COUNTED} AND {IN_MONTH} THEN b.total_fee END), 0) AS BIGINT) \
               AS month_revenue \
           FROM bookings b JOIN scope s ON s.id = b.promoter_id \
           GROUP BY b.promoter_id \
         ), \
         relationships AS ( \
           SELECT b.promoter_id, MIN(b.booking_time) AS first_at, \
             MAX(CASE WHEN {IN_MONTH} THEN 1 ELSE 0 END) AS this_month \
           FROM bookings b JOIN scope s ON s.id = b.promoter_id \
           GROUP BY b.promoter_id, b.guest_id \
         ), \
         month_guests AS ( \
           SELECT r.promoter_id, \
             COUNT(CASE WHEN r.this_month = 1 AND r.first_at >= s.month_start THEN 1 END) AS new_guests, \
             COUNT(CASE WHEN r.this_month = 1 AND r.first_at < s.month_start THEN 1 END) AS repeat_guests \
           FROM relationships r JOIN scope s ON s.id = r.promoter_id \
           GROUP BY r.promoter_id \
         ) \
         SELECT p.id, s.timezone, \
           CAST(p.total_bookings AS BIGINT) AS total_bookings, p.total_revenue, \
           p.average_booking_value, p.conversion_rate, p.no_show_rate, p.cancel_rate, \
           CAST(p.month_bookings AS BIGINT) AS month_bookings, p.month_revenue, \
           CAST(p.month_new_guests AS BIGINT) AS month_new_guests, \
           CAST(p.month_repeat_guests AS BIGINT) AS month_repeat_guests, \
           CAST(p.all_bookings AS BIGINT) AS stored_all_bookings, \
           CAST(p.completed_bookings AS BIGINT) AS stored_completed_bookings, \
           CAST(p.cancelled_bookings AS BIGINT) AS stored_cancelled_bookings, \
           CAST(p.no_show_bookings AS BIGINT) AS stored_no_show_bookings, \
           (s.month_start IS NOT NULL) AS month_known, \
           COALESCE(c.all_bookings, 0) AS all_bookings, COALESCE(c.counted, 0) AS counted, \
           COALESCE(c.revenue, 0) AS revenue, COALESCE(c.completed, 0) AS completed, \
           COALESCE(c.cancelled, 0) AS cancelled, COALESCE(c.no_show, 0) AS no_show, \
           COALESCE(c.month_bookings, 0) AS expected_month_bookings, \
           COALESCE(c.month_revenue, 0) AS expected_month_revenue, \
           COALESCE(g.new_guests, 0) AS new_guests, COALESCE(g.repeat_guests, 0) AS repeat_guests \
         FROM promoters p JOIN scope s ON s.id = p.id \
         LEFT JOIN counts c ON c.promoter_id = p.id \
         LEFT JOIN month_guests g ON g.promoter_id = p.id \
         ORDER BY p.id",
    )
}

/// The fields of one promoter that disagree with the recomputation.
fn promoter_problems(row: &PromoterRow) -> Vec<String> {
    let mut diff = Differences::new("stored", "recomputed");
    let fraction = |units: i64| rate(units).to_string();
    diff.count("total_bookings", row.total_bookings, row.counted);
    diff.money("total_revenue", row.total_revenue, row.revenue);
    diff.count("all_bookings", row.stored_all_bookings, row.all_bookings);
    diff.count(
        "completed_bookings",
        row.stored_completed_bookings,
        row.completed,
    );
    diff.count(
        "cancelled_bookings",
        row.stored_cancelled_bookings,
        row.cancelled,
    );
    diff.count("no_show_bookings", row.stored_no_show_bookings, row.no_show);
    diff.money(
        "average_booking_value",
        row.average_booking_value,
        metrics::average_booking_value(row.revenue, row.counted),
    );
    diff.compare(
        "conversion_rate",
        row.conversion_rate,
        metrics::conversion_rate(row.completed, row.cancelled, row.no_show),
        fraction,
    );
    diff.compare(
        "no_show_rate",
        row.no_show_rate,
        metrics::no_show_rate(row.completed, row.no_show),
        fraction,
    );
    diff.compare(
        "cancel_rate",
        row.cancel_rate,
        metrics::cancel_rate(row.cancelled, row.all_bookings),
        fraction,
    );
    if row.month_known {
        diff.count(
            "month_bookings",
            row.month_bookings,
            row.expected_month_bookings,
        );
        diff.money(
            "month_revenue",
            row.month_revenue,
            row.expected_month_revenue,
        );
        diff.count("month_new_guests", row.month_new_guests, row.new_guests);
        diff.count(
            "month_repeat_guests",
            row.month_repeat_guests,
            row.repeat_guests,
        );
    } else {
        diff.note(format!(
            "month fields not checked: the venue's time zone {:?} is unknown",
            row.timezone
        ));
    }
    diff.into_vec()
}

/// `[start, end)` of the calendar month of `now` in `timezone`, exactly as the write path
/// computes it when it keeps the month fields ([`crate::commissions::month::month_bounds`]: local
/// midnight of the 1st, or the first local minute that exists when midnight does not);
/// `None` for an unknown time zone.
fn month_bounds(timezone: &str, now: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let tz: Tz = timezone.parse().ok()?;
    Some(crate::commissions::month::month_bounds(tz, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_starts_at_local_midnight_of_the_first() {
        let now = DateTime::parse_from_rfc3339("2026-03-01T03:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        // Still February in New York (UTC-5).
        let (start, end) = month_bounds("America/New_York", now).unwrap();
        assert_eq!(start.to_rfc3339(), "2026-02-01T05:00:00+00:00");
        assert_eq!(end.to_rfc3339(), "2026-03-01T05:00:00+00:00");
        assert_eq!(month_bounds("Mars/Olympus_Mons", now), None);
    }
}
