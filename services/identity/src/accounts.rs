//! Identity's operations: communes, accounts, sessions. Each state change and its event commit
//! in one transaction through the outbox.

use std::sync::Arc;

use chrono::Utc;
use jamaa_auth::{AssuranceLevel, Role};
use jamaa_events::Outbox;
use jamaa_proto::events::v1 as events;
use jamaa_proto::r#type::v1::{Language, LocalizedText};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    QueryFilter, QueryOrder, Set, TransactionTrait,
};
use uuid::Uuid;

use crate::audit::{self, Actor, Entry, Outcome};
use crate::domain::{CommuneCode, DisplayName, Email, Password, PhoneNumber};
use crate::error::Error;
use crate::password_hashing::Memory;
use crate::personal_data::{NationalId, PersonalDataKeys};
use crate::storage::{commune, national_id, refresh_token, user, user_role};
use crate::throttle::{self, LoginThrottle};
use crate::tokens::{self, KeyRing, TokenSubject};
use crate::verification::{self, Purpose};

/// What the per-address throttle counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressEvent {
    /// A failed sign-in, code or client-credentials check.
    Failure,
    SignUp,
    ResetRequest,
}

impl AddressEvent {
    fn as_str(self) -> &'static str {
        match self {
            AddressEvent::Failure => "failure",
            AddressEvent::SignUp => "sign-up",
            AddressEvent::ResetRequest => "reset",
        }
    }
}

/// Token lifetimes and claims.
#[derive(Debug, Clone)]
pub struct TokenPolicy {
    pub issuer: String,
    pub audience: String,
    pub access_token_ttl_seconds: i64,
    pub refresh_token_ttl_seconds: i64,
    /// How long a new signing key is published before it signs.
    pub signing_key_lead_seconds: i64,
}

/// A new commune with its first administrator.
pub struct NewCommune {
    pub code: CommuneCode,
    pub name: LocalizedText,
    pub population: i64,
    pub has_arrondissements: bool,
    pub petition_signature_threshold: i32,
    pub admin: NewAccount,
}

/// How a one-time code reaches its person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// To the account's e-mail address.
    Email,
    /// By SMS to the account's phone number.
    Phone,
}

/// What a new account signs in with: an e-mail, or (citizens) a mobile phone number.
#[derive(Debug, Clone)]
pub enum SignUpWith {
    Email(Email),
    /// Stored unverified; the sign-up sends it a code by SMS.
    Phone(PhoneNumber),
}

impl SignUpWith {
    pub fn email(&self) -> Option<&Email> {
        match self {
            SignUpWith::Email(email) => Some(email),
            SignUpWith::Phone(_) => None,
        }
    }

    fn identifier(&self) -> Identifier<'_> {
        match self {
            SignUpWith::Email(email) => Identifier::Email(email.as_str()),
            SignUpWith::Phone(number) => Identifier::Phone(number),
        }
    }
}

/// What a caller names an account by when signing in or resetting a password: an e-mail as
/// typed (one that does not parse names no account) or a phone number.
#[derive(Debug, Clone, Copy)]
pub enum Identifier<'a> {
    Email(&'a str),
    Phone(&'a PhoneNumber),
}

impl Identifier<'_> {
    /// The throttle key of failed attempts with this identifier (known or not: see
    /// [`crate::throttle`]). A phone number is keyed in E.164, whatever form was typed.
    pub fn throttle_key(&self) -> String {
        match self {
            Identifier::Email(email) => throttle::account_key(email),
            Identifier::Phone(number) => throttle::account_key(number.as_str()),
        }
    }

    /// `email` or `phone`, for the audit log.
    pub fn kind(&self) -> &'static str {
        match self {
            Identifier::Email(_) => "email",
            Identifier::Phone(_) => "phone",
        }
    }

    /// What the audit log keeps of the identifier: a keyed hash (HMAC under the personal-data
    /// index key), never the e-mail or number itself; equal identifiers, equal hashes.
    pub(crate) fn pseudonym(&self, keys: &PersonalDataKeys) -> String {
        match self {
            Identifier::Email(email) => keys.identifier_hash("email", &email.trim().to_lowercase()),
            Identifier::Phone(number) => keys.identifier_hash("phone", number.as_str()),
        }
    }
}

/// A new person's account.
pub struct NewAccount {
    pub sign_up: SignUpWith,
    pub password: Password,
    pub display_name: DisplayName,
    pub language: Language,
    /// `female` or `male`, when the person gave it (equity statistics only).
    pub gender: Option<&'static str>,
}

/// An account with its roles and commune code.
#[derive(Debug, Clone)]
pub struct Account {
    pub user: user::Model,
    pub commune_code: Option<String>,
    pub roles: Vec<Role>,
    /// The department each department-scoped role is limited to.
    pub departments: std::collections::HashMap<Role, Uuid>,
    /// The national ID checked at the desk, masked; `None` when none was.
    pub national_id_masked: Option<String>,
    /// Other communes the person is a confirmed resident of.
    pub residences: Vec<Uuid>,
}

impl Account {
    pub fn assurance(&self) -> AssuranceLevel {
        AssuranceLevel::parse(&self.user.assurance_level).unwrap_or(AssuranceLevel::Registered)
    }
}

/// What a sign-up did.
pub enum Registration {
    /// A new account.
    Created(Account),
    /// The e-mail (or phone number) had an account already: nothing was created, the owner was
    /// told.
    Existing { commune: commune::Model },
}

/// A signed-in session.
pub struct Session {
    pub access_token: String,
    pub expires_in_seconds: i64,
    pub refresh_token: String,
    pub account: Account,
}

pub struct Accounts {
    pub(crate) db: DatabaseConnection,
    pub(crate) outbox: Outbox,
    keys: Arc<KeyRing>,
    policy: TokenPolicy,
    pub(crate) throttle: LoginThrottle,
    pub(crate) personal: Arc<PersonalDataKeys>,
    address_limits: throttle::AddressLimits,
}

impl Accounts {
    pub fn new(
        db: DatabaseConnection,
        outbox: Outbox,
        keys: Arc<KeyRing>,
        policy: TokenPolicy,
        personal: Arc<PersonalDataKeys>,
        address_limits: throttle::AddressLimits,
    ) -> Self {
        Accounts {
            throttle: LoginThrottle::new(db.clone()),
            db,
            outbox,
            keys,
            policy,
            personal,
            address_limits,
        }
    }

    /// Refuses when the caller's address used up `kind`'s limit (no address: nothing to count).
    pub(crate) async fn check_address(
        &self,
        actor: &Actor,
        kind: AddressEvent,
    ) -> Result<(), Error> {
        match self.address_throttle(actor, kind) {
            Some((key, limit)) => self.throttle.check_limit(&key, limit).await,
            None => Ok(()),
        }
    }

    /// Counts one `kind` event for the caller's address.
    pub(crate) async fn record_address(
        &self,
        actor: &Actor,
        kind: AddressEvent,
    ) -> Result<(), Error> {
        match self.address_throttle(actor, kind) {
            Some((key, limit)) => self.throttle.record(&key, limit).await,
            None => Ok(()),
        }
    }

    /// The throttle key and limit of `kind` events from the caller's address, if it has one.
    fn address_throttle(
        &self,
        actor: &Actor,
        kind: AddressEvent,
    ) -> Option<(String, throttle::Limit)> {
        let address = actor.client_address.as_deref()?;
        Some((
            throttle::address_key(kind.as_str(), address),
            self.address_limit(kind),
        ))
    }

    fn address_limit(&self, kind: AddressEvent) -> throttle::Limit {
        match kind {
            AddressEvent::Failure => self.address_limits.failures(),
            AddressEvent::SignUp => self.address_limits.sign_ups(),
            AddressEvent::ResetRequest => self.address_limits.reset_requests(),
        }
    }

    /// Counts a password-reset request against the caller's address, refusing past the limit.
    pub async fn count_reset_request(&self, actor: &Actor) -> Result<(), Error> {
        self.check_address(actor, AddressEvent::ResetRequest)
            .await?;
        self.record_address(actor, AddressEvent::ResetRequest).await
    }

    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// Stores the next signing key: published now, signing after the configured lead. Returns
    /// its kid and when it starts signing.
    pub async fn rotate_signing_key(
        &self,
        actor: &Actor,
    ) -> Result<(String, chrono::DateTime<Utc>), Error> {
        let activates_at =
            Utc::now() + chrono::Duration::seconds(self.policy.signing_key_lead_seconds.max(0));
        let kid = self.keys.rotate(activates_at).await?;
        audit::record(
            &self.db,
            Entry {
                commune_id: None,
                actor: actor.clone(),
                action: "signing_key.rotate",
                target: format!("signing_keys/{kid}"),
                outcome: Outcome::Success,
                detail: serde_json::json!({ "activate_time": activates_at.to_rfc3339() }),
            },
        )
        .await?;
        Ok((kid, activates_at))
    }

    /// Creates the platform administrator named in the settings, unless that e-mail exists.
    pub async fn ensure_platform_admin(
        &self,
        email: Email,
        password: Password,
    ) -> Result<(), Error> {
        if find_user_by_email(&self.db, &email).await?.is_some() {
            return Ok(());
        }
        // A one-off at start-up: its memory is not kept (an idle process holds none).
        let password_hash = hash_password_with(password, Memory::Fresh).await?;
        let txn = self.db.begin().await?;
        let inserted = insert_user(
            &txn,
            None,
            &SignUpWith::Email(email.clone()),
            password_hash,
            "Platform administrator",
            Language::Ar,
        )
        .await;
        let user_id = match inserted {
            Ok(user_id) => user_id,
            // Another replica starting at the same moment created it first.
            Err(Error::EmailTaken { .. }) => return Ok(()),
            Err(error) => return Err(error),
        };
        grant(&txn, user_id, Role::PlatformAdmin).await?;
        txn.commit().await?;
        tracing::info!(email = %email.as_str(), "created the platform administrator");
        Ok(())
    }

    pub async fn create_commune(
        &self,
        new: NewCommune,
        actor: &Actor,
    ) -> Result<(commune::Model, Account), Error> {
        if find_commune(&self.db, new.code.as_str()).await?.is_some() {
            return Err(Error::CommuneExists(new.code.as_str().to_string()));
        }
        let Some(admin_email) = new.admin.sign_up.email() else {
            return Err(Error::Internal(
                "a commune's administrator signs up with an e-mail".into(),
            ));
        };
        if find_user_by_email(&self.db, admin_email).await?.is_some() {
            return Err(Error::EmailTaken {
                field: "admin_email",
            });
        }
        let password_hash = hash_password(new.admin.password).await?;
        let txn = self.db.begin().await?;
        let commune = commune::ActiveModel {
            id: Set(Uuid::now_v7()),
            code: Set(new.code.as_str().to_string()),
            name_ar: Set(new.name.ar.clone()),
            name_fr: Set(new.name.fr.clone()),
            name_en: Set(new.name.en.clone()),
            name_tzm: Set(new.name.tzm.clone()),
            population: Set(new.population),
            has_arrondissements: Set(new.has_arrondissements),
            petition_signature_threshold: Set(new.petition_signature_threshold),
            created_at: Set(Utc::now()),
            require_staff_mfa: Set(false),
            region: Set(String::new()),
            languages: Set("ar,fr".into()),
            time_zone: Set("Africa/Casablanca".into()),
            contact_email: Set(String::new()),
            contact_phone: Set(String::new()),
            address: Set(String::new()),
        }
        .insert(&txn)
        .await
        .map_err(|error| {
            unique_violation(error, Error::CommuneExists(new.code.as_str().to_string()))
        })?;
        let admin_id = insert_user(
            &txn,
            Some(commune.id),
            &new.admin.sign_up,
            password_hash,
            new.admin.display_name.as_str(),
            new.admin.language,
        )
        .await?;
        grant(&txn, admin_id, Role::CommuneAdmin).await?;
        for (action, target, detail) in [
            (
                "commune.create",
                format!("communes/{}", commune.id),
                serde_json::json!({ "code": commune.code }),
            ),
            (
                "role.grant",
                format!("users/{admin_id}"),
                serde_json::json!({ "role": Role::CommuneAdmin.as_str() }),
            ),
        ] {
            audit::record(
                &txn,
                Entry {
                    commune_id: Some(commune.id),
                    actor: actor.clone(),
                    action,
                    target,
                    outcome: Outcome::Success,
                    detail,
                },
            )
            .await?;
        }
        self.outbox
            .add(
                &txn,
                format!("communes/{}", commune.id),
                &events::CommuneCreated {
                    commune_id: commune.id.to_string(),
                    code: commune.code.clone(),
                    name: Some(new.name),
                    petition_signature_threshold: commune.petition_signature_threshold,
                },
            )
            .await?;
        self.outbox.commit(txn).await?;
        let admin = self.account(admin_id).await?;
        Ok((commune, admin))
    }

    /// Stores `updated` (the commune with its new values, same id and code), with the event
    /// and the audit entry.
    pub async fn update_commune(
        &self,
        updated: commune::Model,
        changed: &[String],
        actor: &Actor,
    ) -> Result<commune::Model, Error> {
        let txn = self.db.begin().await?;
        let mut row: commune::ActiveModel = updated.clone().into();
        row = sea_orm::ActiveModelTrait::reset_all(row);
        let saved = row.update(&txn).await?;
        audit::record(
            &txn,
            Entry {
                commune_id: Some(saved.id),
                actor: actor.clone(),
                action: "commune.update",
                target: format!("communes/{}", saved.id),
                outcome: Outcome::Success,
                detail: serde_json::json!({ "fields": changed }),
            },
        )
        .await?;
        self.outbox
            .add(
                &txn,
                format!("communes/{}", saved.id),
                &events::CommuneUpdated {
                    commune_id: saved.id.to_string(),
                    code: saved.code.clone(),
                    name: Some(LocalizedText {
                        ar: saved.name_ar.clone(),
                        fr: saved.name_fr.clone(),
                        en: saved.name_en.clone(),
                        tzm: saved.name_tzm.clone(),
                    }),
                    petition_signature_threshold: saved.petition_signature_threshold,
                    population: saved.population,
                    has_arrondissements: saved.has_arrondissements,
                    time_zone: saved.time_zone.clone(),
                },
            )
            .await?;
        self.outbox.commit(txn).await?;
        Ok(saved)
    }

    pub async fn commune_by_code(&self, code: &CommuneCode) -> Result<commune::Model, Error> {
        find_commune(&self.db, code.as_str())
            .await?
            .ok_or_else(|| Error::CommuneNotFound(code.as_str().to_string()))
    }

    pub async fn register_citizen(
        &self,
        commune: &CommuneCode,
        new: NewAccount,
        actor: &Actor,
    ) -> Result<Registration, Error> {
        self.check_address(actor, AddressEvent::SignUp).await?;
        let commune = self.commune_by_code(commune).await?;
        self.record_address(actor, AddressEvent::SignUp).await?;
        if let Some(existing) = find_account(&self.db, new.sign_up.identifier()).await? {
            self.tell_owner_of_sign_up_attempt(existing, new, actor)
                .await?;
            return Ok(Registration::Existing { commune });
        }
        let account = self
            .create_account(commune.id, new, &[Role::Citizen], actor)
            .await?;
        Ok(Registration::Created(account))
    }

    /// A sign-up with a taken e-mail or phone number: as costly as a real one (the password is
    /// hashed, then dropped), audited, and its owner hears of it by event (for a phone number,
    /// `SignUpAttempted` without an e-mail: the notice goes to the account, not to an address).
    async fn tell_owner_of_sign_up_attempt(
        &self,
        existing: user::Model,
        new: NewAccount,
        actor: &Actor,
    ) -> Result<(), Error> {
        let _same_cost = hash_password(new.password).await?;
        let txn = self.db.begin().await?;
        audit::record(
            &txn,
            Entry {
                commune_id: existing.commune_id,
                actor: actor.clone(),
                action: "user.create",
                target: format!("users/{}", existing.id),
                outcome: Outcome::Denied,
                detail: serde_json::json!({
                    "reason": match new.sign_up {
                        SignUpWith::Email(_) => "the e-mail has an account; its owner was told",
                        SignUpWith::Phone(_) => "the phone number has an account; its owner was told",
                    },
                }),
            },
        )
        .await?;
        self.outbox
            .add(
                &txn,
                format!("users/{}", existing.id),
                &events::SignUpAttempted {
                    user_id: existing.id.to_string(),
                    commune_id: existing
                        .commune_id
                        .map(|id| id.to_string())
                        .unwrap_or_default(),
                    preferred_language: Language::from_code(&existing.preferred_language)
                        .unwrap_or(Language::Ar) as i32,
                    email: match new.sign_up {
                        SignUpWith::Email(_) => existing.email.clone().unwrap_or_default(),
                        SignUpWith::Phone(_) => String::new(),
                    },
                    attempt_time: Some(jamaa_proto::timestamp_from_millis(
                        Utc::now().timestamp_millis(),
                    )),
                },
            )
            .await?;
        self.outbox.commit(txn).await?;
        Ok(())
    }

    /// Adds staff with `roles` (staff roles only) to `commune_id`.
    pub async fn create_staff(
        &self,
        commune_id: Uuid,
        new: NewAccount,
        roles: &[Role],
        actor: &Actor,
    ) -> Result<Account, Error> {
        self.create_account(commune_id, new, roles, actor).await
    }

    async fn create_account(
        &self,
        commune_id: Uuid,
        new: NewAccount,
        roles: &[Role],
        actor: &Actor,
    ) -> Result<Account, Error> {
        if let Some(email) = new.sign_up.email()
            && find_user_by_email(&self.db, email).await?.is_some()
        {
            return Err(Error::EmailTaken { field: "email" });
        }
        let password_hash = hash_password(new.password).await?;
        let txn = self.db.begin().await?;
        let user_id = insert_user(
            &txn,
            Some(commune_id),
            &new.sign_up,
            password_hash,
            new.display_name.as_str(),
            new.language,
        )
        .await?;
        if let Some(gender) = new.gender {
            user::Entity::update_many()
                .col_expr(user::Column::Gender, Expr::value(gender))
                .filter(user::Column::Id.eq(user_id))
                .exec(&txn)
                .await?;
        }
        // A citizen signing up acts for themself.
        let actor = Actor {
            user_id: actor.user_id.or(Some(user_id)),
            client_address: actor.client_address.clone(),
        };
        audit::record(
            &txn,
            Entry {
                commune_id: Some(commune_id),
                actor: actor.clone(),
                action: "user.create",
                target: format!("users/{user_id}"),
                outcome: Outcome::Success,
                detail: serde_json::json!({}),
            },
        )
        .await?;
        for role in roles {
            grant(&txn, user_id, *role).await?;
            audit::record(
                &txn,
                Entry {
                    commune_id: Some(commune_id),
                    actor: actor.clone(),
                    action: "role.grant",
                    target: format!("users/{user_id}"),
                    outcome: Outcome::Success,
                    detail: serde_json::json!({ "role": role.as_str() }),
                },
            )
            .await?;
        }
        if roles.contains(&Role::Citizen) {
            self.outbox
                .add(
                    &txn,
                    format!("users/{user_id}"),
                    &events::CitizenRegistered {
                        user_id: user_id.to_string(),
                        commune_id: commune_id.to_string(),
                        preferred_language: new.language as i32,
                        gender: match new.gender {
                            Some("female") => jamaa_proto::identity::v1::Gender::Female as i32,
                            Some("male") => jamaa_proto::identity::v1::Gender::Male as i32,
                            _ => 0,
                        },
                    },
                )
                .await?;
            // Sign-up sends the first code that proves the e-mail address (or, by SMS, the
            // phone number).
            let purpose = match new.sign_up {
                SignUpWith::Email(_) => Purpose::Contact,
                SignUpWith::Phone(_) => Purpose::Phone,
            };
            self.send_code(&txn, user_id, Some(commune_id), new.language, purpose)
                .await?;
        }
        self.outbox.commit(txn).await?;
        self.account(user_id).await
    }

    /// Issues a one-time code for `purpose` and the event that delivers it, in `txn`: to the
    /// account's e-mail address, or for [`Purpose::Phone`] to its phone number as it stands in
    /// `txn` (the code is bound to that number).
    pub(crate) async fn send_code(
        &self,
        txn: &DatabaseTransaction,
        user_id: Uuid,
        commune_id: Option<Uuid>,
        language: Language,
        purpose: Purpose,
    ) -> Result<chrono::DateTime<Utc>, Error> {
        let via = match purpose {
            Purpose::Phone => Via::Phone,
            Purpose::Contact | Purpose::PasswordReset => Via::Email,
        };
        self.send_code_via(txn, user_id, commune_id, language, purpose, via)
            .await
    }

    /// [`Accounts::send_code`] through `via`: a password-reset code asked for by phone number
    /// goes by SMS.
    pub(crate) async fn send_code_via(
        &self,
        txn: &DatabaseTransaction,
        user_id: Uuid,
        commune_id: Option<Uuid>,
        language: Language,
        purpose: Purpose,
        via: Via,
    ) -> Result<chrono::DateTime<Utc>, Error> {
        let user = user::Entity::find_by_id(user_id).one(txn).await?;
        let (email, phone_number) = match via {
            Via::Phone => (
                String::new(),
                user.and_then(|user| user.phone_number)
                    .ok_or(Error::NoPhoneNumber)?,
            ),
            Via::Email => (
                user.and_then(|user| user.email).ok_or(Error::NoEmail)?,
                String::new(),
            ),
        };
        // Only a phone-verification code is bound to the number (it proves that number).
        let bound_to = Some(phone_number.as_str()).filter(|_| purpose == Purpose::Phone);
        // Holding the account's row: two requests at once cannot both pass the
        // one-code-a-minute check below.
        user::Entity::update_many()
            .col_expr(user::Column::Id, Expr::col(user::Column::Id))
            .filter(user::Column::Id.eq(user_id))
            .exec(txn)
            .await?;
        let wait = verification::wait_before_next(txn, user_id, purpose).await?;
        if !wait.is_zero() {
            return Err(Error::CodeSentRecently { retry_after: wait });
        }
        let issued = verification::issue(
            txn,
            &self.personal,
            user_id,
            purpose,
            bound_to,
            purpose.ttl(),
        )
        .await?;
        self.outbox
            .add(
                txn,
                format!("users/{user_id}"),
                &events::VerificationCodeIssued {
                    user_id: user_id.to_string(),
                    commune_id: commune_id.map(|id| id.to_string()).unwrap_or_default(),
                    purpose: purpose.to_event() as i32,
                    code: issued.code,
                    expire_time: Some(jamaa_proto::timestamp_from_millis(
                        issued.expires_at.timestamp_millis(),
                    )),
                    preferred_language: language as i32,
                    email,
                    phone_number,
                },
            )
            .await?;
        Ok(issued.expires_at)
    }

    /// Sends `user_id` a new contact-verification code; returns when it expires. At most one
    /// code a minute. An account without an e-mail (signed up by phone) has none to prove.
    pub async fn send_verification_code(
        &self,
        user_id: Uuid,
    ) -> Result<chrono::DateTime<Utc>, Error> {
        let account = self.account(user_id).await?;
        if account.user.email.is_none() {
            return Err(Error::NoEmail);
        }
        if account.user.contact_verified_at.is_some() {
            return Err(Error::AlreadyVerified);
        }
        let language =
            Language::from_code(&account.user.preferred_language).unwrap_or(Language::Ar);
        let txn = self.db.begin().await?;
        let expires_at = self
            .send_code(
                &txn,
                user_id,
                account.user.commune_id,
                language,
                Purpose::Contact,
            )
            .await?;
        self.outbox.commit(txn).await?;
        Ok(expires_at)
    }

    /// Checks a contact-verification code of `user_id`; on success the account is
    /// contact-verified (its level at least [`AssuranceLevel::ContactVerified`]).
    pub async fn verify_contact(
        &self,
        user_id: Uuid,
        code: &str,
        actor: &Actor,
    ) -> Result<Account, Error> {
        let account = self.account(user_id).await?;
        if account.user.email.is_none() {
            return Err(Error::NoEmail);
        }
        if account.user.contact_verified_at.is_some() {
            return Err(Error::AlreadyVerified);
        }
        let entry = |outcome, detail| Entry {
            commune_id: account.user.commune_id,
            actor: actor.clone(),
            action: "contact.verify",
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
            Purpose::Contact,
            None,
            code,
        )
        .await
        {
            self.record_address(actor, AddressEvent::Failure).await?;
            audit::record(
                &self.db,
                entry(
                    Outcome::Failure,
                    serde_json::json!({ "reason": error.to_string() }),
                ),
            )
            .await?;
            return Err(error);
        }
        let txn = self.db.begin().await?;
        audit::record(&txn, entry(Outcome::Success, serde_json::json!({}))).await?;
        user::Entity::update_many()
            .col_expr(user::Column::ContactVerifiedAt, Expr::value(Utc::now()))
            .filter(user::Column::Id.eq(user_id))
            .exec(&txn)
            .await?;
        self.raise_assurance(&txn, &account, AssuranceLevel::ContactVerified)
            .await?;
        self.outbox.commit(txn).await?;
        self.account(user_id).await
    }

    /// Records that `actor`, of `commune_id`, checked the national ID card of citizen `user_id`:
    /// the CIN is stored encrypted with its blind index, the level becomes
    /// [`AssuranceLevel::VerifiedInPerson`]. A CIN already linked to another account is refused;
    /// checking the same citizen again (a renewed card) replaces the number. The desk is one
    /// [`crate::identity_proof::IdentityProofProvider`].
    pub async fn verify_in_person(
        &self,
        commune_id: Uuid,
        user_id: Uuid,
        national_id: &NationalId,
        actor: &Actor,
    ) -> Result<Account, Error> {
        self.verify_identity(
            &crate::identity_proof::DeskVerification { commune_id },
            user_id,
            national_id.clone(),
            actor,
        )
        .await
    }

    /// Sets the account's level to `level` when that is higher, with the event saying so.
    pub(crate) async fn raise_assurance(
        &self,
        txn: &DatabaseTransaction,
        account: &Account,
        level: AssuranceLevel,
    ) -> Result<(), Error> {
        if account.assurance() >= level {
            return Ok(());
        }
        user::Entity::update_many()
            .col_expr(user::Column::AssuranceLevel, Expr::value(level.as_str()))
            .filter(user::Column::Id.eq(account.user.id))
            .exec(txn)
            .await?;
        self.outbox
            .add(
                txn,
                format!("users/{}", account.user.id),
                &events::AssuranceLevelRaised {
                    user_id: account.user.id.to_string(),
                    commune_id: account
                        .user
                        .commune_id
                        .map(|id| id.to_string())
                        .unwrap_or_default(),
                    assurance_level: level.as_str().to_string(),
                    raise_time: Some(jamaa_proto::timestamp_from_millis(
                        Utc::now().timestamp_millis(),
                    )),
                },
            )
            .await?;
        Ok(())
    }

    /// Checks an e-mail (or phone number) and password and opens a session.
    /// Failed attempts are throttled per e-mail or number ([`crate::throttle`]), known or not.
    pub async fn login(
        &self,
        identifier: Identifier<'_>,
        password: &str,
        second_factor_code: Option<&str>,
        actor: &Actor,
    ) -> Result<Session, Error> {
        let throttle_key = identifier.throttle_key();
        let found = find_account(&self.db, identifier).await?;
        let identifier_hash = identifier.pseudonym(&self.personal);
        // Who the attempt was for: the account when the identifier is known (its commune's
        // chain), else a keyed hash of it (the platform's chain). Never the password, never the
        // e-mail or number.
        let attempt = |outcome: Outcome, reason: &str| Entry {
            commune_id: found.as_ref().and_then(|user| user.commune_id),
            actor: actor.clone(),
            action: "login",
            target: found
                .as_ref()
                .map(|user| format!("users/{}", user.id))
                .unwrap_or_default(),
            outcome,
            detail: serde_json::json!({
                "reason": reason,
                "by": identifier.kind(),
                "identifier_hash": identifier_hash,
            }),
        };
        let checked = match self.throttle.check(&throttle_key).await {
            Ok(()) => self.check_address(actor, AddressEvent::Failure).await,
            Err(error) => Err(error),
        };
        if let Err(error) = checked {
            audit::record(
                &self.db,
                attempt(Outcome::Denied, "too many failed attempts"),
            )
            .await?;
            return Err(error);
        }
        // Verify against a dummy hash when the user is unknown, so timing does not tell.
        let hash = found
            .as_ref()
            .map(|user| user.password_hash.clone())
            .unwrap_or_else(|| DUMMY_HASH.to_string());
        let matches = verify_password(password.to_string(), hash).await?;
        let Some(user) = found.clone().filter(|_| matches) else {
            self.throttle.record_failure(&throttle_key).await?;
            self.record_address(actor, AddressEvent::Failure).await?;
            audit::record(
                &self.db,
                attempt(Outcome::Failure, "wrong e-mail or password"),
            )
            .await?;
            return Err(Error::WrongCredentials);
        };
        if user.disabled_at.is_some() {
            audit::record(&self.db, attempt(Outcome::Denied, "account disabled")).await?;
            // Said only to whoever knows the password: it reveals nothing to anyone else.
            return Err(Error::AccountDisabled);
        }
        // Asked only of whoever knows the password; a wrong code counts as a failed sign-in.
        let with_second_factor = match self.check_second_factor(&user, second_factor_code).await {
            Ok(used) => used,
            Err(Error::SecondFactorRequired) => return Err(Error::SecondFactorRequired),
            Err(Error::WrongSecondFactor) => {
                self.throttle.record_failure(&throttle_key).await?;
                self.record_address(actor, AddressEvent::Failure).await?;
                audit::record(&self.db, attempt(Outcome::Failure, "wrong second factor")).await?;
                return Err(Error::WrongSecondFactor);
            }
            Err(error) => return Err(error),
        };
        self.throttle.clear(&throttle_key).await?;
        let account = self.account(user.id).await?;
        let session = self.open_session(account, with_second_factor).await?;
        audit::record(
            &self.db,
            Entry {
                actor: Actor::user(user.id, actor.client_address.clone()),
                ..attempt(Outcome::Success, "")
            },
        )
        .await?;
        Ok(session)
    }

    /// Spends a refresh token for a new session. A token presented twice revokes every session
    /// of its user.
    pub async fn refresh(&self, token: &str, actor: &Actor) -> Result<Session, Error> {
        let hash = tokens::hash_refresh_token(token);
        let Some(stored) = refresh_token::Entity::find()
            .filter(refresh_token::Column::TokenHash.eq(hash))
            .one(&self.db)
            .await?
        else {
            return Err(Error::BadRefreshToken);
        };
        if stored.revoked && stored.used_at.is_none() {
            // Ended by logout (or revoked with every other session): refused, nothing more.
            return Err(Error::BadRefreshToken);
        }
        if stored.used_at.is_some() {
            tracing::warn!(user_id = %stored.user_id, "a spent refresh token was presented; revoking the user's sessions");
            let txn = self.db.begin().await?;
            refresh_token::Entity::update_many()
                .col_expr(refresh_token::Column::Revoked, Expr::value(true))
                .filter(refresh_token::Column::UserId.eq(stored.user_id))
                .exec(&txn)
                .await?;
            let commune_id = user::Entity::find_by_id(stored.user_id)
                .one(&txn)
                .await?
                .and_then(|user| user.commune_id);
            audit::record(
                &txn,
                Entry {
                    commune_id,
                    actor: actor.clone(),
                    action: "session.reuse_detected",
                    target: format!("users/{}", stored.user_id),
                    outcome: Outcome::Denied,
                    detail: serde_json::json!({ "revoked": "every session of the account" }),
                },
            )
            .await?;
            txn.commit().await?;
            return Err(Error::BadRefreshToken);
        }
        if stored.expires_at < Utc::now() {
            return Err(Error::BadRefreshToken);
        }
        let spent = refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::UsedAt, Expr::value(Utc::now()))
            .filter(refresh_token::Column::Id.eq(stored.id))
            .filter(refresh_token::Column::UsedAt.is_null())
            .exec(&self.db)
            .await?;
        if spent.rows_affected != 1 {
            return Err(Error::BadRefreshToken);
        }
        let account = self.account(stored.user_id).await?;
        if account.user.disabled_at.is_some() {
            return Err(Error::BadRefreshToken);
        }
        let commune_id = account.user.commune_id;
        // A refreshed session keeps how its sign-in was made.
        let session = self.open_session(account, stored.second_factor).await?;
        audit::record(
            &self.db,
            Entry {
                commune_id,
                actor: Actor::user(stored.user_id, actor.client_address.clone()),
                action: "session.refresh",
                target: format!("users/{}", stored.user_id),
                outcome: Outcome::Success,
                detail: serde_json::json!({}),
            },
        )
        .await?;
        Ok(session)
    }

    /// Disables `user_id` and revokes every refresh token it holds, in one transaction. Commune
    /// administrators (`acting_commune` is theirs) reach only their commune's accounts; an
    /// account elsewhere is NOT_FOUND to them. Disabling twice changes nothing.
    pub async fn disable_user(
        &self,
        actor: &Actor,
        acting_commune: Option<Uuid>,
        user_id: Uuid,
    ) -> Result<Account, Error> {
        let user = user::Entity::find_by_id(user_id)
            .one(&self.db)
            .await?
            .filter(|user| acting_commune.is_none() || user.commune_id == acting_commune)
            .ok_or(Error::UserNotFound)?;
        if Some(user.id) == actor.user_id {
            return Err(Error::CannotDisableSelf);
        }
        if user.disabled_at.is_none() {
            let txn = self.db.begin().await?;
            user::Entity::update_many()
                .col_expr(user::Column::DisabledAt, Expr::value(Utc::now()))
                .filter(user::Column::Id.eq(user.id))
                .filter(user::Column::DisabledAt.is_null())
                .exec(&txn)
                .await?;
            refresh_token::Entity::update_many()
                .col_expr(refresh_token::Column::Revoked, Expr::value(true))
                .filter(refresh_token::Column::UserId.eq(user.id))
                .exec(&txn)
                .await?;
            audit::record(
                &txn,
                Entry {
                    commune_id: user.commune_id,
                    actor: actor.clone(),
                    action: "user.disable",
                    target: format!("users/{}", user.id),
                    outcome: Outcome::Success,
                    detail: serde_json::json!({ "sessions": "all revoked" }),
                },
            )
            .await?;
            txn.commit().await?;
            tracing::info!(user_id = %user.id, actor = ?actor.user_id, "disabled an account");
        }
        self.account(user.id).await
    }

    /// Ends the session `token` belongs to. Unknown, spent or already revoked tokens change
    /// nothing and answer the same (a logout tells nothing about a token).
    pub async fn logout(&self, token: &str, actor: &Actor) -> Result<(), Error> {
        let hash = tokens::hash_refresh_token(token);
        let txn = self.db.begin().await?;
        let ended = refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::Revoked, Expr::value(true))
            .filter(refresh_token::Column::TokenHash.eq(hash.clone()))
            .filter(refresh_token::Column::UsedAt.is_null())
            .filter(refresh_token::Column::Revoked.eq(false))
            .exec(&txn)
            .await?;
        if ended.rows_affected == 1
            && let Some(stored) = refresh_token::Entity::find()
                .filter(refresh_token::Column::TokenHash.eq(hash))
                .one(&txn)
                .await?
        {
            let commune_id = user::Entity::find_by_id(stored.user_id)
                .one(&txn)
                .await?
                .and_then(|user| user.commune_id);
            audit::record(
                &txn,
                Entry {
                    commune_id,
                    actor: Actor::user(stored.user_id, actor.client_address.clone()),
                    action: "logout",
                    target: format!("users/{}", stored.user_id),
                    outcome: Outcome::Success,
                    detail: serde_json::json!({}),
                },
            )
            .await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// Signs an access token and stores a refresh token for `account`; `second_factor`: whether
    /// the sign-in that opened it used one (claim `amr`, kept across refreshes).
    pub(crate) async fn open_session(
        &self,
        account: Account,
        second_factor: bool,
    ) -> Result<Session, Error> {
        let now = Utc::now();
        let enrolled = self.has_second_factor(account.user.id).await?;
        let is_staff = account.roles.iter().any(|role| role.is_staff());
        let commune_requires_mfa = match account.user.commune_id {
            Some(id) if is_staff => commune::Entity::find_by_id(id)
                .one(&self.db)
                .await?
                .is_some_and(|commune| commune.require_staff_mfa),
            _ => false,
        };
        let subject = TokenSubject {
            user_id: account.user.id,
            commune_id: account.user.commune_id,
            commune_code: account.commune_code.as_deref(),
            roles: account
                .roles
                .iter()
                .map(|role| role.as_str().to_string())
                .collect(),
            language: &account.user.preferred_language,
            assurance: account.assurance(),
            departments: account
                .departments
                .iter()
                .map(|(role, id)| (role.as_str().to_string(), id.to_string()))
                .collect(),
            second_factor,
            mfa_enrolment_required: commune_requires_mfa && !enrolled,
            residences: account.residences.iter().map(Uuid::to_string).collect(),
        };
        let claims = tokens::claims(
            &subject,
            &self.policy.issuer,
            &self.policy.audience,
            now,
            self.policy.access_token_ttl_seconds,
        );
        let access_token = self.keys.sign(&claims)?;
        let (refresh_token, refresh_hash) = tokens::new_refresh_token()?;
        refresh_token::ActiveModel {
            id: Set(Uuid::now_v7()),
            user_id: Set(account.user.id),
            token_hash: Set(refresh_hash),
            expires_at: Set(now + chrono::Duration::seconds(self.policy.refresh_token_ttl_seconds)),
            used_at: Set(None),
            revoked: Set(false),
            second_factor: Set(second_factor),
            created_at: Set(now),
        }
        .insert(&self.db)
        .await?;
        Ok(Session {
            access_token,
            expires_in_seconds: self.policy.access_token_ttl_seconds,
            refresh_token,
            account,
        })
    }

    /// Changes `user_id`'s password after checking the current one (failures count towards the
    /// sign-in throttle). Every session ends; returns a new one.
    pub async fn change_password(
        &self,
        user_id: Uuid,
        current: &str,
        new: Password,
        actor: &Actor,
    ) -> Result<Session, Error> {
        let account = self.account(user_id).await?;
        let throttle_key = sign_in_throttle_key(&account.user);
        self.throttle.check(&throttle_key).await?;
        let entry = |outcome, reason: &str| Entry {
            commune_id: account.user.commune_id,
            actor: actor.clone(),
            action: "password.change",
            target: format!("users/{user_id}"),
            outcome,
            detail: serde_json::json!({ "reason": reason }),
        };
        if !verify_password(current.to_string(), account.user.password_hash.clone()).await? {
            self.throttle.record_failure(&throttle_key).await?;
            self.record_address(actor, AddressEvent::Failure).await?;
            audit::record(&self.db, entry(Outcome::Failure, "wrong current password")).await?;
            return Err(Error::WrongPassword);
        }
        if new.expose() == current {
            return Err(Error::SamePassword);
        }
        let password_hash = hash_password(new).await?;
        let txn = self.db.begin().await?;
        set_password_and_end_sessions(&txn, user_id, password_hash).await?;
        audit::record(&txn, entry(Outcome::Success, "")).await?;
        txn.commit().await?;
        // The new session rests on the password just set.
        self.open_session(account, false).await
    }

    /// Sends a password-reset code to the account `identifier` names (by e-mail, or by SMS when
    /// named by phone number), if there is one that is not disabled and none was sent in the
    /// last minute; otherwise does nothing (the caller answers the same either way).
    pub async fn issue_password_reset(
        &self,
        identifier: Identifier<'_>,
        actor: &Actor,
    ) -> Result<(), Error> {
        let found = find_account(&self.db, identifier).await?;
        let Some(user) = found.filter(|user| user.disabled_at.is_none()) else {
            audit::record(
                &self.db,
                Entry {
                    commune_id: None,
                    actor: actor.clone(),
                    action: "password.reset_request",
                    target: String::new(),
                    outcome: Outcome::Failure,
                    detail: serde_json::json!({
                        "reason": match identifier {
                            Identifier::Email(_) => "no active account has this e-mail",
                            Identifier::Phone(_) => "no active account has this phone number",
                        },
                        "by": identifier.kind(),
                        "identifier_hash": identifier.pseudonym(&self.personal),
                    }),
                },
            )
            .await?;
            return Ok(());
        };
        let language = Language::from_code(&user.preferred_language).unwrap_or(Language::Ar);
        let txn = self.db.begin().await?;
        let via = match identifier {
            Identifier::Email(_) => Via::Email,
            Identifier::Phone(_) => Via::Phone,
        };
        match self
            .send_code_via(
                &txn,
                user.id,
                user.commune_id,
                language,
                Purpose::PasswordReset,
                via,
            )
            .await
        {
            Ok(_) => {}
            // Another request sent one moments ago: nothing to do (the transaction rolls back).
            Err(Error::CodeSentRecently { .. }) => return Ok(()),
            Err(error) => return Err(error),
        }
        audit::record(
            &txn,
            Entry {
                commune_id: user.commune_id,
                actor: actor.clone(),
                action: "password.reset_request",
                target: format!("users/{}", user.id),
                outcome: Outcome::Success,
                detail: serde_json::json!({ "by": identifier.kind() }),
            },
        )
        .await?;
        self.outbox.commit(txn).await?;
        Ok(())
    }

    /// Sets a new password with a reset code; every session of the account ends. An unknown
    /// e-mail or phone number fails exactly like a missing code. The code works whichever of the
    /// account's identifiers names it.
    pub async fn reset_password(
        &self,
        identifier: Identifier<'_>,
        code: &str,
        new: Password,
        actor: &Actor,
    ) -> Result<(), Error> {
        self.check_address(actor, AddressEvent::Failure).await?;
        let found = find_account(&self.db, identifier).await?;
        let Some(user) = found.filter(|user| user.disabled_at.is_none()) else {
            self.record_address(actor, AddressEvent::Failure).await?;
            return Err(Error::CodeExpired);
        };
        let entry = |outcome, reason: String| Entry {
            commune_id: user.commune_id,
            actor: actor.clone(),
            action: "password.reset",
            target: format!("users/{}", user.id),
            outcome,
            detail: serde_json::json!({ "reason": reason }),
        };
        if let Err(error) = verification::check(
            &self.db,
            &self.personal,
            user.id,
            Purpose::PasswordReset,
            None,
            code,
        )
        .await
        {
            self.record_address(actor, AddressEvent::Failure).await?;
            audit::record(&self.db, entry(Outcome::Failure, error.to_string())).await?;
            return Err(error);
        }
        let password_hash = hash_password(new).await?;
        let txn = self.db.begin().await?;
        set_password_and_end_sessions(&txn, user.id, password_hash).await?;
        audit::record(&txn, entry(Outcome::Success, String::new())).await?;
        txn.commit().await?;
        // The owner proved themself: earlier failed sign-ins no longer hold them back, by
        // whichever identifier they were made.
        self.throttle.clear(&identifier.throttle_key()).await?;
        for key in sign_in_throttle_keys(&user) {
            self.throttle.clear(&key).await?;
        }
        Ok(())
    }

    /// Checks a service's credentials and signs it a token for `audience` (a target service);
    /// failures are throttled per client and audited.
    pub async fn issue_service_token(
        &self,
        clients: &crate::service_clients::ServiceClients,
        client_id: &str,
        secret: &str,
        target: &str,
        actor: &Actor,
    ) -> Result<(String, i64), Error> {
        let throttle_key = throttle::account_key(&format!("service:{client_id}"));
        self.throttle.check(&throttle_key).await?;
        self.check_address(actor, AddressEvent::Failure).await?;
        let audience = clients.audience_for(target).ok_or(Error::UnknownAudience)?;
        let entry = |outcome| Entry {
            commune_id: None,
            actor: actor.clone(),
            action: "service.token",
            target: format!("services/{client_id}"),
            outcome,
            detail: serde_json::json!({ "audience": audience }),
        };
        if !clients.authenticate(client_id, secret) {
            self.throttle.record_failure(&throttle_key).await?;
            self.record_address(actor, AddressEvent::Failure).await?;
            audit::record(&self.db, entry(Outcome::Failure)).await?;
            return Err(Error::WrongClientCredentials);
        }
        let now = Utc::now();
        let ttl = self.policy.access_token_ttl_seconds;
        let claims = jamaa_auth::Claims {
            sub: format!("{}{client_id}", jamaa_auth::SERVICE_SUBJECT_PREFIX),
            iss: self.policy.issuer.clone(),
            aud: audience.clone(),
            exp: now.timestamp() + ttl,
            iat: now.timestamp(),
            nbf: Some(now.timestamp()),
            jti: Uuid::now_v7().to_string(),
            commune_id: None,
            commune_code: None,
            roles: Vec::new(),
            lang: String::new(),
            assurance: None,
            departments: Default::default(),
            amr: Vec::new(),
            mfa_enrolment_required: false,
            residences: Vec::new(),
        };
        let token = self.keys.sign(&claims)?;
        audit::record(&self.db, entry(Outcome::Success)).await?;
        Ok((token, ttl))
    }

    /// The contact details of `user_ids` (unknown ids left out).
    pub async fn contact_details(&self, user_ids: &[Uuid]) -> Result<Vec<user::Model>, Error> {
        Ok(user::Entity::find()
            .filter(user::Column::Id.is_in(user_ids.iter().copied()))
            .all(&self.db)
            .await?)
    }

    /// A page of audit entries (see [`audit::list`]).
    pub async fn audit_entries(
        &self,
        chain: Option<Uuid>,
        before: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<crate::storage::audit_entry::Model>, Error> {
        audit::list(&self.db, chain, before, limit).await
    }

    /// Recomputes an audit chain (see [`audit::check`]).
    pub async fn check_audit_chain(&self, chain: Uuid) -> Result<audit::ChainReport, Error> {
        audit::check(&self.db, chain).await
    }

    /// A user's account with roles and commune code.
    pub async fn account(&self, user_id: Uuid) -> Result<Account, Error> {
        let user = user::Entity::find_by_id(user_id)
            .one(&self.db)
            .await?
            .ok_or(Error::UserNotFound)?;
        let rows = user_role::Entity::find()
            .filter(user_role::Column::UserId.eq(user_id))
            .all(&self.db)
            .await?;
        let roles = rows
            .iter()
            .filter_map(|row| Role::parse(&row.role))
            .collect();
        let departments = rows
            .iter()
            .filter_map(|row| Some((Role::parse(&row.role)?, row.department_id?)))
            .collect();
        let commune_code = match user.commune_id {
            Some(id) => commune::Entity::find_by_id(id)
                .one(&self.db)
                .await?
                .map(|c| c.code),
            None => None,
        };
        let national_id_masked = national_id::Entity::find_by_id(user_id)
            .one(&self.db)
            .await?
            .map(|row| row.masked);
        let residences = crate::storage::residence::Entity::find()
            .filter(crate::storage::residence::Column::UserId.eq(user_id))
            .filter(crate::storage::residence::Column::ConfirmedAt.is_not_null())
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| row.commune_id)
            .collect();
        Ok(Account {
            user,
            commune_code,
            roles,
            departments,
            national_id_masked,
            residences,
        })
    }
}

/// A valid Argon2id hash of a random password, verified when the e-mail is unknown.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$6q0B2nCpJ9x2mB1D8Fq3QmDpuFqYyx4vZ0hE3sM9yXo";

/// Hashes `password` with Argon2id on a password-hashing thread (see
/// [`crate::password_hashing`]: the memory of a burst stays bounded).
pub(crate) async fn hash_password(password: Password) -> Result<String, Error> {
    hash_password_with(password, Memory::Kept).await
}

async fn hash_password_with(password: Password, memory: Memory) -> Result<String, Error> {
    crate::password_hashing::run(move || {
        crate::password_hashing::hash(password.expose().as_bytes(), memory)
    })
    .await
    .and_then(|hashed| hashed)
    .map_err(Error::Internal)
}

/// Whether `password` matches `hash`, checked on a password-hashing thread.
pub(crate) async fn verify_password(password: String, hash: String) -> Result<bool, Error> {
    crate::password_hashing::run(move || {
        crate::password_hashing::verify(password.as_bytes(), &hash)
    })
    .await
    .map_err(Error::Internal)
}

async fn find_commune(
    db: &DatabaseConnection,
    code: &str,
) -> Result<Option<commune::Model>, Error> {
    Ok(commune::Entity::find()
        .filter(commune::Column::Code.eq(code))
        .one(db)
        .await?)
}

pub(crate) async fn find_user_by_email(
    db: &DatabaseConnection,
    email: &Email,
) -> Result<Option<user::Model>, Error> {
    Ok(user::Entity::find()
        .filter(user::Column::Email.eq(email.as_str()))
        .one(db)
        .await?)
}

/// The account a phone number signs in: the one that verified it (at most one, a unique
/// index), else the oldest account signed up with it and without an e-mail (its number is how it
/// signs in, verified or not; an e-mail account's unverified number signs nothing in).
pub(crate) async fn find_user_by_phone(
    db: &impl sea_orm::ConnectionTrait,
    number: &PhoneNumber,
) -> Result<Option<user::Model>, Error> {
    let verified = user::Entity::find()
        .filter(user::Column::PhoneNumber.eq(number.as_str()))
        .filter(user::Column::PhoneVerifiedAt.is_not_null())
        .one(db)
        .await?;
    if verified.is_some() {
        return Ok(verified);
    }
    Ok(user::Entity::find()
        .filter(user::Column::PhoneNumber.eq(number.as_str()))
        .filter(user::Column::Email.is_null())
        .order_by_asc(user::Column::CreatedAt)
        .order_by_asc(user::Column::Id)
        .one(db)
        .await?)
}

/// The account `identifier` names, if any (an e-mail that does not parse names none).
pub(crate) async fn find_account(
    db: &DatabaseConnection,
    identifier: Identifier<'_>,
) -> Result<Option<user::Model>, Error> {
    match identifier {
        Identifier::Email(email) => match Email::parse(email) {
            Ok(email) => find_user_by_email(db, &email).await,
            Err(_) => Ok(None),
        },
        Identifier::Phone(number) => find_user_by_phone(db, number).await,
    }
}

/// The throttle keys of every identifier `user` signs in with: its e-mail, its phone number.
fn sign_in_throttle_keys(user: &user::Model) -> Vec<String> {
    user.email
        .iter()
        .chain(user.phone_number.iter())
        .map(|identifier| throttle::account_key(identifier))
        .collect()
}

/// The throttle key a signed-in person's password checks count under: their e-mail's, or for
/// an account without one their phone number's (or, with neither, their id's).
fn sign_in_throttle_key(user: &user::Model) -> String {
    match (&user.email, &user.phone_number) {
        (Some(email), _) => throttle::account_key(email),
        (None, Some(number)) => throttle::account_key(number),
        (None, None) => throttle::account_key(&format!("user:{}", user.id)),
    }
}

pub(crate) async fn insert_user(
    txn: &DatabaseTransaction,
    commune_id: Option<Uuid>,
    sign_up: &SignUpWith,
    password_hash: String,
    display_name: &str,
    language: Language,
) -> Result<Uuid, Error> {
    let (email, phone_number) = match sign_up {
        SignUpWith::Email(email) => (Some(email.as_str().to_string()), None),
        SignUpWith::Phone(number) => (None, Some(number.as_str().to_string())),
    };
    let user = user::ActiveModel {
        id: Set(Uuid::now_v7()),
        commune_id: Set(commune_id),
        email: Set(email),
        password_hash: Set(password_hash),
        disabled_at: Set(None),
        assurance_level: Set(AssuranceLevel::Registered.as_str().to_string()),
        contact_verified_at: Set(None),
        gender: Set(None),
        phone_number: Set(phone_number),
        phone_verified_at: Set(None),
        display_name: Set(display_name.to_string()),
        preferred_language: Set(language.code().to_string()),
        created_at: Set(Utc::now()),
    }
    .insert(txn)
    .await
    .map_err(|error| unique_violation(error, Error::EmailTaken { field: "email" }))?;
    Ok(user.id)
}

/// Stores a new password hash and revokes every refresh token of the account.
async fn set_password_and_end_sessions(
    txn: &DatabaseTransaction,
    user_id: Uuid,
    password_hash: String,
) -> Result<(), Error> {
    user::Entity::update_many()
        .col_expr(user::Column::PasswordHash, Expr::value(password_hash))
        .filter(user::Column::Id.eq(user_id))
        .exec(txn)
        .await?;
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::Revoked, Expr::value(true))
        .filter(refresh_token::Column::UserId.eq(user_id))
        .exec(txn)
        .await?;
    Ok(())
}

async fn grant(txn: &DatabaseTransaction, user_id: Uuid, role: Role) -> Result<(), Error> {
    grant_in_department(txn, user_id, role, None).await
}

/// Gives `user_id` the role `role`, limited to `department_id` when given; a held role gets the
/// new department.
pub(crate) async fn grant_in_department(
    txn: &DatabaseTransaction,
    user_id: Uuid,
    role: Role,
    department_id: Option<Uuid>,
) -> Result<(), Error> {
    user_role::Entity::insert(user_role::ActiveModel {
        user_id: Set(user_id),
        role: Set(role.as_str().to_string()),
        granted_at: Set(Utc::now()),
        department_id: Set(department_id),
    })
    .on_conflict(
        sea_orm::sea_query::OnConflict::columns([
            user_role::Column::UserId,
            user_role::Column::Role,
        ])
        .update_columns([
            user_role::Column::DepartmentId,
            user_role::Column::GrantedAt,
        ])
        .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// Maps a unique-constraint violation (a concurrent duplicate) to `duplicate`.
pub(crate) fn unique_violation(error: sea_orm::DbErr, duplicate: Error) -> Error {
    match error.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => duplicate,
        _ => Error::Database(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accounts on a new SQLite database (no relay: events stay in the outbox).
    async fn test_accounts() -> (Accounts, DatabaseConnection, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("jamaa-identity-{}", Uuid::new_v4().simple()));
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
        let keys = Arc::new(
            KeyRing::load_or_create(&db, chrono::Duration::seconds(120))
                .await
                .expect("keys"),
        );
        let accounts = Accounts::new(
            db.clone(),
            Outbox::new("test"),
            keys,
            TokenPolicy {
                issuer: "test".into(),
                audience: "test".into(),
                access_token_ttl_seconds: 60,
                refresh_token_ttl_seconds: 60,
                signing_key_lead_seconds: 1,
            },
            Arc::new(crate::personal_data::test_keys()),
            throttle::AddressLimits {
                failures_per_5_minutes: 100,
                sign_ups_per_hour: 100,
                reset_requests_per_5_minutes: 100,
            },
        );
        (accounts, db, dir)
    }

    /// Replicas starting together each try to create the platform administrator: one does, the
    /// others find it done (a unique-key clash is not a start-up failure).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replicas_creating_the_platform_admin_together_all_succeed() {
        let dir = std::env::temp_dir().join(format!("jamaa-identity-{}", Uuid::new_v4().simple()));
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
        let keys = Arc::new(
            KeyRing::load_or_create(&db, chrono::Duration::seconds(120))
                .await
                .expect("keys"),
        );
        let policy = TokenPolicy {
            issuer: "test".into(),
            audience: "test".into(),
            access_token_ttl_seconds: 60,
            refresh_token_ttl_seconds: 60,
            signing_key_lead_seconds: 1,
        };
        let replica = || {
            Accounts::new(
                db.clone(),
                Outbox::new("test"),
                keys.clone(),
                policy.clone(),
                Arc::new(crate::personal_data::test_keys()),
                throttle::AddressLimits {
                    failures_per_5_minutes: 100,
                    sign_ups_per_hour: 100,
                    reset_requests_per_5_minutes: 100,
                },
            )
        };
        let (first, second) = (replica(), replica());
        let email = || Email::parse("platform@example.ma").expect("email");
        let password = || Password::parse("platform-password").expect("password");
        let (a, b) = tokio::join!(
            first.ensure_platform_admin(email(), password()),
            second.ensure_platform_admin(email(), password())
        );
        assert!(a.is_ok() && b.is_ok(), "{a:?} {b:?}");
        let _ = std::fs::remove_dir_all(dir);
    }

    /// The events identity put in its outbox (no relay runs here), of type `M`, oldest first.
    async fn outbox_events<M: prost::Message + prost::Name + Default>(
        db: &DatabaseConnection,
    ) -> Vec<M> {
        use jamaa_events::outbox::outbox_event;
        use sea_orm::QueryOrder;
        outbox_event::Entity::find()
            .order_by_asc(outbox_event::Column::Id)
            .all(db)
            .await
            .expect("outbox")
            .into_iter()
            .filter_map(|row| {
                jamaa_events::CloudEvent {
                    id: row.id,
                    source: row.source,
                    event_type: row.event_type,
                    subject: row.subject,
                    time: Utc::now(),
                    data: row.payload,
                    trace_headers: Default::default(),
                }
                .decode::<M>()
                .ok()
            })
            .collect()
    }

    /// A phone sign-up sends its code by SMS; a second sign-up with the number tells the owner
    /// with a `SignUpAttempted` carrying no e-mail; a reset asked by phone number goes by SMS
    /// (`phone_number` set, `email` empty); and no audit entry holds the number.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn phone_sign_up_sign_up_attempt_and_reset_events() {
        let (accounts, db, dir) = test_accounts().await;
        let actor = Actor {
            user_id: None,
            client_address: Some("203.0.113.77".into()),
        };
        let code = CommuneCode::parse("TPH").expect("code");
        accounts
            .create_commune(
                NewCommune {
                    code: code.clone(),
                    name: LocalizedText {
                        ar: "ت".into(),
                        fr: "T".into(),
                        en: "T".into(),
                        tzm: "ⵜ".into(),
                    },
                    population: 1000,
                    has_arrondissements: false,
                    petition_signature_threshold: 10,
                    admin: NewAccount {
                        sign_up: SignUpWith::Email(Email::parse("admin@tph.test").expect("e-mail")),
                        password: Password::parse("admin-password-1").expect("password"),
                        display_name: DisplayName::parse("Admin").expect("name"),
                        language: Language::Fr,
                        gender: None,
                    },
                },
                &Actor::default(),
            )
            .await
            .expect("a commune");
        let number = PhoneNumber::parse("06 12 34 56 78").expect("a number");
        let citizen = |password: &str| NewAccount {
            sign_up: SignUpWith::Phone(number.clone()),
            password: Password::parse(password).expect("password"),
            display_name: DisplayName::parse("Hind").expect("name"),
            language: Language::Fr,
            gender: None,
        };
        let Registration::Created(hind) = accounts
            .register_citizen(&code, citizen("hind-password-1"), &actor)
            .await
            .expect("signed up")
        else {
            panic!("a new account");
        };
        assert_eq!(hind.user.email, None);
        assert_eq!(hind.user.phone_number.as_deref(), Some("+212612345678"));
        assert!(hind.user.phone_verified_at.is_none());
        let codes = outbox_events::<events::VerificationCodeIssued>(&db).await;
        assert_eq!(codes.len(), 1, "{codes:?}");
        assert_eq!(
            codes[0].purpose,
            events::verification_code_issued::Purpose::PhoneVerification as i32
        );
        assert_eq!(codes[0].phone_number, "+212612345678");
        assert!(codes[0].email.is_empty());

        let again = accounts
            .register_citizen(&code, citizen("someone-elses-1"), &actor)
            .await
            .expect("answered");
        assert!(matches!(again, Registration::Existing { .. }));
        let attempts = outbox_events::<events::SignUpAttempted>(&db).await;
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0].user_id, hind.user.id.to_string());
        assert!(attempts[0].email.is_empty());

        accounts
            .issue_password_reset(Identifier::Phone(&number), &actor)
            .await
            .expect("a reset");
        let codes = outbox_events::<events::VerificationCodeIssued>(&db).await;
        let reset = codes.last().expect("the reset code");
        assert_eq!(
            reset.purpose,
            events::verification_code_issued::Purpose::PasswordReset as i32
        );
        assert_eq!(reset.phone_number, "+212612345678");
        assert!(reset.email.is_empty());
        assert_eq!(reset.user_id, hind.user.id.to_string());

        let entries = crate::storage::audit_entry::Entity::find()
            .all(&db)
            .await
            .expect("audit");
        let log = format!("{entries:?}");
        for personal in ["612345678", "admin@tph.test", "Hind", "203.0.113.77"] {
            assert!(!log.contains(personal), "{personal} in {log}");
        }
        assert!(log.contains("203.0.113.0/24"), "{log}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn the_dummy_hash_is_a_real_argon2id_hash() {
        use argon2::{Argon2, PasswordVerifier};
        // A malformed dummy would fail fast and let timing reveal which e-mails exist.
        let parsed = argon2::PasswordHash::new(DUMMY_HASH).expect("a PHC string");
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
        assert!(
            Argon2::default()
                .verify_password(b"anything", DUMMY_HASH)
                .is_err()
        );
        // Our verification parses it and does the whole work (a slow `false`, not a fast one).
        let started = std::time::Instant::now();
        assert!(!crate::password_hashing::verify(b"anything", DUMMY_HASH));
        let full = started.elapsed();
        let started = std::time::Instant::now();
        assert!(!crate::password_hashing::verify(
            b"anything",
            "$argon2id$v=19$broken"
        ));
        assert!(full > started.elapsed() * 10, "{full:?}");
    }
}
