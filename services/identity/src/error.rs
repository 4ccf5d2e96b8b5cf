//! Identity's errors and their gRPC status.

use jamaa_server::status;
use tonic::{Code, Status};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid request")]
    InvalidArgument(status::FieldViolations),
    #[error("commune {0} was not found")]
    CommuneNotFound(String),
    #[error("user not found")]
    UserNotFound,
    #[error("a commune with code {0} exists already")]
    CommuneExists(String),
    #[error("an account with this e-mail exists already")]
    EmailTaken { field: &'static str },
    #[error("wrong e-mail or password")]
    WrongCredentials,
    #[error("this account is disabled")]
    AccountDisabled,
    #[error("administrators cannot disable their own account")]
    CannotDisableSelf,
    #[error("too many failed sign-ins; try again later")]
    TooManyAttempts { retry_after: std::time::Duration },
    #[error("the refresh token is not valid; sign in again")]
    BadRefreshToken,
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
            Error::CommuneNotFound(code) => status::not_found(format!("commune {code}")),
            Error::UserNotFound => status::not_found("the user"),
            Error::CommuneExists(code) => {
                status::already_exists(format!("a commune with code {code} exists already"))
            }
            Error::EmailTaken { field } => {
                let mut status = status::FieldViolations::new();
                status.add(field, "an account with this e-mail exists already");
                let invalid = status.into_status();
                Status::with_details(
                    Code::AlreadyExists,
                    "an account with this e-mail exists already",
                    invalid.details().to_vec().into(),
                )
            }
            Error::WrongCredentials => status::with_reason(
                Code::Unauthenticated,
                "WRONG_CREDENTIALS",
                "wrong e-mail or password",
            ),
            Error::AccountDisabled => status::with_reason(
                Code::Unauthenticated,
                "ACCOUNT_DISABLED",
                "this account is disabled; contact your commune",
            ),
            Error::CannotDisableSelf => status::failed_precondition(
                "CANNOT_DISABLE_SELF",
                "administrators cannot disable their own account",
            ),
            Error::TooManyAttempts { retry_after } => status::resource_exhausted(
                "TOO_MANY_ATTEMPTS",
                format!(
                    "too many failed sign-ins for this account; try again in {} seconds",
                    retry_after.as_secs().max(1)
                ),
                retry_after,
            ),
            Error::BadRefreshToken => status::with_reason(
                Code::Unauthenticated,
                "BAD_REFRESH_TOKEN",
                "the refresh token is not valid; sign in again",
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
