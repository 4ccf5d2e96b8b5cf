//! A service running on its own: its gRPC server, the verifier for its callers' tokens, and the
//! shutdown signal. Built by each service's `build(settings, shutdown)`; run by its `main`.

use jamaa_auth::TokenVerifier;
use tokio_util::sync::CancellationToken;

use crate::GrpcServer;

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
