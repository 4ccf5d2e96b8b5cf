//! A service running on its own: its gRPC server, the verifier for its callers' tokens, and the
//! shutdown signal. Built by each service's `build(settings, shutdown)`; run by its `main`.

use jamaa_auth::TokenVerifier;
use jamaa_settings::{DatabaseSettings, EventsSettings, ServerSettings};
use sea_orm_migration::MigratorTrait;
use tokio_util::sync::CancellationToken;

use crate::{GrpcServer, ServiceContext, StartError};

/// The first half of every standalone `build`: opens the service's database (migrated with `M`)
/// and its event bus, and binds its server. The service then mounts itself on the server and
/// finishes with [`Application::standalone`].
pub async fn prepare_standalone<M: MigratorTrait>(
    server: &ServerSettings,
    database: &DatabaseSettings,
    events: &EventsSettings,
    shutdown: CancellationToken,
) -> Result<(GrpcServer, ServiceContext), StartError> {
    let context = ServiceContext::connect::<M>(database, events, shutdown).await?;
    let server = GrpcServer::bind(server).await?;
    Ok((server, context))
}

pub struct Application {
    server: GrpcServer,
    verifier: TokenVerifier,
    shutdown: CancellationToken,
    port: u16,
    metrics_port: u16,
}

impl Application {
    pub fn new(server: GrpcServer, verifier: TokenVerifier, shutdown: CancellationToken) -> Self {
        let port = server
            .local_addr()
            .map(|address| address.port())
            .unwrap_or_default();
        let metrics_port = server.metrics_port().unwrap_or_default();
        Application {
            server,
            verifier,
            shutdown,
            port,
            metrics_port,
        }
    }

    /// A standalone service: its server, ready only once its event bus is reachable, checking
    /// callers' tokens with `verifier`.
    pub fn standalone(
        mut server: GrpcServer,
        context: &ServiceContext,
        verifier: TokenVerifier,
    ) -> Self {
        server.add_readiness_gate(context.bus_reachable());
        Application::new(server, verifier, context.shutdown.clone())
    }

    /// The port the server listens on (the real one when 0 was configured).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port `GET /metrics` answers on (the real one when 0 was configured).
    pub fn metrics_port(&self) -> u16 {
        self.metrics_port
    }

    /// Serves until the shutdown signal, then drains.
    pub async fn run_until_stopped(self) -> Result<(), tonic::transport::Error> {
        self.server.serve(self.verifier, self.shutdown).await
    }
}
