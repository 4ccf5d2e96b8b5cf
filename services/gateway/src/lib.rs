//! The gateway: HTTP/JSON for web and mobile clients in front of the gRPC services (identity,
//! service-request, participation, notification).
//!
//! It keeps no data and decides no permissions (beyond rate limits at the door): it turns each
//! HTTP request into one gRPC call (passing the caller's `authorization` through unchanged) and
//! the answer back into JSON, and the services check who may do what. Layout: [`routes`] (the route table and the one generic
//! mapping), [`problem`] (errors as RFC 9457 problem details), [`openapi`] (the document built
//! from the same table), [`jwks`] (the public keys as a JSON Web Key Set), [`rate_limit`] (per
//! address and per token limits, 429 with `Retry-After`), [`open311`] (an Open311 GeoReport v2
//! server, JSON and XML).
//!
//! Around every route: a request id (`x-request-id`, accepted or generated, echoed back), a span
//! that continues the caller's W3C trace and whose context goes with every gRPC call, CORS for
//! the configured origins, a 1 MiB body limit, and request metrics by route template
//! (`jamaa_http_requests_total`, `jamaa_http_request_duration_seconds`). `GET /metrics` answers
//! every metric of the process (Prometheus, OpenMetrics text); it is internal (not in the OpenAPI
//! document, not published by the cluster's HTTPRoute).

pub mod jwks;
pub mod open311;
pub mod openapi;
pub mod problem;
pub mod rate_limit;
pub mod routes;

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath};
use axum::http::{HeaderName, HeaderValue, Method, Request, Uri, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use jamaa_server::StartError;
use jamaa_settings::{ServerSettings, TelemetrySettings};
use serde::{Deserialize, Deserializer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::problem::Problem;
use crate::routes::{AppState, Clients, REQUEST_ID_HEADER};

/// The largest request body accepted (1 MiB).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The gateway's own settings (section `[gateway]`, env `JAMAA__GATEWAY__…`).
#[derive(Debug, Clone, Deserialize)]
pub struct GatewayConfig {
    /// Where the identity service answers gRPC, e.g. `http://identity:50051`.
    pub identity_url: String,
    pub service_request_url: String,
    pub participation_url: String,
    pub notification_url: String,
    /// The deadline of each gRPC call.
    pub request_timeout_seconds: u64,
    /// Origins browsers may call the gateway from (`*` for any); none by default. In the
    /// environment: a comma-separated list, e.g.
    /// `JAMAA__GATEWAY__CORS_ALLOWED_ORIGINS=https://jamaa.ma,https://admin.jamaa.ma`.
    #[serde(deserialize_with = "list_or_comma_separated")]
    pub cors_allowed_origins: Vec<String>,
    /// Whether the client's address is the last `X-Forwarded-For` entry, the one a proxy in
    /// front (an ingress) appended: set it only behind exactly one such proxy. Otherwise the
    /// connection's peer is the client.
    #[serde(default)]
    pub trust_forwarded_for: bool,
    /// Requests a minute one client address may make (a minute's burst); 0: no limit.
    pub rate_limit_per_address_per_minute: u32,
    /// Requests a minute one bearer token may make; 0: no limit.
    pub rate_limit_per_token_per_minute: u32,
}

impl GatewayConfig {
    /// The deadline of each gRPC call.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_seconds)
    }
}

/// Settings of the standalone gateway process.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// The HTTP listener.
    pub server: ServerSettings,
    pub telemetry: TelemetrySettings,
    pub gateway: GatewayConfig,
}

/// The gateway's section of the built-in defaults: every service on the all-in-one port.
pub const GATEWAY_DEFAULTS: &str = r#"
[gateway]
identity_url = "http://127.0.0.1:50051"
service_request_url = "http://127.0.0.1:50051"
participation_url = "http://127.0.0.1:50051"
notification_url = "http://127.0.0.1:50051"
request_timeout_seconds = 30
cors_allowed_origins = []
rate_limit_per_address_per_minute = 1200
rate_limit_per_token_per_minute = 600
"#;

/// The port the gateway listens on by default.
pub const DEFAULT_HTTP_PORT: u16 = 8080;

/// The built-in defaults of the standalone process: the common ones with the server port
/// changed to 8080 (the common `[server] port = 50051` is the gRPC port, and TOML cannot repeat
/// the `[server]` table, so the line is replaced in the text), then [`GATEWAY_DEFAULTS`].
/// The common `[database]`, `[events]` and `[auth]` sections are present and ignored.
pub fn default_settings() -> String {
    jamaa_settings::common_defaults("gateway")
        .replace("port = 50051", &format!("port = {DEFAULT_HTTP_PORT}"))
        + GATEWAY_DEFAULTS
}

/// The gateway's routes with their layers, calling the services at `config`'s URLs, balanced
/// across their serving replicas until `shutdown` (see `jamaa_server::client`). Call it inside a
/// Tokio runtime (the channels spawn their tasks).
pub fn router(config: &GatewayConfig, shutdown: CancellationToken) -> Result<Router, StartError> {
    let operations = routes::operations();
    let state = AppState {
        clients: Clients::connect(config, shutdown)?,
        call_timeout: config.request_timeout(),
        openapi: Arc::new(openapi::document(&operations)),
        trust_forwarded_for: config.trust_forwarded_for,
    };
    let mut router = Router::new();
    for operation in operations {
        router = router.route(operation.spec.path, operation.handler);
    }
    let router = router
        .route(METRICS_PATH, get(jamaa_server::metrics::scrape))
        .fallback(|uri: Uri| async move { Problem::route_not_found(uri.path()) })
        .method_not_allowed_fallback(|method: Method, uri: Uri| async move {
            Problem::method_not_allowed(method.as_str(), uri.path())
        })
        .with_state(state);

    let request_id = HeaderName::from_static(REQUEST_ID_HEADER);
    let layers = ServiceBuilder::new()
        .layer(axum::middleware::from_fn(record_metrics))
        .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
        .layer(PropagateRequestIdLayer::new(request_id))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(http_span)
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(cors(&config.cors_allowed_origins)?)
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(rate_limit::RateLimits::new(
                config.rate_limit_per_address_per_minute,
                config.rate_limit_per_token_per_minute,
                config.trust_forwarded_for,
            )),
            rate_limit::enforce,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    Ok(router.layer(layers))
}

/// Where Prometheus scrapes the gateway's process.
pub const METRICS_PATH: &str = "/metrics";

/// The `route` label of a request that matched no route (one label for every unknown path).
const UNMATCHED_ROUTE: &str = "unmatched";

/// Counts and times one request, labelled with its route TEMPLATE (e.g. `/v1/requests/{id}`)
/// so the number of series stays bounded; non-standard methods count as `OTHER`.
async fn record_metrics(request: Request<axum::body::Body>, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_string())
        .unwrap_or_else(|| UNMATCHED_ROUTE.to_string());
    let method = match *request.method() {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    };
    let started = Instant::now();
    let response = next.run(request).await;
    jamaa_telemetry::metrics::http_request(
        method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// The span of one HTTP request: continues the caller's W3C trace; holds the request id. Headers
/// are not recorded (the `authorization` header is a secret).
fn http_span<B>(request: &Request<B>) -> tracing::Span {
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let span = tracing::info_span!(
        "http",
        method = %request.method(),
        path = request.uri().path(),
        request_id,
        trace_id = tracing::field::Empty,
    );
    jamaa_telemetry::parent_from_http_headers(&span, request.headers());
    span
}

/// CORS for `origins` (`*` allows any); with none, browsers may not call cross-origin.
fn cors(origins: &[String]) -> Result<CorsLayer, StartError> {
    let allow_origin = if origins.iter().any(|origin| origin == "*") {
        AllowOrigin::any()
    } else {
        let origins = origins
            .iter()
            .map(|origin| {
                HeaderValue::from_str(origin).map_err(|_| {
                    StartError::Other(format!(
                        "gateway.cors_allowed_origins: {origin:?} is not an origin"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        AllowOrigin::list(origins)
    };
    Ok(CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static(REQUEST_ID_HEADER),
            HeaderName::from_static("traceparent"),
            HeaderName::from_static("tracestate"),
        ])
        .expose_headers([HeaderName::from_static(REQUEST_ID_HEADER)]))
}

/// Reads a list from TOML (`["a", "b"]`) or from the environment (`a,b`).
fn list_or_comma_separated<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrText {
        List(Vec<String>),
        Text(String),
    }
    Ok(match ListOrText::deserialize(deserializer)? {
        ListOrText::List(items) => items,
        ListOrText::Text(text) => text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(String::from)
            .collect(),
    })
}

/// The gateway process: bound, not yet serving.
pub struct Gateway {
    listener: TcpListener,
    router: Router,
    server: ServerSettings,
    shutdown: CancellationToken,
    port: u16,
}

impl Gateway {
    /// Builds the router and binds `settings.server` (port 0 picks a free one).
    pub async fn build(
        settings: Settings,
        shutdown: CancellationToken,
    ) -> Result<Gateway, StartError> {
        let router = router(&settings.gateway, shutdown.clone())?;
        let listener = TcpListener::bind(settings.server.address()).await?;
        let port = listener.local_addr()?.port();
        Ok(Gateway {
            listener,
            router,
            server: settings.server,
            shutdown,
            port,
        })
    }

    /// The port the gateway listens on (the real one when 0 was configured).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the shutdown token is cancelled, then lets in-flight requests finish, giving
    /// up after `server.drain_timeout_seconds`.
    pub async fn run_until_stopped(self) -> Result<(), std::io::Error> {
        let address = self.listener.local_addr().ok();
        use axum::serve::ListenerExt;
        // TCP_NODELAY: small responses go out at once, not after the client's delayed ACK.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::warn!(%error, "could not set TCP_NODELAY");
            }
        });
        let serve = axum::serve(
            listener,
            self.router
                .into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(self.shutdown.clone().cancelled_owned())
        .into_future();
        tracing::info!(?address, "serving HTTP");
        tokio::pin!(serve);
        tokio::select! {
            result = &mut serve => return result,
            _ = self.shutdown.cancelled() => {}
        }
        tracing::info!("shutting down: draining in-flight requests");
        match tokio::time::timeout(self.server.drain_timeout(), serve).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(
                    timeout_seconds = self.server.drain_timeout_seconds,
                    "drain timed out; closing the remaining connections"
                );
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn defaults_listen_on_8080() {
        let settings: Settings = jamaa_settings::load_from(&default_settings(), None, Vec::new())
            .expect("defaults load");
        assert_eq!(settings.server.port, DEFAULT_HTTP_PORT);
        assert_eq!(settings.gateway.identity_url, "http://127.0.0.1:50051");
        assert_eq!(settings.gateway.request_timeout_seconds, 30);
        assert!(settings.gateway.cors_allowed_origins.is_empty());
    }

    #[test]
    fn origins_come_from_the_environment() {
        let env = vec![(
            "JAMAA__GATEWAY__CORS_ALLOWED_ORIGINS".to_string(),
            "https://jamaa.ma, https://admin.jamaa.ma".to_string(),
        )];
        let settings: Settings =
            jamaa_settings::load_from(&default_settings(), None, env).expect("settings load");
        assert_eq!(
            settings.gateway.cors_allowed_origins,
            ["https://jamaa.ma", "https://admin.jamaa.ma"]
        );
    }

    #[tokio::test]
    async fn bad_settings_are_start_errors() {
        let mut config = test_config(1);
        config.identity_url = "not a url".to_string();
        assert!(router(&config, CancellationToken::new()).is_err());
        let mut config = test_config(1);
        config.cors_allowed_origins = vec!["https://bad\norigin".to_string()];
        assert!(router(&config, CancellationToken::new()).is_err());
    }

    /// Every service at `127.0.0.1:port`.
    fn test_config(port: u16) -> GatewayConfig {
        let url = format!("http://127.0.0.1:{port}");
        GatewayConfig {
            identity_url: url.clone(),
            service_request_url: url.clone(),
            participation_url: url.clone(),
            notification_url: url,
            request_timeout_seconds: 5,
            cors_allowed_origins: vec!["https://jamaa.ma".to_string()],
            trust_forwarded_for: false,
            rate_limit_per_address_per_minute: 0,
            rate_limit_per_token_per_minute: 0,
        }
    }

    /// A port nothing listens on.
    async fn closed_port() -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        listener.local_addr().expect("address").port()
    }

    /// A response: status, lower-case headers, body.
    struct Reply {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    }

    impl Reply {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        }

        fn json(&self) -> serde_json::Value {
            serde_json::from_str(&self.body).expect("a JSON body")
        }
    }

    /// Sends one HTTP/1.1 request and reads the whole response (the connection closes after it).
    async fn send(port: u16, method: &str, path: &str, extra_headers: &str, body: &str) -> Reply {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let request = format!(
            "{method} {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ncontent-length: {}\r\n{extra_headers}\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).await.expect("read");
        let (head, body) = response.split_once("\r\n\r\n").expect("a head and a body");
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|code| code.parse().ok())
            .expect("a status line");
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(key, value)| (key.trim().to_ascii_lowercase(), value.trim().to_string()))
            .collect();
        Reply {
            status,
            headers,
            body: body.to_string(),
        }
    }

    #[tokio::test]
    async fn serves_problems_when_the_services_are_down() {
        jamaa_telemetry::init_for_tests();
        let mut settings: Settings =
            jamaa_settings::load_from(&default_settings(), None, Vec::new())
                .expect("defaults load");
        settings.server.port = 0;
        settings.gateway = test_config(closed_port().await);
        let shutdown = CancellationToken::new();
        let gateway = Gateway::build(settings, shutdown.clone())
            .await
            .expect("gateway");
        let port = gateway.port();
        let server = tokio::spawn(gateway.run_until_stopped());

        let reply = send(port, "GET", "/healthz", "", "").await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, "ok");
        assert!(
            reply
                .header(REQUEST_ID_HEADER)
                .is_some_and(|id| id.len() == 36),
            "a generated uuid"
        );

        let reply = send(
            port,
            "GET",
            "/v1/requests/x",
            "x-request-id: abc-123\r\nauthorization: Bearer secret-token\r\n",
            "",
        )
        .await;
        assert_eq!(reply.status, 503);
        assert_eq!(
            reply.header("content-type"),
            Some(problem::PROBLEM_CONTENT_TYPE)
        );
        assert_eq!(reply.header(REQUEST_ID_HEADER), Some("abc-123"));
        let problem = reply.json();
        assert_eq!(problem["status"], 503);
        assert_eq!(problem["code"], "UNAVAILABLE");

        let reply = send(port, "GET", "/readyz", "", "").await;
        assert_eq!(reply.status, 503);

        let reply = send(
            port,
            "POST",
            "/v1/sessions",
            "content-type: application/json\r\n",
            "{\"email\": ",
        )
        .await;
        assert_eq!(reply.status, 400);
        assert_eq!(
            reply.header("content-type"),
            Some(problem::PROBLEM_CONTENT_TYPE)
        );
        let problem = reply.json();
        assert_eq!(problem["code"], "INVALID_ARGUMENT");
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|detail| detail.contains("not valid JSON"))
        );

        let reply = send(port, "POST", "/v1/sessions", "", "{\"emial\": \"a@b.ma\"}").await;
        assert_eq!(reply.status, 400);
        assert!(
            reply.json()["detail"]
                .as_str()
                .is_some_and(|detail| detail.contains("emial"))
        );

        let reply = send(port, "GET", "/v1/requests?page_size=1", "", "").await;
        assert_eq!(reply.status, 400);
        assert_eq!(reply.json()["errors"][0]["field"], "page_size");

        let reply = send(port, "GET", "/v1/nowhere", "", "").await;
        assert_eq!(reply.status, 404);
        assert_eq!(
            reply.header("content-type"),
            Some(problem::PROBLEM_CONTENT_TYPE)
        );
        assert_eq!(
            reply.json()["type"],
            "https://jamaa.ma/problems/ROUTE_NOT_FOUND"
        );

        let reply = send(port, "DELETE", "/v1/requests", "", "").await;
        assert_eq!(reply.status, 405);
        assert_eq!(
            reply.header("content-type"),
            Some(problem::PROBLEM_CONTENT_TYPE)
        );

        let big = format!("{{\"email\": \"{}\"}}", "a".repeat(MAX_BODY_BYTES));
        let reply = send(
            port,
            "POST",
            "/v1/sessions",
            "content-type: application/json\r\n",
            &big,
        )
        .await;
        assert_eq!(reply.status, 413);
        assert_eq!(
            reply.header("content-type"),
            Some(problem::PROBLEM_CONTENT_TYPE)
        );

        let reply = send(port, "GET", "/openapi.json", "", "").await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.json()["openapi"], "3.1.0");

        let reply = send(
            port,
            "OPTIONS",
            "/v1/requests",
            "origin: https://jamaa.ma\r\naccess-control-request-method: POST\r\n",
            "",
        )
        .await;
        assert_eq!(
            reply.header("access-control-allow-origin"),
            Some("https://jamaa.ma")
        );

        shutdown.cancel();
        server.await.expect("server task").expect("server");
    }

    /// A gRPC server with only `grpc.health.v1` (identity SERVING) that records the headers of
    /// every call it receives.
    #[tokio::test]
    async fn calls_carry_the_token_the_trace_and_the_deadline() {
        use std::sync::Mutex;
        jamaa_telemetry::init_for_tests();
        let seen: Arc<Mutex<Vec<axum::http::HeaderMap>>> = Arc::default();
        let record = seen.clone();
        let (reporter, health) = tonic_health::server::health_reporter();
        reporter
            .set_service_status(
                jamaa_proto::identity::v1::identity_service_server::SERVICE_NAME,
                tonic_health::ServingStatus::Serving,
            )
            .await;
        let grpc_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let grpc_port = grpc_listener.local_addr().expect("address").port();
        let stop = CancellationToken::new();
        let grpc = tokio::spawn(
            tonic::transport::Server::builder()
                .layer(tower::util::MapRequestLayer::new(
                    move |request: Request<tonic::body::Body>| {
                        if let Ok(mut seen) = record.lock() {
                            seen.push(request.headers().clone());
                        }
                        request
                    },
                ))
                .add_service(health)
                .serve_with_incoming_shutdown(
                    tonic::transport::server::TcpIncoming::from(grpc_listener),
                    stop.clone().cancelled_owned(),
                ),
        );

        let router = router(&test_config(grpc_port), CancellationToken::new()).expect("router");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let server = tokio::spawn(
            axum::serve(listener, router)
                .with_graceful_shutdown(stop.clone().cancelled_owned())
                .into_future(),
        );

        let reply = send(port, "GET", "/readyz", "", "").await;
        assert_eq!(reply.status, 200, "{}", reply.body);

        let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
        let reply = send(
            port,
            "GET",
            "/v1/requests/0190",
            &format!(
                "authorization: Bearer a.b.c\r\ntraceparent: 00-{trace_id}-00f067aa0ba902b7-01\r\n"
            ),
            "",
        )
        .await;
        // The server has no ServiceRequestService.
        assert_eq!(reply.status, 501, "{}", reply.body);
        assert_eq!(reply.json()["code"], "UNIMPLEMENTED");

        let headers = seen
            .lock()
            .map(|seen| seen.last().cloned())
            .ok()
            .flatten()
            .expect("a call");
        let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
        assert_eq!(header("authorization"), Some("Bearer a.b.c"));
        // The deadline is what is left of the 5 s budget when the call leaves (retries share it).
        let timeout_micros: u64 = header("grpc-timeout")
            .and_then(|value| value.strip_suffix('u'))
            .and_then(|value| value.parse().ok())
            .expect("a grpc-timeout in microseconds");
        assert!(
            (4_900_000..=5_000_000).contains(&timeout_micros),
            "{timeout_micros}"
        );
        assert!(header("x-request-id").is_some());
        let traceparent = header("traceparent").expect("a traceparent");
        assert!(
            traceparent.contains(trace_id),
            "{traceparent} continues the caller's trace"
        );

        stop.cancel();
        server.await.expect("server task").expect("server");
        grpc.await.expect("grpc task").expect("grpc server");
    }
}
