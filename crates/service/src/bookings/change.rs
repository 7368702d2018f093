//! The steps every booking change shares: the limits on its input, its history row and the
//! ledger rows a confirmation writes (DOMAIN.md "Transactions", "Commissions").

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use prima_entity::enums::{TransactionStatus, TransactionType};
use prima_entity::{booking_history, bookings, transactions, venues};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::json;
use uuid::Uuid;

use crate::access::{Actor, Level};
use crate::commissions::{self, rules::Commission};
use crate::error::{Error, Result};
use crate::events::outbox::BookingAction;
use crate::money::{cents, rate};

/// The longest notes or special requests accepted.
pub const MAX_TEXT: usize = 2000;
/// Shortest and longest booking duration accepted, minutes.
pub const DURATION_MINUTES: std::ops::RangeInclusive<i32> = 15..=1440;
pub(super) fn check_duration(minutes: i32) -> Result<()> {
    if !DURATION_MINUTES.contains(&minutes) {
        return Err(Error::invalid(
            "durationMinutes",
            format!(
                "`durationMinutes` must be from {} to {}",
                DURATION_MINUTES.start(),
                DURATION_MINUTES.end()
            ),
        ));
    }
    Ok(())
}

/// The ledger rows of a booking becoming CONFIRMED (DOMAIN.md "Transactions"): BOOKING_FEE
/// and PLATFORM_FEE, and PROMOTER_COMMISSION when the booking has a promoter and the
/// commission is above 0, all PENDING. The commission is computed here, from the
/// assignment in force at `booking_time` ([`commissions::commission_for_booking`]), stored on
/// the booking, and its rate and tier recorded on the transaction. Runs after the promoter's
/// row lock is held, so TIERED month counts of concurrent confirmations are serialised.
pub(super) async fn confirm_ledger(
    txn: &impl ConnectionTrait,
    booking: &mut bookings::Model,
    venue: &venues::Model,
    now: DateTime<Utc>,
) -> Result<Option<Commission>> {
    let commission = commissions::commission_for_booking(txn, booking, venue).await?;
    let amount = commission.as_ref().map_or(0, |c| c.amount);
    if amount > 0 {
        bookings::Entity::update_many()
            .col_expr(bookings::Column::PromoterCommission, Expr::value(amount))
            .filter(bookings::Column::Id.eq(booking.id))
            .exec(txn)
            .await?;
        booking.promoter_commission = amount;
    }
    let short = &booking.id.simple().to_string()[..8];
    let tz: Tz = venue.timezone.parse().unwrap_or(chrono_tz::UTC);
    let when = booking
        .booking_time
        .with_timezone(&tz)
        .format("%Y-%m-%d %H:%M");
    let row = |kind: TransactionType,
               amount: i64,
               promoter_id: Option<Uuid>,
               description: String,
               commission: Option<&Commission>| {
        let mut row = ledger_row(booking.id, venue, kind, amount, description, now);
        row.promoter_id = Set(promoter_id);
        row.commission_rate = Set(commission.and_then(|c| recordable_rate(c.rate)));
        row.commission_amount = Set(commission.map(|_| amount));
        row.commission_tier = Set(commission.map(|c| c.tier));
        row
    };
    let mut rows = vec![
        row(
            TransactionType::BookingFee,
            booking.base_fee,
            None,
            format!(
                "Booking fee, booking {short} ({} diners, {when})",
                booking.diners
            ),
            None,
        ),
        row(
            TransactionType::PlatformFee,
            booking.platform_fee,
            None,
            format!("Platform fee, booking {short}"),
            None,
        ),
    ];
    if let (Some(promoter), Some(c)) = (booking.promoter_id, &commission)
        && amount > 0
    {
        rows.push(row(
            TransactionType::PromoterCommission,
            amount,
            Some(promoter),
            format!("Commission ({}, {} tier), booking {short}", c.model, c.tier),
            Some(c),
        ));
    }
    transactions::Entity::insert_many(rows)
        .exec_without_returning(txn)
        .await?;
    Ok(commission)
}

/// A new PENDING ledger row of a booking, in the venue's currency, with no promoter,
/// commission details or links; callers set what their row needs.
pub(super) fn ledger_row(
    booking: Uuid,
    venue: &venues::Model,
    kind: TransactionType,
    amount: i64,
    description: String,
    now: DateTime<Utc>,
) -> transactions::ActiveModel {
    transactions::ActiveModel {
        id: Set(Uuid::new_v4()),
        booking_id: Set(Some(booking)),
        promoter_id: Set(None),
        venue_id: Set(venue.id),
        r#type: Set(kind),
        amount: Set(amount),
        currency: Set(venue.currency.clone()),
        description: Set(description),
        commission_rate: Set(None),
        commission_amount: Set(None),
        commission_tier: Set(None),
        status: Set(TransactionStatus::Pending),
        processed_at: Set(None),
        settled_at: Set(None),
        external_transaction_id: Set(None),
        payout_id: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        reverses_transaction_id: Set(None),
        incentive_id: Set(None),
    }
}

/// The rate as `transactions.commission_rate` can hold it: that column is the data model's
/// DECIMAL(5,4) (at most 9.9999), made for percentages. Every percent rate fits; a PER_COVER
/// or FLAT_RATE amount of 10.00 or more does not, and is then left NULL on the transaction
/// (its amount is the commission itself) while the booking's history row records the full
/// rate, model and tier.
fn recordable_rate(rate: i64) -> Option<i64> {
    (rate.abs() <= 99_999).then_some(rate)
}

/// Writes a booking's history row: who did it and in which role.
#[allow(clippy::too_many_arguments)]
pub(super) async fn history(
    txn: &impl ConnectionTrait,
    actor: &Actor,
    booking: &bookings::Model,
    action: BookingAction,
    previous: Option<serde_json::Value>,
    new: serde_json::Value,
    reason: Option<String>,
    metadata: Option<serde_json::Value>,
    now: DateTime<Utc>,
) -> Result<()> {
    booking_history::Entity::insert(booking_history::ActiveModel {
        id: Set(Uuid::new_v4()),
        booking_id: Set(booking.id),
        action: Set(action.as_str().to_owned()),
        previous_value: Set(previous),
        new_value: Set(Some(new)),
        reason: Set(reason),
        performed_by_id: Set(Some(actor.user_id)),
        performed_by_name: Set(actor.name.clone()),
        performed_by_role: Set(role_name(actor, booking.venue_id).to_owned()),
        timestamp: Set(now),
        metadata: Set(metadata),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// The role a history row records: the global ADMIN role, else the caller's role at the
/// venue.
fn role_name(actor: &Actor, venue: Uuid) -> &'static str {
    if actor.is_admin() {
        return "ADMIN";
    }
    actor.level_at(venue).unwrap_or(Level::Viewer).as_str()
}

/// The commission as history records it.
pub(super) fn commission_json(c: &Commission) -> serde_json::Value {
    json!({
        "promoter_commission": cents(c.amount).to_string(),
        "commission_model": c.model,
        "commission_rate": rate(c.rate).to_string(),
        "commission_tier": c.tier,
        "assignment_id": c.assignment_id,
        "rate_id": c.rate_id,
        "note": c.ineligible_reason,
    })
}
