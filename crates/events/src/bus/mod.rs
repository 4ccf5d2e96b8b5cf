//! The event bus: RabbitMQ in production, an in-process bus on a laptop. Both keep the same
//! contract: publish returns only once the bus accepted the event, each consumer gets every event
//! it subscribed to at least once, a failing handler is retried up to the delivery limit and then
//! dead-lettered.
//!
//! Both count what their consumers do (see [`jamaa_telemetry::metrics`]): each handler run by
//! outcome (`jamaa_events_handled_total`), each event given up on
//! (`jamaa_events_dead_lettered_total`), and the lag from an event's `time` to the start of its
//! handling (`jamaa_event_consumer_lag_seconds`).

mod in_process;
mod rabbitmq;

use std::sync::Arc;

use async_trait::async_trait;
use jamaa_settings::{EventsSettings, ExposeSecret};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use in_process::{DeadLetter, InProcessBus};
pub use rabbitmq::{RabbitMqBus, headers_to_cloud_event};

use crate::envelope::CloudEvent;

/// Publishing failed; the outbox keeps the event and retries.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct PublishError(pub String);

/// The bus could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("unsupported events URL scheme (use memory:// or amqp://)")]
    UnsupportedUrl,
    #[error("broker: {0}")]
    Broker(String),
}

/// A handler failed; the event will be delivered again.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HandlerError(pub String);

impl From<sea_orm::DbErr> for HandlerError {
    fn from(error: sea_orm::DbErr) -> Self {
        HandlerError(format!("database: {error}"))
    }
}

impl From<crate::envelope::DecodeError> for HandlerError {
    fn from(error: crate::envelope::DecodeError) -> Self {
        HandlerError(error.to_string())
    }
}

/// Observes `consumer`'s lag on `event` (now − its `time`) as its handling starts.
fn record_lag(consumer: &str, event: &CloudEvent) {
    let lag = (chrono::Utc::now() - event.time)
        .to_std()
        .unwrap_or_default();
    jamaa_telemetry::metrics::event_lag(consumer, lag);
}

/// Counts one run of `consumer`'s handler on `event` that ended with `result`.
fn record_handled(consumer: &str, event: &CloudEvent, result: &Result<(), HandlerError>) {
    let outcome = match result {
        Ok(()) => jamaa_telemetry::metrics::Outcome::Ok,
        Err(_) => jamaa_telemetry::metrics::Outcome::Failed,
    };
    jamaa_telemetry::metrics::event_handled(consumer, &event.event_type, outcome);
}

/// Sends events to the bus.
#[async_trait]
pub trait EventPublisher: Send + Sync {
    /// Publishes `events`, returning one result per event in the same order. `Ok` means the bus
    /// confirmed it holds the event.
    async fn publish(&self, events: &[CloudEvent]) -> Vec<Result<(), PublishError>>;
}

/// Applies one event's effect in the consumer. Must be idempotent (see [`crate::inbox`]).
#[async_trait]
pub trait EventHandler: Send + Sync {
    async fn handle(&self, event: &CloudEvent) -> Result<(), HandlerError>;
}

/// A consumer and the event types it wants.
#[derive(Clone)]
pub struct Subscription {
    /// The consuming service, e.g. `notification`; names its queue.
    pub consumer: String,
    /// Full proto names of the event types it handles.
    pub event_types: Vec<String>,
    /// Event types (among `event_types`) handled as fences: only once every event delivered
    /// before has been handled, and before any delivered after starts. For the rare events other
    /// events depend on (a person's language, a commune's time zone); the rest are handled
    /// concurrently, in order per subject.
    pub fences: Vec<String>,
    pub handler: Arc<dyn EventHandler>,
}

/// The bus a process uses.
#[derive(Clone)]
pub enum EventBus {
    InProcess(InProcessBus),
    RabbitMq(Arc<RabbitMqBus>),
}

impl EventBus {
    /// The bus named by `settings.url`: `memory://` or `amqp://…`.
    pub fn from_settings(settings: &EventsSettings) -> Result<Self, BusError> {
        let url = settings.url.expose_secret();
        if url.starts_with("memory:") {
            Ok(EventBus::InProcess(InProcessBus::new(
                settings.delivery_limit,
            )))
        } else if url.starts_with("amqp://") || url.starts_with("amqps://") {
            Ok(EventBus::RabbitMq(Arc::new(RabbitMqBus::new(settings)?)))
        } else {
            Err(BusError::UnsupportedUrl)
        }
    }

    /// Where outbox relays publish.
    pub fn publisher(&self) -> Arc<dyn EventPublisher> {
        match self {
            EventBus::InProcess(bus) => Arc::new(bus.clone()),
            EventBus::RabbitMq(bus) => bus.clone(),
        }
    }

    /// Returns once the bus can be reached (at once for the in-process bus; for RabbitMQ once a
    /// connection opens, retrying with backoff), or when `shutdown` is cancelled. Servers hold
    /// their readiness on it.
    pub async fn wait_until_reachable(&self, shutdown: CancellationToken) {
        if let EventBus::RabbitMq(bus) = self {
            bus.wait_until_reachable(shutdown).await;
        }
    }

    /// Starts consuming for `subscription` until `shutdown`. The consumer's queue and bindings
    /// exist when this returns if the broker answered; otherwise the consumer keeps trying.
    pub async fn subscribe(
        &self,
        subscription: Subscription,
        shutdown: CancellationToken,
    ) -> JoinHandle<()> {
        match self {
            EventBus::InProcess(bus) => bus.subscribe(subscription, shutdown),
            EventBus::RabbitMq(bus) => bus.clone().subscribe(subscription, shutdown).await,
        }
    }
}
