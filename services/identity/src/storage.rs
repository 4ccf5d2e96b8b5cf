//! Identity's tables and migrations. Only this service reads or writes them.

use jamaa_events::migrations::{CreateInboxEvents, CreateOutboxEvents};
use sea_orm_migration::prelude::*;

pub mod api_key {
    use sea_orm::entity::prelude::*;

    /// A commune's API key for one client application (see [`crate::api_keys`]).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "api_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub commune_id: Uuid,
        pub client_name: String,
        /// SHA-256 (hex) of the key; unique.
        pub key_hash: String,
        /// The key's first characters, to recognise it.
        pub key_start: String,
        pub created_by: Uuid,
        pub created_at: DateTimeUtc,
        pub revoked_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod commune {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "communes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        #[sea_orm(unique)]
        pub code: String,
        pub name_ar: String,
        pub name_fr: String,
        pub name_en: String,
        pub name_tzm: String,
        pub population: i64,
        pub has_arrondissements: bool,
        pub petition_signature_threshold: i32,
        pub created_at: DateTimeUtc,
        /// Whether the commune's staff must sign in with a second factor.
        pub require_staff_mfa: bool,
        pub region: String,
        /// Comma-separated language codes the commune serves in, e.g. `ar,fr,tzm`.
        pub languages: String,
        /// IANA time zone, e.g. `Africa/Casablanca`.
        pub time_zone: String,
        pub contact_email: String,
        pub contact_phone: String,
        pub address: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod user {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "users")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// `None` for platform administrators.
        pub commune_id: Option<Uuid>,
        /// The e-mail the account signs in with; `None` for an account signed up with a phone
        /// number (it signs in with that) and after erasure. Unique when set.
        #[sea_orm(unique)]
        pub email: Option<String>,
        /// Argon2id PHC string.
        pub password_hash: String,
        pub display_name: String,
        pub preferred_language: String,
        pub created_at: DateTimeUtc,
        /// When the account was disabled; `None` while it is active.
        pub disabled_at: Option<DateTimeUtc>,
        /// [`jamaa_auth::AssuranceLevel::as_str`] of the account's level.
        pub assurance_level: String,
        /// When the e-mail address was proved with a one-time code.
        pub contact_verified_at: Option<DateTimeUtc>,
        /// `female` or `male` when given (equity statistics only; never answered).
        pub gender: Option<String>,
        /// The mobile phone number, E.164 (see [`crate::domain::PhoneNumber`]); `None` when none.
        pub phone_number: Option<String>,
        /// When the phone number was proved with a one-time code; `None` while unverified. A
        /// verified number belongs to one account (partial unique index).
        pub phone_verified_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod user_role {
    use sea_orm::entity::prelude::*;

    /// A role of a user in the user's commune.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "user_roles")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub role: String,
        pub granted_at: DateTimeUtc,
        /// The department the role is limited to; `None`: the whole commune.
        pub department_id: Option<Uuid>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod refresh_token {
    use sea_orm::entity::prelude::*;

    /// A refresh token, stored as the SHA-256 of its value. Single use: using it marks it used;
    /// presenting a used token again revokes every token of the user (theft detection).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "refresh_tokens")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub user_id: Uuid,
        #[sea_orm(unique)]
        pub token_hash: String,
        pub expires_at: DateTimeUtc,
        pub used_at: Option<DateTimeUtc>,
        pub revoked: bool,
        pub created_at: DateTimeUtc,
        /// Whether the sign-in that opened the session used a second factor.
        pub second_factor: bool,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod signing_key {
    use sea_orm::entity::prelude::*;

    /// An Ed25519 key that signs access tokens.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "signing_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub kid: String,
        /// PKCS#8 DER of the private key.
        pub private_key: Vec<u8>,
        /// The raw 32-byte public key.
        pub public_key: Vec<u8>,
        pub created_at: DateTimeUtc,
        pub active: bool,
        /// When the key starts signing (published from `created_at`); `None` for keys stored
        /// before rotation existed: they signed from `created_at`.
        pub activates_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod login_failure {
    use sea_orm::entity::prelude::*;

    /// A failed sign-in, kept while it counts towards the throttle. `account_key` is a hash of the
    /// e-mail that was tried, whether or not an account has it (unknown and known e-mails are
    /// throttled alike, so the throttle tells nobody which exist).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "login_failures")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub account_key: String,
        pub failed_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod national_id {
    use sea_orm::entity::prelude::*;

    /// A national ID number (CIN) checked at the desk, one per account. Personal data under law
    /// 09-08: the number is kept only encrypted (XChaCha20-Poly1305 under the key `key_id`; the
    /// nonce leads `ciphertext`), with a keyed hash (`blind_index`, HMAC-SHA-256) that makes it
    /// unique and findable without decrypting, and a masked form for display.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "national_ids")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        pub key_id: String,
        pub ciphertext: Vec<u8>,
        #[sea_orm(unique)]
        pub blind_index: String,
        pub masked: String,
        /// The reception agent who checked the card.
        pub verified_by: Uuid,
        pub verified_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod verification_code {
    use sea_orm::entity::prelude::*;

    /// A one-time code sent to a person (contact verification, password reset), stored as a keyed
    /// hash. Only the newest code of a purpose counts; it dies when used, expired or tried
    /// [`crate::verification::MAX_TRIES`] times.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "verification_codes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub user_id: Uuid,
        /// `contact`, `password_reset` or `phone` (a phone code's hash also binds the number it
        /// was sent to).
        pub purpose: String,
        pub code_hash: String,
        pub expires_at: DateTimeUtc,
        pub tries: i32,
        pub used_at: Option<DateTimeUtc>,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod audit_entry {
    use sea_orm::entity::prelude::*;

    /// One audited event; see [`crate::audit`]. `chain_seq`, `prev_hash` and `hash` are set
    /// when the sealer chains it.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_entries")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// The commune's id, or the nil UUID for the platform's chain.
        pub chain_id: Uuid,
        pub chain_seq: Option<i64>,
        pub actor_id: Option<Uuid>,
        pub action: String,
        pub target: String,
        pub outcome: String,
        pub client_address: String,
        /// JSON text.
        pub detail: String,
        pub created_at: DateTimeUtc,
        pub prev_hash: Option<String>,
        pub hash: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod audit_chain_head {
    use sea_orm::entity::prelude::*;

    /// The last sealed entry of one audit chain.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_chain_heads")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub chain_id: Uuid,
        pub last_seq: i64,
        pub last_hash: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod department {
    use sea_orm::entity::prelude::*;

    /// A department of a commune (civil status office, urbanism…): routes work, scopes roles.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "departments")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub commune_id: Uuid,
        /// Unique in the commune, e.g. `URBANISM`.
        pub code: String,
        pub name_ar: String,
        pub name_fr: String,
        pub name_en: String,
        pub name_tzm: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod invitation {
    use sea_orm::entity::prelude::*;

    /// An invitation to join a commune's staff. The token is sent by event and stored only as
    /// its SHA-256; it works once, until `expires_at`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "invitations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub commune_id: Uuid,
        pub email: String,
        pub display_name: String,
        pub preferred_language: String,
        /// JSON: `[{"role": "case_officer", "department_id": "…" | null}, …]`.
        pub roles: String,
        #[sea_orm(unique)]
        pub token_hash: String,
        pub invited_by: Uuid,
        pub expires_at: DateTimeUtc,
        pub accepted_at: Option<DateTimeUtc>,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod totp_credential {
    use sea_orm::entity::prelude::*;

    /// A person's TOTP (RFC 6238) seed, encrypted like personal data. Counts once confirmed.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "totp_credentials")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        pub key_id: String,
        pub secret_ciphertext: Vec<u8>,
        pub confirmed_at: Option<DateTimeUtc>,
        /// The last 30-second step a code was accepted for: a code works once.
        pub last_used_step: i64,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod recovery_code {
    use sea_orm::entity::prelude::*;

    /// A single-use recovery code for when the authenticator is lost, stored as a keyed hash.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "recovery_codes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub user_id: Uuid,
        pub code_hash: String,
        pub used_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod residence {
    use sea_orm::entity::prelude::*;

    /// A commune a citizen also resides in, besides their own; counts once confirmed by that
    /// commune's desk.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "residences")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub commune_id: Uuid,
        pub declared_at: DateTimeUtc,
        pub confirmed_at: Option<DateTimeUtc>,
        pub confirmed_by: Option<Uuid>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Identity's migrations, in order.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateOutboxEvents),
            Box::new(CreateInboxEvents),
            Box::new(CreateIdentityTables),
            Box::new(CreateLoginFailures),
            Box::new(AddUserDisabledAt),
            Box::new(AddSigningKeyActivatesAt),
            Box::new(CreateAssuranceTables),
            Box::new(CreateAuditTables),
            Box::new(CreateStaffTables),
            Box::new(CreateSecondFactorTables),
            Box::new(AddUserGender),
            Box::new(IndexUnsealedAuditEntries),
            Box::new(CreateResidences),
            Box::new(AddRefreshTokenSecondFactor),
            Box::new(CreateApiKeys),
            Box::new(AddUserPhoneNumber),
            Box::new(MakeUserEmailOptional),
        ]
    }
}

struct CreateIdentityTables;

impl MigrationName for CreateIdentityTables {
    fn name(&self) -> &str {
        "m0001_000001_create_identity_tables"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateIdentityTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("communes")
                    .col(ColumnDef::new("id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("code").string_len(6).not_null().unique_key())
                    .col(ColumnDef::new("name_ar").string().not_null())
                    .col(ColumnDef::new("name_fr").string().not_null())
                    .col(ColumnDef::new("name_en").string().not_null())
                    .col(ColumnDef::new("name_tzm").string().not_null())
                    .col(ColumnDef::new("population").big_integer().not_null())
                    .col(ColumnDef::new("has_arrondissements").boolean().not_null())
                    .col(
                        ColumnDef::new("petition_signature_threshold")
                            .integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new("created_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("users")
                    .col(ColumnDef::new("id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("commune_id").uuid().null())
                    .col(ColumnDef::new("email").string().not_null().unique_key())
                    .col(ColumnDef::new("password_hash").string().not_null())
                    .col(ColumnDef::new("display_name").string().not_null())
                    .col(
                        ColumnDef::new("preferred_language")
                            .string_len(3)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new("created_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from("users", "commune_id")
                            .to("communes", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("user_roles")
                    .col(ColumnDef::new("user_id").uuid().not_null())
                    .col(ColumnDef::new("role").string().not_null())
                    .col(
                        ColumnDef::new("granted_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(Index::create().col("user_id").col("role"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("user_roles", "user_id")
                            .to("users", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("refresh_tokens")
                    .col(ColumnDef::new("id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("user_id").uuid().not_null())
                    .col(
                        ColumnDef::new("token_hash")
                            .string()
                            .not_null()
                            .unique_key(),
                    )
                    .col(
                        ColumnDef::new("expires_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new("used_at").timestamp_with_time_zone().null())
                    .col(ColumnDef::new("revoked").boolean().not_null())
                    .col(
                        ColumnDef::new("created_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from("refresh_tokens", "user_id")
                            .to("users", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("refresh_tokens_user")
                    .table("refresh_tokens")
                    .col("user_id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("signing_keys")
                    .col(ColumnDef::new("kid").string().not_null().primary_key())
                    .col(ColumnDef::new("private_key").binary().not_null())
                    .col(ColumnDef::new("public_key").binary().not_null())
                    .col(
                        ColumnDef::new("created_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new("active").boolean().not_null())
                    .to_owned(),
            )
            .await
    }
}

struct CreateLoginFailures;

impl MigrationName for CreateLoginFailures {
    fn name(&self) -> &str {
        "m0002_000001_create_login_failures"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateLoginFailures {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("login_failures")
                    .col(ColumnDef::new("id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("account_key").string_len(64).not_null())
                    .col(
                        ColumnDef::new("failed_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("login_failures_account_time")
                    .table("login_failures")
                    .col("account_key")
                    .col("failed_at")
                    .to_owned(),
            )
            .await
    }
}

struct AddUserDisabledAt;

impl MigrationName for AddUserDisabledAt {
    fn name(&self) -> &str {
        "m0003_000001_add_user_disabled_at"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddUserDisabledAt {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("users")
                    .add_column(
                        ColumnDef::new("disabled_at")
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await
    }
}

struct AddSigningKeyActivatesAt;

impl MigrationName for AddSigningKeyActivatesAt {
    fn name(&self) -> &str {
        "m0004_000001_add_signing_key_activates_at"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddSigningKeyActivatesAt {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("signing_keys")
                    .add_column(
                        ColumnDef::new("activates_at")
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await
    }
}

struct CreateAssuranceTables;

impl MigrationName for CreateAssuranceTables {
    fn name(&self) -> &str {
        "m0005_000001_create_assurance_tables"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateAssuranceTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        manager
            .alter_table(
                Table::alter()
                    .table("users")
                    .add_column(
                        ColumnDef::new("assurance_level")
                            .string_len(32)
                            .not_null()
                            .default("registered"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("users")
                    .add_column(
                        ColumnDef::new("contact_verified_at")
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("national_ids")
                    .col(ColumnDef::new("user_id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("key_id").string_len(64).not_null())
                    .col(ColumnDef::new("ciphertext").binary().not_null())
                    .col(
                        ColumnDef::new("blind_index")
                            .string_len(64)
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new("masked").string_len(16).not_null())
                    .col(ColumnDef::new("verified_by").uuid().not_null())
                    .col(
                        ColumnDef::new("verified_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from("national_ids", "user_id")
                            .to("users", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("verification_codes")
                    .col(ColumnDef::new("id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("user_id").uuid().not_null())
                    .col(ColumnDef::new("purpose").string_len(32).not_null())
                    .col(ColumnDef::new("code_hash").string_len(64).not_null())
                    .col(
                        ColumnDef::new("expires_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new("tries").integer().not_null())
                    .col(ColumnDef::new("used_at").timestamp_with_time_zone().null())
                    .col(
                        ColumnDef::new("created_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from("verification_codes", "user_id")
                            .to("users", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("verification_codes_user_purpose")
                    .table("verification_codes")
                    .col("user_id")
                    .col("purpose")
                    .col("created_at")
                    .to_owned(),
            )
            .await
    }
}

struct CreateAuditTables;

impl MigrationName for CreateAuditTables {
    fn name(&self) -> &str {
        "m0006_000001_create_audit_tables"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateAuditTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("audit_entries")
                    .col(ColumnDef::new("id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("chain_id").uuid().not_null())
                    .col(ColumnDef::new("chain_seq").big_integer().null())
                    .col(ColumnDef::new("actor_id").uuid().null())
                    .col(ColumnDef::new("action").string_len(64).not_null())
                    .col(ColumnDef::new("target").string().not_null())
                    .col(ColumnDef::new("outcome").string_len(16).not_null())
                    .col(ColumnDef::new("client_address").string().not_null())
                    .col(ColumnDef::new("detail").text().not_null())
                    .col(
                        ColumnDef::new("created_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new("prev_hash").string_len(64).null())
                    .col(ColumnDef::new("hash").string_len(64).null())
                    .to_owned(),
            )
            .await?;
        // One entry per place in a chain; NULLs (unsealed) are distinct.
        manager
            .create_index(
                Index::create()
                    .name("audit_entries_chain_seq")
                    .table("audit_entries")
                    .col("chain_id")
                    .col("chain_seq")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("audit_entries_chain_id")
                    .table("audit_entries")
                    .col("chain_id")
                    .col("id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("audit_chain_heads")
                    .col(ColumnDef::new("chain_id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("last_seq").big_integer().not_null())
                    .col(ColumnDef::new("last_hash").string_len(64).not_null())
                    .to_owned(),
            )
            .await
    }
}

struct CreateStaffTables;

impl MigrationName for CreateStaffTables {
    fn name(&self) -> &str {
        "m0007_000001_create_staff_tables"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateStaffTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("departments")
                    .col(ColumnDef::new("id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("commune_id").uuid().not_null())
                    .col(ColumnDef::new("code").string_len(32).not_null())
                    .col(ColumnDef::new("name_ar").string().not_null())
                    .col(ColumnDef::new("name_fr").string().not_null())
                    .col(ColumnDef::new("name_en").string().not_null())
                    .col(ColumnDef::new("name_tzm").string().not_null())
                    .col(
                        ColumnDef::new("created_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from("departments", "commune_id")
                            .to("communes", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("departments_commune_code")
                    .table("departments")
                    .col("commune_id")
                    .col("code")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("user_roles")
                    .add_column(ColumnDef::new("department_id").uuid().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("invitations")
                    .col(ColumnDef::new("id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("commune_id").uuid().not_null())
                    .col(ColumnDef::new("email").string().not_null())
                    .col(ColumnDef::new("display_name").string().not_null())
                    .col(
                        ColumnDef::new("preferred_language")
                            .string_len(3)
                            .not_null(),
                    )
                    .col(ColumnDef::new("roles").text().not_null())
                    .col(
                        ColumnDef::new("token_hash")
                            .string_len(64)
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new("invited_by").uuid().not_null())
                    .col(
                        ColumnDef::new("expires_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new("accepted_at")
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new("created_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from("invitations", "commune_id")
                            .to("communes", "id"),
                    )
                    .to_owned(),
            )
            .await
    }
}

struct CreateSecondFactorTables;

impl MigrationName for CreateSecondFactorTables {
    fn name(&self) -> &str {
        "m0008_000001_create_second_factor_tables"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateSecondFactorTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("totp_credentials")
                    .col(ColumnDef::new("user_id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("key_id").string_len(64).not_null())
                    .col(ColumnDef::new("secret_ciphertext").binary().not_null())
                    .col(
                        ColumnDef::new("confirmed_at")
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(ColumnDef::new("last_used_step").big_integer().not_null())
                    .col(
                        ColumnDef::new("created_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from("totp_credentials", "user_id")
                            .to("users", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("recovery_codes")
                    .col(ColumnDef::new("id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("user_id").uuid().not_null())
                    .col(ColumnDef::new("code_hash").string_len(64).not_null())
                    .col(ColumnDef::new("used_at").timestamp_with_time_zone().null())
                    .foreign_key(
                        ForeignKey::create()
                            .from("recovery_codes", "user_id")
                            .to("users", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("recovery_codes_user")
                    .table("recovery_codes")
                    .col("user_id")
                    .to_owned(),
            )
            .await?;
        // The commune's profile and policy, one column per ALTER TABLE (SQLite).
        for (name, default) in [
            ("region", ""),
            ("languages", "ar,fr"),
            ("time_zone", "Africa/Casablanca"),
            ("contact_email", ""),
            ("contact_phone", ""),
            ("address", ""),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table("communes")
                        .add_column(ColumnDef::new(name).string().not_null().default(default))
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table("communes")
                    .add_column(
                        ColumnDef::new("require_staff_mfa")
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .to_owned(),
            )
            .await
    }
}

struct AddUserGender;

impl MigrationName for AddUserGender {
    fn name(&self) -> &str {
        "m0009_000001_add_user_gender"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddUserGender {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("users")
                    .add_column(ColumnDef::new("gender").string_len(16).null())
                    .to_owned(),
            )
            .await
    }
}

struct IndexUnsealedAuditEntries;

impl MigrationName for IndexUnsealedAuditEntries {
    fn name(&self) -> &str {
        "m0010_000001_index_unsealed_audit_entries"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for IndexUnsealedAuditEntries {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The sealer looks for `chain_seq IS NULL` every second: found through this index, not a
        // scan of the whole log.
        manager
            .create_index(
                Index::create()
                    .name("audit_entries_unsealed")
                    .table("audit_entries")
                    .col("chain_seq")
                    .col("chain_id")
                    .to_owned(),
            )
            .await
    }
}

struct CreateResidences;

impl MigrationName for CreateResidences {
    fn name(&self) -> &str {
        "m0011_000001_create_residences"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateResidences {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("residences")
                    .col(ColumnDef::new("user_id").uuid().not_null())
                    .col(ColumnDef::new("commune_id").uuid().not_null())
                    .col(
                        ColumnDef::new("declared_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new("confirmed_at")
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(ColumnDef::new("confirmed_by").uuid().null())
                    .primary_key(Index::create().col("user_id").col("commune_id"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("residences", "user_id")
                            .to("users", "id"),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from("residences", "commune_id")
                            .to("communes", "id"),
                    )
                    .to_owned(),
            )
            .await
    }
}

struct AddRefreshTokenSecondFactor;

impl MigrationName for AddRefreshTokenSecondFactor {
    fn name(&self) -> &str {
        "m0012_000001_add_refresh_token_second_factor"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddRefreshTokenSecondFactor {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("refresh_tokens")
                    .add_column(
                        ColumnDef::new("second_factor")
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .to_owned(),
            )
            .await
    }
}

struct CreateApiKeys;

impl MigrationName for CreateApiKeys {
    fn name(&self) -> &str {
        "m0013_000001_create_api_keys"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateApiKeys {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("api_keys")
                    .col(ColumnDef::new("id").uuid().not_null().primary_key())
                    .col(ColumnDef::new("commune_id").uuid().not_null())
                    .col(ColumnDef::new("client_name").text().not_null())
                    .col(
                        ColumnDef::new("key_hash")
                            .string_len(64)
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new("key_start").string_len(16).not_null())
                    .col(ColumnDef::new("created_by").uuid().not_null())
                    .col(
                        ColumnDef::new("created_at")
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new("revoked_at")
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("api_keys_by_commune")
                    .table("api_keys")
                    .col("commune_id")
                    .col("id")
                    .to_owned(),
            )
            .await
    }
}

struct AddUserPhoneNumber;

impl MigrationName for AddUserPhoneNumber {
    fn name(&self) -> &str {
        "m0014_000001_add_user_phone_number"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddUserPhoneNumber {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per ALTER TABLE (SQLite).
        manager
            .alter_table(
                Table::alter()
                    .table("users")
                    .add_column(ColumnDef::new("phone_number").string_len(16).null())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("users")
                    .add_column(
                        ColumnDef::new("phone_verified_at")
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        // A verified number belongs to one account; unverified ones may repeat (anyone may type
        // any number, only its owner can prove it). A partial index, on SQLite and PostgreSQL.
        manager
            .create_index(
                Index::create()
                    .name("users_verified_phone_number")
                    .table("users")
                    .col("phone_number")
                    .unique()
                    .and_where(Expr::col("phone_verified_at").is_not_null())
                    .to_owned(),
            )
            .await
    }
}

struct MakeUserEmailOptional;

impl MigrationName for MakeUserEmailOptional {
    fn name(&self) -> &str {
        "m0015_000001_make_user_email_optional"
    }
}

/// The columns of `users` as [`MakeUserEmailOptional`] leaves them, in order, as every earlier
/// migration declared them (`email` now without NOT NULL).
fn users_columns() -> Vec<ColumnDef> {
    vec![
        ColumnDef::new("id")
            .uuid()
            .not_null()
            .primary_key()
            .to_owned(),
        ColumnDef::new("commune_id").uuid().null().to_owned(),
        ColumnDef::new("email")
            .string()
            .null()
            .unique_key()
            .to_owned(),
        ColumnDef::new("password_hash")
            .string()
            .not_null()
            .to_owned(),
        ColumnDef::new("display_name")
            .string()
            .not_null()
            .to_owned(),
        ColumnDef::new("preferred_language")
            .string_len(3)
            .not_null()
            .to_owned(),
        ColumnDef::new("created_at")
            .timestamp_with_time_zone()
            .not_null()
            .to_owned(),
        ColumnDef::new("disabled_at")
            .timestamp_with_time_zone()
            .null()
            .to_owned(),
        ColumnDef::new("assurance_level")
            .string_len(32)
            .not_null()
            .default("registered")
            .to_owned(),
        ColumnDef::new("contact_verified_at")
            .timestamp_with_time_zone()
            .null()
            .to_owned(),
        ColumnDef::new("gender").string_len(16).null().to_owned(),
        ColumnDef::new("phone_number")
            .string_len(16)
            .null()
            .to_owned(),
        ColumnDef::new("phone_verified_at")
            .timestamp_with_time_zone()
            .null()
            .to_owned(),
    ]
}

/// The names of [`users_columns`], quoted and comma-separated, for copying rows.
const USERS_COLUMN_LIST: &str = "\"id\", \"commune_id\", \"email\", \"password_hash\", \
    \"display_name\", \"preferred_language\", \"created_at\", \"disabled_at\", \
    \"assurance_level\", \"contact_verified_at\", \"gender\", \"phone_number\", \
    \"phone_verified_at\"";

#[async_trait::async_trait]
impl MigrationTrait for MakeUserEmailOptional {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        match manager.get_database_backend() {
            sea_orm::DatabaseBackend::Sqlite => {
                // SQLite cannot drop a NOT NULL: the table is rebuilt, inside this migration's
                // transaction. Other tables reference `users(id)` (roles, sessions, codes, CINs,
                // second factors, residences) and foreign keys are on: dropping the table counts
                // a violation per referencing row, re-inserting the rows into the new `users`
                // takes each back, and deferred checks settle the count at commit (a row lost on
                // the way fails the migration). Referencing tables name `users` and need no change.
                db.execute_unprepared("PRAGMA defer_foreign_keys = ON")
                    .await?;
                db.execute_unprepared(&format!(
                    "CREATE TABLE \"users_m0015_copy\" AS SELECT {USERS_COLUMN_LIST} FROM \"users\""
                ))
                .await?;
                manager
                    .drop_table(Table::drop().table("users").to_owned())
                    .await?;
                let mut users = Table::create();
                users.table("users");
                for column in users_columns() {
                    users.col(column);
                }
                users.foreign_key(
                    ForeignKey::create()
                        .from("users", "commune_id")
                        .to("communes", "id"),
                );
                manager.create_table(users.to_owned()).await?;
                db.execute_unprepared(&format!(
                    "INSERT INTO \"users\" ({USERS_COLUMN_LIST}) \
                     SELECT {USERS_COLUMN_LIST} FROM \"users_m0015_copy\""
                ))
                .await?;
                manager
                    .drop_table(Table::drop().table("users_m0015_copy").to_owned())
                    .await?;
                // The one index on `users` besides its keys went with the old table.
                manager
                    .create_index(
                        Index::create()
                            .name("users_verified_phone_number")
                            .table("users")
                            .col("phone_number")
                            .unique()
                            .and_where(Expr::col("phone_verified_at").is_not_null())
                            .to_owned(),
                    )
                    .await?;
            }
            _ => {
                // The unique constraint stays: PostgreSQL lets NULLs repeat in it.
                db.execute_unprepared("ALTER TABLE \"users\" ALTER COLUMN \"email\" DROP NOT NULL")
                    .await?;
            }
        }
        Ok(())
    }

    /// The rebuild and its foreign-key bookkeeping must commit together, on every backend.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use sea_orm::{
        ActiveModelTrait, ConnectOptions, ConnectionTrait, Database, EntityTrait, PaginatorTrait,
        Set,
    };
    use uuid::Uuid;

    /// An SQLite database with every migration before [`MakeUserEmailOptional`] applied, on one
    /// connection with foreign keys on (as `jamaa_db::connect` opens it).
    async fn database_before_m0015() -> (sea_orm::DatabaseConnection, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("jamaa-m0015-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("a folder");
        let mut options =
            ConnectOptions::new(format!("sqlite://{}/identity.db?mode=rwc", dir.display()));
        options.max_connections(1).sqlx_logging(false);
        let db = Database::connect(options).await.expect("database");
        db.execute_unprepared("PRAGMA foreign_keys = ON")
            .await
            .expect("foreign keys");
        let before = Migrator::migrations().len() - 1;
        Migrator::up(&db, Some(before as u32))
            .await
            .expect("migrations up to m0014");
        (db, dir)
    }

    #[tokio::test]
    async fn making_the_email_optional_rebuilds_users_on_sqlite_keeping_every_account() {
        let (db, dir) = database_before_m0015().await;
        let at = |minute| Utc.with_ymd_and_hms(2026, 3, 1, 9, minute, 0).unwrap();
        let commune_id = Uuid::now_v7();
        commune::ActiveModel {
            id: Set(commune_id),
            code: Set("MGR".into()),
            name_ar: Set("م".into()),
            name_fr: Set("M".into()),
            name_en: Set("M".into()),
            name_tzm: Set("ⵎ".into()),
            population: Set(1000),
            has_arrondissements: Set(false),
            petition_signature_threshold: Set(100),
            created_at: Set(at(0)),
            require_staff_mfa: Set(false),
            region: Set(String::new()),
            languages: Set("ar,fr".into()),
            time_zone: Set("Africa/Casablanca".into()),
            contact_email: Set(String::new()),
            contact_phone: Set(String::new()),
            address: Set(String::new()),
        }
        .insert(&db)
        .await
        .expect("a commune");
        // An e-mail account with every column set, and a row in each table that references it.
        let amina = user::Model {
            id: Uuid::now_v7(),
            commune_id: Some(commune_id),
            email: Some("amina@example.ma".into()),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            display_name: "Amina".into(),
            preferred_language: "fr".into(),
            created_at: at(1),
            disabled_at: Some(at(9)),
            assurance_level: "verified_in_person".into(),
            contact_verified_at: Some(at(2)),
            gender: Some("female".into()),
            phone_number: Some("+212612345678".into()),
            phone_verified_at: Some(at(3)),
        };
        user::ActiveModel::from(amina.clone())
            .insert(&db)
            .await
            .expect("an account");
        let platform_admin = user::Model {
            id: Uuid::now_v7(),
            commune_id: None,
            email: Some("admin@example.ma".into()),
            disabled_at: None,
            contact_verified_at: None,
            gender: None,
            phone_number: None,
            phone_verified_at: None,
            assurance_level: "registered".into(),
            ..amina.clone()
        };
        user::ActiveModel::from(platform_admin.clone())
            .insert(&db)
            .await
            .expect("a platform administrator");
        user_role::ActiveModel {
            user_id: Set(amina.id),
            role: Set("citizen".into()),
            granted_at: Set(at(1)),
            department_id: Set(None),
        }
        .insert(&db)
        .await
        .expect("a role");
        refresh_token::ActiveModel {
            id: Set(Uuid::now_v7()),
            user_id: Set(amina.id),
            token_hash: Set("a".repeat(64)),
            expires_at: Set(at(30)),
            used_at: Set(None),
            revoked: Set(false),
            created_at: Set(at(4)),
            second_factor: Set(false),
        }
        .insert(&db)
        .await
        .expect("a session");
        national_id::ActiveModel {
            user_id: Set(amina.id),
            key_id: Set("k1".into()),
            ciphertext: Set(vec![1, 2, 3]),
            blind_index: Set("b".repeat(64)),
            masked: Set("AB****56".into()),
            verified_by: Set(platform_admin.id),
            verified_at: Set(at(5)),
        }
        .insert(&db)
        .await
        .expect("a CIN");
        verification_code::ActiveModel {
            id: Set(Uuid::now_v7()),
            user_id: Set(amina.id),
            purpose: Set("contact".into()),
            code_hash: Set("c".repeat(64)),
            expires_at: Set(at(12)),
            tries: Set(1),
            used_at: Set(Some(at(2))),
            created_at: Set(at(1)),
        }
        .insert(&db)
        .await
        .expect("a code");
        residence::ActiveModel {
            user_id: Set(amina.id),
            commune_id: Set(commune_id),
            declared_at: Set(at(6)),
            confirmed_at: Set(None),
            confirmed_by: Set(None),
        }
        .insert(&db)
        .await
        .expect("a residence");

        Migrator::up(&db, None).await.expect("m0015");

        // Both accounts came through with every column as it was.
        assert_eq!(
            user::Entity::find_by_id(amina.id)
                .one(&db)
                .await
                .expect("read"),
            Some(amina.clone())
        );
        assert_eq!(
            user::Entity::find_by_id(platform_admin.id)
                .one(&db)
                .await
                .expect("read"),
            Some(platform_admin.clone())
        );
        // Everything that references them still does, and foreign keys still hold.
        assert_eq!(
            user_role::Entity::find().count(&db).await.expect("roles"),
            1
        );
        assert_eq!(
            refresh_token::Entity::find()
                .count(&db)
                .await
                .expect("sessions"),
            1
        );
        assert_eq!(
            national_id::Entity::find().count(&db).await.expect("CINs"),
            1
        );
        assert_eq!(
            verification_code::Entity::find()
                .count(&db)
                .await
                .expect("codes"),
            1
        );
        assert_eq!(
            residence::Entity::find()
                .count(&db)
                .await
                .expect("residences"),
            1
        );
        let problems = db
            .query_all_raw(sea_orm::Statement::from_string(
                sea_orm::DatabaseBackend::Sqlite,
                "PRAGMA foreign_key_check",
            ))
            .await
            .expect("foreign key check");
        assert!(problems.is_empty(), "{problems:?}");
        let orphan = user_role::ActiveModel {
            user_id: Set(Uuid::now_v7()),
            role: Set("citizen".into()),
            granted_at: Set(at(7)),
            department_id: Set(None),
        }
        .insert(&db)
        .await;
        assert!(orphan.is_err(), "a role of no account is refused");
        let leftovers = db
            .query_all_raw(sea_orm::Statement::from_string(
                sea_orm::DatabaseBackend::Sqlite,
                "SELECT name FROM sqlite_master WHERE name LIKE '%m0015%'",
            ))
            .await
            .expect("schema");
        assert!(leftovers.is_empty(), "the copy is gone");

        // Accounts without an e-mail now fit, any number of them; an e-mail is still unique.
        for minute in [10, 11] {
            user::ActiveModel::from(user::Model {
                id: Uuid::now_v7(),
                email: None,
                phone_number: Some("+212712345678".into()),
                phone_verified_at: None,
                created_at: at(minute),
                ..platform_admin.clone()
            })
            .insert(&db)
            .await
            .expect("an account without an e-mail");
        }
        let twice = user::ActiveModel::from(user::Model {
            id: Uuid::now_v7(),
            ..platform_admin.clone()
        })
        .insert(&db)
        .await;
        assert!(twice.is_err(), "a taken e-mail is refused");
        // The verified-number index came back with the table.
        let same_number = user::ActiveModel::from(user::Model {
            id: Uuid::now_v7(),
            email: None,
            ..amina.clone()
        })
        .insert(&db)
        .await;
        assert!(
            same_number.is_err(),
            "a verified number belongs to one account"
        );
        drop(db);
        let _ = std::fs::remove_dir_all(dir);
    }
}
