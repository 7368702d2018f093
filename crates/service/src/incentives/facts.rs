//! A programme's measures recomputed from bookings (DOMAIN.md "Incentives"): who is
//! eligible, and each promoter's counts in the period, read in two or three statements
//! whatever the number of promoters. Activation and resumption start from them; the
//! booking changes then move them by deltas ([`super::progress`]).
//!
//! - Eligible: the venue's ACTIVE promoters of an eligible tier who joined at least
//!   `min_tenure_days` before `period_start`, and, when `max_previous_wins` is set, have
//!   fewer ACHIEVED results than that in the venue's earlier programmes (started before
//!   this one, not CANCELLED).
//! - Counted: the promoter's CONFIRMED + COMPLETED bookings at the venue whose
//!   `booking_time` is in the period, and their `total_fee`; completed: the COMPLETED ones;
//!   closed: COMPLETED + CANCELLED + NO_SHOW.
//! - New guests: guests whose first booking with the promoter at the venue (any status)
//!   is in the period.
//! - Values, in hundredths of the unit: BOOKING_COUNT `100 x counted`, REVENUE_TARGET the
//!   fees in cents, NEW_GUESTS `100 x new guests`, CONVERSION_RATE `completed / closed` in
//!   hundredths of a percent (`7550` = 75.50 %), rounded half up, 0 with nothing closed.

use std::collections::HashMap;

use chrono::TimeDelta;
use prima_entity::enums::{IncentiveStatus, IncentiveType};
use prima_entity::incentives;
use sea_orm::{ConnectionTrait, Statement, Value};
use uuid::Uuid;

use super::manage::stored_tiers;
use crate::error::Result;

/// One promoter's counts in a programme's period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Facts {
    /// CONFIRMED + COMPLETED bookings.
    pub counted: i64,
    /// Their `total_fee`, in cents.
    pub revenue: i64,
    /// COMPLETED bookings.
    pub completed: i32,
    /// COMPLETED + CANCELLED + NO_SHOW bookings.
    pub closed: i32,
    /// Guests whose first booking with the promoter is in the period.
    pub new_guests: i64,
}

impl Facts {
    /// The programme's value for these counts, in hundredths of its unit.
    pub fn value(&self, kind: IncentiveType) -> i64 {
        match kind {
            IncentiveType::BookingCount => 100 * self.counted,
            IncentiveType::RevenueTarget => self.revenue,
            IncentiveType::NewGuests => 100 * self.new_guests,
            IncentiveType::ConversionRate => conversion(self.completed, self.closed),
        }
    }
}

/// `completed / closed` in hundredths of a percent, rounded half up; 0 when nothing closed.
pub fn conversion(completed: i32, closed: i32) -> i64 {
    if closed <= 0 {
        return 0;
    }
    let (completed, closed) = (i64::from(completed.max(0)), i64::from(closed));
    (2 * completed * 10_000 + closed) / (2 * closed)
}

/// A set of promoters as SQL: a `SELECT` of promoter ids and its bound values (`$1`..).
pub(super) struct Who {
    /// The subquery.
    pub sql: String,
    /// Its values, in placeholder order.
    pub values: Vec<Value>,
}

impl Who {
    /// The promoters eligible for `program` (see the module documentation).
    pub fn eligible(program: &incentives::Model) -> Who {
        let tiers: Vec<String> = stored_tiers(program)
            .iter()
            .map(|t| format!("'{}'", t.as_str()))
            .collect();
        // Tier names come from the enum, never from client text.
        let tiers = if tiers.is_empty() {
            "NULL".to_owned()
        } else {
            tiers.join(", ")
        };
        let wins = match program.max_previous_wins {
            None => String::new(),
            Some(max) => format!(
                " AND (SELECT COUNT(*) FROM incentive_progress w \
                   JOIN incentives i ON i.id = w.incentive_id \
                   WHERE w.promoter_id = p.id AND i.venue_id = $1 AND i.id <> $4 \
                     AND i.period_start < $3 AND i.status <> '{cancelled}' \
                     AND w.status = 'ACHIEVED') < {max}",
                cancelled = IncentiveStatus::Cancelled.as_str(),
            ),
        };
        let cutoff = program.period_start - TimeDelta::days(i64::from(program.min_tenure_days));
        Who {
            sql: format!(
                "SELECT p.id FROM promoters p WHERE p.venue_id = $1 AND p.status = 'ACTIVE' \
                 AND p.tier IN ({tiers}) AND p.joined_at <= $2{wins}"
            ),
            values: vec![
                program.venue_id.into(),
                cutoff.into(),
                program.period_start.into(),
                program.id.into(),
            ],
        }
    }

    /// Only `promoter` of this set.
    pub fn only(mut self, promoter: Uuid) -> Who {
        self.sql
            .push_str(&format!(" AND p.id = ${}", self.values.len() + 1));
        self.values.push(promoter.into());
        self
    }

    /// The promoters who have a progress row in `program`.
    pub fn participants(program: &incentives::Model) -> Who {
        Who {
            sql: "SELECT promoter_id FROM incentive_progress WHERE incentive_id = $1".into(),
            values: vec![program.id.into()],
        }
    }
}

/// The facts of every promoter of `who` in `program`'s period (those with no booking
/// get [`Facts::default`]), by promoter id, ascending.
pub(super) async fn facts(
    db: &impl ConnectionTrait,
    program: &incentives::Model,
    who: Who,
) -> Result<Vec<(Uuid, Facts)>> {
    let backend = db.get_database_backend();
    let n = who.values.len();
    let (venue, start, end) = (n + 1, n + 2, n + 3);
    let mut values = who.values;
    values.extend([
        program.venue_id.into(),
        program.period_start.into(),
        program.period_end.into(),
    ]);
    let promoters: Vec<Uuid> = db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "SELECT id FROM promoters WHERE id IN ({}) ORDER BY id",
                who.sql
            ),
            values[..n].to_vec(),
        ))
        .await?
        .iter()
        .map(|row| row.try_get_by_index(0))
        .collect::<std::result::Result<_, _>>()?;
    let counted = "b.status IN ('CONFIRMED', 'COMPLETED')";
    let sums = db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "SELECT b.promoter_id, \
                   CAST(SUM(CASE WHEN {counted} THEN 1 ELSE 0 END) AS BIGINT), \
                   CAST(SUM(CASE WHEN {counted} THEN b.total_fee ELSE 0 END) AS BIGINT), \
                   CAST(SUM(CASE WHEN b.status = 'COMPLETED' THEN 1 ELSE 0 END) AS BIGINT), \
                   CAST(SUM(CASE WHEN b.status IN ('COMPLETED', 'CANCELLED', 'NO_SHOW') \
                     THEN 1 ELSE 0 END) AS BIGINT) \
                 FROM bookings b WHERE b.venue_id = ${venue} AND b.booking_time >= ${start} \
                   AND b.booking_time < ${end} AND b.promoter_id IN ({}) \
                 GROUP BY b.promoter_id",
                who.sql
            ),
            values.clone(),
        ))
        .await?;
    let mut found: HashMap<Uuid, Facts> = HashMap::with_capacity(sums.len());
    for row in sums {
        let small = |i: usize| -> std::result::Result<i32, sea_orm::DbErr> {
            let v: i64 = row.try_get_by_index(i)?;
            Ok(i32::try_from(v).unwrap_or(i32::MAX))
        };
        found.insert(
            row.try_get_by_index(0)?,
            Facts {
                counted: row.try_get_by_index(1)?,
                revenue: row.try_get_by_index(2)?,
                completed: small(3)?,
                closed: small(4)?,
                new_guests: 0,
            },
        );
    }
    if program.r#type == IncentiveType::NewGuests {
        let firsts = db
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                format!(
                    "SELECT f.promoter_id, CAST(COUNT(*) AS BIGINT) FROM ( \
                       SELECT b.promoter_id, b.guest_id, MIN(b.booking_time) AS first_time \
                       FROM bookings b WHERE b.venue_id = ${venue} AND b.promoter_id IN ({}) \
                       GROUP BY b.promoter_id, b.guest_id) f \
                     WHERE f.first_time >= ${start} AND f.first_time < ${end} \
                     GROUP BY f.promoter_id",
                    who.sql
                ),
                values,
            ))
            .await?;
        for row in firsts {
            found
                .entry(row.try_get_by_index(0)?)
                .or_default()
                .new_guests = row.try_get_by_index(1)?;
        }
    }
    Ok(promoters
        .into_iter()
        .map(|p| (p, found.get(&p).copied().unwrap_or_default()))
        .collect())
}

/// The facts of every promoter eligible for `program` now.
pub(super) async fn of_eligible(
    db: &impl ConnectionTrait,
    program: &incentives::Model,
) -> Result<Vec<(Uuid, Facts)>> {
    facts(db, program, Who::eligible(program)).await
}

/// The facts of every participant of `program`, by promoter.
pub(crate) async fn of_participants(
    db: &impl ConnectionTrait,
    program: &incentives::Model,
) -> Result<HashMap<Uuid, Facts>> {
    Ok(facts(db, program, Who::participants(program))
        .await?
        .into_iter()
        .collect())
}
