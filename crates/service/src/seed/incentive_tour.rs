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
//! - **This month**: the other programmes of [`super::data::PROGRAMMES`] (thresholds, like the
//!   sprint's, set by the seeder from the month's values), created and activated before the
//!   month began.
//!   Bookings of the month were all written before, so each participant's value is what a
//!   programme activated on the first day and moved by every booking since would hold.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::access::Actor;
use crate::db::Db;
use crate::error::Result;
use crate::incentives::finalize::finalize_at;
use crate::incentives::manage::{Rules, Step, create_incentive_at, move_incentive_at};

/// A venue whose programmes the tour makes.
pub(super) struct TourVenue {
    pub id: Uuid,
    /// Its OWNER or venue ADMIN, who runs its programmes.
    pub boss: Uuid,
    /// `[start, end)` of last month, in the venue's time zone.
    pub last_month: (DateTime<Utc>, DateTime<Utc>),
    /// Last month's sprint, which recurs.
    pub sprint: Rules,
    /// This month's other programmes.
    pub programmes: Vec<Rules>,
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
        let sprint = open(db, &boss, venue.id, &venue.sprint, start).await?;
        toured.programmes += 1;
        for rules in &venue.programmes {
            open(db, &boss, venue.id, rules, end).await?;
            toured.programmes += 1;
        }
        // Finalised just after the month, never after the seed's `now` (the claim reads the
        // programme's status afresh).
        let at = end + (now - end).min(Duration::hours(1)).max(Duration::zero());
        if let Some(done) = finalize_at(&db.conn, &sprint, Some(admin.user_id), at).await? {
            toured.programmes += u64::from(done.next.is_some());
            toured.transactions += u64::try_from(done.incentive.winner_count).unwrap_or(0);
        }
    }
    Ok(toured)
}

/// A programme of the month starting at `month`, created by `boss` two days before and
/// activated the day before; the ACTIVE programme.
async fn open(
    db: &Db,
    boss: &Actor,
    venue: Uuid,
    rules: &Rules,
    month: DateTime<Utc>,
) -> Result<prima_entity::incentives::Model> {
    let draft = create_incentive_at(
        &db.conn,
        boss,
        venue,
        rules.clone(),
        month - Duration::days(2),
    )
    .await?;
    move_incentive_at(
        &db.conn,
        boss,
        draft.id,
        Step::Activate,
        month - Duration::days(1),
    )
    .await
}
