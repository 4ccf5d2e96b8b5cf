//! Prometheus metrics: ONE registry per process, the families the platform records, and
//! one-line helpers to record each. [`render`] encodes everything in the OpenMetrics text format
//! for a `GET /metrics` endpoint ([`CONTENT_TYPE`]).
//!
//! The families (labels bounded: services, methods, routes, sources, consumers and event types
//! are all fixed by the code, never taken from user input):
//!
//! | Name | Type | Labels | What |
//! |---|---|---|---|
//! | `jamaa_grpc_server_requests_total` | counter | `service`, `method`, `code` | gRPC calls served, by status code |
//! | `jamaa_grpc_server_request_duration_seconds` | histogram | `service`, `method` | gRPC call latency |
//! | `jamaa_http_requests_total` | counter | `method`, `route`, `status` | gateway requests (route template) |
//! | `jamaa_http_request_duration_seconds` | histogram | `method`, `route` | gateway latency |
//! | `jamaa_outbox_pending_events` | gauge | `source` | outbox rows not yet published |
//! | `jamaa_outbox_oldest_pending_age_seconds` | gauge | `source` | age of the oldest of them (0: none) |
//! | `jamaa_outbox_published_total` | counter | `source` | events the relay published |
//! | `jamaa_outbox_publish_failures_total` | counter | `source` | publish attempts that failed |
//! | `jamaa_events_handled_total` | counter | `consumer`, `event_type`, `outcome` | handler runs (`ok`, `failed`) |
//! | `jamaa_events_dead_lettered_total` | counter | `consumer` | events given up on |
//! | `jamaa_event_consumer_lag_seconds` | histogram | `consumer` | now − the event's `time`, when handling starts |
//! | `jamaa_notification_deliveries_total` | counter | `channel`, `outcome` | message tries (`sent`, `temporary_failure`, `permanent_failure`, `delivered`, `undelivered`) |

use std::sync::OnceLock;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// The content type of [`render`]'s output (OpenMetrics text 1.0).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Latency buckets (seconds) for calls and requests: 1 ms to 30 s.
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Consumer lag buckets (seconds): 10 ms to 1 h (a backlog after an outage).
const LAG_BUCKETS: [f64; 12] = [
    0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

/// How handling one event ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The handler succeeded (including "already handled": the bus cannot tell them apart).
    Ok,
    /// The handler failed; the event is retried or dead-lettered.
    Failed,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrpcLabels {
    service: String,
    method: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrpcMethodLabels {
    service: String,
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpRouteLabels {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConsumerLabels {
    consumer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    channel: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HandledLabels {
    consumer: String,
    event_type: String,
    outcome: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

fn lag_histogram() -> Histogram {
    Histogram::new(LAG_BUCKETS)
}

/// Every family, registered once in [`Metrics::registry`].
struct Metrics {
    registry: Registry,
    grpc_requests: Family<GrpcLabels, Counter>,
    grpc_duration: HistogramFamily<GrpcMethodLabels>,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: HistogramFamily<HttpRouteLabels>,
    outbox_pending: Family<SourceLabels, Gauge>,
    outbox_oldest_age: Family<SourceLabels, Gauge<f64, AtomicU64>>,
    outbox_published: Family<SourceLabels, Counter>,
    outbox_failures: Family<SourceLabels, Counter>,
    events_handled: Family<HandledLabels, Counter>,
    events_dead_lettered: Family<ConsumerLabels, Counter>,
    consumer_lag: HistogramFamily<ConsumerLabels>,
    deliveries: Family<DeliveryLabels, Counter>,
}

impl Metrics {
    fn new() -> Self {
        let metrics = Metrics {
            registry: Registry::default(),
            grpc_requests: Family::default(),
            grpc_duration: Family::new_with_constructor(latency_histogram),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(latency_histogram),
            outbox_pending: Family::default(),
            outbox_oldest_age: Family::default(),
            outbox_published: Family::default(),
            outbox_failures: Family::default(),
            events_handled: Family::default(),
            events_dead_lettered: Family::default(),
            consumer_lag: Family::new_with_constructor(lag_histogram),
            deliveries: Family::default(),
        };
        // Families are shared handles: the registry and the fields see the same values.
        let mut registry = Registry::default();
        registry.register(
            "jamaa_grpc_server_requests",
            "gRPC calls served, by service, method and status code",
            metrics.grpc_requests.clone(),
        );
        registry.register_with_unit(
            "jamaa_grpc_server_request_duration",
            "gRPC call latency, by service and method",
            Unit::Seconds,
            metrics.grpc_duration.clone(),
        );
        registry.register(
            "jamaa_http_requests",
            "Gateway HTTP requests, by method, route template and status",
            metrics.http_requests.clone(),
        );
        registry.register_with_unit(
            "jamaa_http_request_duration",
            "Gateway HTTP latency, by method and route template",
            Unit::Seconds,
            metrics.http_duration.clone(),
        );
        registry.register(
            "jamaa_outbox_pending_events",
            "Outbox events not yet published, by source",
            metrics.outbox_pending.clone(),
        );
        registry.register_with_unit(
            "jamaa_outbox_oldest_pending_age",
            "Age of the oldest unpublished outbox event (0 when none), by source",
            Unit::Seconds,
            metrics.outbox_oldest_age.clone(),
        );
        registry.register(
            "jamaa_outbox_published",
            "Outbox events published to the bus, by source",
            metrics.outbox_published.clone(),
        );
        registry.register(
            "jamaa_outbox_publish_failures",
            "Outbox events whose publishing failed (retried later), by source",
            metrics.outbox_failures.clone(),
        );
        registry.register(
            "jamaa_events_handled",
            "Event handler runs, by consumer, event type and outcome (ok, failed)",
            metrics.events_handled.clone(),
        );
        registry.register(
            "jamaa_events_dead_lettered",
            "Events a consumer gave up on (dead-lettered), by consumer",
            metrics.events_dead_lettered.clone(),
        );
        registry.register_with_unit(
            "jamaa_event_consumer_lag",
            "Time from an event's occurrence to the start of its handling, by consumer",
            Unit::Seconds,
            metrics.consumer_lag.clone(),
        );
        registry.register(
            "jamaa_notification_deliveries",
            "Notification message tries and receipts, by channel and outcome",
            metrics.deliveries.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }
}

/// The process-wide metrics, created on first use.
fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// Every metric of this process in the OpenMetrics text format (serve with [`CONTENT_TYPE`]).
pub fn render() -> String {
    let mut text = String::new();
    if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &metrics().registry) {
        tracing::error!(%error, "could not encode the metrics");
    }
    text
}

/// Records one gRPC call served: `service` is the full proto service name (e.g.
/// `jamaa.identity.v1.IdentityService`), `code` the status code name (e.g. `OK`,
/// `UNAUTHENTICATED`).
pub fn grpc_request(service: &str, method: &str, code: &str, duration: Duration) {
    let m = metrics();
    m.grpc_requests
        .get_or_create(&GrpcLabels {
            service: service.to_string(),
            method: method.to_string(),
            code: code.to_string(),
        })
        .inc();
    m.grpc_duration
        .get_or_create(&GrpcMethodLabels {
            service: service.to_string(),
            method: method.to_string(),
        })
        .observe(duration.as_secs_f64());
}

/// Records one HTTP request to the gateway; `route` is the matched route template (e.g.
/// `/v1/requests/{id}`), never the raw path, so the number of series stays bounded.
pub fn http_request(method: &str, route: &str, status: u16, duration: Duration) {
    let m = metrics();
    m.http_requests
        .get_or_create(&HttpLabels {
            method: method.to_string(),
            route: route.to_string(),
            status,
        })
        .inc();
    m.http_duration
        .get_or_create(&HttpRouteLabels {
            method: method.to_string(),
            route: route.to_string(),
        })
        .observe(duration.as_secs_f64());
}

/// Sets the outbox backlog of `source`: rows not yet published and the age of the oldest one
/// (`None` when there is none).
pub fn outbox_backlog(source: &str, pending: u64, oldest_age: Option<Duration>) {
    let m = metrics();
    let labels = SourceLabels {
        source: source.to_string(),
    };
    m.outbox_pending
        .get_or_create(&labels)
        .set(i64::try_from(pending).unwrap_or(i64::MAX));
    m.outbox_oldest_age
        .get_or_create(&labels)
        .set(oldest_age.unwrap_or_default().as_secs_f64());
}

/// Counts `count` events of `source` published and `failures` that could not be.
pub fn outbox_published(source: &str, count: u64, failures: u64) {
    let m = metrics();
    let labels = SourceLabels {
        source: source.to_string(),
    };
    m.outbox_published.get_or_create(&labels).inc_by(count);
    m.outbox_failures.get_or_create(&labels).inc_by(failures);
}

/// Counts one run of `consumer`'s handler on an event of `event_type`.
pub fn event_handled(consumer: &str, event_type: &str, outcome: Outcome) {
    metrics()
        .events_handled
        .get_or_create(&HandledLabels {
            consumer: consumer.to_string(),
            event_type: event_type.to_string(),
            outcome: outcome.label(),
        })
        .inc();
}

/// Counts one event `consumer` gave up on (dead-lettered).
pub fn event_dead_lettered(consumer: &str) {
    metrics()
        .events_dead_lettered
        .get_or_create(&ConsumerLabels {
            consumer: consumer.to_string(),
        })
        .inc();
}

/// Observes `consumer`'s lag: now − the event's `time`, when its handling starts (a negative lag
/// from clock skew counts as 0).
pub fn event_lag(consumer: &str, lag: Duration) {
    metrics()
        .consumer_lag
        .get_or_create(&ConsumerLabels {
            consumer: consumer.to_string(),
        })
        .observe(lag.as_secs_f64());
}

/// Counts one try (or receipt) of a message on `channel` (`email`, `sms`), by `outcome`
/// (`sent`, `temporary_failure`, `permanent_failure`, `delivered`, `undelivered`).
pub fn delivery(channel: &'static str, outcome: &'static str) {
    metrics()
        .deliveries
        .get_or_create(&DeliveryLabels { channel, outcome })
        .inc();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sample line of `series` (name and labels as rendered), if any.
    fn sample<'a>(text: &'a str, series: &str) -> Option<&'a str> {
        text.lines().find(|line| line.starts_with(series))
    }

    #[test]
    fn rendered_text_holds_recorded_samples() {
        grpc_request(
            "jamaa.test.v1.TestService",
            "Ping",
            "OK",
            Duration::from_millis(3),
        );
        grpc_request(
            "jamaa.test.v1.TestService",
            "Ping",
            "UNAUTHENTICATED",
            Duration::from_millis(1),
        );
        http_request("GET", "/v1/tests/{id}", 404, Duration::from_millis(2));
        outbox_backlog("jamaa/test", 3, Some(Duration::from_secs(2)));
        outbox_published("jamaa/test", 5, 1);
        event_handled("test-consumer", "jamaa.events.v1.Tested", Outcome::Ok);
        event_handled("test-consumer", "jamaa.events.v1.Tested", Outcome::Failed);
        event_dead_lettered("test-consumer");
        event_lag("test-consumer", Duration::from_millis(20));

        let text = render();
        let expect = |series: &str, value: &str| {
            let line =
                sample(&text, series).unwrap_or_else(|| panic!("no sample {series} in:\n{text}"));
            assert!(line.ends_with(value), "{line} should end with {value}");
        };
        expect(
            r#"jamaa_grpc_server_requests_total{service="jamaa.test.v1.TestService",method="Ping",code="OK"}"#,
            " 1",
        );
        expect(
            r#"jamaa_grpc_server_requests_total{service="jamaa.test.v1.TestService",method="Ping",code="UNAUTHENTICATED"}"#,
            " 1",
        );
        expect(
            r#"jamaa_grpc_server_request_duration_seconds_count{service="jamaa.test.v1.TestService",method="Ping"}"#,
            " 2",
        );
        expect(
            r#"jamaa_http_requests_total{method="GET",route="/v1/tests/{id}",status="404"}"#,
            " 1",
        );
        expect(
            r#"jamaa_http_request_duration_seconds_count{method="GET",route="/v1/tests/{id}"}"#,
            " 1",
        );
        expect(r#"jamaa_outbox_pending_events{source="jamaa/test"}"#, " 3");
        expect(
            r#"jamaa_outbox_oldest_pending_age_seconds{source="jamaa/test"}"#,
            " 2.0",
        );
        expect(r#"jamaa_outbox_published_total{source="jamaa/test"}"#, " 5");
        expect(
            r#"jamaa_outbox_publish_failures_total{source="jamaa/test"}"#,
            " 1",
        );
        expect(
            r#"jamaa_events_handled_total{consumer="test-consumer",event_type="jamaa.events.v1.Tested",outcome="ok"}"#,
            " 1",
        );
        expect(
            r#"jamaa_events_handled_total{consumer="test-consumer",event_type="jamaa.events.v1.Tested",outcome="failed"}"#,
            " 1",
        );
        expect(
            r#"jamaa_events_dead_lettered_total{consumer="test-consumer"}"#,
            " 1",
        );
        expect(
            r#"jamaa_event_consumer_lag_seconds_count{consumer="test-consumer"}"#,
            " 1",
        );
        assert!(
            text.ends_with("# EOF\n"),
            "OpenMetrics text ends with # EOF"
        );
    }
}
