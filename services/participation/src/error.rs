//! Participation's errors and their gRPC status.

use jamaa_server::status;
use tonic::{Code, Status};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid request")]
    InvalidArgument(status::FieldViolations),
    /// Unknown, or of another commune (the caller must not learn which).
    #[error("petition {0} was not found")]
    PetitionNotFound(Uuid),
    /// Identity, which knows the commune's signature threshold, could not be reached.
    #[error("the identity service is unavailable: {0}")]
    IdentityUnavailable(String),
    /// Identity does not know the caller's commune.
    #[error("commune {0} was not found")]
    CommuneNotFound(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("{0}")]
    Internal(String),
}

impl From<Error> for Status {
    fn from(error: Error) -> Status {
        match error {
            Error::InvalidArgument(violations) => violations.into_status(),
            Error::PetitionNotFound(id) => status::not_found(format!("petition {id}")),
            Error::IdentityUnavailable(cause) => {
                tracing::warn!(%cause, "identity unavailable");
                status::with_reason(
                    Code::Unavailable,
                    "IDENTITY_UNAVAILABLE",
                    "cannot read the commune's petition signature threshold from the identity service right now; please retry",
                )
            }
            Error::CommuneNotFound(code) => status::failed_precondition(
                "COMMUNE_NOT_FOUND",
                format!("your commune {code} is not known to the identity service"),
            ),
            Error::PermissionDenied(message) => status::permission_denied(message),
            Error::Database(error) => status::from_db(error),
            Error::Internal(message) => status::internal(message),
        }
    }
}

impl From<status::FieldViolations> for Error {
    fn from(violations: status::FieldViolations) -> Self {
        Error::InvalidArgument(violations)
    }
}
