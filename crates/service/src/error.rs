//! The one error type of the domain. Every service function returns [`Result`]; the GraphQL
//! layer converts an [`Error`] to `extensions.code` in exactly one place. Database errors
//! never reach a client as text: they become [`Error::Internal`] (logged, then hidden), or a
//! [`Error::Conflict`] / [`Error::Invalid`] when a constraint names what went wrong.

use std::sync::Arc;

/// What went wrong, in terms a client can act on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// No credentials, or credentials that are not (or no longer) valid.
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller can see the object but their role does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// The object does not exist, or the caller may not know that it exists.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for, e.g. "venue".
        what: &'static str,
    },
    /// Input that breaks a rule; `field` names the input field (camelCase, as the client sent it).
    #[error("{message}")]
    Invalid {
        /// The offending input field.
        field: String,
        /// A message a person can act on.
        message: String,
    },
    /// The request conflicts with the current state (a concurrent change, a duplicate).
    #[error("{0}")]
    Conflict(String),
    /// Too many requests (failed logins, a busy password hasher, a spent rate limit): try
    /// again after `retry_after`. Nothing was done.
    #[error("{message}")]
    Throttled {
        /// A message a person can act on.
        message: String,
        /// When trying again can succeed.
        retry_after: std::time::Duration,
    },
    /// Anything else: logged with its detail where it is handled, shown without it.
    #[error("internal error")]
    Internal(Arc<anyhow::Error>),
}

/// The result of every service function.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A validation error naming the input field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The stable code clients switch on (`extensions.code`).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Unauthenticated(_) => "UNAUTHENTICATED",
            Error::Forbidden(_) => "FORBIDDEN",
            Error::NotFound { .. } => "NOT_FOUND",
            Error::Invalid { .. } => "BAD_USER_INPUT",
            Error::Conflict(_) => "CONFLICT",
            Error::Throttled { .. } => "THROTTLED",
            Error::Internal(_) => "INTERNAL",
        }
    }

    /// For THROTTLED, when to retry in whole seconds (what `extensions.retryAfter` and the
    /// `Retry-After` header say; see [`whole_seconds`]).
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Error::Throttled { retry_after, .. } => Some(whole_seconds(*retry_after)),
            _ => None,
        }
    }

    /// Wraps any error as internal.
    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        Error::Internal(Arc::new(err.into()))
    }
}

/// A wait in whole seconds, rounded up and at least 1: a client told to retry after 0 s
/// would retry at once and be refused again.
pub fn whole_seconds(wait: std::time::Duration) -> u64 {
    u64::try_from(wait.as_millis().div_ceil(1000).max(1)).unwrap_or(u64::MAX)
}

impl From<sea_orm::DbErr> for Error {
    fn from(err: sea_orm::DbErr) -> Self {
        use sea_orm::SqlErr;
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(detail)) => {
                tracing::debug!(%detail, "unique violation");
                Error::Conflict("this conflicts with an existing record".into())
            }
            Some(SqlErr::ForeignKeyConstraintViolation(detail)) => {
                tracing::debug!(%detail, "foreign key violation");
                Error::Invalid {
                    field: "id".into(),
                    message: "a referenced record does not exist".into(),
                }
            }
            _ => Error::internal(err),
        }
    }
}

impl From<anyhow::Error> for Error {
    fn from(err: anyhow::Error) -> Self {
        Error::Internal(Arc::new(err))
    }
}
