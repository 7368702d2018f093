//! The one conversion from service errors to GraphQL errors.
//!
//! Resolvers return [`Result`], whose error is [`ApiError`]. `ApiError` deliberately does
//! not implement `Display`, so async-graphql's blanket `From<T: Display>` cannot swallow it:
//! every error reaches the client through [`From<ApiError> for async_graphql::Error`], with
//! `extensions.code` (and `extensions.field` for BAD_USER_INPUT, `extensions.retryAfter` in
//! whole seconds for THROTTLED). Internal errors are logged here, with their detail, and sent
//! without it. A resolver that can be throttled also passes its error through
//! [`retry_after_header`], so HTTP clients get a `Retry-After` header too.

use async_graphql::{Context, ErrorExtensions};
use prima_service::Error;

/// A service error on its way to the client.
#[derive(Debug, Clone)]
pub struct ApiError(pub Error);

/// The result type of every resolver.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        ApiError(err)
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(ApiError(err): ApiError) -> Self {
        if let Error::Internal(detail) = &err {
            tracing::error!(error = ?detail, "internal error");
        }
        let code = err.code();
        let field = match &err {
            Error::Invalid { field, .. } => Some(field.clone()),
            _ => None,
        };
        let retry_after = err.retry_after_secs();
        async_graphql::Error::new(err.to_string()).extend_with(|_, ext| {
            ext.set("code", code);
            if let Some(field) = field {
                ext.set("field", field);
            }
            if let Some(seconds) = retry_after {
                ext.set("retryAfter", seconds);
            }
        })
    }
}

/// Sets the HTTP `Retry-After` header (whole seconds) when `err` is THROTTLED, keeping the
/// longest wait when several fields of one request were throttled, and passes the error on.
pub fn retry_after_header(ctx: &Context<'_>, err: impl Into<ApiError>) -> ApiError {
    let err = err.into();
    if let Some(seconds) = err.0.retry_after_secs() {
        let earlier = ctx
            .insert_http_header("retry-after", seconds.to_string())
            .and_then(|old| old.to_str().ok()?.parse::<u64>().ok());
        if let Some(earlier) = earlier.filter(|earlier| *earlier > seconds) {
            ctx.insert_http_header("retry-after", earlier.to_string());
        }
    }
    err
}

/// Parses a client-supplied ID as a UUID, naming the argument when it is not one.
pub fn parse_id(field: &str, id: &async_graphql::ID) -> Result<uuid::Uuid> {
    uuid::Uuid::parse_str(id.as_str()).map_err(|_| {
        ApiError(Error::invalid(
            field,
            format!("`{field}` is not a valid ID"),
        ))
    })
}
