//! The identity service: communes (tenants), citizens and staff, roles, login, and the signed
//! access tokens every other service verifies with the keys from `ListPublicKeys`.
//!
//! Layout: [`grpc`] (handlers: parse, check the caller) → [`accounts`] (operations, outbox) →
//! [`storage`] (tables, migrations). [`domain`] holds the parsed value types.

pub mod accounts;
pub mod api_keys;
pub mod audit;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod identity_proof;
pub mod password_hashing;
pub mod personal_data;
pub mod phone;
pub mod privacy;
pub mod residences;
pub mod second_factor;
pub mod service_clients;
pub mod staff;
pub mod storage;
pub mod throttle;
pub mod tokens;
pub mod verification;

use std::sync::Arc;

use jamaa_auth::{KeySource, TokenVerifier};
use jamaa_events::Outbox;
use jamaa_proto::identity::v1::identity_service_server::IdentityServiceServer;
use jamaa_server::{Application, GrpcServer, ServiceContext, StartError};
use jamaa_settings::{
    AuthSettings, DatabaseSettings, EventsSettings, ExposeSecret, SecretString, ServerSettings,
    TelemetrySettings,
};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::accounts::{Accounts, TokenPolicy};
use crate::domain::{Email, Password};
use crate::personal_data::{PersonalDataConfig, PersonalDataKeys};
use crate::tokens::KeyRing;

/// The CloudEvents source of identity's events.
pub const EVENT_SOURCE: &str = "jamaa/identity";

/// Identity's own settings (section `[identity]`, env `JAMAA__IDENTITY__…`).
#[derive(Debug, Clone, Deserialize)]
pub struct IdentityConfig {
    pub access_token_ttl_seconds: i64,
    pub refresh_token_ttl_seconds: i64,
    /// Created at start-up when both are set and the e-mail is unknown.
    pub platform_admin_email: Option<String>,
    pub platform_admin_password: Option<SecretString>,
    /// How long a rotated-in key is published before it starts signing: at least the verifiers'
    /// `auth.key_refresh_seconds`, so each has fetched it before a token carries its `kid`.
    pub signing_key_lead_seconds: i64,
    /// Keys that protect the national ID number and one-time codes.
    pub personal_data: PersonalDataConfig,
    /// The services' own credentials: client id → secret (client-credentials tokens).
    #[serde(default)]
    pub service_clients: std::collections::HashMap<String, SecretString>,
    /// Per client-address limits (failed attempts, sign-ups, reset requests).
    pub throttle: throttle::AddressLimits,
}

/// Settings of the standalone identity process.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub events: EventsSettings,
    pub auth: AuthSettings,
    pub telemetry: TelemetrySettings,
    pub identity: IdentityConfig,
}

/// Identity's section of the built-in defaults.
pub const IDENTITY_DEFAULTS: &str = r#"
[identity]
access_token_ttl_seconds = 900
refresh_token_ttl_seconds = 2592000
signing_key_lead_seconds = 300

# Keys that protect personal data (the national ID number): base64 of 32 random bytes each.
# These are DEVELOPMENT keys, public in the source: production sets its own (README,
# "Personal data"), e.g. JAMAA__IDENTITY__PERSONAL_DATA__ENCRYPTION_KEYS__PROD1 and
# JAMAA__IDENTITY__PERSONAL_DATA__KEY_ID=prod1.
[identity.personal_data]
key_id = "dev1"
index_key = "PEEOGVtb7A2OnOBy8tCIPLTIYkjthGxxKi9LJbfrE3Y="

[identity.personal_data.encryption_keys]
dev1 = "npp8F50Qlg2eTO7cMxaV6YBdx++brx9uaM3+hX4M1q4="

# The services' own credentials (IssueServiceToken): client id = secret. DEVELOPMENT secrets;
# production sets its own, e.g. JAMAA__IDENTITY__SERVICE_CLIENTS__NOTIFICATION.
[identity.service_clients]
notification = "dev-notification-secret-change-me"

# Per client-address limits (the gateway passes the address; NAT puts many people behind one).
[identity.throttle]
failures_per_5_minutes = 100
sign_ups_per_hour = 30
reset_requests_per_5_minutes = 20
"#;

/// The built-in defaults of the standalone process.
pub fn default_settings() -> String {
    jamaa_settings::common_defaults("identity") + IDENTITY_DEFAULTS
}

/// Adds identity to `server`: its gRPC service, its outbox relay and the task that reloads the
/// signing keys. Returns where the host's [`TokenVerifier`] gets the keys that verify the tokens
/// it signs (they change with rotations).
pub async fn mount(
    server: &mut GrpcServer,
    context: &ServiceContext,
    auth: &AuthSettings,
    config: &IdentityConfig,
) -> Result<KeySource, StartError> {
    // A replaced key stays published until the last token it signed has expired (plus leeway).
    let retention = chrono::Duration::seconds(config.access_token_ttl_seconds + 60);
    let keys = Arc::new(
        KeyRing::load_or_create(&context.db, retention)
            .await
            .map_err(|error| StartError::Other(format!("signing keys: {error}")))?,
    );
    tokens::reload_keys_periodically(keys.clone(), context.shutdown.clone());
    let provider_keys = keys.clone();
    let key_source = KeySource::Provider(Arc::new(move || provider_keys.public_keys()));
    let personal =
        Arc::new(PersonalDataKeys::from_config(&config.personal_data).map_err(StartError::Other)?);
    if config.personal_data.key_id.starts_with("dev") {
        tracing::warn!(
            "personal data is protected with the public development keys; set identity.personal_data for production"
        );
    }
    // One-time codes and invitation tokens leave the outbox table once published.
    let outbox = Outbox::new(EVENT_SOURCE).with_secret_payloads(&[
        jamaa_events::CloudEvent::type_of::<jamaa_proto::events::v1::VerificationCodeIssued>(),
        jamaa_events::CloudEvent::type_of::<jamaa_proto::events::v1::StaffInvited>(),
    ]);
    let policy = TokenPolicy {
        issuer: auth.issuer.clone(),
        audience: auth.audience.clone(),
        access_token_ttl_seconds: config.access_token_ttl_seconds,
        refresh_token_ttl_seconds: config.refresh_token_ttl_seconds,
        signing_key_lead_seconds: config.signing_key_lead_seconds,
    };
    let api_keys = Arc::new(api_keys::ApiKeys::new(
        context.db.clone(),
        keys.clone(),
        policy.clone(),
    ));
    let accounts = Arc::new(Accounts::new(
        context.db.clone(),
        outbox.clone(),
        keys,
        policy,
        personal,
        config.throttle.clone(),
    ));
    let service_clients = Arc::new(service_clients::ServiceClients::new(
        &config.service_clients,
        auth.audience.clone(),
    ));
    if let (Some(email), Some(password)) = (
        &config.platform_admin_email,
        &config.platform_admin_password,
    ) {
        let email = Email::parse(email)
            .map_err(|error| StartError::Other(format!("identity.platform_admin_email {error}")))?;
        let password = Password::parse(password.expose_secret()).map_err(|error| {
            StartError::Other(format!("identity.platform_admin_password {error}"))
        })?;
        accounts
            .ensure_platform_admin(email, password)
            .await
            .map_err(|error| StartError::Other(format!("platform administrator: {error}")))?;
    }
    audit::seal_periodically(context.db.clone(), context.shutdown.clone());
    throttle::purge_periodically(context.db.clone(), context.shutdown.clone());
    context.start_outbox_relay(&outbox);
    server.add_service(IdentityServiceServer::new(grpc::IdentityGrpc::new(
        accounts,
        service_clients,
        api_keys,
    )));
    Ok(key_source)
}

/// Builds the standalone identity process.
pub async fn build(
    settings: Settings,
    shutdown: CancellationToken,
) -> Result<Application, StartError> {
    let (mut server, context) = jamaa_server::prepare_standalone::<storage::Migrator>(
        &settings.server,
        &settings.database,
        &settings.events,
        shutdown,
    )
    .await?;
    let keys = mount(&mut server, &context, &settings.auth, &settings.identity).await?;
    // Identity verifies its own tokens with the keys it holds.
    let verifier = TokenVerifier::new(&settings.auth, keys);
    Ok(Application::standalone(server, &context, verifier))
}
