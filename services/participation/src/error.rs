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
    #[error("proposal {0} was not found")]
    ProposalNotFound(Uuid),
    #[error("consultation {0} was not found")]
    ConsultationNotFound(Uuid),
    #[error("comment {0} was not found")]
    CommentNotFound(Uuid),
    #[error("result {0} was not found")]
    ResultNotFound(Uuid),
    #[error("{0} was not found")]
    SubjectNotFound(Uuid),
    #[error("you answered this consultation already; a response is given once")]
    AlreadyResponded,
    #[error("association {0} was not found")]
    AssociationNotFound(Uuid),
    #[error("budget {0} was not found")]
    BudgetNotFound(Uuid),
    #[error("budget project {0} was not found")]
    BudgetProjectNotFound(Uuid),
    /// The budget is not in the phase the action needs.
    #[error("{0}")]
    BudgetPhase(String),
    #[error("you voted in this budget already; a ballot is cast once")]
    AlreadyVoted,
    #[error("{0}")]
    AlreadyExists(String),
    /// The association is younger than the commune's minimum age.
    #[error("{0}")]
    AssociationTooYoung(String),
    /// Identity, which knows the commune's signature threshold, could not be reached.
    #[error("the identity service is unavailable: {0}")]
    IdentityUnavailable(String),
    /// Identity does not know the caller's commune.
    #[error("commune {0} was not found")]
    CommuneNotFound(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("a petition cannot go from {} to {}", .from.as_str(), .to.as_str())]
    InvalidTransition {
        from: crate::domain::PetitionStatus,
        to: crate::domain::PetitionStatus,
    },
    /// Another change committed between reading and updating the petition.
    #[error("the petition changed meanwhile; reload and retry")]
    Conflict,
    /// Signatures are taken only while it collects, within its window.
    #[error("{0}")]
    NotCollecting(String),
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
            Error::ProposalNotFound(id) => status::not_found(format!("proposal {id}")),
            Error::ConsultationNotFound(id) => status::not_found(format!("consultation {id}")),
            Error::CommentNotFound(id) => status::not_found(format!("comment {id}")),
            Error::ResultNotFound(id) => status::not_found(format!("result {id}")),
            Error::SubjectNotFound(id) => status::not_found(format!("{id}")),
            Error::AlreadyResponded => {
                status::failed_precondition("ALREADY_RESPONDED", error.to_string())
            }
            Error::AssociationNotFound(id) => status::not_found(format!("association {id}")),
            Error::BudgetNotFound(id) => status::not_found(format!("budget {id}")),
            Error::BudgetProjectNotFound(id) => status::not_found(format!("budget project {id}")),
            Error::BudgetPhase(message) => status::failed_precondition("BUDGET_PHASE", message),
            Error::AlreadyVoted => status::failed_precondition("ALREADY_VOTED", error.to_string()),
            Error::AlreadyExists(message) => status::already_exists(message),
            Error::AssociationTooYoung(message) => {
                status::failed_precondition("ASSOCIATION_TOO_YOUNG", message)
            }
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
            Error::InvalidTransition { .. } => {
                status::failed_precondition("INVALID_TRANSITION", error.to_string())
            }
            Error::Conflict => status::with_reason(
                Code::Aborted,
                "CONCURRENT_MODIFICATION",
                "the petition changed meanwhile; reload and retry",
            ),
            Error::NotCollecting(message) => status::failed_precondition("NOT_COLLECTING", message),
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
