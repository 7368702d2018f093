//! Managing incentive programmes (DOMAIN.md "Incentives", "Access"): creating and editing a
//! DRAFT, activating it, pausing, resuming and cancelling it. Every one needs
//! [`Capability::Manage`] (MANAGER or above) at the programme's venue.
//!
//! Rules:
//! - Amounts are stored in hundredths of their unit, as the read graph shows them:
//!   `targetThreshold` is a count (BOOKING_COUNT, NEW_GUESTS: `20` bookings), an amount of
//!   money (REVENUE_TARGET), a percent (CONVERSION_RATE: `75.5` = 75.5 % of the period's
//!   closed bookings completed) or, for TOP_N, a whole number of winners. It is positive,
//!   at most 2 decimal places; a percent is at most 100.
//! - `rewardValue`: an amount for FIXED_AMOUNT, a percent of the promoter's commissions in
//!   the period (0 to 100) for PERCENTAGE_BONUS, none for TIER_UPGRADE. The currency is the
//!   venue's.
//! - Periods are computed here in the venue's time zone from a date the client gives
//!   (default: today there): WEEKLY from Monday 00:00, MONTHLY from the 1st, QUARTERLY
//!   from January, April, July or October 1st, each to the next one. CUSTOM takes both
//!   ends (end after start, at most 366 days). A period must end in the future.
//! - Only a DRAFT's rules change. ACTIVATE (DRAFT -> ACTIVE) gives every eligible promoter
//!   a progress row with the values of the bookings already in the period; PAUSE (ACTIVE
//!   -> PAUSED) stops the live values, RESUME (PAUSED -> ACTIVE) recomputes them from the
//!   period's bookings (so what moved while paused is caught up, and stored progress
//!   always equals a recomputation); CANCEL ends a DRAFT, ACTIVE or PAUSED programme with
//!   no rewards. Each is a conditional update on the expected status: of concurrent calls
//!   one wins and the others get CONFLICT.
//! - Locks: activating and resuming lock the participants' promoter rows (ascending id)
//!   before the programme, the order booking changes take them in ([`super::progress`]),
//!   so a booking change either commits before the values are read or moves the new rows
//!   after the commit; none is lost between the two.

use chrono::{DateTime, Datelike, Months, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;
use prima_entity::enums::{
    IncentiveStatus, IncentiveType, PeriodType, ProgressStatus, PromoterTier, RewardType,
    TargetComparison,
};
use prima_entity::{incentive_progress, incentives, promoters, venues};
use rust_decimal::Decimal;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, Set, Statement, TransactionTrait,
};
use serde_json::json;
use uuid::Uuid;

use super::facts::{self, Facts};
use super::progress::{self, changed, holds, percent, top_n_target};
use crate::access::{Actor, Capability, not_found_as};
use crate::error::{Error, Result};
use crate::money;
use crate::tail::Tail;
use crate::time::{now, start_of_day, truncate, venue_zone};
use crate::validate::{optional_text, required_text};

/// Topic of the events describing a programme's status changes.
pub const INCENTIVE_CHANGED: &str = "incentive.changed";

/// The largest DECIMAL(10,2) value, in hundredths (99,999,999.99).
const MAX_HUNDREDTHS: i64 = 9_999_999_999;
/// The most winners a TOP_N programme can have.
const MAX_WINNERS: i64 = 10_000;
/// The longest CUSTOM period.
const MAX_CUSTOM_DAYS: i64 = 366;
/// The longest tenure a programme can ask for (ten years).
const MAX_TENURE_DAYS: i32 = 3_650;
/// The most previous wins a programme can allow.
const MAX_PREVIOUS_WINS: i32 = 1_000;
/// Longest description texts.
const MAX_TEXT: usize = 2_000;

/// How the period is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodInput {
    /// WEEKLY, MONTHLY or QUARTERLY: the period containing this local date (today at the
    /// venue when none).
    Calendar(PeriodType, Option<NaiveDate>),
    /// CUSTOM: both ends.
    Custom(DateTime<Utc>, DateTime<Utc>),
}

/// A programme's rules as the client gives them.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Display name.
    pub name: String,
    /// What the programme is about.
    pub description: Option<String>,
    /// What is measured.
    pub kind: IncentiveType,
    /// The threshold in the measured unit (see the module documentation).
    pub target_threshold: Decimal,
    /// How a value is compared with the threshold.
    pub target_comparison: TargetComparison,
    /// What winners get.
    pub reward_type: RewardType,
    /// The reward's amount or percent; none for TIER_UPGRADE.
    pub reward_value: Option<Decimal>,
    /// The reward in words.
    pub reward_description: Option<String>,
    /// The period.
    pub period: PeriodInput,
    /// Whether the next period opens when this one is finalised.
    pub is_recurring: bool,
    /// Tiers that may take part (default: all).
    pub eligible_tiers: Option<Vec<PromoterTier>>,
    /// Days a promoter must have been with the venue before the period starts (default 0).
    pub min_tenure_days: Option<i32>,
    /// Promoters with this many ACHIEVED results in the venue's earlier programmes are not
    /// eligible (default: no limit).
    pub max_previous_wins: Option<i32>,
}

/// Changes to a DRAFT's rules: each field given replaces the current one.
#[derive(Debug, Clone, Default)]
pub struct RulesPatch {
    /// See [`Rules`].
    pub name: Option<String>,
    /// See [`Rules`]; an empty text clears it.
    pub description: Option<String>,
    /// See [`Rules`].
    pub kind: Option<IncentiveType>,
    /// See [`Rules`].
    pub target_threshold: Option<Decimal>,
    /// See [`Rules`].
    pub target_comparison: Option<TargetComparison>,
    /// See [`Rules`].
    pub reward_type: Option<RewardType>,
    /// See [`Rules`].
    pub reward_value: Option<Decimal>,
    /// See [`Rules`]; an empty text clears it.
    pub reward_description: Option<String>,
    /// A new period type; with neither a date nor ends, the period holding the current
    /// start.
    pub period_type: Option<PeriodType>,
    /// A date in the new period (calendar types).
    pub period_date: Option<NaiveDate>,
    /// New ends (CUSTOM).
    pub period_ends: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// See [`Rules`].
    pub is_recurring: Option<bool>,
    /// See [`Rules`].
    pub eligible_tiers: Option<Vec<PromoterTier>>,
    /// See [`Rules`].
    pub min_tenure_days: Option<i32>,
    /// See [`Rules`]; `Some(None)` removes the limit.
    pub max_previous_wins: Option<Option<i32>>,
}

/// Rules checked and in their stored form.
#[derive(Debug, Clone)]
struct Checked {
    name: String,
    description: Option<String>,
    kind: IncentiveType,
    metric: &'static str,
    threshold: i64,
    comparison: TargetComparison,
    reward_type: RewardType,
    reward_value: i64,
    reward_description: Option<String>,
    period_type: PeriodType,
    period: Span,
    is_recurring: bool,
    tiers: Vec<PromoterTier>,
    tenure: i32,
    max_wins: Option<i32>,
}

/// `[start, end)` in UTC of the WEEKLY, MONTHLY or QUARTERLY period holding local `date`.
pub fn calendar_period(tz: Tz, period_type: PeriodType, date: NaiveDate) -> Result<Span> {
    let (first, next) = match period_type {
        PeriodType::Weekly => {
            let monday = date - TimeDelta::days(i64::from(date.weekday().num_days_from_monday()));
            (monday, monday + TimeDelta::days(7))
        }
        PeriodType::Monthly => {
            let first = date.with_day(1).unwrap_or(date);
            (first, first + Months::new(1))
        }
        PeriodType::Quarterly => {
            let month = (date.month0() / 3) * 3 + 1;
            let first = NaiveDate::from_ymd_opt(date.year(), month, 1).unwrap_or(date);
            (first, first + Months::new(3))
        }
        PeriodType::Custom => {
            return Err(Error::invalid(
                "periodStart",
                "a CUSTOM period takes `periodStart` and `periodEnd`",
            ));
        }
    };
    Ok((start_of_day(tz, first), start_of_day(tz, next)))
}

/// `[start, end)` in UTC.
pub type Span = (DateTime<Utc>, DateTime<Utc>);

fn period(tz: Tz, input: PeriodInput, now: DateTime<Utc>) -> Result<(PeriodType, Span)> {
    let (kind, (start, end)) = match input {
        PeriodInput::Calendar(kind, date) => {
            let date = date.unwrap_or_else(|| now.with_timezone(&tz).date_naive());
            (kind, calendar_period(tz, kind, date)?)
        }
        PeriodInput::Custom(start, end) => {
            let (start, end) = (truncate(start), truncate(end));
            if end <= start {
                return Err(Error::invalid(
                    "periodEnd",
                    "`periodEnd` must be after `periodStart`",
                ));
            }
            if end - start > TimeDelta::days(MAX_CUSTOM_DAYS) {
                return Err(Error::invalid(
                    "periodEnd",
                    format!("a CUSTOM period is at most {MAX_CUSTOM_DAYS} days"),
                ));
            }
            (PeriodType::Custom, (start, end))
        }
    };
    if end <= now {
        return Err(Error::invalid(
            "periodEnd",
            "the period is over: a programme's period must end in the future",
        ));
    }
    Ok((kind, (start, end)))
}

/// A positive amount in hundredths, at most 2 decimal places.
fn hundredths(field: &str, value: Decimal) -> Result<i64> {
    let units = money::to_units(value, 2)
        .filter(|&u| u > 0 && u <= MAX_HUNDREDTHS)
        .ok_or_else(|| {
            Error::invalid(
                field,
                format!("`{field}` must be positive, at most 99999999.99 with 2 decimal places"),
            )
        })?;
    Ok(units)
}

fn threshold(kind: IncentiveType, comparison: TargetComparison, value: Decimal) -> Result<i64> {
    let units = hundredths("targetThreshold", value)?;
    if comparison == TargetComparison::TopN {
        if units % 100 != 0 || units / 100 > MAX_WINNERS {
            return Err(Error::invalid(
                "targetThreshold",
                format!(
                    "for TOP_N `targetThreshold` is a whole number of winners, 1 to {MAX_WINNERS}"
                ),
            ));
        }
    } else if kind == IncentiveType::ConversionRate && units > 10_000 {
        return Err(Error::invalid(
            "targetThreshold",
            "for CONVERSION_RATE `targetThreshold` is a percent, at most 100",
        ));
    }
    Ok(units)
}

fn reward(kind: RewardType, value: Option<Decimal>) -> Result<i64> {
    match (kind, value) {
        (RewardType::TierUpgrade, None) => Ok(0),
        (RewardType::TierUpgrade, Some(_)) => Err(Error::invalid(
            "rewardValue",
            "a TIER_UPGRADE reward has no `rewardValue`: winners move up one tier",
        )),
        (_, None) => Err(Error::invalid(
            "rewardValue",
            format!("a {kind} reward needs `rewardValue`"),
        )),
        (RewardType::PercentageBonus, Some(v)) => {
            let units = hundredths("rewardValue", v)?;
            if units > 10_000 {
                return Err(Error::invalid(
                    "rewardValue",
                    "a PERCENTAGE_BONUS is a percent of the period's commissions, at most 100",
                ));
            }
            Ok(units)
        }
        (RewardType::FixedAmount, Some(v)) => hundredths("rewardValue", v),
    }
}

fn tiers(given: Option<Vec<PromoterTier>>) -> Result<Vec<PromoterTier>> {
    let all = [
        PromoterTier::Standard,
        PromoterTier::Premium,
        PromoterTier::Vip,
    ];
    let Some(given) = given else {
        return Ok(all.to_vec());
    };
    let tiers: Vec<PromoterTier> = all.into_iter().filter(|t| given.contains(t)).collect();
    if tiers.is_empty() {
        return Err(Error::invalid(
            "eligibleTiers",
            "`eligibleTiers` needs at least one tier",
        ));
    }
    Ok(tiers)
}

fn metric(kind: IncentiveType) -> &'static str {
    match kind {
        IncentiveType::BookingCount => "bookings",
        IncentiveType::RevenueTarget => "revenue",
        IncentiveType::NewGuests => "new_guests",
        IncentiveType::ConversionRate => "conversion_rate",
    }
}

fn check(rules: Rules, tz: Tz, now: DateTime<Utc>) -> Result<Checked> {
    let tenure = rules.min_tenure_days.unwrap_or(0);
    if !(0..=MAX_TENURE_DAYS).contains(&tenure) {
        return Err(Error::invalid(
            "minTenureDays",
            format!("`minTenureDays` is 0 to {MAX_TENURE_DAYS}"),
        ));
    }
    if rules
        .max_previous_wins
        .is_some_and(|n| !(1..=MAX_PREVIOUS_WINS).contains(&n))
    {
        return Err(Error::invalid(
            "maxPreviousWins",
            format!("`maxPreviousWins` is 1 to {MAX_PREVIOUS_WINS} (leave it out for no limit)"),
        ));
    }
    let (period_type, period) = period(tz, rules.period, now)?;
    Ok(Checked {
        name: required_text("name", &rules.name, 255)?,
        description: optional_text("description", rules.description.as_deref(), MAX_TEXT)?,
        kind: rules.kind,
        metric: metric(rules.kind),
        threshold: threshold(rules.kind, rules.target_comparison, rules.target_threshold)?,
        comparison: rules.target_comparison,
        reward_type: rules.reward_type,
        reward_value: reward(rules.reward_type, rules.reward_value)?,
        reward_description: optional_text(
            "rewardDescription",
            rules.reward_description.as_deref(),
            MAX_TEXT,
        )?,
        period_type,
        period,
        is_recurring: rules.is_recurring,
        tiers: tiers(rules.eligible_tiers)?,
        tenure,
        max_wins: rules.max_previous_wins,
    })
}

impl Checked {
    /// Sets the rules on a row.
    fn apply(self, row: &mut incentives::ActiveModel) {
        row.name = Set(self.name);
        row.description = Set(self.description);
        row.r#type = Set(self.kind);
        row.target_metric = Set(self.metric.to_owned());
        row.target_threshold = Set(self.threshold);
        row.target_comparison = Set(self.comparison);
        row.reward_type = Set(self.reward_type);
        row.reward_value = Set(self.reward_value);
        row.reward_description = Set(self.reward_description);
        row.period_type = Set(self.period_type);
        row.period_start = Set(self.period.0);
        row.period_end = Set(self.period.1);
        row.is_recurring = Set(self.is_recurring);
        row.eligible_tiers = Set(json!(
            self.tiers.iter().map(|t| t.as_str()).collect::<Vec<_>>()
        ));
        row.min_tenure_days = Set(self.tenure);
        row.max_previous_wins = Set(self.max_wins);
    }
}

async fn venue(db: &impl ConnectionTrait, id: Uuid) -> Result<venues::Model> {
    venues::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(Error::NotFound { what: "venue" })
}

/// Creates a DRAFT programme at a venue (MANAGER or above).
#[tracing::instrument(skip_all, fields(venue = %venue_id))]
pub async fn create_incentive(
    db: &DatabaseConnection,
    actor: &Actor,
    venue_id: Uuid,
    rules: Rules,
) -> Result<incentives::Model> {
    create_incentive_at(db, actor, venue_id, rules, now()).await
}

/// [`create_incentive`] with the clock given (the demo seed creates programmes in the past).
pub(crate) async fn create_incentive_at(
    db: &DatabaseConnection,
    actor: &Actor,
    venue_id: Uuid,
    rules: Rules,
    at: DateTime<Utc>,
) -> Result<incentives::Model> {
    actor.require(venue_id, Capability::Manage)?;
    let venue = venue(db, venue_id).await?;
    let checked = check(rules, venue_zone(&venue)?, at)?;
    let mut row = incentives::ActiveModel {
        id: Set(Uuid::new_v4()),
        venue_id: Set(venue_id),
        reward_currency: Set(venue.currency.clone()),
        status: Set(IncentiveStatus::Draft),
        participant_count: Set(0),
        winner_count: Set(0),
        total_payout: Set(0),
        created_by: Set(actor.user_id),
        created_at: Set(at),
        updated_at: Set(at),
        ..Default::default()
    };
    checked.apply(&mut row);
    crate::db::retry_transient("createIncentive", || {
        let row = row.clone();
        async move {
            let txn = db.begin().await?;
            let created = row.insert(&txn).await?;
            let mut tail = Tail::new();
            status_event(&mut tail, &created, None, at);
            tail.send(&txn).await?;
            txn.commit().await?;
            Ok(created)
        }
    })
    .await
}

/// The rules of `current` with `patch` over them.
fn merged(current: &incentives::Model, patch: RulesPatch, tz: Tz) -> Result<Rules> {
    let kind = patch.period_type.unwrap_or(current.period_type);
    match (kind, patch.period_date, patch.period_ends) {
        (PeriodType::Custom, Some(_), _) => {
            return Err(Error::invalid(
                "periodDate",
                "a CUSTOM period takes `periodStart` and `periodEnd`, not `periodDate`",
            ));
        }
        (PeriodType::Custom, _, _) | (_, _, None) => {}
        (_, _, Some(_)) => {
            return Err(Error::invalid(
                "periodStart",
                "only a CUSTOM period takes `periodStart` and `periodEnd`; give `periodDate`",
            ));
        }
    }
    let period = match (kind, patch.period_ends) {
        (PeriodType::Custom, ends) => {
            let (start, end) = ends.unwrap_or((current.period_start, current.period_end));
            PeriodInput::Custom(start, end)
        }
        (kind, _) => PeriodInput::Calendar(
            kind,
            Some(
                patch
                    .period_date
                    .unwrap_or_else(|| current.period_start.with_timezone(&tz).date_naive()),
            ),
        ),
    };
    let keep_text = |given: Option<String>, old: &Option<String>| given.or_else(|| old.clone());
    Ok(Rules {
        name: patch.name.unwrap_or_else(|| current.name.clone()),
        description: keep_text(patch.description, &current.description),
        kind: patch.kind.unwrap_or(current.r#type),
        target_threshold: patch
            .target_threshold
            .unwrap_or_else(|| money::from_units(current.target_threshold, 2)),
        target_comparison: patch.target_comparison.unwrap_or(current.target_comparison),
        reward_type: patch.reward_type.unwrap_or(current.reward_type),
        reward_value: match patch.reward_type.unwrap_or(current.reward_type) {
            RewardType::TierUpgrade => patch.reward_value,
            _ => Some(
                patch
                    .reward_value
                    .unwrap_or_else(|| money::from_units(current.reward_value, 2)),
            ),
        },
        reward_description: keep_text(patch.reward_description, &current.reward_description),
        period,
        is_recurring: patch.is_recurring.unwrap_or(current.is_recurring),
        eligible_tiers: Some(
            patch
                .eligible_tiers
                .unwrap_or_else(|| stored_tiers(current)),
        ),
        min_tenure_days: Some(patch.min_tenure_days.unwrap_or(current.min_tenure_days)),
        max_previous_wins: patch.max_previous_wins.unwrap_or(current.max_previous_wins),
    })
}

/// The tiers a programme names.
pub(crate) fn stored_tiers(program: &incentives::Model) -> Vec<PromoterTier> {
    serde_json::from_value(program.eligible_tiers.clone()).unwrap_or_default()
}

/// A programme the caller manages; NOT_FOUND when it does not exist or they cannot see it.
async fn managed(db: &impl ConnectionTrait, actor: &Actor, id: Uuid) -> Result<incentives::Model> {
    let program = incentives::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(Error::NotFound { what: "incentive" })?;
    actor
        .require(program.venue_id, Capability::Manage)
        .map_err(not_found_as("incentive"))?;
    Ok(program)
}

/// Changes a DRAFT programme's rules (MANAGER or above). CONFLICT once it is no longer a
/// DRAFT, or when it changed since it was read.
#[tracing::instrument(skip_all, fields(incentive = %id))]
pub async fn update_incentive(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    patch: RulesPatch,
) -> Result<incentives::Model> {
    let current = managed(db, actor, id).await?;
    if current.status != IncentiveStatus::Draft {
        return Err(not_draft(&current));
    }
    let at = now();
    let tz = venue_zone(&venue(db, current.venue_id).await?)?;
    let checked = check(merged(&current, patch, tz)?, tz, at)?;
    let mut row = incentives::ActiveModel {
        updated_at: Set(at),
        ..Default::default()
    };
    checked.apply(&mut row);
    crate::db::retry_transient("updateIncentive", || {
        let row = row.clone();
        let current = current.clone();
        async move {
            let txn = db.begin().await?;
            let updated = incentives::Entity::update_many()
                .set(row)
                .filter(incentives::Column::Id.eq(id))
                .filter(incentives::Column::Status.eq(IncentiveStatus::Draft))
                .filter(incentives::Column::UpdatedAt.eq(current.updated_at))
                .exec_with_returning(&txn)
                .await?
                .into_iter()
                .next()
                .ok_or_else(|| {
                    Error::Conflict(
                        "the programme changed while you edited it (it may no longer be a \
                         DRAFT); read it again"
                            .into(),
                    )
                })?;
            txn.commit().await?;
            Ok(updated)
        }
    })
    .await
}

fn not_draft(program: &incentives::Model) -> Error {
    Error::Conflict(format!(
        "the programme is {}: only a DRAFT's rules change (cancel it and create another)",
        program.status
    ))
}

/// A status change of a programme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// DRAFT -> ACTIVE, with a progress row for every eligible promoter.
    Activate,
    /// ACTIVE -> PAUSED.
    Pause,
    /// PAUSED -> ACTIVE, the values recomputed.
    Resume,
    /// DRAFT, ACTIVE or PAUSED -> CANCELLED.
    Cancel,
}

impl Step {
    fn from(self) -> &'static [IncentiveStatus] {
        use IncentiveStatus as S;
        match self {
            Step::Activate => &[S::Draft],
            Step::Pause => &[S::Active],
            Step::Resume => &[S::Paused],
            Step::Cancel => &[S::Draft, S::Active, S::Paused],
        }
    }

    fn to(self) -> IncentiveStatus {
        match self {
            Step::Activate | Step::Resume => IncentiveStatus::Active,
            Step::Pause => IncentiveStatus::Paused,
            Step::Cancel => IncentiveStatus::Cancelled,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Step::Activate => "activateIncentive",
            Step::Pause => "pauseIncentive",
            Step::Resume => "resumeIncentive",
            Step::Cancel => "cancelIncentive",
        }
    }
}

/// Moves a programme one step (MANAGER or above). CONFLICT when it is not in a status the
/// step starts from (activating twice, resuming an ACTIVE one); activating or resuming a
/// programme whose period is over is refused (it is for finalising).
#[tracing::instrument(skip_all, fields(incentive = %id, step = ?step))]
pub async fn move_incentive(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    step: Step,
) -> Result<incentives::Model> {
    move_incentive_at(db, actor, id, step, now()).await
}

/// [`move_incentive`] with the clock given.
pub(crate) async fn move_incentive_at(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    step: Step,
    at: DateTime<Utc>,
) -> Result<incentives::Model> {
    let program = managed(db, actor, id).await?;
    crate::db::retry_transient(step.name(), || {
        let program = program.clone();
        async move {
            let txn = db.begin().await?;
            let opens = matches!(step, Step::Activate | Step::Resume);
            if opens {
                if program.period_end <= at {
                    return Err(Error::invalid(
                        "incentiveId",
                        "the programme's period is over: it can only be finalised",
                    ));
                }
                let who = match step {
                    Step::Activate => facts::Who::eligible(&program),
                    _ => facts::Who::participants(&program),
                };
                lock_promoters(&txn, who).await?;
            }
            let moved = conditional(&txn, &program, step, at).await?;
            let mut tail = Tail::new();
            let moved = match step {
                Step::Activate => open(&txn, moved, &mut tail, at).await?,
                Step::Resume => refresh(&txn, moved, &mut tail, at).await?,
                Step::Pause | Step::Cancel => moved,
            };
            status_event(&mut tail, &moved, Some(program.status), at);
            tail.send(&txn).await?;
            txn.commit().await?;
            Ok(moved)
        }
    })
    .await
}

/// The step's conditional update: from one of its statuses, with the rules as read.
async fn conditional(
    txn: &impl ConnectionTrait,
    program: &incentives::Model,
    step: Step,
    at: DateTime<Utc>,
) -> Result<incentives::Model> {
    let moved = incentives::Entity::update_many()
        .col_expr(incentives::Column::Status, Expr::value(step.to()))
        .col_expr(incentives::Column::UpdatedAt, Expr::value(at))
        .filter(incentives::Column::Id.eq(program.id))
        .filter(incentives::Column::Status.is_in(step.from().iter().copied()))
        .filter(incentives::Column::UpdatedAt.eq(program.updated_at))
        .exec_with_returning(txn)
        .await?;
    moved.into_iter().next().ok_or_else(|| {
        Error::Conflict(format!(
            "the programme is {} (or changed meanwhile): {} needs {}",
            program.status,
            step.name(),
            step.from()
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" or ")
        ))
    })
}

/// PostgreSQL: locks the promoters `who` (activation: the eligible ones; resumption and
/// finalisation: the participants), ascending id. SQLite: the first write takes the one
/// write lock.
pub(super) async fn lock_promoters(txn: &impl ConnectionTrait, who: facts::Who) -> Result<()> {
    if txn.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    txn.query_all_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!(
            "SELECT id FROM promoters WHERE id IN ({}) ORDER BY id FOR UPDATE",
            who.sql
        ),
        who.values,
    ))
    .await?;
    Ok(())
}

/// A participant's row from its facts.
fn row(
    program: &incentives::Model,
    promoter: Uuid,
    facts: Facts,
    target: i64,
    at: DateTime<Utc>,
) -> incentive_progress::Model {
    let value = facts.value(program.r#type);
    let achieved = holds(program, value);
    let counts = program.r#type == IncentiveType::ConversionRate;
    incentive_progress::Model {
        id: Uuid::new_v4(),
        incentive_id: program.id,
        promoter_id: promoter,
        current_value: value,
        target_value: target,
        percent_complete: percent(value, target),
        status: if achieved {
            ProgressStatus::Achieved
        } else {
            ProgressStatus::InProgress
        },
        achieved_at: achieved.then_some(at),
        reward_earned: None,
        reward_paid_at: None,
        last_updated: at,
        created_at: at,
        // CONVERSION_RATE's counts; other programmes' rows keep 0 (see `progress`).
        completed_bookings: if counts { facts.completed } else { 0 },
        closed_bookings: if counts { facts.closed } else { 0 },
        value_reached_at: Some(at),
    }
}

/// The target every participant of `program` has, given everyone's values.
fn target(program: &incentives::Model, values: Vec<i64>) -> i64 {
    match program.target_comparison {
        TargetComparison::TopN => top_n_target(program.target_threshold / 100, values),
        _ => program.target_threshold,
    }
}

/// Activation: a progress row for every eligible promoter, with the period's bookings so
/// far; the programme's counters.
pub(super) async fn open(
    txn: &impl ConnectionTrait,
    program: incentives::Model,
    tail: &mut Tail,
    at: DateTime<Utc>,
) -> Result<incentives::Model> {
    let found = facts::of_eligible(txn, &program).await?;
    let target = target(
        &program,
        found.iter().map(|(_, f)| f.value(program.r#type)).collect(),
    );
    let rows: Vec<incentive_progress::Model> = found
        .into_iter()
        .map(|(promoter, f)| row(&program, promoter, f, target, at))
        .collect();
    for chunk in rows.chunks(1_000) {
        incentive_progress::Entity::insert_many(
            chunk
                .iter()
                .cloned()
                .map(sea_orm::IntoActiveModel::into_active_model),
        )
        .exec_without_returning(txn)
        .await?;
    }
    let winners = rows
        .iter()
        .filter(|r| r.status == ProgressStatus::Achieved)
        .count();
    for r in &rows {
        changed(tail, &program, r, r.status == ProgressStatus::Achieved, at);
    }
    counters(txn, program, rows.len(), winners).await
}

async fn counters(
    txn: &impl ConnectionTrait,
    program: incentives::Model,
    participants: usize,
    winners: usize,
) -> Result<incentives::Model> {
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    let mut row: incentives::ActiveModel = program.into();
    row.participant_count = Set(count(participants));
    row.winner_count = Set(count(winners));
    Ok(row.update(txn).await?)
}

/// Resumption: every participant's values recomputed from the period's bookings; rows
/// that moved get their event (and ACHIEVED when the threshold now holds).
pub(super) async fn refresh(
    txn: &impl ConnectionTrait,
    program: incentives::Model,
    tail: &mut Tail,
    at: DateTime<Utc>,
) -> Result<incentives::Model> {
    let rows = incentive_progress::Entity::find()
        .filter(incentive_progress::Column::IncentiveId.eq(program.id))
        .all(txn)
        .await?;
    let mut found = facts::of_participants(txn, &program).await?;
    let target = target(
        &program,
        rows.iter()
            .map(|r| found.get(&r.promoter_id).copied().unwrap_or_default())
            .map(|f| f.value(program.r#type))
            .collect(),
    );
    let mut winners = 0;
    let participants = rows.len();
    for old in rows {
        let facts = found.remove(&old.promoter_id).unwrap_or_default();
        let mut new = row(&program, old.promoter_id, facts, target, at);
        let achieved =
            old.status == ProgressStatus::InProgress && new.status == ProgressStatus::Achieved;
        if !achieved {
            // ACHIEVED stays (the first moment it held), IN_PROGRESS stays until it holds.
            new.status = old.status;
            new.achieved_at = old.achieved_at;
        }
        winners += usize::from(new.status == ProgressStatus::Achieved);
        let same = (
            new.current_value,
            new.target_value,
            new.completed_bookings,
            new.closed_bookings,
        ) == (
            old.current_value,
            old.target_value,
            old.completed_bookings,
            old.closed_bookings,
        );
        if same && !achieved {
            continue;
        }
        if new.current_value == old.current_value {
            new.value_reached_at = old.value_reached_at;
        }
        new.id = old.id;
        new.created_at = old.created_at;
        new.reward_earned = old.reward_earned;
        new.reward_paid_at = old.reward_paid_at;
        let saved = incentive_progress::ActiveModel::from(new.clone())
            .reset_all()
            .update(txn)
            .await?;
        changed(tail, &program, &saved, achieved, at);
    }
    counters(txn, program, participants, winners).await
}

/// A promoter who became eligible mid-period (approved, tier raised) joins every ACTIVE
/// programme of their venue they are not in and are now eligible for, with a row computed
/// from the period's bookings so far. Inside the change's transaction, after the
/// promoter's row was written (so its lock is held: promoter, then programmes, the order of
/// booking changes).
pub(crate) async fn join_programmes(
    txn: &impl ConnectionTrait,
    promoter: &promoters::Model,
    tail: &mut Tail,
    at: DateTime<Utc>,
) -> Result<()> {
    let programs = incentives::Entity::find()
        .filter(incentives::Column::VenueId.eq(promoter.venue_id))
        .filter(incentives::Column::Status.eq(IncentiveStatus::Active))
        .filter(incentives::Column::PeriodEnd.gt(at))
        .filter(
            incentives::Column::Id.not_in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(incentive_progress::Column::IncentiveId)
                    .from(incentive_progress::Entity)
                    .and_where(incentive_progress::Column::PromoterId.eq(promoter.id))
                    .to_owned(),
            ),
        )
        .order_by_asc(incentives::Column::Id)
        .all(txn)
        .await?;
    if programs.is_empty() {
        return Ok(());
    }
    progress::lock(txn, programs.iter().map(|p| p.id).collect()).await?;
    for program in programs {
        let who = facts::Who::eligible(&program).only(promoter.id);
        let Some((_, found)) = facts::facts(txn, &program, who).await?.into_iter().next() else {
            continue;
        };
        // TOP_N: a provisional target, re-targeted with everyone's values below.
        let row = row(&program, promoter.id, found, program.target_threshold, at);
        let achieved = row.status == ProgressStatus::Achieved;
        incentive_progress::Entity::insert(row.clone().into_active_model())
            .exec_without_returning(txn)
            .await?;
        incentives::Entity::update_many()
            .col_expr(
                incentives::Column::ParticipantCount,
                Expr::col(incentives::Column::ParticipantCount).add(1),
            )
            .col_expr(
                incentives::Column::WinnerCount,
                Expr::col(incentives::Column::WinnerCount).add(i32::from(achieved)),
            )
            .filter(incentives::Column::Id.eq(program.id))
            .exec(txn)
            .await?;
        if program.target_comparison == TargetComparison::TopN {
            progress::retarget(txn, &program, promoter.id, tail, at).await?;
        } else {
            changed(tail, &program, &row, achieved, at);
        }
    }
    Ok(())
}

/// Holds the [`INCENTIVE_CHANGED`] event of a programme's status change.
pub(super) fn status_event(
    tail: &mut Tail,
    program: &incentives::Model,
    from: Option<IncentiveStatus>,
    at: DateTime<Utc>,
) {
    tail.event(
        INCENTIVE_CHANGED,
        Some(program.venue_id),
        json!({
            "incentiveId": program.id,
            "from": from,
            "to": program.status,
            "incentive": program,
        }),
        at,
    );
}
