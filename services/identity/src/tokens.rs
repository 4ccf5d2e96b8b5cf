//! Signing keys and the tokens identity issues.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jamaa_auth::{Claims, VerifyingKey};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::Error;
use crate::storage::signing_key;

/// The keys identity signs with and publishes, as the `signing_keys` table says at the last
/// [`KeyRing::reload`].
///
/// Rotation: a new key is stored with an `activates_at` in the future. Until then it is only
/// published (verifiers learn it before any token carries its `kid`); from then on it signs. The
/// key it replaces stays published for `retention` (the access-token lifetime plus leeway) after
/// the new key took over, so every token it signed verifies until it expires; then it is dropped.
pub struct KeyRing {
    db: DatabaseConnection,
    retention: chrono::Duration,
    state: std::sync::RwLock<KeyState>,
}

struct KeyState {
    signing_kid: String,
    signing_key: EncodingKey,
    public_keys: Vec<VerifyingKey>,
}

impl KeyRing {
    /// Loads the keys, creating the first one if there is none. Replicas starting together race
    /// to create it under one fixed kid: one wins, the others load the winner's key, so every
    /// replica signs and verifies with the same key. `retention`: how long a replaced key stays
    /// published.
    pub async fn load_or_create(
        db: &DatabaseConnection,
        retention: chrono::Duration,
    ) -> Result<KeyRing, Error> {
        if active_keys(db).await?.is_empty() {
            create_first_key(db).await?;
        }
        let state = load_state(db, retention, Utc::now()).await?;
        Ok(KeyRing {
            db: db.clone(),
            retention,
            state: std::sync::RwLock::new(state),
        })
    }

    /// Reads the table again: picks up rotations (by this replica or another) and activations.
    pub async fn reload(&self) -> Result<(), Error> {
        let state = load_state(&self.db, self.retention, Utc::now()).await?;
        if let Ok(mut current) = self.state.write() {
            if current.signing_kid != state.signing_kid {
                tracing::info!(kid = %state.signing_kid, "tokens are now signed with a new key");
            }
            *current = state;
        }
        Ok(())
    }

    /// Stores a new key that starts signing at `activates_at` (published from now on) and
    /// reloads. Returns its kid.
    pub async fn rotate(&self, activates_at: DateTime<Utc>) -> Result<String, Error> {
        let kid = format!("key-{}", Uuid::now_v7().simple());
        insert_key(&self.db, &kid, activates_at).await?;
        self.reload().await?;
        tracing::info!(%kid, %activates_at, "stored the next token signing key");
        Ok(kid)
    }

    /// The keys that verify tokens (served by `ListPublicKeys`).
    pub fn public_keys(&self) -> Vec<VerifyingKey> {
        self.state
            .read()
            .map(|state| state.public_keys.clone())
            .unwrap_or_default()
    }

    /// The kid tokens are signed under now.
    pub fn signing_kid(&self) -> String {
        self.state
            .read()
            .map(|state| state.signing_kid.clone())
            .unwrap_or_default()
    }

    /// Signs `claims` as an EdDSA JWT with the current key's `kid`.
    pub fn sign(&self, claims: &Claims) -> Result<String, Error> {
        let state = self
            .state
            .read()
            .map_err(|_| Error::Internal("the key ring is poisoned".into()))?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(state.signing_kid.clone());
        jsonwebtoken::encode(&header, claims, &state.signing_key)
            .map_err(|error| Error::Internal(format!("cannot sign a token: {error}")))
    }
}

/// How often each replica re-reads the signing keys (rotations by another replica, activations).
const RELOAD_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Reloads `keys` every [`RELOAD_EVERY`] until `shutdown`.
pub fn reload_keys_periodically(
    keys: std::sync::Arc<KeyRing>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    // A failed reload keeps the last keys.
    jamaa_server::run_every(
        RELOAD_EVERY,
        shutdown,
        "reloading the signing keys",
        move || {
            let keys = keys.clone();
            async move { keys.reload().await }
        },
    );
}

/// When a key starts signing: its `activates_at`, or (keys stored before rotation existed) its
/// creation.
fn activation(key: &signing_key::Model) -> DateTime<Utc> {
    key.activates_at.unwrap_or(key.created_at)
}

/// Of `keys`, the one that signs at `now` (the last activated) and those to publish: keys not
/// yet active, the signing key, and replaced keys whose successor took over less than
/// `retention` ago.
fn select_keys(
    keys: &[signing_key::Model],
    now: DateTime<Utc>,
    retention: chrono::Duration,
) -> Option<(&signing_key::Model, Vec<&signing_key::Model>)> {
    let mut ordered: Vec<&signing_key::Model> = keys.iter().collect();
    ordered.sort_by_key(|key| (activation(key), key.kid.clone()));
    let signing_index = ordered
        .iter()
        .rposition(|key| activation(key) <= now)
        .unwrap_or(0);
    let signing = *ordered.get(signing_index)?;
    let published = ordered
        .iter()
        .enumerate()
        .filter(|(index, _)| {
            *index >= signing_index
                || ordered
                    .get(index + 1)
                    .is_some_and(|successor| activation(successor) + retention > now)
        })
        .map(|(_, key)| *key)
        .collect();
    Some((signing, published))
}

async fn load_state(
    db: &DatabaseConnection,
    retention: chrono::Duration,
    now: DateTime<Utc>,
) -> Result<KeyState, Error> {
    let keys = active_keys(db).await?;
    let (signing, published) = select_keys(&keys, now, retention)
        .ok_or_else(|| Error::Internal("no signing key".into()))?;
    Ok(KeyState {
        signing_kid: signing.kid.clone(),
        signing_key: EncodingKey::from_ed_der(&signing.private_key),
        public_keys: published
            .iter()
            .map(|key| VerifyingKey {
                kid: key.kid.clone(),
                public_key: key.public_key.clone(),
            })
            .collect(),
    })
}

async fn active_keys(db: &DatabaseConnection) -> Result<Vec<signing_key::Model>, Error> {
    Ok(signing_key::Entity::find()
        .filter(signing_key::Column::Active.eq(true))
        .order_by_desc(signing_key::Column::CreatedAt)
        .all(db)
        .await?)
}

/// The kid of the key created on the very first start.
const FIRST_KID: &str = "initial";

async fn create_first_key(db: &DatabaseConnection) -> Result<(), Error> {
    if insert_key(db, FIRST_KID, Utc::now()).await? == 1 {
        tracing::info!(kid = FIRST_KID, "created the first token signing key");
    }
    Ok(())
}

/// Stores a new Ed25519 key under `kid`; a kid that exists already is left as it is. Returns the
/// rows inserted.
async fn insert_key(
    db: &DatabaseConnection,
    kid: &str,
    activates_at: DateTime<Utc>,
) -> Result<u64, Error> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|error| Error::Internal(format!("no randomness: {error}")))?;
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let private_key = key
        .to_pkcs8_der()
        .map_err(|error| Error::Internal(format!("cannot encode the key: {error}")))?
        .as_bytes()
        .to_vec();
    let public_key = key.verifying_key().to_bytes().to_vec();
    Ok(signing_key::Entity::insert(signing_key::ActiveModel {
        kid: Set(kid.to_string()),
        private_key: Set(private_key),
        public_key: Set(public_key),
        created_at: Set(Utc::now()),
        active: Set(true),
        activates_at: Set(Some(activates_at)),
    })
    .on_conflict(
        sea_orm::sea_query::OnConflict::column(signing_key::Column::Kid)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?)
}

/// A new random refresh token and the hash it is stored under.
pub fn new_refresh_token() -> Result<(String, String), Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|error| Error::Internal(format!("no randomness: {error}")))?;
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_refresh_token(&token);
    Ok((token, hash))
}

/// The stored form of a refresh token.
pub fn hash_refresh_token(token: &str) -> String {
    hex_prefix(&Sha256::digest(token.as_bytes()), 64)
}

fn hex_prefix(bytes: &[u8], chars: usize) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push_str(&format!("{byte:02x}"));
    }
    out.truncate(chars);
    out
}

/// Claims for a user's access token.
pub struct TokenSubject<'a> {
    pub user_id: Uuid,
    pub commune_id: Option<Uuid>,
    pub commune_code: Option<&'a str>,
    pub roles: Vec<String>,
    pub language: &'a str,
    pub assurance: jamaa_auth::AssuranceLevel,
    /// Role name → the department it is limited to.
    pub departments: std::collections::BTreeMap<String, String>,
    /// Whether the session was opened with a second factor.
    pub second_factor: bool,
    /// Whether the person must enrol a second factor before acting as staff.
    pub mfa_enrolment_required: bool,
    /// Other communes the person is a confirmed resident of.
    pub residences: Vec<String>,
}

pub fn claims(
    subject: &TokenSubject<'_>,
    issuer: &str,
    audience: &str,
    now: DateTime<Utc>,
    ttl_seconds: i64,
) -> Claims {
    Claims {
        sub: subject.user_id.to_string(),
        iss: issuer.to_string(),
        aud: audience.to_string(),
        exp: now.timestamp() + ttl_seconds,
        iat: now.timestamp(),
        nbf: Some(now.timestamp()),
        jti: Uuid::now_v7().to_string(),
        commune_id: subject.commune_id.map(|id| id.to_string()),
        commune_code: subject.commune_code.map(str::to_string),
        roles: subject.roles.clone(),
        lang: subject.language.to_string(),
        assurance: Some(subject.assurance.as_str().to_string()),
        departments: subject.departments.clone(),
        amr: if subject.second_factor {
            vec!["pwd".into(), "otp".into()]
        } else {
            vec!["pwd".into()]
        },
        mfa_enrolment_required: subject.mfa_enrolment_required,
        residences: subject.residences.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replicas starting together on an empty database end up with ONE key, so a token signed by
    /// one verifies at every other.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replicas_starting_together_share_the_first_key() {
        let dir = std::env::temp_dir().join(format!("jamaa-keys-{}", Uuid::new_v4().simple()));
        let db = jamaa_db::connect::<crate::storage::Migrator>(&jamaa_settings::DatabaseSettings {
            url: jamaa_settings::SecretString::from(format!(
                "sqlite://{}/identity.db",
                dir.display()
            )),
            max_connections: 1,
            migrate_on_start: true,
        })
        .await
        .expect("database");
        let retention = chrono::Duration::minutes(16);
        let (first, second) = tokio::join!(
            KeyRing::load_or_create(&db, retention),
            KeyRing::load_or_create(&db, retention)
        );
        let (first, second) = (first.expect("first"), second.expect("second"));
        assert_eq!(first.signing_kid(), second.signing_kid());
        assert_eq!(first.public_keys().len(), 1);
        assert_eq!(second.public_keys().len(), 1);
        let _ = std::fs::remove_dir_all(dir);
    }

    fn key(kid: &str, activates_at: DateTime<Utc>) -> signing_key::Model {
        signing_key::Model {
            kid: kid.into(),
            private_key: Vec::new(),
            public_key: Vec::new(),
            created_at: activates_at - chrono::Duration::minutes(5),
            active: true,
            activates_at: Some(activates_at),
        }
    }

    fn kids(
        selected: Option<(&signing_key::Model, Vec<&signing_key::Model>)>,
    ) -> (String, Vec<String>) {
        let (signing, published) = selected.expect("a signing key");
        (
            signing.kid.clone(),
            published.iter().map(|key| key.kid.clone()).collect(),
        )
    }

    /// A rotation's timeline: the next key is published before it signs; the old one stays
    /// published for the retention after the new one took over, then is dropped.
    #[test]
    fn rotation_publishes_before_signing_and_retires_after_the_last_token_expires() {
        let t0 = DateTime::parse_from_rfc3339("2026-01-01T10:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let minutes = chrono::Duration::minutes;
        let retention = minutes(16);
        let keys = [key("old", t0), key("new", t0 + minutes(60))];
        // Before the new key activates: the old one signs, both are published.
        assert_eq!(
            kids(select_keys(&keys, t0 + minutes(55), retention)),
            ("old".into(), vec!["old".into(), "new".into()])
        );
        // Once it activates it signs; the old one is still published during the retention.
        assert_eq!(
            kids(select_keys(&keys, t0 + minutes(61), retention)),
            ("new".into(), vec!["old".into(), "new".into()])
        );
        // After the retention only the new one is left.
        assert_eq!(
            kids(select_keys(&keys, t0 + minutes(77), retention)),
            ("new".into(), vec!["new".into()])
        );
    }
}
