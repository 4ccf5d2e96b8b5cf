//! What every service is given by the process that hosts it (its own binary, or the all-in-one).

use jamaa_events::{EventBus, Outbox, Subscription};
use jamaa_settings::EventsSettings;
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

/// A service's share of the process: its own database, the event bus, and the shutdown signal.
#[derive(Clone)]
pub struct ServiceContext {
    /// The service's own database, migrated.
    pub db: DatabaseConnection,
    pub bus: EventBus,
    pub events: EventsSettings,
    /// Cancelled when the process shuts down; background tasks stop on it.
    pub shutdown: CancellationToken,
}

impl ServiceContext {
    /// Starts the relay that publishes `outbox`'s events from this service's database.
    pub fn start_outbox_relay(&self, outbox: &Outbox) {
        let relay = outbox.relay(
            self.db.clone(),
            self.bus.publisher(),
            std::time::Duration::from_millis(self.events.relay_poll_interval_ms),
        );
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move { relay.run(shutdown).await });
    }

    /// Completes once the event bus is reachable (a readiness gate for the server).
    pub fn bus_reachable(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let (bus, shutdown) = (self.bus.clone(), self.shutdown.clone());
        async move { bus.wait_until_reachable(shutdown).await }
    }

    /// Starts consuming events for `subscription`.
    pub async fn subscribe(&self, subscription: Subscription) {
        let _task = self
            .bus
            .subscribe(subscription, self.shutdown.clone())
            .await;
    }
}

impl ServiceContext {
    /// Opens the service's database (migrating it with `M` when configured) and its event bus.
    pub async fn connect<M: sea_orm_migration::MigratorTrait>(
        database: &jamaa_settings::DatabaseSettings,
        events: &EventsSettings,
        shutdown: CancellationToken,
    ) -> Result<ServiceContext, StartError> {
        let db = jamaa_db::connect::<M>(database)
            .await
            .map_err(StartError::Database)?;
        let bus = EventBus::from_settings(events).map_err(StartError::Bus)?;
        Ok(ServiceContext {
            db,
            bus,
            events: events.clone(),
            shutdown,
        })
    }
}

/// A service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("database: {0}")]
    Database(sea_orm::DbErr),
    #[error("event bus: {0}")]
    Bus(jamaa_events::BusError),
    #[error("cannot listen: {0}")]
    Listen(#[from] std::io::Error),
    #[error("{0}")]
    Other(String),
}
