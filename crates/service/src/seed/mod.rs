//! The demo portfolio: a deterministic, realistic data set that exercises every table and
//! obeys every rule of DOMAIN.md, for demos, manual testing and load tests.
//!
//! [`seed`] fills an already-migrated, empty database. The same [`SeedOptions`] (booking count
//! and reference instant `now`) always produce the same rows: every choice comes from a
//! fixed-seed splitmix64 generator, every UUID is made of its output, and every timestamp is
//! an offset from `now`. Reference rows get version 4 UUIDs; bookings, their history and
//! their transactions get version 7 UUIDs (the row's own timestamp plus generator bits), so
//! that a million of them append to their indexes instead of writing random index pages.
//! Only the argon2 password hash differs between runs (its salt is random); it is computed
//! once and shared by every demo user.
//!
//! This file is the generator; the fixed tables it draws from (venues, users and their
//! access, promoters, name and text pools, incentive programmes) are in `seed/data.rs`.
//!
//! # What it contains
//!
//! - **Users** (password [`DEMO_PASSWORD`]): `admin@prima.demo` (global ADMIN),
//!   `owner@prima.demo` (MANAGER, OWNER of every venue but the last), `manager@prima.demo`
//!   (MANAGER, MANAGER of the last venue), `gm@prima.demo` (MANAGER, venue ADMIN of the last
//!   venue, who approves its payouts), `coordinator@prima.demo` (COORDINATOR of the first
//!   venue), `viewer@prima.demo` (global VIEWER with a COORDINATOR row on the second venue),
//!   `suspended@prima.demo` (SUSPENDED user, COORDINATOR row on the third venue) and
//!   `revoked@prima.demo` (COORDINATOR whose row on the fourth venue was revoked 10 days ago).
//! - **Six venues** of different types, tiers, cities and time zones (New York, Los Angeles,
//!   London in GBP, Miami, Paris in EUR, San Francisco); the last one does not auto-confirm
//!   (`auto_confirm_bookings = false`, `require_approval = true`). Each has two pricing rows:
//!   the original one, closed (`effective_to`) at local midnight 45 days ago, and the current
//!   one (`effective_to` NULL), with discounts on some venues.
//! - **Guests**: `max(50, bookings / 8)`, split into a US, a UK and a French pool by the
//!   currency of the venues they book (so no guest total mixes currencies); about 5 % VIP,
//!   exactly one BLOCKED (blocked 21 days ago: no booking made after that, and the venue
//!   cancelled the later ones then), JSON arrays of dietary restrictions and tags. Low guest
//!   numbers are the regulars; every guest has at least one booking when there are enough.
//! - **Promoters**: 4 or 5 per venue, every tier and every status (ACTIVE, INACTIVE,
//!   SUSPENDED, PENDING_APPROVAL), social media JSON. A promoter brings bookings to its own
//!   venue only; INACTIVE and SUSPENDED ones only bookings whose time is before the day they
//!   stopped (they were ACTIVE when those were confirmed, so they earned commission),
//!   PENDING_APPROVAL ones none.
//! - **Commission rates**: every venue has a rate for each tier; PERCENT_OF_SPEND,
//!   PER_COVER and FLAT_RATE venues, and one venue also has a TIERED ladder
//!   (`min_monthly_bookings` 0 / 10 / 25) for every tier. **Assignments**: every promoter has
//!   one; promoters promoted to their tier also have the closed assignment of their previous
//!   tier, INACTIVE ones have only closed assignments. Assignments use the non-tiered models.
//! - **Bookings**: exactly [`SeedOptions::bookings`], unevenly spread over the venues, created
//!   from 120 days before `now` until `now`, for local meal times from 120 days in the past
//!   to 30 days in the future (`booking_time > created_at` always), 1 to 12 diners within the
//!   party limits of the pricing row in force. Bookings are generated in `created_at` order.
//! - **Booking history**: one `CREATED` row per booking and one `STATUS_CHANGED` row per
//!   status change (previous / new value `{"status": ...}`, who did it and their role).
//! - **Transactions**: the ledger of every booking that was ever CONFIRMED.
//! - **Payouts**: a COMPLETED payout for every promoter and every past month of the window
//!   in which they earned (items, SETTLED transactions, a released hold, full audit trail),
//!   and one PENDING_APPROVAL payout with an active hold.
//! - **Incentives**: per venue, made by the incentive service functions after the bulk load
//!   ([`incentive_tour`]): last month's recurring BOOKING_COUNT sprint, finalised (its
//!   winners' bonuses written as INCENTIVE_PAYOUT transactions for their next payout), and
//!   this month's three ACTIVE programmes: the sprint's next period, REVENUE_TARGET
//!   (GREATER_EQUAL) and NEW_GUESTS (TOP_N 3), each with the progress of every eligible
//!   promoter.
//!
//! # Rules the generator applies (DOMAIN.md, and where DOMAIN.md is silent)
//!
//! - **Fees**: "Pricing a booking" ([`crate::pricing::quote`]), with the pricing row in force
//!   at `created_at`, which is the quote's `now`. The repeat customer discount applies when the
//!   guest has a booking at the venue COMPLETED before this one's `created_at` (bookings are
//!   generated in `created_at` order, so this is exact).
//! - **Lifecycle**: bookings at an auto-confirming venue are created CONFIRMED (one history
//!   row); at the approval venue they are created PENDING and confirmed by the venue manager
//!   before `booking_time`, or still PENDING if that moment is after `now`. About 9 % are
//!   cancelled at a moment between creation and 30 minutes before `booking_time` (only those
//!   whose moment is before `now` are cancelled yet). A confirmed booking whose
//!   `booking_time + duration_minutes` is before `now` is COMPLETED at that moment, or (about
//!   5 %) NO_SHOW 30 minutes after `booking_time`; otherwise it is still CONFIRMED.
//! - **Commission**: [`crate::commissions::rules::compute`], when the booking becomes
//!   CONFIRMED, from the assignment in force at `booking_time`, with the promoter ACTIVE then
//!   (the seed's rates set no conversion or cancel limits): PER_COVER `rate * diners`,
//!   PERCENT_OF_SPEND `rate * base_fee`, FLAT_RATE `rate`; 0 when `base_fee` is below the rate's `minimum_booking`, capped at its
//!   `maximum_payout`, rounded once. It stays on the booking if the booking is later
//!   cancelled or a no-show (its ledger row is then CANCELLED); bookings never confirmed or
//!   without a promoter have 0.
//! - **Ledger**: a booking that becomes CONFIRMED writes BOOKING_FEE, PLATFORM_FEE and (when
//!   positive) PROMOTER_COMMISSION at the confirmation moment, PENDING. COMPLETED: all CONFIRMED;
//!   NO_SHOW: fees CONFIRMED, commission CANCELLED; cancelled after confirmation: all
//!   CANCELLED; still CONFIRMED: all PENDING. `processed_at` is the moment a row became
//!   CONFIRMED. The commission row records the applied rate (`commission_rate`, same units as
//!   the assignment's `rate`), `commission_amount` and `commission_tier`.
//! - **Payouts**: a payout covers one promoter, one venue and one calendar month of the venue
//!   time zone; it holds every PROMOTER_COMMISSION transaction of that promoter created in the
//!   month and CONFIRMED when the payout was generated. `amount = commissions + incentives +
//!   adjustments - fees` (fees: 1.50 for DIGITAL_WALLET, else 0). COMPLETED payouts settle
//!   their transactions (`status = SETTLED`, `settled_at`, `payout_id`); the
//!   PENDING_APPROVAL one only sets `payout_id`. Submitted by the admin, approved by the venue
//!   OWNER or ADMIN (never the submitter).
//! - **Promoter metrics** ("Promoter and guest metrics"; the ratios as
//!   [`crate::promoters::metrics`] defines them): over all of the promoter's bookings.
//!   `total_bookings` / `total_revenue` (sum of `total_fee`) count CONFIRMED +
//!   COMPLETED; `average_booking_value = total_revenue / total_bookings` rounded to the cent;
//!   `cancel_rate = cancelled / all` (all statuses, PENDING included), `no_show_rate = no_show
//!   / (completed + no_show)`, `conversion_rate = completed / (completed + cancelled +
//!   no_show)`, each rounded half away from zero to 4 places, 0 when the divisor is 0. The
//!   month fields cover bookings whose `booking_time` is in the current calendar month of the
//!   venue's time zone: `month_bookings` / `month_revenue` count CONFIRMED + COMPLETED;
//!   `month_new_guests` counts guests whose first booking (earliest `booking_time`, any
//!   status) with the promoter is in the month; `month_repeat_guests` counts guests with a
//!   booking (any status) in the month whose first booking with the promoter is earlier.
//!   `last_active_at` is the `created_at` of the promoter's latest booking. The counters
//!   behind the rates are stored too: `all_bookings` (every status), `completed_bookings`,
//!   `cancelled_bookings`, `no_show_bookings`.
//! - **Guest metrics** (the mean as [`crate::promoters::metrics`] defines it):
//!   `total_bookings` (all statuses), `cancelled_bookings`, `no_show_bookings`, `total_spent` (sum of `total_fee` of COMPLETED bookings),
//!   `average_party_size` (mean diners over all bookings, rounded half away from zero to one
//!   decimal; 2.0, the column default, for a guest without bookings), `total_diners` (sum of
//!   diners over all bookings), `last_booking_at` (latest `booking_time`, any status). The
//!   same counters per guest and venue (`guest_venue_stats`) are filled from the bookings
//!   by one `INSERT ... SELECT ... GROUP BY` once the bookings are written.
//! - **Incentives**: what [`crate::incentives`] computes (activation counts the period's
//!   bookings as the database holds them; see [`crate::incentives::progress`] for each
//!   measure). Thresholds are set from the generated volume so that some promoters reach
//!   them and some do not: three quarters of the best eligible value, to two significant
//!   digits.
//!
//! # Speed
//!
//! Bookings are generated 2,000 at a time, with their history and ledger rows, and written
//! with multi-row `INSERT`s of 1,000 rows (fewer where the bind-parameter limit of the
//! backend, 65,535 on PostgreSQL and 32,766 on SQLite, requires it); history and ledger rows
//! that do not fill a statement wait for the next chunk, so every statement of a table has
//! the same text and is prepared once. Memory stays bounded: besides one chunk, only small
//! per-guest and per-promoter accumulators are kept (110 MB peak for a million bookings).
//! Guest and promoter metrics are accumulated while generating and written once at the end
//! (a multi-row upsert on the primary key: the rows must exist before the bookings that
//! refer to them). The whole seed runs in one database transaction, so a failure leaves the
//! database as it was. Measured on the 2-core development machine (release build):
//! 1,000,000 bookings (2.0 M history rows, 2.4 M transactions) on PostgreSQL 15 in 3 min 25 s,
//! most of it the server's per-row work on indexes and foreign keys; 20,000 bookings on a
//! SQLite file in 2.6 s.

mod data;
mod incentive_tour;
mod payout_tour;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, bail};
use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use prima_entity::enums::{
    BookingSource, BookingStatus, BookingType, CommissionModel, Gender, GuestStatus, IncentiveType,
    PayoutMethod, PayoutStatus, PeriodType, PromoterStatus, PromoterTier, RewardType,
    SeatingPreference, TransactionStatus, TransactionType, UserRole, UserStatus, VenueStatus,
};
use prima_entity::{
    booking_history, bookings, commission_assignments, commission_rates, guests, payout_audit,
    payout_holds, payout_items, payouts, promoters, transactions, user_venue_access, users,
    venue_pricing, venues,
};
use rust_decimal::Decimal;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, InsertMany,
    IntoActiveModel, Iterable, QueryFilter, TransactionTrait,
};
use serde_json::{Value as Json, json};
use uuid::Uuid;

use crate::commissions::rules::{self, RuleInput};
use crate::incentives::manage::{PeriodInput, Rules};
use crate::money::{cents, rate};
use crate::pricing::{self, PricingRequest, Quote};
// Every ratio is `metrics`' (defined once). Its `ratio` saturates at i64::MAX where the
// seed's former copy panicked, and is otherwise the same computation; no seed value comes
// near the limit: the three rates have numerator <= denominator (at most 10,000), the average
// booking value is at most the revenue (an i64) and the party size at most 120 (12 diners).
use crate::promoters::metrics;
use data::{
    ACCESS, ADMIN, APPROVAL_VENUE, CANCEL_REASONS, COORDINATOR, DIETARY, FR_FIRST, FR_LAST, GM,
    MANAGER, OWNER, PARTY_WEIGHTS, PROGRAMMES, PROMOTERS, PricingSpec, Programme, PromoterSpec,
    REVOKED, REVOKED_DAYS_AGO, SPECIAL_REQUESTS, STAFF_NOTES, TAGS, UK_FIRST, UK_LAST, US_FIRST,
    US_LAST, USER_AGENTS, USERS, VENUES, VenueSpec,
};

/// The password of every demo user.
pub const DEMO_PASSWORD: &str = "prima-demo";

/// What to seed.
#[derive(Debug, Clone)]
pub struct SeedOptions {
    /// Total number of bookings (default 2,000).
    pub bookings: u64,
    /// The reference instant every timestamp is derived from; callers pass
    /// [`crate::time::now`]. The same value gives the same data.
    pub now: DateTime<Utc>,
}

impl Default for SeedOptions {
    fn default() -> Self {
        SeedOptions {
            bookings: 2_000,
            now: crate::time::now(),
        }
    }
}

/// How many rows [`seed`] wrote, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeedReport {
    /// Venues.
    pub venues: u64,
    /// Platform users.
    pub users: u64,
    /// Promoters.
    pub promoters: u64,
    /// Guests.
    pub guests: u64,
    /// Bookings.
    pub bookings: u64,
    /// Ledger transactions.
    pub transactions: u64,
    /// Booking history rows.
    pub history: u64,
    /// Payouts.
    pub payouts: u64,
    /// Incentive programmes.
    pub incentives: u64,
}

/// Seeds the demo portfolio (see the module documentation) into an already-migrated, empty
/// database, in one transaction. Fails, writing nothing, if `admin@prima.demo` exists.
pub async fn seed(db: &DatabaseConnection, options: &SeedOptions) -> anyhow::Result<SeedReport> {
    seed_counting(db, options, &AtomicU64::new(0)).await
}

/// [`seed`], storing in `written` how many bookings are written so far (for a progress
/// bar: it moves once per flush of [`BOOKINGS_PER_FLUSH`] bookings).
pub async fn seed_counting(
    db: &DatabaseConnection,
    options: &SeedOptions,
    written: &AtomicU64,
) -> anyhow::Result<SeedReport> {
    let already = users::Entity::find()
        .filter(users::Column::Email.eq(ADMIN_EMAIL))
        .one(db)
        .await
        .context("checking whether the database is already seeded")?;
    if already.is_some() {
        bail!("the database is already seeded ({ADMIN_EMAIL} exists); seed an empty database");
    }
    let password_hash = crate::auth::hash_password(DEMO_PASSWORD)
        .map_err(|err| anyhow::anyhow!("hashing the demo password: {err:?}"))?;
    let max_params = match db.get_database_backend() {
        DbBackend::Postgres => 65_000,
        _ => 32_000,
    };
    let txn = db.begin().await.context("starting the seed transaction")?;
    let mut seeder = Seeder::new(options, password_hash);
    let writer = Writer {
        conn: &txn,
        max_params,
        written,
    };
    seeder.run(&writer).await?;
    guest_venue_stats(&txn).await?;
    txn.commit().await.context("committing the seed")?;
    let tour_venues: Vec<payout_tour::TourVenue> = seeder
        .venues
        .iter()
        .map(|v| payout_tour::TourVenue {
            id: v.id,
            month: (v.months[2], v.months[3]),
            boss: seeder.user_ids[v.boss],
        })
        .collect();
    let service = crate::db::Db {
        conn: db.clone(),
        stats: Default::default(),
        relay: Default::default(),
    };
    let toured = payout_tour::run(&service, seeder.user_ids[ADMIN], &tour_venues, options.now)
        .await
        .map_err(|err| anyhow::anyhow!("paying out the month just ended: {err:?}"))?;
    seeder.report.payouts += toured.payouts;
    seeder.report.transactions += toured.transactions;
    seeder.report.history += toured.history;
    let plan = seeder.incentive_plan();
    let toured = incentive_tour::run(&service, seeder.user_ids[ADMIN], &plan, options.now)
        .await
        .map_err(|err| anyhow::anyhow!("running the incentive programmes: {err:?}"))?;
    seeder.report.incentives += toured.programmes;
    seeder.report.transactions += toured.transactions;
    // A bulk load outruns autovacuum: without fresh statistics PostgreSQL plans the first
    // queries for empty tables (measured: the portfolio query took over 15 s instead of
    // 33 ms on a million bookings until the tables were analysed). SQLite's planner uses
    // its statistics too.
    db.execute_unprepared("ANALYZE")
        .await
        .context("analysing the seeded tables")?;
    // The whole load went through SQLite's write-ahead log, one transaction long (gigabytes
    // for millions of bookings); fold it into the database and cut it back to nothing.
    if db.get_database_backend() == DbBackend::Sqlite {
        db.execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
            .await
            .context("checkpointing the SQLite write-ahead log")?;
    }
    Ok(seeder.report)
}

const ADMIN_EMAIL: &str = "admin@prima.demo";

/// Fills `guest_venue_stats` from the bookings just written, in one set-based statement:
/// per guest and venue the counters the guest row keeps over all venues (the definitions
/// of the write path, [`crate::bookings::aggregates`], which `prima check` recomputes).
async fn guest_venue_stats(txn: &impl ConnectionTrait) -> anyhow::Result<()> {
    txn.execute_unprepared(
        "INSERT INTO guest_venue_stats \
           (guest_id, venue_id, total_bookings, cancelled_bookings, no_show_bookings, \
            total_spent, total_diners, last_booking_at) \
         SELECT b.guest_id, b.venue_id, \
           CAST(COUNT(*) AS INTEGER), \
           CAST(COUNT(CASE WHEN b.status = 'CANCELLED' THEN 1 END) AS INTEGER), \
           CAST(COUNT(CASE WHEN b.status = 'NO_SHOW' THEN 1 END) AS INTEGER), \
           CAST(COALESCE(SUM(CASE WHEN b.status = 'COMPLETED' THEN b.total_fee END), 0) AS BIGINT), \
           CAST(SUM(b.diners) AS INTEGER), \
           MAX(b.booking_time) \
         FROM bookings b \
         GROUP BY b.guest_id, b.venue_id",
    )
    .await
    .context("filling guest_venue_stats from the bookings")?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Deterministic randomness
// ---------------------------------------------------------------------------------------

/// splitmix64: tiny, fast, and good enough for demo data. Never used for secrets.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(stream: u64) -> Self {
        Rng(0x5052_494d_415f_5345 ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below((hi - lo) as u64 + 1) as i64
    }

    /// True with probability `per_mille / 1000`.
    fn chance(&mut self, per_mille: u32) -> bool {
        self.below(1000) < u64::from(per_mille)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// An index drawn with the given weights (all zero: the first).
    fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
        let mut draw = self.below(total);
        for (i, w) in weights.iter().enumerate() {
            let w = u64::from(*w);
            if draw < w {
                return i;
            }
            draw -= w;
        }
        0
    }

    /// A version 4 UUID made of generator output.
    fn uuid(&mut self) -> Uuid {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.next_u64().to_le_bytes());
        bytes[8..].copy_from_slice(&self.next_u64().to_le_bytes());
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }

    /// A version 7 UUID for a row made at `at`: time-ordered, so that the rows of the big
    /// tables (bookings, history, ledger), written roughly in time order, append to their
    /// indexes instead of touching random pages.
    fn uuid_at(&mut self, at: DateTime<Utc>) -> Uuid {
        let mut bytes = [0u8; 10];
        bytes[..8].copy_from_slice(&self.next_u64().to_le_bytes());
        bytes[8..].copy_from_slice(&self.next_u64().to_le_bytes()[..2]);
        let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
        uuid::Builder::from_unix_timestamp_millis(millis, &bytes).into_uuid()
    }
}

/// Independent generator streams, so that adding a column to one table does not reshuffle
/// the rows of another.
mod stream {
    pub const IDS: u64 = 1;
    pub const GUESTS: u64 = 2;
    pub const BOOKINGS: u64 = 3;
    pub const BOOKING_IDS: u64 = 4;
    pub const PAYOUTS: u64 = 5;
}

// ---------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------

fn days(n: i64) -> TimeDelta {
    TimeDelta::days(n)
}

fn minutes(n: i64) -> TimeDelta {
    TimeDelta::minutes(n)
}

/// The UTC instant of a local date and minute of the day; a time skipped by a DST change
/// moves an hour later.
fn at_local(tz: &Tz, date: NaiveDate, minute: u32) -> DateTime<Utc> {
    let naive = date
        .and_hms_opt(minute / 60, minute % 60, 0)
        .expect("a valid time of day");
    tz.from_local_datetime(&naive)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(naive + TimeDelta::hours(1)))
                .earliest()
        })
        .expect("a local time exists within an hour")
        .with_timezone(&Utc)
}

fn local_date(tz: &Tz, at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(tz).date_naive()
}

/// Start of the local calendar month `offset` months from the month of `date`.
fn month_start(tz: &Tz, date: NaiveDate, offset: i32) -> DateTime<Utc> {
    let index = date.year() * 12 + date.month0() as i32 + offset;
    let first = NaiveDate::from_ymd_opt(index.div_euclid(12), index.rem_euclid(12) as u32 + 1, 1)
        .expect("a valid month");
    at_local(tz, first, 0)
}

fn money_text(units: i64) -> String {
    cents(units).to_string()
}

/// Lower-case ASCII for e-mail addresses and handles: accents dropped, other marks removed.
fn ascii_slug(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let mapped = match c {
            'à' | 'â' | 'ä' | 'á' | 'À' | 'Â' => 'a',
            'é' | 'è' | 'ê' | 'ë' | 'É' | 'È' => 'e',
            'î' | 'ï' | 'í' | 'Î' => 'i',
            'ô' | 'ö' | 'ó' | 'Ô' => 'o',
            'ù' | 'û' | 'ü' | 'ú' => 'u',
            'ç' | 'Ç' => 'c',
            c if c.is_ascii_alphanumeric() => c.to_ascii_lowercase(),
            _ => continue,
        };
        out.push(mapped);
    }
    out
}

fn tier_index(tier: PromoterTier) -> usize {
    match tier {
        PromoterTier::Standard => 0,
        PromoterTier::Premium => 1,
        PromoterTier::Vip => 2,
    }
}

/// Two significant digits, rounded down (at least 1).
fn nice_floor(value: i64) -> i64 {
    if value <= 10 {
        return value.max(1);
    }
    let mut magnitude = 1;
    while value / magnitude >= 100 {
        magnitude *= 10;
    }
    value / magnitude * magnitude
}

// ---------------------------------------------------------------------------------------
// Pricing and commission: the shared rules of crate::pricing and crate::commissions::rules
// ---------------------------------------------------------------------------------------

/// The fees of a booking made at `created_at` under the pricing row in force then
/// ([`pricing::quote`], DOMAIN.md "Pricing a booking"): early bird when `booking_time` is at
/// least 7 days after `created_at`. The generator only asks for what the rules accept, so an
/// error here is a bug of the generator.
fn price(
    pricing: &venue_pricing::Model,
    booking_type: BookingType,
    diners: i32,
    booking_time: DateTime<Utc>,
    created_at: DateTime<Utc>,
    repeat_customer: bool,
) -> anyhow::Result<Quote> {
    pricing::quote(
        pricing,
        &PricingRequest {
            booking_type,
            diners,
            booking_time,
            now: created_at,
            repeat_customer,
        },
    )
    .with_context(|| format!("pricing a {booking_type} booking of {diners} diners"))
}

/// A commission assignment with its rate row.
#[derive(Debug, Clone)]
struct Terms {
    assignment: commission_assignments::Model,
    rate: commission_rates::Model,
}

/// The commission of a booking confirmed under `terms` ([`rules::compute`], DOMAIN.md
/// "Commissions"). `promoter` is the promoter as it stood at confirmation (see
/// [`PromoterRt::as_confirmed`]). Seed assignments are never TIERED, so no ladder and no month
/// count are needed.
fn commission(
    terms: &Terms,
    promoter: &promoters::Model,
    diners: i32,
    base_fee: i64,
) -> rules::Commission {
    rules::compute(&RuleInput {
        assignment: &terms.assignment,
        rate: &terms.rate,
        ladder: &[],
        promoter,
        diners,
        base_fee,
        month_bookings: 0,
    })
}

// ---------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------

/// Rows per multi-row INSERT. Statements of one size have one SQL text, which the driver
/// prepares once and reuses; a thousand rows amortise the round trip.
const STATEMENT_ROWS: usize = 1_000;

struct Writer<'a, C> {
    conn: &'a C,
    max_params: usize,
    /// Bookings written so far.
    written: &'a AtomicU64,
}

impl<C: ConnectionTrait> Writer<'_, C> {
    /// Inserts rows with as few multi-row statements as the parameter limit allows.
    async fn insert<E>(&self, rows: Vec<E::Model>) -> anyhow::Result<u64>
    where
        E: EntityTrait,
        E::Model: IntoActiveModel<E::ActiveModel>,
        E::ActiveModel: sea_orm::ActiveModelTrait<Entity = E> + Send,
    {
        self.insert_with::<E, fn() -> OnConflict>(rows, None).await
    }

    /// Inserts rows, updating `columns` of rows whose primary key exists.
    async fn upsert<E>(&self, rows: Vec<E::Model>, columns: Vec<E::Column>) -> anyhow::Result<u64>
    where
        E: EntityTrait,
        E::Model: IntoActiveModel<E::ActiveModel>,
        E::ActiveModel: sea_orm::ActiveModelTrait<Entity = E> + Send,
        E::PrimaryKey: Iterable,
    {
        let build = move || {
            let keys: Vec<E::Column> = <E::PrimaryKey as Iterable>::iter()
                .map(|key| {
                    use sea_orm::PrimaryKeyToColumn;
                    key.into_column()
                })
                .collect();
            OnConflict::columns(keys)
                .update_columns(columns.iter().copied())
                .to_owned()
        };
        self.insert_with::<E, _>(rows, Some(build)).await
    }

    /// Rows in one INSERT: at most [`STATEMENT_ROWS`], and under the parameter limit.
    fn rows_per_statement<E: EntityTrait>(&self) -> usize {
        let columns = <E::Column as Iterable>::iter().count().max(1);
        (self.max_params / columns).clamp(1, STATEMENT_ROWS)
    }

    /// Inserts as many rows from the front of `rows` as fill whole statements, leaving the
    /// rest for later: every statement then has the same text, and is prepared once.
    async fn insert_whole<E>(&self, rows: &mut Vec<E::Model>) -> anyhow::Result<u64>
    where
        E: EntityTrait,
        E::Model: IntoActiveModel<E::ActiveModel>,
        E::ActiveModel: sea_orm::ActiveModelTrait<Entity = E> + Send,
    {
        let per_statement = self.rows_per_statement::<E>();
        let whole = rows.len() / per_statement * per_statement;
        if whole == 0 {
            return Ok(0);
        }
        let batch: Vec<E::Model> = rows.drain(..whole).collect();
        self.insert::<E>(batch).await
    }

    async fn insert_with<E, F>(
        &self,
        rows: Vec<E::Model>,
        conflict: Option<F>,
    ) -> anyhow::Result<u64>
    where
        E: EntityTrait,
        E::Model: IntoActiveModel<E::ActiveModel>,
        E::ActiveModel: sea_orm::ActiveModelTrait<Entity = E> + Send,
        F: Fn() -> OnConflict,
    {
        let total = rows.len() as u64;
        let per_statement = self.rows_per_statement::<E>();
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<E::Model> = rows.by_ref().take(per_statement).collect();
            let mut insert = InsertMany::<E::ActiveModel>::many(chunk);
            if let Some(conflict) = &conflict {
                insert = insert.on_conflict(conflict());
            }
            insert
                .exec_without_returning(self.conn)
                .await
                .with_context(|| format!("inserting into {}", E::default().table_name()))?;
        }
        Ok(total)
    }
}

// ---------------------------------------------------------------------------------------
// The seeder
// ---------------------------------------------------------------------------------------

/// Who did something, as booking history records it.
#[derive(Debug, Clone)]
struct Actor {
    id: Option<Uuid>,
    name: String,
    role: &'static str,
}

struct VenueRt {
    id: Uuid,
    spec: &'static VenueSpec,
    tz: Tz,
    created_at: DateTime<Utc>,
    /// The closed and the current pricing row.
    pricing: [venue_pricing::Model; 2],
    /// Start of the current pricing row.
    pricing_switch: DateTime<Utc>,
    /// Local month starts: three months ago, two, one, this month, next month.
    months: [DateTime<Utc>; 5],
    promoters: Vec<usize>,
    /// Takes phone and walk-in bookings, completes and cancels.
    staff: Actor,
    /// Confirms PENDING bookings (MANAGER or above).
    approver: Actor,
    /// OWNER or venue ADMIN: creates programmes, approves payouts.
    boss: usize,
    pool: usize,
}

impl VenueRt {
    fn current_pricing(&self, at: DateTime<Utc>) -> &venue_pricing::Model {
        if at < self.pricing_switch {
            &self.pricing[0]
        } else {
            &self.pricing[1]
        }
    }

    /// `-3..=-1` for the three previous local months, 0 for this one, `None` otherwise.
    fn month_offset(&self, at: DateTime<Utc>) -> Option<i32> {
        (0..4)
            .find(|&i| self.months[i] <= at && at < self.months[i + 1])
            .map(|i| i as i32 - 3)
    }

    fn in_current_month(&self, at: DateTime<Utc>) -> bool {
        self.months[3] <= at && at < self.months[4]
    }
}

struct PromoterRt {
    id: Uuid,
    venue: usize,
    spec: &'static PromoterSpec,
    name: String,
    joined_at: DateTime<Utc>,
    stopped_at: Option<DateTime<Utc>>,
    terms: Vec<Terms>,
    /// The promoter as the commission rules see it when the seed confirms one of its
    /// bookings: ACTIVE (INACTIVE and SUSPENDED promoters only bring bookings from before
    /// they stopped, and PENDING_APPROVAL ones none), at its final tier; the seed's rates set
    /// no conversion or cancel limits, so its metrics do not matter.
    as_confirmed: promoters::Model,
}

impl PromoterRt {
    fn terms_at(&self, at: DateTime<Utc>) -> Option<&Terms> {
        self.terms.iter().find(|t| {
            t.assignment.effective_from <= at && t.assignment.effective_to.is_none_or(|to| at < to)
        })
    }

    /// Whether this promoter can bring a booking created at `created` for `time`.
    fn can_bring(&self, created: DateTime<Utc>, time: DateTime<Utc>) -> bool {
        match self.spec.status {
            PromoterStatus::PendingApproval => false,
            _ => {
                self.joined_at < created
                    && self.stopped_at.is_none_or(|stopped| time < stopped)
                    && self.terms_at(time).is_some()
            }
        }
    }
}

/// A currency's guest pool: guests `start..start + len`.
struct Pool {
    start: u32,
    len: u32,
    /// Every `stride`-th booking of the pool goes to the next guest in turn, so that every
    /// guest gets at least one booking when there are enough bookings.
    stride: u64,
    seen: u64,
}

#[derive(Debug, Clone, Default)]
struct GuestAgg {
    total: i32,
    cancelled: i32,
    no_show: i32,
    spent: i64,
    diners: i64,
    last_booking: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default)]
struct PromoterAgg {
    all: i64,
    confirmed: i64,
    completed: i64,
    cancelled: i64,
    no_show: i64,
    revenue: i64,
    month_bookings: i32,
    month_revenue: i64,
    /// CONFIRMED + COMPLETED bookings of last month (the demo's finalised sprint).
    last_month_bookings: i32,
    last_active: Option<DateTime<Utc>>,
}

/// `VenueRt::months` index of last month's start.
const LAST_MONTH: usize = 2;
/// `VenueRt::months` index of this month's start.
const THIS_MONTH: usize = 3;

/// A CONFIRMED commission transaction of a past month, a payout candidate.
#[derive(Debug, Clone, Copy)]
struct Earned {
    promoter: usize,
    month: i32,
    transaction: Uuid,
    amount: i64,
    confirmed_at: DateTime<Utc>,
}

/// First booking time of a guest with a promoter, and whether they have one this month.
#[derive(Debug, Clone, Copy)]
struct Relationship {
    first: DateTime<Utc>,
    this_month: bool,
}

struct Seeder {
    now: DateTime<Utc>,
    bookings: u64,
    password_hash: String,
    ids: Rng,
    report: SeedReport,
    user_ids: Vec<Uuid>,
    venues: Vec<VenueRt>,
    promoters: Vec<PromoterRt>,
    pools: Vec<Pool>,
    guest_count: u32,
    blocked_guest: u32,
    blocked_since: DateTime<Utc>,
    guest_ids: Vec<Uuid>,
    guest_names: Vec<String>,
    guest_status: Vec<GuestStatus>,
    guest_aggs: Vec<GuestAgg>,
    promoter_aggs: Vec<PromoterAgg>,
    /// Earliest completion of a guest's booking at a venue (repeat customer discount).
    completed: HashMap<(u32, u8), DateTime<Utc>>,
    relationships: HashMap<(u16, u32), Relationship>,
    earned: Vec<Earned>,
}

impl Seeder {
    fn new(options: &SeedOptions, password_hash: String) -> Self {
        Seeder {
            now: crate::time::truncate(options.now),
            bookings: options.bookings,
            password_hash,
            ids: Rng::new(stream::IDS),
            report: SeedReport::default(),
            user_ids: Vec::new(),
            venues: Vec::new(),
            promoters: Vec::new(),
            pools: Vec::new(),
            guest_count: 0,
            blocked_guest: 0,
            blocked_since: options.now,
            guest_ids: Vec::new(),
            guest_names: Vec::new(),
            guest_status: Vec::new(),
            guest_aggs: Vec::new(),
            promoter_aggs: Vec::new(),
            completed: HashMap::new(),
            relationships: HashMap::new(),
            earned: Vec::new(),
        }
    }

    async fn run<C: ConnectionTrait>(&mut self, w: &Writer<'_, C>) -> anyhow::Result<()> {
        let started = std::time::Instant::now();
        self.users(w).await?;
        self.venues(w).await?;
        self.access(w).await?;
        self.pricing(w).await?;
        self.guests(w, false).await?;
        self.promoters(w).await?;
        self.commissions(w).await?;
        tracing::info!(elapsed = ?started.elapsed(), "seed: reference data written");
        self.bookings(w).await?;
        tracing::info!(elapsed = ?started.elapsed(), bookings = self.report.bookings, "seed: bookings written");
        self.guests(w, true).await?;
        self.promoter_metrics(w).await?;
        self.payouts(w).await?;
        tracing::info!(elapsed = ?started.elapsed(), report = ?self.report, "seed: done");
        Ok(())
    }

    fn user_actor(&self, user: usize, role: &'static str) -> Actor {
        let spec = &USERS[user];
        Actor {
            id: Some(self.user_ids[user]),
            name: format!("{} {}", spec.first, spec.last),
            role,
        }
    }

    // -- users, venues, access, pricing ---------------------------------------------------

    async fn users<C: ConnectionTrait>(&mut self, w: &Writer<'_, C>) -> anyhow::Result<()> {
        let now = self.now;
        let mut rows = Vec::new();
        for (i, spec) in USERS.iter().enumerate() {
            let id = self.ids.uuid();
            self.user_ids.push(id);
            let last_login = match spec.status {
                UserStatus::Active => Some(now - TimeDelta::hours(2 + 7 * i as i64)),
                _ => Some(now - days(23)),
            };
            rows.push(users::Model {
                id,
                email: spec.email.to_owned(),
                password_hash: self.password_hash.clone(),
                first_name: spec.first.to_owned(),
                last_name: spec.last.to_owned(),
                phone: spec.phone.map(str::to_owned),
                role: spec.role,
                status: spec.status,
                email_verified: true,
                two_factor_enabled: matches!(spec.role, UserRole::Admin) || i == OWNER,
                preferences: Some(json!({
                    "theme": if i % 2 == 0 { "light" } else { "dark" },
                    "locale": "en-US",
                    "notifications": { "email": true, "sms": i % 3 == 0, "push": true },
                    "defaultView": if spec.role == UserRole::Coordinator { "bookings" } else { "dashboard" },
                })),
                last_login_at: last_login,
                created_at: now - days(820 - 3 * i as i64),
                updated_at: match spec.status {
                    UserStatus::Suspended => now - days(20),
                    _ => now - days(30),
                },
            });
        }
        self.report.users = w.insert::<users::Entity>(rows).await?;
        Ok(())
    }

    async fn venues<C: ConnectionTrait>(&mut self, w: &Writer<'_, C>) -> anyhow::Result<()> {
        let now = self.now;
        let mut rows = Vec::new();
        // Pools: USD, GBP, EUR, in this order.
        let pool_of = |currency: &str| match currency {
            "GBP" => 1,
            "EUR" => 2,
            _ => 0,
        };
        for (i, spec) in VENUES.iter().enumerate() {
            let id = self.ids.uuid();
            let tz: Tz = spec
                .timezone
                .parse()
                .map_err(|err| anyhow::anyhow!("time zone {}: {err}", spec.timezone))?;
            let created_at = now - days(800 - 10 * i as i64);
            let today = local_date(&tz, now);
            let pricing_switch = at_local(&tz, local_date(&tz, now - days(45)), 0);
            let months = [
                month_start(&tz, today, -3),
                month_start(&tz, today, -2),
                month_start(&tz, today, -1),
                month_start(&tz, today, 0),
                month_start(&tz, today, 1),
            ];
            rows.push(venues::Model {
                id,
                name: spec.name.to_owned(),
                r#type: spec.kind,
                tier: spec.tier,
                address_street: spec.street.to_owned(),
                address_city: spec.city.to_owned(),
                address_state: spec.state.to_owned(),
                address_zip: spec.zip.to_owned(),
                address_country: spec.country.to_owned(),
                coordinates_lat: Some(spec.lat),
                coordinates_lng: Some(spec.lng),
                timezone: spec.timezone.to_owned(),
                contact_phone: Some(spec.phone.to_owned()),
                contact_email: Some(spec.email.to_owned()),
                contact_website: Some(spec.website.to_owned()),
                capacity_seated: spec.seated,
                capacity_standing: spec.standing,
                capacity_private: spec.private,
                currency: spec.currency.to_owned(),
                language: spec.language.to_owned(),
                auto_confirm_bookings: spec.auto_confirm,
                require_approval: spec.require_approval,
                average_daily_bookings: spec.daily,
                prime_ratio: spec.prime_ratio,
                average_booking_value: spec.average_value,
                status: VenueStatus::Active,
                created_at,
                updated_at: pricing_switch,
            });
            let (staff, approver, boss) = if i == APPROVAL_VENUE {
                (
                    self.user_actor(MANAGER, "MANAGER"),
                    self.user_actor(MANAGER, "MANAGER"),
                    GM,
                )
            } else if i == 0 {
                (
                    self.user_actor(COORDINATOR, "COORDINATOR"),
                    self.user_actor(OWNER, "OWNER"),
                    OWNER,
                )
            } else {
                (
                    self.user_actor(OWNER, "OWNER"),
                    self.user_actor(OWNER, "OWNER"),
                    OWNER,
                )
            };
            self.venues.push(VenueRt {
                id,
                spec,
                tz,
                created_at,
                pricing: [empty_pricing(), empty_pricing()],
                pricing_switch,
                months,
                promoters: Vec::new(),
                staff,
                approver,
                boss,
                pool: pool_of(spec.currency),
            });
        }
        self.report.venues = w.insert::<venues::Entity>(rows).await?;
        Ok(())
    }

    async fn access<C: ConnectionTrait>(&mut self, w: &Writer<'_, C>) -> anyhow::Result<()> {
        let now = self.now;
        let rows: Vec<_> = ACCESS
            .iter()
            .map(|&(user, venue, role, revoked)| user_venue_access::Model {
                id: self.ids.uuid(),
                user_id: self.user_ids[user],
                venue_id: self.venues[venue].id,
                role,
                granted_by: Some(self.user_ids[ADMIN]),
                granted_at: self.venues[venue].created_at + days(1 + user as i64),
                revoked_at: revoked.then(|| now - days(REVOKED_DAYS_AGO)),
            })
            .collect();
        w.insert::<user_venue_access::Entity>(rows).await?;
        Ok(())
    }

    async fn pricing<C: ConnectionTrait>(&mut self, w: &Writer<'_, C>) -> anyhow::Result<()> {
        let mut rows = Vec::new();
        for v in 0..self.venues.len() {
            let venue = &self.venues[v];
            let editor = self.user_ids[venue.boss];
            let make = |ids: &mut Rng, spec: &PricingSpec, from, to: Option<DateTime<Utc>>| {
                venue_pricing::Model {
                    id: ids.uuid(),
                    venue_id: venue.id,
                    non_prime_per_diner: spec.non_prime_per_diner,
                    non_prime_platform_fee_percent: spec.non_prime_pct,
                    prime_base_for_2: spec.prime_base_for_2,
                    prime_additional_per_person: spec.prime_additional,
                    prime_platform_fee_percent: spec.prime_pct,
                    minimum_booking_amount: spec.minimum_amount,
                    minimum_party_size: spec.min_party,
                    maximum_party_size: spec.max_party,
                    early_bird_discount_percent: spec.early_bird,
                    repeat_customer_discount_percent: spec.repeat,
                    group_discount_percent: spec.group,
                    effective_from: from,
                    effective_to: to,
                    is_active: true,
                    updated_by: Some(editor),
                    created_at: from,
                    updated_at: to.unwrap_or(from),
                }
            };
            let old = make(
                &mut self.ids,
                &venue.spec.old_pricing,
                venue.created_at,
                Some(venue.pricing_switch),
            );
            let current = make(
                &mut self.ids,
                &venue.spec.pricing,
                venue.pricing_switch,
                None,
            );
            rows.push(old.clone());
            rows.push(current.clone());
            self.venues[v].pricing = [old, current];
        }
        w.insert::<venue_pricing::Entity>(rows).await?;
        Ok(())
    }

    // -- guests ---------------------------------------------------------------------------

    fn plan_guests(&mut self) {
        let total = (self.bookings / 8).max(50) as u32;
        let mut shares = [0u64; 3];
        for venue in &self.venues {
            shares[venue.pool] += u64::from(venue.spec.share);
        }
        let share_sum: u64 = shares.iter().sum();
        let gbp = ((u64::from(total) * shares[1] / share_sum) as u32).max(5);
        let eur = ((u64::from(total) * shares[2] / share_sum) as u32).max(5);
        let usd = total - gbp - eur;
        let mut start = 0;
        for (pool, len) in [usd, gbp, eur].into_iter().enumerate() {
            let expected = self.bookings * shares[pool] / share_sum;
            self.pools.push(Pool {
                start,
                len,
                stride: (expected * 9 / 10 / u64::from(len)).max(1),
                seen: 0,
            });
            start += len;
        }
        self.guest_count = total;
        self.blocked_guest = 3;
        self.blocked_since = self.now - days(21);
        self.guest_aggs = vec![GuestAgg::default(); total as usize];
    }

    /// Guest `index`: a pure function of the index, so the final upsert can regenerate the
    /// row instead of keeping every guest in memory.
    fn guest_model(&self, index: u32, id: Uuid) -> guests::Model {
        let now = self.now;
        let mut rng = Rng::new(stream::GUESTS ^ (u64::from(index) << 8));
        let pool = self
            .pools
            .iter()
            .position(|p| index >= p.start && index < p.start + p.len)
            .unwrap_or(0);
        let (firsts, lasts, phone) = match pool {
            1 => (UK_FIRST, UK_LAST, "+44 20 7946"),
            2 => (FR_FIRST, FR_LAST, "+33 1 99 00"),
            _ => (US_FIRST, US_LAST, "+1 212 555"),
        };
        let first = *rng.pick(firsts);
        let last = *rng.pick(lasts);
        let domain = *rng.pick(&["example.com", "example.net", "example.org"]);
        let email = format!(
            "{}.{}{}@{domain}",
            ascii_slug(first),
            ascii_slug(last),
            index + 1
        );
        let phone = rng.chance(850).then(|| match pool {
            2 => format!("{phone} {:02} {:02}", rng.below(100), rng.below(100)),
            _ => format!("{phone} {:04}", rng.below(10_000)),
        });
        let birth_date = rng.chance(600).then(|| {
            NaiveDate::from_ymd_opt(
                1955 + rng.below(49) as i32,
                1 + rng.below(12) as u32,
                1 + rng.below(28) as u32,
            )
            .expect("a valid date")
        });
        let gender = rng.chance(700).then(|| {
            *rng.pick(&[
                Gender::Female,
                Gender::Male,
                Gender::Female,
                Gender::Male,
                Gender::Other,
                Gender::PreferNotToSay,
            ])
        });
        let dietary = guest_dietary(&mut rng);
        let status = if index == self.blocked_guest {
            GuestStatus::Blocked
        } else if rng.chance(50) {
            GuestStatus::Vip
        } else {
            GuestStatus::Active
        };
        let tags = guest_tags(&mut rng, status);
        let seating = rng.chance(500).then(|| {
            *rng.pick(&[
                SeatingPreference::Indoor,
                SeatingPreference::Outdoor,
                SeatingPreference::Bar,
                SeatingPreference::Private,
            ])
        });
        let created_at = now - days(121 + rng.range(0, 720)) - minutes(rng.range(0, 1439));
        let agg = &self.guest_aggs[index as usize];
        let average_party_size = if agg.total == 0 {
            20
        } else {
            metrics::ratio(agg.diners, i64::from(agg.total), 10)
        };
        guests::Model {
            id,
            first_name: first.to_owned(),
            last_name: last.to_owned(),
            email,
            phone,
            birth_date,
            gender,
            dietary_restrictions: Some(json!(dietary)),
            seating_preference: seating,
            communication_email: rng.chance(900),
            communication_sms: rng.chance(600),
            communication_push: rng.chance(450),
            total_bookings: agg.total,
            cancelled_bookings: agg.cancelled,
            no_show_bookings: agg.no_show,
            total_spent: agg.spent,
            average_party_size,
            last_booking_at: agg.last_booking,
            status,
            tags: Some(json!(tags)),
            created_at,
            updated_at: if status == GuestStatus::Blocked {
                self.blocked_since
            } else {
                agg.last_booking.map_or(created_at, |last| last.min(now))
            },
            registered_venue_id: None,
            total_diners: i32::try_from(agg.diners).expect("a guest's diners fit in i32"),
        }
    }

    /// First call: plans the pools and inserts every guest with empty metrics. Second call
    /// (`finalise`): upserts the metrics accumulated from the bookings.
    async fn guests<C: ConnectionTrait>(
        &mut self,
        w: &Writer<'_, C>,
        finalise: bool,
    ) -> anyhow::Result<()> {
        if !finalise {
            self.plan_guests();
            let mut ids = Rng::new(stream::GUESTS);
            self.guest_ids = (0..self.guest_count).map(|_| ids.uuid()).collect();
        }
        const CHUNK: u32 = 5_000;
        let mut start = 0;
        while start < self.guest_count {
            let end = (start + CHUNK).min(self.guest_count);
            let rows: Vec<_> = (start..end)
                .map(|i| self.guest_model(i, self.guest_ids[i as usize]))
                .collect();
            if finalise {
                use guests::Column as G;
                w.upsert::<guests::Entity>(
                    rows,
                    vec![
                        G::TotalBookings,
                        G::CancelledBookings,
                        G::NoShowBookings,
                        G::TotalSpent,
                        G::AveragePartySize,
                        G::LastBookingAt,
                        G::TotalDiners,
                        G::UpdatedAt,
                    ],
                )
                .await?;
            } else {
                for row in &rows {
                    self.guest_names.push(format!(
                        "{} {}.",
                        row.first_name,
                        row.last_name.chars().next().unwrap_or('X')
                    ));
                    self.guest_status.push(row.status);
                }
                w.insert::<guests::Entity>(rows).await?;
            }
            start = end;
        }
        self.report.guests = u64::from(self.guest_count);
        Ok(())
    }

    // -- promoters and commissions --------------------------------------------------------

    /// Promoter `index` with its metrics; `guests` is (month_new_guests, month_repeat_guests).
    fn promoter_model(&self, index: usize, guests: (i32, i32)) -> promoters::Model {
        let p = &self.promoters[index];
        let spec = p.spec;
        let agg = self.promoter_aggs.get(index).cloned().unwrap_or_default();
        let (new_guests, repeat_guests) = guests;
        let total_bookings = agg.confirmed + agg.completed;
        let company_domain = format!("{}.example", ascii_slug(spec.company));
        let email = if spec.company == "Independent" {
            format!("{}@promoters.example", spec.handle.replace('.', ""))
        } else {
            format!("{}@{company_domain}", ascii_slug(spec.first))
        };
        let phone = match self.venues[p.venue].spec.currency {
            "GBP" => format!("+44 7700 900{:03}", 100 + index),
            "EUR" => format!("+33 6 99 00 {:02} {:02}", index, 10 + index),
            _ => format!("+1 310 555 0{:03}", 100 + index),
        };
        promoters::Model {
            id: p.id,
            venue_id: self.venues[p.venue].id,
            first_name: spec.first.to_owned(),
            last_name: spec.last.to_owned(),
            email,
            phone: Some(phone),
            title: Some(spec.title.to_owned()),
            company: Some(spec.company.to_owned()),
            bio: Some(format!(
                "{} brings guests to {} as {} with {}.",
                spec.first,
                self.venues[p.venue].spec.name,
                spec.title.to_lowercase(),
                spec.company
            )),
            social_media: Some(json!({
                "instagram": format!("@{}", spec.handle),
                "tiktok": format!("@{}", spec.handle),
                "followers": 1_200 + (index as u64 * 7_919) % 48_000,
                "website": if spec.company == "Independent" { Json::Null } else { json!(format!("https://{company_domain}")) },
            })),
            total_bookings: total_bookings as i32,
            total_revenue: agg.revenue,
            average_booking_value: metrics::average_booking_value(agg.revenue, total_bookings),
            conversion_rate: metrics::conversion_rate(agg.completed, agg.cancelled, agg.no_show),
            no_show_rate: metrics::no_show_rate(agg.completed, agg.no_show),
            cancel_rate: metrics::cancel_rate(agg.cancelled, agg.all),
            month_bookings: agg.month_bookings,
            month_revenue: agg.month_revenue,
            month_new_guests: new_guests,
            month_repeat_guests: repeat_guests,
            status: spec.status,
            tier: spec.tier,
            joined_at: p.joined_at,
            last_active_at: agg.last_active,
            created_at: p.joined_at,
            updated_at: p
                .stopped_at
                .unwrap_or(p.joined_at)
                .max(agg.last_active.unwrap_or(p.joined_at)),
            all_bookings: agg.all as i32,
            completed_bookings: agg.completed as i32,
            cancelled_bookings: agg.cancelled as i32,
            no_show_bookings: agg.no_show as i32,
            month_start: None,
        }
    }

    async fn promoters<C: ConnectionTrait>(&mut self, w: &Writer<'_, C>) -> anyhow::Result<()> {
        let now = self.now;
        for (index, spec) in PROMOTERS.iter().enumerate() {
            let venue = &self.venues[spec.venue];
            // Joined at a local mid-morning, days ago.
            let joined_at = at_local(
                &venue.tz,
                local_date(&venue.tz, now - days(spec.joined_days_ago)),
                10 * 60 + 7 * index as u32,
            );
            let stopped_at = spec
                .stopped_days_ago
                .map(|d| at_local(&venue.tz, local_date(&venue.tz, now - days(d)), 9 * 60));
            let id = self.ids.uuid();
            self.promoters.push(PromoterRt {
                id,
                venue: spec.venue,
                spec,
                name: format!("{} {}", spec.first, spec.last),
                joined_at,
                stopped_at,
                terms: Vec::new(),
                as_confirmed: confirming_promoter(id, venue.id, spec.tier, joined_at),
            });
            self.venues[spec.venue].promoters.push(index);
        }
        self.promoter_aggs = vec![PromoterAgg::default(); self.promoters.len()];
        let rows: Vec<_> = (0..self.promoters.len())
            .map(|i| self.promoter_model(i, (0, 0)))
            .collect();
        self.report.promoters = w.insert::<promoters::Entity>(rows).await?;
        Ok(())
    }

    /// The commission rates of every venue and tier and every promoter's assignments, which
    /// the promoters keep as their terms.
    async fn commissions<C: ConnectionTrait>(&mut self, w: &Writer<'_, C>) -> anyhow::Result<()> {
        let (rates, main_rate) = self.commission_rates();
        let assignments = self.assignments(&main_rate);
        w.insert::<commission_rates::Entity>(rates).await?;
        w.insert::<commission_assignments::Entity>(assignments)
            .await?;
        Ok(())
    }

    /// The rate rows: per venue and tier one of the venue's model and, at a tiered venue,
    /// a TIERED ladder of three rungs; with the main row of each (venue, tier index).
    fn commission_rates(&mut self) -> (Vec<commission_rates::Model>, MainRates) {
        let tiers = [
            PromoterTier::Standard,
            PromoterTier::Premium,
            PromoterTier::Vip,
        ];
        let mut rates = Vec::new();
        // (venue, tier index) -> rate row of the venue's main model.
        let mut main_rate: MainRates = HashMap::new();
        for (v, venue) in self.venues.iter().enumerate() {
            let created = venue.created_at + days(2);
            let creator = self.user_ids[venue.boss];
            for (t, tier) in tiers.iter().enumerate() {
                let (value, minimum_booking, maximum_payout) = venue.spec.rates[t];
                let row = commission_rates::Model {
                    id: self.ids.uuid(),
                    venue_id: venue.id,
                    tier: *tier,
                    model: venue.spec.model,
                    value,
                    minimum_booking,
                    maximum_payout,
                    min_monthly_bookings: None,
                    min_conversion_rate: None,
                    max_cancel_rate: None,
                    effective_from: created,
                    effective_to: None,
                    is_active: true,
                    created_by: creator,
                    created_at: created,
                    updated_at: created,
                };
                main_rate.insert((v, t), row.clone());
                rates.push(row);
                if venue.spec.tiered {
                    // One row per rung, told apart by min_monthly_bookings.
                    for (rung, min_monthly) in [0, 10, 25].into_iter().enumerate() {
                        let from = created;
                        rates.push(commission_rates::Model {
                            id: self.ids.uuid(),
                            venue_id: venue.id,
                            tier: *tier,
                            model: CommissionModel::Tiered,
                            value: 600 + 200 * t as i64 + 150 * rung as i64,
                            minimum_booking: 10_000,
                            maximum_payout: Some(30_000),
                            min_monthly_bookings: Some(min_monthly),
                            min_conversion_rate: (rung == 2).then_some(5_000),
                            max_cancel_rate: Some(2_500),
                            effective_from: from,
                            effective_to: None,
                            is_active: true,
                            created_by: creator,
                            created_at: from,
                            updated_at: from,
                        });
                    }
                }
            }
        }
        (rates, main_rate)
    }

    /// Every promoter's assignments (copies of the venue's main rate of the tier), kept as
    /// the promoter's terms too.
    fn assignments(&mut self, main_rate: &MainRates) -> Vec<commission_assignments::Model> {
        let mut assignments = Vec::new();
        for index in 0..self.promoters.len() {
            let p = &self.promoters[index];
            let venue = &self.venues[p.venue];
            let assigner = self.user_ids[venue.boss];
            let periods = self.assignment_periods(index);
            let mut terms = Vec::new();
            for (tier, from, to, notes) in periods {
                let rate = &main_rate[&(p.venue, tier_index(tier))];
                let assignment = commission_assignments::Model {
                    id: self.ids.uuid(),
                    promoter_id: p.id,
                    commission_rate_id: rate.id,
                    tier,
                    model: rate.model,
                    rate: rate.value,
                    effective_from: from,
                    effective_to: to,
                    assigned_by: assigner,
                    assigned_at: from,
                    notes: Some(notes),
                };
                terms.push(Terms {
                    assignment: assignment.clone(),
                    rate: rate.clone(),
                });
                assignments.push(assignment);
            }
            self.promoters[index].terms = terms;
        }
        assignments
    }

    /// The assignment periods of promoter `index`: the previous tier's and the current
    /// one's for a promoted promoter, else the current one's; closed when it stopped as
    /// INACTIVE.
    fn assignment_periods(&self, index: usize) -> Vec<AssignmentPeriod> {
        let p = &self.promoters[index];
        let venue = &self.venues[p.venue];
        let spec = p.spec;
        // (tier, from, to, notes) of each assignment.
        let mut periods: Vec<AssignmentPeriod> = Vec::new();
        match spec.previous {
            Some((previous, since_days)) => {
                let switch = at_local(
                    &venue.tz,
                    local_date(&venue.tz, self.now - days(since_days)),
                    0,
                );
                periods.push((
                    previous,
                    p.joined_at,
                    Some(switch),
                    format!("{} terms on joining", tier_label(previous)),
                ));
                periods.push((
                    spec.tier,
                    switch,
                    p.stopped_at
                        .filter(|_| spec.status == PromoterStatus::Inactive),
                    format!(
                        "Promoted to {} after performance review",
                        tier_label(spec.tier)
                    ),
                ));
            }
            None => periods.push((
                spec.tier,
                p.joined_at,
                p.stopped_at
                    .filter(|_| spec.status == PromoterStatus::Inactive),
                match spec.status {
                    PromoterStatus::PendingApproval => {
                        "Proposed terms, effective on approval".to_owned()
                    }
                    _ => format!("Standard {} terms", tier_label(spec.tier)),
                },
            )),
        }
        periods
    }
}

/// The main rate row of each (venue, tier index).
type MainRates = HashMap<(usize, usize), commission_rates::Model>;

/// An assignment to write: tier, effective from, effective to, notes.
type AssignmentPeriod = (PromoterTier, DateTime<Utc>, Option<DateTime<Utc>>, String);

/// A guest's dietary restrictions: none, one, or now and then two different ones.
fn guest_dietary(rng: &mut Rng) -> Vec<&'static str> {
    let mut dietary = Vec::new();
    if rng.chance(300) {
        dietary.push(*rng.pick(DIETARY));
        if rng.chance(250) {
            let second = *rng.pick(DIETARY);
            if !dietary.contains(&second) {
                dietary.push(second);
            }
        }
    }
    dietary
}

/// A guest's tags: `vip` or `repeated-no-show` by status, then up to two from the pool.
fn guest_tags(rng: &mut Rng, status: GuestStatus) -> Vec<&'static str> {
    let mut tags: Vec<&'static str> = Vec::new();
    match status {
        GuestStatus::Vip => tags.push("vip"),
        GuestStatus::Blocked => tags.push("repeated-no-show"),
        GuestStatus::Active => {}
    }
    for _ in 0..rng.below(3) {
        let tag = *rng.pick(TAGS);
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    tags
}

fn tier_label(tier: PromoterTier) -> &'static str {
    match tier {
        PromoterTier::Standard => "Standard",
        PromoterTier::Premium => "Premium",
        PromoterTier::Vip => "VIP",
    }
}

/// A promoter as the commission rules see it when one of its bookings is confirmed: see
/// [`PromoterRt::as_confirmed`].
fn confirming_promoter(
    id: Uuid,
    venue_id: Uuid,
    tier: PromoterTier,
    joined_at: DateTime<Utc>,
) -> promoters::Model {
    promoters::Model {
        id,
        venue_id,
        first_name: String::new(),
        last_name: String::new(),
        email: String::new(),
        phone: None,
        title: None,
        company: None,
        bio: None,
        social_media: None,
        total_bookings: 0,
        total_revenue: 0,
        average_booking_value: 0,
        conversion_rate: 0,
        no_show_rate: 0,
        cancel_rate: 0,
        month_bookings: 0,
        month_revenue: 0,
        month_new_guests: 0,
        month_repeat_guests: 0,
        status: PromoterStatus::Active,
        tier,
        joined_at,
        last_active_at: None,
        created_at: joined_at,
        updated_at: joined_at,
        all_bookings: 0,
        completed_bookings: 0,
        cancelled_bookings: 0,
        no_show_bookings: 0,
        month_start: None,
    }
}

fn empty_pricing() -> venue_pricing::Model {
    venue_pricing::Model {
        id: Uuid::nil(),
        venue_id: Uuid::nil(),
        non_prime_per_diner: 0,
        non_prime_platform_fee_percent: 0,
        prime_base_for_2: 0,
        prime_additional_per_person: 0,
        prime_platform_fee_percent: 0,
        minimum_booking_amount: 0,
        minimum_party_size: 1,
        maximum_party_size: 1,
        early_bird_discount_percent: None,
        repeat_customer_discount_percent: None,
        group_discount_percent: None,
        effective_from: DateTime::<Utc>::MIN_UTC,
        effective_to: None,
        is_active: false,
        updated_by: None,
        created_at: DateTime::<Utc>::MIN_UTC,
        updated_at: DateTime::<Utc>::MIN_UTC,
    }
}

// ---------------------------------------------------------------------------------------
// Bookings, their history and their ledger
// ---------------------------------------------------------------------------------------

/// Bookings generated before their rows are written.
const BOOKINGS_PER_FLUSH: usize = 2_000;

#[derive(Default)]
struct Chunk {
    bookings: Vec<bookings::Model>,
    history: Vec<booking_history::Model>,
    transactions: Vec<transactions::Model>,
}

impl Chunk {
    fn with_capacity(n: usize) -> Self {
        Chunk {
            bookings: Vec::with_capacity(n),
            history: Vec::with_capacity(n * 2 + n / 2),
            transactions: Vec::with_capacity(n * 3),
        }
    }

    /// Appends `entry` to the history of booking `booking`, with an id made at its moment.
    fn history(&mut self, ids: &mut Rng, booking: Uuid, entry: Entry<'_>) {
        self.history.push(booking_history::Model {
            id: ids.uuid_at(entry.at),
            booking_id: booking,
            action: entry.action.to_owned(),
            previous_value: entry.previous,
            new_value: Some(entry.new),
            reason: entry.reason,
            performed_by_id: entry.actor.id,
            performed_by_name: entry.actor.name.clone(),
            performed_by_role: entry.actor.role.to_owned(),
            timestamp: entry.at,
            metadata: entry.metadata,
        });
    }
}

/// One booking history entry, before its row id is drawn.
struct Entry<'a> {
    at: DateTime<Utc>,
    action: &'static str,
    previous: Option<Json>,
    new: Json,
    reason: Option<String>,
    actor: &'a Actor,
    metadata: Option<Json>,
}

impl<'a> Entry<'a> {
    /// A STATUS_CHANGED entry: `{"status": from}` to `{"status": to}`.
    fn status_changed(
        at: DateTime<Utc>,
        (from, to): (BookingStatus, BookingStatus),
        actor: &'a Actor,
        reason: Option<String>,
        metadata: Option<Json>,
    ) -> Self {
        Entry {
            at,
            action: "STATUS_CHANGED",
            previous: Some(json!({ "status": from })),
            new: json!({ "status": to }),
            reason,
            actor,
            metadata,
        }
    }
}

/// The first choices of a booking, which the later ones depend on.
struct Basics {
    venue: usize,
    guest: u32,
    created_at: DateTime<Utc>,
    booking_time: DateTime<Utc>,
}

/// Where a booking's lifecycle stands at `now`, and when each step happened.
struct Lifecycle {
    /// Created CONFIRMED (an auto-confirming venue) rather than PENDING.
    auto: bool,
    status: BookingStatus,
    confirmed_at: Option<DateTime<Utc>>,
    cancelled_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
    no_show_at: Option<DateTime<Utc>>,
    /// Cancelled (or to be cancelled) by the venue when it blocked the guest.
    blocked_cancel: bool,
}

/// The optional details of a booking.
struct Extras {
    special_requests: Option<String>,
    notes: Option<String>,
    ip_address: Option<String>,
    user_agent: Option<String>,
    referrer: Option<String>,
}

/// Who created a booking, and who cancels it (if it is cancelled) and why.
struct People {
    creator: Actor,
    canceller: Actor,
    cancel_reason: String,
}

/// One booking with every choice made, before its rows are built.
struct Draft {
    id: Uuid,
    basics: Basics,
    diners: i32,
    kind: BookingType,
    promoter: Option<usize>,
    source: BookingSource,
    /// The pricing row in force at creation.
    pricing_id: Uuid,
    fees: Quote,
    life: Lifecycle,
    commission: Option<rules::Commission>,
    /// The commission's amount, 0 without one.
    promoter_commission: i64,
    extras: Extras,
    people: People,
}

/// The source of a booking: PROMOTER when a promoter brought it, else direct, phone,
/// partner or (only within two hours of its time) walk-in, by weight.
fn booking_source(rng: &mut Rng, promoter: Option<usize>, lead_time: TimeDelta) -> BookingSource {
    match promoter {
        Some(_) => BookingSource::Promoter,
        None => {
            let walk_in = if lead_time <= TimeDelta::hours(2) {
                40
            } else {
                0
            };
            [
                BookingSource::Direct,
                BookingSource::Phone,
                BookingSource::Partner,
                BookingSource::WalkIn,
            ][rng.weighted(&[50, 25, 15, walk_in])]
        }
    }
}

fn pick_guest(
    pools: &mut [Pool],
    pool: usize,
    rng: &mut Rng,
    blocked: u32,
    blocked_since: DateTime<Utc>,
    created_at: DateTime<Utc>,
) -> u32 {
    let pool = &mut pools[pool];
    let k = pool.seen;
    pool.seen += 1;
    let len = u64::from(pool.len);
    let offset = if k.is_multiple_of(pool.stride) && k / pool.stride < len {
        k / pool.stride
    } else {
        // Triangular: low indices are the regulars.
        rng.below(len).min(rng.below(len))
    };
    let mut guest = pool.start + offset as u32;
    if guest == blocked && created_at >= blocked_since {
        guest = pool.start + ((offset + 1) % len) as u32;
    }
    guest
}

impl Seeder {
    async fn bookings<C: ConnectionTrait>(&mut self, w: &Writer<'_, C>) -> anyhow::Result<()> {
        let n = self.bookings;
        if n == 0 {
            return Ok(());
        }
        let mut rng = Rng::new(stream::BOOKINGS);
        let mut ids = Rng::new(stream::BOOKING_IDS);
        let start = self.now - days(120);
        // Created in [now - 120 days, now - 1 minute), in order, evenly spread.
        let span = (days(120) - minutes(1)).num_seconds() as u64;
        let weights: Vec<u32> = self.venues.iter().map(|v| v.spec.share).collect();
        let mut chunk = Chunk::with_capacity(BOOKINGS_PER_FLUSH);
        for i in 0..n {
            let offset =
                (u128::from(i) * u128::from(span) + u128::from(rng.below(span))) / u128::from(n);
            let created_at = start + TimeDelta::seconds(offset as i64);
            self.booking(&mut rng, &mut ids, created_at, &weights, &mut chunk)?;
            if chunk.bookings.len() >= BOOKINGS_PER_FLUSH {
                self.flush(w, &mut chunk, false).await?;
                if self.report.bookings.is_multiple_of(100_000) {
                    tracing::info!(bookings = self.report.bookings, "seed: bookings written");
                }
            }
        }
        self.flush(w, &mut chunk, true).await?;
        Ok(())
    }

    /// Writes the generated bookings, then the history and ledger rows that fill whole
    /// statements; the rest waits for the next flush, or is written when `last`.
    async fn flush<C: ConnectionTrait>(
        &mut self,
        w: &Writer<'_, C>,
        chunk: &mut Chunk,
        last: bool,
    ) -> anyhow::Result<()> {
        let bookings = std::mem::take(&mut chunk.bookings);
        self.report.bookings += w.insert::<bookings::Entity>(bookings).await?;
        w.written.store(self.report.bookings, Ordering::Relaxed);
        chunk.bookings.reserve(BOOKINGS_PER_FLUSH);
        if last {
            let history = std::mem::take(&mut chunk.history);
            let transactions = std::mem::take(&mut chunk.transactions);
            self.report.history += w.insert::<booking_history::Entity>(history).await?;
            self.report.transactions += w.insert::<transactions::Entity>(transactions).await?;
        } else {
            self.report.history += w
                .insert_whole::<booking_history::Entity>(&mut chunk.history)
                .await?;
            self.report.transactions += w
                .insert_whole::<transactions::Entity>(&mut chunk.transactions)
                .await?;
        }
        Ok(())
    }

    /// Generates one booking created at `created_at`, with its history and ledger rows, and
    /// folds it into the guest, promoter, incentive and payout accumulators.
    fn booking(
        &mut self,
        rng: &mut Rng,
        ids: &mut Rng,
        created_at: DateTime<Utc>,
        weights: &[u32],
        chunk: &mut Chunk,
    ) -> anyhow::Result<()> {
        let draft = self.draft(rng, ids, created_at, weights)?;
        self.history_rows(ids, &draft, chunk);
        let commission_txn = self.ledger_rows(ids, &draft, chunk);
        chunk.bookings.push(self.booking_row(&draft));
        self.count_for_guest(&draft);
        if let Some(p) = draft.promoter {
            self.count_for_promoter(p, &draft, commission_txn);
        }
        Ok(())
    }

    /// Makes every choice of one booking created at `created_at`. The steps draw from `rng`
    /// in a fixed order (venue, guest, time, party, promoter, source, lifecycle, extras,
    /// people): reordering them changes the whole data set.
    fn draft(
        &mut self,
        rng: &mut Rng,
        ids: &mut Rng,
        created_at: DateTime<Utc>,
        weights: &[u32],
    ) -> anyhow::Result<Draft> {
        let v = rng.weighted(weights);
        let guest = {
            let pool = self.venues[v].pool;
            pick_guest(
                &mut self.pools,
                pool,
                rng,
                self.blocked_guest,
                self.blocked_since,
                created_at,
            )
        };
        let booking_time = self.booking_time(rng, v, created_at);
        let basics = Basics {
            venue: v,
            guest,
            created_at,
            booking_time,
        };
        let (diners, kind) = self.party(rng, v, created_at);
        let promoter = self.bringer(rng, &basics);
        let source = booking_source(rng, promoter, booking_time - created_at);

        // Fees, with the pricing row in force at creation.
        let pricing = self.venues[v].current_pricing(created_at);
        let repeat = self
            .completed
            .get(&(guest, v as u8))
            .is_some_and(|&done| done < created_at);
        let fees = price(pricing, kind, diners, booking_time, created_at, repeat)?;
        let pricing_id = pricing.id;

        let life = self.lifecycle(rng, &basics, source);

        // Commission, when it became CONFIRMED, from the assignment at booking_time.
        let commission = match (promoter, life.confirmed_at) {
            (Some(p), Some(_)) => {
                let rt = &self.promoters[p];
                rt.terms_at(booking_time)
                    .map(|t| commission(t, &rt.as_confirmed, diners, fees.base_fee))
            }
            _ => None,
        };
        let promoter_commission = commission.as_ref().map_or(0, |c| c.amount);

        let extras = self.extras(rng, v, source, promoter);
        let people = self.people(rng, &basics, source, promoter, &life);
        Ok(Draft {
            id: ids.uuid_at(created_at),
            basics,
            diners,
            kind,
            promoter,
            source,
            pricing_id,
            fees,
            life,
            commission,
            promoter_commission,
            extras,
            people,
        })
    }

    /// When: a local meal slot of venue `v`, 0 to 45 days after creation, at least 30
    /// minutes ahead, never beyond now + 30 days.
    fn booking_time(&self, rng: &mut Rng, v: usize, created_at: DateTime<Utc>) -> DateTime<Utc> {
        let spec = self.venues[v].spec;
        let tz = self.venues[v].tz;
        let lead = match rng.below(100) {
            0..20 => 0,
            20..55 => rng.range(1, 3),
            55..75 => rng.range(4, 7),
            75..95 => rng.range(8, 21),
            _ => rng.range(22, 45),
        };
        let (first_slot, last_slot, step) = spec.slots;
        let slot =
            first_slot + step * rng.below(u64::from((last_slot - first_slot) / step + 1)) as u32;
        let last_date = local_date(&tz, self.now + days(30)) - days(1);
        let mut date = (local_date(&tz, created_at) + days(lead)).min(last_date);
        let mut booking_time = at_local(&tz, date, slot);
        while booking_time <= created_at + minutes(30) {
            date += days(1);
            booking_time = at_local(&tz, date, slot);
        }
        booking_time
    }

    /// The party: diners within the limits of the pricing row in force at creation (at most
    /// 12), and prime or not by the venue's prime ratio.
    fn party(&self, rng: &mut Rng, v: usize, created_at: DateTime<Utc>) -> (i32, BookingType) {
        let pricing = self.venues[v].current_pricing(created_at);
        let lo = pricing.minimum_party_size.max(1);
        let hi = pricing.maximum_party_size.min(12);
        let diners = (rng.weighted(&PARTY_WEIGHTS) as i32 + 1).clamp(lo, hi);
        let kind = if rng.chance(self.venues[v].spec.prime_ratio as u32 * 10) {
            BookingType::Prime
        } else {
            BookingType::NonPrime
        };
        (diners, kind)
    }

    /// Who brought it: by the venue's promoter share, one of the venue's promoters who can
    /// bring this booking, drawn by their weights; `None` for a booking without a promoter.
    fn bringer(&self, rng: &mut Rng, b: &Basics) -> Option<usize> {
        let venue = &self.venues[b.venue];
        if !rng.chance(venue.spec.promoter_share) {
            return None;
        }
        let eligible: Vec<usize> = venue
            .promoters
            .iter()
            .copied()
            .filter(|&p| self.promoters[p].can_bring(b.created_at, b.booking_time))
            .collect();
        let weights: Vec<u32> = eligible
            .iter()
            .map(|&p| self.promoters[p].spec.weight)
            .collect();
        (!eligible.is_empty() && weights.iter().any(|w| *w > 0))
            .then(|| eligible[rng.weighted(&weights)])
    }

    /// Lifecycle: confirmed on creation at an auto-confirming venue, else by the venue later
    /// (if that is before now); cancelled (by chance, or by the venue when it blocked the
    /// guest), completed or a no-show by `now`, or still open.
    fn lifecycle(&self, rng: &mut Rng, b: &Basics, source: BookingSource) -> Lifecycle {
        let now = self.now;
        let (created_at, booking_time) = (b.created_at, b.booking_time);
        let spec = self.venues[b.venue].spec;
        let lead_time = booking_time - created_at;
        let auto = spec.auto_confirm && !spec.require_approval;
        let mut confirmed_at = if auto {
            Some(created_at)
        } else {
            let delay = if rng.chance(150) {
                TimeDelta::hours(rng.range(6, 96))
            } else {
                minutes(rng.range(15, 30 * 60))
            };
            let at = created_at + delay.min(lead_time / 2);
            (at <= now).then_some(at)
        };
        let guest_status = self.guest_status[b.guest as usize];
        let cancel_per_mille = match source {
            BookingSource::Partner => 130,
            BookingSource::WalkIn => 0,
            _ => 90,
        };
        let will_cancel = rng.chance(cancel_per_mille);
        let cancel_from = created_at + minutes(1);
        let cancel_until = booking_time - minutes(30);
        let cancel_at = (cancel_until > cancel_from).then(|| {
            let window = (cancel_until - cancel_from).num_seconds().max(1) as u64;
            cancel_from + TimeDelta::seconds(rng.below(window) as i64)
        });
        // The venue cancels a blocked guest's later bookings when it blocks them.
        let blocked_cancel = b.guest == self.blocked_guest
            && created_at < self.blocked_since
            && booking_time - minutes(30) > self.blocked_since
            && !(will_cancel && cancel_at.is_some_and(|at| at <= self.blocked_since));
        let (will_cancel, cancel_at) = if blocked_cancel {
            (true, Some(self.blocked_since))
        } else {
            (will_cancel, cancel_at)
        };
        let no_show_per_mille = match guest_status {
            GuestStatus::Blocked => 600,
            GuestStatus::Vip => 15,
            GuestStatus::Active => 50,
        };
        let is_no_show = rng.chance(no_show_per_mille);
        let duration = TimeDelta::minutes(i64::from(spec.duration));
        let (mut cancelled_at, mut completed_at, mut no_show_at) = (None, None, None);
        let status = match cancel_at {
            Some(at) if will_cancel && at <= now => {
                if confirmed_at.is_some_and(|c| c >= at) {
                    confirmed_at = None;
                }
                cancelled_at = Some(at);
                BookingStatus::Cancelled
            }
            _ if confirmed_at.is_none() => BookingStatus::Pending,
            _ if booking_time + duration <= now => {
                if is_no_show {
                    no_show_at = Some(booking_time + minutes(30));
                    BookingStatus::NoShow
                } else {
                    completed_at = Some(booking_time + duration);
                    BookingStatus::Completed
                }
            }
            _ => BookingStatus::Confirmed,
        };
        Lifecycle {
            auto,
            status,
            confirmed_at,
            cancelled_at,
            completed_at,
            no_show_at,
            blocked_cancel,
        }
    }

    /// Extras: special requests and staff notes now and then, and for online channels the
    /// client's address, user agent and referrer.
    fn extras(
        &self,
        rng: &mut Rng,
        v: usize,
        source: BookingSource,
        promoter: Option<usize>,
    ) -> Extras {
        let special_requests = rng
            .chance(200)
            .then(|| (*rng.pick(SPECIAL_REQUESTS)).to_owned());
        let notes = rng.chance(100).then(|| (*rng.pick(STAFF_NOTES)).to_owned());
        let online = matches!(
            source,
            BookingSource::Direct | BookingSource::Promoter | BookingSource::Partner
        );
        let ip_address = online.then(|| match rng.below(3) {
            0 => format!("203.0.113.{}", rng.range(1, 254)),
            1 => format!("198.51.100.{}", rng.range(1, 254)),
            _ => format!("2001:db8:{:x}::{:x}", rng.below(0xffff), rng.below(0xffff)),
        });
        let user_agent = online.then(|| (*rng.pick(USER_AGENTS)).to_owned());
        let referrer = match source {
            BookingSource::Promoter => {
                promoter.map(|p| format!("https://prima.demo/p/{}", self.promoters[p].spec.handle))
            }
            BookingSource::Direct => Some(
                (*rng.pick(&[
                    "https://www.google.com/",
                    "https://www.instagram.com/",
                    self.venues[v].spec.website,
                ]))
                .to_owned(),
            ),
            BookingSource::Partner => Some("https://partners.example/booking".to_owned()),
            _ => None,
        };
        Extras {
            special_requests,
            notes,
            ip_address,
            user_agent,
            referrer,
        }
    }

    /// Who created the booking (by its source) and who cancelled it, or would have: the
    /// venue when it blocked the guest, else the guest or the staff.
    fn people(
        &self,
        rng: &mut Rng,
        b: &Basics,
        source: BookingSource,
        promoter: Option<usize>,
        life: &Lifecycle,
    ) -> People {
        let guest_actor = Actor {
            id: None,
            name: self.guest_names[b.guest as usize].clone(),
            role: "GUEST",
        };
        let creator = match source {
            BookingSource::Promoter => {
                let p = &self.promoters[promoter.expect("a promoter booking has a promoter")];
                Actor {
                    id: None,
                    name: p.name.clone(),
                    role: "PROMOTER",
                }
            }
            BookingSource::Direct => guest_actor.clone(),
            BookingSource::Partner => Actor {
                id: None,
                name: "Partner channel".to_owned(),
                role: "PARTNER",
            },
            BookingSource::Phone | BookingSource::WalkIn => self.staff_at(b.venue, b.created_at),
        };
        let mut cancel_reason = (*rng.pick(CANCEL_REASONS)).to_owned();
        let cancelled_or_created = life.cancelled_at.unwrap_or(b.created_at);
        let canceller = if life.blocked_cancel {
            cancel_reason = "Guest blocked after repeated no-shows".to_owned();
            rng.next_u64();
            self.staff_at(b.venue, cancelled_or_created)
        } else if rng.chance(600) {
            guest_actor
        } else {
            self.staff_at(b.venue, cancelled_or_created)
        };
        People {
            creator,
            canceller,
            cancel_reason,
        }
    }

    /// The staff member of venue `v` acting at `at`: at the fourth venue the revoked
    /// coordinator until their access was revoked, else the venue's staff.
    fn staff_at(&self, v: usize, at: DateTime<Utc>) -> Actor {
        if v == 3 && at < self.now - days(REVOKED_DAYS_AGO) {
            let s = &USERS[REVOKED];
            Actor {
                id: Some(self.user_ids[REVOKED]),
                name: format!("{} {}", s.first, s.last),
                role: "COORDINATOR",
            }
        } else {
            self.venues[v].staff.clone()
        }
    }

    /// The booking's history: one CREATED row (with its pricing, discount and, when created
    /// CONFIRMED, its commission) and one STATUS_CHANGED row per status change.
    fn history_rows(&self, ids: &mut Rng, d: &Draft, chunk: &mut Chunk) {
        let (b, life) = (&d.basics, &d.life);
        let venue = &self.venues[b.venue];
        let commission_meta = d.commission.as_ref().map(|c| {
            json!({
                "promoter_commission": money_text(d.promoter_commission),
                "commission_model": c.model,
                "commission_rate": rate(c.rate).to_string(),
                "commission_tier": c.tier,
                "note": c.ineligible_reason,
            })
        });
        let mut created_meta = json!({
            "pricing_id": d.pricing_id,
            "discount": d.fees.discount.as_ref().map(|d| d.kind.as_str()),
        });
        if life.auto
            && let (Some(meta), Json::Object(map)) = (&commission_meta, &mut created_meta)
        {
            map.insert("commission".to_owned(), meta.clone());
        }
        let initial = if life.auto {
            BookingStatus::Confirmed
        } else {
            BookingStatus::Pending
        };
        let created = Entry {
            at: b.created_at,
            action: "CREATED",
            previous: None,
            new: json!({
                "status": initial,
                "diners": d.diners,
                "booking_time": b.booking_time,
                "type": d.kind,
                "source": d.source,
                "base_fee": money_text(d.fees.base_fee),
                "platform_fee": money_text(d.fees.platform_fee),
                "total_fee": money_text(d.fees.total_fee),
            }),
            reason: None,
            actor: &d.people.creator,
            metadata: Some(created_meta),
        };
        chunk.history(ids, d.id, created);
        if !life.auto
            && let Some(at) = life.confirmed_at
        {
            let metadata = commission_meta.map(|meta| json!({ "commission": meta }));
            let change = (BookingStatus::Pending, BookingStatus::Confirmed);
            let entry = Entry::status_changed(at, change, &venue.approver, None, metadata);
            chunk.history(ids, d.id, entry);
        }
        let previous = if life.confirmed_at.is_some() {
            BookingStatus::Confirmed
        } else {
            BookingStatus::Pending
        };
        if let Some(at) = life.cancelled_at {
            let reason = Some(d.people.cancel_reason.clone());
            let change = (previous, BookingStatus::Cancelled);
            let entry = Entry::status_changed(at, change, &d.people.canceller, reason, None);
            chunk.history(ids, d.id, entry);
        }
        if let Some(at) = life.completed_at {
            let staff = self.staff_at(b.venue, at);
            let change = (BookingStatus::Confirmed, BookingStatus::Completed);
            let entry = Entry::status_changed(at, change, &staff, None, None);
            chunk.history(ids, d.id, entry);
        }
        if let Some(at) = life.no_show_at {
            let staff = self.staff_at(b.venue, at);
            let reason =
                Some("Guest did not arrive within 30 minutes of the booking time".to_owned());
            let change = (BookingStatus::Confirmed, BookingStatus::NoShow);
            let entry = Entry::status_changed(at, change, &staff, reason, None);
            chunk.history(ids, d.id, entry);
        }
    }

    /// The ledger of a booking that was ever CONFIRMED: BOOKING_FEE, PLATFORM_FEE and (when
    /// positive) PROMOTER_COMMISSION at the confirmation moment, in the statuses the booking's
    /// outcome gives them. Returns the commission row's id, if one was written.
    fn ledger_rows(&self, ids: &mut Rng, d: &Draft, chunk: &mut Chunk) -> Option<Uuid> {
        let confirmed = d.life.confirmed_at?;
        let venue = &self.venues[d.basics.venue];
        use TransactionStatus as S;
        let (fee_status, commission_status, changed) = match d.life.status {
            BookingStatus::Completed => (S::Confirmed, S::Confirmed, d.life.completed_at),
            BookingStatus::NoShow => (S::Confirmed, S::Cancelled, d.life.no_show_at),
            BookingStatus::Cancelled => (S::Cancelled, S::Cancelled, d.life.cancelled_at),
            _ => (S::Pending, S::Pending, None),
        };
        let changed = changed.unwrap_or(confirmed);
        let short = &d.id.simple().to_string()[..8];
        let mut push = |kind: TransactionType,
                        amount: i64,
                        status: S,
                        promoter_id: Option<Uuid>,
                        description: String,
                        commission: Option<&rules::Commission>| {
            let txn_id = ids.uuid_at(confirmed);
            chunk.transactions.push(transactions::Model {
                id: txn_id,
                booking_id: Some(d.id),
                promoter_id,
                venue_id: venue.id,
                r#type: kind,
                amount,
                currency: venue.spec.currency.to_owned(),
                description,
                commission_rate: commission.map(|c| c.rate),
                commission_amount: commission.map(|_| amount),
                commission_tier: commission.map(|c| c.tier),
                status,
                processed_at: (status == S::Confirmed).then_some(changed),
                settled_at: None,
                external_transaction_id: None,
                payout_id: None,
                created_at: confirmed,
                updated_at: changed,
                reverses_transaction_id: None,
                incentive_id: None,
            });
            txn_id
        };
        let when = d
            .basics
            .booking_time
            .with_timezone(&venue.tz)
            .format("%Y-%m-%d %H:%M");
        let diners = d.diners;
        push(
            TransactionType::BookingFee,
            d.fees.base_fee,
            fee_status,
            None,
            format!("Booking fee, booking {short} ({diners} diners, {when})"),
            None,
        );
        push(
            TransactionType::PlatformFee,
            d.fees.platform_fee,
            fee_status,
            None,
            format!("Platform fee, booking {short}"),
            None,
        );
        match (d.promoter, &d.commission) {
            (Some(p), Some(c)) if d.promoter_commission > 0 => Some(push(
                TransactionType::PromoterCommission,
                d.promoter_commission,
                commission_status,
                Some(self.promoters[p].id),
                format!("Commission for {}, booking {short}", self.promoters[p].name),
                Some(c),
            )),
            _ => None,
        }
    }

    /// The booking row itself.
    fn booking_row(&self, d: &Draft) -> bookings::Model {
        let (b, life) = (&d.basics, &d.life);
        let venue = &self.venues[b.venue];
        let updated_at = [
            life.confirmed_at,
            life.cancelled_at,
            life.completed_at,
            life.no_show_at,
        ]
        .into_iter()
        .flatten()
        .fold(b.created_at, DateTime::max);
        bookings::Model {
            id: d.id,
            venue_id: venue.id,
            promoter_id: d.promoter.map(|p| self.promoters[p].id),
            guest_id: self.guest_ids[b.guest as usize],
            diners: d.diners,
            booking_time: b.booking_time,
            duration_minutes: venue.spec.duration,
            special_requests: d.extras.special_requests.clone(),
            notes: d.extras.notes.clone(),
            r#type: d.kind,
            source: d.source,
            status: life.status,
            base_fee: d.fees.base_fee,
            platform_fee: d.fees.platform_fee,
            total_fee: d.fees.total_fee,
            promoter_commission: d.promoter_commission,
            confirmed_at: life.confirmed_at,
            cancelled_at: life.cancelled_at,
            no_show_at: life.no_show_at,
            completed_at: life.completed_at,
            ip_address: d.extras.ip_address.clone(),
            user_agent: d.extras.user_agent.clone(),
            referrer: d.extras.referrer.clone(),
            created_at: b.created_at,
            updated_at,
        }
    }

    /// Folds the booking into its guest's counters, and notes when the guest first completed
    /// a booking at the venue (for the repeat customer discount).
    fn count_for_guest(&mut self, d: &Draft) {
        let (b, life) = (&d.basics, &d.life);
        let g = &mut self.guest_aggs[b.guest as usize];
        g.total += 1;
        g.diners += i64::from(d.diners);
        g.last_booking = g.last_booking.max(Some(b.booking_time));
        match life.status {
            BookingStatus::Cancelled => g.cancelled += 1,
            BookingStatus::NoShow => g.no_show += 1,
            BookingStatus::Completed => {
                g.spent += d.fees.total_fee;
                if let Some(done) = life.completed_at {
                    self.completed
                        .entry((b.guest, b.venue as u8))
                        .and_modify(|t| *t = (*t).min(done))
                        .or_insert(done);
                }
            }
            _ => {}
        }
    }

    /// Folds the booking into promoter `p`'s counters, its guest relationships and (a
    /// completed booking confirmed in a past month, with a
    /// commission row `commission_txn`) the payout candidates.
    fn count_for_promoter(&mut self, p: usize, d: &Draft, commission_txn: Option<Uuid>) {
        let (b, life) = (&d.basics, &d.life);
        let in_month = self.venues[b.venue].in_current_month(b.booking_time);
        let last_month = self.venues[b.venue].month_offset(b.booking_time) == Some(-1);
        let counted = matches!(
            life.status,
            BookingStatus::Confirmed | BookingStatus::Completed
        );
        let total_fee = d.fees.total_fee;
        let a = &mut self.promoter_aggs[p];
        a.all += 1;
        match life.status {
            BookingStatus::Confirmed => a.confirmed += 1,
            BookingStatus::Completed => a.completed += 1,
            BookingStatus::Cancelled => a.cancelled += 1,
            BookingStatus::NoShow => a.no_show += 1,
            BookingStatus::Pending => {}
        }
        if counted {
            a.revenue += total_fee;
            if in_month {
                a.month_bookings += 1;
                a.month_revenue += total_fee;
            }
            if last_month {
                a.last_month_bookings += 1;
            }
        }
        a.last_active = a.last_active.max(Some(b.created_at));
        self.relationships
            .entry((p as u16, b.guest))
            .and_modify(|r| {
                r.first = r.first.min(b.booking_time);
                r.this_month |= in_month;
            })
            .or_insert(Relationship {
                first: b.booking_time,
                this_month: in_month,
            });
        if let (Some(txn), Some(done), Some(confirmed)) =
            (commission_txn, life.completed_at, life.confirmed_at)
            && let Some(month) = self.venues[b.venue]
                .month_offset(confirmed)
                .filter(|m| *m < 0)
        {
            self.earned.push(Earned {
                promoter: p,
                month,
                transaction: txn,
                amount: d.promoter_commission,
                confirmed_at: done,
            });
        }
    }

    // -- metrics --------------------------------------------------------------------------

    async fn promoter_metrics<C: ConnectionTrait>(
        &mut self,
        w: &Writer<'_, C>,
    ) -> anyhow::Result<()> {
        use promoters::Column as P;
        let guests = self.month_guests();
        let rows: Vec<_> = (0..self.promoters.len())
            .map(|i| self.promoter_model(i, guests[i]))
            .collect();
        w.upsert::<promoters::Entity>(
            rows,
            vec![
                P::TotalBookings,
                P::TotalRevenue,
                P::AverageBookingValue,
                P::ConversionRate,
                P::NoShowRate,
                P::CancelRate,
                P::MonthBookings,
                P::MonthRevenue,
                P::MonthNewGuests,
                P::MonthRepeatGuests,
                P::LastActiveAt,
                P::AllBookings,
                P::CompletedBookings,
                P::CancelledBookings,
                P::NoShowBookings,
                P::UpdatedAt,
            ],
        )
        .await?;
        Ok(())
    }

    /// Per promoter: guests new this month (first booking with the promoter this month) and
    /// repeat guests this month (a booking this month, the first one earlier).
    fn month_guests(&self) -> Vec<(i32, i32)> {
        let mut counts = vec![(0, 0); self.promoters.len()];
        for (&(promoter, _), rel) in &self.relationships {
            let promoter = usize::from(promoter);
            if !rel.this_month {
                continue;
            }
            if self.venues[self.promoters[promoter].venue].in_current_month(rel.first) {
                counts[promoter].0 += 1;
            } else {
                counts[promoter].1 += 1;
            }
        }
        counts
    }
}

// ---------------------------------------------------------------------------------------
// Payouts
// ---------------------------------------------------------------------------------------

impl Seeder {
    /// The promoter of `venue` with the most payout candidates in `month`, not yet used.
    fn best_candidate(
        &self,
        groups: &PayoutGroups,
        venue: usize,
        month: i32,
        used: &[(usize, i32)],
    ) -> Option<usize> {
        self.venues[venue]
            .promoters
            .iter()
            .copied()
            .filter(|p| !used.contains(&(*p, month)))
            .filter_map(|p| groups.get(&(p, month)).map(|items| (items.len(), p)))
            .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
            .map(|(_, p)| p)
    }

    /// The payouts (see the module documentation): plans them from the payout candidates,
    /// builds each one's rows, then writes them and settles or assigns their transactions.
    async fn payouts<C: ConnectionTrait>(&mut self, w: &Writer<'_, C>) -> anyhow::Result<()> {
        let mut rng = Rng::new(stream::PAYOUTS);
        let groups = self.payout_groups();
        let plans = self.payout_plans(&groups);
        let mut rows = PayoutRows::default();
        for (sequence, plan) in plans.into_iter().enumerate() {
            if let Some(payout) = self.payout_draft(&groups, sequence, plan) {
                rows.payouts.push(self.payout_row(&payout));
                self.payout_items(&payout, &mut rows);
                self.payout_audits(&payout, &mut rows);
                self.payout_hold(&mut rng, &payout, &mut rows);
            }
        }
        self.write_payouts(w, rows).await
    }

    /// The payout candidates by promoter and month.
    fn payout_groups(&mut self) -> PayoutGroups {
        let mut groups = PayoutGroups::new();
        for earned in std::mem::take(&mut self.earned) {
            groups
                .entry((earned.promoter, earned.month))
                .or_default()
                .push(earned);
        }
        groups
    }

    /// Which payouts to make, as (promoter, month, status): one waiting for approval
    /// (preferably at the approval venue, last month), and completed ones for every other
    /// promoter's earnings of every fully past month in the window, so old bookings lead to
    /// COMPLETED payouts at any data size. Completed ones first, in period order, so
    /// references run in time order.
    fn payout_plans(&self, groups: &PayoutGroups) -> Vec<(usize, i32, PayoutStatus)> {
        let mut plans: Vec<(usize, i32, PayoutStatus)> = Vec::new();
        let mut used: Vec<(usize, i32)> = Vec::new();
        'pending: for venue in [APPROVAL_VENUE, 4, 3, 2, 1, 0] {
            for month in [-1, -2, -3] {
                if let Some(p) = self.best_candidate(groups, venue, month, &used) {
                    plans.push((p, month, PayoutStatus::PendingApproval));
                    used.push((p, month));
                    break 'pending;
                }
            }
        }
        for venue in 0..self.venues.len() {
            for month in [-4, -3, -2, -1] {
                if month == -1 {
                    continue; // the month just ended: paid by the payout tour, through the service
                }
                for &p in &self.venues[venue].promoters {
                    if groups.contains_key(&(p, month)) && !used.contains(&(p, month)) {
                        plans.push((p, month, PayoutStatus::Completed));
                        used.push((p, month));
                    }
                }
            }
        }
        plans
            .sort_by_key(|&(p, month, status)| (status == PayoutStatus::PendingApproval, month, p));
        plans
    }

    /// The payout of plan number `sequence`: its period, the candidates CONFIRMED when it
    /// was generated, its amounts and method, and the moments of its life; `None` when no
    /// candidate was confirmed by then.
    fn payout_draft(
        &mut self,
        groups: &PayoutGroups,
        sequence: usize,
        (p, month, status): (usize, i32, PayoutStatus),
    ) -> Option<PayoutDraft> {
        let promoter = &self.promoters[p];
        let venue = &self.venues[promoter.venue];
        let period_from = venue.months[(month + 3) as usize];
        let period_to = venue.months[(month + 4) as usize];
        let step = ((self.now - period_to) / 8)
            .min(days(1))
            .max(TimeDelta::zero());
        let generated = period_to + step;
        let earned: Vec<Earned> = groups[&(p, month)]
            .iter()
            .filter(|e| e.confirmed_at <= generated)
            .copied()
            .collect();
        if earned.is_empty() {
            return None;
        }
        let commissions: i64 = earned.iter().map(|e| e.amount).sum();
        let method = match promoter.venue {
            1 | APPROVAL_VENUE => PayoutMethod::DigitalWallet,
            3 => PayoutMethod::Check,
            _ => PayoutMethod::BankTransfer,
        };
        let fees = if method == PayoutMethod::DigitalWallet && commissions > 150 {
            150
        } else {
            0
        };
        let submitted = generated + step;
        let approved = submitted + step;
        let processing = approved + step;
        Some(PayoutDraft {
            id: self.ids.uuid(),
            promoter: p,
            sequence,
            status,
            period_from,
            period_to,
            generated,
            submitted,
            approved,
            processing,
            completed: processing + step,
            earned,
            commissions,
            fees,
            method,
        })
    }

    /// The payout row.
    fn payout_row(&self, d: &PayoutDraft) -> payouts::Model {
        let promoter = &self.promoters[d.promoter];
        let venue = &self.venues[promoter.venue];
        let done = d.status == PayoutStatus::Completed;
        payouts::Model {
            id: d.id,
            venue_id: venue.id,
            promoter_id: Some(promoter.id),
            amount: d.commissions - d.fees,
            currency: venue.spec.currency.to_owned(),
            period_from: d.period_from,
            period_to: d.period_to,
            status: d.status,
            scheduled_for: if done {
                d.processing
            } else {
                self.now + days(3)
            },
            processed_at: done.then_some(d.completed),
            commissions_amount: d.commissions,
            incentives_amount: 0,
            adjustments_amount: 0,
            fees_amount: d.fees,
            method: d.method,
            reference: done.then(|| {
                format!(
                    "PRIMA-PO-{}-{:04}",
                    d.period_from.with_timezone(&venue.tz).format("%Y%m"),
                    d.sequence + 1
                )
            }),
            approved_by: done.then_some(self.user_ids[venue.boss]),
            approved_at: done.then_some(d.approved),
            created_at: d.generated,
            updated_at: if done { d.completed } else { d.submitted },
            created_by: Some(self.user_ids[ADMIN]),
            submitted_by: Some(self.user_ids[ADMIN]),
        }
    }

    /// One item per commission transaction the payout holds.
    fn payout_items(&mut self, d: &PayoutDraft, rows: &mut PayoutRows) {
        for e in &d.earned {
            rows.items.push(payout_items::Model {
                id: self.ids.uuid(),
                payout_id: d.id,
                transaction_id: e.transaction,
                amount: e.amount,
                r#type: TransactionType::PromoterCommission,
                created_at: d.generated,
                released_at: None,
            });
        }
    }

    /// The payout's audit trail: generated and submitted by the admin; for a completed one
    /// also approved by the venue's boss, sent, and confirmed by the payment provider.
    fn payout_audits(&mut self, d: &PayoutDraft, rows: &mut PayoutRows) {
        let venue = &self.venues[self.promoters[d.promoter].venue];
        let admin = Some(self.user_ids[ADMIN]);
        let boss = Some(self.user_ids[venue.boss]);
        let label = d
            .period_from
            .with_timezone(&venue.tz)
            .format("%B %Y")
            .to_string();
        use PayoutStatus as S;
        let mut steps = vec![
            (
                None,
                S::Draft,
                admin,
                d.generated,
                format!("Generated for {label}"),
            ),
            (
                Some(S::Draft),
                S::PendingApproval,
                admin,
                d.submitted,
                "Submitted for approval".to_owned(),
            ),
        ];
        if d.status == S::Completed {
            let sent = format!(
                "Sent by {}",
                d.method.as_str().replace('_', " ").to_lowercase()
            );
            steps.extend([
                (
                    Some(S::PendingApproval),
                    S::Approved,
                    boss,
                    d.approved,
                    "Approved".to_owned(),
                ),
                (Some(S::Approved), S::Processing, admin, d.processing, sent),
                (
                    Some(S::Processing),
                    S::Completed,
                    None,
                    d.completed,
                    "Payment confirmed by the payment provider".to_owned(),
                ),
            ]);
        }
        for (from, to, by, at, reason) in steps {
            rows.audits.push(payout_audit::Model {
                id: self.ids.uuid(),
                payout_id: d.id,
                from_status: from,
                to_status: to,
                performed_by: by,
                reason: Some(reason),
                created_at: at,
            });
        }
    }

    /// What the payout does to its transactions (settles them when completed, else assigns
    /// them), and its hold: the first completed payout has a released one, the pending one
    /// an active one on a disputed booking.
    fn payout_hold(&mut self, rng: &mut Rng, d: &PayoutDraft, rows: &mut PayoutRows) {
        let boss = self.user_ids[self.venues[self.promoters[d.promoter].venue].boss];
        let transaction_ids: Vec<Uuid> = d.earned.iter().map(|e| e.transaction).collect();
        if d.status == PayoutStatus::Completed {
            rows.settle.push((d.id, d.completed, transaction_ids));
            if !rows.released_hold_written {
                rows.released_hold_written = true;
                rows.holds.push(payout_holds::Model {
                    id: self.ids.uuid(),
                    payout_id: d.id,
                    amount: d.earned.iter().map(|e| e.amount).max().unwrap_or(0),
                    reason: "Guest questioned a charge; resolved in the venue's favour".to_owned(),
                    hold_until: Some(d.submitted + days(7)),
                    created_by: boss,
                    created_at: d.submitted,
                    released_by: Some(boss),
                    released_at: Some(d.approved),
                });
            }
        } else {
            rows.assign.push((d.id, d.generated, transaction_ids));
            let disputed = d.earned[rng.below(d.earned.len() as u64) as usize].amount;
            rows.holds.push(payout_holds::Model {
                id: self.ids.uuid(),
                payout_id: d.id,
                amount: disputed.min(d.commissions - d.fees),
                reason: "Guest dispute on a booking in this period is under review".to_owned(),
                hold_until: Some(self.now + days(14)),
                created_by: boss,
                created_at: d.submitted,
                released_by: None,
                released_at: None,
            });
        }
    }

    /// Writes the payouts and their items, settles the transactions of the completed ones
    /// and assigns those of the pending one, then writes the holds and the audit trail.
    async fn write_payouts<C: ConnectionTrait>(
        &mut self,
        w: &Writer<'_, C>,
        rows: PayoutRows,
    ) -> anyhow::Result<()> {
        self.report.payouts = w.insert::<payouts::Entity>(rows.payouts).await?;
        w.insert::<payout_items::Entity>(rows.items).await?;
        use transactions::Column as T;
        for (payout, at, ids) in rows.settle {
            for chunk in ids.chunks(1_000) {
                transactions::Entity::update_many()
                    .col_expr(T::Status, Expr::value(TransactionStatus::Settled.as_str()))
                    .col_expr(T::SettledAt, Expr::value(at))
                    .col_expr(T::PayoutId, Expr::value(payout))
                    .col_expr(T::UpdatedAt, Expr::value(at))
                    .filter(T::Id.is_in(chunk.iter().copied()))
                    .exec(w.conn)
                    .await
                    .context("settling the transactions of a completed payout")?;
            }
        }
        for (payout, at, ids) in rows.assign {
            for chunk in ids.chunks(1_000) {
                transactions::Entity::update_many()
                    .col_expr(T::PayoutId, Expr::value(payout))
                    .col_expr(T::UpdatedAt, Expr::value(at))
                    .filter(T::Id.is_in(chunk.iter().copied()))
                    .exec(w.conn)
                    .await
                    .context("assigning transactions to a payout")?;
            }
        }
        w.insert::<payout_holds::Entity>(rows.holds).await?;
        w.insert::<payout_audit::Entity>(rows.audits).await?;
        Ok(())
    }
}

/// Payout candidates by (promoter, month offset).
type PayoutGroups = std::collections::BTreeMap<(usize, i32), Vec<Earned>>;

/// One payout to write: whose, which period, its amounts and the moments of its life.
struct PayoutDraft {
    id: Uuid,
    promoter: usize,
    /// Its place among the planned payouts (numbers the reference).
    sequence: usize,
    status: PayoutStatus,
    period_from: DateTime<Utc>,
    period_to: DateTime<Utc>,
    generated: DateTime<Utc>,
    submitted: DateTime<Utc>,
    approved: DateTime<Utc>,
    processing: DateTime<Utc>,
    completed: DateTime<Utc>,
    /// The candidates CONFIRMED when it was generated.
    earned: Vec<Earned>,
    commissions: i64,
    fees: i64,
    method: PayoutMethod,
}

/// The payout rows built so far, and the transaction updates they need.
#[derive(Default)]
struct PayoutRows {
    payouts: Vec<payouts::Model>,
    items: Vec<payout_items::Model>,
    holds: Vec<payout_holds::Model>,
    audits: Vec<payout_audit::Model>,
    /// (payout, settled at, transactions) of the completed payouts.
    settle: Vec<(Uuid, DateTime<Utc>, Vec<Uuid>)>,
    /// (payout, at, transactions) of the pending payout.
    assign: Vec<(Uuid, DateTime<Utc>, Vec<Uuid>)>,
    released_hold_written: bool,
}

// ---------------------------------------------------------------------------------------
// Incentives
// ---------------------------------------------------------------------------------------

impl Seeder {
    /// What the incentive tour makes at every venue (see [`incentive_tour`]): the rules of
    /// the first of [`PROGRAMMES`] for last month (the sprint, which recurs) and of the
    /// others for this month, with thresholds set from the month's values of the promoters
    /// eligible for each.
    fn incentive_plan(&self) -> Vec<incentive_tour::TourVenue> {
        let new_guests: Vec<i64> = self
            .month_guests()
            .iter()
            .map(|(new, _)| i64::from(*new))
            .collect();
        (0..self.venues.len())
            .map(|v| {
                let venue = &self.venues[v];
                incentive_tour::TourVenue {
                    id: venue.id,
                    boss: self.user_ids[venue.boss],
                    last_month: (venue.months[2], venue.months[3]),
                    sprint: self.programme_rules(v, &PROGRAMMES[0], &new_guests, LAST_MONTH),
                    programmes: PROGRAMMES[1..]
                        .iter()
                        .map(|programme| {
                            self.programme_rules(v, programme, &new_guests, THIS_MONTH)
                        })
                        .collect(),
                }
            })
            .collect()
    }

    /// The rules of one programme of venue `v` for the month starting at `months[month]`
    /// ([`LAST_MONTH`] or [`THIS_MONTH`]), its threshold set from the eligible promoters'
    /// values.
    fn programme_rules(
        &self,
        v: usize,
        programme: &Programme,
        new_guests: &[i64],
        month: usize,
    ) -> Rules {
        let venue = &self.venues[v];
        let start = venue.months[month];
        let best = self
            .eligible(v, programme, start)
            .into_iter()
            .map(|p| self.programme_value(programme, p, new_guests, month))
            .max()
            .unwrap_or(0);
        let month = start.with_timezone(&venue.tz).format("%B").to_string();
        let month = month.as_str();
        let threshold = programme_threshold(programme.kind, best);
        let (reward_type, reward_value, reward_description) =
            programme_reward(programme.kind, v, venue.spec.currency);
        let (name, description) = programme_text(programme.kind, month, threshold, venue.spec);
        Rules {
            name,
            description: Some(description),
            kind: programme.kind,
            target_threshold: Decimal::new(threshold, 2),
            target_comparison: programme.comparison,
            reward_type,
            reward_value: (reward_type != RewardType::TierUpgrade)
                .then(|| Decimal::new(reward_value, 2)),
            reward_description: Some(reward_description),
            period: PeriodInput::Calendar(
                PeriodType::Monthly,
                Some(start.with_timezone(&venue.tz).date_naive()),
            ),
            is_recurring: programme.recurring,
            eligible_tiers: Some(programme.tiers.to_vec()),
            min_tenure_days: Some(programme.tenure_days),
            max_previous_wins: programme.max_previous_wins,
        }
    }

    /// The promoters of venue `v` eligible for `programme`: ACTIVE, of an eligible tier, and
    /// joined at least the minimum tenure before the period starts.
    fn eligible(&self, v: usize, programme: &Programme, period_start: DateTime<Utc>) -> Vec<usize> {
        self.venues[v]
            .promoters
            .iter()
            .copied()
            .filter(|&p| {
                let promoter = &self.promoters[p];
                promoter.spec.status == PromoterStatus::Active
                    && programme.tiers.contains(&promoter.spec.tier)
                    && promoter.joined_at <= period_start - days(i64::from(programme.tenure_days))
            })
            .collect()
    }

    /// Promoter `p`'s final value for `programme` in the month starting at
    /// `months[month]`, in hundredths of the unit (last month's is kept for bookings only,
    /// the sprint's measure).
    fn programme_value(
        &self,
        programme: &Programme,
        p: usize,
        new_guests: &[i64],
        month: usize,
    ) -> i64 {
        let agg = &self.promoter_aggs[p];
        match (programme.kind, month) {
            (IncentiveType::BookingCount, LAST_MONTH) => i64::from(agg.last_month_bookings) * 100,
            (IncentiveType::BookingCount, _) => i64::from(agg.month_bookings) * 100,
            (IncentiveType::RevenueTarget, _) => agg.month_revenue,
            _ => new_guests[p] * 100,
        }
    }
}

/// A programme's threshold, set from the best eligible value so that some promoters reach
/// it and some do not: three quarters of the best, to two significant digits (a default
/// without values); NEW_GUESTS is a TOP_N 3.
fn programme_threshold(kind: IncentiveType, best: i64) -> i64 {
    match kind {
        IncentiveType::BookingCount => {
            if best == 0 {
                1_000
            } else {
                nice_floor(best / 100 * 3 / 4) * 100
            }
        }
        IncentiveType::RevenueTarget => {
            if best == 0 {
                100_000
            } else {
                nice_floor(best / 100 * 3 / 4) * 100
            }
        }
        _ => 300,
    }
}

/// A programme's reward: type, value and description (venue `v` decides the NEW_GUESTS one).
fn programme_reward(kind: IncentiveType, v: usize, currency: &str) -> (RewardType, i64, String) {
    match kind {
        IncentiveType::BookingCount => (
            RewardType::FixedAmount,
            15_000,
            format!("{} 150.00 bonus", currency),
        ),
        IncentiveType::RevenueTarget => (
            RewardType::PercentageBonus,
            500,
            "5% bonus on the month's commissions".to_owned(),
        ),
        _ if v.is_multiple_of(2) => (
            RewardType::TierUpgrade,
            0,
            "Move up one promoter tier".to_owned(),
        ),
        _ => (
            RewardType::FixedAmount,
            10_000,
            format!("{} 100.00 for each of the top 3", currency),
        ),
    }
}

/// A programme's name and description.
fn programme_text(
    kind: IncentiveType,
    month: &str,
    threshold: i64,
    venue: &VenueSpec,
) -> (String, String) {
    let currency = venue.currency;
    match kind {
        // The sprint recurs monthly: its words hold for every month.
        IncentiveType::BookingCount => (
            "Monthly booking sprint".to_owned(),
            format!(
                "Bring {} confirmed bookings to {} in the month.",
                threshold / 100,
                venue.name
            ),
        ),
        IncentiveType::RevenueTarget => (
            format!("{month} revenue club"),
            format!(
                "Reach {currency} {} in booking revenue in {month}.",
                money_text(threshold)
            ),
        ),
        _ => (
            format!("{month} new guest challenge"),
            format!(
                "The three promoters who bring the most new guests to {} in {month} win.",
                venue.name
            ),
        ),
    }
}
