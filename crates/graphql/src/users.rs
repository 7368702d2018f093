//! Users and authentication: the `login` mutation and the `me` query.

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};
use prima_entity::enums::{UserRole, UserStatus};
use prima_entity::users;
use prima_service::users::Me;

use crate::access::VenueAccess;
use crate::context::{actor, client_info, deps};
use crate::error::{Result, retry_after_header};

/// A person who uses the dashboard.
#[derive(Clone)]
pub struct User(pub users::Model);

/// A person who uses the dashboard.
#[Object]
impl User {
    /// Unique identifier.
    pub(crate) async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Login email.
    async fn email(&self) -> &str {
        &self.0.email
    }
    /// First name.
    async fn first_name(&self) -> &str {
        &self.0.first_name
    }
    /// Last name.
    async fn last_name(&self) -> &str {
        &self.0.last_name
    }
    /// Phone.
    async fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }
    /// Global role: ADMIN sees everything; the others act on the venues they were granted.
    async fn role(&self) -> UserRole {
        self.0.role
    }
    /// ACTIVE users may log in.
    async fn status(&self) -> UserStatus {
        self.0.status
    }
    /// Whether the email was verified.
    async fn email_verified(&self) -> bool {
        self.0.email_verified
    }
    /// Whether two-factor authentication is on.
    async fn two_factor_enabled(&self) -> bool {
        self.0.two_factor_enabled
    }
    /// Last successful login.
    async fn last_login_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_login_at
    }
    /// When the user was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// The logged-in user.
pub struct Viewer(pub Me);

/// The logged-in user.
#[Object]
impl Viewer {
    /// The user.
    async fn user(&self) -> User {
        User(self.0.user.clone())
    }
    /// The user's unrevoked roles at venues.
    async fn venue_roles(&self) -> Vec<VenueAccess> {
        self.0.access.iter().cloned().map(VenueAccess).collect()
    }
}

/// The answer to a successful login.
pub struct LoginPayload {
    token: String,
    expires_at: DateTime<Utc>,
    user: users::Model,
}

/// The answer to a successful login.
#[Object]
impl LoginPayload {
    /// Send as `Authorization: Bearer <token>` (or in `connection_init` over WebSocket).
    async fn token(&self) -> &str {
        &self.token
    }
    /// When the token stops working; log in again then.
    async fn expires_at(&self) -> DateTime<Utc> {
        self.expires_at
    }
    /// Who logged in.
    async fn user(&self) -> User {
        User(self.user.clone())
    }
}

/// User queries.
#[derive(Default)]
pub struct UserQuery;

/// User queries.
#[Object]
impl UserQuery {
    /// You: your user and your venue roles.
    async fn me(&self, ctx: &Context<'_>) -> Result<Viewer> {
        let actor = actor(ctx)?;
        Ok(Viewer(
            prima_service::users::me(&deps(ctx).db.conn, actor).await?,
        ))
    }
}

/// Authentication mutations.
#[derive(Default)]
pub struct AuthMutation;

/// Authentication mutations.
#[Object]
impl AuthMutation {
    /// Exchanges an email and password for a bearer token. A wrong email and a wrong
    /// password get the same answer (UNAUTHENTICATED). Failed logins are throttled per email
    /// and per client address, known emails or not: after a few, each attempt must wait
    /// longer, and after more they are locked out for a while; such an attempt, or one
    /// arriving while too many passwords are being checked, is refused with THROTTLED,
    /// `extensions.retryAfter` (seconds) and a `Retry-After` header. A successful login
    /// resets the email's count.
    async fn login(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Login email.")] email: String,
        #[graphql(desc = "Password.", secret)] password: String,
    ) -> Result<LoginPayload> {
        let deps = deps(ctx);
        let client = client_info(ctx);
        let session = prima_service::auth::login(
            &deps.db.conn,
            &deps.tokens,
            &deps.login,
            &email,
            &password,
            client.ip_address.as_deref(),
        )
        .await
        .map_err(|err| retry_after_header(ctx, err))?;
        Ok(LoginPayload {
            token: session.token,
            expires_at: session.expires_at,
            user: session.user,
        })
    }
}
