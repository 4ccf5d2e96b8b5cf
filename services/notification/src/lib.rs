//! The notification service: each person's in-app inbox. It writes no events of its own; it reads
//! other services' events and turns them into notifications in the recipient's language.
//!
//! Layout: [`handler`] (the event consumer: one transaction per event, deduplicated through the
//! inbox table) → [`templates`] (title and body per event kind and language) → [`storage`]
//! (tables, migrations). [`grpc`] (handlers: parse, check the caller) → [`notifications`]
//! (reading and marking the caller's own notifications).

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
use tokio_util::sync::CancellationToken;

pub use handler::NotificationHandler;

use crate::grpc::NotificationGrpc;
use crate::notifications::Notifications;

/// The consumer name of this service on the event bus (its queue is `jamaa.notification`).
pub const CONSUMER: &str = "notification";

/// Settings of the standalone notification process.
pub type Settings = jamaa_settings::ServiceSettings;

/// The built-in defaults of the standalone process (the service has no section of its own).
pub fn default_settings() -> String {
    jamaa_settings::common_defaults("notification")
}

/// Adds notification to `server`: subscribes its event handler (consumer [`CONSUMER`]) and adds
/// its gRPC service. It emits no events, so it starts no outbox relay.
pub async fn mount(server: &mut GrpcServer, context: &ServiceContext) -> Result<(), StartError> {
    context
        .subscribe(Subscription {
            consumer: CONSUMER.into(),
            event_types: handler::handled_event_types(),
            handler: Arc::new(NotificationHandler::new(context.db.clone())),
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
    mount(&mut server, &context).await?;
    Ok(Application::standalone(
        server,
        &context,
        TokenVerifier::from_identity(&settings.auth),
    ))
}
