//! Writing guests: registration, details and status.
//!
//! Rules (DOMAIN.md "Access"): guests belong to no venue; a caller reaches a guest through a
//! venue where the guest booked (or that registered them) ([`crate::guests`]).
//! - Registering a guest needs [`Capability::WriteBookings`] (COORDINATOR or above) at the
//!   venue that registers them (`venue_id`), which must exist. The creator gets the guest
//!   back unmasked: they have just typed its contact data.
//! - Editing a guest needs [`Capability::WriteBookings`] at a venue where the guest booked
//!   (or that registered them); editing their contact data (last name, email, phone) needs
//!   [`Capability::ReadContact`] (MANAGER or above) there, since a coordinator may not
//!   even see it.
//! - Setting a guest's status (ACTIVE, BLOCKED, VIP) needs [`Capability::Manage`] at a venue
//!   where the guest booked (or that registered them). The status is the guest's, so it
//!   holds at every venue.

use chrono::NaiveDate;
use prima_entity::enums::{Gender, GuestStatus, SeatingPreference};
use prima_entity::{bookings, guests};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QuerySelect, Set, TransactionTrait,
};
use uuid::Uuid;

use crate::access::{Actor, Capability};
use crate::error::{Error, Result};
use crate::guests::GuestView;
use crate::time::now;
use crate::validate::{email, optional_text, required_text};

/// A guest to register at a venue.
#[derive(Debug, Clone)]
pub struct NewGuest {
    /// The venue registering the guest.
    pub venue_id: Uuid,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Email address.
    pub email: String,
    /// Phone number.
    pub phone: Option<String>,
    /// Date of birth.
    pub birth_date: Option<NaiveDate>,
    /// Gender, if given.
    pub gender: Option<Gender>,
    /// Dietary restrictions, e.g. `vegetarian`.
    pub dietary_restrictions: Vec<String>,
    /// Preferred seating.
    pub seating_preference: Option<SeatingPreference>,
    /// Accepts email; yes when not given.
    pub communication_email: Option<bool>,
    /// Accepts SMS; no when not given.
    pub communication_sms: Option<bool>,
    /// Accepts push notifications; no when not given.
    pub communication_push: Option<bool>,
    /// Free tags.
    pub tags: Vec<String>,
}

/// Changes to a guest: only the fields given change. For the optional columns, `Some(None)`
/// clears the value.
#[derive(Debug, Clone, Default)]
pub struct GuestChanges {
    /// New first name.
    pub first_name: Option<String>,
    /// New last name (contact data).
    pub last_name: Option<String>,
    /// New email (contact data).
    pub email: Option<String>,
    /// New phone, or none (contact data).
    pub phone: Option<Option<String>>,
    /// New date of birth, or none.
    pub birth_date: Option<Option<NaiveDate>>,
    /// New gender, or none.
    pub gender: Option<Option<Gender>>,
    /// New dietary restrictions (replace the old ones).
    pub dietary_restrictions: Option<Vec<String>>,
    /// New seating preference, or none.
    pub seating_preference: Option<Option<SeatingPreference>>,
    /// Accepts email.
    pub communication_email: Option<bool>,
    /// Accepts SMS.
    pub communication_sms: Option<bool>,
    /// Accepts push notifications.
    pub communication_push: Option<bool>,
    /// New tags (replace the old ones).
    pub tags: Option<Vec<String>>,
}

impl GuestChanges {
    fn touches_contact(&self) -> bool {
        self.last_name.is_some() || self.email.is_some() || self.phone.is_some()
    }
}

/// A list of short labels as the JSON array the column holds: trimmed, blanks dropped,
/// duplicates removed, each at most 50 characters, at most 50 of them.
fn labels(field: &str, values: &[String]) -> Result<Option<serde_json::Value>> {
    let mut out: Vec<String> = Vec::new();
    for value in values.iter().map(|v| v.trim()).filter(|v| !v.is_empty()) {
        if value.chars().count() > 50 {
            return Err(Error::invalid(
                field,
                format!("each of `{field}` must have at most 50 characters"),
            ));
        }
        if !out.iter().any(|v| v == value) {
            out.push(value.to_owned());
        }
    }
    if out.len() > 50 {
        return Err(Error::invalid(
            field,
            format!("`{field}` can hold at most 50 items"),
        ));
    }
    Ok((!out.is_empty()).then(|| serde_json::json!(out)))
}

fn birth_date(value: Option<NaiveDate>) -> Result<Option<NaiveDate>> {
    match value {
        Some(date) if date > now().date_naive() => Err(Error::invalid(
            "birthDate",
            "`birthDate` cannot be in the future",
        )),
        other => Ok(other),
    }
}

/// Registers a guest at a venue (COORDINATOR or above there).
#[tracing::instrument(skip_all, fields(venue = %new.venue_id))]
pub async fn create_guest(
    db: &DatabaseConnection,
    actor: &Actor,
    new: NewGuest,
) -> Result<GuestView> {
    let first_name = required_text("firstName", &new.first_name, 100)?;
    let last_name = required_text("lastName", &new.last_name, 100)?;
    let email = email("email", &new.email)?;
    let phone = optional_text("phone", new.phone.as_deref(), 20)?;
    let birth_date = birth_date(new.birth_date)?;
    let dietary = labels("dietaryRestrictions", &new.dietary_restrictions)?;
    let tags = labels("tags", &new.tags)?;
    actor.require(new.venue_id, Capability::WriteBookings)?;

    let at = now();
    let row = guests::ActiveModel {
        id: Set(Uuid::new_v4()),
        first_name: Set(first_name),
        last_name: Set(last_name),
        email: Set(email),
        phone: Set(phone),
        birth_date: Set(birth_date),
        gender: Set(new.gender),
        dietary_restrictions: Set(dietary),
        seating_preference: Set(new.seating_preference),
        communication_email: Set(new.communication_email.unwrap_or(true)),
        communication_sms: Set(new.communication_sms.unwrap_or(false)),
        communication_push: Set(new.communication_push.unwrap_or(false)),
        total_bookings: Set(0),
        cancelled_bookings: Set(0),
        no_show_bookings: Set(0),
        total_spent: Set(0),
        // 2.0, the column default: the mean party size of a guest without bookings.
        average_party_size: Set(20),
        last_booking_at: Set(None),
        status: Set(GuestStatus::Active),
        tags: Set(tags),
        created_at: Set(at),
        updated_at: Set(at),
        registered_venue_id: Set(Some(new.venue_id)),
        total_diners: Set(0),
    };
    let guest = crate::db::retry_transient("createGuest", || {
        let row = row.clone();
        async move {
            let txn = db.begin().await?;
            crate::venues::require_exists(&txn, new.venue_id).await?;
            let guest = row.insert(&txn).await?;
            txn.commit().await?;
            Ok(guest)
        }
    })
    .await?;
    Ok(GuestView {
        guest,
        masked: false,
    })
}

/// The guest, if the caller holds `capability` at a venue where the guest booked (or that registered them) or that
/// registered them: NOT_FOUND when the caller can see no such venue, FORBIDDEN when their best
/// role there is too low.
async fn authorized(
    db: &impl ConnectionTrait,
    actor: &Actor,
    id: Uuid,
    capability: Capability,
) -> Result<guests::Model> {
    let not_found = Error::NotFound { what: "guest" };
    let guest = guests::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(not_found.clone())?;
    if actor.is_admin() {
        return Ok(guest);
    }
    let mut venues: Vec<Uuid> = bookings::Entity::find()
        .select_only()
        .column(bookings::Column::VenueId)
        .distinct()
        .filter(bookings::Column::GuestId.eq(id))
        .into_tuple()
        .all(db)
        .await?;
    // The registering venue counts too, as it does for reading the guest: staff can block
    // or edit a guest they registered before the first booking.
    venues.extend(guest.registered_venue_id);
    let best = venues
        .into_iter()
        .filter_map(|venue| actor.level_at(venue).map(|level| (level, venue)))
        .max();
    match best {
        None => Err(not_found),
        Some((_, venue)) => {
            actor.require(venue, capability)?;
            Ok(guest)
        }
    }
}

/// The guest as the caller may see them after a change.
async fn view(db: &impl ConnectionTrait, actor: &Actor, guest: guests::Model) -> Result<GuestView> {
    if actor.is_admin() {
        return Ok(GuestView {
            guest,
            masked: false,
        });
    }
    crate::guests::by_ids(db, actor, &[guest.id])
        .await?
        .remove(&guest.id)
        .ok_or(Error::NotFound { what: "guest" })
}

/// Edits a guest's details (COORDINATOR or above where the guest booked (or that registered them); MANAGER or above
/// for contact data); only the fields given change.
#[tracing::instrument(skip_all, fields(guest = %id))]
pub async fn update_guest(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    changes: GuestChanges,
) -> Result<GuestView> {
    let first_name = changes
        .first_name
        .as_deref()
        .map(|v| required_text("firstName", v, 100))
        .transpose()?;
    let last_name = changes
        .last_name
        .as_deref()
        .map(|v| required_text("lastName", v, 100))
        .transpose()?;
    let new_email = changes
        .email
        .as_deref()
        .map(|v| email("email", v))
        .transpose()?;
    let phone = changes
        .phone
        .as_ref()
        .map(|v| optional_text("phone", v.as_deref(), 20))
        .transpose()?;
    let birth = changes.birth_date.map(birth_date).transpose()?;
    let dietary = changes
        .dietary_restrictions
        .as_deref()
        .map(|v| labels("dietaryRestrictions", v))
        .transpose()?;
    let tags = changes
        .tags
        .as_deref()
        .map(|v| labels("tags", v))
        .transpose()?;
    let capability = if changes.touches_contact() {
        Capability::ReadContact
    } else {
        Capability::WriteBookings
    };
    let guest = authorized(db, actor, id, capability).await?;

    let mut row: guests::ActiveModel = guest.into();
    if let Some(v) = first_name {
        row.first_name = Set(v);
    }
    if let Some(v) = last_name {
        row.last_name = Set(v);
    }
    if let Some(v) = new_email {
        row.email = Set(v);
    }
    if let Some(v) = phone {
        row.phone = Set(v);
    }
    if let Some(v) = birth {
        row.birth_date = Set(v);
    }
    if let Some(v) = changes.gender {
        row.gender = Set(v);
    }
    if let Some(v) = dietary {
        row.dietary_restrictions = Set(v);
    }
    if let Some(v) = changes.seating_preference {
        row.seating_preference = Set(v);
    }
    if let Some(v) = changes.communication_email {
        row.communication_email = Set(v);
    }
    if let Some(v) = changes.communication_sms {
        row.communication_sms = Set(v);
    }
    if let Some(v) = changes.communication_push {
        row.communication_push = Set(v);
    }
    if let Some(v) = tags {
        row.tags = Set(v);
    }
    row.updated_at = Set(now());
    save(db, actor, "updateGuest", row).await
}

/// Sets a guest's status: ACTIVE, BLOCKED (may not book) or VIP (MANAGER or above where the
/// guest booked).
#[tracing::instrument(skip_all, fields(guest = %id))]
pub async fn set_guest_status(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    status: GuestStatus,
) -> Result<GuestView> {
    let guest = authorized(db, actor, id, Capability::Manage).await?;
    let mut row: guests::ActiveModel = guest.into();
    row.status = Set(status);
    row.updated_at = Set(now());
    save(db, actor, "setGuestStatus", row).await
}

/// Writes a changed guest row and answers it as the caller sees it, in one transaction.
async fn save(
    db: &DatabaseConnection,
    actor: &Actor,
    operation: &'static str,
    row: guests::ActiveModel,
) -> Result<GuestView> {
    crate::db::retry_transient(operation, || {
        let row = row.clone();
        async move {
            let txn = db.begin().await?;
            let guest = row.update(&txn).await?;
            let view = view(&txn, actor, guest).await?;
            txn.commit().await?;
            Ok(view)
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use prima_entity::enums::UserRole;
    use sea_orm::PaginatorTrait;

    use super::*;
    use crate::access::Level;
    use crate::testing::fixtures::{actor, booking, db, user, venue};

    fn new_guest(venue_id: Uuid) -> NewGuest {
        NewGuest {
            venue_id,
            first_name: "Jane".into(),
            last_name: "Johnson".into(),
            email: "Jane@Example.com".into(),
            phone: Some("+1 555 0100".into()),
            birth_date: None,
            gender: None,
            dietary_restrictions: vec!["vegetarian".into(), " vegetarian ".into()],
            seating_preference: Some(SeatingPreference::Outdoor),
            communication_email: None,
            communication_sms: None,
            communication_push: None,
            tags: vec![],
        }
    }

    async fn guest_of(db: &crate::db::Db, booking_id: Uuid) -> Uuid {
        bookings::Entity::find_by_id(booking_id)
            .one(&db.conn)
            .await
            .unwrap()
            .unwrap()
            .guest_id
    }

    #[tokio::test]
    async fn a_coordinator_registers_a_guest_and_sees_it_unmasked() {
        let db = db().await;
        let v = venue(&db).await;
        let coordinator = actor(
            user(&db).await,
            UserRole::Coordinator,
            &[(v, Level::Coordinator)],
        );
        let view = create_guest(&db.conn, &coordinator, new_guest(v))
            .await
            .unwrap();
        assert!(!view.masked);
        assert_eq!(view.guest.last_name, "Johnson");
        assert_eq!(view.guest.email, "jane@example.com");
        assert_eq!(
            view.guest.dietary_restrictions,
            Some(serde_json::json!(["vegetarian"]))
        );
        assert!(view.guest.communication_email);
    }

    #[tokio::test]
    async fn the_registering_venue_can_block_a_guest_before_the_first_booking() {
        let db = db().await;
        let v = venue(&db).await;
        let other = venue(&db).await;
        let manager = actor(user(&db).await, UserRole::Manager, &[(v, Level::Manager)]);
        let guest = create_guest(&db.conn, &manager, new_guest(v))
            .await
            .unwrap();
        let blocked = set_guest_status(&db.conn, &manager, guest.guest.id, GuestStatus::Blocked)
            .await
            .unwrap();
        assert_eq!(blocked.guest.status, GuestStatus::Blocked);
        let stranger = actor(user(&db).await, UserRole::Manager, &[(other, Level::Owner)]);
        let err = set_guest_status(&db.conn, &stranger, guest.guest.id, GuestStatus::Active)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "NOT_FOUND");
    }

    #[tokio::test]
    async fn a_viewer_cannot_register_guests_and_a_bad_email_writes_nothing() {
        let db = db().await;
        let v = venue(&db).await;
        let viewer = actor(user(&db).await, UserRole::Viewer, &[(v, Level::Viewer)]);
        let err = create_guest(&db.conn, &viewer, new_guest(v))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "FORBIDDEN");
        let stranger = actor(user(&db).await, UserRole::Coordinator, &[]);
        let err = create_guest(&db.conn, &stranger, new_guest(v))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "NOT_FOUND");
        let admin = actor(user(&db).await, UserRole::Admin, &[]);
        let mut bad = new_guest(v);
        bad.email = "jane@".into();
        let err = create_guest(&db.conn, &admin, bad).await.unwrap_err();
        assert!(matches!(&err, Error::Invalid { field, .. } if field == "email"));
        assert_eq!(guests::Entity::find().count(&db.conn).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_coordinator_edits_preferences_but_not_contact_data() {
        let db = db().await;
        let v = venue(&db).await;
        let g = guest_of(&db, booking(&db, v, None).await).await;
        let coordinator = actor(
            user(&db).await,
            UserRole::Coordinator,
            &[(v, Level::Coordinator)],
        );
        let view = update_guest(
            &db.conn,
            &coordinator,
            g,
            GuestChanges {
                seating_preference: Some(Some(SeatingPreference::Bar)),
                tags: Some(vec!["regular".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(view.guest.seating_preference, Some(SeatingPreference::Bar));
        assert!(view.masked, "a coordinator still sees contact data masked");

        let err = update_guest(
            &db.conn,
            &coordinator,
            g,
            GuestChanges {
                email: Some("new@example.com".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), "FORBIDDEN");

        let manager = actor(user(&db).await, UserRole::Manager, &[(v, Level::Manager)]);
        let view = update_guest(
            &db.conn,
            &manager,
            g,
            GuestChanges {
                email: Some("new@example.com".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(view.guest.email, "new@example.com");
        assert!(!view.masked);
    }

    #[tokio::test]
    async fn only_a_manager_where_the_guest_booked_sets_their_status() {
        let db = db().await;
        let (a, b) = (venue(&db).await, venue(&db).await);
        let g = guest_of(&db, booking(&db, a, None).await).await;
        let coordinator = actor(
            user(&db).await,
            UserRole::Coordinator,
            &[(a, Level::Coordinator)],
        );
        let elsewhere = actor(user(&db).await, UserRole::Manager, &[(b, Level::Owner)]);
        let manager = actor(user(&db).await, UserRole::Manager, &[(a, Level::Manager)]);
        let err = set_guest_status(&db.conn, &coordinator, g, GuestStatus::Blocked)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "FORBIDDEN");
        let err = set_guest_status(&db.conn, &elsewhere, g, GuestStatus::Blocked)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "NOT_FOUND");
        let view = set_guest_status(&db.conn, &manager, g, GuestStatus::Vip)
            .await
            .unwrap();
        assert_eq!(view.guest.status, GuestStatus::Vip);
    }
}
