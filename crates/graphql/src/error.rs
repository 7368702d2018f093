//! The one conversion from service errors to GraphQL errors.
//!
//! Resolvers return [`Result`], whose error is [`ApiError`]. `ApiError` deliberately does
//! not implement `Display`, so async-graphql's blanket `From<T: Display>` cannot swallow it:
//! every error reaches the client through [`From<ApiError> for async_graphql::Error`], with
//! `extensions.code` (and `extensions.field` for BAD_USER_INPUT). Internal errors are logged
//! here, with their detail, and sent without it.

use async_graphql::ErrorExtensions;
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
        async_graphql::Error::new(err.to_string()).extend_with(|_, ext| {
            ext.set("code", code);
            if let Some(field) = field {
                ext.set("field", field);
            }
        })
    }
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
