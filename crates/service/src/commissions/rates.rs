//! Writing commission rates and assigning them to promoters (DOMAIN.md "Commissions").
//!
//! Rules:
//! - Creating and deactivating a rate needs [`Capability::Administer`] (venue ADMIN or
//!   OWNER); assigning one needs [`Capability::Manage`] (MANAGER or above).
//! - A rate's `value` is never negative. For PERCENT_OF_SPEND and TIERED it is a fraction of
//!   the base fee, so at most 1; for PER_COVER and FLAT_RATE an amount. Only TIERED rates
//!   have `minMonthlyBookings` (their rung on the ladder), and every TIERED rate has one.
//! - Deactivating a rate ends it (`effective_to = now` when still open) and stops new
//!   assignments to it. Assignments already made keep running, with the rate they copied,
//!   until the promoter is assigned another rate.
//! - A promoter has at most one open assignment: assigning closes the open one
//!   (`effective_to = now`) and opens a new one from now, copying the rate's tier, model and
//!   value, in one transaction under the promoter's row lock. The rate must be an active
//!   rate of the promoter's venue.

use chrono::{DateTime, Utc};
use prima_entity::enums::{CommissionModel, PromoterTier};
use prima_entity::{commission_assignments, commission_rates, promoters};
use rust_decimal::Decimal;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, EntityTrait, IntoActiveModel,
    QueryFilter, Set, TransactionTrait,
};
use uuid::Uuid;

use crate::access::{Actor, Capability, not_found_as};
use crate::error::{Error, Result};
use crate::money::{self, RATE_SCALE};
use crate::time::now;
use crate::validate::{MAX_PRICE_CENTS, fraction_units, money_units, optional_text};

/// The largest `value` a DECIMAL(10,4) column holds, in ten-thousandths (999,999.9999).
const MAX_RATE_UNITS: i64 = 9_999_999_999;

/// A commission rate to create at a venue.
#[derive(Debug, Clone)]
pub struct NewRate {
    /// The venue that pays the commission.
    pub venue_id: Uuid,
    /// The promoter tier the rate is for.
    pub tier: PromoterTier,
    /// How the commission is computed.
    pub model: CommissionModel,
    /// A fraction of the base fee (PERCENT_OF_SPEND, TIERED) or an amount per diner
    /// (PER_COVER) or per booking (FLAT_RATE); at most 4 decimal places.
    pub value: Decimal,
    /// No commission below this base fee; zero when none.
    pub minimum_booking: Option<Decimal>,
    /// Cap on one booking's commission.
    pub maximum_payout: Option<Decimal>,
    /// TIERED only: the monthly bookings from which this rung applies.
    pub min_monthly_bookings: Option<i32>,
    /// Eligibility: least conversion rate, a fraction.
    pub min_conversion_rate: Option<Decimal>,
    /// Eligibility: highest cancel rate, a fraction.
    pub max_cancel_rate: Option<Decimal>,
    /// Start of validity; now when none.
    pub effective_from: Option<DateTime<Utc>>,
}

fn rate_value(model: CommissionModel, value: Decimal) -> Result<i64> {
    if value.is_sign_negative() && !value.is_zero() {
        return Err(Error::invalid("value", "`value` cannot be negative"));
    }
    let fraction = matches!(
        model,
        CommissionModel::PercentOfSpend | CommissionModel::Tiered
    );
    if fraction && value > Decimal::ONE {
        return Err(Error::invalid(
            "value",
            format!("for {model} `value` is a fraction of the base fee from 0 to 1 (0.1 = 10 %)"),
        ));
    }
    let units = money::to_units(value, RATE_SCALE)
        .ok_or_else(|| Error::invalid("value", "`value` can have at most 4 decimal places"))?;
    if units > MAX_RATE_UNITS {
        return Err(Error::invalid(
            "value",
            "`value` must be at most 999999.9999",
        ));
    }
    Ok(units)
}

/// Creates a commission rate (venue ADMIN or OWNER).
#[tracing::instrument(skip_all, fields(venue = %new.venue_id))]
pub async fn create_rate(
    db: &DatabaseConnection,
    actor: &Actor,
    new: NewRate,
) -> Result<commission_rates::Model> {
    let value = rate_value(new.model, new.value)?;
    let minimum_booking = new
        .minimum_booking
        .map(|v| money_units("minimumBooking", v, MAX_PRICE_CENTS))
        .transpose()?
        .unwrap_or(0);
    let maximum_payout = new
        .maximum_payout
        .map(|v| money_units("maximumPayout", v, MAX_PRICE_CENTS))
        .transpose()?;
    match (new.model, new.min_monthly_bookings) {
        (CommissionModel::Tiered, None) => {
            return Err(Error::invalid(
                "minMonthlyBookings",
                "a TIERED rate needs `minMonthlyBookings`: the monthly bookings from which it applies",
            ));
        }
        (CommissionModel::Tiered, Some(n)) if n < 0 => {
            return Err(Error::invalid(
                "minMonthlyBookings",
                "`minMonthlyBookings` cannot be negative",
            ));
        }
        (CommissionModel::Tiered, _) | (_, None) => {}
        (model, Some(_)) => {
            return Err(Error::invalid(
                "minMonthlyBookings",
                format!("only TIERED rates have `minMonthlyBookings`, not {model}"),
            ));
        }
    }
    let min_conversion_rate = new
        .min_conversion_rate
        .map(|v| fraction_units("minConversionRate", v))
        .transpose()?;
    let max_cancel_rate = new
        .max_cancel_rate
        .map(|v| fraction_units("maxCancelRate", v))
        .transpose()?;
    actor.require(new.venue_id, Capability::Administer)?;

    let at = now();
    let effective_from = new.effective_from.map(crate::time::truncate).unwrap_or(at);
    crate::db::retry_transient("createCommissionRate", || async move {
        let txn = db.begin().await?;
        crate::venues::require_exists(&txn, new.venue_id).await?;
        let rate = commission_rates::ActiveModel {
            id: Set(Uuid::new_v4()),
            venue_id: Set(new.venue_id),
            tier: Set(new.tier),
            model: Set(new.model),
            value: Set(value),
            minimum_booking: Set(minimum_booking),
            maximum_payout: Set(maximum_payout),
            min_monthly_bookings: Set(new.min_monthly_bookings),
            min_conversion_rate: Set(min_conversion_rate),
            max_cancel_rate: Set(max_cancel_rate),
            effective_from: Set(effective_from),
            effective_to: Set(None),
            is_active: Set(true),
            created_by: Set(actor.user_id),
            created_at: Set(at),
            updated_at: Set(at),
        }
        .insert(&txn)
        .await
        .map_err(|err| match Error::from(err) {
            Error::Conflict(_) => Error::Conflict(
                "an active rate of this venue, tier and model (and rung, for TIERED) already starts \
                 at that time"
                    .into(),
            ),
            other => other,
        })?;
        txn.commit().await?;
        Ok(rate)
    })
    .await
}

/// Deactivates a commission rate (venue ADMIN or OWNER): `is_active = false`, and
/// `effective_to = now` when it is still open. CONFLICT when it is already inactive.
#[tracing::instrument(skip_all, fields(rate = %id))]
pub async fn deactivate_rate(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
) -> Result<commission_rates::Model> {
    let rate = commission_rates::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(Error::NotFound {
            what: "commission rate",
        })?;
    actor
        .require(rate.venue_id, Capability::Administer)
        .map_err(not_found_as("commission rate"))?;

    let at = now();
    crate::db::retry_transient("deactivateCommissionRate", || async move {
        let txn = db.begin().await?;
        let mut update = commission_rates::Entity::update_many()
            .col_expr(commission_rates::Column::IsActive, Expr::value(false))
            .col_expr(commission_rates::Column::UpdatedAt, Expr::value(at))
            .filter(commission_rates::Column::Id.eq(id))
            .filter(commission_rates::Column::IsActive.eq(true));
        // A rate that started ends now; one that has not started yet never applies, and keeps
        // its dates (an end before its start would be meaningless).
        let open = rate.effective_to.is_none_or(|to| to > at);
        if open && rate.effective_from < at {
            update = update.col_expr(commission_rates::Column::EffectiveTo, Expr::value(at));
        }
        let changed = update.exec(&txn).await?;
        if changed.rows_affected == 0 {
            return Err(Error::Conflict(
                "the commission rate is already inactive".into(),
            ));
        }
        let rate = commission_rates::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or(Error::NotFound {
                what: "commission rate",
            })?;
        txn.commit().await?;
        Ok(rate)
    })
    .await
}

/// The outcome of an assignment.
#[derive(Debug, Clone)]
pub struct Assignment {
    /// The new assignment, open from now.
    pub assignment: commission_assignments::Model,
    /// The assignment it replaced, now closed; none when the promoter had none open.
    pub closed: Option<commission_assignments::Model>,
    /// The promoter.
    pub promoter: promoters::Model,
}

/// Assigns a commission rate to a promoter from now (MANAGER or above at the promoter's
/// venue): closes the promoter's open assignment and opens one copying the rate's tier,
/// model and value. The rate must be an active rate of the promoter's venue.
#[tracing::instrument(skip_all, fields(promoter = %promoter_id, rate = %rate_id))]
pub async fn assign_rate(
    db: &DatabaseConnection,
    actor: &Actor,
    promoter_id: Uuid,
    rate_id: Uuid,
    notes: Option<String>,
) -> Result<Assignment> {
    let notes = optional_text("notes", notes.as_deref(), 5000)?;
    let promoter = promoters::Entity::find_by_id(promoter_id)
        .one(db)
        .await?
        .ok_or(Error::NotFound { what: "promoter" })?;
    actor
        .require(promoter.venue_id, Capability::Manage)
        .map_err(not_found_as("promoter"))?;

    let (promoter, notes) = (&promoter, &notes);
    crate::db::retry_transient("assignCommissionRate", || async move {
        let txn = db.begin().await?;
        // One assignment change per promoter at a time (and SQLite's write lock up front).
        promoters::Entity::update_many()
            .col_expr(
                promoters::Column::UpdatedAt,
                Expr::col(promoters::Column::UpdatedAt),
            )
            .filter(promoters::Column::Id.eq(promoter_id))
            .exec(&txn)
            .await?;
        // Another venue's rate gets the same answer as a missing one: it reveals nothing.
        let rate = commission_rates::Entity::find_by_id(rate_id)
            .one(&txn)
            .await?
            .filter(|rate| rate.venue_id == promoter.venue_id)
            .ok_or_else(|| {
                Error::invalid(
                    "commissionRateId",
                    "no commission rate of the promoter's venue has this id",
                )
            })?;
        if !rate.is_active {
            return Err(Error::invalid(
                "commissionRateId",
                "this commission rate is inactive: assign an active one",
            ));
        }
        let at = now();
        let open = commission_assignments::Entity::find()
            .filter(commission_assignments::Column::PromoterId.eq(promoter_id))
            .filter(
                Condition::any()
                    .add(commission_assignments::Column::EffectiveTo.is_null())
                    .add(commission_assignments::Column::EffectiveTo.gt(at)),
            )
            .all(&txn)
            .await?;
        let mut closed = None;
        for row in open {
            if row.effective_from >= at {
                return Err(Error::Conflict(
                    "the promoter's commission assignment changed a moment ago, or starts later; \
                     try again"
                        .into(),
                ));
            }
            let mut active = row.into_active_model();
            active.effective_to = Set(Some(at));
            closed = Some(active.update(&txn).await?);
        }
        let assignment = commission_assignments::ActiveModel {
            id: Set(Uuid::new_v4()),
            promoter_id: Set(promoter_id),
            commission_rate_id: Set(rate.id),
            tier: Set(rate.tier),
            model: Set(rate.model),
            rate: Set(rate.value),
            effective_from: Set(at),
            effective_to: Set(None),
            assigned_by: Set(actor.user_id),
            assigned_at: Set(at),
            notes: Set(notes.clone()),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        Ok(Assignment {
            assignment,
            closed,
            promoter: promoter.clone(),
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use prima_entity::enums::UserRole;
    use rust_decimal_macros::dec;
    use sea_orm::PaginatorTrait;

    use super::*;
    use crate::access::Level;
    use crate::testing::fixtures::{actor, assignment, db, promoter, rate, t0, user, venue};

    fn new_rate(venue_id: Uuid, value: Decimal) -> NewRate {
        NewRate {
            venue_id,
            tier: PromoterTier::Standard,
            model: CommissionModel::PercentOfSpend,
            value,
            minimum_booking: Some(dec!(20)),
            maximum_payout: Some(dec!(100)),
            min_monthly_bookings: None,
            min_conversion_rate: Some(dec!(0.5)),
            max_cancel_rate: None,
            effective_from: None,
        }
    }

    #[tokio::test]
    async fn a_venue_admin_creates_a_rate_in_stored_units() {
        let db = db().await;
        let v = venue(&db).await;
        let admin = actor(user(&db).await, UserRole::Manager, &[(v, Level::Admin)]);
        let r = create_rate(&db.conn, &admin, new_rate(v, dec!(0.125)))
            .await
            .unwrap();
        assert_eq!(r.value, 1250);
        assert_eq!(r.minimum_booking, 2000);
        assert_eq!(r.maximum_payout, Some(10000));
        assert_eq!(r.min_conversion_rate, Some(5000));
        assert!(r.is_active);
        assert_eq!(r.created_by, admin.user_id);
    }

    #[tokio::test]
    async fn a_negative_or_oversized_value_names_the_field_and_writes_nothing() {
        let db = db().await;
        let v = venue(&db).await;
        let admin = actor(user(&db).await, UserRole::Manager, &[(v, Level::Owner)]);
        for bad in [dec!(-0.01), dec!(1.5), dec!(0.00001)] {
            let err = create_rate(&db.conn, &admin, new_rate(v, bad))
                .await
                .unwrap_err();
            assert!(
                matches!(&err, Error::Invalid { field, .. } if field == "value"),
                "{bad}: {err:?}"
            );
        }
        let mut tiered = new_rate(v, dec!(0.1));
        tiered.model = CommissionModel::Tiered;
        let err = create_rate(&db.conn, &admin, tiered).await.unwrap_err();
        assert!(matches!(&err, Error::Invalid { field, .. } if field == "minMonthlyBookings"));
        assert_eq!(
            commission_rates::Entity::find()
                .count(&db.conn)
                .await
                .unwrap(),
            0
        );
        // A flat rate is an amount, not a fraction.
        let mut flat = new_rate(v, dec!(15));
        flat.model = CommissionModel::FlatRate;
        assert_eq!(
            create_rate(&db.conn, &admin, flat).await.unwrap().value,
            150000
        );
    }

    #[tokio::test]
    async fn a_manager_may_assign_but_not_create_or_deactivate_rates() {
        let db = db().await;
        let v = venue(&db).await;
        let by = user(&db).await;
        let manager = actor(user(&db).await, UserRole::Manager, &[(v, Level::Manager)]);
        let err = create_rate(&db.conn, &manager, new_rate(v, dec!(0.1)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "FORBIDDEN");
        let r = rate(&db, v, by, true).await;
        let err = deactivate_rate(&db.conn, &manager, r).await.unwrap_err();
        assert_eq!(err.code(), "FORBIDDEN");
        let p = promoter(&db, v, "Adams").await;
        assign_rate(&db.conn, &manager, p, r, None).await.unwrap();
    }

    #[tokio::test]
    async fn deactivating_ends_an_open_rate_once() {
        let db = db().await;
        let v = venue(&db).await;
        let owner = actor(user(&db).await, UserRole::Manager, &[(v, Level::Owner)]);
        let r = rate(&db, v, owner.user_id, true).await;
        let done = deactivate_rate(&db.conn, &owner, r).await.unwrap();
        assert!(!done.is_active);
        assert!(done.effective_to.is_some());
        let err = deactivate_rate(&db.conn, &owner, r).await.unwrap_err();
        assert_eq!(err.code(), "CONFLICT");
    }

    #[tokio::test]
    async fn assigning_closes_the_open_assignment_and_copies_the_rate() {
        let db = db().await;
        let v = venue(&db).await;
        let manager = actor(user(&db).await, UserRole::Manager, &[(v, Level::Manager)]);
        let by = user(&db).await;
        let p = promoter(&db, v, "Adams").await;
        let old_rate = rate(&db, v, by, true).await;
        let old = assignment(&db, p, old_rate, by, t0() - Duration::days(30)).await;
        let admin = actor(by, UserRole::Admin, &[]);
        let mut vip = new_rate(v, dec!(2.5));
        vip.model = CommissionModel::PerCover;
        vip.tier = PromoterTier::Vip;
        let new_rate = create_rate(&db.conn, &admin, vip).await.unwrap();

        let done = assign_rate(&db.conn, &manager, p, new_rate.id, Some("promoted".into()))
            .await
            .unwrap();
        let closed = done.closed.unwrap();
        assert_eq!(closed.id, old);
        assert_eq!(closed.effective_to, Some(done.assignment.effective_from));
        assert_eq!(done.assignment.effective_to, None);
        assert_eq!(done.assignment.rate, 25000);
        assert_eq!(done.assignment.model, CommissionModel::PerCover);
        assert_eq!(done.assignment.tier, PromoterTier::Vip);
        let open = commission_assignments::Entity::find()
            .filter(commission_assignments::Column::PromoterId.eq(p))
            .filter(commission_assignments::Column::EffectiveTo.is_null())
            .count(&db.conn)
            .await
            .unwrap();
        assert_eq!(open, 1, "one open assignment at a time");
    }

    #[tokio::test]
    async fn a_rate_of_another_venue_or_an_inactive_rate_cannot_be_assigned() {
        let db = db().await;
        let (a, b) = (venue(&db).await, venue(&db).await);
        let by = user(&db).await;
        let admin = actor(by, UserRole::Admin, &[]);
        let p = promoter(&db, a, "Adams").await;
        let elsewhere = rate(&db, b, by, true).await;
        let inactive = rate(&db, a, by, false).await;
        for r in [elsewhere, inactive] {
            let err = assign_rate(&db.conn, &admin, p, r, None).await.unwrap_err();
            assert!(
                matches!(&err, Error::Invalid { field, .. } if field == "commissionRateId"),
                "{err:?}"
            );
        }
        assert_eq!(
            commission_assignments::Entity::find()
                .count(&db.conn)
                .await
                .unwrap(),
            0
        );
    }
}
