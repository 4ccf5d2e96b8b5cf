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

/// The key access tokens are signed with now, and every key that verifies live tokens.
pub struct KeyRing {
    signing_kid: String,
    signing_key: EncodingKey,
    public_keys: Vec<VerifyingKey>,
}

impl KeyRing {
    /// Loads the active keys, creating the first one if there is none. Replicas starting together
    /// race to create it under one fixed kid: one wins, the others load the winner's key, so every
    /// replica signs and verifies with the same key.
    pub async fn load_or_create(db: &DatabaseConnection) -> Result<KeyRing, Error> {
        let mut keys = active_keys(db).await?;
        if keys.is_empty() {
            create_first_key(db).await?;
            keys = active_keys(db).await?;
        }
        let newest = keys
            .first()
            .ok_or_else(|| Error::Internal("no signing key".into()))?;
        Ok(KeyRing {
            signing_kid: newest.kid.clone(),
            signing_key: EncodingKey::from_ed_der(&newest.private_key),
            public_keys: keys
                .iter()
                .map(|key| VerifyingKey {
                    kid: key.kid.clone(),
                    public_key: key.public_key.clone(),
                })
                .collect(),
        })
    }

    /// The keys that verify tokens (served by `ListPublicKeys`).
    pub fn public_keys(&self) -> &[VerifyingKey] {
        &self.public_keys
    }

    /// Signs `claims` as an EdDSA JWT with the current key's `kid`.
    pub fn sign(&self, claims: &Claims) -> Result<String, Error> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.signing_kid.clone());
        jsonwebtoken::encode(&header, claims, &self.signing_key)
            .map_err(|error| Error::Internal(format!("cannot sign a token: {error}")))
    }
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
    let inserted = signing_key::Entity::insert(signing_key::ActiveModel {
        kid: Set(FIRST_KID.to_string()),
        private_key: Set(private_key),
        public_key: Set(public_key),
        created_at: Set(Utc::now()),
        active: Set(true),
    })
    .on_conflict(
        sea_orm::sea_query::OnConflict::column(signing_key::Column::Kid)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    if inserted == 1 {
        tracing::info!(kid = FIRST_KID, "created the first token signing key");
    }
    Ok(())
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
        jti: Uuid::now_v7().to_string(),
        commune_id: subject.commune_id.map(|id| id.to_string()),
        commune_code: subject.commune_code.map(str::to_string),
        roles: subject.roles.clone(),
        lang: subject.language.to_string(),
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
        let (first, second) =
            tokio::join!(KeyRing::load_or_create(&db), KeyRing::load_or_create(&db));
        let (first, second) = (first.expect("first"), second.expect("second"));
        assert_eq!(first.signing_kid, second.signing_kid);
        assert_eq!(first.public_keys().len(), 1);
        assert_eq!(second.public_keys().len(), 1);
        let _ = std::fs::remove_dir_all(dir);
    }
}
