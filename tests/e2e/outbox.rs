//! The outbox relay: every event published exactly once by several relays sharing one database,
//! and kept until the bus takes it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use jamaa_events::bus::PublishError;
use jamaa_events::migrations::CreateOutboxEvents;
use jamaa_events::outbox::{OutboxRelay, PassOutcome};
use jamaa_events::{CloudEvent, EventPublisher, Outbox};
use jamaa_proto::events::v1 as events;
use jamaa_settings::{DatabaseSettings, SecretString};
use jamaa_testkit::TestDatabase;
use jamaa_tests::eventually;
use sea_orm::{DatabaseConnection, TransactionTrait};
use sea_orm_migration::{MigrationTrait, MigratorTrait};
use tokio_util::sync::CancellationToken;

struct OutboxOnly;

impl MigratorTrait for OutboxOnly {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateOutboxEvents)]
    }
}

/// Counts what it is given; fails while `failing` is set.
#[derive(Default)]
struct CountingPublisher {
    seen: Mutex<HashMap<uuid::Uuid, usize>>,
    failing: std::sync::atomic::AtomicBool,
    attempts: AtomicUsize,
}

#[async_trait]
impl EventPublisher for CountingPublisher {
    async fn publish(&self, events: &[CloudEvent]) -> Vec<Result<(), PublishError>> {
        self.attempts.fetch_add(events.len(), Ordering::SeqCst);
        if self.failing.load(Ordering::SeqCst) {
            return events
                .iter()
                .map(|_| Err(PublishError("broker away".into())))
                .collect();
        }
        // A little latency, so concurrent relays overlap.
        tokio::time::sleep(Duration::from_millis(2)).await;
        if let Ok(mut seen) = self.seen.lock() {
            for event in events {
                *seen.entry(event.id).or_default() += 1;
            }
        }
        events.iter().map(|_| Ok(())).collect()
    }
}

async fn connect(url: &str) -> DatabaseConnection {
    jamaa_db::connect::<OutboxOnly>(&DatabaseSettings {
        url: SecretString::from(url.to_string()),
        max_connections: 5,
        migrate_on_start: true,
    })
    .await
    .expect("database")
}

async fn add_events(outbox: &Outbox, db: &DatabaseConnection, count: usize) {
    for n in 0..count {
        let txn = db.begin().await.expect("begin");
        outbox
            .add(
                &txn,
                format!("petitions/{n}"),
                &events::PetitionThresholdReached {
                    petition_id: n.to_string(),
                    ..Default::default()
                },
            )
            .await
            .expect("add");
        txn.commit().await.expect("commit");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_relays_on_postgresql_publish_each_event_once() {
    jamaa_tests::init_telemetry();
    let Some(database) = TestDatabase::create("outbox").await else {
        return;
    };
    let db = connect(&database.url).await;
    let outbox = Outbox::new("jamaa/test");
    add_events(&outbox, &db, 300).await;

    let publisher = Arc::new(CountingPublisher::default());
    let shutdown = CancellationToken::new();
    for _ in 0..3 {
        let relay = outbox.relay(
            connect(&database.url).await,
            publisher.clone(),
            Duration::from_millis(20),
        );
        tokio::spawn(relay.run(shutdown.clone()));
    }
    eventually(
        Duration::from_secs(60),
        "all 300 events published",
        || async {
            let seen = publisher.seen.lock().ok()?;
            (seen.len() == 300).then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    shutdown.cancel();
    let seen = publisher.seen.lock().expect("lock").clone();
    let duplicated: Vec<_> = seen.values().filter(|count| **count > 1).collect();
    assert!(
        duplicated.is_empty(),
        "events published more than once: {}",
        duplicated.len()
    );
    database.drop_database().await;
}

/// Five events in a fresh SQLite outbox, and a relay whose first pass met a broker that was
/// away (the publisher still failing).
struct Outage {
    dir: std::path::PathBuf,
    db: DatabaseConnection,
    outbox: Outbox,
    publisher: Arc<CountingPublisher>,
    relay: OutboxRelay,
}

async fn outage() -> Outage {
    jamaa_tests::init_telemetry();
    let dir = std::env::temp_dir().join(format!("jamaa-outbox-{}", uuid::Uuid::new_v4().simple()));
    let db = connect(&format!("sqlite://{}/outbox.db", dir.display())).await;
    let outbox = Outbox::new("jamaa/test");
    add_events(&outbox, &db, 5).await;
    let publisher = Arc::new(CountingPublisher::default());
    publisher.failing.store(true, Ordering::SeqCst);
    let relay = outbox.relay(db.clone(), publisher.clone(), Duration::from_millis(20));
    assert_eq!(
        relay.publish_pending().await.expect("pass"),
        PassOutcome::Failing
    );
    Outage {
        dir,
        db,
        outbox,
        publisher,
        relay,
    }
}

/// After a long outage the failed events wait out a backoff of up to a minute each; the first
/// publish that succeeds again makes them all due, so the backlog drains at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_publishing_works_again_the_backlog_does_not_wait_out_its_backoff() {
    use sea_orm::ConnectionTrait;
    let Outage {
        dir,
        db,
        outbox,
        publisher,
        relay,
    } = outage().await;
    // As after many failed tries: the next one a minute away.
    let later = chrono::Utc::now().timestamp_millis() + 60_000;
    db.execute_unprepared(&format!(
        "UPDATE outbox_events SET attempts = 7, next_attempt_at_ms = {later}"
    ))
    .await
    .expect("backoff");

    // The broker is back; a new event is published at once, and with it the five.
    publisher.failing.store(false, Ordering::SeqCst);
    add_events(&outbox, &db, 1).await;
    let shutdown = CancellationToken::new();
    tokio::spawn(relay.run(shutdown.clone()));
    eventually(
        Duration::from_secs(10),
        "the backlog, well before its backoff",
        || async {
            let seen = publisher.seen.lock().ok()?;
            (seen.len() == 6 && seen.values().all(|count| *count == 1)).then_some(())
        },
    )
    .await;
    shutdown.cancel();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_wait_in_the_outbox_until_the_bus_takes_them() {
    let Outage {
        dir,
        publisher,
        relay,
        ..
    } = outage().await;
    assert!(publisher.seen.lock().expect("lock").is_empty());

    // Back online: the relay, running, delivers all of them after their backoff.
    publisher.failing.store(false, Ordering::SeqCst);
    let shutdown = CancellationToken::new();
    tokio::spawn(relay.run(shutdown.clone()));
    eventually(
        Duration::from_secs(30),
        "the 5 events after the outage",
        || async {
            let seen = publisher.seen.lock().ok()?;
            (seen.len() == 5 && seen.values().all(|count| *count == 1)).then_some(())
        },
    )
    .await;
    shutdown.cancel();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_together_migrate_one_at_a_time() {
    jamaa_tests::init_telemetry();
    let Some(database) = TestDatabase::create("migrate").await else {
        return;
    };
    let replicas: Vec<_> = (0..4)
        .map(|_| {
            let url = database.url.clone();
            tokio::spawn(async move { connect(&url).await })
        })
        .collect();
    for replica in replicas {
        let db = replica.await.expect("a replica started");
        let _ = db.close().await;
    }
    database.drop_database().await;
}
