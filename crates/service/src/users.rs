//! Users as the caller sees them.

use prima_entity::enums::{UserRole, UserStatus, VenueRole};
use prima_entity::{user_venue_access, users, venues};
use std::collections::HashMap;

use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    QueryFilter, QueryOrder, Set, TransactionTrait,
};
use uuid::Uuid;

use crate::access::scope::Scope;
use crate::access::{Actor, Capability};
use crate::error::{Error, Result};
use crate::time::now;

/// The most venues at which one user can hold live access (`me { venueRoles }` is a plain
/// list with this bound; granting beyond it is refused).
pub const MAX_VENUE_ROLES: u64 = 500;

/// The caller's own user and unrevoked venue access rows.
#[derive(Debug, Clone)]
pub struct Me {
    /// The user.
    pub user: users::Model,
    /// Unrevoked access rows, by grant time.
    pub access: Vec<user_venue_access::Model>,
}

/// The caller's user and venue roles.
pub async fn me(db: &impl ConnectionTrait, actor: &Actor) -> Result<Me> {
    let user = users::Entity::find_by_id(actor.user_id)
        .one(db)
        .await?
        .ok_or_else(|| Error::Unauthenticated("this account no longer exists".into()))?;
    let access = user_venue_access::Entity::find()
        .filter(user_venue_access::Column::UserId.eq(actor.user_id))
        .filter(user_venue_access::Column::RevokedAt.is_null())
        .order_by_asc(user_venue_access::Column::GrantedAt)
        .all(db)
        .await?;
    Ok(Me { user, access })
}

/// Whether a user with this email exists.
pub async fn exists(db: &impl ConnectionTrait, email: &str) -> Result<bool> {
    Ok(users::Entity::find()
        .filter(users::Column::Email.eq(email.trim().to_lowercase()))
        .one(db)
        .await?
        .is_some())
}

/// A user to create (operator command `prima create-user`).
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Login email.
    pub email: String,
    /// Password, at least 8 characters.
    pub password: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Global role.
    pub role: UserRole,
    /// Venue roles to grant.
    pub venues: Vec<(Uuid, VenueRole)>,
}

/// Creates a user with an argon2 password hash (computed through `hasher`) and their venue
/// roles, in one transaction. A taken email is a CONFLICT; a bad email, short password or
/// unknown venue is BAD_USER_INPUT and writes nothing.
pub async fn create_user(
    db: &DatabaseConnection,
    hasher: &crate::auth::Hasher,
    new: NewUser,
) -> Result<users::Model> {
    let email = new.email.trim().to_lowercase();
    let valid_email = email
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && email.len() <= 255;
    if !valid_email {
        return Err(Error::invalid(
            "email",
            "enter an email address like name@example.com",
        ));
    }
    if new.password.chars().count() < 8 {
        return Err(Error::invalid(
            "password",
            "the password must have at least 8 characters",
        ));
    }
    for (field, value) in [("firstName", &new.first_name), ("lastName", &new.last_name)] {
        if value.trim().is_empty() || value.chars().count() > 100 {
            return Err(Error::invalid(
                field,
                format!("`{field}` must have 1 to 100 characters"),
            ));
        }
    }
    if exists(db, &email).await? {
        return Err(Error::Conflict(format!(
            "a user with the email {email} already exists"
        )));
    }
    let hash = hasher.hash(&new.password).await?;
    let txn = db.begin().await?;
    let at = now();
    let user = users::ActiveModel {
        id: Set(Uuid::new_v4()),
        email: Set(email),
        password_hash: Set(hash),
        first_name: Set(new.first_name.trim().to_owned()),
        last_name: Set(new.last_name.trim().to_owned()),
        phone: Set(None),
        role: Set(new.role),
        status: Set(UserStatus::Active),
        email_verified: Set(false),
        two_factor_enabled: Set(false),
        preferences: Set(None),
        last_login_at: Set(None),
        created_at: Set(at),
        updated_at: Set(at),
    }
    .insert(&txn)
    .await?;
    for (venue_id, role) in new.venues {
        if venues::Entity::find_by_id(venue_id)
            .one(&txn)
            .await?
            .is_none()
        {
            return Err(Error::invalid(
                "venue",
                format!("no venue has the id {venue_id}"),
            ));
        }
        user_venue_access::ActiveModel {
            id: Set(Uuid::new_v4()),
            user_id: Set(user.id),
            venue_id: Set(venue_id),
            role: Set(role),
            granted_by: Set(None),
            granted_at: Set(at),
            revoked_at: Set(None),
        }
        .insert(&txn)
        .await?;
    }
    txn.commit().await?;
    Ok(user)
}

/// The users among `ids` that the caller may see: the caller, and users who hold or held
/// access to a venue the caller can read (a global ADMIN sees every user). Revoked grants
/// count, so a payout approved by someone who has since left the venue still names them.
#[tracing::instrument(skip_all, fields(ids = ids.len()))]
pub async fn by_ids(
    db: &impl ConnectionTrait,
    actor: &Actor,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, users::Model>> {
    let mut query = users::Entity::find().filter(users::Column::Id.is_in(ids.iter().copied()));
    let scope = actor.venues_where(Capability::Read);
    if scope != Scope::All {
        let shares_a_venue = Expr::exists(
            Query::select()
                .expr(Expr::val(1))
                .from(user_venue_access::Entity)
                .and_where(
                    Expr::col((user_venue_access::Entity, user_venue_access::Column::UserId))
                        .equals((users::Entity, users::Column::Id)),
                )
                .cond_where(scope.condition((
                    user_venue_access::Entity,
                    user_venue_access::Column::VenueId,
                )))
                .to_owned(),
        );
        query = query.filter(
            Condition::any()
                .add(users::Column::Id.eq(actor.user_id))
                .add(shares_a_venue),
        );
    }
    let rows = query.all(db).await?;
    Ok(rows.into_iter().map(|u| (u.id, u)).collect())
}
