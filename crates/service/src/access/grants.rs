//! Granting and revoking venue access: a user's role at a venue (DOMAIN.md "Access").
//!
//! Rules: granting and revoking need [`Capability::Administer`] (venue ADMIN or OWNER) at
//! the venue. A grant gives a user one role at a venue (one row per user and venue). A
//! caller can grant, change or revoke only roles up to their own: a venue ADMIN cannot make
//! an OWNER nor touch an OWNER's grant. Re-granting a revoked row reactivates it. A venue
//! never loses its last OWNER (CONFLICT).

use prima_entity::enums::VenueRole;
use prima_entity::{user_venue_access, users};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, IntoActiveModel,
    PaginatorTrait, QueryFilter, Set, TransactionTrait,
};
use uuid::Uuid;

use crate::access::{Actor, Capability, Level};
use crate::error::{Error, Result};
use crate::time::now;
use crate::venues::lock_venue;

/// A grant and the user it is for.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The access row.
    pub access: user_venue_access::Model,
    /// The user.
    pub user: users::Model,
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

    use super::*;
    use crate::testing::fixtures::{actor, db, grant, user, venue};

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
