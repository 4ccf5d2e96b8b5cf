//! The transactional outbox: events written with the state change, published by a relay.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use sea_orm::entity::prelude::*;
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DatabaseTransaction, FromQueryResult,
    QueryFilter, Set, Statement, TransactionTrait,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::bus::EventPublisher;
use crate::envelope::CloudEvent;

/// One event waiting to be (or already) published.
pub mod outbox_event {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "outbox_events")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub event_type: String,
        pub source: String,
        pub subject: String,
        pub occurred_at_ms: i64,
        pub payload: Vec<u8>,
        /// W3C trace context as a JSON object.
        pub trace_headers: String,
        pub attempts: i32,
        pub next_attempt_at_ms: i64,
        /// A relay holds the row until then (0: free).
        pub locked_until_ms: i64,
        pub sent_at_ms: Option<i64>,
        pub last_error: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A service's outbox: where it adds events inside its business transactions.
#[derive(Clone)]
pub struct Outbox {
    source: String,
    wake: Arc<Notify>,
    /// Event types whose payload carries a secret (a one-time code, an invitation token): the
    /// relay blanks their stored payload once the broker has them.
    secret_types: Arc<Vec<String>>,
}

impl Outbox {
    /// An outbox for events emitted by `source` (e.g. `jamaa/identity`).
    pub fn new(source: &str) -> Self {
        Outbox {
            source: source.to_string(),
            wake: Arc::new(Notify::new()),
            secret_types: Arc::new(Vec::new()),
        }
    }

    /// Marks the event types (full names, e.g. `jamaa.events.v1.StaffInvited`) whose stored
    /// payload is erased as soon as it is published: the secret it carries then lives only in
    /// the broker until its consumer took it.
    pub fn with_secret_payloads(mut self, event_types: &[String]) -> Self {
        self.secret_types = Arc::new(event_types.to_vec());
        self
    }

    /// The CloudEvents `source` of this outbox's events.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Adds `payload` as an event about `subject`, inside the caller's transaction `db`.
    pub async fn add<C: ConnectionTrait, M: prost::Message + prost::Name>(
        &self,
        db: &C,
        subject: impl Into<String>,
        payload: &M,
    ) -> Result<CloudEvent, DbErr> {
        let event = CloudEvent::new(&self.source, subject, payload);
        let trace_headers = serde_json::to_string(&event.trace_headers)
            .map_err(|error| DbErr::Custom(format!("trace headers: {error}")))?;
        let row = outbox_event::ActiveModel {
            id: Set(event.id),
            event_type: Set(event.event_type.clone()),
            source: Set(event.source.clone()),
            subject: Set(event.subject.clone()),
            occurred_at_ms: Set(event.time.timestamp_millis()),
            payload: Set(event.data.clone()),
            trace_headers: Set(trace_headers),
            attempts: Set(0),
            next_attempt_at_ms: Set(event.time.timestamp_millis()),
            locked_until_ms: Set(0),
            sent_at_ms: Set(None),
            last_error: Set(None),
        };
        outbox_event::Entity::insert(row)
            .exec_without_returning(db)
            .await?;
        Ok(event)
    }

    /// Commits `txn` and wakes the relay, so the events it added go out at once.
    pub async fn commit(&self, txn: DatabaseTransaction) -> Result<(), DbErr> {
        txn.commit().await?;
        self.wake.notify_one();
        Ok(())
    }

    /// The relay that publishes this outbox's rows from `db` to `publisher`.
    pub fn relay(
        &self,
        db: DatabaseConnection,
        publisher: Arc<dyn EventPublisher>,
        poll_interval: Duration,
    ) -> OutboxRelay {
        OutboxRelay {
            source: self.source.clone(),
            db,
            publisher,
            wake: self.wake.clone(),
            secret_types: self.secret_types.clone(),
            poll_interval,
            batch_size: 256,
            lease: Duration::from_secs(30),
            retention: Duration::from_secs(7 * 24 * 3600),
            failing: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

/// Publishes outbox rows. Safe to run in several replicas on PostgreSQL: rows are claimed with
/// `FOR UPDATE SKIP LOCKED` and leased, so each is published by one relay at a time; a relay that
/// dies mid-way leaves its rows to be claimed again when the lease ends (consumers deduplicate).
///
/// Metrics (labelled with the outbox's `source`): events published and failed, and after each
/// pass the backlog (`jamaa_outbox_pending_events`, `jamaa_outbox_oldest_pending_age_seconds`).
pub struct OutboxRelay {
    /// The CloudEvents `source` of the outbox, the label of its metrics.
    source: String,
    db: DatabaseConnection,
    publisher: Arc<dyn EventPublisher>,
    wake: Arc<Notify>,
    /// See [`Outbox::with_secret_payloads`].
    secret_types: Arc<Vec<String>>,
    poll_interval: Duration,
    batch_size: u64,
    lease: Duration,
    retention: Duration,
    /// Set when a publish failed, cleared by the next that succeeds: then the events waiting
    /// out their own backoff (after a broker outage, up to a minute each) are made due at once.
    failing: std::sync::atomic::AtomicBool,
}

impl OutboxRelay {
    /// Runs until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut last_cleanup = std::time::Instant::now();
        let mut last_backlog: Option<std::time::Instant> = None;
        loop {
            match self.publish_pending().await {
                Ok(PassOutcome::Drained) => {}
                Ok(PassOutcome::Failing) => {
                    tracing::debug!("outbox relay: publishing failed; waiting before retrying")
                }
                Err(error) => tracing::warn!(%error, "outbox relay: database error"),
            }
            // The backlog gauges: at most once a second (under load a pass follows every commit,
            // and counting the unsent rows each time would cost more than the pass).
            if last_backlog.is_none_or(|at| at.elapsed() >= BACKLOG_EVERY) {
                last_backlog = Some(std::time::Instant::now());
                if let Err(error) = self.record_backlog().await {
                    tracing::warn!(%error, "outbox relay: could not measure the backlog");
                }
            }
            if last_cleanup.elapsed() > Duration::from_secs(3600) {
                last_cleanup = std::time::Instant::now();
                if let Err(error) = self.delete_old_sent().await {
                    tracing::warn!(%error, "outbox relay: cleanup failed");
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.poll_interval) => {}
            }
        }
    }

    /// Publishes every due row, batch after batch, until none is left or publishing fails.
    pub async fn publish_pending(&self) -> Result<PassOutcome, DbErr> {
        loop {
            let rows = self.claim().await?;
            if rows.is_empty() {
                return Ok(PassOutcome::Drained);
            }
            let events: Vec<CloudEvent> = rows.iter().map(to_cloud_event).collect();
            let results = self.publisher.publish(&events).await;
            let now = now_ms();
            let mut sent = Vec::new();
            let mut failed = false;
            for (row, result) in rows.iter().zip(results) {
                match result {
                    Ok(()) => sent.push(row.id),
                    Err(error) => {
                        failed = true;
                        let delay = backoff(row.attempts);
                        outbox_event::Entity::update_many()
                            .col_expr(outbox_event::Column::LockedUntilMs, Expr::value(0))
                            .col_expr(
                                outbox_event::Column::NextAttemptAtMs,
                                Expr::value(now + delay.as_millis() as i64),
                            )
                            .col_expr(
                                outbox_event::Column::LastError,
                                Expr::value(error.to_string()),
                            )
                            .filter(outbox_event::Column::Id.eq(row.id))
                            .exec(&self.db)
                            .await?;
                    }
                }
            }
            if failed {
                self.failing
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            } else if !sent.is_empty()
                && self
                    .failing
                    .swap(false, std::sync::atomic::Ordering::Relaxed)
            {
                // The publisher works again: what failed during the outage need not wait.
                let due = outbox_event::Entity::update_many()
                    .col_expr(outbox_event::Column::NextAttemptAtMs, Expr::value(0))
                    .filter(outbox_event::Column::SentAtMs.is_null())
                    .filter(outbox_event::Column::NextAttemptAtMs.gt(now))
                    .exec(&self.db)
                    .await?
                    .rows_affected;
                tracing::info!(
                    due,
                    "outbox relay: publishing works again; the waiting events are due"
                );
            }
            let failures = (rows.len() - sent.len()) as u64;
            jamaa_telemetry::metrics::outbox_published(&self.source, sent.len() as u64, failures);
            if !sent.is_empty() {
                let txn = self.relay_transaction().await?;
                outbox_event::Entity::update_many()
                    .col_expr(outbox_event::Column::SentAtMs, Expr::value(now))
                    .col_expr(outbox_event::Column::LockedUntilMs, Expr::value(0))
                    .filter(outbox_event::Column::Id.is_in(sent.clone()))
                    .exec(&txn)
                    .await?;
                if !self.secret_types.is_empty() {
                    outbox_event::Entity::update_many()
                        .col_expr(outbox_event::Column::Payload, Expr::value(Vec::<u8>::new()))
                        .filter(outbox_event::Column::Id.is_in(sent))
                        .filter(
                            outbox_event::Column::EventType
                                .is_in(self.secret_types.iter().cloned()),
                        )
                        .exec(&txn)
                        .await?;
                }
                txn.commit().await?;
            }
            if failed {
                return Ok(PassOutcome::Failing);
            }
        }
    }

    /// Leases up to `batch_size` due rows to this relay.
    async fn claim(&self) -> Result<Vec<outbox_event::Model>, DbErr> {
        let now = now_ms();
        let until = now + self.lease.as_millis() as i64;
        let backend = self.db.get_database_backend();
        let sql = match backend {
            DatabaseBackend::Postgres => {
                "UPDATE outbox_events SET locked_until_ms = $1, attempts = attempts + 1 \
                 WHERE id IN (SELECT id FROM outbox_events \
                   WHERE sent_at_ms IS NULL AND next_attempt_at_ms <= $2 AND locked_until_ms <= $2 \
                   ORDER BY occurred_at_ms, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
                 RETURNING *"
            }
            _ => {
                "UPDATE outbox_events SET locked_until_ms = $1, attempts = attempts + 1 \
                 WHERE id IN (SELECT id FROM outbox_events \
                   WHERE sent_at_ms IS NULL AND next_attempt_at_ms <= $2 AND locked_until_ms <= $2 \
                   ORDER BY occurred_at_ms, id LIMIT $3) \
                 RETURNING *"
            }
        };
        let txn = self.relay_transaction().await?;
        let rows = txn
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                sql,
                [until.into(), now.into(), (self.batch_size as i64).into()],
            ))
            .await?;
        txn.commit().await?;
        let mut models = rows
            .iter()
            .map(|row| outbox_event::Model::from_query_result(row, ""))
            .collect::<Result<Vec<_>, _>>()?;
        models.sort_by_key(|row| (row.occurred_at_ms, row.id));
        Ok(models)
    }

    /// A transaction for the relay's own bookkeeping (a claim, a mark-sent). On PostgreSQL it
    /// commits without waiting for the disk (`synchronous_commit = off`): a crash of the database
    /// may forget the last such commits (at most ~0.6 s of them, never half of one), and that
    /// only makes the relay publish those events again, which every consumer deduplicates. The
    /// business transactions that add events keep waiting for the disk, as does every consumer.
    async fn relay_transaction(&self) -> Result<DatabaseTransaction, DbErr> {
        let txn = self.db.begin().await?;
        if txn.get_database_backend() == DatabaseBackend::Postgres {
            txn.execute_unprepared("SET LOCAL synchronous_commit = off")
                .await?;
        }
        Ok(txn)
    }

    /// Sets the backlog metrics from ONE query: how many rows are unsent, and the oldest's age.
    async fn record_backlog(&self) -> Result<(), DbErr> {
        let backend = self.db.get_database_backend();
        let row = self
            .db
            .query_one_raw(Statement::from_string(
                backend,
                "SELECT COUNT(*) AS pending, MIN(occurred_at_ms) AS oldest_ms \
                 FROM outbox_events WHERE sent_at_ms IS NULL",
            ))
            .await?;
        let (pending, oldest_ms) = match row {
            Some(row) => (
                row.try_get::<i64>("", "pending")?,
                row.try_get::<Option<i64>>("", "oldest_ms")?,
            ),
            None => (0, None),
        };
        let oldest_age = oldest_ms.map(|occurred_at_ms| {
            Duration::from_millis(u64::try_from(now_ms() - occurred_at_ms).unwrap_or_default())
        });
        jamaa_telemetry::metrics::outbox_backlog(
            &self.source,
            u64::try_from(pending).unwrap_or_default(),
            oldest_age,
        );
        Ok(())
    }

    async fn delete_old_sent(&self) -> Result<(), DbErr> {
        let cutoff = now_ms() - self.retention.as_millis() as i64;
        outbox_event::Entity::delete_many()
            .filter(outbox_event::Column::SentAtMs.lt(cutoff))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}

/// How often a running relay measures its backlog.
const BACKLOG_EVERY: Duration = Duration::from_secs(1);

/// How a relay pass ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassOutcome {
    /// Nothing due is left.
    Drained,
    /// Some events could not be published; they will be retried after their backoff.
    Failing,
}

fn to_cloud_event(row: &outbox_event::Model) -> CloudEvent {
    let trace_headers: BTreeMap<String, String> =
        serde_json::from_str(&row.trace_headers).unwrap_or_default();
    CloudEvent {
        id: row.id,
        source: row.source.clone(),
        event_type: row.event_type.clone(),
        subject: row.subject.clone(),
        time: Utc
            .timestamp_millis_opt(row.occurred_at_ms)
            .single()
            .unwrap_or_else(Utc::now),
        data: row.payload.clone(),
        trace_headers,
    }
}

/// Exponential backoff after `attempts` failures: 0.5 s doubling, at most 60 s.
fn backoff(attempts: i32) -> Duration {
    let exponent = attempts.clamp(0, 7) as u32;
    Duration::from_millis(500u64 * 2u64.pow(exponent)).min(Duration::from_secs(60))
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The relay's bookkeeping commits without waiting for the disk; everything else waits.
    #[tokio::test]
    async fn on_postgresql_only_the_relays_bookkeeping_commits_asynchronously() {
        let Some(database) = jamaa_testkit::TestDatabase::create("relay_commit").await else {
            return;
        };
        // One connection: the business transactions below run on the relay's own.
        let mut options = sea_orm::ConnectOptions::new(database.url.as_str());
        options.max_connections(1);
        let db = sea_orm::Database::connect(options).await.expect("connect");
        let relay = Outbox::new("jamaa/test").relay(
            db.clone(),
            Arc::new(crate::bus::InProcessBus::new(3)),
            Duration::from_secs(1),
        );
        let setting = async |txn: &DatabaseTransaction| {
            txn.query_one_raw(Statement::from_string(
                DatabaseBackend::Postgres,
                "SHOW synchronous_commit",
            ))
            .await
            .expect("SHOW")
            .expect("a row")
            .try_get_by_index::<String>(0)
            .expect("a text")
        };
        let bookkeeping = relay.relay_transaction().await.expect("begin");
        assert_eq!(setting(&bookkeeping).await, "off");
        bookkeeping.commit().await.expect("commit");
        // SET LOCAL ends with its transaction: the pooled connection is back to the default.
        let business = db.begin().await.expect("begin");
        assert_eq!(setting(&business).await, "on");
        business.commit().await.expect("commit");
        db.close().await.expect("close");
        database.drop_database().await;
    }

    #[test]
    fn backoff_grows_and_is_bounded() {
        assert_eq!(backoff(0), Duration::from_millis(500));
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert!(backoff(3) > backoff(2));
        assert_eq!(backoff(50), Duration::from_secs(60));
    }
}
