//! Incentive progress kept current by booking changes (DOMAIN.md "Incentives": "updated in
//! the same transaction as every booking change that moves it, and each update is published
//! live"), with the definitions the demo seed documents ([`crate::seed`]).
//!
//! - Programmes concerned: the ACTIVE ones of the booking's venue whose period
//!   `[period_start, period_end)` holds the booking's time before or after the change, and
//!   in which the booking's promoter participates (has a progress row; who is eligible is
//!   decided when a programme opens, not here).
//! - Values, in hundredths of the unit (as `target_threshold`): BOOKING_COUNT counts the
//!   CONFIRMED + COMPLETED bookings in the period (100 each) and REVENUE_TARGET sums their
//!   `total_fee` (cents); both move by the change's delta, atomically. NEW_GUESTS (guests
//!   whose first booking with the promoter, any status, falls in the period; 100 each) is
//!   not additive and is recomputed under the programme's lock. CONVERSION_RATE programmes
//!   are left to the Incentives work (no unit for them is defined yet).
//! - `percent_complete = min(100 %, current / target_value)` in hundredths of a percent,
//!   rounded half away from zero. GREATER_THAN / GREATER_EQUAL / EQUAL: the first moment
//!   the comparison holds sets ACHIEVED and `achieved_at` (and counts a winner); it stays
//!   ACHIEVED. TOP_N: every participant's `target_value` is the value needed to be in the
//!   top N now (the N-th best, at least 100), so all its rows are re-targeted.
//! - Each programme touched is locked first (a no-op UPDATE of its row, after the booking,
//!   promoter and guest locks), so concurrent bookings of one programme are serialised and
//!   recomputed values see every earlier commit.
//! - Every progress row that changed gets one outbox event ([`PROGRESS_CHANGED`]).

use chrono::{DateTime, Utc};
use prima_entity::enums::{
    BookingStatus, IncentiveStatus, IncentiveType, ProgressStatus, TargetComparison,
};
use prima_entity::{bookings, incentive_progress, incentives};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Statement};
use serde_json::json;
use uuid::Uuid;

use crate::error::Result;

/// Topic of the events describing a promoter's progress in a programme.
pub const PROGRESS_CHANGED: &str = "incentive.progress";

/// What a booking contributes to a programme's value: its hundredths of a count or its
/// cents, when it counts (CONFIRMED or COMPLETED) and its time is in the period.
fn contribution(program: &incentives::Model, booking: Option<&bookings::Model>) -> i64 {
    let Some(b) = booking else { return 0 };
    let in_period = b.booking_time >= program.period_start && b.booking_time < program.period_end;
    let counted = matches!(
        b.status,
        BookingStatus::Confirmed | BookingStatus::Completed
    );
    if !(in_period && counted) {
        return 0;
    }
    match program.r#type {
        IncentiveType::BookingCount => 100,
        IncentiveType::RevenueTarget => b.total_fee,
        _ => 0,
    }
}

fn statement(db: &impl ConnectionTrait, sql: &str, values: Vec<sea_orm::Value>) -> Statement {
    Statement::from_sql_and_values(db.get_database_backend(), sql, values)
}

/// Moves the promoter's progress in every programme the change concerns; inside the
/// change's transaction, after [`super::aggregates::apply`].
pub async fn apply(
    txn: &impl ConnectionTrait,
    before: Option<&bookings::Model>,
    after: &bookings::Model,
    now: DateTime<Utc>,
) -> Result<()> {
    let Some(promoter) = after.promoter_id else {
        return Ok(());
    };
    let times: Vec<DateTime<Utc>> = before
        .map(|b| b.booking_time)
        .into_iter()
        .chain([after.booking_time])
        .collect();
    let mut period = sea_orm::Condition::any();
    for at in &times {
        period = period.add(
            sea_orm::Condition::all()
                .add(incentives::Column::PeriodStart.lte(*at))
                .add(incentives::Column::PeriodEnd.gt(*at)),
        );
    }
    let programs = incentives::Entity::find()
        .filter(incentives::Column::VenueId.eq(after.venue_id))
        .filter(incentives::Column::Status.eq(IncentiveStatus::Active))
        .filter(period)
        .filter(
            incentives::Column::Id.in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(incentive_progress::Column::IncentiveId)
                    .from(incentive_progress::Entity)
                    .and_where(incentive_progress::Column::PromoterId.eq(promoter))
                    .to_owned(),
            ),
        )
        .all(txn)
        .await?;
    for program in programs {
        let value = match program.r#type {
            IncentiveType::BookingCount | IncentiveType::RevenueTarget => {
                let delta = contribution(&program, Some(after)) - contribution(&program, before);
                if delta == 0 {
                    continue;
                }
                Value::Delta(delta)
            }
            IncentiveType::NewGuests => {
                let moved = before.is_none()
                    || before.is_some_and(|b| b.booking_time != after.booking_time);
                if !moved {
                    continue;
                }
                Value::Recompute
            }
            IncentiveType::ConversionRate => continue,
        };
        update(txn, &program, promoter, value, now).await?;
    }
    Ok(())
}

enum Value {
    Delta(i64),
    Recompute,
}

/// Applies one programme's new value for one promoter, re-targets a TOP_N programme, and
/// writes the events.
async fn update(
    txn: &impl ConnectionTrait,
    program: &incentives::Model,
    promoter: Uuid,
    value: Value,
    now: DateTime<Utc>,
) -> Result<()> {
    // The programme's lock, then a fresh read of what the value depends on.
    txn.execute_raw(statement(
        txn,
        "UPDATE incentives SET updated_at = updated_at WHERE id = $1",
        vec![program.id.into()],
    ))
    .await?;
    let set_value = match value {
        Value::Delta(delta) => format!("current_value + {delta}"),
        Value::Recompute => "(SELECT 100 * COUNT(*) FROM ( \
               SELECT b.guest_id, MIN(b.booking_time) AS first_at FROM bookings b \
               WHERE b.promoter_id = $2 AND b.venue_id = $3 GROUP BY b.guest_id \
             ) f WHERE f.first_at >= $4 AND f.first_at < $5)"
            .to_owned(),
    };
    txn.execute_raw(statement(
        txn,
        &format!(
            "UPDATE incentive_progress SET current_value = {set_value}, last_updated = $6 \
             WHERE incentive_id = $1 AND promoter_id = $2"
        ),
        vec![
            program.id.into(),
            promoter.into(),
            program.venue_id.into(),
            program.period_start.into(),
            program.period_end.into(),
            now.into(),
        ],
    ))
    .await?;

    let mut changed = vec![promoter];
    if program.target_comparison == TargetComparison::TopN {
        // Everyone's target is the N-th best value now.
        let n = (program.target_threshold / 100).max(1);
        let mut values: Vec<i64> = incentive_progress::Entity::find()
            .filter(incentive_progress::Column::IncentiveId.eq(program.id))
            .all(txn)
            .await?
            .into_iter()
            .map(|p| p.current_value)
            .collect();
        values.sort_unstable_by(|a, b| b.cmp(a));
        let index = usize::try_from(n)
            .unwrap_or(usize::MAX)
            .min(values.len())
            .saturating_sub(1);
        let target = values.get(index).copied().unwrap_or(0).max(100);
        let retargeted = incentive_progress::Entity::update_many()
            .col_expr(incentive_progress::Column::TargetValue, Expr::value(target))
            .col_expr(incentive_progress::Column::LastUpdated, Expr::value(now))
            .filter(incentive_progress::Column::IncentiveId.eq(program.id))
            .filter(incentive_progress::Column::TargetValue.ne(target))
            .exec_with_returning(txn)
            .await?;
        changed.extend(retargeted.into_iter().map(|p| p.promoter_id));
    }
    // Percentages of the rows that moved; the first moment a threshold holds, ACHIEVED.
    let rows = incentive_progress::Entity::find()
        .filter(incentive_progress::Column::IncentiveId.eq(program.id))
        .filter(incentive_progress::Column::PromoterId.is_in(changed))
        .all(txn)
        .await?;
    for row in rows {
        let percent = if row.target_value <= 0 {
            10_000
        } else {
            ((2 * row.current_value.max(0) * 10_000 + row.target_value) / (2 * row.target_value))
                .min(10_000)
        };
        let holds = match program.target_comparison {
            TargetComparison::GreaterThan => row.current_value > program.target_threshold,
            TargetComparison::GreaterEqual => row.current_value >= program.target_threshold,
            TargetComparison::Equal => row.current_value == program.target_threshold,
            TargetComparison::TopN => false,
        };
        let achieved = holds && row.status == ProgressStatus::InProgress;
        let mut update = incentive_progress::Entity::update_many()
            .col_expr(
                incentive_progress::Column::PercentComplete,
                Expr::value(percent),
            )
            .filter(incentive_progress::Column::Id.eq(row.id));
        if achieved {
            update = update
                .col_expr(
                    incentive_progress::Column::Status,
                    Expr::value(ProgressStatus::Achieved),
                )
                .col_expr(incentive_progress::Column::AchievedAt, Expr::value(now));
            txn.execute_raw(statement(
                txn,
                "UPDATE incentives SET winner_count = winner_count + 1 WHERE id = $1",
                vec![program.id.into()],
            ))
            .await?;
        }
        let Some(row) = update.exec_with_returning(txn).await?.into_iter().next() else {
            continue;
        };
        crate::outbox::append(
            txn,
            PROGRESS_CHANGED,
            Some(program.venue_id),
            json!({
                "incentiveId": program.id,
                "promoterId": row.promoter_id,
                "justAchieved": achieved,
                "progress": row,
            }),
            now,
        )
        .await?;
    }
    Ok(())
}
