//! Server start-up and shutdown, the one way a Jamaa process serves gRPC.
//!
//! [`GrpcServer`] binds its listener first (port 0 in tests), then serves every added service
//! with: `grpc.health.v1` (each service SERVING while up, NOT_SERVING from the moment shutdown
//! starts), reflection v1 and v1alpha (Jamaa's and health's descriptors), the [`jamaa_auth::AuthLayer`],
//! a limit on concurrent calls with load shedding ([`shed`]: excess calls get RESOURCE_EXHAUSTED),
//! deadlines ([`deadline`]: the caller's or the server's, DEADLINE_EXCEEDED past it), and a span per call that continues the caller's W3C trace. On shutdown it
//! stops accepting, lets in-flight calls finish, and gives up after the configured drain timeout.
//! Every call is counted and timed ([`metrics`]); `GET /metrics` answers on a separate HTTP
//! listener (`server.metrics_port`) while the server runs.
//!
//! [`status`] maps failures to gRPC status codes with rich error details.

pub mod application;
pub mod client;
pub mod context;
pub mod deadline;
pub mod malformed;
pub mod metrics;
pub mod paging;
pub mod shed;
pub mod status;

/// The future a tower service of this crate's layers returns.
type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

pub use application::{Application, prepare_standalone};
pub use context::{ServiceContext, StartError};
pub use paging::PageRequest;

use std::net::SocketAddr;

use jamaa_auth::{AuthLayer, TokenVerifier};
use jamaa_settings::ServerSettings;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic_health::ServingStatus;

pub use tokio_util::sync::CancellationToken as Shutdown;

/// Runs `task` every `every` until `shutdown`, on its own Tokio task; a failed run is logged as
/// `what` and tried again at the next tick (background work: key reloads, sealers, senders,
/// purges).
pub fn run_every<F, Fut, E>(
    every: std::time::Duration,
    shutdown: CancellationToken,
    what: &'static str,
    mut task: F,
) where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(), E>> + Send,
    E: std::fmt::Display,
{
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
            if let Err(error) = task().await {
                tracing::warn!(%error, "{what} failed; trying again at the next tick");
            }
        }
    });
}

/// The metadata key under which the gateway passes its HTTP client's IP address (it replaces any
/// value the client sent). The gRPC ports are internal (only the gateway is exposed), so the
/// services take it as given.
pub const CLIENT_ADDRESS_HEADER: &str = "x-client-address";

/// The IP address of the client behind `request`: the gateway's [`CLIENT_ADDRESS_HEADER`] when
/// present, else the connection's peer.
pub fn client_address<T>(request: &tonic::Request<T>) -> Option<String> {
    request
        .metadata()
        .get(CLIENT_ADDRESS_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.trim().to_string())
        .filter(|value| !value.is_empty() && value.len() <= 64)
        .or_else(|| {
            request
                .remote_addr()
                .map(|address| address.ip().to_string())
        })
}

/// A gRPC server being assembled: bound, not yet serving.
pub struct GrpcServer {
    listener: TcpListener,
    /// Serves `GET /metrics` (Prometheus).
    metrics_listener: TcpListener,
    settings: ServerSettings,
    routes: RoutesBuilder,
    service_names: Vec<&'static str>,
    readiness_gates: Vec<ReadinessGate>,
}

/// A condition the services wait for before they report SERVING (e.g. the broker is reachable).
pub type ReadinessGate = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

impl GrpcServer {
    /// Binds `settings.host:settings.port` (gRPC) and `settings.host:settings.metrics_port`
    /// (metrics).
    pub async fn bind(settings: &ServerSettings) -> std::io::Result<Self> {
        let listener = TcpListener::bind(settings.address()).await?;
        let metrics_listener = TcpListener::bind(settings.metrics_address())
            .await
            .map_err(|error| {
                std::io::Error::new(
                    error.kind(),
                    format!("metrics port {}: {error}", settings.metrics_address()),
                )
            })?;
        Ok(GrpcServer {
            listener,
            metrics_listener,
            settings: settings.clone(),
            routes: RoutesBuilder::default(),
            service_names: Vec::new(),
            readiness_gates: Vec::new(),
        })
    }

    /// The bound address (its port is the real one when 0 was asked).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The port `GET /metrics` answers on (the real one when 0 was asked).
    pub fn metrics_port(&self) -> std::io::Result<u16> {
        Ok(self.metrics_listener.local_addr()?.port())
    }

    /// Adds a gRPC service; its health is reported under its full name.
    pub fn add_service<S>(&mut self, service: S) -> &mut Self
    where
        S: tower_service::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = std::convert::Infallible,
            > + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.routes.add_service(service);
        self.service_names.push(S::NAME);
        self
    }

    /// Holds SERVING back until `gate` completes. (Migrations are applied before services are
    /// mounted, so they need no gate.)
    pub fn add_readiness_gate(
        &mut self,
        gate: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        self.readiness_gates.push(Box::pin(gate));
    }

    /// Serves until `shutdown` is cancelled, then drains (bounded by the drain timeout).
    pub async fn serve(
        self,
        verifier: TokenVerifier,
        shutdown: CancellationToken,
    ) -> Result<(), tonic::transport::Error> {
        let (reporter, health_service) = tonic_health::server::health_reporter();
        // NOT_SERVING until every readiness gate has opened, then SERVING (unless shutting down).
        for name in self.service_names.iter().copied().chain([""]) {
            reporter
                .set_service_status(name, ServingStatus::NotServing)
                .await;
        }
        let mut gates = futures_util::future::join_all(self.readiness_gates);
        let names = self.service_names.clone();
        let mark_serving = |reporter: tonic_health::server::HealthReporter| async move {
            for name in names.iter().copied().chain([""]) {
                reporter
                    .set_service_status(name, ServingStatus::Serving)
                    .await;
            }
            tracing::info!("ready: SERVING");
        };
        if futures_util::FutureExt::now_or_never(&mut gates).is_some() {
            mark_serving(reporter.clone()).await;
        } else {
            let (ready_reporter, ready_shutdown) = (reporter.clone(), shutdown.clone());
            tokio::spawn(async move {
                gates.await;
                if !ready_shutdown.is_cancelled() {
                    mark_serving(ready_reporter).await;
                }
            });
        }

        // Reflection v1, and v1alpha for the many clients (grpcurl, Python grpcio) that still ask it.
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(jamaa_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        let reflection_services = match (reflection().build_v1(), reflection().build_v1alpha()) {
            (Ok(v1), Ok(v1alpha)) => Some((v1, v1alpha)),
            (Err(error), _) | (_, Err(error)) => {
                tracing::error!(%error, "reflection disabled: bad descriptor set");
                None
            }
        };

        let address = self.listener.local_addr().ok();
        let mut routes = self.routes;
        routes.add_service(health_service);
        if let Some((v1, v1alpha)) = reflection_services {
            routes.add_service(v1);
            routes.add_service(v1alpha);
        }

        // Metrics answer until this function returns (through the drain).
        let metrics_stop = CancellationToken::new();
        let _stop_metrics_on_return = metrics_stop.clone().drop_guard();
        let metrics_address = self.metrics_listener.local_addr().ok();
        let metrics_server = axum::serve(self.metrics_listener, metrics::router())
            .with_graceful_shutdown(metrics_stop.cancelled_owned());
        tokio::spawn(async move {
            if let Err(error) = metrics_server.await {
                tracing::error!(%error, "the metrics listener failed");
            }
        });

        let (stop_accepting, stopped) = tokio::sync::oneshot::channel::<()>();
        let incoming =
            tonic::transport::server::TcpIncoming::from(self.listener).with_nodelay(Some(true));
        let serve = tonic::transport::Server::builder()
            .trace_fn(|request| {
                let span = tracing::info_span!("grpc", method = %request.uri().path(), trace_id = tracing::field::Empty);
                jamaa_telemetry::parent_from_http_headers(&span, request.headers());
                span
            })
            // Outermost, so shed and unauthenticated calls are counted too.
            .layer(metrics::GrpcMetricsLayer::new(&self.service_names))
            // Undecodable and oversized requests are the caller's error (INVALID_ARGUMENT,
            // RESOURCE_EXHAUSTED), not tonic's INTERNAL and OUT_OF_RANGE.
            .layer(malformed::MalformedRequestLayer)
            .layer(shed::LoadShedLayer::new(
                self.settings.max_concurrent_requests,
            ))
            // Deadlines bound authentication and the handler; a shed call never waits.
            .layer(deadline::DeadlineLayer::new(self.settings.request_timeout()))
            .layer(AuthLayer::new(verifier))
            .add_routes(routes.routes())
            // TCP_NODELAY: a reply written in pieces (headers, message, trailers) must not wait
            // for the caller's delayed ACK (Nagle's algorithm: some 40 ms a call).
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            });
        tracing::info!(?address, ?metrics_address, services = ?self.service_names, "serving gRPC");
        tokio::pin!(serve);

        tokio::select! {
            result = &mut serve => return result,
            _ = shutdown.cancelled() => {}
        }
        tracing::info!("shutting down: NOT_SERVING, draining in-flight calls");
        for name in &self.service_names {
            reporter
                .set_service_status(*name, ServingStatus::NotServing)
                .await;
        }
        reporter
            .set_service_status("", ServingStatus::NotServing)
            .await;
        // A notice period: still serving while NOT_SERVING, so balancers that watch health (see
        // [`client`]) move calls away before connections close. A quarter of the drain timeout,
        // at most 5 s; Kubernetes' preStop sleep plays the same part for Service endpoints.
        let notice = (self.settings.drain_timeout() / 4).min(std::time::Duration::from_secs(5));
        tokio::time::sleep(notice).await;
        let _ = stop_accepting.send(());
        match tokio::time::timeout(self.settings.drain_timeout(), serve).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(
                    timeout_seconds = self.settings.drain_timeout_seconds,
                    "drain timed out; closing the remaining connections"
                );
                Ok(())
            }
        }
    }
}

/// A token cancelled on SIGTERM or Ctrl-C.
pub fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown signal received");
        cancel.cancel();
    });
    token
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
