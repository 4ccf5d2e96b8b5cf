//! Notification's errors and their gRPC status.

use jamaa_server::status;
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid request")]
    InvalidArgument(status::FieldViolations),
    /// The notification does not exist or is someone else's (the caller cannot tell which).
    #[error("notification {0} was not found")]
    NotificationNotFound(String),
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
}

impl From<Error> for Status {
    fn from(error: Error) -> Status {
        match error {
            Error::InvalidArgument(violations) => violations.into_status(),
            Error::NotificationNotFound(id) => status::not_found(format!("notification {id}")),
            Error::Database(error) => status::from_db(error),
        }
    }
}

impl From<status::FieldViolations> for Error {
    fn from(violations: status::FieldViolations) -> Self {
        Error::InvalidArgument(violations)
    }
}
