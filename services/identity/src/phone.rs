//! A person's mobile phone number: set (stored unverified, a one-time code sent to it by SMS
//! through the notification service), verified with that code, removed. The codes are identity's
//! one-time codes ([`crate::verification`], purpose [`Purpose::Phone`]), bound to the number they
//! were sent to. A verified number belongs to one account. The number is personal data: it is in
//! no log, no audit detail and no event but the `VerificationCodeIssued` that carries its code.
//!
//! A citizen may also sign up with a number instead of an e-mail
//! ([`crate::accounts::SignUpWith::Phone`]): the account then signs in with it (verified or
//! not, see [`crate::accounts::find_user_by_phone`]), cannot remove it, and verifying it is what
//! makes the account contact-verified. Verifying a number raises any account to
//! [`AssuranceLevel::ContactVerified`]: the level means "at least one way to reach the person was
//! proven", an e-mail or a phone number alike. Levels never go down (removing the number later
//! leaves the level).

use chrono::Utc;
use jamaa_auth::AssuranceLevel;
use jamaa_proto::r#type::v1::Language;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};
use serde_json::json;
use uuid::Uuid;

use crate::accounts::{Account, Accounts, AddressEvent, unique_violation};
use crate::audit::{self, Actor, Entry, Outcome};
use crate::domain::PhoneNumber;
use crate::error::Error;
use crate::storage::user;
use crate::verification::{self, Purpose};

impl Accounts {
    /// Sets or replaces `user_id`'s phone number with `number`, unverified, and sends a code to
    /// it (at most one a minute: otherwise nothing changes). Returns the account and when the code
    /// expires; `None` when `number` is the account's verified number already (nothing changes,
    /// no code is sent). Another account's verified number may be set: only its owner receives
    /// the code, so refusing here would tell anyone which numbers have accounts.
    pub async fn set_phone_number(
        &self,
        user_id: Uuid,
        number: &PhoneNumber,
        actor: &Actor,
    ) -> Result<(Account, Option<chrono::DateTime<Utc>>), Error> {
        let account = self.account(user_id).await?;
        let current = account.user.phone_number.as_deref();
        if current == Some(number.as_str()) && account.user.phone_verified_at.is_some() {
            return Ok((account, None));
        }
        let replaced = current.is_some_and(|current| current != number.as_str());
        let language =
            Language::from_code(&account.user.preferred_language).unwrap_or(Language::Ar);
        let txn = self.db.begin().await?;
        user::Entity::update_many()
            .col_expr(user::Column::PhoneNumber, Expr::value(number.as_str()))
            .col_expr(
                user::Column::PhoneVerifiedAt,
                Expr::value(Option::<chrono::DateTime<Utc>>::None),
            )
            .filter(user::Column::Id.eq(user_id))
            .exec(&txn)
            .await?;
        // Too soon after the last code: the transaction rolls back, the number stays as it was.
        let expires_at = self
            .send_code(
                &txn,
                user_id,
                account.user.commune_id,
                language,
                Purpose::Phone,
            )
            .await?;
        audit::record(
            &txn,
            Entry {
                commune_id: account.user.commune_id,
                actor: actor.clone(),
                action: "phone.set",
                target: format!("users/{user_id}"),
                outcome: Outcome::Success,
                // Never the number itself.
                detail: json!({
                    "replaced": replaced,
                    "was_verified": account.user.phone_verified_at.is_some(),
                }),
            },
        )
        .await?;
        self.outbox.commit(txn).await?;
        tracing::info!(%user_id, "a phone number was set; a code was sent to it");
        Ok((self.account(user_id).await?, Some(expires_at)))
    }

    /// Checks a code sent to `user_id`'s phone number; on success the number is verified and the
    /// account at least [`AssuranceLevel::ContactVerified`]. Wrong codes count like other codes
    /// (tries, the per-address throttle) and are audited. A number another account verified is
    /// refused only after the code proved the caller receives it.
    pub async fn verify_phone_number(
        &self,
        user_id: Uuid,
        code: &str,
        actor: &Actor,
    ) -> Result<Account, Error> {
        let account = self.account(user_id).await?;
        let Some(number) = account.user.phone_number.clone() else {
            return Err(Error::NoPhoneNumber);
        };
        if account.user.phone_verified_at.is_some() {
            return Err(Error::PhoneAlreadyVerified);
        }
        let entry = |outcome, detail| Entry {
            commune_id: account.user.commune_id,
            actor: actor.clone(),
            action: "phone.verify",
            target: format!("users/{user_id}"),
            outcome,
            detail,
        };
        self.check_address(actor, AddressEvent::Failure).await?;
        // The try is counted even when what follows fails: it is its own transaction.
        if let Err(error) = verification::check(
            &self.db,
            &self.personal,
            user_id,
            Purpose::Phone,
            Some(&number),
            code,
        )
        .await
        {
            self.record_address(actor, AddressEvent::Failure).await?;
            audit::record(
                &self.db,
                entry(Outcome::Failure, json!({ "reason": error.to_string() })),
            )
            .await?;
            return Err(error);
        }
        let taken = user::Entity::find()
            .filter(user::Column::PhoneNumber.eq(number.clone()))
            .filter(user::Column::PhoneVerifiedAt.is_not_null())
            .filter(user::Column::Id.ne(user_id))
            .one(&self.db)
            .await?
            .is_some();
        if taken {
            return Err(self.refuse_taken(entry(Outcome::Denied, json!({}))).await);
        }
        let txn = self.db.begin().await?;
        let verified = user::Entity::update_many()
            .col_expr(user::Column::PhoneVerifiedAt, Expr::value(Utc::now()))
            .filter(user::Column::Id.eq(user_id))
            // Still the number the code was sent to (not replaced or removed meanwhile).
            .filter(user::Column::PhoneNumber.eq(number))
            .filter(user::Column::PhoneVerifiedAt.is_null())
            .exec(&txn)
            .await;
        match verified {
            Ok(result) if result.rows_affected == 1 => {}
            Ok(_) => return Err(Error::CodeExpired),
            // Another account verified the number at the same moment.
            Err(error) => {
                drop(txn);
                return Err(match unique_violation(error, Error::PhoneNumberTaken) {
                    Error::PhoneNumberTaken => {
                        self.refuse_taken(entry(Outcome::Denied, json!({}))).await
                    }
                    other => other,
                });
            }
        }
        audit::record(&txn, entry(Outcome::Success, json!({}))).await?;
        self.raise_assurance(&txn, &account, AssuranceLevel::ContactVerified)
            .await?;
        self.outbox.commit(txn).await?;
        tracing::info!(%user_id, "a phone number was verified");
        self.account(user_id).await
    }

    /// Audits a refused verification of a number another account holds (neither the number nor
    /// that account is written down) and answers [`Error::PhoneNumberTaken`].
    async fn refuse_taken(&self, entry: Entry) -> Error {
        let entry = Entry {
            detail: json!({ "reason": "the number is verified by another account" }),
            ..entry
        };
        match audit::record(&self.db, entry).await {
            Ok(()) => Error::PhoneNumberTaken,
            Err(error) => error,
        }
    }

    /// Removes `user_id`'s phone number (verified or not); codes sent to it stop working.
    /// Removing no number changes nothing. An account without an e-mail signs in with its number:
    /// it keeps it ([`Error::PhoneIsSignIn`]).
    pub async fn remove_phone_number(
        &self,
        user_id: Uuid,
        actor: &Actor,
    ) -> Result<Account, Error> {
        let account = self.account(user_id).await?;
        if account.user.phone_number.is_none() {
            return Ok(account);
        }
        if account.user.email.is_none() {
            return Err(Error::PhoneIsSignIn);
        }
        let txn = self.db.begin().await?;
        user::Entity::update_many()
            .col_expr(
                user::Column::PhoneNumber,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                user::Column::PhoneVerifiedAt,
                Expr::value(Option::<chrono::DateTime<Utc>>::None),
            )
            .filter(user::Column::Id.eq(user_id))
            .exec(&txn)
            .await?;
        verification::revoke(&txn, user_id, Purpose::Phone).await?;
        audit::record(
            &txn,
            Entry {
                commune_id: account.user.commune_id,
                actor: actor.clone(),
                action: "phone.remove",
                target: format!("users/{user_id}"),
                outcome: Outcome::Success,
                detail: json!({ "was_verified": account.user.phone_verified_at.is_some() }),
            },
        )
        .await?;
        txn.commit().await?;
        tracing::info!(%user_id, "a phone number was removed");
        self.account(user_id).await
    }
}
