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
    #[error("the code has expired or was used; ask for a new one")]
    CodeExpired,
    #[error("the code was tried too many times; ask for a new one")]
    CodeExhausted,
    #[error("wrong code")]
    WrongCode { tries_left: i32 },
    #[error("a code was sent moments ago")]
    CodeSentRecently { retry_after: std::time::Duration },
    #[error("the e-mail address is verified already")]
    AlreadyVerified,
    #[error("this national ID belongs to another account")]
    NationalIdTaken,
    #[error("there is no phone number to verify")]
    NoPhoneNumber,
    #[error("the phone number is verified already")]
    PhoneAlreadyVerified,
    #[error("the account has no e-mail address")]
    NoEmail,
    #[error("the phone number is how this account signs in")]
    PhoneIsSignIn,
    #[error("this phone number is verified by another account")]
    PhoneNumberTaken,
    #[error("only citizens are verified at the desk")]
    NotACitizen,
    #[error("a department with code {0} exists already")]
    DepartmentExists(String),
    #[error("the invitation is not valid")]
    BadInvitation,
    #[error("administrators cannot revoke their own administrator role")]
    CannotRevokeOwnAdmin,
    #[error("roles are granted to staff accounts only")]
    NotStaff,
    #[error("a second factor is enrolled already")]
    AlreadyEnrolled,
    #[error("no enrolment to confirm")]
    NoPendingEnrolment,
    #[error("a second factor is required")]
    SecondFactorRequired,
    #[error("wrong second factor")]
    WrongSecondFactor,
    #[error("that is the commune the account belongs to")]
    HomeCommune,
    #[error("no such service")]
    UnknownAudience,
    #[error("wrong client credentials")]
    WrongClientCredentials,
    #[error("the current password is wrong")]
    WrongPassword,
    #[error("the new password is the current one")]
    SamePassword,
    #[error("API key not found")]
    ApiKeyNotFound,
    #[error("the API key is not valid")]
    BadApiKey,
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
            Error::CodeExpired => status::failed_precondition(
                "CODE_EXPIRED",
                "the code has expired or was used already; ask for a new one",
            ),
            Error::CodeExhausted => status::failed_precondition(
                "CODE_EXHAUSTED",
                "the code was tried too many times; ask for a new one",
            ),
            Error::WrongCode { tries_left } => status::invalid_argument(
                "code",
                format!("is not the code we sent ({tries_left} tries left)"),
            ),
            Error::CodeSentRecently { retry_after } => status::resource_exhausted(
                "CODE_SENT_RECENTLY",
                format!(
                    "a code was sent moments ago; you can ask for another in {} seconds",
                    retry_after.as_secs().max(1)
                ),
                retry_after,
            ),
            Error::AlreadyVerified => status::failed_precondition(
                "ALREADY_VERIFIED",
                "this e-mail address is verified already",
            ),
            Error::NationalIdTaken => status::with_reason(
                Code::AlreadyExists,
                "NATIONAL_ID_TAKEN",
                "this national ID number is already linked to another account; the citizen should \
                 use that account, or the commune should look into it",
            ),
            Error::NoPhoneNumber => status::failed_precondition(
                "NO_PHONE_NUMBER",
                "there is no phone number to verify: set one with SetPhoneNumber first",
            ),
            Error::PhoneAlreadyVerified => status::failed_precondition(
                "ALREADY_VERIFIED",
                "this phone number is verified already",
            ),
            Error::NoEmail => status::failed_precondition(
                "NO_EMAIL",
                "this account has no e-mail address to verify (it signed up with a phone \
                 number): verify the number with VerifyPhoneNumber",
            ),
            Error::PhoneIsSignIn => status::failed_precondition(
                "PHONE_IS_SIGN_IN",
                "this account signs in with its phone number and has no e-mail: the number \
                 cannot be removed (it can be replaced with SetPhoneNumber)",
            ),
            Error::PhoneNumberTaken => status::with_reason(
                Code::AlreadyExists,
                "PHONE_NUMBER_TAKEN",
                "this phone number is already verified by another account: sign in to that \
                 account, or remove the number from it first",
            ),
            Error::NotACitizen => status::failed_precondition(
                "NOT_A_CITIZEN",
                "only citizens' accounts are verified at the desk",
            ),
            Error::DepartmentExists(code) => status::already_exists(format!(
                "a department with code {code} exists already in this commune"
            )),
            Error::BadInvitation => status::failed_precondition(
                "BAD_INVITATION",
                "this invitation is not valid: it was used, has expired, or never existed; ask \
                 your commune's administrator for a new one",
            ),
            Error::CannotRevokeOwnAdmin => status::failed_precondition(
                "CANNOT_REVOKE_OWN_ADMIN",
                "administrators cannot revoke their own administrator role; another \
                 administrator can",
            ),
            Error::NotStaff => status::failed_precondition(
                "NOT_STAFF",
                "roles are granted to staff accounts only, not to citizens' accounts",
            ),
            Error::AlreadyEnrolled => status::failed_precondition(
                "ALREADY_ENROLLED",
                "an authenticator app is enrolled already",
            ),
            Error::NoPendingEnrolment => status::failed_precondition(
                "NO_PENDING_ENROLMENT",
                "there is no enrolment to confirm: start with EnrollTotp",
            ),
            Error::SecondFactorRequired => status::with_reason(
                Code::Unauthenticated,
                "SECOND_FACTOR_REQUIRED",
                "this account needs a code from its authenticator app (or a recovery code): \
                 send it as second_factor_code",
            ),
            Error::WrongSecondFactor => status::with_reason(
                Code::Unauthenticated,
                "WRONG_SECOND_FACTOR",
                "the second-factor code is wrong, expired or was used already",
            ),
            Error::HomeCommune => status::invalid_argument(
                "commune_code",
                "is the commune you signed up in: you reside there already",
            ),
            Error::UnknownAudience => status::invalid_argument(
                "audience",
                "must be identity, service-request, participation or notification",
            ),
            Error::ApiKeyNotFound => status::not_found("the API key"),
            Error::BadApiKey => status::with_reason(
                Code::Unauthenticated,
                "BAD_API_KEY",
                "the API key is not valid (unknown or revoked)",
            ),
            Error::WrongClientCredentials => status::with_reason(
                Code::Unauthenticated,
                "WRONG_CLIENT_CREDENTIALS",
                "wrong client id or secret",
            ),
            Error::WrongPassword => {
                status::invalid_argument("current_password", "is not your current password")
            }
            Error::SamePassword => {
                status::invalid_argument("new_password", "must differ from the current password")
            }
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
