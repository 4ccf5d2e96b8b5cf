//! Metrics of a gRPC server: [`GrpcMetricsLayer`] counts and times every call
//! (`jamaa_grpc_server_requests_total`, `jamaa_grpc_server_request_duration_seconds`, see
//! [`jamaa_telemetry::metrics`]), and [`router`] answers `GET /metrics` on the separate
//! metrics listener (`server.metrics_port`).
//!
//! The status code of a call is read from the response HEADERS: tonic answers every error
//! (including load shedding, authentication and timeouts) "trailers-only", with `grpc-status`
//! in the headers. Without it the call succeeded, so it counts as `OK`. That holds for unary
//! calls, the only kind Jamaa serves; a streaming call's final status travels in the trailers
//! after the body and is not seen here (it would count as `OK`). The duration is the time until
//! the response headers, which for a unary call is the handler's whole run.
//!
//! Bounded labels: health checks (`grpc.health.v1`) and reflection are not recorded; a call to a
//! service this server does not host counts as service and method `unknown`, and so does the
//! method of an `UNIMPLEMENTED` answer (a made-up method name), so no client can create series.

use crate::BoxFuture;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::status::code_name;

/// Paths not recorded: health probes and reflection.
const SKIPPED_PREFIXES: [&str; 2] = ["/grpc.health.v1.", "/grpc.reflection."];

/// The label of a service or method that is not one of the server's.
const UNKNOWN: &str = "unknown";

/// The router of the metrics listener: `GET /metrics`.
pub fn router() -> Router {
    Router::new().route("/metrics", get(scrape))
}

/// Answers a scrape: every metric of the process in the OpenMetrics text format. Usable as an
/// axum handler on any router (the gateway serves it on its own port).
pub async fn scrape() -> impl IntoResponse {
    (
        [(CONTENT_TYPE, jamaa_telemetry::metrics::CONTENT_TYPE)],
        jamaa_telemetry::metrics::render(),
    )
}

/// Records count and duration of each call; one per server.
#[derive(Clone)]
pub struct GrpcMetricsLayer {
    services: Arc<[&'static str]>,
}

impl GrpcMetricsLayer {
    /// Records calls to `services` (full proto names, e.g. `jamaa.identity.v1.IdentityService`);
    /// calls to any other service count as `unknown`.
    pub fn new(services: &[&'static str]) -> Self {
        GrpcMetricsLayer {
            services: services.into(),
        }
    }

    /// The `(service, method)` labels of a call to `path` (`/<package.Service>/<Method>`), or
    /// `None` for a call that is not recorded.
    fn labels(&self, path: &str) -> Option<(&'static str, String)> {
        if SKIPPED_PREFIXES
            .iter()
            .any(|prefix| path.starts_with(prefix))
        {
            return None;
        }
        let (service, method) = path
            .strip_prefix('/')
            .and_then(|rest| rest.split_once('/'))
            .unwrap_or_default();
        match self.services.iter().find(|known| **known == service) {
            Some(known) if !method.is_empty() && !method.contains('/') => {
                Some((known, method.to_string()))
            }
            _ => Some((UNKNOWN, UNKNOWN.to_string())),
        }
    }
}

impl<S> tower::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`GrpcMetricsLayer`] wraps around the server's routes.
#[derive(Clone)]
pub struct GrpcMetrics<S> {
    inner: S,
    layer: GrpcMetricsLayer,
}

impl<S, B, ResBody> tower::Service<http::Request<B>> for GrpcMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<ResBody>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let labels = self.layer.labels(request.uri().path());
        let started = Instant::now();
        let future = self.inner.call(request);
        Box::pin(async move {
            let result = future.await;
            if let Some((service, method)) = labels {
                let code = match &result {
                    Ok(response) => grpc_code(response.headers()),
                    // The connection failed; no status reached the client.
                    Err(_) => tonic::Code::Unknown,
                };
                let method = if code == tonic::Code::Unimplemented {
                    UNKNOWN
                } else {
                    method.as_str()
                };
                jamaa_telemetry::metrics::grpc_request(
                    service,
                    method,
                    code_name(code),
                    started.elapsed(),
                );
            }
            result
        })
    }
}

/// The `grpc-status` of a trailers-only response; `OK` when the headers carry none.
fn grpc_code(headers: &http::HeaderMap) -> tonic::Code {
    headers
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<i32>().ok())
        .map(tonic::Code::from)
        .unwrap_or(tonic::Code::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_bounded() {
        let layer = GrpcMetricsLayer::new(&["jamaa.identity.v1.IdentityService"]);
        assert_eq!(
            layer.labels("/jamaa.identity.v1.IdentityService/Login"),
            Some(("jamaa.identity.v1.IdentityService", "Login".to_string()))
        );
        assert_eq!(
            layer.labels("/made.up.Service/Anything"),
            Some((UNKNOWN, UNKNOWN.to_string()))
        );
        assert_eq!(layer.labels("/"), Some((UNKNOWN, UNKNOWN.to_string())));
        assert_eq!(layer.labels("/grpc.health.v1.Health/Check"), None);
        assert_eq!(
            layer.labels("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"),
            None
        );
    }

    #[test]
    fn the_code_comes_from_the_headers_else_ok() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(grpc_code(&headers), tonic::Code::Ok);
        headers.insert("grpc-status", http::HeaderValue::from_static("16"));
        assert_eq!(grpc_code(&headers), tonic::Code::Unauthenticated);
        assert_eq!(code_name(grpc_code(&headers)), "UNAUTHENTICATED");
    }
}
