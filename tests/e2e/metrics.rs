//! Prometheus metrics: after a few calls, `GET /metrics` on the metrics port shows the gRPC RED
//! series (an OK and an error code), the outbox backlog and the notification consumer's handled
//! events; the gateway answers `/metrics` on its HTTP port with its request series.
//!
//! The registry is per process and the tests share the process, so the assertions look for
//! series (present, value ≥ 1), never exact totals.

use std::time::Duration;

use jamaa_proto::identity::v1 as identity;
use jamaa_proto::servicerequest::v1 as requests;
use jamaa_proto::r#type::v1::{Language, LocalizedText};
use jamaa_tests::{Backend, authorized, eventually, spawn_stack};

/// `GET url`: (status, content type, body).
async fn get(url: &str) -> (u16, String, String) {
    let (status, content_type, bytes) = jamaa_tests::send("GET", url, &[], String::new()).await;
    (
        status,
        content_type,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

/// The value of the sample whose name and labels are exactly `series`, if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter_map(|line| line.rsplit_once(' '))
        .find(|(name, _)| *name == series)
        .and_then(|(_, value)| value.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_calls_outbox_and_consumers() {
    let Some(stack) = spawn_stack(Backend::Embedded).await else {
        return;
    };
    // Calls: logins (OK), a commune, a citizen (an event for notification), a request.
    let (_, admin) = stack.create_commune("MTR", 3).await;
    let (_, citizen) = stack.register_citizen("MTR", "Meryem", Language::Fr).await;
    let service = stack
        .requests()
        .create_service(authorized(
            requests::CreateServiceRequest {
                service: Some(requests::ServiceDefinition {
                    code: "waste".into(),
                    name: Some(LocalizedText {
                        fr: "Déchets".into(),
                        ..LocalizedText::default()
                    }),
                    description: None,
                    kind: requests::ServiceKind::IncidentReport as i32,
                    channel: requests::ServiceChannel::OnlineAndDesk as i32,
                    ..Default::default()
                }),
            },
            &admin,
        ))
        .await
        .expect("the admin adds a service")
        .into_inner()
        .service
        .expect("service");
    stack
        .requests()
        .submit_request(authorized(
            requests::SubmitRequestRequest {
                request_id: uuid::Uuid::now_v7().to_string(),
                service_id: service.id,
                description: "Bins not collected for a week.".into(),
                ..Default::default()
            },
            &citizen,
        ))
        .await
        .expect("the citizen submits");
    // A failing call: a wrong password.
    let refused = stack
        .identity()
        .login(identity::LoginRequest {
            email: "meryem@mtr.test".into(),
            password: "not-the-password".into(),
            ..Default::default()
        })
        .await
        .expect_err("a wrong password is refused");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);

    let metrics_url = format!("http://127.0.0.1:{}/metrics", stack.stack.metrics_port);
    let login = r#"service="jamaa.identity.v1.IdentityService",method="Login""#;
    let text = eventually(
        Duration::from_secs(10),
        "the notification consumer's series",
        || async {
            let (status, _, text) = get(&metrics_url).await;
            assert_eq!(status, 200);
            let handled = r#"jamaa_events_handled_total{consumer="notification",event_type="jamaa.events.v1.CitizenRegistered",outcome="ok"}"#;
            value(&text, handled).is_some_and(|n| n >= 1.0).then_some(text)
        },
    )
    .await;
    let (_, content_type, _) = get(&metrics_url).await;
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    for series in [
        format!(r#"jamaa_grpc_server_requests_total{{{login},code="OK"}}"#),
        format!(r#"jamaa_grpc_server_requests_total{{{login},code="UNAUTHENTICATED"}}"#),
        format!(r#"jamaa_grpc_server_request_duration_seconds_count{{{login}}}"#),
        r#"jamaa_grpc_server_requests_total{service="jamaa.servicerequest.v1.ServiceRequestService",method="SubmitRequest",code="OK"}"#.to_string(),
        r#"jamaa_outbox_published_total{source="jamaa/identity"}"#.to_string(),
        r#"jamaa_event_consumer_lag_seconds_count{consumer="notification"}"#.to_string(),
    ] {
        assert!(
            value(&text, &series).is_some_and(|n| n >= 1.0),
            "no {series} in:\n{text}"
        );
    }
    assert!(
        value(
            &text,
            r#"jamaa_outbox_pending_events{source="jamaa/identity"}"#
        )
        .is_some(),
        "no outbox backlog in:\n{text}"
    );
    assert!(
        !text.contains("grpc.health.v1"),
        "health checks are not recorded"
    );

    // The gateway answers /metrics on its own port, with its request series.
    let (status, _, _) = get(&format!("{}/healthz", stack.stack.http_url())).await;
    assert_eq!(status, 200);
    let (status, content_type, text) = get(&format!("{}/metrics", stack.stack.http_url())).await;
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let healthz = r#"jamaa_http_requests_total{method="GET",route="/healthz",status="200"}"#;
    assert!(
        value(&text, healthz).is_some_and(|n| n >= 1.0),
        "no {healthz} in:\n{text}"
    );
    stack.stop().await;
}
