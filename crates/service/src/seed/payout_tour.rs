//! After the bulk load, the month just ended is paid out at every venue through the payout
//! service functions themselves, so the demo shows what they make: a venue-wide generation
//! ([`generate_venue_payouts_at`]) per venue, then its payouts left in every status in
//! turn (APPROVED first at each venue, then DRAFT, PENDING_APPROVAL, PROCESSING, FAILED,
//! COMPLETED), moved by the admin and the venue's boss (four eyes: the admin submits, the
//! boss approves); every one not yet PROCESSING carries an active hold, so each venue's
//! newest payouts show one. Then one promoter gets a refund of their largest paid booking
//! ([`refund_booking_at`]), whose clawback leaves a carried-negative balance for their next
//! payout to deduct.

use chrono::{DateTime, Duration, Utc};
use prima_entity::enums::{BookingStatus, PayoutStatus, TransactionStatus, TransactionType};
use prima_entity::{bookings, transactions};
use rust_decimal::Decimal;
use sea_orm::{
    ColumnTrait, EntityTrait, JoinType, QueryFilter, QueryOrder, QuerySelect, RelationTrait,
};
use uuid::Uuid;

use crate::bookings::refund::refund_booking_at;
use crate::db::Db;
use crate::error::Result;
use crate::payouts::generate::{Outcome, generate_venue_payouts_at};
use crate::payouts::lifecycle::{HoldRequest, Step, advance_at, place_hold_at};

/// A venue whose month just ended is paid out by the tour.
pub(super) struct TourVenue {
    pub id: Uuid,
    /// `[start, end)` of the month just ended, in the venue's time zone.
    pub month: (DateTime<Utc>, DateTime<Utc>),
    /// Its OWNER or venue ADMIN, who approves.
    pub boss: Uuid,
}

/// The statuses the tour leaves its payouts in, in turn.
const STATUSES: [PayoutStatus; 6] = [
    PayoutStatus::Approved,
    PayoutStatus::Draft,
    PayoutStatus::PendingApproval,
    PayoutStatus::Processing,
    PayoutStatus::Failed,
    PayoutStatus::Completed,
];

/// What the tour wrote beside its payouts' own rows.
#[derive(Debug, Default)]
pub(super) struct Toured {
    /// Payouts made.
    pub payouts: u64,
    /// Ledger rows the refund wrote (the REFUND and its clawback).
    pub transactions: u64,
    /// Booking history rows the refund wrote.
    pub history: u64,
}

/// Runs the tour at `now`.
pub(super) async fn run(
    db: &Db,
    admin: Uuid,
    venues: &[TourVenue],
    now: DateTime<Utc>,
) -> Result<Toured> {
    let admin = crate::auth::actor_for(&db.conn, admin).await?;
    let mut made = 0u64;
    // After each venue's first (APPROVED), the other statuses in turn across venues.
    let mut others = 0usize;
    for venue in venues {
        let boss = crate::auth::actor_for(&db.conn, venue.boss).await?;
        let run = generate_venue_payouts_at(
            db,
            &admin,
            venue.id,
            venue.month,
            Some(now + Duration::days(3)),
            now,
        )
        .await?;
        let created = run
            .results
            .iter()
            .filter(|r| r.outcome == Outcome::Created)
            .filter_map(|r| r.payout.as_ref());
        for (i, payout) in created.enumerate() {
            let target = if i == 0 {
                PayoutStatus::Approved
            } else {
                others += 1;
                STATUSES[1 + (others - 1) % (STATUSES.len() - 1)]
            };
            made += 1;
            walk(db, (&admin, &boss), payout, target, made, now).await?;
        }
    }
    let mut toured = Toured {
        payouts: made,
        ..Toured::default()
    };
    let everywhere: Vec<Uuid> = venues.iter().map(|v| v.id).collect();
    if let Some(refund) = carry_a_negative_balance(db, &admin, &everywhere, now).await? {
        toured.transactions = 1 + u64::from(refund.clawback.is_some());
        toured.history = 1;
    }
    Ok(toured)
}

/// Moves a DRAFT payout to `target`, holding it when it stops before PROCESSING.
async fn walk(
    db: &Db,
    (admin, boss): (&crate::access::Actor, &crate::access::Actor),
    payout: &prima_entity::payouts::Model,
    target: PayoutStatus,
    number: u64,
    now: DateTime<Utc>,
) -> Result<()> {
    let moves = [
        (PayoutStatus::PendingApproval, Step::Submit, admin),
        (PayoutStatus::Approved, Step::Approve, boss),
        (PayoutStatus::Processing, Step::StartProcessing, admin),
    ];
    for (reached, step, by) in moves {
        if position(target) < position(reached) {
            break;
        }
        advance_at(db, by, payout.id, step, now).await?;
    }
    match target {
        PayoutStatus::Draft | PayoutStatus::PendingApproval | PayoutStatus::Approved => {
            let hold = HoldRequest {
                payout_id: payout.id,
                amount: Decimal::new(payout.amount.clamp(1, 2_000), 2),
                reason: "The guest of one booking asked for an itemised bill".into(),
                hold_until: Some(now + Duration::days(7)),
            };
            if payout.amount > 0 {
                place_hold_at(db, boss, hold, now).await?;
            }
        }
        PayoutStatus::Failed => {
            let fail = Step::Fail {
                reason: "The bank returned the transfer: account closed".into(),
            };
            advance_at(db, admin, payout.id, fail, now).await?;
        }
        PayoutStatus::Completed => {
            let reference = format!("PRIMA-PO-TOUR-{number:04}");
            advance_at(db, admin, payout.id, Step::Complete { reference }, now).await?;
        }
        PayoutStatus::Processing => {}
    }
    Ok(())
}

/// Where a status comes on the way to payment (DRAFT first); a FAILED payout got as far as
/// PROCESSING, and COMPLETED comes after it.
fn position(status: PayoutStatus) -> usize {
    match status {
        PayoutStatus::Draft => 0,
        PayoutStatus::PendingApproval => 1,
        PayoutStatus::Approved => 2,
        PayoutStatus::Processing | PayoutStatus::Failed => 3,
        PayoutStatus::Completed => 4,
    }
}

/// Refunds in full, for the first promoter of `venues` (by id) owed less than their largest
/// paid commission of a COMPLETED booking, that booking: its clawback leaves their balance
/// carried negative. One statement for the promoters, one for their balances, and one per
/// promoter looked at (a demo has a few dozen, whatever its bookings).
async fn carry_a_negative_balance(
    db: &Db,
    admin: &crate::access::Actor,
    venues: &[Uuid],
    now: DateTime<Utc>,
) -> Result<Option<crate::bookings::refund::Refund>> {
    let promoters: Vec<Uuid> = prima_entity::promoters::Entity::find()
        .select_only()
        .column(prima_entity::promoters::Column::Id)
        .filter(prima_entity::promoters::Column::VenueId.is_in(venues.iter().copied()))
        .order_by_asc(prima_entity::promoters::Column::Id)
        .into_tuple()
        .all(&db.conn)
        .await?;
    let owed = crate::payouts::balance::balances(&db.conn, admin, &promoters).await?;
    for promoter in promoters {
        let largest = transactions::Entity::find()
            .join(JoinType::InnerJoin, transactions::Relation::Bookings.def())
            .filter(transactions::Column::PromoterId.eq(promoter))
            .filter(transactions::Column::Type.eq(TransactionType::PromoterCommission))
            .filter(transactions::Column::Status.eq(TransactionStatus::Settled))
            .filter(bookings::Column::Status.eq(BookingStatus::Completed))
            .order_by_desc(transactions::Column::Amount)
            .order_by_asc(transactions::Column::Id)
            .one(&db.conn)
            .await?;
        let unpaid = owed.get(&promoter).map_or(0, |b| b.earned_unpaid);
        if let Some(commission) = largest.filter(|c| c.amount > unpaid)
            && let Some(booking) = commission.booking_id
        {
            let reason = "Refunded in full: the private room was double-booked".to_owned();
            return Ok(Some(
                refund_booking_at(db, admin, booking, None, reason, now).await?,
            ));
        }
    }
    Ok(None)
}
