//! Access: a user's role at a venue (`VenueAccess`, read through `me` and the grant
//! mutations) and the mutations that grant and revoke it, `grantVenueAccess` and
//! `revokeVenueAccess`. The rules (who may grant what, the last OWNER) are in
//! `prima_service::access::grants`; each resolver makes one call there and converts.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use prima_entity::enums::VenueRole;
use prima_entity::user_venue_access;

use crate::context::{actor, deps, loader};
use crate::error::{Result, parse_id};
use crate::loaders::VenueId;
use crate::users::User;
use crate::venues::Venue;

/// A user's role at one venue.
#[derive(Clone)]
pub struct VenueAccess(pub user_venue_access::Model);

/// A user's role at one venue.
#[Object]
impl VenueAccess {
    /// The venue.
    async fn venue(&self, ctx: &Context<'_>) -> Result<Option<Venue>> {
        Ok(loader(ctx)?
            .load_one(VenueId(self.0.venue_id))
            .await?
            .map(Venue))
    }
    /// The role held there.
    async fn role(&self) -> VenueRole {
        self.0.role
    }
    /// When it was granted.
    async fn granted_at(&self) -> DateTime<Utc> {
        self.0.granted_at
    }
}

/// A role to grant a user at a venue (venue ADMIN or OWNER; only an OWNER grants OWNER).
#[derive(InputObject)]
pub struct GrantVenueAccessInput {
    /// The venue.
    pub venue_id: ID,
    /// The user to grant the role to.
    pub user_id: ID,
    /// The role. A user with a grant at the venue gets this role instead; a revoked grant
    /// is reactivated.
    pub role: VenueRole,
}

/// The grant, as it now stands.
#[derive(SimpleObject)]
pub struct GrantVenueAccessPayload {
    /// The user's role at the venue.
    pub access: VenueAccess,
    /// The user who holds it.
    pub user: User,
}

/// A user's role at a venue to revoke (venue ADMIN or OWNER; only an OWNER revokes an
/// OWNER, and never the venue's last one).
#[derive(InputObject)]
pub struct RevokeVenueAccessInput {
    /// The venue.
    pub venue_id: ID,
    /// The user whose role to revoke.
    pub user_id: ID,
}

/// The revoked grant; the user loses access to the venue on their next request.
#[derive(SimpleObject)]
pub struct RevokeVenueAccessPayload {
    /// The role the user held at the venue.
    pub access: VenueAccess,
    /// The user who held it.
    pub user: User,
    /// When it was revoked.
    pub revoked_at: DateTime<Utc>,
}

/// Access mutations: granting and revoking users' roles at venues.
#[derive(Default)]
pub struct AccessMutation;

/// Access mutations: granting and revoking users' roles at venues.
#[Object]
impl AccessMutation {
    /// Grants a user a role at a venue (venue ADMIN or OWNER; only an OWNER grants OWNER).
    /// Takes effect on the user's next request.
    async fn grant_venue_access(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The venue, the user and the role.")] input: GrantVenueAccessInput,
    ) -> Result<GrantVenueAccessPayload> {
        let actor = actor(ctx)?;
        let venue_id = parse_id("venueId", &input.venue_id)?;
        let user_id = parse_id("userId", &input.user_id)?;
        let grant = prima_service::access::grants::grant_access(
            &deps(ctx).db.conn,
            actor,
            venue_id,
            user_id,
            input.role,
        )
        .await?;
        Ok(GrantVenueAccessPayload {
            access: VenueAccess(grant.access),
            user: User(grant.user),
        })
    }

    /// Revokes a user's role at a venue (venue ADMIN or OWNER; only an OWNER revokes an
    /// OWNER). The venue's last OWNER cannot be revoked (CONFLICT).
    async fn revoke_venue_access(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The venue and the user.")] input: RevokeVenueAccessInput,
    ) -> Result<RevokeVenueAccessPayload> {
        let actor = actor(ctx)?;
        let venue_id = parse_id("venueId", &input.venue_id)?;
        let user_id = parse_id("userId", &input.user_id)?;
        let grant = prima_service::access::grants::revoke_access(
            &deps(ctx).db.conn,
            actor,
            venue_id,
            user_id,
        )
        .await?;
        Ok(RevokeVenueAccessPayload {
            revoked_at: grant.access.revoked_at.unwrap_or(grant.access.granted_at),
            access: VenueAccess(grant.access),
            user: User(grant.user),
        })
    }
}
