//! Writing a venue's prices (DOMAIN.md "Pricing a booking"; reading them is
//! [`crate::venues`], applying them to a booking [`crate::pricing`]).
//!
//! Rules: setting prices needs [`Capability::Administer`] (venue ADMIN or OWNER) at the
//! venue. Pricing history is kept, never overwritten: setting prices closes the row in force
//! (`effective_to = now`) and inserts a new active row from `now`. Rows scheduled for a
//! later start (none can be made through the API) are left as they are.

use prima_entity::{venue_pricing, venues};
use rust_decimal::Decimal;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, IntoActiveModel, QueryFilter,
    Set, TransactionTrait,
};
use uuid::Uuid;

use crate::access::{Actor, Capability};
use crate::error::{Error, Result};
use crate::time::now;
use crate::validate::{MAX_PRICE_CENTS, fraction_units, money_units};
use crate::venues::lock_venue;

/// Largest party a venue may accept (DOMAIN.md: `1 <= diners <= 50`).
pub const MAX_PARTY_SIZE: i32 = 50;

/// New prices for a venue. Money in the venue's currency (whole cents); fractions from 0 to
/// 1 with at most 4 decimal places (`0.1` = 10 %).
#[derive(Debug, Clone)]
pub struct NewPricing {
    /// Non-prime: price per diner.
    pub non_prime_per_diner: Decimal,
    /// Non-prime: platform fee, a fraction of the base fee.
    pub non_prime_platform_fee_percent: Decimal,
    /// Prime: price for the first two diners.
    pub prime_base_for_2: Decimal,
    /// Prime: price of each diner beyond two.
    pub prime_additional_per_person: Decimal,
    /// Prime: platform fee, a fraction of the base fee.
    pub prime_platform_fee_percent: Decimal,
    /// The least a booking's base fee can be.
    pub minimum_booking_amount: Decimal,
    /// Smallest party accepted (at least 1).
    pub minimum_party_size: i32,
    /// Largest party accepted (at most 50).
    pub maximum_party_size: i32,
    /// Discount for bookings made at least 7 days ahead.
    pub early_bird_discount_percent: Option<Decimal>,
    /// Discount for guests with a completed booking at the venue.
    pub repeat_customer_discount_percent: Option<Decimal>,
    /// Discount for parties of 8 or more.
    pub group_discount_percent: Option<Decimal>,
}

/// The outcome of a pricing change.
#[derive(Debug, Clone)]
pub struct PricingChange {
    /// The venue.
    pub venue: venues::Model,
    /// The row that was in force until now, closed; none when the venue had no pricing.
    pub closed: Option<venue_pricing::Model>,
    /// The new row, in force from now.
    pub pricing: venue_pricing::Model,
}

struct PricingUnits {
    non_prime_per_diner: i64,
    non_prime_platform_fee_percent: i64,
    prime_base_for_2: i64,
    prime_additional_per_person: i64,
    prime_platform_fee_percent: i64,
    minimum_booking_amount: i64,
    early_bird: Option<i64>,
    repeat_customer: Option<i64>,
    group: Option<i64>,
}

fn validate_pricing(p: &NewPricing) -> Result<PricingUnits> {
    let money = |field, value| money_units(field, value, MAX_PRICE_CENTS);
    let units = PricingUnits {
        non_prime_per_diner: money("nonPrimePerDiner", p.non_prime_per_diner)?,
        non_prime_platform_fee_percent: fraction_units(
            "nonPrimePlatformFeePercent",
            p.non_prime_platform_fee_percent,
        )?,
        prime_base_for_2: money("primeBaseFor2", p.prime_base_for_2)?,
        prime_additional_per_person: money(
            "primeAdditionalPerPerson",
            p.prime_additional_per_person,
        )?,
        prime_platform_fee_percent: fraction_units(
            "primePlatformFeePercent",
            p.prime_platform_fee_percent,
        )?,
        minimum_booking_amount: money("minimumBookingAmount", p.minimum_booking_amount)?,
        early_bird: p
            .early_bird_discount_percent
            .map(|v| fraction_units("earlyBirdDiscountPercent", v))
            .transpose()?,
        repeat_customer: p
            .repeat_customer_discount_percent
            .map(|v| fraction_units("repeatCustomerDiscountPercent", v))
            .transpose()?,
        group: p
            .group_discount_percent
            .map(|v| fraction_units("groupDiscountPercent", v))
            .transpose()?,
    };
    if !(1..=MAX_PARTY_SIZE).contains(&p.minimum_party_size) {
        return Err(Error::invalid(
            "minimumPartySize",
            format!("`minimumPartySize` must be from 1 to {MAX_PARTY_SIZE}"),
        ));
    }
    if !(1..=MAX_PARTY_SIZE).contains(&p.maximum_party_size) {
        return Err(Error::invalid(
            "maximumPartySize",
            format!("`maximumPartySize` must be from 1 to {MAX_PARTY_SIZE}"),
        ));
    }
    if p.minimum_party_size > p.maximum_party_size {
        return Err(Error::invalid(
            "maximumPartySize",
            "`maximumPartySize` cannot be smaller than `minimumPartySize`",
        ));
    }
    Ok(units)
}

/// Sets a venue's prices from now on (venue ADMIN or OWNER): closes the row in force
/// (`effective_to = now`) and inserts a new active row from now. Existing bookings keep the
/// prices they were made with.
#[tracing::instrument(skip_all, fields(venue = %venue_id))]
pub async fn set_pricing(
    db: &DatabaseConnection,
    actor: &Actor,
    venue_id: Uuid,
    new: NewPricing,
) -> Result<PricingChange> {
    let units = validate_pricing(&new)?;
    actor.require(venue_id, Capability::Administer)?;

    crate::db::retry_transient("setVenuePricing", || async move {
        let txn = db.begin().await?;
        // One pricing change per venue at a time: two concurrent ones would both close the same
        // row and leave two open rows.
        lock_venue(&txn, venue_id).await?;
        let at = now();
        let in_force = venue_pricing::Entity::find()
            .filter(venue_pricing::Column::VenueId.eq(venue_id))
            .filter(crate::venues::pricing_in_force(at))
            .all(&txn)
            .await?;
        let mut closed = None;
        for row in in_force {
            if row.effective_from >= at {
                return Err(Error::Conflict(
                    "the venue's pricing changed a moment ago; try again".into(),
                ));
            }
            let mut active = row.into_active_model();
            active.effective_to = Set(Some(at));
            active.updated_at = Set(at);
            closed = Some(active.update(&txn).await?);
        }
        let pricing = venue_pricing::ActiveModel {
            id: Set(Uuid::new_v4()),
            venue_id: Set(venue_id),
            non_prime_per_diner: Set(units.non_prime_per_diner),
            non_prime_platform_fee_percent: Set(units.non_prime_platform_fee_percent),
            prime_base_for_2: Set(units.prime_base_for_2),
            prime_additional_per_person: Set(units.prime_additional_per_person),
            prime_platform_fee_percent: Set(units.prime_platform_fee_percent),
            minimum_booking_amount: Set(units.minimum_booking_amount),
            minimum_party_size: Set(new.minimum_party_size),
            maximum_party_size: Set(new.maximum_party_size),
            early_bird_discount_percent: Set(units.early_bird),
            repeat_customer_discount_percent: Set(units.repeat_customer),
            group_discount_percent: Set(units.group),
            effective_from: Set(at),
            effective_to: Set(None),
            is_active: Set(true),
            updated_by: Set(Some(actor.user_id)),
            created_at: Set(at),
            updated_at: Set(at),
        }
        .insert(&txn)
        .await?;
        let venue = venues::Entity::find_by_id(venue_id)
            .one(&txn)
            .await?
            .ok_or(Error::NotFound { what: "venue" })?;
        txn.commit().await?;
        Ok(PricingChange {
            venue,
            closed,
            pricing,
        })
    })
    .await
}

#[cfg(test)]
pub(crate) mod tests {
    use prima_entity::enums::UserRole;
    use rust_decimal_macros::dec;

    use super::*;
    use crate::access::Level;
    use crate::testing::fixtures::{actor, db, user, venue};

    /// A valid pricing input.
    pub(crate) fn pricing() -> NewPricing {
        NewPricing {
            non_prime_per_diner: dec!(25.00),
            non_prime_platform_fee_percent: dec!(0.1),
            prime_base_for_2: dec!(120),
            prime_additional_per_person: dec!(50.5),
            prime_platform_fee_percent: dec!(0.15),
            minimum_booking_amount: dec!(40),
            minimum_party_size: 1,
            maximum_party_size: 12,
            early_bird_discount_percent: Some(dec!(0.05)),
            repeat_customer_discount_percent: None,
            group_discount_percent: Some(dec!(0.1)),
        }
    }

    async fn pricing_rows(db: &crate::db::Db, venue: Uuid) -> Vec<venue_pricing::Model> {
        venue_pricing::Entity::find()
            .filter(venue_pricing::Column::VenueId.eq(venue))
            .all(&db.conn)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn setting_pricing_closes_the_row_in_force_and_keeps_it() {
        let db = db().await;
        let v = venue(&db).await;
        let owner = actor(user(&db).await, UserRole::Manager, &[(v, Level::Owner)]);
        let first = set_pricing(&db.conn, &owner, v, pricing()).await.unwrap();
        assert!(first.closed.is_none());
        assert_eq!(first.pricing.prime_additional_per_person, 5050);
        assert_eq!(first.pricing.prime_platform_fee_percent, 1500);

        let mut cheaper = pricing();
        cheaper.non_prime_per_diner = dec!(20);
        let second = set_pricing(&db.conn, &owner, v, cheaper).await.unwrap();
        let closed = second.closed.unwrap();
        assert_eq!(closed.id, first.pricing.id);
        assert_eq!(closed.effective_to, Some(second.pricing.effective_from));
        assert_eq!(second.pricing.effective_to, None);
        assert_eq!(second.pricing.non_prime_per_diner, 2000);

        let rows = pricing_rows(&db, v).await;
        assert_eq!(rows.len(), 2, "history is kept");
        let current = crate::venues::pricing_at(&db.conn, &owner, &[v], now())
            .await
            .unwrap();
        assert_eq!(current[&v].id, second.pricing.id);
    }

    /// Makes a valid pricing input invalid in one way.
    type Spoil = fn(&mut NewPricing);

    #[tokio::test]
    async fn bad_prices_and_party_sizes_are_refused_and_nothing_is_written() {
        let db = db().await;
        let v = venue(&db).await;
        let owner = actor(user(&db).await, UserRole::Manager, &[(v, Level::Owner)]);
        let cases: [(&str, Spoil); 6] = [
            ("minimumPartySize", |p| p.minimum_party_size = 0),
            ("maximumPartySize", |p| p.maximum_party_size = 51),
            ("maximumPartySize", |p| {
                p.minimum_party_size = 6;
                p.maximum_party_size = 4;
            }),
            ("nonPrimePerDiner", |p| p.non_prime_per_diner = dec!(-1)),
            ("primeBaseFor2", |p| p.prime_base_for_2 = dec!(10.005)),
            ("groupDiscountPercent", |p| {
                p.group_discount_percent = Some(dec!(1.5))
            }),
        ];
        for (field, spoil) in cases {
            let mut input = pricing();
            spoil(&mut input);
            let err = set_pricing(&db.conn, &owner, v, input).await.unwrap_err();
            assert!(
                matches!(&err, Error::Invalid { field: f, .. } if f == field),
                "{field}: {err:?}"
            );
        }
        assert!(pricing_rows(&db, v).await.is_empty());
    }
}
