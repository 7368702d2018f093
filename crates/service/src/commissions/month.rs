//! The calendar month of a venue: `[start, end)` in UTC of a local month, as the TIERED
//! commission rungs count it and as the promoters' `month_*` fields cover it (DOMAIN.md
//! "Commissions", "Promoter and guest metrics").

use chrono::{DateTime, Datelike, Months, Utc};
use chrono_tz::Tz;
use prima_entity::venues;

use crate::error::Result;
use crate::time::{start_of_day, venue_zone};

/// `[start, end)` in UTC of the calendar month containing `at` in the venue's time zone
/// (an unknown time zone is an internal error: venues are validated when written).
pub(crate) fn venue_month(
    venue: &venues::Model,
    at: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>)> {
    Ok(month_bounds(venue_zone(venue)?, at))
}

/// `[start, end)` in UTC of the local calendar month containing `at`.
pub(crate) fn month_bounds(tz: Tz, at: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let local = at.with_timezone(&tz).date_naive();
    let first = local.with_day(1).unwrap_or(local);
    let next = first.checked_add_months(Months::new(1)).unwrap_or(first);
    (start_of_day(tz, first), start_of_day(tz, next))
}

#[cfg(test)]
mod tests {
    use super::super::tests::utc;
    use super::*;

    #[test]
    fn a_local_month_starts_at_local_midnight() {
        let chicago: Tz = "America/Chicago".parse().unwrap();
        assert_eq!(
            month_bounds(chicago, utc("2026-02-01T03:00:00Z")),
            (utc("2026-01-01T06:00:00Z"), utc("2026-02-01T06:00:00Z"))
        );
        // Across a daylight-saving change: March starts in CST, April in CDT.
        assert_eq!(
            month_bounds(chicago, utc("2026-03-20T12:00:00Z")),
            (utc("2026-03-01T06:00:00Z"), utc("2026-04-01T05:00:00Z"))
        );
        // Where midnight does not exist (Santiago skips 00:00-01:00 in September), the day
        // starts at the first local minute that does.
        let santiago: Tz = "America/Santiago".parse().unwrap();
        let day = chrono::NaiveDate::from_ymd_opt(2025, 9, 7).unwrap();
        assert_eq!(start_of_day(santiago, day), utc("2025-09-07T04:00:00Z"));
    }
}
