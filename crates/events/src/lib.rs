//! Integration events, the one way Jamaa services tell each other what happened.
//!
//! The path of an event (see the README's "Events" section):
//! 1. a service changes state and, in the SAME database transaction, adds the event to its
//!    [`Outbox`] (table `outbox_events`), then commits with [`Outbox::commit`];
//! 2. the [`OutboxRelay`] claims unsent rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so several
//!    replicas share the work), publishes them as CloudEvents and marks a row sent only once the
//!    bus confirmed it; failures are retried with backoff, nothing is dropped;
//! 3. the [`EventBus`] (RabbitMQ, or the in-process bus on a laptop) delivers each event to every
//!    subscribed consumer; a consumer's [`EventHandler`] records the event id in its own
//!    transaction with [`inbox::try_claim`], so a redelivered event has no second effect;
//! 4. a handler that keeps failing sends the message to the consumer's dead-letter queue after the
//!    configured delivery limit; the queue keeps flowing.

pub mod bus;
pub mod envelope;
pub mod inbox;
pub mod migrations;
pub mod outbox;

pub use bus::{BusError, EventBus, EventHandler, EventPublisher, HandlerError, Subscription};
pub use envelope::{CloudEvent, DecodeError};
pub use outbox::{Outbox, OutboxRelay};
