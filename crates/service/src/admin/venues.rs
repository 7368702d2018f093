//! Writing venues, their pricing and their access grants.
//!
//! Rules (DOMAIN.md "Access", "Pricing a booking"):
//! - Only a global ADMIN creates venues. Everything else here needs
//!   [`Capability::Administer`] (venue ADMIN or OWNER) at the venue.
//! - Pricing history is kept, never overwritten: setting prices closes the row in force
//!   (`effective_to = now`) and inserts a new active row from `now`. Rows scheduled for a
//!   later start (none can be made through the API) are left as they are.
//! - A grant gives a user one role at a venue (one row per user and venue). A caller can
//!   grant, change or revoke only roles up to their own: a venue ADMIN cannot make an OWNER
//!   nor touch an OWNER's grant. Re-granting a revoked row reactivates it. A venue never
//!   loses its last OWNER (CONFLICT).

use prima_entity::enums::{VenueRole, VenueStatus, VenueTier, VenueType};
use prima_entity::{user_venue_access, users, venue_pricing, venues};
use rust_decimal::Decimal;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, IntoActiveModel,
    PaginatorTrait, QueryFilter, Set, TransactionTrait,
};
use uuid::Uuid;

use crate::access::{Actor, Capability, Level};
use crate::error::{Error, Result};
use crate::time::now;
use crate::validate::{
    MAX_PRICE_CENTS, fraction_units, money_units, optional_email, optional_text, required_text,
};
use crate::venues::lock_venue;

/// Largest party a venue may accept (DOMAIN.md: `1 <= diners <= 50`).
pub const MAX_PARTY_SIZE: i32 = 50;

/// A venue to create.
#[derive(Debug, Clone)]
pub struct NewVenue {
    /// Display name.
    pub name: String,
    /// Kind of venue.
    pub r#type: VenueType,
    /// Market tier.
    pub tier: VenueTier,
    /// Street and number.
    pub address_street: String,
    /// City.
    pub address_city: String,
    /// State or region.
    pub address_state: String,
    /// Postal code.
    pub address_zip: String,
    /// Country code, e.g. `US`.
    pub address_country: String,
    /// IANA time zone, e.g. `America/New_York`.
    pub timezone: String,
    /// ISO 4217 currency code: three capital letters.
    pub currency: String,
    /// Language code; `en` when none.
    pub language: Option<String>,
    /// Seated capacity (at least 1).
    pub capacity_seated: i32,
    /// Standing capacity.
    pub capacity_standing: Option<i32>,
    /// Capacity of private rooms.
    pub capacity_private: Option<i32>,
    /// Contact phone.
    pub contact_phone: Option<String>,
    /// Contact email.
    pub contact_email: Option<String>,
    /// Website.
    pub contact_website: Option<String>,
    /// Confirm new bookings at once (unless approval is required).
    pub auto_confirm_bookings: bool,
    /// New bookings wait for a manager's approval.
    pub require_approval: bool,
    /// Status; PENDING (onboarding, not live) when none.
    pub status: Option<VenueStatus>,
}

/// Changes to a venue: only the fields given change. For the optional columns, `Some(None)`
/// clears the value.
#[derive(Debug, Clone, Default)]
pub struct VenueChanges {
    /// New display name.
    pub name: Option<String>,
    /// New contact phone, or none.
    pub contact_phone: Option<Option<String>>,
    /// New contact email, or none.
    pub contact_email: Option<Option<String>>,
    /// New website, or none.
    pub contact_website: Option<Option<String>>,
    /// New seated capacity.
    pub capacity_seated: Option<i32>,
    /// New standing capacity, or none.
    pub capacity_standing: Option<Option<i32>>,
    /// New private capacity, or none.
    pub capacity_private: Option<Option<i32>>,
    /// Confirm new bookings at once.
    pub auto_confirm_bookings: Option<bool>,
    /// New bookings wait for approval.
    pub require_approval: Option<bool>,
    /// New status.
    pub status: Option<VenueStatus>,
}

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

/// A grant and the user it is for.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The access row.
    pub access: user_venue_access::Model,
    /// The user.
    pub user: users::Model,
}

fn timezone(value: &str) -> Result<String> {
    let value = value.trim();
    if value.len() > 50 || value.parse::<chrono_tz::Tz>().is_err() {
        return Err(Error::invalid(
            "timezone",
            format!("`{value}` is not an IANA time zone; use a name like America/New_York"),
        ));
    }
    Ok(value.to_owned())
}

fn currency(value: &str) -> Result<String> {
    let value = value.trim();
    if value.len() != 3 || !value.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(Error::invalid(
            "currency",
            "`currency` must be an ISO 4217 code of three capital letters, like USD",
        ));
    }
    Ok(value.to_owned())
}

fn capacity(field: &str, value: i32, least: i32) -> Result<i32> {
    if !(least..=1_000_000).contains(&value) {
        return Err(Error::invalid(
            field,
            format!("`{field}` must be a whole number from {least} to 1000000"),
        ));
    }
    Ok(value)
}

fn optional_capacity(field: &str, value: Option<i32>) -> Result<Option<i32>> {
    value.map(|v| capacity(field, v, 0)).transpose()
}

/// Creates a venue (global ADMIN only). The creator gets no grant: a global ADMIN already
/// acts on every venue; owners are granted with [`grant_access`].
#[tracing::instrument(skip_all)]
pub async fn create_venue(
    db: &DatabaseConnection,
    actor: &Actor,
    new: NewVenue,
) -> Result<venues::Model> {
    let name = required_text("name", &new.name, 255)?;
    let street = required_text("addressStreet", &new.address_street, 255)?;
    let city = required_text("addressCity", &new.address_city, 100)?;
    let state = required_text("addressState", &new.address_state, 50)?;
    let zip = required_text("addressZip", &new.address_zip, 20)?;
    let country = required_text("addressCountry", &new.address_country, 50)?;
    let timezone = timezone(&new.timezone)?;
    let currency = currency(&new.currency)?;
    let language = optional_text("language", new.language.as_deref(), 5)?.unwrap_or("en".into());
    let seated = capacity("capacitySeated", new.capacity_seated, 1)?;
    let standing = optional_capacity("capacityStanding", new.capacity_standing)?;
    let private = optional_capacity("capacityPrivate", new.capacity_private)?;
    let phone = optional_text("contactPhone", new.contact_phone.as_deref(), 20)?;
    let email = optional_email("contactEmail", new.contact_email.as_deref())?;
    let website = optional_text("contactWebsite", new.contact_website.as_deref(), 255)?;
    if !actor.is_admin() {
        return Err(Error::Forbidden(
            "only a PRIMA administrator can create venues".into(),
        ));
    }
    let at = now();
    let row = venues::ActiveModel {
        id: Set(Uuid::new_v4()),
        name: Set(name),
        r#type: Set(new.r#type),
        tier: Set(new.tier),
        address_street: Set(street),
        address_city: Set(city),
        address_state: Set(state),
        address_zip: Set(zip),
        address_country: Set(country),
        coordinates_lat: Set(None),
        coordinates_lng: Set(None),
        timezone: Set(timezone),
        contact_phone: Set(phone),
        contact_email: Set(email),
        contact_website: Set(website),
        capacity_seated: Set(seated),
        capacity_standing: Set(standing),
        capacity_private: Set(private),
        currency: Set(currency),
        language: Set(language),
        auto_confirm_bookings: Set(new.auto_confirm_bookings),
        require_approval: Set(new.require_approval),
        average_daily_bookings: Set(0),
        prime_ratio: Set(0),
        average_booking_value: Set(0),
        status: Set(new.status.unwrap_or(VenueStatus::Pending)),
        created_at: Set(at),
        updated_at: Set(at),
    };
    crate::db::retry_transient("createVenue", || {
        let row = row.clone();
        async move {
            let txn = db.begin().await?;
            let venue = row.insert(&txn).await?;
            txn.commit().await?;
            Ok(venue)
        }
    })
    .await
}

/// Changes a venue's name, contact, capacity, settings or status (venue ADMIN or OWNER);
/// only the fields given change.
#[tracing::instrument(skip_all, fields(venue = %venue_id))]
pub async fn update_venue(
    db: &DatabaseConnection,
    actor: &Actor,
    venue_id: Uuid,
    changes: VenueChanges,
) -> Result<venues::Model> {
    let name = changes
        .name
        .as_deref()
        .map(|n| required_text("name", n, 255))
        .transpose()?;
    let phone = changes
        .contact_phone
        .as_ref()
        .map(|p| optional_text("contactPhone", p.as_deref(), 20))
        .transpose()?;
    let email = changes
        .contact_email
        .as_ref()
        .map(|e| optional_email("contactEmail", e.as_deref()))
        .transpose()?;
    let website = changes
        .contact_website
        .as_ref()
        .map(|w| optional_text("contactWebsite", w.as_deref(), 255))
        .transpose()?;
    let seated = changes
        .capacity_seated
        .map(|c| capacity("capacitySeated", c, 1))
        .transpose()?;
    let standing = changes
        .capacity_standing
        .map(|c| optional_capacity("capacityStanding", c))
        .transpose()?;
    let private = changes
        .capacity_private
        .map(|c| optional_capacity("capacityPrivate", c))
        .transpose()?;
    actor.require(venue_id, Capability::Administer)?;

    let (name, phone, email, website) = (&name, &phone, &email, &website);
    crate::db::retry_transient("updateVenue", || async move {
        let txn = db.begin().await?;
        lock_venue(&txn, venue_id).await?;
        let venue = venues::Entity::find_by_id(venue_id)
            .one(&txn)
            .await?
            .ok_or(Error::NotFound { what: "venue" })?;
        let mut row = venue.into_active_model();
        if let Some(name) = name {
            row.name = Set(name.clone());
        }
        if let Some(phone) = phone {
            row.contact_phone = Set(phone.clone());
        }
        if let Some(email) = email {
            row.contact_email = Set(email.clone());
        }
        if let Some(website) = website {
            row.contact_website = Set(website.clone());
        }
        if let Some(seated) = seated {
            row.capacity_seated = Set(seated);
        }
        if let Some(standing) = standing {
            row.capacity_standing = Set(standing);
        }
        if let Some(private) = private {
            row.capacity_private = Set(private);
        }
        if let Some(auto) = changes.auto_confirm_bookings {
            row.auto_confirm_bookings = Set(auto);
        }
        if let Some(approval) = changes.require_approval {
            row.require_approval = Set(approval);
        }
        if let Some(status) = changes.status {
            row.status = Set(status);
        }
        row.updated_at = Set(now());
        let venue = row.update(&txn).await?;
        txn.commit().await?;
        Ok(venue)
    })
    .await
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

fn level_of_role(role: VenueRole) -> Level {
    match role {
        VenueRole::Owner => Level::Owner,
        VenueRole::Admin => Level::Admin,
        VenueRole::Manager => Level::Manager,
        VenueRole::Coordinator => Level::Coordinator,
    }
}

/// FORBIDDEN unless the caller's level at the venue is at least the role's.
fn require_at_least(actor: &Actor, venue_id: Uuid, role: VenueRole) -> Result<()> {
    let mine = actor.level_at(venue_id).unwrap_or(Level::Viewer);
    if mine < level_of_role(role) {
        return Err(Error::Forbidden(format!(
            "only a venue OWNER or a PRIMA administrator can grant, change or revoke the {role} role"
        )));
    }
    Ok(())
}

/// CONFLICT when removing `user_id`'s OWNER role would leave the venue without an owner.
async fn keep_an_owner(
    txn: &impl sea_orm::ConnectionTrait,
    venue_id: Uuid,
    user_id: Uuid,
) -> Result<()> {
    let other_owners = user_venue_access::Entity::find()
        .filter(user_venue_access::Column::VenueId.eq(venue_id))
        .filter(user_venue_access::Column::Role.eq(VenueRole::Owner))
        .filter(user_venue_access::Column::RevokedAt.is_null())
        .filter(user_venue_access::Column::UserId.ne(user_id))
        .count(txn)
        .await?;
    if other_owners == 0 {
        return Err(Error::Conflict(
            "this is the venue's last OWNER: grant OWNER to someone else first".into(),
        ));
    }
    Ok(())
}

/// Grants a user a role at a venue (venue ADMIN or OWNER, up to their own role). An existing
/// grant changes role; a revoked one is reactivated (one row per user and venue).
#[tracing::instrument(skip_all, fields(venue = %venue_id, user = %user_id))]
pub async fn grant_access(
    db: &DatabaseConnection,
    actor: &Actor,
    venue_id: Uuid,
    user_id: Uuid,
    role: VenueRole,
) -> Result<Grant> {
    actor.require(venue_id, Capability::Administer)?;
    require_at_least(actor, venue_id, role)?;

    crate::db::retry_transient("grantVenueAccess", || async move {
        let txn = db.begin().await?;
        // Grants of one venue change one at a time, so the last-owner rule holds under
        // concurrent calls.
        lock_venue(&txn, venue_id).await?;
        // Then the user's row: their grants at all venues change one at a time, so the cap
        // on venues per user holds under concurrent grants.
        let user = users::Entity::update_many()
            .col_expr(
                users::Column::UpdatedAt,
                sea_orm::sea_query::Expr::col(users::Column::UpdatedAt),
            )
            .filter(users::Column::Id.eq(user_id))
            .exec_with_returning(&txn)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::invalid("userId", format!("no user has the id {user_id}")))?;
        let at = now();
        let existing = user_venue_access::Entity::find()
            .filter(user_venue_access::Column::VenueId.eq(venue_id))
            .filter(user_venue_access::Column::UserId.eq(user_id))
            .one(&txn)
            .await?;
        if existing.as_ref().is_none_or(|row| row.revoked_at.is_some()) {
            let live = user_venue_access::Entity::find()
                .filter(user_venue_access::Column::UserId.eq(user_id))
                .filter(user_venue_access::Column::RevokedAt.is_null())
                .count(&txn)
                .await?;
            if live >= crate::users::MAX_VENUE_ROLES {
                return Err(Error::invalid(
                    "userId",
                    format!(
                        "this user already has access to {live} venues, the most one user can hold"
                    ),
                ));
            }
        }
        let access = match existing {
            Some(row) => {
                if row.revoked_at.is_none() {
                    // Changing a live grant: the caller must outrank the role it had too.
                    require_at_least(actor, venue_id, row.role)?;
                    if row.role == VenueRole::Owner && role != VenueRole::Owner {
                        keep_an_owner(&txn, venue_id, user_id).await?;
                    }
                }
                let mut active = row.into_active_model();
                active.role = Set(role);
                active.revoked_at = Set(None);
                active.granted_by = Set(Some(actor.user_id));
                active.granted_at = Set(at);
                active.update(&txn).await?
            }
            None => {
                user_venue_access::ActiveModel {
                    id: Set(Uuid::new_v4()),
                    user_id: Set(user_id),
                    venue_id: Set(venue_id),
                    role: Set(role),
                    granted_by: Set(Some(actor.user_id)),
                    granted_at: Set(at),
                    revoked_at: Set(None),
                }
                .insert(&txn)
                .await?
            }
        };
        txn.commit().await?;
        Ok(Grant { access, user })
    })
    .await
}

/// Revokes a user's role at a venue (venue ADMIN or OWNER, up to their own role): sets
/// `revoked_at`, keeping the row. The user loses access on their next request. Revoking the
/// venue's last OWNER is a CONFLICT.
#[tracing::instrument(skip_all, fields(venue = %venue_id, user = %user_id))]
pub async fn revoke_access(
    db: &DatabaseConnection,
    actor: &Actor,
    venue_id: Uuid,
    user_id: Uuid,
) -> Result<Grant> {
    actor.require(venue_id, Capability::Administer)?;

    crate::db::retry_transient("revokeVenueAccess", || async move {
        let txn = db.begin().await?;
        lock_venue(&txn, venue_id).await?;
        let row = user_venue_access::Entity::find()
            .filter(user_venue_access::Column::VenueId.eq(venue_id))
            .filter(user_venue_access::Column::UserId.eq(user_id))
            .filter(user_venue_access::Column::RevokedAt.is_null())
            .one(&txn)
            .await?
            .ok_or(Error::NotFound {
                what: "venue access",
            })?;
        require_at_least(actor, venue_id, row.role)?;
        if row.role == VenueRole::Owner {
            keep_an_owner(&txn, venue_id, user_id).await?;
        }
        let user = users::Entity::find_by_id(user_id)
            .one(&txn)
            .await?
            .ok_or(Error::NotFound { what: "user" })?;
        let mut active = row.into_active_model();
        active.revoked_at = Set(Some(now()));
        let access = active.update(&txn).await?;
        txn.commit().await?;
        Ok(Grant { access, user })
    })
    .await
}

#[cfg(test)]
mod tests {
    use prima_entity::enums::UserRole;
    use rust_decimal_macros::dec;

    use super::*;
    use crate::testing::fixtures::{actor, db, grant, user, venue};

    fn pricing() -> NewPricing {
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

    fn new_venue(timezone: &str) -> NewVenue {
        NewVenue {
            name: "Harbour Room".into(),
            r#type: VenueType::Restaurant,
            tier: VenueTier::HighEnd,
            address_street: "1 Quay St".into(),
            address_city: "Boston".into(),
            address_state: "MA".into(),
            address_zip: "02110".into(),
            address_country: "US".into(),
            timezone: timezone.into(),
            currency: "USD".into(),
            language: None,
            capacity_seated: 80,
            capacity_standing: None,
            capacity_private: Some(12),
            contact_phone: None,
            contact_email: Some("Host@Harbour.example".into()),
            contact_website: None,
            auto_confirm_bookings: true,
            require_approval: false,
            status: None,
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
    async fn a_global_admin_creates_a_pending_venue_and_nobody_else_can() {
        let db = db().await;
        let admin = actor(user(&db).await, UserRole::Admin, &[]);
        let venue = create_venue(&db.conn, &admin, new_venue("Europe/Paris"))
            .await
            .unwrap();
        assert_eq!(venue.status, VenueStatus::Pending);
        assert_eq!(venue.language, "en");
        assert_eq!(venue.contact_email.as_deref(), Some("host@harbour.example"));

        let owner = actor(
            user(&db).await,
            UserRole::Manager,
            &[(venue.id, Level::Owner)],
        );
        let err = create_venue(&db.conn, &owner, new_venue("Europe/Paris"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "FORBIDDEN");
    }

    #[tokio::test]
    async fn an_unknown_time_zone_or_currency_is_refused_and_nothing_is_written() {
        let db = db().await;
        let admin = actor(user(&db).await, UserRole::Admin, &[]);
        let err = create_venue(&db.conn, &admin, new_venue("Mars/Olympus"))
            .await
            .unwrap_err();
        assert!(matches!(&err, Error::Invalid { field, .. } if field == "timezone"));
        let mut bad = new_venue("UTC");
        bad.currency = "usd".into();
        let err = create_venue(&db.conn, &admin, bad).await.unwrap_err();
        assert!(matches!(&err, Error::Invalid { field, .. } if field == "currency"));
        assert_eq!(venues::Entity::find().count(&db.conn).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn updating_a_venue_changes_only_the_fields_given() {
        let db = db().await;
        let v = venue(&db).await;
        let owner = actor(user(&db).await, UserRole::Manager, &[(v, Level::Owner)]);
        let before = venues::Entity::find_by_id(v)
            .one(&db.conn)
            .await
            .unwrap()
            .unwrap();
        let after = update_venue(
            &db.conn,
            &owner,
            v,
            VenueChanges {
                require_approval: Some(true),
                contact_phone: Some(Some("+1 555 0100".into())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert!(after.require_approval);
        assert_eq!(after.contact_phone.as_deref(), Some("+1 555 0100"));
        assert_eq!(after.name, before.name);
        assert_eq!(after.capacity_seated, before.capacity_seated);
        assert_eq!(after.auto_confirm_bookings, before.auto_confirm_bookings);
    }

    #[tokio::test]
    async fn a_manager_cannot_change_venue_settings_and_a_stranger_cannot_see_the_venue() {
        let db = db().await;
        let v = venue(&db).await;
        let manager = actor(user(&db).await, UserRole::Manager, &[(v, Level::Manager)]);
        let stranger = actor(user(&db).await, UserRole::Manager, &[]);
        let change = || VenueChanges {
            name: Some("Renamed".into()),
            ..Default::default()
        };
        let err = update_venue(&db.conn, &manager, v, change())
            .await
            .unwrap_err();
        assert_eq!(err.code(), "FORBIDDEN");
        let err = update_venue(&db.conn, &stranger, v, change())
            .await
            .unwrap_err();
        assert_eq!(err.code(), "NOT_FOUND");
        let err = set_pricing(&db.conn, &manager, v, pricing())
            .await
            .unwrap_err();
        assert_eq!(err.code(), "FORBIDDEN");
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

    #[tokio::test]
    async fn a_revoked_grant_is_reactivated_by_granting_again() {
        let db = db().await;
        let v = venue(&db).await;
        let owner_id = user(&db).await;
        grant(&db, owner_id, v, VenueRole::Owner).await;
        let owner = actor(owner_id, UserRole::Manager, &[(v, Level::Owner)]);
        let staff = user(&db).await;

        let first = grant_access(&db.conn, &owner, v, staff, VenueRole::Coordinator)
            .await
            .unwrap();
        let revoked = revoke_access(&db.conn, &owner, v, staff).await.unwrap();
        assert!(revoked.access.revoked_at.is_some());
        let again = grant_access(&db.conn, &owner, v, staff, VenueRole::Manager)
            .await
            .unwrap();
        assert_eq!(
            again.access.id, first.access.id,
            "the same row, reactivated"
        );
        assert_eq!(again.access.revoked_at, None);
        assert_eq!(again.access.role, VenueRole::Manager);
        let rows = user_venue_access::Entity::find()
            .filter(user_venue_access::Column::UserId.eq(staff))
            .count(&db.conn)
            .await
            .unwrap();
        assert_eq!(rows, 1);
    }

    #[tokio::test]
    async fn the_last_owner_cannot_be_revoked_or_demoted() {
        let db = db().await;
        let v = venue(&db).await;
        let owner_id = user(&db).await;
        grant(&db, owner_id, v, VenueRole::Owner).await;
        let owner = actor(owner_id, UserRole::Manager, &[(v, Level::Owner)]);
        let err = revoke_access(&db.conn, &owner, v, owner_id)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "CONFLICT");
        let err = grant_access(&db.conn, &owner, v, owner_id, VenueRole::Admin)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "CONFLICT");

        // With a second owner, the first may go.
        let other = user(&db).await;
        grant_access(&db.conn, &owner, v, other, VenueRole::Owner)
            .await
            .unwrap();
        revoke_access(&db.conn, &owner, v, owner_id).await.unwrap();
    }

    #[tokio::test]
    async fn a_venue_admin_cannot_make_or_unmake_an_owner() {
        let db = db().await;
        let v = venue(&db).await;
        let owner_id = user(&db).await;
        grant(&db, owner_id, v, VenueRole::Owner).await;
        let admin = actor(user(&db).await, UserRole::Manager, &[(v, Level::Admin)]);
        let someone = user(&db).await;
        let err = grant_access(&db.conn, &admin, v, someone, VenueRole::Owner)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "FORBIDDEN");
        let err = revoke_access(&db.conn, &admin, v, owner_id)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "FORBIDDEN");
        grant_access(&db.conn, &admin, v, someone, VenueRole::Manager)
            .await
            .unwrap();
    }
}
