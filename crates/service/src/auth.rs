//! Authentication: argon2 password hashes and signed, expiring bearer tokens.
//!
//! A token is `v1.<payload>.<signature>`: the payload is base64url JSON `{sub, iat, exp}`,
//! the signature an HMAC-SHA256 of `v1.<payload>` with the server's secret. Tokens carry no
//! roles: the caller's user row and venue access are loaded on every request, so a
//! suspension or a revoked venue takes effect on the very next request.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use prima_entity::enums::UserStatus;
use prima_entity::{user_venue_access, users};
use rand::RngCore;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

use crate::access::{Actor, Level};
use crate::error::{Error, Result};
use crate::time::now;

/// The secret that signs tokens. Never printed.
#[derive(Clone)]
pub struct TokenSecret(Arc<[u8]>);

impl TokenSecret {
    /// A secret from configuration.
    pub fn new(bytes: impl AsRef<[u8]>) -> Self {
        TokenSecret(bytes.as_ref().into())
    }

    /// A random secret: tokens stop working when the process restarts.
    pub fn random() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        TokenSecret(bytes.as_slice().into())
    }
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSecret(<redacted>)")
    }
}

/// Issues and checks tokens.
#[derive(Debug, Clone)]
pub struct Tokens {
    secret: TokenSecret,
    ttl: Duration,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    sub: Uuid,
    iat: i64,
    exp: i64,
}

const VERSION: &str = "v1";

impl Tokens {
    /// Tokens signed with `secret`, valid for `ttl`.
    pub fn new(secret: TokenSecret, ttl: Duration) -> Self {
        Tokens { secret, ttl }
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.secret.0).expect("HMAC takes keys of any length")
    }

    /// A token for the user, issued at `at`; returns it with its expiry.
    pub fn issue(&self, user_id: Uuid, at: DateTime<Utc>) -> (String, DateTime<Utc>) {
        let exp = at + self.ttl;
        let claims = Claims {
            sub: user_id,
            iat: at.timestamp(),
            exp: exp.timestamp(),
        };
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("claims encode"));
        let signed = format!("{VERSION}.{payload}");
        let mut mac = self.mac();
        mac.update(signed.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        (format!("{signed}.{signature}"), exp)
    }

    /// The user id of a valid, unexpired token.
    pub fn verify(&self, token: &str, at: DateTime<Utc>) -> Result<Uuid> {
        let bad = || Error::Unauthenticated("the token is invalid; log in again".into());
        let mut parts = token.split('.');
        let (Some(version), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        if version != VERSION {
            return Err(bad());
        }
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| bad())?;
        let mut mac = self.mac();
        mac.update(version.as_bytes());
        mac.update(b".");
        mac.update(payload.as_bytes());
        // Constant-time comparison: a forged token learns nothing from timing.
        mac.verify_slice(&signature).map_err(|_| bad())?;
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(bad)?;
        if claims.exp <= at.timestamp() {
            return Err(Error::Unauthenticated(
                "the token has expired; log in again".into(),
            ));
        }
        Ok(claims.sub)
    }
}

/// An argon2id hash of a password, in PHC string form.
pub fn hash_password(password: &str) -> Result<String> {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let salt = SaltString::encode_b64(&bytes)
        .map_err(|err| Error::internal(anyhow::anyhow!("encoding a salt: {err}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|err| Error::internal(anyhow::anyhow!("hashing a password: {err}")))
}

fn password_matches(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A real hash of a random password, checked when the email is unknown so that a wrong
/// email and a wrong password take the same time and give the same answer.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        hash_password(&URL_SAFE_NO_PAD.encode(bytes)).unwrap_or_default()
    })
}

/// A successful login.
#[derive(Debug, Clone)]
pub struct Session {
    /// The bearer token.
    pub token: String,
    /// When the token stops working.
    pub expires_at: DateTime<Utc>,
    /// The user who logged in.
    pub user: users::Model,
}

const BAD_LOGIN: &str = "the email or password is incorrect";

/// Checks an email and password. A wrong password and an unknown email give the same
/// UNAUTHENTICATED answer; a suspended or inactive account is told so only after its
/// password was right.
#[tracing::instrument(skip_all)]
pub async fn login(
    db: &impl ConnectionTrait,
    tokens: &Tokens,
    email: &str,
    password: &str,
) -> Result<Session> {
    let email = email.trim().to_lowercase();
    let user = users::Entity::find()
        .filter(users::Column::Email.eq(email))
        .one(db)
        .await?;
    let password = password.to_owned();
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    // argon2 is deliberately slow: keep it off the async worker threads.
    let matches = tokio::task::spawn_blocking(move || match stored {
        Some(hash) => password_matches(&password, &hash),
        None => {
            password_matches(&password, decoy_hash());
            false
        }
    })
    .await
    .map_err(Error::internal)?;
    let user = match user {
        Some(user) if matches => user,
        _ => return Err(Error::Unauthenticated(BAD_LOGIN.into())),
    };
    check_status(&user)?;
    let at = now();
    let mut active: users::ActiveModel = user.into();
    active.last_login_at = Set(Some(at));
    let user = active.update(db).await?;
    let (token, expires_at) = tokens.issue(user.id, at);
    Ok(Session {
        token,
        expires_at,
        user,
    })
}

fn check_status(user: &users::Model) -> Result<()> {
    match user.status {
        UserStatus::Active => Ok(()),
        UserStatus::Suspended => Err(Error::Unauthenticated("this account is suspended".into())),
        UserStatus::Inactive => Err(Error::Unauthenticated("this account is inactive".into())),
    }
}

/// The caller behind a bearer token, with their current venue access.
#[tracing::instrument(skip_all)]
pub async fn authenticate(
    db: &impl ConnectionTrait,
    tokens: &Tokens,
    token: &str,
) -> Result<Actor> {
    let user_id = tokens.verify(token, now())?;
    actor_for(db, user_id).await
}

/// Loads a user as an [`Actor`]: the user must exist and be ACTIVE.
pub async fn actor_for(db: &impl ConnectionTrait, user_id: Uuid) -> Result<Actor> {
    let user = users::Entity::find_by_id(user_id)
        .one(db)
        .await?
        .ok_or_else(|| Error::Unauthenticated("this account no longer exists".into()))?;
    check_status(&user)?;
    let rows = user_venue_access::Entity::find()
        .filter(user_venue_access::Column::UserId.eq(user_id))
        .filter(user_venue_access::Column::RevokedAt.is_null())
        .all(db)
        .await?;
    let venues: HashMap<Uuid, Level> = rows
        .into_iter()
        .map(|row| (row.venue_id, Level::of(user.role, row.role)))
        .collect();
    Ok(Actor {
        user_id: user.id,
        name: format!("{} {}", user.first_name, user.last_name),
        role: user.role,
        venues: Arc::new(venues),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        Tokens::new(TokenSecret::new(b"test-secret"), Duration::hours(1))
    }

    #[test]
    fn an_issued_token_verifies_to_its_user() {
        let user = Uuid::new_v4();
        let (token, _) = tokens().issue(user, now());
        assert_eq!(tokens().verify(&token, now()).unwrap(), user);
    }

    #[test]
    fn an_expired_token_is_refused() {
        let (token, exp) = tokens().issue(Uuid::new_v4(), now());
        let err = tokens().verify(&token, exp).unwrap_err();
        assert_eq!(err.code(), "UNAUTHENTICATED");
        assert!(err.to_string().contains("expired"));
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() {
        let other = Tokens::new(TokenSecret::new(b"other"), Duration::hours(1));
        let (token, _) = other.issue(Uuid::new_v4(), now());
        assert_eq!(
            tokens().verify(&token, now()).unwrap_err().code(),
            "UNAUTHENTICATED"
        );
    }

    #[test]
    fn a_tampered_payload_is_refused() {
        let (token, _) = tokens().issue(Uuid::new_v4(), now());
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let forged = Claims {
            sub: Uuid::new_v4(),
            iat: 0,
            exp: i64::MAX,
        };
        parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert!(tokens().verify(&parts.join("."), now()).is_err());
        assert!(tokens().verify("garbage", now()).is_err());
        assert!(tokens().verify("v1.a.b.c", now()).is_err());
    }

    #[test]
    fn a_password_hash_checks_the_password() {
        let hash = hash_password("prima-demo").unwrap();
        assert!(password_matches("prima-demo", &hash));
        assert!(!password_matches("prima-dem0", &hash));
        assert!(!password_matches("anything", decoy_hash()));
    }

    #[test]
    fn secrets_never_print() {
        assert_eq!(
            format!("{:?}", TokenSecret::new(b"s3cret")),
            "TokenSecret(<redacted>)"
        );
    }
}
