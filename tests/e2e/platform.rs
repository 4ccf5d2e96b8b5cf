//! What operators and other languages' clients rely on: health per service and reflection.

use jamaa_tests::{Backend, spawn_stack};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

const SERVICES: [&str; 4] = [
    "jamaa.identity.v1.IdentityService",
    "jamaa.servicerequest.v1.ServiceRequestService",
    "jamaa.participation.v1.ParticipationService",
    "jamaa.notification.v1.NotificationService",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_reports_health_and_is_listed_by_reflection() {
    let Some(stack) = spawn_stack(Backend::Embedded).await else {
        return;
    };
    let mut health = HealthClient::new(stack.channel());
    for service in SERVICES.iter().copied().chain([""]) {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap_or_else(|error| panic!("health of {service:?}: {error:?}"))
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }

    let mut reflection = ServerReflectionClient::new(stack.channel());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection")
        .into_inner();
    let response = responses
        .message()
        .await
        .expect("a response")
        .expect("not empty");
    let Some(MessageResponse::ListServicesResponse(listed)) = response.message_response else {
        panic!("unexpected reflection answer: {response:?}");
    };
    let names: Vec<String> = listed
        .service
        .into_iter()
        .map(|service| service.name)
        .collect();
    for expected in SERVICES.iter().copied().chain(["grpc.health.v1.Health"]) {
        assert!(
            names.iter().any(|name| name == expected),
            "{expected} missing from {names:?}"
        );
    }
    stack.stop().await;
}

/// On shutdown every service turns NOT_SERVING at once, and an open stream cannot hold the
/// process: the drain ends after the configured timeout (2 s in tests).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_turns_health_not_serving_and_the_drain_is_bounded() {
    let Some(stack) = spawn_stack(Backend::Embedded).await else {
        return;
    };
    let mut health = HealthClient::new(stack.channel());
    let mut watch = health
        .watch(HealthCheckRequest {
            service: SERVICES[1].into(),
        })
        .await
        .expect("watch")
        .into_inner();
    let first = watch.message().await.expect("a status").expect("open");
    assert_eq!(first.status, ServingStatus::Serving as i32);

    let started = std::time::Instant::now();
    let stopping = tokio::spawn(stack.stop());
    let next = tokio::time::timeout(std::time::Duration::from_secs(5), watch.message())
        .await
        .expect("a status change within 5 s")
        .expect("the stream is still open while draining")
        .expect("a status");
    assert_eq!(next.status, ServingStatus::NotServing as i32);
    stopping.await.expect("stopped");
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_secs(8),
        "the drain took {took:?}"
    );
}

/// More concurrent calls than the configured limit: the excess is shed at once with
/// RESOURCE_EXHAUSTED rather than queued without bound; the rest are served; health still
/// answers. (`faults::r8_…` does the same on PostgreSQL, with timings.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_over_the_limit_are_shed() {
    let options = jamaa_tests::Options {
        extra_env: vec![("JAMAA__SERVER__MAX_CONCURRENT_REQUESTS".into(), "1".into())],
        ..Default::default()
    };
    let Some(stack) = jamaa_tests::spawn_stack_with(Backend::Embedded, options).await else {
        return;
    };
    stack.create_commune("SHD", 3).await;
    stack
        .register_citizen("SHD", "Amina", jamaa_proto::r#type::v1::Language::Fr)
        .await;
    // Logins hash a password (tens of milliseconds): 16 at once.
    let calls = (0..16).map(|_| {
        let mut client = stack.identity();
        async move {
            client
                .login(jamaa_proto::identity::v1::LoginRequest {
                    email: "amina@shd.test".into(),
                    password: "citizen-password-1".into(),
                    ..Default::default()
                })
                .await
        }
    });
    let results = futures_util::future::join_all(calls).await;
    let served = results.iter().filter(|result| result.is_ok()).count();
    let shed = results
        .iter()
        .filter(|result| {
            matches!(result, Err(status) if status.code() == tonic::Code::ResourceExhausted)
        })
        .count();
    assert!(served >= 1, "some calls are served");
    assert!(shed >= 1, "some calls are shed");
    assert_eq!(served + shed, 16, "nothing else happens: {results:?}");
    let mut health = HealthClient::new(stack.channel());
    health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health checks are never shed");
    stack.stop().await;
}

/// A service is not ready while its broker is away: health says NOT_SERVING until the broker
/// answers, then SERVING (migrations are applied before the server even listens).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_until_the_broker_is_reachable() {
    let options = jamaa_tests::Options {
        broker_through_proxy: true,
        broker_cut_at_start: true,
        ..Default::default()
    };
    let Some(stack) = jamaa_tests::spawn_stack_with(Backend::Real, options).await else {
        return;
    };
    let mut health = HealthClient::new(stack.channel());
    let status = |health: &mut HealthClient<tonic::transport::Channel>| {
        let mut health = health.clone();
        async move {
            health
                .check(HealthCheckRequest {
                    service: SERVICES[0].into(),
                })
                .await
                .expect("health answers")
                .into_inner()
                .status
        }
    };
    assert_eq!(status(&mut health).await, ServingStatus::NotServing as i32);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(status(&mut health).await, ServingStatus::NotServing as i32);

    stack.broker_proxy.as_ref().expect("proxy").restore();
    jamaa_tests::eventually(std::time::Duration::from_secs(20), "SERVING once the broker is back", || {
        let mut health = health.clone();
        async move { (status(&mut health).await == ServingStatus::Serving as i32).then_some(()) }
    })
    .await;
    stack.stop().await;
}
