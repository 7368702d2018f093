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
//!   whose first booking with the promoter, any status, falls in the period; 100 each)
//!   moves by 100 when the guest's first booking time enters or leaves the period, which
//!   the aggregates read with one index probe ([`FirstBooking`]), not by recounting the
//!   promoter's bookings. A CONVERSION_RATE row also counts the period's COMPLETED bookings
//!   and its closed ones (COMPLETED + CANCELLED + NO_SHOW), moved by one when a booking
//!   reaches or leaves those states or the period (other rows keep 0); its value is their ratio in
//!   hundredths of a percent (`7550` = 75.50 %, [`super::facts::conversion`]), computed in
//!   the same `UPDATE` from the moved counts. `value_reached_at` moves with the value
//!   (TOP_N's tie-break).
//! - `percent_complete = min(100 %, current / target_value)` in hundredths of a percent,
//!   rounded half away from zero. GREATER_THAN / GREATER_EQUAL / EQUAL: the first moment
//!   the comparison holds sets ACHIEVED and `achieved_at` (and counts a winner); it stays
//!   ACHIEVED. TOP_N: every participant's `target_value` is the value needed to be in the
//!   top N now (the N-th best, at least 100), so all its rows are re-targeted.
//! - Locks, in the global order of [`crate::bookings`]: after the booking, promoter and
//!   guest, every programme the change moves is locked in ascending id order, all of them
//!   before any progress row is written (one `SELECT ... ORDER BY id FOR UPDATE` on
//!   PostgreSQL; on SQLite the change's first write took the database's one write lock);
//!   then each programme's progress rows (the promoter's own first, then, for TOP_N, the
//!   others re-targeted, then the percentages in promoter order). Progress rows are
//!   written only under their programme's lock, so concurrent bookings of one programme are serialised, recomputed
//!   values see every earlier commit, and two changes sharing several programmes queue on
//!   the same first one instead of deadlocking (before, each locked them in whatever order
//!   the query returned them).
//! - Every progress row that changed gets one outbox event ([`PROGRESS_CHANGED`]), held in
//!   the change's [`Tail`] and written with its other events at its end.

use chrono::{DateTime, Utc};
use prima_entity::enums::{
    BookingStatus, IncentiveStatus, IncentiveType, ProgressStatus, TargetComparison,
};
use prima_entity::{bookings, incentive_progress, incentives};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Statement};
use serde_json::json;
use uuid::Uuid;

use crate::access::scope::financial_get;
use crate::bookings::aggregates::FirstBooking;
use crate::error::Result;
use crate::tail::Tail;

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

/// How a booking counts for CONVERSION_RATE: (completed, closed) when its time is in the
/// period: COMPLETED is (1, 1), CANCELLED and NO_SHOW (0, 1), the rest nothing.
fn closing(program: &incentives::Model, booking: Option<&bookings::Model>) -> (i32, i32) {
    let Some(b) = booking else { return (0, 0) };
    if b.booking_time < program.period_start || b.booking_time >= program.period_end {
        return (0, 0);
    }
    match b.status {
        BookingStatus::Completed => (1, 1),
        BookingStatus::Cancelled | BookingStatus::NoShow => (0, 1),
        BookingStatus::Pending | BookingStatus::Confirmed => (0, 0),
    }
}

/// What one booking change does to one progress row: its value moves by `value` (not
/// used for CONVERSION_RATE, whose value follows the counts) and, for CONVERSION_RATE,
/// its counts by `completed` and `closed`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Move {
    value: i64,
    completed: i32,
    closed: i32,
}

fn statement(db: &impl ConnectionTrait, sql: &str, values: Vec<sea_orm::Value>) -> Statement {
    Statement::from_sql_and_values(db.get_database_backend(), sql, values)
}

/// Moves the promoter's progress in every programme the change concerns; inside the
/// change's transaction, after [`crate::bookings::aggregates::apply`], with the guest's first
/// booking time with the promoter before and after the change that it read (`None` when the
/// change cannot move it).
pub async fn apply(
    txn: &impl ConnectionTrait,
    before: Option<&bookings::Model>,
    after: &bookings::Model,
    first: Option<FirstBooking>,
    tail: &mut Tail,
    now: DateTime<Utc>,
) -> Result<()> {
    let Some(promoter) = after.promoter_id else {
        return Ok(());
    };
    // The programmes whose period holds the booking's time before or after, or the guest's
    // first booking time before or after (a NEW_GUESTS programme moves when the first
    // booking enters or leaves its period, wherever the booking changed lies).
    let times: Vec<DateTime<Utc>> = before
        .map(|b| b.booking_time)
        .into_iter()
        .chain([after.booking_time])
        .chain(
            first
                .iter()
                .flat_map(|f| f.before.into_iter().chain([f.after])),
        )
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
    let mut moves = Vec::with_capacity(programs.len());
    for program in programs {
        let value = match program.r#type {
            IncentiveType::BookingCount | IncentiveType::RevenueTarget => {
                contribution(&program, Some(after)) - contribution(&program, before)
            }
            IncentiveType::NewGuests => first.map_or(0, |f| new_guest(&program, f)),
            IncentiveType::ConversionRate => 0,
        };
        // The counts are CONVERSION_RATE's: other programmes' rows keep 0, and a
        // booking's completion costs them no statement.
        let (now_done, now_closed, was_done, was_closed) =
            if program.r#type == IncentiveType::ConversionRate {
                let (a, b) = closing(&program, Some(after));
                let (c, d) = closing(&program, before);
                (a, b, c, d)
            } else {
                (0, 0, 0, 0)
            };
        let delta = Move {
            value,
            completed: now_done - was_done,
            closed: now_closed - was_closed,
        };
        if delta != Move::default() {
            moves.push((program, delta));
        }
    }
    // The lock order: every programme moved, by ascending id, before any progress row.
    moves.sort_by_key(|(program, _)| program.id);
    lock(txn, moves.iter().map(|(program, _)| program.id).collect()).await?;
    for (program, delta) in moves {
        update(txn, &program, promoter, delta, tail, now).await?;
    }
    Ok(())
}

/// Locks the programmes `ids` (in ascending order) in one statement: on PostgreSQL a
/// `SELECT ... ORDER BY id FOR UPDATE`, which locks the rows in the order it sorts them.
/// SQLite has no row locks and needs none: the change's first write took the database's
/// one write lock.
pub(super) async fn lock(txn: &impl ConnectionTrait, ids: Vec<Uuid>) -> Result<()> {
    if ids.is_empty() || txn.get_database_backend() != sea_orm::DbBackend::Postgres {
        return Ok(());
    }
    let select = sea_orm::sea_query::Query::select()
        .column(incentives::Column::Id)
        .from(incentives::Entity)
        .and_where(incentives::Column::Id.is_in(ids))
        .order_by(incentives::Column::Id, sea_orm::sea_query::Order::Asc)
        .lock(sea_orm::sea_query::LockType::Update)
        .to_owned();
    txn.query_all(&select).await?;
    Ok(())
}

/// How a NEW_GUESTS programme's value moves (100 per guest): the guest counts while their
/// first booking with the promoter (any status) is in the period.
fn new_guest(program: &incentives::Model, first: FirstBooking) -> i64 {
    let counts = |at: Option<DateTime<Utc>>| {
        at.is_some_and(|at| at >= program.period_start && at < program.period_end)
    };
    100 * (i64::from(counts(Some(first.after))) - i64::from(counts(first.before)))
}

/// `percent_complete = min(100 %, current / target)` in hundredths of a percent, rounded
/// half away from zero (100 % for a target of 0 or less).
pub(super) fn percent(current: i64, target: i64) -> i64 {
    if target <= 0 {
        return 10_000;
    }
    ((2 * current.max(0) * 10_000 + target) / (2 * target)).min(10_000)
}

/// [`super::facts::conversion`] in SQL over expressions of the completed and closed
/// counts.
fn conversion_sql(completed: &str, closed: &str) -> String {
    format!(
        "CASE WHEN {closed} <= 0 THEN 0 \
              ELSE (2 * ({completed}) * 10000 + ({closed})) / (2 * ({closed})) END"
    )
}

/// [`percent`] in SQL over an expression of the new value and the row's `target_value`.
fn percent_sql(current: &str) -> String {
    format!(
        "CASE WHEN target_value <= 0 OR {current} >= target_value THEN 10000 \
              WHEN {current} <= 0 THEN 0 \
              ELSE (2 * ({current}) * 10000 + target_value) / (2 * target_value) END"
    )
}

/// Whether a value meets a programme's threshold (TOP_N is decided at period end).
pub(super) fn holds(program: &incentives::Model, value: i64) -> bool {
    match program.target_comparison {
        TargetComparison::GreaterThan => value > program.target_threshold,
        TargetComparison::GreaterEqual => value >= program.target_threshold,
        TargetComparison::Equal => value == program.target_threshold,
        TargetComparison::TopN => false,
    }
}

/// Moves one programme's row for one promoter by `delta`, re-targets a TOP_N programme,
/// and writes the events; runs under the programme's lock ([`apply`] takes it; the other
/// writers of progress rows, activation and resumption in [`super::manage`], hold it too),
/// so what it reads back is what it wrote. [`apply`] moves counts only for CONVERSION_RATE,
/// so every move reaching here changes the value or the counts it follows.
async fn update(
    txn: &impl ConnectionTrait,
    program: &incentives::Model,
    promoter: Uuid,
    delta: Move,
    tail: &mut Tail,
    now: DateTime<Utc>,
) -> Result<()> {
    // $1 programme, $2 promoter, $3 now, $4 and $5 the count deltas, $6 the value's delta
    // (not for CONVERSION_RATE): parameters, so each statement text is prepared once per
    // connection. The SET expressions all read the row as it was.
    let mut values: Vec<sea_orm::Value> = vec![
        program.id.into(),
        promoter.into(),
        now.into(),
        delta.completed.into(),
        delta.closed.into(),
    ];
    const COUNTS: &str = "completed_bookings = completed_bookings + $4, \
                          closed_bookings = closed_bookings + $5";
    let conversion = program.r#type == IncentiveType::ConversionRate;
    let value = if conversion {
        conversion_sql("completed_bookings + $4", "closed_bookings + $5")
    } else {
        values.push(delta.value.into());
        "current_value + $6".to_owned()
    };
    let moved = |percentage: &str| {
        statement(
            txn,
            &format!(
                "UPDATE incentive_progress SET current_value = {value}, {COUNTS}, \
                 last_updated = $3, value_reached_at = CASE WHEN {value} <> current_value \
                 THEN $3 ELSE value_reached_at END{percentage} \
                 WHERE incentive_id = $1 AND promoter_id = $2 RETURNING *"
            ),
            values.clone(),
        )
    };
    if program.target_comparison != TargetComparison::TopN {
        // The value and its percentage in one statement: the target does not move.
        let rows = incentive_progress::Entity::find()
            .from_raw_sql(moved(&format!(
                ", percent_complete = {}",
                percent_sql(&value)
            )))
            .all(txn)
            .await?;
        for row in rows {
            settled(txn, program, row, tail, now).await?;
        }
        return Ok(());
    }
    txn.execute_raw(moved("")).await?;
    retarget(txn, program, promoter, tail, now).await
}

/// A TOP_N programme after `promoter`'s row moved (or joined): everyone's target becomes
/// the N-th best value now; the rows whose target moved, and `promoter`'s, get their
/// percentage and their event, in promoter order.
pub(super) async fn retarget(
    txn: &impl ConnectionTrait,
    program: &incentives::Model,
    promoter: Uuid,
    tail: &mut Tail,
    now: DateTime<Utc>,
) -> Result<()> {
    let n = program.target_threshold / 100;
    let values: Vec<i64> = incentive_progress::Entity::find()
        .filter(incentive_progress::Column::IncentiveId.eq(program.id))
        .all(txn)
        .await?
        .into_iter()
        .map(|p| p.current_value)
        .collect();
    let target = top_n_target(n, values);
    let retargeted = incentive_progress::Entity::update_many()
        .col_expr(incentive_progress::Column::TargetValue, Expr::value(target))
        .col_expr(incentive_progress::Column::LastUpdated, Expr::value(now))
        .filter(incentive_progress::Column::IncentiveId.eq(program.id))
        .filter(incentive_progress::Column::TargetValue.ne(target))
        .exec_with_returning(txn)
        .await?;
    let mut changed = vec![promoter];
    changed.extend(retargeted.into_iter().map(|p| p.promoter_id));
    // Percentages of the rows that moved, in promoter order.
    let rows = incentive_progress::Entity::find()
        .filter(incentive_progress::Column::IncentiveId.eq(program.id))
        .filter(incentive_progress::Column::PromoterId.is_in(changed))
        .order_by_asc(incentive_progress::Column::PromoterId)
        .all(txn)
        .await?;
    for row in rows {
        let set = incentive_progress::Entity::update_many()
            .col_expr(
                incentive_progress::Column::PercentComplete,
                Expr::value(percent(row.current_value, row.target_value)),
            )
            .filter(incentive_progress::Column::Id.eq(row.id))
            .exec_with_returning(txn)
            .await?;
        for row in set {
            settled(txn, program, row, tail, now).await?;
        }
    }
    Ok(())
}

/// A TOP_N programme's target for everyone: the `n`-th best of `values` now (the lowest
/// when there are fewer), and at least 100 (one unit).
pub(super) fn top_n_target(n: i64, mut values: Vec<i64>) -> i64 {
    values.sort_unstable_by(|a, b| b.cmp(a));
    let index = usize::try_from(n.max(1))
        .unwrap_or(usize::MAX)
        .min(values.len())
        .saturating_sub(1);
    values.get(index).copied().unwrap_or(0).max(100)
}

/// The end of a progress row's move: the first moment the threshold holds, ACHIEVED (and a
/// winner counted); then its event.
async fn settled(
    txn: &impl ConnectionTrait,
    program: &incentives::Model,
    mut row: incentive_progress::Model,
    tail: &mut Tail,
    now: DateTime<Utc>,
) -> Result<()> {
    let achieved = holds(program, row.current_value) && row.status == ProgressStatus::InProgress;
    if achieved {
        let set = incentive_progress::Entity::update_many()
            .col_expr(
                incentive_progress::Column::Status,
                Expr::value(ProgressStatus::Achieved),
            )
            .col_expr(incentive_progress::Column::AchievedAt, Expr::value(now))
            .filter(incentive_progress::Column::Id.eq(row.id))
            .exec_with_returning(txn)
            .await?;
        if let Some(set) = set.into_iter().next() {
            row = set;
        }
        txn.execute_raw(statement(
            txn,
            "UPDATE incentives SET winner_count = winner_count + 1 WHERE id = $1",
            vec![program.id.into()],
        ))
        .await?;
    }
    changed(tail, program, &row, achieved, now);
    Ok(())
}

/// Holds the [`PROGRESS_CHANGED`] event of a progress row; `achieved` when this change
/// made it ACHIEVED.
pub(super) fn changed(
    tail: &mut Tail,
    program: &incentives::Model,
    row: &incentive_progress::Model,
    achieved: bool,
    now: DateTime<Utc>,
) {
    tail.event(
        PROGRESS_CHANGED,
        Some(program.venue_id),
        json!({
            "incentiveId": program.id,
            "promoterId": row.promoter_id,
            "justAchieved": achieved,
            "progress": row,
        }),
        now,
    );
}

/// What a subscriber to one programme's progress (and its leaderboard) receives: the
/// [`PROGRESS_CHANGED`] events of that programme, for a subscriber with financial reads at
/// its venue. NOT_FOUND when the programme does not exist or the caller cannot see it. The
/// feed applies it ([`crate::events::feed::feed`]).
pub async fn progress_feed_filter(
    db: &impl ConnectionTrait,
    actor: &crate::access::Actor,
    incentive_id: Uuid,
) -> Result<crate::events::feed::FeedFilter> {
    let incentive = financial_get::<incentives::Entity>(db, actor, incentive_id).await?;
    Ok(crate::events::feed::FeedFilter {
        topic: PROGRESS_CHANGED,
        capability: crate::access::Capability::ReadFinancial,
        venues: Some(vec![incentive.venue_id]),
        accept: Box::new(move |event: &crate::events::Event| {
            event.payload["incentiveId"].as_str() == Some(incentive_id.to_string().as_str())
        }),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use prima_entity::enums::{BookingSource, BookingType};
    use sea_orm::{ActiveModelTrait, IntoActiveModel, TransactionTrait};

    use super::*;
    use crate::testing::fixtures::{self, t0};

    /// A CONFIRMED booking of `promoter` two days into the fixtures' programmes, as a change
    /// would hand it over (it need not be stored for the progress update).
    fn confirmed(venue: Uuid, promoter: Uuid) -> bookings::Model {
        let at = t0() + chrono::Duration::days(2);
        bookings::Model {
            id: Uuid::new_v4(),
            venue_id: venue,
            promoter_id: Some(promoter),
            guest_id: Uuid::new_v4(),
            diners: 2,
            booking_time: at,
            duration_minutes: 120,
            special_requests: None,
            notes: None,
            r#type: BookingType::NonPrime,
            source: BookingSource::Promoter,
            status: BookingStatus::Confirmed,
            base_fee: 10_000,
            platform_fee: 1_000,
            total_fee: 11_000,
            promoter_commission: 0,
            confirmed_at: Some(t0()),
            cancelled_at: None,
            no_show_at: None,
            completed_at: None,
            ip_address: None,
            user_agent: None,
            referrer: None,
            created_at: t0(),
            updated_at: t0(),
        }
    }

    fn sql(db: &impl ConnectionTrait, text: &str, values: Vec<sea_orm::Value>) -> Statement {
        statement(db, text, values)
    }

    #[tokio::test]
    async fn the_database_computes_the_same_percentage_as_the_rule() {
        let db = crate::testing::TestDb::new().await;
        let targets = [-5, 0, 1, 3, 7, 100, 300, 12_345, 1_000_000];
        let currents = [
            -200, -1, 0, 1, 2, 3, 50, 99, 100, 101, 299, 12_344, 999_999, 5_000_000,
        ];
        for target in targets {
            for current in currents {
                let text = format!(
                    "SELECT {} AS p FROM (SELECT CAST($1 AS BIGINT) AS current_value, \
                     CAST($2 AS BIGINT) AS target_value) t",
                    percent_sql("current_value")
                );
                let row = db
                    .conn
                    .query_one_raw(sql(&db.conn, &text, vec![current.into(), target.into()]))
                    .await
                    .unwrap()
                    .unwrap();
                let got: i64 = row.try_get("", "p").unwrap();
                assert_eq!(got, percent(current, target), "{current} of {target}");
            }
        }
    }

    #[tokio::test]
    async fn programmes_are_locked_in_ascending_id_whatever_order_the_database_returns_them() {
        let db = fixtures::db().await;
        if !db.is_postgres() {
            eprintln!("skipped: row locks need PostgreSQL (TEST_DATABASE_URL)");
            return;
        }
        let venue = fixtures::venue(&db).await;
        let user = fixtures::user(&db).await;
        let promoter = fixtures::promoter(&db, venue, "Adams").await;
        // Two programmes of the promoter, the higher id stored first, so that a scan meets
        // it first: `high` a random id, `low` the second smallest there is.
        let high = fixtures::incentive(&db, venue, user).await;
        fixtures::progress(&db, high, promoter, 0).await;
        let mut row = incentives::Entity::find_by_id(high)
            .one(&db.conn)
            .await
            .unwrap()
            .unwrap();
        let low = Uuid::from_u128(1);
        row.id = low;
        row.into_active_model()
            .reset_all()
            .insert(&db.conn)
            .await
            .unwrap();
        fixtures::progress(&db, low, promoter, 0).await;

        // Another transaction holds the lower programme's lock.
        let blocker = db.conn.begin().await.unwrap();
        blocker
            .execute_raw(sql(
                &blocker,
                "UPDATE incentives SET updated_at = updated_at WHERE id = $1",
                vec![low.into()],
            ))
            .await
            .unwrap();

        let booking = confirmed(venue, promoter);
        let change = async {
            let txn = db.conn.begin().await?;
            let mut tail = Tail::new();
            apply(&txn, None, &booking, None, &mut tail, t0()).await?;
            tail.send(&txn).await?;
            txn.commit().await?;
            Ok::<(), crate::Error>(())
        };
        let probe = async {
            // Once the change waits, it must hold no programme lock: it queued on the lower
            // id first. (Locking the higher one first, it would hold it while waiting for
            // the lower one: the half of a deadlock.)
            let waiting = "SELECT COUNT(*) AS n FROM pg_stat_activity \
                           WHERE datname = current_database() AND wait_event_type = 'Lock'";
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            loop {
                let n: i64 = db
                    .conn
                    .query_one_raw(sql(&db.conn, waiting, vec![]))
                    .await
                    .unwrap()
                    .unwrap()
                    .try_get("", "n")
                    .unwrap();
                if n > 0 {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the change never waited for the lower programme's lock"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let free = db
                .conn
                .begin()
                .await
                .unwrap()
                .query_one_raw(sql(
                    &db.conn,
                    "SELECT id FROM incentives WHERE id = $1 FOR UPDATE NOWAIT",
                    vec![high.into()],
                ))
                .await;
            blocker.rollback().await.unwrap();
            free
        };
        let (changed, free) = tokio::join!(change, probe);
        free.expect("the higher programme is not locked while the lower one is awaited");
        changed.unwrap();
        for programme in [low, high] {
            let progress = incentive_progress::Entity::find()
                .filter(incentive_progress::Column::IncentiveId.eq(programme))
                .one(&db.conn)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(progress.current_value, 100, "{programme}");
        }
    }
}
