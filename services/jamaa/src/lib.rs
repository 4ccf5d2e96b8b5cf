//! The all-in-one Jamaa process: identity, service-request, participation and notification on
//! ONE gRPC port, the HTTP gateway on another, each service on its own database, all sharing one
//! event bus. On a laptop: SQLite files under `./data` and the in-process bus. The same code takes
//! `postgres://` and `amqp://` URLs.

pub mod demo;

use jamaa_auth::TokenVerifier;
use jamaa_events::EventBus;
use jamaa_gateway::{Gateway, GatewayConfig};
use jamaa_server::{GrpcServer, ServiceContext, StartError};
use jamaa_settings::{
    AuthSettings, DatabaseSettings, EventsSettings, ServerSettings, TelemetrySettings,
};
use serde::Deserialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Each service's own database.
#[derive(Debug, Clone, Deserialize)]
pub struct Databases {
    pub identity: DatabaseSettings,
    pub service_request: DatabaseSettings,
    pub participation: DatabaseSettings,
    pub notification: DatabaseSettings,
}

/// Settings of the all-in-one process.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// The gRPC listener shared by every service.
    pub server: ServerSettings,
    /// The gateway's HTTP listener.
    pub http: ServerSettings,
    pub databases: Databases,
    pub events: EventsSettings,
    pub auth: AuthSettings,
    pub telemetry: TelemetrySettings,
    pub identity: jamaa_identity::IdentityConfig,
    pub notification: jamaa_notification::NotificationConfig,
    pub service_request: jamaa_service_request::ServiceRequestConfig,
    pub participation: jamaa_participation::ParticipationConfig,
    pub gateway: GatewayConfig,
    pub demo: demo::DemoConfig,
}

/// The built-in defaults: everything on this machine, under `./data`.
pub const DEFAULTS: &str = r#"
[server]
host = "127.0.0.1"
port = 50051
drain_timeout_seconds = 20
max_concurrent_requests = 512
request_timeout_seconds = 30
metrics_port = 9090

[http]
host = "127.0.0.1"
port = 8080
drain_timeout_seconds = 20
max_concurrent_requests = 512
request_timeout_seconds = 30

[databases.identity]
url = "sqlite://data/identity.db"
max_connections = 10
migrate_on_start = true

[databases.service_request]
url = "sqlite://data/service-request.db"
max_connections = 10
migrate_on_start = true

[databases.participation]
url = "sqlite://data/participation.db"
max_connections = 10
migrate_on_start = true

[databases.notification]
url = "sqlite://data/notification.db"
max_connections = 10
migrate_on_start = true

[events]
url = "memory://"
exchange = "jamaa.events"
prefetch = 32
consumer_lanes = 8
delivery_limit = 5
relay_poll_interval_ms = 1000

[auth]
issuer = "jamaa-identity"
audience = "jamaa"
identity_url = "unused: the all-in-one verifies with identity's keys in-process"
key_refresh_seconds = 300

[telemetry]
log_format = "pretty"
log_filter = "info"

[identity]
access_token_ttl_seconds = 900
refresh_token_ttl_seconds = 2592000
signing_key_lead_seconds = 300
platform_admin_email = "platform@jamaa.local"
platform_admin_password = "platform-admin-change-me"

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

# Requests: reopening window, the communes' UTC offset for "today", deadline warnings.
[service_request]
reopen_window_days = 30
utc_offset_minutes = 60
deadline_warning_working_days = 2
deadline_scan_interval_seconds = 60
appointment_reminder_hours = 24
statistics_interval_seconds = 10
attachments_dir = "data/attachments"

# Petitions: how long they collect signatures; how often expiries and overdue decisions are found.
[participation]
collecting_days = 90
scan_interval_seconds = 60
proposal_support_threshold = 100
comment_report_threshold = 3

# Notification: contact details from identity with its own service credentials (a DEVELOPMENT
# secret, the one [identity.service_clients] knows). E-mail and SMS: none on a laptop (messages
# reach the in-app inbox); e.g. smtp://127.0.0.1:1025 for a local mail catcher.
[notification]
identity_client_id = "notification"
identity_client_secret = "dev-notification-secret-change-me"
contact_cache_seconds = 300
digest_local_time = "18:00"

[notification.email]
smtp_url = ""
from = "Jamaa <no-reply@jamaa.local>"

[notification.email.limits]
per_minute = 600
per_recipient_per_hour = 0
identical_per_recipient_per_hour = 0

[notification.sms]
endpoint = ""
api_key = ""
sender = "Jamaa"
receipt_token = ""
callback_url = ""

# Phone networks' rules: at most 100 SMS and 20 identical ones per person per hour.
[notification.sms.limits]
per_minute = 300
per_recipient_per_hour = 100
identical_per_recipient_per_hour = 20

[gateway]
identity_url = "set by the all-in-one"
service_request_url = "set by the all-in-one"
participation_url = "set by the all-in-one"
notification_url = "set by the all-in-one"
request_timeout_seconds = 30
cors_allowed_origins = []
rate_limit_per_address_per_minute = 1200
rate_limit_per_token_per_minute = 600

[demo]
enabled = true
commune_code = "DEMO"
admin_email = "admin@demo.jamaa.local"
admin_password = "demo-admin-change-me"
"#;

/// The running stack.
pub struct Stack {
    pub grpc_port: u16,
    pub http_port: u16,
    /// Where `GET /metrics` answers next to the gRPC server (`server.metrics_port`); the
    /// gateway also answers it on `http_port`.
    pub metrics_port: u16,
    /// The bus every service shares (tests inspect the in-process dead letters through it).
    pub bus: EventBus,
    shutdown: CancellationToken,
    grpc: JoinHandle<Result<(), tonic::transport::Error>>,
    http: JoinHandle<Result<(), std::io::Error>>,
}

impl Stack {
    /// Starts every service and the gateway. Ports 0 pick free ones.
    pub async fn start(
        settings: Settings,
        shutdown: CancellationToken,
    ) -> Result<Stack, StartError> {
        let bus = EventBus::from_settings(&settings.events).map_err(StartError::Bus)?;
        let context = |db| ServiceContext {
            db,
            bus: bus.clone(),
            events: settings.events.clone(),
            shutdown: shutdown.clone(),
        };
        let databases = &settings.databases;
        let identity_db = connect::<jamaa_identity::storage::Migrator>(&databases.identity).await?;
        let requests_db =
            connect::<jamaa_service_request::storage::Migrator>(&databases.service_request).await?;
        let participation_db =
            connect::<jamaa_participation::storage::Migrator>(&databases.participation).await?;
        let notification_db =
            connect::<jamaa_notification::storage::Migrator>(&databases.notification).await?;

        let mut server = GrpcServer::bind(&settings.server).await?;
        let grpc_port = server.local_addr()?.port();
        let metrics_port = server.metrics_port()?;
        let own_url = format!("http://127.0.0.1:{grpc_port}");

        // Consumers first, so their queues exist before anything is published.
        jamaa_notification::mount(
            &mut server,
            &context(notification_db),
            &own_url,
            &settings.notification,
        )
        .await?;
        jamaa_service_request::mount(
            &mut server,
            &context(requests_db),
            &settings.service_request,
        )
        .await?;
        let keys = jamaa_identity::mount(
            &mut server,
            &context(identity_db),
            &settings.auth,
            &settings.identity,
        )
        .await?;
        jamaa_participation::mount(
            &mut server,
            &context(participation_db),
            &own_url,
            &settings.participation,
        )
        .await?;

        let (gate_bus, gate_shutdown) = (bus.clone(), shutdown.clone());
        server
            .add_readiness_gate(async move { gate_bus.wait_until_reachable(gate_shutdown).await });
        let verifier = TokenVerifier::new(&settings.auth, keys);
        let grpc = tokio::spawn(server.serve(verifier, shutdown.clone()));

        let gateway_settings = jamaa_gateway::Settings {
            server: settings.http.clone(),
            telemetry: settings.telemetry.clone(),
            gateway: GatewayConfig {
                identity_url: own_url.clone(),
                service_request_url: own_url.clone(),
                participation_url: own_url.clone(),
                notification_url: own_url.clone(),
                ..settings.gateway.clone()
            },
        };
        let gateway = Gateway::build(gateway_settings, shutdown.clone())
            .await
            .map_err(|error| StartError::Other(format!("gateway: {error}")))?;
        let http_port = gateway.port();
        let http = tokio::spawn(gateway.run_until_stopped());

        Ok(Stack {
            grpc_port,
            http_port,
            metrics_port,
            bus,
            shutdown,
            grpc,
            http,
        })
    }

    /// The gRPC address, e.g. `http://127.0.0.1:50051`.
    pub fn grpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    /// The gateway's address, e.g. `http://127.0.0.1:8080`.
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// Stops everything and waits for the servers to drain.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.grpc.await;
        let _ = self.http.await;
    }

    /// Stops at once, without draining: the servers' tasks are aborted where they stand and the
    /// background tasks (relays, consumers, schedulers) are told to stop. For tests of what
    /// survives a crash.
    pub fn kill(&self) {
        self.grpc.abort();
        self.http.abort();
        self.shutdown.cancel();
    }

    /// Waits until the servers stop (after the shutdown signal).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.grpc.await??;
        self.http.await??;
        Ok(())
    }
}

async fn connect<M: jamaa_db::sea_orm_migration::MigratorTrait>(
    settings: &DatabaseSettings,
) -> Result<jamaa_db::sea_orm::DatabaseConnection, StartError> {
    jamaa_db::connect::<M>(settings)
        .await
        .map_err(StartError::Database)
}
