//! Keeping the promoter and guest aggregates current in the transaction of every booking
//! change (DOMAIN.md "Promoter and guest metrics"), with the definitions `prima check`
//! recomputes ([`crate::check`]).
//!
//! How each field is kept, and why:
//! - **Counters** (`total_bookings`, `total_revenue`, `all_bookings`, `completed_bookings`,
//!   `cancelled_bookings`, `no_show_bookings`; the guest's `total_bookings`,
//!   `cancelled_bookings`, `no_show_bookings`, `total_spent`, `total_diners`) move by atomic
//!   increments (`x = x + d`): the delta between the booking before and after the change
//!   ([`Delta`]). Never read-modify-write in the application.
//! - **Ratios** (`average_booking_value`, `cancel_rate`, `no_show_rate`, `conversion_rate`,
//!   `average_party_size`, defined in [`crate::promoters::metrics`]) are computed in the same
//!   `UPDATE` from the incremented counters, rounded half away from zero in integer
//!   arithmetic (`(2 * n * scale + d) / (2 * d)`), so they are exact and can never disagree
//!   with the counters.
//! - **Fields that are not additive**, the promoter's `month_*` (a guest is "new" depending
//!   on their other bookings, and the month turns) and the guest's `last_booking_at` when a
//!   booking's time moves (the latest may become an earlier one), are recomputed from the
//!   bookings by a statement that runs *after* the counter `UPDATE` has taken the row's lock.
//!   Every booking change of a promoter or guest takes that lock first, so under READ
//!   COMMITTED the recompute (a new statement, a new snapshot) sees every change committed
//!   before it and none can slip in until this transaction commits. A recompute inside the
//!   locking statement itself would not: its snapshot predates the wait for the lock.
//! - **Per-venue guest counters** (`guest_venue_stats`, one row per guest and venue with
//!   bookings: the guest row's counters restricted to that venue, so that a caller's view of
//!   a guest sums only the venues they can read) move by the same deltas in one atomic
//!   upsert (`INSERT ... ON CONFLICT (guest_id, venue_id) DO UPDATE SET x = x + d`): the
//!   first booking at a venue creates the row, later changes increment it. When a booking's
//!   time moves, the row's `last_booking_at` is recomputed from that venue's bookings after
//!   the upsert holds the row's lock, as for the guest row.
//! - Locks follow the global order of [`super`] (booking, promoter, guest, the guest's
//!   venue row in `guest_venue_stats`, then what comes after), so two changes cannot
//!   deadlock.

use chrono::{DateTime, Utc};
use prima_entity::bookings;
use prima_entity::enums::BookingStatus;
use sea_orm::{ConnectionTrait, Statement, Value};
use uuid::Uuid;

use crate::error::Result;
use crate::promoters::metrics;

/// The part of a booking the aggregates depend on.
#[derive(Debug, Clone, Copy)]
struct Counted {
    status: BookingStatus,
    total_fee: i64,
    diners: i64,
}

impl Counted {
    fn of(booking: &bookings::Model) -> Self {
        Counted {
            status: booking.status,
            total_fee: booking.total_fee,
            diners: i64::from(booking.diners),
        }
    }

    /// CONFIRMED and COMPLETED bookings count towards totals and revenue.
    fn counted(&self) -> bool {
        matches!(
            self.status,
            BookingStatus::Confirmed | BookingStatus::Completed
        )
    }
}

/// How one booking change moves the counters: the booking after minus the booking before.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delta {
    /// Bookings of any status (1 for a new booking).
    pub all: i64,
    /// CONFIRMED + COMPLETED bookings.
    pub counted: i64,
    /// `total_fee` of CONFIRMED + COMPLETED bookings, cents.
    pub revenue: i64,
    /// COMPLETED bookings.
    pub completed: i64,
    /// CANCELLED bookings.
    pub cancelled: i64,
    /// NO_SHOW bookings.
    pub no_show: i64,
    /// `total_fee` of COMPLETED bookings (the guest's `total_spent`), cents.
    pub spent: i64,
    /// Diners over all bookings (the guest's `total_diners`).
    pub diners: i64,
}

impl Delta {
    /// The change from `before` (`None` for a booking being created) to `after`.
    pub fn between(before: Option<&bookings::Model>, after: &bookings::Model) -> Delta {
        let one = |yes: bool| i64::from(yes);
        let side = |b: Option<Counted>| {
            let Some(b) = b else {
                return Delta::default();
            };
            let status = |s| one(b.status == s);
            Delta {
                all: 1,
                counted: one(b.counted()),
                revenue: if b.counted() { b.total_fee } else { 0 },
                completed: status(BookingStatus::Completed),
                cancelled: status(BookingStatus::Cancelled),
                no_show: status(BookingStatus::NoShow),
                spent: if b.status == BookingStatus::Completed {
                    b.total_fee
                } else {
                    0
                },
                diners: b.diners,
            }
        };
        let (a, b) = (
            side(Some(Counted::of(after))),
            side(before.map(Counted::of)),
        );
        Delta {
            all: a.all - b.all,
            counted: a.counted - b.counted,
            revenue: a.revenue - b.revenue,
            completed: a.completed - b.completed,
            cancelled: a.cancelled - b.cancelled,
            no_show: a.no_show - b.no_show,
            spent: a.spent - b.spent,
            diners: a.diners - b.diners,
        }
    }

    fn promoter_moves(&self) -> bool {
        self.all != 0
            || self.counted != 0
            || self.revenue != 0
            || self.completed != 0
            || self.cancelled != 0
            || self.no_show != 0
    }

    fn guest_moves(&self) -> bool {
        self.all != 0
            || self.cancelled != 0
            || self.no_show != 0
            || self.spent != 0
            || self.diners != 0
    }
}

fn statement(db: &impl ConnectionTrait, sql: String, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(db.get_database_backend(), sql, values)
}

/// Applies a booking change to its promoter's and guest's aggregates, inside the change's
/// transaction. `before` is the booking as it was (`None` when it is being created), `after`
/// as it is now; `month` is `[start, end)` of the current calendar month in the venue's time
/// zone (the promoter's `month_*` fields).
pub async fn apply(
    txn: &impl ConnectionTrait,
    before: Option<&bookings::Model>,
    after: &bookings::Model,
    month: (DateTime<Utc>, DateTime<Utc>),
    now: DateTime<Utc>,
) -> Result<()> {
    let delta = Delta::between(before, after);
    let time_moved = before.is_some_and(|b| b.booking_time != after.booking_time);
    if let Some(promoter) = after.promoter_id {
        // The month fields depend on which bookings exist, their status and their time.
        let month_moves = delta.all != 0 || delta.counted != 0 || time_moved;
        if delta.promoter_moves() || month_moves {
            promoter_counters(txn, promoter, &delta, now).await?;
        }
        if month_moves {
            promoter_month(txn, promoter, month).await?;
        }
    }
    debug_assert!(
        before.is_none_or(|b| b.guest_id == after.guest_id && b.venue_id == after.venue_id),
        "a booking never changes guest or venue"
    );
    if delta.guest_moves() || before.is_none() || time_moved {
        let latest = before.is_none().then_some(after.booking_time);
        guest_counters(txn, after.guest_id, &delta, latest, now).await?;
        if time_moved {
            guest_last_booking(txn, after.guest_id).await?;
        }
        guest_venue_counters(
            txn,
            after.guest_id,
            after.venue_id,
            &delta,
            latest,
            before.is_none(),
        )
        .await?;
        if time_moved {
            guest_venue_last_booking(txn, after.guest_id, after.venue_id).await?;
        }
    }
    Ok(())
}

/// The promoter's counters and the ratios derived from them, in one `UPDATE` (which takes
/// the promoter's row lock).
async fn promoter_counters(
    txn: &impl ConnectionTrait,
    promoter: Uuid,
    d: &Delta,
    now: DateTime<Utc>,
) -> Result<()> {
    let all = format!("all_bookings + {}", d.all);
    let counted = format!("total_bookings + {}", d.counted);
    let revenue = format!("total_revenue + {}", d.revenue);
    let completed = format!("completed_bookings + {}", d.completed);
    let cancelled = format!("cancelled_bookings + {}", d.cancelled);
    let no_show = format!("no_show_bookings + {}", d.no_show);
    let sql = format!(
        "UPDATE promoters SET \
           all_bookings = {all}, total_bookings = {counted}, total_revenue = {revenue}, \
           completed_bookings = {completed}, cancelled_bookings = {cancelled}, \
           no_show_bookings = {no_show}, \
           average_booking_value = {average}, \
           cancel_rate = {cancel_rate}, \
           no_show_rate = {no_show_rate}, \
           conversion_rate = {conversion_rate}, \
           updated_at = $2 \
         WHERE id = $1",
        average = metrics::average_booking_value_sql(&revenue, &counted),
        cancel_rate = metrics::cancel_rate_sql(&cancelled, &all),
        no_show_rate = metrics::no_show_rate_sql(&completed, &no_show),
        conversion_rate = metrics::conversion_rate_sql(&completed, &cancelled, &no_show),
    );
    txn.execute_raw(statement(txn, sql, vec![promoter.into(), now.into()]))
        .await?;
    Ok(())
}

/// Recomputes the promoter's `month_*` fields from its bookings in `[start, end)`; runs
/// after [`promoter_counters`] holds the row lock. Only the guests with a booking in the
/// month are looked at, through the (promoter, booking_time) index.
async fn promoter_month(
    txn: &impl ConnectionTrait,
    promoter: Uuid,
    (start, end): (DateTime<Utc>, DateTime<Utc>),
) -> Result<()> {
    const IN_MONTH: &str = "b.promoter_id = $1 AND b.booking_time >= $2 AND b.booking_time < $3";
    const COUNTED: &str = "b.status IN ('CONFIRMED', 'COMPLETED')";
    let guests = |condition: &str| {
        format!(
            "(SELECT COUNT(*) FROM ( \
               SELECT f.guest_id, MIN(f.booking_time) AS first_at FROM bookings f \
               WHERE f.promoter_id = $1 AND f.guest_id IN (SELECT b.guest_id FROM bookings b WHERE {IN_MONTH}) \
               GROUP BY f.guest_id \
             ) r WHERE r.first_at {condition})"
        )
    };
    let sql = format!(
        "UPDATE promoters SET \
           month_bookings = (SELECT COUNT(*) FROM bookings b WHERE {IN_MONTH} AND {COUNTED}), \
           month_revenue = (SELECT CAST(COALESCE(SUM(b.total_fee), 0) AS BIGINT) FROM bookings b \
                            WHERE {IN_MONTH} AND {COUNTED}), \
           month_new_guests = {new_guests}, \
           month_repeat_guests = {repeat_guests} \
         WHERE id = $1",
        new_guests = guests(">= $2"),
        repeat_guests = guests("< $2"),
    );
    txn.execute_raw(statement(
        txn,
        sql,
        vec![promoter.into(), start.into(), end.into()],
    ))
    .await?;
    Ok(())
}

/// The guest's counters and `average_party_size`, in one `UPDATE` (which takes the guest's
/// row lock); with `latest`, `last_booking_at` becomes it if it is later.
async fn guest_counters(
    txn: &impl ConnectionTrait,
    guest: Uuid,
    d: &Delta,
    latest: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<()> {
    let bookings = format!("total_bookings + {}", d.all);
    let diners = format!("total_diners + {}", d.diners);
    let mut values: Vec<Value> = vec![guest.into(), now.into()];
    let last = match latest {
        Some(at) => {
            values.push(at.into());
            ", last_booking_at = CASE WHEN last_booking_at IS NULL OR last_booking_at < $3 \
               THEN $3 ELSE last_booking_at END"
        }
        None => "",
    };
    let sql = format!(
        "UPDATE guests SET \
           total_bookings = {bookings}, total_diners = {diners}, \
           cancelled_bookings = cancelled_bookings + {cancelled}, \
           no_show_bookings = no_show_bookings + {no_show}, \
           total_spent = total_spent + {spent}, \
           average_party_size = {average}, \
           updated_at = $2{last} \
         WHERE id = $1",
        cancelled = d.cancelled,
        no_show = d.no_show,
        spent = d.spent,
        average = metrics::average_party_size_sql(&diners, &bookings),
    );
    txn.execute_raw(statement(txn, sql, values)).await?;
    Ok(())
}

/// Recomputes the guest's `last_booking_at` (latest `booking_time` of any status); runs
/// after [`guest_counters`] holds the row lock.
async fn guest_last_booking(txn: &impl ConnectionTrait, guest: Uuid) -> Result<()> {
    txn.execute_raw(statement(
        txn,
        "UPDATE guests SET last_booking_at = \
           (SELECT MAX(b.booking_time) FROM bookings b WHERE b.guest_id = $1) \
         WHERE id = $1"
            .to_owned(),
        vec![guest.into()],
    ))
    .await?;
    Ok(())
}

/// The guest's counters at one venue (`guest_venue_stats`), in one atomic statement that
/// takes the row's lock (after the guest row's); with `latest`, `last_booking_at` becomes
/// it if it is later.
///
/// A new booking upserts: at a venue new to the guest it creates the row with the
/// booking's own counts, else it adds them. Every other change adds its delta with a plain
/// UPDATE: the row exists (made with the booking, or backfilled), and a delta can be
/// negative, which the upsert's proposed row cannot be: both databases check the table's
/// `CHECK (x >= 0)` constraints on the row an INSERT proposes before they resolve the
/// conflict into an update.
async fn guest_venue_counters(
    txn: &impl ConnectionTrait,
    guest: Uuid,
    venue: Uuid,
    d: &Delta,
    latest: Option<DateTime<Utc>>,
    creating: bool,
) -> Result<()> {
    const ROW: &str = "guest_venue_stats";
    if !creating {
        let sql = format!(
            "UPDATE {ROW} SET \
               total_bookings = total_bookings + {all}, \
               cancelled_bookings = cancelled_bookings + {cancelled}, \
               no_show_bookings = no_show_bookings + {no_show}, \
               total_spent = total_spent + {spent}, \
               total_diners = total_diners + {diners} \
             WHERE guest_id = $1 AND venue_id = $2",
            all = d.all,
            cancelled = d.cancelled,
            no_show = d.no_show,
            spent = d.spent,
            diners = d.diners,
        );
        txn.execute_raw(statement(txn, sql, vec![guest.into(), venue.into()]))
            .await?;
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO {ROW} \
           (guest_id, venue_id, total_bookings, cancelled_bookings, no_show_bookings, \
            total_spent, total_diners, last_booking_at) \
         VALUES ($1, $2, {all}, {cancelled}, {no_show}, {spent}, {diners}, $3) \
         ON CONFLICT (guest_id, venue_id) DO UPDATE SET \
           total_bookings = {ROW}.total_bookings + excluded.total_bookings, \
           cancelled_bookings = {ROW}.cancelled_bookings + excluded.cancelled_bookings, \
           no_show_bookings = {ROW}.no_show_bookings + excluded.no_show_bookings, \
           total_spent = {ROW}.total_spent + excluded.total_spent, \
           total_diners = {ROW}.total_diners + excluded.total_diners, \
           last_booking_at = CASE WHEN excluded.last_booking_at IS NOT NULL \
               AND ({ROW}.last_booking_at IS NULL \
                    OR {ROW}.last_booking_at < excluded.last_booking_at) \
             THEN excluded.last_booking_at ELSE {ROW}.last_booking_at END",
        all = d.all,
        cancelled = d.cancelled,
        no_show = d.no_show,
        spent = d.spent,
        diners = d.diners,
    );
    txn.execute_raw(statement(
        txn,
        sql,
        vec![guest.into(), venue.into(), latest.into()],
    ))
    .await?;
    Ok(())
}

/// Recomputes the `last_booking_at` of the guest's row at one venue (latest `booking_time`
/// of any status there); runs after [`guest_venue_counters`] holds the row lock.
async fn guest_venue_last_booking(
    txn: &impl ConnectionTrait,
    guest: Uuid,
    venue: Uuid,
) -> Result<()> {
    txn.execute_raw(statement(
        txn,
        "UPDATE guest_venue_stats SET last_booking_at = \
           (SELECT MAX(b.booking_time) FROM bookings b \
            WHERE b.guest_id = $1 AND b.venue_id = $2) \
         WHERE guest_id = $1 AND venue_id = $2"
            .to_owned(),
        vec![guest.into(), venue.into()],
    ))
    .await?;
    Ok(())
}

/// Recomputes every promoter's `month_*` fields for the calendar month of `now` in its
/// venue's time zone; returns how many promoters it refreshed. The fields are kept current
/// by every booking change, but a month that turns makes them stale with no booking change
/// at all, so the server runs this periodically (and `prima check` reports stale ones).
/// One short transaction per promoter: its row lock first (a no-op `UPDATE`), then the
/// recompute, as a booking change does.
pub async fn refresh_month_fields(
    db: &sea_orm::DatabaseConnection,
    now: DateTime<Utc>,
) -> Result<u64> {
    use prima_entity::{promoters, venues};
    use sea_orm::{EntityTrait, JoinType, QuerySelect, RelationTrait, TransactionTrait};
    let rows: Vec<(Uuid, String)> = promoters::Entity::find()
        .select_only()
        .column(promoters::Column::Id)
        .column(venues::Column::Timezone)
        .join(JoinType::InnerJoin, promoters::Relation::Venues.def())
        .into_tuple()
        .all(db)
        .await?;
    let mut refreshed = 0;
    for (promoter, timezone) in rows {
        let Ok(tz) = timezone.parse::<chrono_tz::Tz>() else {
            tracing::warn!(%promoter, %timezone, "unknown time zone: month fields not refreshed");
            continue;
        };
        let month = crate::commissions::month::month_bounds(tz, now);
        let txn = db.begin().await?;
        txn.execute_raw(statement(
            &txn,
            "UPDATE promoters SET updated_at = updated_at WHERE id = $1".to_owned(),
            vec![promoter.into()],
        ))
        .await?;
        promoter_month(&txn, promoter, month).await?;
        txn.commit().await?;
        refreshed += 1;
    }
    Ok(refreshed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn booking(status: BookingStatus, fee: i64, diners: i32) -> bookings::Model {
        let at = chrono::DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        bookings::Model {
            id: Uuid::nil(),
            venue_id: Uuid::nil(),
            promoter_id: None,
            guest_id: Uuid::nil(),
            diners,
            booking_time: at,
            duration_minutes: 120,
            special_requests: None,
            notes: None,
            r#type: prima_entity::enums::BookingType::NonPrime,
            source: prima_entity::enums::BookingSource::Direct,
            status,
            base_fee: fee,
            platform_fee: 0,
            total_fee: fee,
            promoter_commission: 0,
            confirmed_at: None,
            cancelled_at: None,
            no_show_at: None,
            completed_at: None,
            ip_address: None,
            user_agent: None,
            referrer: None,
            created_at: at,
            updated_at: at,
        }
    }

    #[test]
    fn each_transition_moves_exactly_its_counters() {
        use BookingStatus::*;
        let d = |from: Option<BookingStatus>, to: BookingStatus| {
            let before = from.map(|s| booking(s, 100, 4));
            Delta::between(before.as_ref(), &booking(to, 100, 4))
        };
        let new = |counted, revenue| Delta {
            all: 1,
            counted,
            revenue,
            diners: 4,
            ..Delta::default()
        };
        assert_eq!(d(None, Pending), new(0, 0));
        assert_eq!(d(None, Confirmed), new(1, 100));
        let moved = |delta: Delta| delta;
        assert_eq!(
            d(Some(Pending), Confirmed),
            moved(Delta {
                counted: 1,
                revenue: 100,
                ..Delta::default()
            })
        );
        assert_eq!(
            d(Some(Pending), Cancelled),
            Delta {
                cancelled: 1,
                ..Delta::default()
            }
        );
        assert_eq!(
            d(Some(Confirmed), Cancelled),
            Delta {
                counted: -1,
                revenue: -100,
                cancelled: 1,
                ..Delta::default()
            }
        );
        assert_eq!(
            d(Some(Confirmed), Completed),
            Delta {
                completed: 1,
                spent: 100,
                ..Delta::default()
            }
        );
        assert_eq!(
            d(Some(Confirmed), NoShow),
            Delta {
                counted: -1,
                revenue: -100,
                no_show: 1,
                ..Delta::default()
            }
        );
    }

    #[test]
    fn an_edit_moves_diners_and_a_repriced_pending_booking_moves_nothing_else() {
        let before = booking(BookingStatus::Pending, 100, 4);
        let after = booking(BookingStatus::Pending, 180, 6);
        assert_eq!(
            Delta::between(Some(&before), &after),
            Delta {
                diners: 2,
                ..Delta::default()
            }
        );
    }
}
