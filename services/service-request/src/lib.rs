//! The service-request service: each commune's catalogue of services, and the requests citizens
//! file for them with their workflow (submitted → received → in progress → resolved → closed).
//!
//! Layout: [`grpc`] (handlers: parse, check the caller) → [`catalogue`] and [`requests`]
//! (operations, outbox) → [`storage`] (tables, migrations). [`domain`] holds the parsed value
//! types and the workflow.

pub mod catalogue;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod requests;
pub mod storage;

use std::sync::Arc;

use jamaa_auth::TokenVerifier;
use jamaa_events::Outbox;
use jamaa_proto::servicerequest::v1::service_request_service_server::ServiceRequestServiceServer;
use jamaa_server::{Application, GrpcServer, ServiceContext, StartError};
use tokio_util::sync::CancellationToken;

use crate::catalogue::Catalogue;
use crate::requests::Requests;

/// The CloudEvents source of this service's events.
pub const EVENT_SOURCE: &str = "jamaa/service-request";

/// Settings of the standalone service-request process (it has no section of its own).
pub type Settings = jamaa_settings::ServiceSettings;

/// The built-in defaults of the standalone process.
pub fn default_settings() -> String {
    jamaa_settings::common_defaults("service-request")
}

/// Adds the service-request service to `server`: its gRPC service and its outbox relay.
pub async fn mount(server: &mut GrpcServer, context: &ServiceContext) -> Result<(), StartError> {
    let outbox = Outbox::new(EVENT_SOURCE);
    let catalogue = Arc::new(Catalogue::new(context.db.clone()));
    let requests = Arc::new(Requests::new(context.db.clone(), outbox.clone()));
    context.start_outbox_relay(&outbox);
    server.add_service(ServiceRequestServiceServer::new(
        grpc::ServiceRequestGrpc::new(catalogue, requests),
    ));
    Ok(())
}

/// Builds the standalone service-request process; it verifies tokens with the identity
/// service's public keys (`auth.identity_url`).
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
