//! The notification service: each person's in-app inbox. It writes no events of its own; it reads
//! other services' events and turns them into notifications in the recipient's language.
//!
//! Layout: [`handler`] (the event consumer: one transaction per event, deduplicated through the
//! inbox table) → [`templates`] (title and body per event kind and language) → [`storage`]
//! (tables, migrations). [`grpc`] (handlers: parse, check the caller) → [`notifications`]
//! (reading and marking the caller's own notifications).

pub mod channels;
pub mod delivery;
pub mod error;
pub mod grpc;
pub mod handler;
pub mod notifications;
pub mod storage;
pub mod templates;
#[cfg(test)]
mod test_support;

use std::sync::Arc;

use jamaa_auth::TokenVerifier;
use jamaa_events::Subscription;
use jamaa_proto::notification::v1::notification_service_server::NotificationServiceServer;
use jamaa_server::{Application, GrpcServer, ServiceContext, StartError};
use jamaa_settings::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;

pub use handler::NotificationHandler;

use crate::grpc::NotificationGrpc;
use crate::notifications::Notifications;

/// The consumer name of this service on the event bus (its queue is `jamaa.notification`).
pub const CONSUMER: &str = "notification";

/// Notification's own settings (section `[notification]`, env `JAMAA__NOTIFICATION__…`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct NotificationConfig {
    pub email: EmailConfig,
}

/// The e-mail channel (section `[notification.email]`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct EmailConfig {
    /// `smtp://host:port`, `smtp://…?tls=required` or `smtps://user:pass@host:465`; empty: no
    /// e-mail (messages reach the in-app inbox only).
    pub smtp_url: SecretString,
    /// The sender, e.g. `Jamaa <no-reply@jamaa.ma>`.
    pub from: String,
}

/// Settings of the standalone notification process.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Settings {
    pub server: jamaa_settings::ServerSettings,
    pub database: jamaa_settings::DatabaseSettings,
    pub events: jamaa_settings::EventsSettings,
    pub auth: jamaa_settings::AuthSettings,
    pub telemetry: jamaa_settings::TelemetrySettings,
    pub notification: NotificationConfig,
}

/// Notification's section of the built-in defaults.
pub const NOTIFICATION_DEFAULTS: &str = r#"
[notification.email]
smtp_url = ""
from = "Jamaa <no-reply@jamaa.local>"
"#;

/// The built-in defaults of the standalone process.
pub fn default_settings() -> String {
    jamaa_settings::common_defaults("notification") + NOTIFICATION_DEFAULTS
}

/// Adds notification to `server`: subscribes its event handler (consumer [`CONSUMER`]), starts
/// the e-mail sender when an SMTP server is configured, and adds its gRPC service. It emits no
/// events, so it starts no outbox relay.
pub async fn mount(
    server: &mut GrpcServer,
    context: &ServiceContext,
    config: &NotificationConfig,
) -> Result<(), StartError> {
    let smtp_url = config.email.smtp_url.expose_secret().trim().to_string();
    let email_enabled = !smtp_url.is_empty();
    if email_enabled {
        let channel = channels::email::SmtpChannel::new(&smtp_url, &config.email.from)
            .map_err(StartError::Other)?;
        delivery::send_periodically(
            context.db.clone(),
            Arc::new(channel),
            context.shutdown.clone(),
        );
    }
    context
        .subscribe(Subscription {
            consumer: CONSUMER.into(),
            event_types: handler::handled_event_types(),
            handler: Arc::new(NotificationHandler::new(context.db.clone(), email_enabled)),
        })
        .await;
    let notifications = Arc::new(Notifications::new(context.db.clone()));
    server.add_service(NotificationServiceServer::new(NotificationGrpc::new(
        notifications,
    )));
    Ok(())
}

/// Builds the standalone notification process. Callers' tokens are verified with the keys the
/// identity service publishes at `auth.identity_url`.
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
    mount(&mut server, &context, &settings.notification).await?;
    Ok(Application::standalone(
        server,
        &context,
        TokenVerifier::from_identity(&settings.auth),
    ))
}
