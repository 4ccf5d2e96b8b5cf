//! The in-process bus for running everything in one process. Events still come from the outbox
//! (a crash before delivery republishes them on restart) and handlers still deduplicate.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{EventPublisher, PublishError, Subscription};
use crate::envelope::CloudEvent;

/// An event a consumer gave up on after the delivery limit.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub consumer: String,
    pub event: CloudEvent,
    pub error: String,
}

type Delivery = (CloudEvent, oneshot::Sender<()>);

struct Subscriber {
    types: HashSet<String>,
    sender: mpsc::UnboundedSender<Delivery>,
}

#[derive(Default)]
struct Inner {
    subscribers: RwLock<Vec<Subscriber>>,
    dead_letters: Mutex<Vec<DeadLetter>>,
}

/// Delivers each published event to every subscriber of its type. `publish` returns once every
/// subscriber has handled the event (or dead-lettered it), so the outbox marks a row sent only
/// after its effects are durable.
#[derive(Clone)]
pub struct InProcessBus {
    inner: Arc<Inner>,
    delivery_limit: u32,
}

impl InProcessBus {
    pub fn new(delivery_limit: u32) -> Self {
        InProcessBus {
            inner: Arc::default(),
            delivery_limit: delivery_limit.max(1),
        }
    }

    /// The events dead-lettered so far (also logged at ERROR level).
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.inner
            .dead_letters
            .lock()
            .map(|letters| letters.clone())
            .unwrap_or_default()
    }

    pub(super) fn subscribe(
        &self,
        subscription: Subscription,
        shutdown: CancellationToken,
    ) -> JoinHandle<()> {
        let (sender, mut receiver) = mpsc::unbounded_channel::<Delivery>();
        if let Ok(mut subscribers) = self.inner.subscribers.write() {
            subscribers.push(Subscriber {
                types: subscription.event_types.iter().cloned().collect(),
                sender,
            });
        }
        let inner = self.inner.clone();
        let limit = self.delivery_limit;
        tokio::spawn(async move {
            loop {
                let (event, done) = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    next = receiver.recv() => match next {
                        Some(delivery) => delivery,
                        None => break,
                    },
                };
                deliver(&inner, &subscription, limit, &event).await;
                let _ = done.send(());
            }
        })
    }
}

async fn deliver(inner: &Inner, subscription: &Subscription, limit: u32, event: &CloudEvent) {
    let span = tracing::info_span!("handle_event", trace_id = tracing::field::Empty, consumer = %subscription.consumer,
        event_type = %event.event_type, event_id = %event.id);
    jamaa_telemetry::parent_from_map(&span, &event.trace_headers.clone().into_iter().collect());
    super::record_lag(&subscription.consumer, event);
    for attempt in 1..=limit {
        let result = subscription
            .handler
            .handle(event)
            .instrument(span.clone())
            .await;
        super::record_handled(&subscription.consumer, event, &result);
        match result {
            Ok(()) => return,
            Err(error) if attempt < limit => {
                tracing::warn!(parent: &span, %error, attempt, "event handler failed; retrying");
                tokio::time::sleep(Duration::from_millis(50 * 2u64.pow(attempt.min(5)))).await;
            }
            Err(error) => {
                tracing::error!(parent: &span, %error, attempt, "event handler failed; dead-lettered");
                jamaa_telemetry::metrics::event_dead_lettered(&subscription.consumer);
                if let Ok(mut letters) = inner.dead_letters.lock() {
                    letters.push(DeadLetter {
                        consumer: subscription.consumer.clone(),
                        event: event.clone(),
                        error: error.to_string(),
                    });
                }
            }
        }
    }
}

#[async_trait]
impl EventPublisher for InProcessBus {
    async fn publish(&self, events: &[CloudEvent]) -> Vec<Result<(), PublishError>> {
        let mut results = Vec::with_capacity(events.len());
        for event in events {
            let mut pending = Vec::new();
            let mut result = Ok(());
            if let Ok(subscribers) = self.inner.subscribers.read() {
                for subscriber in subscribers.iter() {
                    if !subscriber.types.contains(&event.event_type) {
                        continue;
                    }
                    let (done, handled) = oneshot::channel();
                    if subscriber.sender.send((event.clone(), done)).is_err() {
                        result = Err(PublishError("a consumer has stopped".to_string()));
                    } else {
                        pending.push(handled);
                    }
                }
            }
            for handled in pending {
                if handled.await.is_err() {
                    result = Err(PublishError(
                        "a consumer stopped before handling".to_string(),
                    ));
                }
            }
            results.push(result);
        }
        results
    }
}
