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
//! - **The promoter's `month_*` fields** move by deltas too while `promoters.month_start`
//!   is the month of the change: bookings and revenue in the counter `UPDATE`; new and
//!   repeat guests from what the guest's *other* bookings with the promoter say (their
//!   earliest time, and whether one is in the month), read by one probe of the
//!   `(promoter_id, guest_id, booking_time)` index ([`Others`]) after the counter `UPDATE`
//!   holds the row's lock, so the cost does not grow with the promoter's bookings. When the
//!   month has turned (or was never recorded) they are recomputed once from the month's
//!   bookings and the month is recorded.
//! - **Fields that are not additive**, the guest's `last_booking_at` when a booking's time
//!   moves (the latest may become an earlier one), are recomputed from the bookings by a
//!   statement that runs *after* the counter `UPDATE` has taken the row's lock.
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
use prima_entity::enums::BookingStatus;
use prima_entity::{bookings, promoters};
use sea_orm::{ConnectionTrait, FromQueryResult, Statement, Value};
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
/// zone (the promoter's `month_*` fields). Returns the guest's first booking time with the
/// promoter before and after the change when the change can move it (incentive progress
/// counts new guests with it), `None` when it cannot, and the promoter's row as the counter
/// `UPDATE` left it when it ran (the change holds its lock).
pub async fn apply(
    txn: &impl ConnectionTrait,
    before: Option<&bookings::Model>,
    after: &bookings::Model,
    month: (DateTime<Utc>, DateTime<Utc>),
    now: DateTime<Utc>,
) -> Result<Applied> {
    let delta = Delta::between(before, after);
    let time_moved = before.is_some_and(|b| b.booking_time != after.booking_time);
    debug_assert!(
        before.is_none_or(|b| b.guest_id == after.guest_id
            && b.venue_id == after.venue_id
            && b.promoter_id == after.promoter_id),
        "a booking never changes guest, venue or promoter"
    );
    let mut first = None;
    let mut locked = None;
    if let Some(promoter) = after.promoter_id {
        // The month fields depend on which bookings exist, their status and their time.
        let month_moves = delta.all != 0 || delta.counted != 0 || time_moved;
        if delta.promoter_moves() || month_moves {
            let in_month = MonthDelta::between(before, after, month);
            let (row, fresh) =
                match promoter_counters(txn, promoter, &delta, &in_month, month.0, now).await? {
                    Some((row, fresh)) => (Some(row), fresh),
                    None => (None, true), // no such promoter: nothing to recompute
                };
            locked = row;
            // Whether the guest is new or repeat moves only when a booking appears or its
            // time moves; the probe runs under the promoter's row lock, taken just above.
            let guest = if before.is_none() || time_moved {
                let others = Others::read(txn, after, month).await?;
                first = Some(others.first_booking(before, after));
                Some(others.standing_delta(before, after, month))
            } else {
                None
            };
            if !fresh {
                promoter_month(txn, promoter, month).await?;
            } else if let Some((new, repeat)) = guest.filter(|moved| *moved != (0, 0)) {
                promoter_guests(txn, promoter, new, repeat).await?;
            }
        }
    }
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
    Ok(Applied {
        first,
        promoter: locked,
    })
}

/// What [`apply`] learned on the way.
#[derive(Debug, Default)]
pub struct Applied {
    /// The guest's first booking time with the promoter before and after the change, when
    /// the change can move it.
    pub first: Option<FirstBooking>,
    /// The promoter's row as the counter `UPDATE` returned it (with its lock held), when it
    /// ran: the commission of a confirmation is computed from it without reading it again.
    pub promoter: Option<promoters::Model>,
}

/// How one change moves the promoter's `month_bookings` and `month_revenue`: the booking's
/// share after minus before (CONFIRMED + COMPLETED bookings whose time is in the month).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct MonthDelta {
    bookings: i64,
    revenue: i64,
}

impl MonthDelta {
    fn between(
        before: Option<&bookings::Model>,
        after: &bookings::Model,
        month: (DateTime<Utc>, DateTime<Utc>),
    ) -> MonthDelta {
        let share = |b: Option<&bookings::Model>| match b {
            Some(b) if Counted::of(b).counted() && within(b.booking_time, month) => {
                (1, b.total_fee)
            }
            _ => (0, 0),
        };
        let (a, b) = (share(Some(after)), share(before));
        MonthDelta {
            bookings: a.0 - b.0,
            revenue: a.1 - b.1,
        }
    }
}

fn within(at: DateTime<Utc>, (start, end): (DateTime<Utc>, DateTime<Utc>)) -> bool {
    at >= start && at < end
}

/// The guest's first booking time with the promoter (any status) before and after a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirstBooking {
    /// Before the change (`None`: the guest had no booking with the promoter).
    pub before: Option<DateTime<Utc>>,
    /// After the change.
    pub after: DateTime<Utc>,
}

/// What the guest's *other* bookings with the promoter say (every booking but the one being
/// changed): the earliest time, and whether one falls in the month. Read with one probe of
/// the (promoter, guest, booking_time) index, whatever the number of bookings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Others {
    first: Option<DateTime<Utc>>,
    in_month: bool,
}

impl Others {
    async fn read(
        txn: &impl ConnectionTrait,
        booking: &bookings::Model,
        (start, end): (DateTime<Utc>, DateTime<Utc>),
    ) -> Result<Others> {
        const OTHERS: &str = "promoter_id = $1 AND guest_id = $2 AND id <> $3";
        let sql = format!(
            "SELECT (SELECT MIN(booking_time) FROM bookings WHERE {OTHERS}) AS first_at, \
                    (SELECT COUNT(*) FROM (SELECT 1 FROM bookings WHERE {OTHERS} \
                       AND booking_time >= $4 AND booking_time < $5 LIMIT 1) m) AS in_month"
        );
        let row = txn
            .query_one_raw(statement(
                txn,
                sql,
                vec![
                    booking.promoter_id.into(),
                    booking.guest_id.into(),
                    booking.id.into(),
                    start.into(),
                    end.into(),
                ],
            ))
            .await?
            .ok_or_else(|| crate::error::Error::internal(anyhow::anyhow!("no probe row")))?;
        Ok(Others {
            first: row.try_get("", "first_at")?,
            in_month: row.try_get::<i64>("", "in_month")? > 0,
        })
    }

    /// The guest's first booking time with `booking` (as it is on one side of the change)
    /// counted in.
    fn first_with(&self, booking: Option<&bookings::Model>) -> Option<DateTime<Utc>> {
        let own = booking.map(|b| b.booking_time);
        match (self.first, own) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn first_booking(
        &self,
        before: Option<&bookings::Model>,
        after: &bookings::Model,
    ) -> FirstBooking {
        FirstBooking {
            before: self.first_with(before),
            after: self.first_with(Some(after)).unwrap_or(after.booking_time),
        }
    }

    /// The guest's standing in the month with one side of the change: (new, repeat), each
    /// 0 or 1. New: the first booking with the promoter is in the month; repeat: a booking is
    /// in the month and the first came before it (DOMAIN.md "Promoter and guest metrics").
    fn standing(
        &self,
        booking: Option<&bookings::Model>,
        month: (DateTime<Utc>, DateTime<Utc>),
    ) -> (i64, i64) {
        let present = self.in_month || booking.is_some_and(|b| within(b.booking_time, month));
        match self.first_with(booking) {
            Some(first) if within(first, month) => (1, 0),
            Some(first) if present && first < month.0 => (0, 1),
            _ => (0, 0),
        }
    }

    /// How the change moves (month_new_guests, month_repeat_guests).
    fn standing_delta(
        &self,
        before: Option<&bookings::Model>,
        after: &bookings::Model,
        month: (DateTime<Utc>, DateTime<Utc>),
    ) -> (i64, i64) {
        let (a, b) = (
            self.standing(Some(after), month),
            self.standing(before, month),
        );
        (a.0 - b.0, a.1 - b.1)
    }
}

/// The promoter's counters and the ratios derived from them, and the month's bookings and
/// revenue by their delta when the stored month is `month_start`, in one `UPDATE` (which
/// takes the promoter's row lock). Returns whether the stored month fields are of that
/// month (false: the month turned, or they were never computed: recompute them), with the
/// row as updated; `None` when there is no such promoter.
async fn promoter_counters(
    txn: &impl ConnectionTrait,
    promoter: Uuid,
    d: &Delta,
    m: &MonthDelta,
    month_start: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<(promoters::Model, bool)>> {
    let all = "all_bookings + $4";
    let counted = "total_bookings + $5";
    let revenue = "total_revenue + $6";
    let completed = "completed_bookings + $7";
    let cancelled = "cancelled_bookings + $8";
    let no_show = "no_show_bookings + $9";
    const FRESH: &str = "month_start IS NOT NULL AND month_start = $3";
    let sql = format!(
        "UPDATE promoters SET \
           all_bookings = {all}, total_bookings = {counted}, total_revenue = {revenue}, \
           completed_bookings = {completed}, cancelled_bookings = {cancelled}, \
           no_show_bookings = {no_show}, \
           average_booking_value = {average}, \
           cancel_rate = {cancel_rate}, \
           no_show_rate = {no_show_rate}, \
           conversion_rate = {conversion_rate}, \
           month_bookings = CASE WHEN {FRESH} THEN month_bookings + $10 ELSE month_bookings END, \
           month_revenue = CASE WHEN {FRESH} THEN month_revenue + $11 ELSE month_revenue END, \
           updated_at = $2 \
         WHERE id = $1 \
         RETURNING *, CASE WHEN {FRESH} THEN 1 ELSE 0 END AS fresh",
        average = metrics::average_booking_value_sql(revenue, counted),
        cancel_rate = metrics::cancel_rate_sql(cancelled, all),
        no_show_rate = metrics::no_show_rate_sql(completed, no_show),
        conversion_rate = metrics::conversion_rate_sql(completed, cancelled, no_show),
    );
    // The deltas are parameters, not literals: one statement text, prepared once per
    // connection, whatever the amounts.
    let values = vec![
        promoter.into(),
        now.into(),
        month_start.into(),
        d.all.into(),
        d.counted.into(),
        d.revenue.into(),
        d.completed.into(),
        d.cancelled.into(),
        d.no_show.into(),
        m.bookings.into(),
        m.revenue.into(),
    ];
    let Some(row) = txn.query_one_raw(statement(txn, sql, values)).await? else {
        return Ok(None);
    };
    let fresh = row.try_get::<i32>("", "fresh")? == 1;
    Ok(Some((
        promoters::Model::from_query_result(&row, "")?,
        fresh,
    )))
}

/// Moves the promoter's month new and repeat guest counts by a change's delta; runs after
/// [`promoter_counters`] found the stored month current, under its row lock.
async fn promoter_guests(
    txn: &impl ConnectionTrait,
    promoter: Uuid,
    new: i64,
    repeat: i64,
) -> Result<()> {
    let sql = "UPDATE promoters SET month_new_guests = month_new_guests + $2, \
           month_repeat_guests = month_repeat_guests + $3 WHERE id = $1"
        .to_owned();
    txn.execute_raw(statement(
        txn,
        sql,
        vec![promoter.into(), new.into(), repeat.into()],
    ))
    .await?;
    Ok(())
}

/// Recomputes the promoter's `month_*` fields from its bookings in `[start, end)` and records
/// the month they cover; runs after [`promoter_counters`] holds the row lock, once a month
/// per promoter (the first change after the month turns) and from the periodic refresh.
/// Only the guests with a booking in the month are looked at, through the
/// (promoter, booking_time) index.
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
           month_repeat_guests = {repeat_guests}, \
           month_start = $2 \
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
    let bookings = "total_bookings + $3";
    let diners = "total_diners + $4";
    let mut values: Vec<Value> = vec![
        guest.into(),
        now.into(),
        d.all.into(),
        d.diners.into(),
        d.cancelled.into(),
        d.no_show.into(),
        d.spent.into(),
    ];
    let last = match latest {
        Some(at) => {
            values.push(at.into());
            ", last_booking_at = CASE WHEN last_booking_at IS NULL OR last_booking_at < $8 \
               THEN $8 ELSE last_booking_at END"
        }
        None => "",
    };
    let sql = format!(
        "UPDATE guests SET \
           total_bookings = {bookings}, total_diners = {diners}, \
           cancelled_bookings = cancelled_bookings + $5, \
           no_show_bookings = no_show_bookings + $6, \
           total_spent = total_spent + $7, \
           average_party_size = {average}, \
           updated_at = $2{last} \
         WHERE id = $1",
        average = metrics::average_party_size_sql(diners, bookings),
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
    let deltas: [Value; 5] = [
        d.all.into(),
        d.cancelled.into(),
        d.no_show.into(),
        d.spent.into(),
        d.diners.into(),
    ];
    if !creating {
        let sql = format!(
            "UPDATE {ROW} SET \
               total_bookings = total_bookings + $3, \
               cancelled_bookings = cancelled_bookings + $4, \
               no_show_bookings = no_show_bookings + $5, \
               total_spent = total_spent + $6, \
               total_diners = total_diners + $7 \
             WHERE guest_id = $1 AND venue_id = $2"
        );
        let mut values = vec![guest.into(), venue.into()];
        values.extend(deltas);
        txn.execute_raw(statement(txn, sql, values)).await?;
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO {ROW} \
           (guest_id, venue_id, total_bookings, cancelled_bookings, no_show_bookings, \
            total_spent, total_diners, last_booking_at) \
         VALUES ($1, $2, $4, $5, $6, $7, $8, $3) \
         ON CONFLICT (guest_id, venue_id) DO UPDATE SET \
           total_bookings = {ROW}.total_bookings + excluded.total_bookings, \
           cancelled_bookings = {ROW}.cancelled_bookings + excluded.cancelled_bookings, \
           no_show_bookings = {ROW}.no_show_bookings + excluded.no_show_bookings, \
           total_spent = {ROW}.total_spent + excluded.total_spent, \
           total_diners = {ROW}.total_diners + excluded.total_diners, \
           last_booking_at = CASE WHEN excluded.last_booking_at IS NOT NULL \
               AND ({ROW}.last_booking_at IS NULL \
                    OR {ROW}.last_booking_at < excluded.last_booking_at) \
             THEN excluded.last_booking_at ELSE {ROW}.last_booking_at END"
    );
    let mut values = vec![guest.into(), venue.into(), latest.into()];
    values.extend(deltas);
    txn.execute_raw(statement(txn, sql, values)).await?;
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

/// Recomputes every promoter's `month_*` fields (and records the month) for the calendar month of `now` in its
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
