//! Telemetry, the one way every Jamaa process logs and traces.
//!
//! - Logs through `tracing`, filtered by `RUST_LOG` (else the configured filter), as JSON lines
//!   or pretty text.
//! - Spans exported over OTLP/gRPC only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
//! - W3C trace context (`traceparent`, `tracestate`) carried across process boundaries: in gRPC
//!   metadata ([`TraceContextInterceptor`] on clients, [`parent_from_http_headers`] on servers)
//!   and in AMQP message headers ([`current_trace_headers`] / [`parent_from_map`]).
//! - Prometheus metrics in one process-wide registry ([`metrics`]), served as `GET /metrics`.

pub mod metrics;

use std::collections::HashMap;
use std::sync::Once;

use jamaa_settings::{LogFormat, TelemetrySettings};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The environment variable that turns on OTLP export.
pub const OTLP_ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// Keeps the trace exporter alive; flushes pending spans when dropped.
#[must_use = "dropping the guard stops trace export"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("could not flush traces: {error}");
        }
    }
}

/// Installs the global subscriber and propagator for a process named `service_name`.
/// Call once, first thing in `main`.
pub fn init(settings: &TelemetrySettings, service_name: &str) -> TelemetryGuard {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(settings.log_filter.clone()));
    let fmt_layer = match settings.log_format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer().compact().boxed(),
    };

    // Spans always get OpenTelemetry contexts, so trace ids propagate even when nothing is
    // exported; the exporter is added only when an endpoint is configured.
    let provider = build_tracer_provider(service_name);
    let otel_layer =
        tracing_opentelemetry::layer().with_tracer(provider.tracer(service_name.to_string()));

    let result = tracing_subscriber::registry()
        .with(filter)
        .with(fmt_layer)
        .with(otel_layer)
        .try_init();
    if let Err(error) = result {
        eprintln!("telemetry already initialised: {error}");
    }
    TelemetryGuard {
        provider: Some(provider),
    }
}

/// Quiet telemetry for tests: logs go nowhere unless `TEST_LOG` is set, then to stdout.
/// Safe to call from every test; the first call in a process wins.
pub fn init_for_tests() {
    init_for_tests_with(SdkTracerProvider::builder().build());
}

/// The environment variable naming a file that test runs append every log line to (JSON).
pub const TEST_LOG_FILE_ENV: &str = "JAMAA_TEST_LOG_FILE";

/// Like [`init_for_tests`], with the tracer provider given (e.g. one with an in-memory exporter,
/// so a test can read the spans).
pub fn init_for_tests_with(provider: SdkTracerProvider) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let otel_layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("tests"));
        // Spans are always recorded (so trace context exists); logs print only with TEST_LOG.
        let fmt_layer = std::env::var("TEST_LOG").is_ok().then(|| {
            tracing_subscriber::fmt::layer()
                .compact()
                .with_test_writer()
                .with_filter(
                    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
                )
        });
        // With JAMAA_TEST_LOG_FILE, every log line (ours and the ORM's SQL at debug) also goes to
        // that file as JSON, for checks over a whole run (e.g. that no national ID number was
        // ever logged).
        let file_layer = std::env::var(TEST_LOG_FILE_ENV)
            .ok()
            .and_then(|path| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .ok()
            })
            .map(|file| {
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::sync::Mutex::new(file))
                    .with_filter(EnvFilter::new(
                        "info,jamaa=debug,jamaa_identity=debug,jamaa_service_request=debug,\
                         jamaa_participation=debug,jamaa_notification=debug,jamaa_gateway=debug,\
                         jamaa_events=debug,jamaa_server=debug,jamaa_auth=debug,sea_orm=debug,sqlx=debug,\
                         tower_http=debug",
                    ))
            });
        let _ = tracing_subscriber::registry()
            .with(otel_layer.with_filter(EnvFilter::new("info")))
            .with(fmt_layer)
            .with(file_layer)
            .try_init();
    });
}

fn build_tracer_provider(service_name: &str) -> SdkTracerProvider {
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service_name.to_string())
        .build();
    let builder = SdkTracerProvider::builder().with_resource(resource);
    let endpoint = std::env::var(OTLP_ENDPOINT_ENV).unwrap_or_default();
    if endpoint.is_empty() {
        return builder.build();
    }
    match opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
    {
        Ok(exporter) => builder.with_batch_exporter(exporter).build(),
        Err(error) => {
            eprintln!("OTLP export disabled: {error}");
            builder.build()
        }
    }
}

/// The current span's trace context as W3C headers (`traceparent`, `tracestate`).
/// Empty when there is no active trace.
pub fn current_trace_headers() -> HashMap<String, String> {
    let context = tracing::Span::current().context();
    let mut headers = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut MapInjector(&mut headers));
    headers
}

/// Makes `span` a child of the trace described by W3C `headers`.
pub fn parent_from_map(span: &tracing::Span, headers: &HashMap<String, String>) {
    let parent = TraceContextPropagator::new().extract(&MapExtractor(headers));
    let _ = span.set_parent(parent);
    record_trace_id(span);
}

/// Makes `span` a child of the trace in incoming HTTP/2 (gRPC) headers.
pub fn parent_from_http_headers(span: &tracing::Span, headers: &http::HeaderMap) {
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    let _ = span.set_parent(parent);
    record_trace_id(span);
}

/// The name of the span field that carries the W3C trace id into log lines. Spans that continue a
/// trace declare it (`trace_id = tracing::field::Empty`); JSON logs then show it on every line
/// logged inside them, so logs and traces can be joined.
pub const TRACE_ID_FIELD: &str = "trace_id";

/// Records `span`'s trace id in its [`TRACE_ID_FIELD`] (when it declares one and has a trace).
pub fn record_trace_id(span: &tracing::Span) {
    use opentelemetry::trace::TraceContextExt;
    let context = span.context();
    let span_context = context.span().span_context().clone();
    if span_context.is_valid() {
        span.record(TRACE_ID_FIELD, span_context.trace_id().to_string());
    }
}

/// A tonic client interceptor that sends the current trace context in gRPC metadata.
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceContextInterceptor;

impl tonic::service::Interceptor for TraceContextInterceptor {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        for (key, value) in current_trace_headers() {
            if let (Ok(key), Ok(value)) = (
                tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
                value.parse(),
            ) {
                request.metadata_mut().insert(key, value);
            }
        }
        Ok(request)
    }
}

struct MapInjector<'a>(&'a mut HashMap<String, String>);

impl Injector for MapInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_string(), value);
    }
}

struct MapExtractor<'a>(&'a HashMap<String, String>);

impl Extractor for MapExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keeps the `trace_id` field a span records, to check it.
    #[derive(Default, Clone)]
    struct Recorded(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Recorded {
        fn on_record(
            &self,
            _span: &tracing::span::Id,
            values: &tracing::span::Record<'_>,
            _ctx: tracing_subscriber::layer::Context<'_, S>,
        ) {
            struct Visitor<'a>(&'a std::sync::Mutex<Vec<String>>);
            impl tracing::field::Visit for Visitor<'_> {
                fn record_debug(
                    &mut self,
                    field: &tracing::field::Field,
                    value: &dyn std::fmt::Debug,
                ) {
                    if field.name() == TRACE_ID_FIELD
                        && let Ok(mut seen) = self.0.lock()
                    {
                        seen.push(format!("{value:?}").trim_matches('"').to_string());
                    }
                }
            }
            values.record(&mut Visitor(&self.0));
        }
    }

    #[test]
    fn continued_spans_carry_the_callers_trace_id_for_logs() {
        let provider = SdkTracerProvider::builder().build();
        let recorded = Recorded::default();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
            .with(recorded.clone());
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("grpc", trace_id = tracing::field::Empty);
            let headers = HashMap::from([(
                "traceparent".to_string(),
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_string(),
            )]);
            parent_from_map(&span, &headers);
        });
        let seen = recorded
            .0
            .lock()
            .map(|seen| seen.clone())
            .unwrap_or_default();
        assert_eq!(seen, ["4bf92f3577b34da6a3ce929d0e0e4736"]);
    }
}
