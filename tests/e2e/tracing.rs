//! One trace follows a request from the HTTP gateway through the gRPC hop into the service,
//! through the outbox and RabbitMQ, to the notification service's handler.

use std::time::Duration;

use jamaa_proto::servicerequest::v1 as requests;
use jamaa_proto::r#type::v1::{Language, LocalizedText};
use jamaa_tests::{Backend, authorized, eventually, finished_spans, spawn_stack};
use opentelemetry::trace::TraceId;
use serde_json::json;

crate::on_both_backends!(
    one_trace_from_the_gateway_to_the_notification,
    follow_the_trace
);

async fn follow_the_trace(backend: Backend) {
    let Some(stack) = spawn_stack(backend).await else {
        return;
    };
    let (_, admin) = stack.create_commune("TRC", 3).await;
    let service = stack
        .requests()
        .create_service(authorized(
            requests::CreateServiceRequest {
                service: Some(requests::ServiceDefinition {
                    code: "trees".into(),
                    name: Some(LocalizedText {
                        fr: "Espaces verts".into(),
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
        .expect("service")
        .into_inner()
        .service
        .expect("service");
    let (_, amina) = stack.register_citizen("TRC", "Amina", Language::Fr).await;

    // A fresh trace id per backend run, as a browser's instrumentation would send.
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let traceparent = format!("00-{trace_id}-a1b2c3d4e5f60718-01");
    jamaa_tests::watch_trace(TraceId::from_hex(&trace_id).expect("trace id"));
    let (status, _, submitted) = stack
        .http_with_headers(
            "POST",
            "/v1/requests",
            Some(&amina),
            Some(json!({
                "requestId": uuid::Uuid::now_v7().to_string(),
                "serviceId": service.id,
                "description": "A fallen tree blocks the road"
            })),
            &[("traceparent", traceparent.as_str())],
        )
        .await;
    assert_eq!(status, 200, "{submitted}");

    let expected = TraceId::from_hex(&trace_id).expect("trace id");
    let names = eventually(
        Duration::from_secs(30),
        "the spans of the trace",
        || async {
            let spans: Vec<_> = finished_spans()
                .into_iter()
                .filter(|span| span.span_context.trace_id() == expected)
                .collect();
            let names: Vec<String> = spans.iter().map(|span| span.name.to_string()).collect();
            let consumed = spans.iter().any(|span| {
                span.name == "handle_event"
                    && span.attributes.iter().any(|kv| {
                        kv.key.as_str() == "event_type"
                            && kv.value.as_str() == "jamaa.events.v1.RequestSubmitted"
                    })
            });
            (names.iter().any(|n| n == "http") && names.iter().any(|n| n == "grpc") && consumed)
                .then_some(names)
        },
    )
    .await;
    assert!(names.len() >= 3, "{names:?}");
    stack.stop().await;
}
