//! Authentication, the one way a Jamaa service learns who calls it.
//!
//! Access tokens are EdDSA JWTs signed by the identity service (`kid`, `iss`, `aud`, `exp`).
//! Every service verifies them locally with identity's public keys ([`TokenVerifier`], keys
//! fetched from `ListPublicKeys` once, refreshed periodically and when an unknown `kid` shows up).
//! [`AuthLayer`] verifies the `authorization: Bearer …` metadata of each call and puts the
//! [`Principal`] in the request's extensions; a bad token is refused with UNAUTHENTICATED before
//! any handler runs. Handlers then ask [`principal`] and check roles and commune themselves.

mod claims;
mod layer;
mod principal;
mod verifier;

pub use claims::{AssuranceLevel, Claims, Role};
pub use layer::AuthLayer;
pub use principal::{ApiClient, Principal, principal};
pub use verifier::{KeyProvider, KeySource, TokenError, TokenVerifier, VerifyingKey};

/// The services a service token may be for.
pub const SERVICES: [&str; 4] = [
    "identity",
    "service-request",
    "participation",
    "notification",
];

/// The `aud` of a service token for `service`: `{platform audience}:{service}`.
pub fn service_audience(platform_audience: &str, service: &str) -> String {
    format!("{platform_audience}:{service}")
}

/// The `sub` prefix of service tokens: `service:{client_id}`.
pub const SERVICE_SUBJECT_PREFIX: &str = "service:";
/// The subject of an access token acting for a client application through its API key:
/// `apiclient:<key id>`.
pub const API_CLIENT_SUBJECT_PREFIX: &str = "apiclient:";
