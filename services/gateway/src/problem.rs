//! Failures as HTTP problem details (RFC 9457), the one way the gateway answers an error.
//!
//! A gRPC status becomes a problem whose `type` ends with the status' `ErrorInfo` reason (or the
//! gRPC code name when there is none), whose `detail` is the status message, and whose `errors`
//! are the `BadRequest` field violations. The gateway's own failures (a body that does not parse,
//! an unknown route) use the same shape.

use axum::Json;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jamaa_server::status::code_name;
use serde::{Serialize, Serializer};
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// The media type of every error response.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// Problem `type`s are this followed by a reason, e.g. `https://jamaa.ma/problems/NOT_FOUND`.
pub const PROBLEM_TYPE_BASE: &str = "https://jamaa.ma/problems/";

/// An HTTP problem details object (RFC 9457) with Jamaa's extension members `code` and `errors`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// `https://jamaa.ma/problems/<reason>`: the `ErrorInfo` reason, else the gRPC code name.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status.
    #[serde(serialize_with = "status_as_number")]
    pub status: StatusCode,
    /// What went wrong this time (the gRPC status message).
    pub detail: String,
    /// The gRPC code name, e.g. `INVALID_ARGUMENT`.
    pub code: &'static str,
    /// Every bad field, from the status' `BadRequest` details; empty when none.
    pub errors: Vec<FieldError>,
    /// Seconds to wait before trying again, from the status' `RetryInfo` (rounded up): sent as
    /// `Retry-After`.
    #[serde(skip)]
    pub retry_after_seconds: Option<std::num::NonZeroU32>,
}

/// One bad field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field's path as the service names it, e.g. `admin_email` or `page_size`.
    pub field: String,
    pub description: String,
}

impl Problem {
    /// A problem of the gateway's own, with the gRPC `code` closest to it.
    pub fn new(status: StatusCode, code: Code, reason: &str, detail: impl Into<String>) -> Problem {
        Problem {
            problem_type: format!("{PROBLEM_TYPE_BASE}{reason}"),
            title: title(code).to_string(),
            status,
            detail: detail.into(),
            code: code_name(code),
            errors: Vec::new(),
            retry_after_seconds: None,
        }
    }

    /// The problem a service's gRPC status stands for.
    pub fn from_status(status: &Status) -> Problem {
        // tonic's client gives up at the call's deadline by itself, answering CANCELLED
        // ("Timeout expired"): for the client, that is the service taking too long.
        if status.code() == Code::Cancelled && status.message().contains("Timeout expired") {
            return Problem::new(
                StatusCode::GATEWAY_TIMEOUT,
                Code::DeadlineExceeded,
                "DEADLINE_EXCEEDED",
                "the service took too long to answer",
            );
        }
        let details = status.get_error_details();
        let reason = details.error_info().map(|info| info.reason.clone());
        let errors = details
            .bad_request()
            .map(|bad_request| {
                bad_request
                    .field_violations
                    .iter()
                    .map(|violation| FieldError {
                        field: violation.field.clone(),
                        description: violation.description.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let detail = match (status.code(), &reason) {
            // Without Jamaa's ErrorInfo these statuses come from the transport (tonic, hyper),
            // not from a service: their messages describe our network, so they stay in the log.
            (Code::Unavailable, None) => {
                tracing::warn!(message = status.message(), "a service is unreachable");
                "the service is unreachable; please retry".to_string()
            }
            (Code::Unknown | Code::Internal, None) => {
                tracing::error!(code = ?status.code(), message = status.message(), "gRPC call failed");
                "something went wrong on our side; please try again".to_string()
            }
            _ => status.message().to_string(),
        };
        let reason = reason.unwrap_or_else(|| code_name(status.code()).to_string());
        let retry_after_seconds = details
            .retry_info()
            .and_then(|info| info.retry_delay)
            .map(|delay| delay.as_secs() + u64::from(delay.subsec_nanos() > 0))
            .and_then(|seconds| u32::try_from(seconds.max(1)).ok())
            .and_then(std::num::NonZeroU32::new);
        Problem {
            errors,
            retry_after_seconds,
            ..Problem::new(http_status(status.code()), status.code(), &reason, detail)
        }
    }

    /// The request's JSON (body, query or path) does not parse or does not fit its message.
    pub fn malformed(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::BAD_REQUEST,
            Code::InvalidArgument,
            "MALFORMED_REQUEST",
            detail,
        )
    }

    /// Bad query parameters, each named in `errors`.
    pub fn invalid_fields(errors: Vec<FieldError>) -> Problem {
        let names: Vec<&str> = errors.iter().map(|error| error.field.as_str()).collect();
        let detail = format!("invalid query parameters: {}", names.join(", "));
        Problem {
            errors,
            ..Problem::new(
                StatusCode::BAD_REQUEST,
                Code::InvalidArgument,
                "INVALID_ARGUMENT",
                detail,
            )
        }
    }

    /// No route has this path.
    pub fn route_not_found(path: &str) -> Problem {
        Problem::new(
            StatusCode::NOT_FOUND,
            Code::NotFound,
            "ROUTE_NOT_FOUND",
            format!("there is no resource at {path}; see /openapi.json"),
        )
    }

    /// The path exists, not with this method.
    pub fn method_not_allowed(method: &str, path: &str) -> Problem {
        Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            Code::Unimplemented,
            "METHOD_NOT_ALLOWED",
            format!("{method} is not allowed on {path}; see /openapi.json"),
        )
    }

    /// The body is not JSON.
    pub fn unsupported_media_type(content_type: &str) -> Problem {
        Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Code::InvalidArgument,
            "UNSUPPORTED_MEDIA_TYPE",
            format!("the body must be application/json, not {content_type}"),
        )
    }

    /// The body could not be read (too large, or the connection broke).
    pub fn from_body_rejection(rejection: &BytesRejection) -> Problem {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                Code::InvalidArgument,
                "BODY_TOO_LARGE",
                format!("the body is larger than {} bytes", crate::MAX_BODY_BYTES),
            )
        } else {
            Problem::malformed(rejection.body_text())
        }
    }

    /// A path parameter could not be read (e.g. not UTF-8 once percent-decoded).
    pub fn from_path_rejection(rejection: &PathRejection) -> Problem {
        Problem::malformed(rejection.body_text())
    }

    /// The query string could not be read.
    pub fn from_query_rejection(rejection: &QueryRejection) -> Problem {
        Problem::malformed(rejection.body_text())
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status;
        let retry_after_seconds = self.retry_after_seconds;
        let mut response = (status, Json(self)).into_response();
        if let Some(seconds) = retry_after_seconds {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds.get()));
        }
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
        );
        response
    }
}

fn status_as_number<S: Serializer>(status: &StatusCode, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u16(status.as_u16())
}

/// The HTTP status of a gRPC code.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        // Google's mapping says 400, but FAILED_PRECONDITION means "well-formed, yet not allowed
        // in the resource's current state" (e.g. a status change the workflow forbids). 422 keeps
        // that apart from malformed input (400), so clients know resending the same request
        // after fixing it will not help: the state has to change first.
        Code::FailedPrecondition => StatusCode::UNPROCESSABLE_ENTITY,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Ok | Code::Cancelled | Code::Unknown | Code::Internal | Code::DataLoss => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

/// A problem's `title`: one short summary per gRPC code.
fn title(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Request cancelled",
        Code::Unknown => "Unknown error",
        Code::InvalidArgument => "Invalid request",
        Code::DeadlineExceeded => "The service took too long to answer",
        Code::NotFound => "Not found",
        Code::AlreadyExists => "Already exists",
        Code::PermissionDenied => "Permission denied",
        Code::ResourceExhausted => "Too many requests",
        Code::FailedPrecondition => "Not possible in the current state",
        Code::Aborted => "Conflict; please retry",
        Code::OutOfRange => "Out of range",
        Code::Unimplemented => "Not implemented",
        Code::Internal => "Internal error",
        Code::Unavailable => "Service unavailable",
        Code::DataLoss => "Data loss",
        Code::Unauthenticated => "Authentication required",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jamaa_server::status;

    #[test]
    fn field_violations_are_carried_over() {
        let mut violations = status::FieldViolations::new();
        violations.add("admin_email", "must contain @");
        violations.add("code", "must be two to six upper-case letters");
        let problem = Problem::from_status(&violations.into_status());
        assert_eq!(problem.status, StatusCode::BAD_REQUEST);
        assert_eq!(problem.code, "INVALID_ARGUMENT");
        assert_eq!(
            problem.problem_type,
            "https://jamaa.ma/problems/INVALID_ARGUMENT"
        );
        assert_eq!(problem.detail, "invalid fields: admin_email, code");
        assert_eq!(
            problem.errors,
            vec![
                FieldError {
                    field: "admin_email".into(),
                    description: "must contain @".into()
                },
                FieldError {
                    field: "code".into(),
                    description: "must be two to six upper-case letters".into()
                },
            ]
        );
    }

    #[test]
    fn the_reason_names_the_type() {
        let status = status::with_reason(
            Code::Unauthenticated,
            "WRONG_CREDENTIALS",
            "wrong e-mail or password",
        );
        let problem = Problem::from_status(&status);
        assert_eq!(problem.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            problem.problem_type,
            "https://jamaa.ma/problems/WRONG_CREDENTIALS"
        );
        assert_eq!(problem.code, "UNAUTHENTICATED");
        assert_eq!(problem.detail, "wrong e-mail or password");
        assert!(problem.errors.is_empty());
    }

    #[test]
    fn without_error_info_the_code_names_the_type() {
        let problem = Problem::from_status(&Status::not_found("request 42 was not found"));
        assert_eq!(problem.problem_type, "https://jamaa.ma/problems/NOT_FOUND");
        assert_eq!(problem.detail, "request 42 was not found");
    }

    #[test]
    fn codes_map_to_http_statuses() {
        let expected = [
            (Code::InvalidArgument, 400),
            (Code::OutOfRange, 400),
            (Code::Unauthenticated, 401),
            (Code::PermissionDenied, 403),
            (Code::NotFound, 404),
            (Code::AlreadyExists, 409),
            (Code::Aborted, 409),
            (Code::FailedPrecondition, 422),
            (Code::ResourceExhausted, 429),
            (Code::Unavailable, 503),
            (Code::DeadlineExceeded, 504),
            (Code::Unimplemented, 501),
            (Code::Internal, 500),
            (Code::Unknown, 500),
            (Code::DataLoss, 500),
            (Code::Cancelled, 500),
        ];
        for (code, http) in expected {
            let problem = Problem::from_status(&Status::new(code, "x"));
            assert_eq!(problem.status.as_u16(), http, "{code:?}");
            assert_eq!(problem.code, code_name(code));
        }
    }

    #[test]
    fn a_deadline_the_client_enforced_is_a_gateway_timeout() {
        let problem = Problem::from_status(&Status::cancelled("Timeout expired"));
        assert_eq!(problem.status.as_u16(), 504);
        assert_eq!(problem.code, "DEADLINE_EXCEEDED");
    }

    #[test]
    fn transport_failures_do_not_leak() {
        let status = Status::unavailable("tcp connect error: identity.internal:50051 refused");
        let problem = Problem::from_status(&status);
        assert_eq!(problem.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            !problem.detail.contains("identity.internal"),
            "{}",
            problem.detail
        );
        // A service's own UNAVAILABLE (with ErrorInfo) keeps its message.
        let status = status::with_reason(Code::Unavailable, "DATABASE_UNAVAILABLE", "please retry");
        assert_eq!(Problem::from_status(&status).detail, "please retry");
    }

    #[test]
    fn serializes_as_rfc_9457() {
        let problem = Problem::from_status(&status::invalid_argument(
            "page_size",
            "must not be negative",
        ));
        let json = serde_json::to_value(&problem).expect("serializes");
        assert_eq!(
            json,
            serde_json::json!({
                "type": "https://jamaa.ma/problems/INVALID_ARGUMENT",
                "title": "Invalid request",
                "status": 400,
                "detail": "page_size: must not be negative",
                "code": "INVALID_ARGUMENT",
                "errors": [{"field": "page_size", "description": "must not be negative"}],
            })
        );
        let response = problem.into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok()),
            Some(PROBLEM_CONTENT_TYPE)
        );
    }
}
