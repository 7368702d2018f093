//! After the bulk load (and the payout tour), every venue's incentive programmes are made by
//! the incentive service functions themselves, so the demo shows what they make, on the
//! clock of each step:
//!
//! - **Last month**: a recurring BOOKING_COUNT sprint (GREATER_EQUAL, a fixed bonus, its
//!   threshold three quarters of the month's best promoter's count), created by the venue's
//!   boss two days before the month and activated the day before (its participants'
//!   starting values are the month's bookings as the database holds them), then finalised
//!   by the admin just after the month ended: ACHIEVED / MISSED, the winners' bonuses as
//!   CONFIRMED INCENTIVE_PAYOUT transactions that the next payout takes, the counters set,
//!   and, as it recurs, this month's sprint opened with the same rules.
//! - **This month**: the other programmes of [`super::data::PROGRAMMES`] (thresholds set by
//!   the seeder from the month's values), created and activated before the month began.
//!   Bookings of the month were all written before, so each participant's value is what a
//!   programme activated on the first day and moved by every booking since would hold.

use chrono::{DateTime, Duration, Utc};
use prima_entity::bookings;
use prima_entity::enums::{BookingStatus, IncentiveType, PeriodType, RewardType, TargetComparison};
use rust_decimal::Decimal;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use crate::db::Db;
use crate::error::Result;
use crate::incentives::finalize::finalize_at;
use crate::incentives::manage::{PeriodInput, Rules, Step, create_incentive_at, move_incentive_at};

/// A venue whose programmes the tour makes.
pub(super) struct TourVenue {
    pub id: Uuid,
    /// Its OWNER or venue ADMIN, who runs its programmes.
    pub boss: Uuid,
    /// `[start, end)` of last month and the start of this one, in the venue's time zone.
    pub last_month: (DateTime<Utc>, DateTime<Utc>),
    /// Last month's sprint: name, description and reward text (the threshold is set here).
    pub sprint: SprintText,
    /// This month's other programmes.
    pub programmes: Vec<Rules>,
}

/// Words of last month's sprint, from the seeder's text pools.
pub(super) struct SprintText {
    pub name: String,
    /// With `{n}` where the threshold goes.
    pub description: String,
    pub reward: String,
    /// The bonus, in the venue's currency.
    pub bonus: Decimal,
}

/// What the tour made.
#[derive(Debug, Default)]
pub(super) struct Toured {
    /// Programmes made (the sprint's next period included).
    pub programmes: u64,
    /// Reward transactions written by finalisation.
    pub transactions: u64,
}

/// Runs the tour; `now` is the seed's clock.
pub(super) async fn run(
    db: &Db,
    admin: Uuid,
    venues: &[TourVenue],
    now: DateTime<Utc>,
) -> Result<Toured> {
    let admin = crate::auth::actor_for(&db.conn, admin).await?;
    let mut toured = Toured::default();
    for venue in venues {
        let boss = crate::auth::actor_for(&db.conn, venue.boss).await?;
        let (start, end) = venue.last_month;
        let sprint = create_incentive_at(
            &db.conn,
            &boss,
            venue.id,
            sprint_rules(db, venue).await?,
            start - Duration::days(2),
        )
        .await?;
        move_incentive_at(
            &db.conn,
            &boss,
            sprint.id,
            Step::Activate,
            start - Duration::days(1),
        )
        .await?;
        toured.programmes += 1;
        for rules in &venue.programmes {
            let made = create_incentive_at(
                &db.conn,
                &boss,
                venue.id,
                rules.clone(),
                end - Duration::days(2),
            )
            .await?;
            move_incentive_at(
                &db.conn,
                &boss,
                made.id,
                Step::Activate,
                end - Duration::days(1),
            )
            .await?;
            toured.programmes += 1;
        }
        // Finalised just after the month, never after the seed's `now`.
        let at = end + (now - end).min(Duration::hours(1)).max(Duration::zero());
        let sprint = prima_entity::incentives::Entity::find_by_id(sprint.id)
            .one(&db.conn)
            .await?
            .ok_or(crate::Error::NotFound { what: "incentive" })?;
        if let Some(done) = finalize_at(&db.conn, &sprint, Some(admin.user_id), at).await? {
            toured.programmes += u64::from(done.next.is_some());
            toured.transactions += u64::try_from(done.incentive.winner_count).unwrap_or(0);
        }
    }
    Ok(toured)
}

/// Last month's sprint at `venue`: its threshold three quarters of the month's best count
/// of CONFIRMED and COMPLETED bookings of one promoter, to two significant digits (10 when
/// nobody booked).
async fn sprint_rules(db: &Db, venue: &TourVenue) -> Result<Rules> {
    let (start, end) = venue.last_month;
    let counts: Vec<(Option<Uuid>, i64)> = bookings::Entity::find()
        .select_only()
        .column(bookings::Column::PromoterId)
        .column_as(bookings::Column::Id.count(), "n")
        .filter(bookings::Column::VenueId.eq(venue.id))
        .filter(bookings::Column::PromoterId.is_not_null())
        .filter(
            bookings::Column::Status.is_in([BookingStatus::Confirmed, BookingStatus::Completed]),
        )
        .filter(bookings::Column::BookingTime.gte(start))
        .filter(bookings::Column::BookingTime.lt(end))
        .group_by(bookings::Column::PromoterId)
        .into_tuple()
        .all(&db.conn)
        .await?;
    let best = counts.iter().map(|&(_, n)| n).max().unwrap_or(0);
    let threshold = if best == 0 {
        10
    } else {
        super::nice_floor(best * 3 / 4).max(1)
    };
    let text = &venue.sprint;
    Ok(Rules {
        name: text.name.clone(),
        description: Some(text.description.replace("{n}", &threshold.to_string())),
        kind: IncentiveType::BookingCount,
        target_threshold: Decimal::from(threshold),
        target_comparison: TargetComparison::GreaterEqual,
        reward_type: RewardType::FixedAmount,
        reward_value: Some(text.bonus),
        reward_description: Some(text.reward.clone()),
        period: PeriodInput::Calendar(
            PeriodType::Monthly,
            Some((start + Duration::days(1)).date_naive()),
        ),
        is_recurring: true,
        eligible_tiers: None,
        min_tenure_days: None,
        max_previous_wins: None,
    })
}
