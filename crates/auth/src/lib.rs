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
pub use principal::{Principal, principal};
pub use verifier::{KeyProvider, KeySource, TokenError, TokenVerifier, VerifyingKey};
