//! Proofs of who a person is, beyond the contact details they proved themselves: the seam
//! through which an identity proof raises an account's assurance level.
//!
//! An [`IdentityProofProvider`] checks some evidence about an account and says what it proved
//! (a [`Proof`]: the level it is worth, and the national ID number it established, if any);
//! [`Accounts::verify_identity`] does the rest the same way for every provider: the CIN stored
//! encrypted with its blind index (one CIN, one account), the audit entry, the level raised with
//! its `AssuranceLevelRaised` event, in one transaction.
//!
//! One provider exists: [`DeskVerification`], a reception agent checking the national ID card at
//! the desk (`VerifyInPerson`). A national e-ID provider over OpenID Connect would be a second
//! implementation, with no change here: its `Evidence` the authorization code (and PKCE
//! verifier) the person comes back with; `prove` exchanges it at the provider's token endpoint,
//! checks the ID token (issuer, audience, nonce, signature against the provider's JWKS) and maps
//! its claims to a [`Proof`] (the CIN claim, if the provider releases it; the level, e.g. a new
//! `AssuranceLevel` variant above `verified_in_person`); a `LinkNationalEid` RPC would start the
//! flow and call [`Accounts::verify_identity`] with it. No such provider is implemented.

use chrono::Utc;
use jamaa_auth::{AssuranceLevel, Role};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, TransactionTrait};
use uuid::Uuid;

use crate::accounts::{Account, Accounts, unique_violation};
use crate::audit::{self, Actor, Entry, Outcome};
use crate::error::Error;
use crate::personal_data::NationalId;
use crate::storage::national_id;

/// What an identity proof established.
#[derive(Debug, Clone)]
pub struct Proof {
    /// The level the proof is worth (the account's level is raised to it, never lowered).
    pub level: AssuranceLevel,
    /// The national ID number the proof established, when it establishes one: stored encrypted,
    /// unique to the account.
    pub national_id: Option<NationalId>,
}

/// A way of proving who a person is. See the module docs.
#[tonic::async_trait]
pub trait IdentityProofProvider: Send + Sync {
    /// What the caller hands over to be checked.
    type Evidence: Send;

    /// The audit action a proof by this provider is recorded as, e.g. `identity.verify_in_person`.
    fn audit_action(&self) -> &'static str;

    /// Checks `evidence` about `account`: what it proves, or why it proves nothing.
    async fn prove(&self, account: &Account, evidence: Self::Evidence) -> Result<Proof, Error>;
}

/// A reception agent of `commune_id` checked a citizen's national ID card at the desk.
pub struct DeskVerification {
    /// The agent's commune: only its own citizens are verified there.
    pub commune_id: Uuid,
}

#[tonic::async_trait]
impl IdentityProofProvider for DeskVerification {
    /// The number on the card the agent checked.
    type Evidence = NationalId;

    fn audit_action(&self) -> &'static str {
        "identity.verify_in_person"
    }

    async fn prove(&self, account: &Account, national_id: NationalId) -> Result<Proof, Error> {
        // Another commune's account is not found, to the agent.
        if account.user.commune_id != Some(self.commune_id) {
            return Err(Error::UserNotFound);
        }
        if !account.roles.contains(&Role::Citizen) {
            return Err(Error::NotACitizen);
        }
        Ok(Proof {
            level: AssuranceLevel::VerifiedInPerson,
            national_id: Some(national_id),
        })
    }
}

impl Accounts {
    /// Has `provider` check `evidence` about `user_id` and records what it proved: the national
    /// ID (refused when another account holds it; the same account's is replaced, e.g. a renewed
    /// card), the audit entry, the raised level. `actor` is who vouches (the agent at the desk).
    pub async fn verify_identity<P: IdentityProofProvider>(
        &self,
        provider: &P,
        user_id: Uuid,
        evidence: P::Evidence,
        actor: &Actor,
    ) -> Result<Account, Error> {
        let account = self.account(user_id).await?;
        let proof = provider.prove(&account, evidence).await?;
        let sealed = match &proof.national_id {
            Some(national_id) => {
                let blind_index = self.personal.blind_index(national_id);
                let holder = national_id::Entity::find()
                    .filter(national_id::Column::BlindIndex.eq(blind_index.clone()))
                    .one(&self.db)
                    .await?;
                if holder.as_ref().is_some_and(|row| row.user_id != user_id) {
                    return Err(Error::NationalIdTaken);
                }
                let (key_id, ciphertext) = self.personal.encrypt(user_id, national_id)?;
                Some((key_id, ciphertext, blind_index, national_id.masked()))
            }
            None => None,
        };
        let txn = self.db.begin().await?;
        if let Some((key_id, ciphertext, blind_index, masked)) = sealed {
            national_id::Entity::delete_by_id(user_id)
                .exec(&txn)
                .await?;
            national_id::ActiveModel {
                user_id: Set(user_id),
                key_id: Set(key_id),
                ciphertext: Set(ciphertext),
                blind_index: Set(blind_index),
                masked: Set(masked),
                verified_by: Set(actor.user_id.unwrap_or_default()),
                verified_at: Set(Utc::now()),
            }
            .insert(&txn)
            .await
            .map_err(|error| unique_violation(error, Error::NationalIdTaken))?;
        }
        audit::record(
            &txn,
            Entry {
                commune_id: account.user.commune_id,
                actor: actor.clone(),
                action: provider.audit_action(),
                target: format!("users/{user_id}"),
                outcome: Outcome::Success,
                detail: serde_json::json!({}),
            },
        )
        .await?;
        self.raise_assurance(&txn, &account, proof.level).await?;
        self.outbox.commit(txn).await?;
        tracing::info!(%user_id, agent = ?actor.user_id, action = provider.audit_action(), "a person's identity was proven");
        self.account(user_id).await
    }
}
