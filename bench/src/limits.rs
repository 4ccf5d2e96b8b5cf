//! The physical limits, measured in the same run at the same concurrency: a raw tonic unary echo
//! (`grpc.health.v1.Health/Check` on a bare server in its own process), a raw database
//! transaction doing what a request submission writes, and a raw broker round trip
//! (publish with confirm → consume → ack) on a queue like the services' (quorum, persistent).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Confirmation, Connection, ConnectionProperties, ExchangeKind};
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement, TransactionTrait, Value,
};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::load::{Measured, closed_loop};
use crate::process::READY;

/// Child mode `echo-server`: a bare tonic server with only the health service, on a free port.
pub async fn echo_server() -> anyhow::Result<()> {
    let (reporter, service) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    println!("{READY} {port}");
    let stop = CancellationToken::new();
    crate::process::stop_when_stdin_closes(stop.clone());
    tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            stop.cancelled_owned(),
        )
        .await?;
    Ok(())
}

/// Unary Check calls over `channels` (client `i` uses channel `i % len`).
pub async fn echo(
    channels: Vec<Channel>,
    clients: usize,
    warmup: Duration,
    window: Duration,
) -> Measured {
    let channels = Arc::new(channels);
    closed_loop(clients, warmup, window, move |client, _| {
        let channel = channels[client % channels.len()].clone();
        async move {
            HealthClient::new(channel)
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .map(|_| ())
                .map_err(|status| status.to_string())
        }
    })
    .await
}

/// Statement with `$n` placeholders on `backend` (SQLite takes them too).
fn statement(backend: DatabaseBackend, sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(backend, sql, values)
}

/// One submission's writes, in raw SQL on the service's own schema: the idempotency lookup,
/// then in one transaction a tracking number, the request row, its first history row and the
/// outbox row.
pub async fn raw_submission(
    db: &DatabaseConnection,
    commune_id: uuid::Uuid,
    service_id: uuid::Uuid,
    citizen_id: uuid::Uuid,
) -> Result<(), sea_orm::DbErr> {
    let backend = db.get_database_backend();
    let client_request_id = uuid::Uuid::now_v7();
    db.query_one_raw(statement(
        backend,
        "SELECT id FROM requests WHERE citizen_id = $1 AND client_request_id = $2",
        vec![citizen_id.into(), client_request_id.into()],
    ))
    .await?;
    let now = chrono::Utc::now();
    let txn = db.begin().await?;
    let number = txn
        .query_one_raw(statement(
            backend,
            "INSERT INTO tracking_numbers (issued_at) VALUES ($1) RETURNING id",
            vec![now.into()],
        ))
        .await?
        .ok_or_else(|| sea_orm::DbErr::Custom("no tracking number".into()))?
        .try_get::<i64>("", "id")?;
    let request_id = uuid::Uuid::now_v7();
    txn.execute_raw(statement(
        backend,
        "INSERT INTO requests (id, commune_id, citizen_id, client_request_id, service_id, \
         service_code, tracking_code, description, attributes, status, version, created_at, \
         updated_at, service_version, service_kind, receipt_secret_hash, urgent, extended, \
         priority, language) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
         $18, $19, $20)",
        vec![
            request_id.into(),
            commune_id.into(),
            citizen_id.into(),
            client_request_id.into(),
            service_id.into(),
            "roads".into(),
            format!("RAW-2026-{number:06}").into(),
            "Pothole on the main road".into(),
            "{}".into(),
            "submitted".into(),
            1i32.into(),
            now.into(),
            now.into(),
            1i32.into(),
            "incident_report".into(),
            "0".repeat(64).into(),
            false.into(),
            false.into(),
            "normal".into(),
            "fr".into(),
        ],
    ))
    .await?;
    txn.execute_raw(statement(
        backend,
        "INSERT INTO request_history (id, request_id, from_status, to_status, note, actor_id, \
         changed_at, internal_note, legal_ground) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        vec![
            uuid::Uuid::now_v7().into(),
            request_id.into(),
            "unspecified".into(),
            "submitted".into(),
            "".into(),
            citizen_id.into(),
            now.into(),
            "".into(),
            "".into(),
        ],
    ))
    .await?;
    let millis = now.timestamp_millis();
    txn.execute_raw(statement(
        backend,
        "INSERT INTO outbox_events (id, event_type, source, subject, occurred_at_ms, payload, \
         trace_headers, attempts, next_attempt_at_ms, locked_until_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        vec![
            uuid::Uuid::now_v7().into(),
            "jamaa.events.v1.RequestSubmitted".into(),
            "jamaa/bench".into(),
            format!("requests/{request_id}").into(),
            millis.into(),
            vec![0u8; 160].into(),
            "{}".into(),
            0i32.into(),
            millis.into(),
            0i64.into(),
        ],
    ))
    .await?;
    txn.commit().await
}

/// The raw transaction in closed loops on `db` (already migrated with the service's schema).
pub async fn raw_transaction(
    db: DatabaseConnection,
    clients: usize,
    warmup: Duration,
    window: Duration,
) -> Measured {
    let (commune, service) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    // The request's service must exist (a foreign key, as in the service's database).
    if let Err(error) = insert_service(&db, commune, service).await {
        let mut measured =
            closed_loop(1, Duration::ZERO, Duration::ZERO, |_, _| async { Ok(()) }).await;
        measured.errors = 1;
        measured.first_error = Some(format!("cannot create the service: {error}"));
        return measured;
    }
    let citizens: Arc<Vec<uuid::Uuid>> =
        Arc::new((0..clients).map(|_| uuid::Uuid::now_v7()).collect());
    closed_loop(clients, warmup, window, move |client, _| {
        let (db, citizen) = (db.clone(), citizens[client]);
        async move {
            raw_submission(&db, commune, service, citizen)
                .await
                .map_err(|error| error.to_string())
        }
    })
    .await
}

async fn insert_service(
    db: &DatabaseConnection,
    commune_id: uuid::Uuid,
    id: uuid::Uuid,
) -> Result<(), sea_orm::DbErr> {
    use jamaa_service_request::storage::service;
    use sea_orm::{ActiveModelTrait, Set};
    service::ActiveModel {
        id: Set(id),
        commune_id: Set(commune_id),
        commune_code: Set("RAW".into()),
        code: Set("roads".into()),
        name_ar: Set(String::new()),
        name_fr: Set("roads".into()),
        name_en: Set(String::new()),
        name_tzm: Set(String::new()),
        description_ar: Set(String::new()),
        description_fr: Set(String::new()),
        description_en: Set(String::new()),
        description_tzm: Set(String::new()),
        active: Set(true),
        created_at: Set(chrono::Utc::now()),
        version: Set(1),
        definition: Set(String::new()),
    }
    .insert(db)
    .await
    .map(|_| ())
}

type Waiting = Arc<Mutex<HashMap<uuid::Uuid, oneshot::Sender<()>>>>;

/// Publish (persistent, confirmed) → consume (manual ack, prefetch as the services) on a
/// private quorum queue; each call waits until its own message was consumed.
pub async fn broker_round_trip(
    url: &str,
    prefetch: u16,
    clients: usize,
    warmup: Duration,
    window: Duration,
) -> anyhow::Result<Measured> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let exchange = format!("jamaa.bench-limit-{id}");
    let queue = format!("{exchange}.consumer");
    let publisher = Connection::connect(url, ConnectionProperties::default()).await?;
    let consumer_connection = Connection::connect(url, ConnectionProperties::default()).await?;
    let channel = publisher.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    channel
        .exchange_declare(
            exchange.as_str().into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".as_bytes().to_vec().into()),
    );
    channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            arguments,
        )
        .await?;
    channel
        .queue_bind(
            queue.as_str().into(),
            exchange.as_str().into(),
            "bench".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;

    let waiting: Waiting = Arc::new(Mutex::new(HashMap::new()));
    let consume_channel = consumer_connection.create_channel().await?;
    consume_channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await?;
    let mut deliveries = consume_channel
        .basic_consume(
            queue.as_str().into(),
            "bench-consumer".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let consumer_waiting = waiting.clone();
    let consumer = tokio::spawn(async move {
        while let Some(Ok(delivery)) = deliveries.next().await {
            let _ = delivery.ack(BasicAckOptions::default()).await;
            let Ok(id) = uuid::Uuid::from_slice(&delivery.data) else {
                continue;
            };
            let sender = consumer_waiting
                .lock()
                .ok()
                .and_then(|mut waiting| waiting.remove(&id));
            if let Some(sender) = sender {
                let _ = sender.send(());
            }
        }
    });

    let (shared_channel, shared_exchange) = (channel.clone(), Arc::new(exchange.clone()));
    let measured = closed_loop(clients, warmup, window, move |_, _| {
        let (channel, exchange, waiting) = (
            shared_channel.clone(),
            shared_exchange.clone(),
            waiting.clone(),
        );
        async move {
            let id = uuid::Uuid::now_v7();
            let (tx, rx) = oneshot::channel();
            if let Ok(mut waiting) = waiting.lock() {
                waiting.insert(id, tx);
            }
            let confirm = channel
                .basic_publish(
                    exchange.as_str().into(),
                    "bench".into(),
                    BasicPublishOptions::default(),
                    id.as_bytes(),
                    BasicProperties::default()
                        .with_delivery_mode(2)
                        .with_message_id(id.to_string().into()),
                )
                .await
                .map_err(|error| error.to_string())?;
            match confirm.await.map_err(|error| error.to_string())? {
                Confirmation::Ack(_) => {}
                other => return Err(format!("not confirmed: {other:?}")),
            }
            tokio::time::timeout(Duration::from_secs(10), rx)
                .await
                .map_err(|_| "not consumed within 10 s".to_string())?
                .map_err(|_| "consumer gone".to_string())
        }
    })
    .await;
    consumer.abort();
    let _ = channel
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await;
    let _ = channel
        .exchange_delete(exchange.as_str().into(), Default::default())
        .await;
    let _ = publisher.close(200, "done".into()).await;
    let _ = consumer_connection.close(200, "done".into()).await;
    Ok(measured)
}
