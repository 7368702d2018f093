//! Finalising a programme at the end of its period, exactly once (DOMAIN.md "Incentives"):
//! by the scheduler every replica of `prima serve` runs ([`finalize_due`]), or by hand
//! (`finalizeIncentive`, ADMIN or OWNER at the venue; before `period_end` only with
//! `early`).
//!
//! - The claim is the status change ACTIVE or PAUSED -> COMPLETED, a conditional update in
//!   the database: of two replicas' schedulers, or of concurrent calls, one changes the row
//!   and does the rest in that transaction; the others change nothing (the scheduler moves
//!   on; a caller gets CONFLICT). A restart finds due programmes still ACTIVE, so nothing
//!   depends on a timer in memory.
//! - A PAUSED programme is first brought up to date from the period's bookings (as
//!   resuming does).
//! - Winners: GREATER_THAN, GREATER_EQUAL, EQUAL: the participants already ACHIEVED (the
//!   comparison held at some moment). TOP_N: the `target_threshold` best values above
//!   zero, ties broken by who reached their value first (`value_reached_at`), then by
//!   promoter id; they become ACHIEVED now. Everyone else is MISSED.
//! - Rewards, one per winner: FIXED_AMOUNT `reward_value`; PERCENTAGE_BONUS `reward_value`
//!   percent of the commissions of the winner's COMPLETED bookings in the period
//!   (`bookings.promoter_commission`), rounded half up to the cent; both written as a
//!   CONFIRMED INCENTIVE_PAYOUT ledger row naming the programme, which the next payout
//!   takes, and as the row's `reward_earned`. TIER_UPGRADE moves the winner one tier up
//!   (STANDARD -> PREMIUM -> VIP; a VIP stays VIP) with a `promoter_tier_changes` row.
//! - `participant_count`, `winner_count`, `total_payout` and `finalized_at` are set; a
//!   recurring programme opens its next period (the one that follows, computed as at
//!   creation; CUSTOM: the same length again) as a new ACTIVE programme with the same
//!   rules, its participants started from that period's bookings. All of it, with the
//!   outbox events, commits as one transaction.
//! - Locks: the participants' promoter rows (ascending id), then the programme, as
//!   activation takes them.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use prima_entity::enums::{
    IncentiveStatus, PeriodType, ProgressStatus, PromoterTier, RewardType, TargetComparison,
    TransactionStatus, TransactionType,
};
use prima_entity::{
    incentive_progress, incentives, promoter_tier_changes, promoters, transactions,
};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect, Set, Statement, TransactionTrait,
};
use uuid::Uuid;

use super::facts::Who;
use super::manage::{self, status_event};
use super::progress::changed;
use crate::access::{Actor, Capability, not_found_as};
use crate::error::{Error, Result};
use crate::tail::Tail;
use crate::time::{now, venue_zone};

/// How many due programmes one scheduler pass finalises at most.
const DUE_BATCH: u64 = 50;

/// A finalised programme and, for a recurring one, the programme of its next period.
#[derive(Debug, Clone)]
pub struct Finalized {
    /// The programme, COMPLETED.
    pub incentive: incentives::Model,
    /// The next period's programme, ACTIVE.
    pub next: Option<incentives::Model>,
}

/// Finalises a programme by hand (ADMIN or OWNER at its venue). Before `period_end` only
/// with `early`; CONFLICT when it is not ACTIVE or PAUSED (finalised already, by the
/// scheduler or a concurrent call).
#[tracing::instrument(skip_all, fields(incentive = %id))]
pub async fn finalize_incentive(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    early: bool,
) -> Result<Finalized> {
    let program = incentives::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(Error::NotFound { what: "incentive" })?;
    actor
        .require(program.venue_id, Capability::Administer)
        .map_err(not_found_as("incentive"))?;
    let at = now();
    if program.period_end > at && !early {
        return Err(Error::invalid(
            "early",
            format!(
                "the period ends at {}: finalising before then needs `early: true`",
                program.period_end.to_rfc3339()
            ),
        ));
    }
    finalize_at(db, &program, Some(actor.user_id), at)
        .await?
        .ok_or_else(|| {
            Error::Conflict(format!(
                "the programme is {}: only an ACTIVE or PAUSED programme is finalised",
                program.status
            ))
        })
}

/// One scheduler pass: finalises the programmes whose period ended by `now` (up to
/// [`DUE_BATCH`], earliest end first). Returns how many this call finalised; those another
/// replica claimed first are skipped.
pub async fn finalize_due(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<usize> {
    let due = incentives::Entity::find()
        .filter(
            incentives::Column::Status.is_in([IncentiveStatus::Active, IncentiveStatus::Paused]),
        )
        .filter(incentives::Column::PeriodEnd.lte(now))
        .order_by_asc(incentives::Column::PeriodEnd)
        .order_by_asc(incentives::Column::Id)
        .limit(DUE_BATCH)
        .all(db)
        .await?;
    let mut done = 0;
    for program in due {
        // One programme failing (logged) does not hold up the others; the next pass tries
        // it again.
        match finalize_at(db, &program, None, now).await {
            Ok(Some(_)) => done += 1,
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(error = ?err, incentive = %program.id, "finalising a programme failed");
            }
        }
    }
    Ok(done)
}

/// Runs [`finalize_due`] every `every`, for as long as the task lives (`prima serve`).
pub async fn run_scheduler(db: DatabaseConnection, every: std::time::Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match finalize_due(&db, now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(programmes = n, "incentive programmes finalised"),
            Err(err) => tracing::warn!(error = ?err, "finalising due programmes failed"),
        }
    }
}

/// The claim and everything after it, in one transaction; `None` when the programme was
/// no longer ACTIVE or PAUSED.
pub(crate) async fn finalize_at(
    db: &DatabaseConnection,
    program: &incentives::Model,
    by: Option<Uuid>,
    at: DateTime<Utc>,
) -> Result<Option<Finalized>> {
    crate::db::retry_transient("finalizeIncentive", || async move {
        let txn = db.begin().await?;
        manage::lock_promoters(&txn, Who::participants(program)).await?;
        // The status as it is now: the claim is conditional on it, so a PAUSED programme is
        // always brought up to date (a pause between this read and the claim makes the
        // claim change nothing: CONFLICT by hand, the next pass for the scheduler).
        let Some(was) = incentives::Entity::find_by_id(program.id)
            .one(&txn)
            .await?
            .map(|p| p.status)
            .filter(|s| matches!(s, IncentiveStatus::Active | IncentiveStatus::Paused))
        else {
            return Ok(None);
        };
        let Some(claimed) = claim(&txn, program.id, was, at).await? else {
            return Ok(None);
        };
        let mut tail = Tail::new();
        let mut current = claimed.clone();
        if was == IncentiveStatus::Paused {
            current = manage::refresh(&txn, current, &mut tail, at).await?;
        }
        current.status = IncentiveStatus::Completed;
        let (finished, rows) = settle(&txn, current, by, at).await?;
        for row in &rows {
            changed(
                &mut tail,
                &finished,
                row,
                row.status == ProgressStatus::Achieved,
                at,
            );
        }
        status_event(&mut tail, &finished, Some(was), at);
        let next = if finished.is_recurring {
            Some(open_next(&txn, &finished, &mut tail, at).await?)
        } else {
            None
        };
        tail.send(&txn).await?;
        txn.commit().await?;
        Ok(Some(Finalized {
            incentive: finished,
            next,
        }))
    })
    .await
}

/// The claim: `was` (ACTIVE or PAUSED) -> COMPLETED, `finalized_at` now.
async fn claim(
    txn: &impl ConnectionTrait,
    id: Uuid,
    was: IncentiveStatus,
    at: DateTime<Utc>,
) -> Result<Option<incentives::Model>> {
    Ok(incentives::Entity::update_many()
        .col_expr(
            incentives::Column::Status,
            Expr::value(IncentiveStatus::Completed),
        )
        .col_expr(incentives::Column::FinalizedAt, Expr::value(at))
        .col_expr(incentives::Column::UpdatedAt, Expr::value(at))
        .filter(incentives::Column::Id.eq(id))
        .filter(incentives::Column::Status.eq(was))
        .exec_with_returning(txn)
        .await?
        .into_iter()
        .next())
}

/// The winners among `rows` (see the module documentation), by promoter id.
pub(super) fn winners(
    program: &incentives::Model,
    rows: &[incentive_progress::Model],
) -> Vec<Uuid> {
    if program.target_comparison != TargetComparison::TopN {
        return rows
            .iter()
            .filter(|r| r.status == ProgressStatus::Achieved)
            .map(|r| r.promoter_id)
            .collect();
    }
    let n = usize::try_from(program.target_threshold / 100).unwrap_or(0);
    let mut ranked: Vec<&incentive_progress::Model> =
        rows.iter().filter(|r| r.current_value > 0).collect();
    // Highest value first; then who reached it first (a row that never moved last); then
    // promoter id.
    ranked.sort_by_key(|r| {
        (
            std::cmp::Reverse(r.current_value),
            r.value_reached_at.is_none(),
            r.value_reached_at,
            r.promoter_id,
        )
    });
    ranked.into_iter().take(n).map(|r| r.promoter_id).collect()
}

/// The next tier up, for TIER_UPGRADE (VIP stays VIP).
fn upgraded(tier: PromoterTier) -> PromoterTier {
    match tier {
        PromoterTier::Standard => PromoterTier::Premium,
        PromoterTier::Premium | PromoterTier::Vip => PromoterTier::Vip,
    }
}

/// `percent` (hundredths of a percent) of `cents`, rounded half up.
fn share(cents: i64, percent: i64) -> i64 {
    (cents * percent + 5_000).div_euclid(10_000)
}

/// The commissions of each winner's COMPLETED bookings at the venue in the period.
async fn commissions(
    txn: &impl ConnectionTrait,
    program: &incentives::Model,
    winners: &[Uuid],
) -> Result<HashMap<Uuid, i64>> {
    if winners.is_empty() {
        return Ok(HashMap::new());
    }
    let backend = txn.get_database_backend();
    let mut values: Vec<sea_orm::Value> = vec![
        program.venue_id.into(),
        program.period_start.into(),
        program.period_end.into(),
    ];
    let marks: Vec<String> = winners
        .iter()
        .enumerate()
        .map(|(i, w)| {
            values.push((*w).into());
            format!("${}", i + 4)
        })
        .collect();
    let rows = txn
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "SELECT promoter_id, CAST(COALESCE(SUM(promoter_commission), 0) AS BIGINT) \
                 FROM bookings WHERE venue_id = $1 AND booking_time >= $2 AND booking_time < $3 \
                   AND status = 'COMPLETED' AND promoter_id IN ({}) GROUP BY promoter_id",
                marks.join(", ")
            ),
            values,
        ))
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get_by_index(0)?, row.try_get_by_index(1)?)))
        .collect()
}

/// Decides every participant, writes the rewards and the counters; returns the programme
/// and its rows as they now are.
async fn settle(
    txn: &impl ConnectionTrait,
    program: incentives::Model,
    by: Option<Uuid>,
    at: DateTime<Utc>,
) -> Result<(incentives::Model, Vec<incentive_progress::Model>)> {
    let rows = incentive_progress::Entity::find()
        .filter(incentive_progress::Column::IncentiveId.eq(program.id))
        .order_by_asc(incentive_progress::Column::PromoterId)
        .all(txn)
        .await?;
    let winners = winners(&program, &rows);
    let bases = match program.reward_type {
        RewardType::PercentageBonus => commissions(txn, &program, &winners).await?,
        _ => HashMap::new(),
    };
    // Everyone else MISSED, in one statement; then one per winner (its reward).
    incentive_progress::Entity::update_many()
        .col_expr(
            incentive_progress::Column::Status,
            Expr::value(ProgressStatus::Missed),
        )
        .col_expr(incentive_progress::Column::LastUpdated, Expr::value(at))
        .filter(incentive_progress::Column::IncentiveId.eq(program.id))
        .filter(incentive_progress::Column::PromoterId.is_not_in(winners.iter().copied()))
        .exec(txn)
        .await?;
    let won: std::collections::HashSet<Uuid> = winners.iter().copied().collect();
    let mut total = 0i64;
    let mut ledger = Vec::new();
    for row in rows.iter().filter(|r| won.contains(&r.promoter_id)) {
        let reward = match program.reward_type {
            RewardType::TierUpgrade => None,
            RewardType::FixedAmount => Some(program.reward_value),
            RewardType::PercentageBonus => Some(share(
                bases.get(&row.promoter_id).copied().unwrap_or(0),
                program.reward_value,
            )),
        };
        let mut update = incentive_progress::Entity::update_many()
            .col_expr(
                incentive_progress::Column::Status,
                Expr::value(ProgressStatus::Achieved),
            )
            .col_expr(incentive_progress::Column::LastUpdated, Expr::value(at))
            .col_expr(
                incentive_progress::Column::RewardEarned,
                Expr::value(reward),
            )
            .filter(incentive_progress::Column::Id.eq(row.id));
        if row.achieved_at.is_none() {
            update = update.col_expr(incentive_progress::Column::AchievedAt, Expr::value(at));
        }
        update.exec(txn).await?;
        if let Some(amount) = reward.filter(|a| *a > 0) {
            total += amount;
            ledger.push(reward_row(&program, row.promoter_id, amount, at));
        }
        if program.reward_type == RewardType::TierUpgrade {
            upgrade(txn, &program, row.promoter_id, by, at).await?;
        }
    }
    if !ledger.is_empty() {
        transactions::Entity::insert_many(ledger)
            .exec_without_returning(txn)
            .await?;
    }
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    let mut counters: incentives::ActiveModel = program.into();
    counters.participant_count = Set(count(rows.len()));
    counters.winner_count = Set(count(winners.len()));
    counters.total_payout = Set(total);
    let finished = sea_orm::ActiveModelTrait::update(counters, txn).await?;
    let rows = incentive_progress::Entity::find()
        .filter(incentive_progress::Column::IncentiveId.eq(finished.id))
        .order_by_asc(incentive_progress::Column::PromoterId)
        .all(txn)
        .await?;
    Ok((finished, rows))
}

/// A winner's reward as a CONFIRMED INCENTIVE_PAYOUT ledger row.
fn reward_row(
    program: &incentives::Model,
    promoter: Uuid,
    amount: i64,
    at: DateTime<Utc>,
) -> transactions::ActiveModel {
    transactions::Model {
        id: Uuid::new_v4(),
        booking_id: None,
        promoter_id: Some(promoter),
        venue_id: program.venue_id,
        r#type: TransactionType::IncentivePayout,
        amount,
        currency: program.reward_currency.clone(),
        description: format!("Incentive reward: {}", program.name),
        commission_rate: None,
        commission_amount: None,
        commission_tier: None,
        status: TransactionStatus::Confirmed,
        processed_at: Some(at),
        settled_at: None,
        external_transaction_id: None,
        payout_id: None,
        created_at: at,
        updated_at: at,
        reverses_transaction_id: None,
        incentive_id: Some(program.id),
    }
    .into_active_model()
}

/// TIER_UPGRADE: the winner one tier up, with its audit row (a VIP stays VIP and gets
/// none).
async fn upgrade(
    txn: &impl ConnectionTrait,
    program: &incentives::Model,
    promoter: Uuid,
    by: Option<Uuid>,
    at: DateTime<Utc>,
) -> Result<()> {
    let Some(current) = promoters::Entity::find_by_id(promoter).one(txn).await? else {
        return Ok(());
    };
    let to = upgraded(current.tier);
    if to == current.tier {
        return Ok(());
    }
    promoters::Entity::update_many()
        .col_expr(promoters::Column::Tier, Expr::value(to))
        .col_expr(promoters::Column::UpdatedAt, Expr::value(at))
        .filter(promoters::Column::Id.eq(promoter))
        .exec(txn)
        .await?;
    promoter_tier_changes::Entity::insert(
        promoter_tier_changes::Model {
            id: Uuid::new_v4(),
            promoter_id: promoter,
            from_tier: current.tier,
            to_tier: to,
            incentive_id: Some(program.id),
            performed_by: by,
            reason: Some(format!("TIER_UPGRADE reward of \"{}\"", program.name)),
            created_at: at,
        }
        .into_active_model(),
    )
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// A recurring programme's next period: the one after `program`'s (CUSTOM: the same length
/// again), as a new ACTIVE programme with the same rules and its participants.
async fn open_next(
    txn: &impl ConnectionTrait,
    program: &incentives::Model,
    tail: &mut Tail,
    at: DateTime<Utc>,
) -> Result<incentives::Model> {
    let (start, end) = match program.period_type {
        PeriodType::Custom => (
            program.period_end,
            program.period_end + (program.period_end - program.period_start),
        ),
        kind => {
            let venue = prima_entity::venues::Entity::find_by_id(program.venue_id)
                .one(txn)
                .await?
                .ok_or(Error::NotFound { what: "venue" })?;
            let tz = venue_zone(&venue)?;
            // The local date just after the period: its first day.
            let first = (program.period_end + TimeDelta::hours(1))
                .with_timezone(&tz)
                .date_naive();
            manage::calendar_period(tz, kind, first)?
        }
    };
    let next = incentives::Model {
        id: Uuid::new_v4(),
        period_start: start,
        period_end: end,
        status: IncentiveStatus::Active,
        participant_count: 0,
        winner_count: 0,
        total_payout: 0,
        created_at: at,
        updated_at: at,
        finalized_at: None,
        ..program.clone()
    };
    let inserted = sea_orm::ActiveModelTrait::insert(next.into_active_model(), txn).await?;
    let opened = manage::open(txn, inserted, tail, at).await?;
    status_event(tail, &opened, None, at);
    Ok(opened)
}
