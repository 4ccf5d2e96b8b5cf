//! The second factor: TOTP (RFC 6238: HMAC-SHA-1, 6 digits, 30-second steps, one step of clock
//! skew either way) with single-use recovery codes. The seed is encrypted like personal data; a
//! code is accepted once (the last accepted step is kept). Once confirmed, sign-in asks for a
//! code (or a recovery code) after the password. A commune can require it of its staff: until
//! they enrol, their tokens carry `mfa_enrolment_required` and staff calls refuse them.

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, TransactionTrait};
use totp_rs::{Algorithm, Builder, Secret};
use uuid::Uuid;

use crate::accounts::Accounts;
use crate::audit::{self, Actor, Entry, Outcome};
use crate::error::Error;
use crate::storage::{recovery_code, totp_credential, user};

/// The associated-data context of encrypted TOTP seeds.
const SEED_CONTEXT: &str = "totp-seed";
/// How many recovery codes a confirmation hands out.
pub const RECOVERY_CODES: usize = 10;
const ISSUER: &str = "Jamaa";

/// What an authenticator app needs to start: the seed (base32) and the `otpauth://` URI (shown
/// as a QR code by clients).
pub struct Enrolment {
    pub secret_base32: String,
    pub otpauth_uri: String,
}

impl Accounts {
    /// Starts (or restarts) TOTP enrolment for `user_id`: a new seed, not yet counting.
    pub async fn enroll_totp(&self, user_id: Uuid, actor: &Actor) -> Result<Enrolment, Error> {
        let account = self.account(user_id).await?;
        if confirmed_credential(&self.db, user_id).await?.is_some() {
            return Err(Error::AlreadyEnrolled);
        }
        let mut seed = [0u8; 20];
        getrandom::fill(&mut seed)
            .map_err(|error| Error::Internal(format!("no randomness: {error}")))?;
        let totp = totp(&seed, &authenticator_label(&account.user))?;
        let otpauth_uri = totp
            .to_url()
            .map_err(|error| Error::Internal(format!("cannot describe a TOTP seed: {error}")))?;
        let (key_id, secret_ciphertext) = self.personal.seal(user_id, SEED_CONTEXT, &seed)?;
        let txn = self.db.begin().await?;
        totp_credential::Entity::delete_by_id(user_id)
            .exec(&txn)
            .await?;
        totp_credential::ActiveModel {
            user_id: Set(user_id),
            key_id: Set(key_id),
            secret_ciphertext: Set(secret_ciphertext),
            confirmed_at: Set(None),
            last_used_step: Set(-1),
            created_at: Set(Utc::now()),
        }
        .insert(&txn)
        .await?;
        audit::record(
            &txn,
            Entry {
                commune_id: account.user.commune_id,
                actor: actor.clone(),
                action: "mfa.enrol_start",
                target: format!("users/{user_id}"),
                outcome: Outcome::Success,
                detail: serde_json::json!({ "method": "totp" }),
            },
        )
        .await?;
        txn.commit().await?;
        Ok(Enrolment {
            secret_base32: Secret::from(seed.to_vec()).to_base32(),
            otpauth_uri,
        })
    }

    /// Confirms enrolment with a first code from the app; returns the recovery codes, shown this
    /// once (only their hashes are kept).
    pub async fn confirm_totp(
        &self,
        user_id: Uuid,
        code: &str,
        actor: &Actor,
    ) -> Result<Vec<String>, Error> {
        let account = self.account(user_id).await?;
        let Some(pending) = totp_credential::Entity::find_by_id(user_id)
            .one(&self.db)
            .await?
            .filter(|row| row.confirmed_at.is_none())
        else {
            return Err(Error::NoPendingEnrolment);
        };
        let step = self.totp_step(&pending, &authenticator_label(&account.user), code)?;
        let codes: Vec<String> = (0..RECOVERY_CODES)
            .map(|_| recovery_code_text())
            .collect::<Result<_, _>>()?;
        let txn = self.db.begin().await?;
        totp_credential::Entity::update_many()
            .col_expr(
                totp_credential::Column::ConfirmedAt,
                Expr::value(Utc::now()),
            )
            .col_expr(totp_credential::Column::LastUsedStep, Expr::value(step))
            .filter(totp_credential::Column::UserId.eq(user_id))
            .exec(&txn)
            .await?;
        recovery_code::Entity::delete_many()
            .filter(recovery_code::Column::UserId.eq(user_id))
            .exec(&txn)
            .await?;
        for code in &codes {
            recovery_code::ActiveModel {
                id: Set(Uuid::now_v7()),
                user_id: Set(user_id),
                code_hash: Set(self.personal.recovery_code_hash(user_id, code)),
                used_at: Set(None),
            }
            .insert(&txn)
            .await?;
        }
        audit::record(
            &txn,
            Entry {
                commune_id: account.user.commune_id,
                actor: actor.clone(),
                action: "mfa.enrol",
                target: format!("users/{user_id}"),
                outcome: Outcome::Success,
                detail: serde_json::json!({ "method": "totp" }),
            },
        )
        .await?;
        txn.commit().await?;
        Ok(codes)
    }

    /// Removes the second factor of `user_id` (of `commune_id`; not the actor's own) and ends
    /// its sessions.
    pub async fn reset_second_factor(
        &self,
        commune_id: Uuid,
        user_id: Uuid,
        actor: &Actor,
    ) -> Result<(), Error> {
        let account = self.account(user_id).await?;
        if account.user.commune_id != Some(commune_id) {
            return Err(Error::UserNotFound);
        }
        if actor.user_id == Some(user_id) {
            return Err(Error::PermissionDenied(
                "administrators cannot reset their own second factor; use a recovery code or ask \
                 another administrator"
                    .into(),
            ));
        }
        let txn = self.db.begin().await?;
        totp_credential::Entity::delete_by_id(user_id)
            .exec(&txn)
            .await?;
        recovery_code::Entity::delete_many()
            .filter(recovery_code::Column::UserId.eq(user_id))
            .exec(&txn)
            .await?;
        crate::storage::refresh_token::Entity::update_many()
            .col_expr(
                crate::storage::refresh_token::Column::Revoked,
                Expr::value(true),
            )
            .filter(crate::storage::refresh_token::Column::UserId.eq(user_id))
            .exec(&txn)
            .await?;
        audit::record(
            &txn,
            Entry {
                commune_id: Some(commune_id),
                actor: actor.clone(),
                action: "mfa.reset",
                target: format!("users/{user_id}"),
                outcome: Outcome::Success,
                detail: serde_json::json!({}),
            },
        )
        .await?;
        txn.commit().await?;
        Ok(())
    }

    /// Whether `user_id` has a confirmed second factor.
    pub async fn has_second_factor(&self, user_id: Uuid) -> Result<bool, Error> {
        Ok(confirmed_credential(&self.db, user_id).await?.is_some())
    }

    /// At sign-in, after the password: `Ok(false)` when the account has no second factor,
    /// `Ok(true)` when `code` is a current TOTP code (not used before) or an unused recovery code
    /// (now used).
    pub async fn check_second_factor(
        &self,
        user: &user::Model,
        code: Option<&str>,
    ) -> Result<bool, Error> {
        let Some(credential) = confirmed_credential(&self.db, user.id).await? else {
            return Ok(false);
        };
        let code = code.map(str::trim).unwrap_or_default();
        if code.is_empty() {
            return Err(Error::SecondFactorRequired);
        }
        if crate::domain::is_six_digits(code) {
            let step = self
                .totp_step(&credential, &authenticator_label(user), code)
                .map_err(|_| Error::WrongSecondFactor)?;
            // Accepted once: only a step after the last accepted one counts.
            let spent = totp_credential::Entity::update_many()
                .col_expr(totp_credential::Column::LastUsedStep, Expr::value(step))
                .filter(totp_credential::Column::UserId.eq(user.id))
                .filter(totp_credential::Column::LastUsedStep.lt(step))
                .exec(&self.db)
                .await?;
            return if spent.rows_affected == 1 {
                Ok(true)
            } else {
                Err(Error::WrongSecondFactor)
            };
        }
        let hash = self
            .personal
            .recovery_code_hash(user.id, &code.to_lowercase());
        let used = recovery_code::Entity::update_many()
            .col_expr(recovery_code::Column::UsedAt, Expr::value(Utc::now()))
            .filter(recovery_code::Column::UserId.eq(user.id))
            .filter(recovery_code::Column::CodeHash.eq(hash))
            .filter(recovery_code::Column::UsedAt.is_null())
            .exec(&self.db)
            .await?;
        if used.rows_affected == 1 {
            Ok(true)
        } else {
            Err(Error::WrongSecondFactor)
        }
    }

    /// The step `code` is valid for under `credential`'s seed.
    fn totp_step(
        &self,
        credential: &totp_credential::Model,
        email: &str,
        code: &str,
    ) -> Result<i64, Error> {
        let seed = self.personal.open(
            credential.user_id,
            SEED_CONTEXT,
            &credential.key_id,
            &credential.secret_ciphertext,
        )?;
        let now = Utc::now().timestamp().max(0) as u64;
        totp(&seed, email)?
            .check(code.trim(), now)
            .map(|step| step as i64)
            .ok_or(Error::WrongSecondFactor)
    }
}

async fn confirmed_credential(
    db: &sea_orm::DatabaseConnection,
    user_id: Uuid,
) -> Result<Option<totp_credential::Model>, Error> {
    Ok(totp_credential::Entity::find_by_id(user_id)
        .one(db)
        .await?
        .filter(|row| row.confirmed_at.is_some()))
}

/// How the authenticator app names the account: its e-mail, else its phone number, else its id.
fn authenticator_label(user: &crate::storage::user::Model) -> String {
    user.email
        .clone()
        .or_else(|| user.phone_number.clone())
        .unwrap_or_else(|| user.id.to_string())
}

fn totp(seed: &[u8], email: &str) -> Result<totp_rs::Totp, Error> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_skew(1)
        .with_secret(seed.to_vec())
        .with_issuer(Some(ISSUER))
        .with_account_name(email.replace(':', "_"))
        .build()
        .map_err(|error| Error::Internal(format!("cannot build a TOTP: {error}")))
}

/// A recovery code: ten lower-case letters and digits in two groups, e.g. `k3x9p-2mq7d`.
fn recovery_code_text() -> Result<String, Error> {
    // 32 characters without look-alikes (no i, l, o, 0): every byte maps evenly.
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz123456789";
    let mut bytes = [0u8; 10];
    getrandom::fill(&mut bytes)
        .map_err(|error| Error::Internal(format!("no randomness: {error}")))?;
    let chars: String = bytes
        .iter()
        .map(|byte| ALPHABET[*byte as usize % ALPHABET.len()] as char)
        .collect();
    Ok(format!("{}-{}", &chars[..5], &chars[5..]))
}
