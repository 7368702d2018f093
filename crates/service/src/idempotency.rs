//! Idempotency keys (DOMAIN.md "Idempotency"), as Stripe has them: a mutation that creates
//! money or bookings takes an optional key of up to 255 characters. A retry with the same
//! key and the same input returns the first result without doing anything again; the same
//! key with different input is a CONFLICT. Keys belong to the user who sent them (two users
//! may use the same key) and to one operation, and are kept [`RETENTION`] (24 hours).
//!
//! The key row is written in the same transaction as what it creates, under a primary key
//! (user, operation, key): of two concurrent first attempts, one commits and the other's
//! insert fails on the key; that one rolls back everything it did and answers as a retry.
//! The insert is the last lock a change takes before its outbox rows (the lock order of
//! [`crate::bookings`]), since it waits for a concurrent first use of the key. A
//! transaction that fails transiently and runs again ([`crate::db::retry_transient`]) loses
//! its key row with everything else in the rollback; the next attempt writes it again, or,
//! if a concurrent first use committed meanwhile, fails on the key and answers as its retry.

use chrono::{DateTime, TimeDelta, Utc};
use prima_entity::idempotency_keys;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::{Error, Result};

/// How long a key is remembered.
pub const RETENTION: TimeDelta = TimeDelta::hours(24);

/// The longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// A validated key with the fingerprint of the request it came with.
#[derive(Debug, Clone)]
pub struct Key {
    /// The key as sent.
    pub key: String,
    /// The operation it is used for, e.g. `createBooking`.
    pub operation: &'static str,
    /// SHA-256 (hex) of the request's canonical JSON.
    pub request_hash: String,
}

impl Key {
    /// Checks a key (1 to 255 characters, no surrounding blanks) and fingerprints the
    /// request: BAD_USER_INPUT on `idempotencyKey` otherwise.
    pub fn new(key: &str, operation: &'static str, request: &serde_json::Value) -> Result<Key> {
        if key.is_empty() || key.chars().count() > MAX_KEY_LEN || key.trim() != key {
            return Err(Error::invalid(
                "idempotencyKey",
                format!(
                    "`idempotencyKey` must have 1 to {MAX_KEY_LEN} characters and no leading or trailing blanks"
                ),
            ));
        }
        Ok(Key {
            key: key.to_owned(),
            operation,
            request_hash: fingerprint(request),
        })
    }
}

/// SHA-256 of a JSON value's canonical text: object keys sorted at every level, so equal
/// values give equal fingerprints whatever order their keys were built in.
fn fingerprint(request: &serde_json::Value) -> String {
    let mut text = String::new();
    canonical(request, &mut text);
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn canonical(value: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// What an earlier use of a key decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// Never used (or expired).
    New,
    /// Used with this same request: the resource it created.
    Replay(Uuid),
}

/// Looks the key up for `user`: [`Seen::Replay`] when it was used with the same request and
/// has not expired, CONFLICT when it was used with a different one.
pub async fn lookup(
    db: &impl ConnectionTrait,
    user: Uuid,
    key: &Key,
    now: DateTime<Utc>,
) -> Result<Seen> {
    let found = idempotency_keys::Entity::find()
        .filter(idempotency_keys::Column::UserId.eq(user))
        .filter(idempotency_keys::Column::Operation.eq(key.operation))
        .filter(idempotency_keys::Column::Key.eq(key.key.as_str()))
        .filter(idempotency_keys::Column::ExpiresAt.gt(now))
        .one(db)
        .await?;
    match found {
        None => Ok(Seen::New),
        Some(row) if row.request_hash != key.request_hash => Err(Error::Conflict(format!(
            "idempotency key {:?} was already used for a different {} request",
            key.key, key.operation
        ))),
        Some(row) => match row.resource_id {
            Some(id) => Ok(Seen::Replay(id)),
            None => Err(Error::internal(anyhow::anyhow!(
                "idempotency key without a resource"
            ))),
        },
    }
}

/// Records the key inside the transaction that created `resource`. An expired row of the
/// same key is replaced. A concurrent first use of the same key makes this fail with
/// CONFLICT (unique violation); the caller then rolls back and answers with [`lookup`].
pub async fn record(
    txn: &impl ConnectionTrait,
    user: Uuid,
    key: &Key,
    resource: Uuid,
    now: DateTime<Utc>,
) -> Result<()> {
    idempotency_keys::Entity::delete_many()
        .filter(idempotency_keys::Column::UserId.eq(user))
        .filter(idempotency_keys::Column::Operation.eq(key.operation))
        .filter(idempotency_keys::Column::Key.eq(key.key.as_str()))
        .filter(idempotency_keys::Column::ExpiresAt.lte(now))
        .exec(txn)
        .await?;
    idempotency_keys::Entity::insert(idempotency_keys::ActiveModel {
        key: Set(key.key.clone()),
        user_id: Set(user),
        operation: Set(key.operation.to_owned()),
        request_hash: Set(key.request_hash.clone()),
        response: Set(None),
        resource_id: Set(Some(resource)),
        created_at: Set(now),
        expires_at: Set(now + RETENTION),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// Deletes the keys that expired before `now`; returns how many.
pub async fn purge_expired(db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<u64> {
    let deleted = idempotency_keys::Entity::delete_many()
        .filter(idempotency_keys::Column::ExpiresAt.lte(now))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_one_to_255_characters_without_surrounding_blanks() {
        let request = json!({});
        assert!(Key::new("k", "op", &request).is_ok());
        assert!(Key::new(&"k".repeat(255), "op", &request).is_ok());
        for bad in ["", " k", "k ", &"k".repeat(256)] {
            let err = Key::new(bad, "op", &request).unwrap_err();
            assert_eq!(err.code(), "BAD_USER_INPUT", "{bad:?}");
        }
    }

    #[test]
    fn equal_requests_have_equal_fingerprints_and_different_ones_differ() {
        let a = Key::new("k", "op", &json!({"b": 1, "a": [1, 2]})).unwrap();
        let b = Key::new("k", "op", &json!({"a": [1, 2], "b": 1})).unwrap();
        let c = Key::new("k", "op", &json!({"a": [1, 2], "b": 2})).unwrap();
        assert_eq!(a.request_hash, b.request_hash);
        assert_ne!(a.request_hash, c.request_hash);
        assert_eq!(a.request_hash.len(), 64);
    }
}
