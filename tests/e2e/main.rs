//! End-to-end tests of the whole platform through its real interfaces: gRPC clients and HTTP on
//! real ports, SQLite + in-process bus and PostgreSQL + RabbitMQ.
//!
//! Each scenario in [`on_both_backends!`] runs twice: `embedded` and `postgres_rabbitmq`. The
//! real run fails when PostgreSQL or RabbitMQ do not answer (see jamaa-testkit for the opt-out).

mod announcements;
mod appointments;
mod assurance;
mod audit;
mod authorization;
mod budgets;
mod comments;
mod consultations;
mod email;
mod events;
mod faults;
mod fuzz;
mod gateway;
mod gateway_operations;
mod identity_matrix;
mod key_rotation;
mod metrics;
mod notifications;
mod open311;
mod outbox;
mod participation_matrix;
mod participation_rules;
mod passwords;
mod petitions;
mod phone;
mod phone_accounts;
mod platform;
mod privacy;
mod proposals;
mod residences;
mod results;
mod rollout;
mod second_factor;
mod service_accounts;
mod service_request_matrix;
mod service_requests;
mod sessions;
mod staff;
mod standalone;
mod statistics;
mod story;
mod throttling;
mod tracing;
mod validation;

/// Runs the async scenario `$scenario(Backend)` once per backend.
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident, $scenario:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                jamaa_tests::within_limit(super::$scenario(jamaa_tests::Backend::Embedded)).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres_rabbitmq() {
                jamaa_tests::within_limit(super::$scenario(jamaa_tests::Backend::Real)).await
            }
        }
    };
    // A measurement that other tests running beside it would spoil (time, memory): ignored in
    // the suite, run one test at a time after it by `scripts/test` (`-- --ignored`).
    ($name:ident, $scenario:ident, alone) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[ignore = "run alone: scripts/test runs it after the suite"]
            async fn embedded() {
                jamaa_tests::within_limit(super::$scenario(jamaa_tests::Backend::Embedded)).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[ignore = "run alone: scripts/test runs it after the suite"]
            async fn postgres_rabbitmq() {
                jamaa_tests::within_limit(super::$scenario(jamaa_tests::Backend::Real)).await
            }
        }
    };
}
