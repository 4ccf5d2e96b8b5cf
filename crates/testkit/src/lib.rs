//! Test helpers shared by the integration tests.
//!
//! Real servers: tests that need PostgreSQL or RabbitMQ call [`postgres_admin_url`] /
//! [`amqp_url`]. When a server does not answer, they FAIL with a message saying how to start it —
//! unless `JAMAA_TEST_SKIP_REAL_SERVERS=1` is set (an explicit opt-out for machines without them;
//! CI never sets it), in which case they return `None` and the test is skipped with a notice.
//!
//! Environment: `JAMAA_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`),
//! `JAMAA_TEST_AMQP_URL` (default `amqp://guest:guest@127.0.0.1:5672/%2f`).

mod proxy;
mod sms;
mod smtp;

use std::time::Duration;

use sea_orm::{ConnectionTrait, Database};

pub use proxy::FaultProxy;
pub use sms::{ReceivedSms, SMS_PROVIDER_KEY, SmsProvider};
pub use smtp::{ReceivedMail, SmtpSink};

/// The opt-out variable.
pub const SKIP_REAL_SERVERS_ENV: &str = "JAMAA_TEST_SKIP_REAL_SERVERS";

fn skip_allowed() -> bool {
    std::env::var(SKIP_REAL_SERVERS_ENV).is_ok_and(|value| value == "1")
}

fn unavailable(what: &str, url: &str, how: &str) -> Option<String> {
    if skip_allowed() {
        eprintln!("SKIPPED: {what} at {url} does not answer and {SKIP_REAL_SERVERS_ENV}=1");
        None
    } else {
        panic!(
            "{what} at {url} does not answer. Start it ({how}), point the tests at one with the \
             environment variable named in jamaa-testkit's docs, or opt out explicitly with \
             {SKIP_REAL_SERVERS_ENV}=1."
        );
    }
}

/// The PostgreSQL server's admin URL, checked to answer.
pub async fn postgres_admin_url() -> Option<String> {
    let url = std::env::var("JAMAA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    let answered =
        tokio::time::timeout(Duration::from_secs(5), Database::connect(url.as_str())).await;
    match answered {
        Ok(Ok(db)) => {
            let _ = db.close().await;
            Some(url)
        }
        _ => unavailable(
            "PostgreSQL",
            &url,
            "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
        ),
    }
}

/// A fresh, empty PostgreSQL database for one test.
pub struct TestDatabase {
    admin_url: String,
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    /// Creates `jamaa_test_<random>`; `None` when skipped (see the crate docs).
    pub async fn create(label: &str) -> Option<TestDatabase> {
        let admin_url = postgres_admin_url().await?;
        let name = format!("jamaa_test_{label}_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(admin_url.as_str())
            .await
            .unwrap_or_else(|error| panic!("PostgreSQL: {error}"));
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap_or_else(|error| panic!("cannot create database {name}: {error}"));
        let _ = admin.close().await;
        let base = admin_url
            .rsplit_once('/')
            .map(|(base, _)| base.to_string())
            .unwrap_or_else(|| admin_url.clone());
        Some(TestDatabase {
            url: format!("{base}/{name}"),
            admin_url,
            name,
        })
    }

    /// Drops the database (best effort).
    pub async fn drop_database(self) {
        if let Ok(admin) = Database::connect(self.admin_url.as_str()).await {
            let _ = admin
                .execute_unprepared(&format!(
                    "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                    self.name
                ))
                .await;
            let _ = admin.close().await;
        }
    }
}

/// The RabbitMQ URL, checked to answer.
pub async fn amqp_url() -> Option<String> {
    let url = std::env::var("JAMAA_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_string());
    let connected = tokio::time::timeout(
        Duration::from_secs(5),
        lapin::Connection::connect(&url, lapin::ConnectionProperties::default()),
    )
    .await;
    match connected {
        Ok(Ok(connection)) => {
            let _ = connection.close(200, "checked".into()).await;
            Some(url)
        }
        _ => unavailable("RabbitMQ", &url, "rabbitmq-server -detached"),
    }
}

/// Deletes a test's exchanges and queues: `exchange`, `exchange.dlx`, and for each consumer
/// `exchange.consumer` and `exchange.consumer.dead-letter`.
pub async fn delete_rabbitmq_topology(url: &str, exchange: &str, consumers: &[&str]) {
    let Ok(connection) =
        lapin::Connection::connect(url, lapin::ConnectionProperties::default()).await
    else {
        return;
    };
    if let Ok(channel) = connection.create_channel().await {
        for consumer in consumers {
            for queue in [
                format!("{exchange}.{consumer}"),
                format!("{exchange}.{consumer}.dead-letter"),
            ] {
                let _ = channel
                    .queue_delete(
                        queue.as_str().into(),
                        lapin::options::QueueDeleteOptions::default(),
                    )
                    .await;
            }
        }
        for name in [exchange.to_string(), format!("{exchange}.dlx")] {
            let _ = channel
                .exchange_delete(
                    name.as_str().into(),
                    lapin::options::ExchangeDeleteOptions::default(),
                )
                .await;
        }
    }
    let _ = connection.close(200, "cleaned up".into()).await;
}

/// Polls `check` every 50 ms until it returns `Some`, or panics after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
