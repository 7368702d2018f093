//! Time as the database stores it: UTC, truncated to microseconds (PostgreSQL's precision),
//! so what is written compares equal to what is read back on both databases.

use chrono::{
    DateTime, DurationRound, LocalResult, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc,
};
use chrono_tz::Tz;
use prima_entity::venues;

use crate::error::{Error, Result};

/// The current instant, in UTC, at microsecond precision.
pub fn now() -> DateTime<Utc> {
    truncate(Utc::now())
}

/// An instant cut to microsecond precision.
pub fn truncate(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(at)
}

/// A venue's time zone (an unknown one is an internal error: venues are validated when
/// written).
pub(crate) fn venue_zone(venue: &venues::Model) -> Result<Tz> {
    venue.timezone.parse().map_err(|_| {
        Error::internal(anyhow::anyhow!(
            "venue {} has an unknown time zone {:?}",
            venue.id,
            venue.timezone
        ))
    })
}

/// The first instant of a local day: midnight, or where a daylight-saving gap swallows
/// midnight, the first local minute that exists (the earlier one when a fold doubles it).
pub(crate) fn start_of_day(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    let mut local = date.and_time(NaiveTime::MIN);
    for _ in 0..24 * 60 {
        match tz.from_local_datetime(&local) {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => return t.with_timezone(&Utc),
            LocalResult::None => local += TimeDelta::minutes(1),
        }
    }
    date.and_time(NaiveTime::MIN).and_utc()
}
