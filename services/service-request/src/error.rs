//! The service-request service's errors and their gRPC status.

use jamaa_proto::servicerequest::v1::RequestStatus;
use jamaa_server::status;
use tonic::{Code, Status};

use crate::domain::status_label;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid request")]
    InvalidArgument(status::FieldViolations),
    /// Unknown, or the caller may not know it exists (another commune, another citizen).
    #[error("{0} was not found")]
    NotFound(String),
    #[error("a service with code {0} exists already in this commune")]
    ServiceExists(String),
    #[error("service {0} is not active")]
    ServiceInactive(String),
    #[error("cannot move a request from {} to {}", status_label(*.from), status_label(*.to))]
    InvalidTransition {
        from: RequestStatus,
        to: RequestStatus,
    },
    /// Another change committed between reading and updating the request, or the caller's
    /// etag is stale.
    #[error("the request changed meanwhile; reload and retry")]
    Conflict,
    /// Another edit of the service committed first.
    #[error("the service changed meanwhile; reload and retry")]
    ServiceChanged,
    #[error("{0}")]
    ClosedDayExists(String),
    /// A rule of the workflow forbids the call now; `reason` is the machine-readable code.
    #[error("{message}")]
    FailedPrecondition {
        reason: &'static str,
        message: String,
    },
    #[error("{0}")]
    PermissionDenied(String),
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("{0}")]
    Internal(String),
}

impl From<Error> for Status {
    fn from(error: Error) -> Status {
        let message = error.to_string();
        match error {
            Error::InvalidArgument(violations) => violations.into_status(),
            Error::NotFound(what) => status::not_found(what),
            Error::ServiceExists(_) => status::already_exists(message),
            Error::ServiceInactive(_) => status::failed_precondition("SERVICE_INACTIVE", message),
            Error::InvalidTransition { .. } => {
                status::failed_precondition("INVALID_TRANSITION", message)
            }
            Error::Conflict | Error::ServiceChanged => {
                status::with_reason(Code::Aborted, "CONCURRENT_MODIFICATION", message)
            }
            Error::ClosedDayExists(_) => status::already_exists(message),
            Error::FailedPrecondition { reason, .. } => {
                status::failed_precondition(reason, message)
            }
            Error::PermissionDenied(message) => status::permission_denied(message),
            Error::Database(error) => status::from_db(error),
            Error::Internal(message) => status::internal(message),
        }
    }
}

impl Error {
    pub fn precondition(reason: &'static str, message: impl Into<String>) -> Error {
        Error::FailedPrecondition {
            reason,
            message: message.into(),
        }
    }
}

impl From<status::FieldViolations> for Error {
    fn from(violations: status::FieldViolations) -> Self {
        Error::InvalidArgument(violations)
    }
}

/// Maps a unique-constraint violation (a concurrent duplicate) to `duplicate`.
pub fn unique_violation(error: sea_orm::DbErr, duplicate: Error) -> Error {
    match error.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => duplicate,
        _ => Error::Database(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_transitions_name_both_states() {
        let status: Status = Error::InvalidTransition {
            from: RequestStatus::Closed,
            to: RequestStatus::InProgress,
        }
        .into();
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert!(status.message().contains("CLOSED"), "{}", status.message());
        assert!(
            status.message().contains("IN_PROGRESS"),
            "{}",
            status.message()
        );
    }

    #[test]
    fn conflicts_are_aborted() {
        let status: Status = Error::Conflict.into();
        assert_eq!(status.code(), Code::Aborted);
        assert_eq!(
            status.message(),
            "the request changed meanwhile; reload and retry"
        );
    }
}
