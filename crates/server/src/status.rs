//! Errors to gRPC status, the one way a Jamaa service reports a failure.
//!
//! Bad input is INVALID_ARGUMENT with a `BadRequest` detail naming every bad field; each status
//! also carries an `ErrorInfo` (reason, domain `jamaa.ma`) so clients can branch on the reason.
//! Internal failures are logged with their cause and returned as a generic INTERNAL message:
//! nothing of the database or the broker leaks to callers.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo.domain` of every Jamaa error.
pub const ERROR_DOMAIN: &str = "jamaa.ma";

/// Collects field violations while parsing a request; turns into one INVALID_ARGUMENT.
#[derive(Debug, Default)]
pub struct FieldViolations {
    violations: Vec<(String, String)>,
}

impl FieldViolations {
    pub fn new() -> Self {
        Self::default()
    }

    /// One violation: `field` is wrong, and why.
    pub fn single(field: impl Into<String>, description: impl Into<String>) -> Self {
        let mut violations = Self::new();
        violations.add(field, description);
        violations
    }

    /// Records that `field` is wrong, and why. Both are cut to [`MAX_DETAIL_BYTES`] (a
    /// description may quote the caller's input), and at most [`MAX_VIOLATIONS`] are kept: the
    /// answer travels in HTTP/2 headers, which have a size limit.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        if self.violations.len() < MAX_VIOLATIONS {
            self.violations
                .push((bounded(field.into()), bounded(description.into())));
        }
    }

    /// Records the error of a parse result and returns its value, if any.
    pub fn check<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(description) => {
                self.add(field, description);
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.violations.is_empty()
    }

    /// `Ok(())` when nothing was wrong, else the INVALID_ARGUMENT status.
    pub fn into_result(self) -> Result<(), Status> {
        if self.violations.is_empty() {
            Ok(())
        } else {
            Err(self.into_status())
        }
    }

    pub fn into_status(self) -> Status {
        let fields: Vec<&str> = self
            .violations
            .iter()
            .map(|(field, _)| field.as_str())
            .collect();
        let message = bounded(match self.violations.as_slice() {
            [(field, description)] => format!("{field}: {description}"),
            _ => format!("invalid fields: {}", fields.join(", ")),
        });
        let mut details = ErrorDetails::new();
        for (field, description) in &self.violations {
            details.add_bad_request_violation(field.clone(), description.clone());
        }
        details.set_error_info(
            "INVALID_ARGUMENT",
            ERROR_DOMAIN,
            std::collections::HashMap::new(),
        );
        Status::with_error_details(Code::InvalidArgument, message, details)
    }
}

/// INVALID_ARGUMENT for one field.
pub fn invalid_argument(field: &str, description: impl Into<String>) -> Status {
    let mut violations = FieldViolations::new();
    violations.add(field, description);
    violations.into_status()
}

/// A status with an `ErrorInfo` reason. The message is cut to [`MAX_DETAIL_BYTES`].
pub fn with_reason(code: Code, reason: &str, message: impl Into<String>) -> Status {
    let mut details = ErrorDetails::new();
    details.set_error_info(reason, ERROR_DOMAIN, std::collections::HashMap::new());
    Status::with_error_details(code, bounded(message.into()), details)
}

/// The longest field name, description or message an error carries, in bytes (UTF-8). With
/// [`MAX_VIOLATIONS`], an error's headers stay well under HTTP/2's usual 16 KiB.
pub const MAX_DETAIL_BYTES: usize = 200;
/// The most field violations one error lists.
pub const MAX_VIOLATIONS: usize = 20;

/// `text`, cut to at most [`MAX_DETAIL_BYTES`] on a character boundary (an ellipsis marks it).
fn bounded(text: String) -> String {
    if text.len() <= MAX_DETAIL_BYTES {
        return text;
    }
    let mut at = MAX_DETAIL_BYTES - '…'.len_utf8();
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    format!("{}…", &text[..at])
}

/// RESOURCE_EXHAUSTED with a reason and a `RetryInfo` saying when to try again (the gateway turns
/// it into `429` with `Retry-After`).
pub fn resource_exhausted(
    reason: &str,
    message: impl Into<String>,
    retry_after: std::time::Duration,
) -> Status {
    let mut details = ErrorDetails::new();
    details.set_error_info(reason, ERROR_DOMAIN, std::collections::HashMap::new());
    details.set_retry_info(Some(retry_after));
    Status::with_error_details(Code::ResourceExhausted, message.into(), details)
}

/// NOT_FOUND for `what` (e.g. "request 0190…"). Also used when the caller may not know it exists.
pub fn not_found(what: impl std::fmt::Display) -> Status {
    with_reason(Code::NotFound, "NOT_FOUND", format!("{what} was not found"))
}

/// ALREADY_EXISTS with a message.
pub fn already_exists(message: impl Into<String>) -> Status {
    with_reason(Code::AlreadyExists, "ALREADY_EXISTS", message)
}

/// FAILED_PRECONDITION with a reason and message.
pub fn failed_precondition(reason: &str, message: impl Into<String>) -> Status {
    with_reason(Code::FailedPrecondition, reason, message)
}

/// PERMISSION_DENIED with a message.
pub fn permission_denied(message: impl Into<String>) -> Status {
    with_reason(Code::PermissionDenied, "PERMISSION_DENIED", message)
}

/// INTERNAL: logs `error` and returns a message that reveals nothing of it.
pub fn internal(error: impl std::fmt::Display) -> Status {
    tracing::error!(%error, "internal error");
    with_reason(
        Code::Internal,
        "INTERNAL",
        "something went wrong on our side; please try again",
    )
}

/// Maps a database error: unavailability becomes UNAVAILABLE (retryable), the rest INTERNAL.
pub fn from_db(error: sea_orm::DbErr) -> Status {
    if let Some(code) = data_exception(&error) {
        tracing::info!(%code, "a value the database cannot store");
        return with_reason(
            Code::InvalidArgument,
            "INVALID_VALUE",
            "a value in the request cannot be stored (a NUL character, or a number or date out of range)",
        );
    }
    if database_unavailable(&error) {
        tracing::warn!(%error, "database unavailable");
        with_reason(
            Code::Unavailable,
            "DATABASE_UNAVAILABLE",
            "the service is briefly unavailable; please retry",
        )
    } else {
        internal(error)
    }
}

/// The SQLSTATE of a data exception (class 22: a NUL character in text, a number or a date out
/// of range…): a value the caller sent that no validation caught, not a fault of the server.
fn data_exception(error: &sea_orm::DbErr) -> Option<String> {
    use sea_orm::{DbErr, RuntimeErr};
    match error {
        DbErr::Query(RuntimeErr::SqlxError(error)) | DbErr::Exec(RuntimeErr::SqlxError(error)) => {
            let code = error.as_database_error()?.code()?;
            code.starts_with("22").then(|| code.to_string())
        }
        _ => None,
    }
}

/// Whether `error` says the database could not be reached (rather than refused the statement):
/// no connection to be had, or the connection broke under a query (I/O error, a dead pool).
pub fn database_unavailable(error: &sea_orm::DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    use sea_orm::{DbErr, RuntimeErr};
    match error {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Query(RuntimeErr::SqlxError(error)) | DbErr::Exec(RuntimeErr::SqlxError(error)) => {
            matches!(
                error.as_ref(),
                Sqlx::Io(_)
                    | Sqlx::Tls(_)
                    | Sqlx::PoolTimedOut
                    | Sqlx::PoolClosed
                    | Sqlx::WorkerCrashed
            )
        }
        _ => false,
    }
}

/// The canonical name of a gRPC code, as gRPC documents it (`OK`, `INVALID_ARGUMENT`, …).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_violations_name_every_field() {
        let mut violations = FieldViolations::new();
        violations.add("email", "must contain @");
        violations.add("password", "must have at least 10 characters");
        let status = violations.into_status();
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let bad_request = details.bad_request().expect("bad request details");
        let fields: Vec<&str> = bad_request
            .field_violations
            .iter()
            .map(|violation| violation.field.as_str())
            .collect();
        assert_eq!(fields, ["email", "password"]);
    }

    #[test]
    fn details_stay_small_whatever_the_input() {
        let long = "x".repeat(20_000);
        let mut violations = FieldViolations::new();
        for _ in 0..1000 {
            violations.add(long.clone(), format!("{long} cannot be changed"));
        }
        let status = violations.into_status();
        assert!(status.message().len() <= MAX_DETAIL_BYTES);
        let details = status.get_error_details();
        let bad_request = details.bad_request().expect("violations");
        assert_eq!(bad_request.field_violations.len(), MAX_VIOLATIONS);
        assert!(bad_request.field_violations[0].description.len() <= MAX_DETAIL_BYTES);
        let arabic = "ع".repeat(1000);
        let reason = with_reason(Code::NotFound, "NOT_FOUND", arabic);
        assert!(reason.message().ends_with('…'));
        assert!(reason.message().len() <= MAX_DETAIL_BYTES);
    }

    #[test]
    fn internal_errors_do_not_leak() {
        let status = internal("relation \"users\" does not exist");
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("users"));
    }
}
