//! Time as the database stores it: UTC, truncated to microseconds (PostgreSQL's precision),
//! so what is written compares equal to what is read back on both databases.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

/// The current instant, in UTC, at microsecond precision.
pub fn now() -> DateTime<Utc> {
    truncate(Utc::now())
}

/// An instant cut to microsecond precision.
pub fn truncate(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(at)
}
