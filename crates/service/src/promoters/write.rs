//! Writing promoters: sign-up, approval, suspension and tier.
//!
//! Rules: everything here needs [`Capability::Manage`] (MANAGER or above) at the promoter's
//! venue (DOMAIN.md "Access"). A new promoter is PENDING_APPROVAL and earns nothing until
//! approved. Status moves PENDING_APPROVAL -> ACTIVE (approve) and ACTIVE -> SUSPENDED
//! (suspend), each a conditional update (`WHERE status = <expected>`): any other starting
//! state, or a concurrent change that got there first, is a CONFLICT and changes nothing.

use prima_entity::enums::{PromoterStatus, PromoterTier};
use prima_entity::promoters;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set,
    TransactionTrait,
};
use uuid::Uuid;

use crate::access::{Actor, Capability, not_found_as};
use crate::error::{Error, Result};
use crate::time::now;
use crate::validate::{email, optional_text, required_text};

/// A promoter to sign up at a venue.
#[derive(Debug, Clone)]
pub struct NewPromoter {
    /// The promoter's primary venue.
    pub venue_id: Uuid,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Email address.
    pub email: String,
    /// Phone number.
    pub phone: Option<String>,
    /// Job title.
    pub title: Option<String>,
    /// Company.
    pub company: Option<String>,
    /// Short biography.
    pub bio: Option<String>,
    /// Social media handles: a JSON object such as `{"instagram": "@pat"}`.
    pub social_media: Option<serde_json::Value>,
    /// Tier; STANDARD when none.
    pub tier: Option<PromoterTier>,
}

/// The promoter and the venue check shared by every change: NOT_FOUND when the promoter does
/// not exist or its venue is invisible to the caller, FORBIDDEN below MANAGER there.
async fn authorized(db: &DatabaseConnection, actor: &Actor, id: Uuid) -> Result<promoters::Model> {
    let promoter = promoters::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(Error::NotFound { what: "promoter" })?;
    actor
        .require(promoter.venue_id, Capability::Manage)
        .map_err(not_found_as("promoter"))?;
    Ok(promoter)
}

/// Signs up a promoter at a venue (MANAGER or above there), PENDING_APPROVAL from now.
#[tracing::instrument(skip_all, fields(venue = %new.venue_id))]
pub async fn create_promoter(
    db: &DatabaseConnection,
    actor: &Actor,
    new: NewPromoter,
) -> Result<promoters::Model> {
    let first_name = required_text("firstName", &new.first_name, 100)?;
    let last_name = required_text("lastName", &new.last_name, 100)?;
    let email = email("email", &new.email)?;
    let phone = optional_text("phone", new.phone.as_deref(), 20)?;
    let title = optional_text("title", new.title.as_deref(), 100)?;
    let company = optional_text("company", new.company.as_deref(), 255)?;
    let bio = optional_text("bio", new.bio.as_deref(), 5000)?;
    if new.social_media.as_ref().is_some_and(|v| !v.is_object()) {
        return Err(Error::invalid(
            "socialMedia",
            "`socialMedia` must be a JSON object, like {\"instagram\": \"@pat\"}",
        ));
    }
    actor.require(new.venue_id, Capability::Manage)?;

    let at = now();
    let row = promoters::ActiveModel {
        id: Set(Uuid::new_v4()),
        venue_id: Set(new.venue_id),
        first_name: Set(first_name),
        last_name: Set(last_name),
        email: Set(email),
        phone: Set(phone),
        title: Set(title),
        company: Set(company),
        bio: Set(bio),
        social_media: Set(new.social_media),
        total_bookings: Set(0),
        total_revenue: Set(0),
        average_booking_value: Set(0),
        conversion_rate: Set(0),
        no_show_rate: Set(0),
        cancel_rate: Set(0),
        month_bookings: Set(0),
        month_revenue: Set(0),
        month_new_guests: Set(0),
        month_repeat_guests: Set(0),
        status: Set(PromoterStatus::PendingApproval),
        tier: Set(new.tier.unwrap_or(PromoterTier::Standard)),
        joined_at: Set(at),
        last_active_at: Set(None),
        created_at: Set(at),
        updated_at: Set(at),
        all_bookings: Set(0),
        completed_bookings: Set(0),
        cancelled_bookings: Set(0),
        no_show_bookings: Set(0),
        month_start: Set(None),
    };
    crate::db::retry_transient("createPromoter", || {
        let row = row.clone();
        async move {
            let txn = db.begin().await?;
            crate::venues::require_exists(&txn, new.venue_id).await?;
            let promoter = row.insert(&txn).await?;
            txn.commit().await?;
            Ok(promoter)
        }
    })
    .await
}

/// Moves a promoter from `from` to `to` with one conditional update.
async fn transition(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    from: PromoterStatus,
    to: PromoterStatus,
    verb: &str,
) -> Result<promoters::Model> {
    authorized(db, actor, id).await?;
    crate::db::retry_transient("promoterStatus", || async move {
        let txn = db.begin().await?;
        let changed = promoters::Entity::update_many()
            .col_expr(promoters::Column::Status, Expr::value(to.as_str()))
            .col_expr(promoters::Column::UpdatedAt, Expr::value(now()))
            .filter(promoters::Column::Id.eq(id))
            .filter(promoters::Column::Status.eq(from))
            .exec(&txn)
            .await?;
        let promoter = promoters::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or(Error::NotFound { what: "promoter" })?;
        if changed.rows_affected == 0 {
            return Err(Error::Conflict(format!(
                "the promoter is {}: only a {from} promoter can be {verb}",
                promoter.status
            )));
        }
        if to == PromoterStatus::Active {
            let mut tail = crate::tail::Tail::new();
            crate::incentives::manage::join_programmes(&txn, &promoter, &mut tail, now()).await?;
            tail.send(&txn).await?;
        }
        txn.commit().await?;
        Ok(promoter)
    })
    .await
}

/// Approves a promoter who signed up (PENDING_APPROVAL -> ACTIVE); MANAGER or above at the
/// promoter's venue.
#[tracing::instrument(skip_all, fields(promoter = %id))]
pub async fn approve_promoter(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
) -> Result<promoters::Model> {
    transition(
        db,
        actor,
        id,
        PromoterStatus::PendingApproval,
        PromoterStatus::Active,
        "approved",
    )
    .await
}

/// Suspends an active promoter (ACTIVE -> SUSPENDED): they earn no commission while
/// suspended. MANAGER or above at the promoter's venue.
#[tracing::instrument(skip_all, fields(promoter = %id))]
pub async fn suspend_promoter(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
) -> Result<promoters::Model> {
    transition(
        db,
        actor,
        id,
        PromoterStatus::Active,
        PromoterStatus::Suspended,
        "suspended",
    )
    .await
}

/// Sets a promoter's tier (MANAGER or above at the promoter's venue). Commission
/// assignments keep the tier they were made with; assign a rate of the new tier to change
/// what the promoter earns.
#[tracing::instrument(skip_all, fields(promoter = %id))]
pub async fn set_promoter_tier(
    db: &DatabaseConnection,
    actor: &Actor,
    id: Uuid,
    tier: PromoterTier,
) -> Result<promoters::Model> {
    let promoter = authorized(db, actor, id).await?;
    let mut row: promoters::ActiveModel = promoter.into();
    row.tier = Set(tier);
    row.updated_at = Set(now());
    crate::db::retry_transient("setPromoterTier", || {
        let row = row.clone();
        async move {
            let txn = db.begin().await?;
            let promoter = row.update(&txn).await?;
            // A tier that makes the promoter eligible joins them to the running programmes.
            let mut tail = crate::tail::Tail::new();
            crate::incentives::manage::join_programmes(&txn, &promoter, &mut tail, now()).await?;
            tail.send(&txn).await?;
            txn.commit().await?;
            Ok(promoter)
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use prima_entity::enums::UserRole;

    use super::*;
    use crate::access::Level;
    use crate::testing::fixtures::{actor, db, promoter, user, venue};

    fn new_promoter(venue_id: Uuid) -> NewPromoter {
        NewPromoter {
            venue_id,
            first_name: "Pat".into(),
            last_name: "Lee".into(),
            email: "pat@example.com".into(),
            phone: None,
            title: None,
            company: None,
            bio: None,
            social_media: Some(serde_json::json!({ "instagram": "@pat" })),
            tier: None,
        }
    }

    #[tokio::test]
    async fn a_new_promoter_waits_for_approval_and_is_approved_once() {
        let db = db().await;
        let v = venue(&db).await;
        let manager = actor(user(&db).await, UserRole::Manager, &[(v, Level::Manager)]);
        let p = create_promoter(&db.conn, &manager, new_promoter(v))
            .await
            .unwrap();
        assert_eq!(p.status, PromoterStatus::PendingApproval);
        assert_eq!(p.tier, PromoterTier::Standard);
        assert_eq!(p.joined_at, p.created_at);

        let approved = approve_promoter(&db.conn, &manager, p.id).await.unwrap();
        assert_eq!(approved.status, PromoterStatus::Active);
        let err = approve_promoter(&db.conn, &manager, p.id)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "CONFLICT");
        assert!(err.to_string().contains("ACTIVE"), "{err}");
    }

    #[tokio::test]
    async fn only_an_active_promoter_can_be_suspended() {
        let db = db().await;
        let v = venue(&db).await;
        let manager = actor(user(&db).await, UserRole::Manager, &[(v, Level::Manager)]);
        let p = create_promoter(&db.conn, &manager, new_promoter(v))
            .await
            .unwrap();
        let err = suspend_promoter(&db.conn, &manager, p.id)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "CONFLICT");
        let stored = promoters::Entity::find_by_id(p.id)
            .one(&db.conn)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.status, PromoterStatus::PendingApproval);

        let active = promoter(&db, v, "Adams").await;
        let suspended = suspend_promoter(&db.conn, &manager, active).await.unwrap();
        assert_eq!(suspended.status, PromoterStatus::Suspended);
    }

    #[tokio::test]
    async fn a_coordinator_is_forbidden_and_another_venues_manager_finds_nothing() {
        let db = db().await;
        let (a, b) = (venue(&db).await, venue(&db).await);
        let coordinator = actor(
            user(&db).await,
            UserRole::Coordinator,
            &[(a, Level::Coordinator)],
        );
        let other = actor(user(&db).await, UserRole::Manager, &[(b, Level::Manager)]);
        let err = create_promoter(&db.conn, &coordinator, new_promoter(a))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "FORBIDDEN");
        let err = create_promoter(&db.conn, &other, new_promoter(a))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "NOT_FOUND");

        let p = promoter(&db, a, "Adams").await;
        let err = set_promoter_tier(&db.conn, &other, p, PromoterTier::Vip)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotFound { what: "promoter" }));
        let err = set_promoter_tier(&db.conn, &coordinator, p, PromoterTier::Vip)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "FORBIDDEN");
    }

    #[tokio::test]
    async fn a_bad_email_or_social_media_writes_nothing() {
        let db = db().await;
        let v = venue(&db).await;
        let manager = actor(user(&db).await, UserRole::Manager, &[(v, Level::Manager)]);
        let mut bad = new_promoter(v);
        bad.email = "pat-at-example".into();
        let err = create_promoter(&db.conn, &manager, bad).await.unwrap_err();
        assert!(matches!(&err, Error::Invalid { field, .. } if field == "email"));
        let mut bad = new_promoter(v);
        bad.social_media = Some(serde_json::json!(["@pat"]));
        let err = create_promoter(&db.conn, &manager, bad).await.unwrap_err();
        assert!(matches!(&err, Error::Invalid { field, .. } if field == "socialMedia"));
        use sea_orm::PaginatorTrait;
        assert_eq!(promoters::Entity::find().count(&db.conn).await.unwrap(), 0);
    }
}
