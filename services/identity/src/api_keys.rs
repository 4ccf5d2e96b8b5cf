//! API keys: a commune's administrator issues one per client application (an Open311 app, a
//! partner's tool); the application exchanges it for a short-lived access token acting for
//! that application in that commune (subject `apiclient:<key id>`, no roles), which the
//! services accept where they take reports from applications (Open311 `POST requests`).
//!
//! A key is `jk_` and 43 characters of base64url (32 random bytes): shown once at creation;
//! only its SHA-256 is stored (a lookup index: the key's entropy makes a slow hash needless),
//! with its first characters to recognise it. Creating, revoking and every refused exchange
//! are audited; a revoked key exchanges no more (its tokens end within their 15 minutes).

use base64::Engine;
use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use uuid::Uuid;

use crate::accounts::TokenPolicy;
use crate::audit::{self, Actor, Entry, Outcome};
use crate::error::Error;
use crate::storage::{api_key, commune};
use crate::tokens::KeyRing;

/// What every API key starts with.
pub const KEY_PREFIX: &str = "jk_";

/// A new key: its row and the secret, shown once.
pub struct IssuedKey {
    pub key: api_key::Model,
    pub secret: String,
}

/// The API key operations.
pub struct ApiKeys {
    db: DatabaseConnection,
    keys: Arc<KeyRing>,
    policy: TokenPolicy,
}

fn digest(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

impl ApiKeys {
    pub fn new(db: DatabaseConnection, keys: Arc<KeyRing>, policy: TokenPolicy) -> Self {
        ApiKeys { db, keys, policy }
    }

    /// Issues a key of `commune_id` for the application `client_name`.
    pub async fn create(
        &self,
        commune_id: Uuid,
        client_name: String,
        actor: &Actor,
    ) -> Result<IssuedKey, Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)
            .map_err(|error| Error::Internal(format!("no randomness for an API key: {error}")))?;
        let secret = format!(
            "{KEY_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        );
        let key = api_key::ActiveModel {
            id: Set(Uuid::now_v7()),
            commune_id: Set(commune_id),
            client_name: Set(client_name.clone()),
            key_hash: Set(digest(&secret)),
            key_start: Set(secret.chars().take(KEY_PREFIX.len() + 6).collect()),
            created_by: Set(actor.user_id.unwrap_or(Uuid::nil())),
            created_at: Set(Utc::now()),
            revoked_at: Set(None),
        }
        .insert(&self.db)
        .await?;
        audit::record(
            &self.db,
            Entry {
                commune_id: Some(commune_id),
                actor: actor.clone(),
                action: "api_key.create",
                target: format!("api-keys/{}", key.id),
                outcome: Outcome::Success,
                detail: serde_json::json!({ "client_name": client_name }),
            },
        )
        .await?;
        Ok(IssuedKey { key, secret })
    }

    /// The commune's keys, newest first (revoked ones too).
    pub async fn list(&self, commune_id: Uuid) -> Result<Vec<api_key::Model>, Error> {
        Ok(api_key::Entity::find()
            .filter(api_key::Column::CommuneId.eq(commune_id))
            .order_by_desc(api_key::Column::Id)
            .limit(500)
            .all(&self.db)
            .await?)
    }

    /// Revokes key `id` of `commune_id` (again: nothing changes).
    pub async fn revoke(
        &self,
        commune_id: Uuid,
        id: Uuid,
        actor: &Actor,
    ) -> Result<api_key::Model, Error> {
        let key = api_key::Entity::find_by_id(id)
            .filter(api_key::Column::CommuneId.eq(commune_id))
            .one(&self.db)
            .await?
            .ok_or(Error::ApiKeyNotFound)?;
        api_key::Entity::update_many()
            .col_expr(api_key::Column::RevokedAt, Expr::value(Some(Utc::now())))
            .filter(api_key::Column::Id.eq(key.id))
            .filter(api_key::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?;
        audit::record(
            &self.db,
            Entry {
                commune_id: Some(commune_id),
                actor: actor.clone(),
                action: "api_key.revoke",
                target: format!("api-keys/{}", key.id),
                outcome: Outcome::Success,
                detail: serde_json::json!({ "client_name": key.client_name }),
            },
        )
        .await?;
        api_key::Entity::find_by_id(key.id)
            .one(&self.db)
            .await?
            .ok_or(Error::ApiKeyNotFound)
    }

    /// Exchanges `secret` for an access token of its application; returns (token, seconds it
    /// lasts, the key, its commune's code). An unknown or revoked key is refused (and
    /// audited), alike.
    pub async fn exchange(
        &self,
        secret: &str,
        actor: &Actor,
    ) -> Result<(String, i64, api_key::Model, String), Error> {
        let found = api_key::Entity::find()
            .filter(api_key::Column::KeyHash.eq(digest(secret.trim())))
            .one(&self.db)
            .await?
            .filter(|key| key.revoked_at.is_none());
        let Some(key) = found else {
            audit::record(
                &self.db,
                Entry {
                    commune_id: None,
                    actor: actor.clone(),
                    action: "api_key.exchange",
                    target: "api-keys/unknown".into(),
                    outcome: Outcome::Failure,
                    detail: serde_json::json!({}),
                },
            )
            .await?;
            return Err(Error::BadApiKey);
        };
        let commune = commune::Entity::find_by_id(key.commune_id)
            .one(&self.db)
            .await?
            .ok_or(Error::BadApiKey)?;
        let now = Utc::now();
        let ttl = self.policy.access_token_ttl_seconds;
        let claims = jamaa_auth::Claims {
            sub: format!("{}{}", jamaa_auth::API_CLIENT_SUBJECT_PREFIX, key.id),
            iss: self.policy.issuer.clone(),
            aud: self.policy.audience.clone(),
            exp: now.timestamp() + ttl,
            iat: now.timestamp(),
            nbf: Some(now.timestamp()),
            jti: Uuid::now_v7().to_string(),
            commune_id: Some(commune.id.to_string()),
            commune_code: Some(commune.code.clone()),
            roles: Vec::new(),
            lang: String::new(),
            assurance: None,
            departments: Default::default(),
            amr: Vec::new(),
            mfa_enrolment_required: false,
            residences: Vec::new(),
        };
        let token = self.keys.sign(&claims)?;
        Ok((token, ttl, key, commune.code))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stored_as_their_digest() {
        let digest = digest("jk_example");
        assert_eq!(digest.len(), 64);
        assert!(digest.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(digest, super::digest("jk_example "));
    }
}
