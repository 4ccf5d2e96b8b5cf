//! The notification service: the commune's voice. It reads other services' events and turns
//! them into messages in each person's language: always in their in-app inbox, and by e-mail or
//! SMS as their preferences (and the message's criticality) say; and it publishes the
//! commune's announcements. It writes no events of its own.
//!
//! Layout: [`handler`] (the event consumer: one transaction per event, deduplicated through the
//! inbox table) → [`routing`] (topic and criticality per kind) → [`templates`] (words per kind
//! and language, with [`template_overrides`]) → [`fanout`] (the one batched writer of inbox rows
//! and deliveries) → [`delivery`] (the senders, per [`channels`] channel: addresses from
//! [`contacts`], quiet hours from [`preferences`], limits, retries, receipts) and [`digest`].
//! [`announcements`] fan out at their time. [`grpc`] (handlers: parse, check the caller) →
//! [`notifications`] (the caller's inbox) and the modules above.

pub mod announcements;
pub mod channels;
pub mod contacts;
pub mod delivery;
pub mod digest;
pub mod email_html;
pub mod error;
pub mod fanout;
pub mod grpc;
pub mod handler;
pub mod notifications;
pub mod preferences;
pub mod routing;
pub mod sms_length;
pub mod storage;
pub mod template_overrides;
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
    /// Notification's service credentials at identity (`IssueServiceToken`), for contact
    /// details; identity must know the same secret (`identity.service_clients.notification`).
    pub identity_client_id: String,
    pub identity_client_secret: SecretString,
    /// How long contact details are cached.
    pub contact_cache_seconds: u64,
    /// When daily digests leave, in each commune's time zone ("HH:MM").
    pub digest_local_time: String,
    pub email: EmailConfig,
    pub sms: SmsConfig,
}

/// The e-mail channel (section `[notification.email]`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct EmailConfig {
    /// `smtp://host:port`, `smtp://…?tls=required` or `smtps://user:pass@host:465`; empty: no
    /// e-mail (messages reach the in-app inbox only).
    pub smtp_url: SecretString,
    /// The sender, e.g. `Jamaa <no-reply@jamaa.ma>`.
    pub from: String,
    pub limits: delivery::Limits,
}

/// The SMS channel (section `[notification.sms]`); see [`channels::sms`].
#[derive(Debug, Clone, serde::Deserialize)]
pub struct SmsConfig {
    /// The provider's `http(s)://` endpoint; empty: no SMS.
    pub endpoint: String,
    /// Sent as `Authorization: Bearer …`.
    pub api_key: SecretString,
    /// The sender name or number the provider shows.
    pub sender: String,
    /// The secret the provider sends back with delivery receipts (the gateway's
    /// `POST /v1/sms/receipts?token=…`); empty: receipts are refused.
    pub receipt_token: SecretString,
    /// The receipt URL given to the provider with each message; empty: none (the provider is
    /// configured with it on its side).
    pub callback_url: String,
    pub limits: delivery::Limits,
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
[notification]
identity_client_id = "notification"
# A DEVELOPMENT secret, the one identity's defaults know; production sets its own (both sides).
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
"#;

/// The built-in defaults of the standalone process.
pub fn default_settings() -> String {
    jamaa_settings::common_defaults("notification") + NOTIFICATION_DEFAULTS
}

/// Adds notification to `server`: subscribes its event handler (consumer [`CONSUMER`]), starts
/// a sender per configured channel, the announcement publisher and the digest job, and adds its
/// gRPC service. Contact details come from identity at `identity_url`. It emits no events, so
/// it starts no outbox relay.
pub async fn mount(
    server: &mut GrpcServer,
    context: &ServiceContext,
    identity_url: &str,
    config: &NotificationConfig,
) -> Result<(), StartError> {
    let digest_time = chrono::NaiveTime::parse_from_str(config.digest_local_time.trim(), "%H:%M")
        .map_err(|_| {
        StartError::Other(format!(
            "notification.digest_local_time {:?} is not HH:MM",
            config.digest_local_time
        ))
    })?;
    let contacts = Arc::new(contacts::ContactDirectory::connect(
        identity_url,
        &config.identity_client_id,
        config.identity_client_secret.clone(),
        std::time::Duration::from_secs(config.contact_cache_seconds),
        context.shutdown.clone(),
    )?);
    let mut enabled: Vec<(Arc<dyn channels::Channel>, delivery::Limits)> = Vec::new();
    let smtp_url = config.email.smtp_url.expose_secret().trim().to_string();
    if !smtp_url.is_empty() {
        let channel = channels::email::SmtpChannel::new(&smtp_url, &config.email.from)
            .map_err(StartError::Other)?;
        enabled.push((Arc::new(channel), config.email.limits));
    }
    if !config.sms.endpoint.trim().is_empty() {
        let callback = Some(config.sms.callback_url.trim().to_string()).filter(|u| !u.is_empty());
        let channel = channels::sms::SmsChannel::new(
            config.sms.endpoint.trim(),
            config.sms.api_key.clone(),
            &config.sms.sender,
            callback,
        )
        .map_err(StartError::Other)?;
        enabled.push((Arc::new(channel), config.sms.limits));
    }
    let names: Vec<&'static str> = enabled.iter().map(|(channel, _)| channel.name()).collect();
    for (channel, limits) in enabled {
        delivery::Sender {
            db: context.db.clone(),
            channel,
            contacts: contacts.clone(),
            limits,
        }
        .run(context.shutdown.clone());
    }
    context
        .subscribe(Subscription {
            consumer: CONSUMER.into(),
            event_types: handler::handled_event_types(),
            fences: handler::fence_event_types(),
            handler: Arc::new(NotificationHandler::new(context.db.clone(), names.clone())),
        })
        .await;
    announcements::publish_periodically(
        context.db.clone(),
        names.clone(),
        context.shutdown.clone(),
    );
    digest::send_periodically(context.db.clone(), digest_time, context.shutdown.clone());
    let notifications = Arc::new(Notifications::new(context.db.clone()));
    server.add_service(NotificationServiceServer::new(NotificationGrpc::new(
        context.db.clone(),
        notifications,
        config.sms.receipt_token.clone(),
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
    mount(
        &mut server,
        &context,
        &settings.auth.identity_url,
        &settings.notification,
    )
    .await?;
    Ok(Application::standalone(
        server,
        &context,
        TokenVerifier::from_identity(&settings.auth),
    ))
}
