//! RabbitMQ: one durable topic exchange; per consumer one durable quorum queue bound by event
//! type, with an explicit delivery limit and a dead-letter queue; publisher confirms; manual acks
//! after the handler's transaction commits; reconnection with backoff on both sides.
//!
//! CloudEvents over AMQP 0-9-1: the attributes travel as `cloudEvents:`-prefixed headers (as in
//! the CloudEvents AMQP binding's application properties), the data is the message body, and
//! `content_type` is `application/protobuf`. W3C `traceparent`/`tracestate` travel as headers too.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use jamaa_settings::{EventsSettings, ExposeSecret};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    BasicRejectOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::uri::AMQPUri;
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};
use tokio::sync::{Mutex, OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock, mpsc};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use super::{BusError, EventPublisher, PublishError, Subscription};
use crate::envelope::{CONTENT_TYPE, CloudEvent, SPEC_VERSION};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(5);
/// How often a consumer checks that its connection is still up while no delivery arrives, and
/// the longest an ack, nack or reject may take: a connection that died under a consumer must
/// end its session (and start a new one), never leave it waiting for ever.
const CONSUMER_WATCHDOG: Duration = Duration::from_secs(2);
const ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a consumer's lanes may take to finish the events they are handling when the session
/// ends.
const LANE_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest AMQP frame asked for when the URL does not say (`?frame_max=`). lapin keeps two
/// buffers of 32 frames per connection, so RabbitMQ's default (128 KiB) costs 8 MiB of memory a
/// connection; events are small, and a larger one simply travels in several frames.
const DEFAULT_FRAME_MAX: u32 = 16 * 1024;

/// A connection to RabbitMQ for one service: a publisher channel and its consumers.
pub struct RabbitMqBus {
    uri: AMQPUri,
    exchange: String,
    prefetch: u16,
    consumer_lanes: usize,
    delivery_limit: u32,
    publisher: Mutex<Option<(Connection, Channel)>>,
}

impl RabbitMqBus {
    /// A bus on `settings.url`; an error (without the URL, which holds a password) when it is
    /// not an AMQP URL.
    pub fn new(settings: &EventsSettings) -> Result<Self, BusError> {
        let mut uri: AMQPUri = settings.url.expose_secret().parse().map_err(|_| {
            BusError::Broker("events.url is not a valid amqp:// or amqps:// URL".to_string())
        })?;
        uri.query.frame_max.get_or_insert(DEFAULT_FRAME_MAX);
        Ok(RabbitMqBus {
            uri,
            exchange: settings.exchange.clone(),
            prefetch: settings.prefetch,
            consumer_lanes: usize::from(settings.consumer_lanes.max(1)),
            delivery_limit: settings.delivery_limit,
            publisher: Mutex::new(None),
        })
    }

    /// The exchange dead-lettered messages go to.
    pub fn dead_letter_exchange(&self) -> String {
        format!("{}.dlx", self.exchange)
    }

    /// The queue of consumer `consumer`: `<exchange>.<consumer>`, e.g. `jamaa.events.notification`.
    pub fn queue_name(&self, consumer: &str) -> String {
        format!("{}.{consumer}", self.exchange)
    }

    /// The dead-letter queue of consumer `consumer`, e.g. `jamaa.events.notification.dead-letter`.
    pub fn dead_letter_queue_name(&self, consumer: &str) -> String {
        format!("{}.{consumer}.dead-letter", self.exchange)
    }

    /// Returns once a connection to the broker opens (closing it again), or on shutdown.
    pub(super) async fn wait_until_reachable(&self, shutdown: CancellationToken) {
        let mut delay = Duration::from_millis(100);
        loop {
            match self.connect().await {
                Ok(connection) => {
                    let _ = connection.close(200, "reachable".into()).await;
                    return;
                }
                Err(error) => tracing::warn!(%error, "the broker is not reachable yet"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(MAX_RECONNECT_DELAY);
        }
    }

    async fn connect(&self) -> Result<Connection, String> {
        let properties = ConnectionProperties::default();
        match tokio::time::timeout(
            CONNECT_TIMEOUT,
            Connection::connect_uri(self.uri.clone(), properties),
        )
        .await
        {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(error)) => Err(format!("cannot connect to the broker: {error}")),
            Err(_) => Err("cannot connect to the broker: timed out".to_string()),
        }
    }

    async fn open_publisher(&self) -> Result<(Connection, Channel), String> {
        let connection = self.connect().await?;
        let channel = connection
            .create_channel()
            .await
            .map_err(|error| error.to_string())?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|error| error.to_string())?;
        declare_exchanges(&channel, &self.exchange, &self.dead_letter_exchange()).await?;
        Ok((connection, channel))
    }

    pub(super) async fn subscribe(
        self: Arc<Self>,
        subscription: Subscription,
        shutdown: CancellationToken,
    ) -> JoinHandle<()> {
        // Declare the topology now, so events published after start-up are routed to the queue.
        match self.connect().await {
            Ok(connection) => {
                let declared = async {
                    let channel = connection
                        .create_channel()
                        .await
                        .map_err(|e| e.to_string())?;
                    self.declare_consumer_topology(&channel, &subscription)
                        .await
                }
                .await;
                if let Err(error) = declared {
                    tracing::warn!(consumer = %subscription.consumer, %error, "could not declare queues yet");
                }
                let _ = connection.close(200, "topology declared".into()).await;
            }
            Err(error) => {
                tracing::warn!(consumer = %subscription.consumer, %error, "broker unreachable at start-up; will retry")
            }
        }
        tokio::spawn(async move { self.consume_forever(subscription, shutdown).await })
    }

    async fn declare_consumer_topology(
        &self,
        channel: &Channel,
        subscription: &Subscription,
    ) -> Result<(), String> {
        let dlx = self.dead_letter_exchange();
        declare_exchanges(channel, &self.exchange, &dlx).await?;
        let queue = self.queue_name(&subscription.consumer);
        let dead_letter_queue = self.dead_letter_queue_name(&subscription.consumer);

        let mut dlq_arguments = FieldTable::default();
        dlq_arguments.insert("x-queue-type".into(), long_string("quorum"));
        channel
            .queue_declare(
                dead_letter_queue.as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                dlq_arguments,
            )
            .await
            .map_err(|e| e.to_string())?;
        channel
            .queue_bind(
                dead_letter_queue.as_str().into(),
                dlx.as_str().into(),
                queue.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| e.to_string())?;

        let mut arguments = FieldTable::default();
        arguments.insert("x-queue-type".into(), long_string("quorum"));
        arguments.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongInt(self.delivery_limit as i32),
        );
        arguments.insert("x-dead-letter-exchange".into(), long_string(&dlx));
        arguments.insert("x-dead-letter-routing-key".into(), long_string(&queue));
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                arguments,
            )
            .await
            .map_err(|e| e.to_string())?;
        for event_type in &subscription.event_types {
            channel
                .queue_bind(
                    queue.as_str().into(),
                    self.exchange.as_str().into(),
                    event_type.as_str().into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    async fn consume_forever(&self, subscription: Subscription, shutdown: CancellationToken) {
        let mut delay = Duration::from_millis(200);
        while !shutdown.is_cancelled() {
            let session = std::time::Instant::now();
            match self.consume(&subscription, &shutdown).await {
                Ok(()) => break,
                Err(error) => {
                    tracing::warn!(consumer = %subscription.consumer, %error, "consumer disconnected; reconnecting");
                }
            }
            // A session that lasted was a success: the next outage starts the backoff afresh.
            if session.elapsed() > Duration::from_secs(10) {
                delay = Duration::from_millis(200);
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(MAX_RECONNECT_DELAY);
        }
    }

    /// Consumes until shutdown (Ok) or until the connection fails (Err).
    async fn consume(
        &self,
        subscription: &Subscription,
        shutdown: &CancellationToken,
    ) -> Result<(), String> {
        let connection = self.connect().await?;
        let channel = connection
            .create_channel()
            .await
            .map_err(|e| e.to_string())?;
        self.declare_consumer_topology(&channel, subscription)
            .await?;
        channel
            .basic_qos(self.prefetch, BasicQosOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        let queue = self.queue_name(&subscription.consumer);
        let mut consumer = channel
            .basic_consume(
                queue.as_str().into(),
                format!("{}-{}", subscription.consumer, Uuid::new_v4()).into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(consumer = %subscription.consumer, %queue, lanes = self.consumer_lanes, "consuming");
        let mut lanes = Lanes::start(
            self.consumer_lanes,
            usize::from(self.prefetch.max(1)),
            subscription,
            self.delivery_limit,
        );
        let order = Arc::new(RwLock::new(()));
        let mut watchdog = tokio::time::interval(CONSUMER_WATCHDOG);
        let ended = loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => break Ok(()),
                failed = lanes.failed() => break Err(failed),
                next = consumer.next() => next,
                _ = watchdog.tick() => {
                    if connection.status().connected() {
                        continue;
                    }
                    break Err("the connection to the broker was lost".to_string());
                }
            };
            let delivery = match next {
                Some(Ok(delivery)) => delivery,
                Some(Err(error)) => break Err(error.to_string()),
                None => break Err("the consumer was cancelled by the broker".to_string()),
            };
            let Some(event) = headers_to_cloud_event(&delivery.properties, &delivery.data) else {
                tracing::error!(consumer = %subscription.consumer, "not a CloudEvent; dead-lettering");
                jamaa_telemetry::metrics::event_dead_lettered(&subscription.consumer);
                if let Err(error) =
                    within_ack_timeout(delivery.acker.reject(BasicRejectOptions { requeue: false }))
                        .await
                {
                    break Err(error);
                }
                continue;
            };
            // Each delivery holds the session's order lock while it is handled: shared for
            // ordinary events, exclusive for fences (which so wait for every event before them,
            // and hold back every event after them).
            let order = order.clone();
            let guard = if subscription.fences.contains(&event.event_type) {
                tokio::select! {
                    _ = shutdown.cancelled() => break Ok(()),
                    guard = order.write_owned() => OrderGuard { _shared: None, _exclusive: Some(guard) },
                }
            } else {
                tokio::select! {
                    _ = shutdown.cancelled() => break Ok(()),
                    guard = order.read_owned() => OrderGuard { _shared: Some(guard), _exclusive: None },
                }
            };
            if let Err(error) = lanes.dispatch(delivery, event, guard).await {
                break Err(error);
            }
        };
        // The lanes finish the event each is handling (and acknowledge it); what they had not
        // started stays unacknowledged and the broker delivers it again.
        lanes.stop(LANE_DRAIN_TIMEOUT).await;
        if ended.is_ok() {
            let _ = connection.close(200, "shutting down".into()).await;
        }
        ended
    }
}

/// The consumer's lanes: deliveries about one subject (one aggregate, e.g. `requests/…`) always
/// go to the same lane, so they are handled one after another in the order the broker delivered
/// them; different subjects are handled concurrently, one event at a time per lane. A lane whose
/// acknowledgement fails ends the session (the broker redelivers what was not acknowledged).
struct Lanes {
    senders: Vec<mpsc::Sender<(Delivery, CloudEvent, OrderGuard)>>,
    tasks: JoinSet<Result<(), String>>,
    stopping: CancellationToken,
}

impl Lanes {
    fn start(
        count: usize,
        capacity: usize,
        subscription: &Subscription,
        delivery_limit: u32,
    ) -> Self {
        let stopping = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let senders = (0..count.max(1))
            .map(|_| {
                let (sender, receiver) = mpsc::channel(capacity);
                let lane = Lane {
                    subscription: subscription.clone(),
                    delivery_limit,
                    stopping: stopping.clone(),
                };
                tasks.spawn(lane.run(receiver));
                sender
            })
            .collect();
        Lanes {
            senders,
            tasks,
            stopping,
        }
    }

    /// The lane of `event`'s subject (its id when it has none).
    fn lane_of(&self, event: &CloudEvent) -> usize {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        if event.subject.is_empty() {
            event.id.hash(&mut hasher);
        } else {
            event.subject.hash(&mut hasher);
        }
        (hasher.finish() % self.senders.len() as u64) as usize
    }

    async fn dispatch(
        &self,
        delivery: Delivery,
        event: CloudEvent,
        guard: OrderGuard,
    ) -> Result<(), String> {
        // Never full for long: a lane holds at most `prefetch` deliveries, the broker's limit of
        // unacknowledged ones.
        self.senders[self.lane_of(&event)]
            .send((delivery, event, guard))
            .await
            .map_err(|_| "a consumer lane has stopped".to_string())
    }

    /// Resolves when a lane ended with an error (it never ends otherwise while the session runs).
    async fn failed(&mut self) -> String {
        match self.tasks.join_next().await {
            Some(Ok(Err(error))) => error,
            Some(Ok(Ok(()))) => "a consumer lane has stopped".to_string(),
            Some(Err(error)) => format!("a consumer lane failed: {error}"),
            None => std::future::pending().await,
        }
    }

    async fn stop(mut self, timeout: Duration) {
        self.stopping.cancel();
        self.senders.clear();
        let drained = tokio::time::timeout(timeout, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            self.tasks.abort_all();
        }
    }
}

/// A delivery's hold on its session's order (see [`Subscription::fences`]), released once it has
/// been handled and acknowledged.
struct OrderGuard {
    _shared: Option<OwnedRwLockReadGuard<()>>,
    _exclusive: Option<OwnedRwLockWriteGuard<()>>,
}

/// One lane of a consumer: handles its deliveries one after another and acknowledges each.
struct Lane {
    subscription: Subscription,
    delivery_limit: u32,
    stopping: CancellationToken,
}

impl Lane {
    async fn run(
        self,
        mut receiver: mpsc::Receiver<(Delivery, CloudEvent, OrderGuard)>,
    ) -> Result<(), String> {
        while let Some((delivery, event, guard)) = receiver.recv().await {
            if self.stopping.is_cancelled() {
                // Left unacknowledged: the broker delivers it again to the next session.
                break;
            }
            self.handle(delivery, event).await?;
            drop(guard);
        }
        Ok(())
    }

    async fn handle(&self, delivery: Delivery, event: CloudEvent) -> Result<(), String> {
        let subscription = &self.subscription;
        let span = tracing::info_span!("handle_event", trace_id = tracing::field::Empty, consumer = %subscription.consumer,
            event_type = %event.event_type, event_id = %event.id, redelivered = delivery.redelivered);
        let trace: HashMap<String, String> = event.trace_headers.clone().into_iter().collect();
        jamaa_telemetry::parent_from_map(&span, &trace);
        super::record_lag(&subscription.consumer, &event);
        let result = subscription
            .handler
            .handle(&event)
            .instrument(span.clone())
            .await;
        super::record_handled(&subscription.consumer, &event, &result);
        match result {
            Ok(()) => within_ack_timeout(delivery.acker.ack(BasicAckOptions::default())).await,
            Err(error) => {
                let deliveries = delivery_count(&delivery.properties);
                tracing::warn!(parent: &span, %error, deliveries, "event handler failed; the broker will redeliver");
                // An estimate: the quorum queue dead-letters a message returned once more
                // after `delivery_limit` failed deliveries (its `x-delivery-count`); this nack
                // is that one. (The broker does the dead-lettering; we only count it.)
                if deliveries >= self.delivery_limit {
                    jamaa_telemetry::metrics::event_dead_lettered(&subscription.consumer);
                }
                // A short pause so a failing handler does not spin (it holds only its own lane);
                // the broker dead-letters the message once it exceeds the delivery limit.
                tokio::time::sleep(Duration::from_millis(
                    100 * u64::from(deliveries.min(10) + 1),
                ))
                .await;
                within_ack_timeout(delivery.acker.nack(BasicNackOptions {
                    requeue: true,
                    ..BasicNackOptions::default()
                }))
                .await
            }
        }
    }
}

#[async_trait]
impl EventPublisher for RabbitMqBus {
    async fn publish(&self, events: &[CloudEvent]) -> Vec<Result<(), PublishError>> {
        let mut guard = self.publisher.lock().await;
        if guard.is_none() {
            match self.open_publisher().await {
                Ok(opened) => *guard = Some(opened),
                Err(error) => {
                    return events
                        .iter()
                        .map(|_| Err(PublishError(error.clone())))
                        .collect();
                }
            }
        }
        let Some((_, channel)) = guard.as_ref() else {
            return events
                .iter()
                .map(|_| Err(PublishError("no channel".to_string())))
                .collect();
        };

        let mut broken = false;
        let mut confirms = Vec::with_capacity(events.len());
        for event in events {
            let published = channel
                .basic_publish(
                    self.exchange.as_str().into(),
                    event.event_type.as_str().into(),
                    BasicPublishOptions::default(),
                    &event.data,
                    cloud_event_properties(event),
                )
                .await;
            match published {
                Ok(confirm) => confirms.push(Ok(confirm)),
                Err(error) => {
                    broken = true;
                    confirms.push(Err(PublishError(error.to_string())));
                }
            }
        }
        let mut results = Vec::with_capacity(events.len());
        for confirm in confirms {
            let result = match confirm {
                Err(error) => Err(error),
                Ok(confirm) => match tokio::time::timeout(CONFIRM_TIMEOUT, confirm).await {
                    Ok(Ok(Confirmation::Ack(_))) => Ok(()),
                    Ok(Ok(Confirmation::Nack(_))) => {
                        Err(PublishError("the broker refused the event".to_string()))
                    }
                    Ok(Ok(Confirmation::NotRequested)) => {
                        Err(PublishError("publisher confirms are off".to_string()))
                    }
                    Ok(Err(error)) => {
                        broken = true;
                        Err(PublishError(error.to_string()))
                    }
                    Err(_) => {
                        broken = true;
                        Err(PublishError(
                            "the broker did not confirm in time".to_string(),
                        ))
                    }
                },
            };
            results.push(result);
        }
        if broken {
            // Drop the connection; the next publish reconnects.
            if let Some((connection, _)) = guard.take() {
                let _ = tokio::time::timeout(
                    Duration::from_secs(1),
                    connection.close(320, "reconnecting".into()),
                )
                .await;
            }
        }
        results
    }
}

/// An ack, nack or reject, or an error if it does not complete within [`ACK_TIMEOUT`] (the
/// connection is gone; the broker redelivers what was not acknowledged).
async fn within_ack_timeout<T, E: std::fmt::Display>(
    acknowledgement: impl std::future::Future<Output = Result<T, E>>,
) -> Result<(), String> {
    match tokio::time::timeout(ACK_TIMEOUT, acknowledgement).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("the broker did not take an acknowledgement in time".to_string()),
    }
}

async fn declare_exchanges(channel: &Channel, exchange: &str, dlx: &str) -> Result<(), String> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    channel
        .exchange_declare(
            exchange.into(),
            ExchangeKind::Topic,
            durable,
            FieldTable::default(),
        )
        .await
        .map_err(|e| e.to_string())?;
    channel
        .exchange_declare(
            dlx.into(),
            ExchangeKind::Direct,
            durable,
            FieldTable::default(),
        )
        .await
        .map_err(|e| e.to_string())
}

fn long_string(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value.as_bytes().to_vec()))
}

fn cloud_event_properties(event: &CloudEvent) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert("cloudEvents:specversion".into(), long_string(SPEC_VERSION));
    headers.insert("cloudEvents:id".into(), long_string(&event.id.to_string()));
    headers.insert("cloudEvents:source".into(), long_string(&event.source));
    headers.insert("cloudEvents:type".into(), long_string(&event.event_type));
    headers.insert("cloudEvents:subject".into(), long_string(&event.subject));
    headers.insert(
        "cloudEvents:time".into(),
        long_string(&event.time.to_rfc3339()),
    );
    headers.insert(
        "cloudEvents:datacontenttype".into(),
        long_string(CONTENT_TYPE),
    );
    for (key, value) in &event.trace_headers {
        headers.insert(ShortString::from(key.as_str()), long_string(value));
    }
    BasicProperties::default()
        .with_content_type(CONTENT_TYPE.into())
        .with_delivery_mode(2)
        .with_message_id(event.id.to_string().into())
        .with_type(event.event_type.as_str().into())
        .with_app_id(event.source.as_str().into())
        .with_timestamp(event.time.timestamp().max(0) as u64)
        .with_headers(headers)
}

fn header_string(headers: &FieldTable, key: &str) -> Option<String> {
    match headers.inner().get(key)? {
        AMQPValue::LongString(value) => String::from_utf8(value.as_bytes().to_vec()).ok(),
        AMQPValue::ShortString(value) => Some(value.as_str().to_string()),
        _ => None,
    }
}

fn delivery_count(properties: &BasicProperties) -> u32 {
    let Some(headers) = properties.headers() else {
        return 0;
    };
    match headers.inner().get("x-delivery-count") {
        Some(AMQPValue::LongLongInt(n)) => (*n).max(0) as u32,
        Some(AMQPValue::LongInt(n)) => (*n).max(0) as u32,
        Some(AMQPValue::LongUInt(n)) => *n,
        _ => 0,
    }
}

/// Reads a CloudEvent from an AMQP message's headers and body. `None` when it is not one.
pub fn headers_to_cloud_event(properties: &BasicProperties, body: &[u8]) -> Option<CloudEvent> {
    let headers = properties.headers().as_ref()?;
    if header_string(headers, "cloudEvents:specversion")? != SPEC_VERSION {
        return None;
    }
    let id = Uuid::parse_str(&header_string(headers, "cloudEvents:id")?).ok()?;
    let time = header_string(headers, "cloudEvents:time")
        .and_then(|time| DateTime::parse_from_rfc3339(&time).ok())
        .map(|time| time.with_timezone(&Utc))
        .unwrap_or_else(Utc::now);
    let mut trace_headers = BTreeMap::new();
    for key in ["traceparent", "tracestate"] {
        if let Some(value) = header_string(headers, key) {
            trace_headers.insert(key.to_string(), value);
        }
    }
    Some(CloudEvent {
        id,
        source: header_string(headers, "cloudEvents:source")?,
        event_type: header_string(headers, "cloudEvents:type")?,
        subject: header_string(headers, "cloudEvents:subject").unwrap_or_default(),
        time,
        data: body.to_vec(),
        trace_headers,
    })
}
