//! Creating a venue and changing its settings (name, contact, capacity, booking settings,
//! status).
//!
//! Rules (DOMAIN.md "Access"): only a global ADMIN creates venues; changing one needs
//! [`Capability::Administer`] (venue ADMIN or OWNER) at the venue.

use prima_entity::enums::{VenueStatus, VenueTier, VenueType};
use prima_entity::venues;
use sea_orm::{
    ActiveModelTrait, DatabaseConnection, EntityTrait, IntoActiveModel, Set, TransactionTrait,
};
use uuid::Uuid;

use crate::access::{Actor, Capability};
use crate::error::{Error, Result};
use crate::time::now;
use crate::validate::{optional_email, optional_text, required_text};
use crate::venues::lock_venue;

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
/// acts on every venue; owners are granted with
/// [`grant_access`](crate::access::grants::grant_access).
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

#[cfg(test)]
mod tests {
    use prima_entity::enums::UserRole;
    use sea_orm::PaginatorTrait;

    use super::*;
    use crate::access::Level;
    use crate::testing::fixtures::{actor, db, user, venue};
    use crate::venues::pricing::set_pricing;
    use crate::venues::pricing::tests::pricing;

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
}
