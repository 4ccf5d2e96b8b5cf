use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jamaa_proto::identity::v1::ListPublicKeysRequest;
use jamaa_proto::identity::v1::identity_service_client::IdentityServiceClient;
use jamaa_settings::AuthSettings;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::claims::Claims;
use crate::principal::Principal;

/// An Ed25519 public key that verifies tokens signed under `kid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    pub kid: String,
    pub public_key: Vec<u8>,
}

/// Where a verifier gets its keys.
#[derive(Clone)]
pub enum KeySource {
    /// The identity service's `ListPublicKeys`, at this URL.
    Identity { url: String },
    /// Fixed keys known in-process.
    Static(Vec<VerifyingKey>),
    /// Keys asked of an in-process owner whenever an unknown `kid` shows up or the cache is
    /// stale (the identity service verifying its own tokens across key rotations).
    Provider(KeyProvider),
}

/// A function returning the keys that verify tokens now.
pub type KeyProvider = Arc<dyn Fn() -> Vec<VerifyingKey> + Send + Sync>;

/// Why a token was refused. The text is safe to return to the caller.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the access token is malformed")]
    Malformed,
    #[error("the access token must be signed with EdDSA")]
    WrongAlgorithm,
    #[error("the access token was signed by an unknown key")]
    UnknownKey,
    #[error("the access token has expired; refresh the session")]
    Expired,
    #[error("the access token is invalid")]
    Invalid,
    #[error("access tokens cannot be verified right now")]
    KeysUnavailable,
}

struct KeyCache {
    keys: HashMap<String, DecodingKey>,
    fetched_at: Option<Instant>,
}

struct Inner {
    source: KeySource,
    validation: Validation,
    refresh_every: Duration,
    cache: RwLock<KeyCache>,
    refresh_lock: tokio::sync::Mutex<()>,
}

/// Verifies access tokens locally. Cheap to clone.
#[derive(Clone)]
pub struct TokenVerifier {
    inner: Arc<Inner>,
}

/// How soon after a fetch an unknown `kid` may trigger another one.
const MIN_REFETCH: Duration = Duration::from_secs(5);

impl TokenVerifier {
    pub fn new(settings: &AuthSettings, source: KeySource) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[settings.issuer.as_str()]);
        // People's tokens name the platform; service tokens name the platform and the one
        // service they are for (see [`crate::service_audience`]); handlers of internal RPCs check
        // that it is theirs.
        let mut audiences = vec![settings.audience.clone()];
        audiences.extend(
            crate::SERVICES
                .iter()
                .map(|service| crate::service_audience(&settings.audience, service)),
        );
        validation.set_audience(&audiences);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 30;
        let mut keys = HashMap::new();
        if let KeySource::Static(static_keys) = &source {
            for key in static_keys {
                keys.insert(key.kid.clone(), DecodingKey::from_ed_der(&key.public_key));
            }
        }
        TokenVerifier {
            inner: Arc::new(Inner {
                source,
                validation,
                refresh_every: Duration::from_secs(settings.key_refresh_seconds.max(1)),
                cache: RwLock::new(KeyCache {
                    keys,
                    fetched_at: None,
                }),
                refresh_lock: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// A verifier with the identity service's keys, fetched from `settings.identity_url` (every
    /// service but identity itself).
    pub fn from_identity(settings: &AuthSettings) -> Self {
        TokenVerifier::new(
            settings,
            KeySource::Identity {
                url: settings.identity_url.clone(),
            },
        )
    }

    /// Verifies `token` and returns its principal.
    pub async fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::WrongAlgorithm);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let key = match self.cached_key(&kid, false) {
            Some(key) => key,
            None => {
                self.refresh().await?;
                self.cached_key(&kid, true).ok_or(TokenError::UnknownKey)?
            }
        };
        let data = jsonwebtoken::decode::<Claims>(token, &key, &self.inner.validation).map_err(
            |error| match error.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            },
        )?;
        Principal::from_claims(&data.claims).ok_or(TokenError::Invalid)
    }

    /// Fetches the keys now (a service may call this at start-up to fail fast).
    pub async fn refresh(&self) -> Result<(), TokenError> {
        let url = match &self.inner.source {
            KeySource::Identity { url } => url,
            KeySource::Static(_) => return Ok(()),
            KeySource::Provider(provider) => {
                self.store_keys(&provider());
                return Ok(());
            }
        };
        let _guard = self.inner.refresh_lock.lock().await;
        if let Ok(cache) = self.inner.cache.read()
            && cache
                .fetched_at
                .is_some_and(|at| at.elapsed() < MIN_REFETCH)
        {
            return Ok(());
        }
        let keys = fetch_keys(url).await.map_err(|error| {
            tracing::warn!(%error, %url, "could not fetch token verification keys");
            TokenError::KeysUnavailable
        })?;
        self.store_keys(&keys);
        Ok(())
    }

    fn store_keys(&self, keys: &[VerifyingKey]) {
        if let Ok(mut cache) = self.inner.cache.write() {
            cache.keys = keys
                .iter()
                .map(|key| (key.kid.clone(), DecodingKey::from_ed_der(&key.public_key)))
                .collect();
            cache.fetched_at = Some(Instant::now());
        }
    }

    fn cached_key(&self, kid: &str, allow_stale: bool) -> Option<DecodingKey> {
        let cache = self.inner.cache.read().ok()?;
        let stale = match (&self.inner.source, cache.fetched_at) {
            (KeySource::Static(_), _) => false,
            (_, None) => true,
            (_, Some(at)) => at.elapsed() > self.inner.refresh_every,
        };
        if stale && !allow_stale {
            return None;
        }
        cache.keys.get(kid).cloned()
    }
}

async fn fetch_keys(url: &str) -> Result<Vec<VerifyingKey>, String> {
    let fetch = async {
        let mut client = IdentityServiceClient::connect(url.to_string())
            .await
            .map_err(|error| error.to_string())?;
        let response = client
            .list_public_keys(ListPublicKeysRequest {})
            .await
            .map_err(|status| status.message().to_string())?;
        Ok::<_, String>(
            response
                .into_inner()
                .keys
                .into_iter()
                .filter(|key| key.public_key.len() == 32)
                .map(|key| VerifyingKey {
                    kid: key.kid,
                    public_key: key.public_key,
                })
                .collect(),
        )
    };
    tokio::time::timeout(Duration::from_secs(5), fetch)
        .await
        .map_err(|_| "timed out".to_string())?
}
