//! The event guarantees, tested rather than assumed: duplicates have one effect, a broker outage
//! delays events and never drops them, a poison message is dead-lettered while the queue keeps
//! flowing, and any plain AMQP client can read the CloudEvents with their trace context.

use std::time::Duration;

use futures_util::StreamExt;
use jamaa_events::{CloudEvent, EventBus};
use jamaa_proto::events::v1 as events;
use jamaa_proto::servicerequest::v1 as requests;
use jamaa_proto::r#type::v1::Language;
use jamaa_tests::{
    Backend, Options, TestStack, authorized, eventually, spawn_stack, spawn_stack_with,
};
use lapin::options::{BasicGetOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use prost::Message;

crate::on_both_backends!(a_redelivered_event_has_one_effect, duplicates);
crate::on_both_backends!(a_poison_event_is_dead_lettered_and_the_queue_flows, poison);

fn status_changed(citizen_id: &str, tracking_code: &str) -> CloudEvent {
    status_changed_about(
        &format!("requests/{tracking_code}"),
        citizen_id,
        tracking_code,
    )
}

/// A status change with the subject `subject` (events about one subject are handled in order).
fn status_changed_about(subject: &str, citizen_id: &str, tracking_code: &str) -> CloudEvent {
    CloudEvent::new(
        "jamaa/service-request",
        subject,
        &events::RequestStatusChanged {
            request_id: uuid::Uuid::now_v7().to_string(),
            commune_id: uuid::Uuid::now_v7().to_string(),
            citizen_id: citizen_id.to_string(),
            tracking_code: tracking_code.to_string(),
            service_code: "waste".into(),
            old_status: requests::RequestStatus::Received as i32,
            new_status: requests::RequestStatus::InProgress as i32,
            public_note: String::new(),
            changed_by: uuid::Uuid::now_v7().to_string(),
            change_time: None,
        },
    )
}

async fn publish(stack: &TestStack, events: &[CloudEvent]) {
    for result in stack.stack.bus.publisher().publish(events).await {
        result.expect("the bus accepts the event");
    }
}

async fn duplicates(backend: Backend) {
    let Some(stack) = spawn_stack(backend).await else {
        return;
    };
    stack.create_commune("DUP", 3).await;
    let (amina_id, amina) = stack.register_citizen("DUP", "Amina", Language::Fr).await;

    // The same event three times (as a broker may redeliver it), then a marker after it about
    // the same subject.
    let event = status_changed(&amina_id, "DUP-2026-000001");
    publish(&stack, &[event.clone(), event.clone()]).await;
    publish(&stack, std::slice::from_ref(&event)).await;
    publish(
        &stack,
        &[status_changed_about(
            &event.subject,
            &amina_id,
            "DUP-MARKER",
        )],
    )
    .await;
    // Events about one subject are handled in order: once the marker is in, the copies were.
    stack.wait_for_notification(&amina, "DUP-MARKER").await;

    let copies = stack
        .inbox(&amina)
        .await
        .into_iter()
        .filter(|n| n.title.contains("DUP-2026-000001") || n.body.contains("DUP-2026-000001"))
        .count();
    assert_eq!(copies, 1, "three deliveries of one event, one notification");
    stack.stop().await;
}

async fn poison(backend: Backend) {
    let Some(stack) = spawn_stack(backend).await else {
        return;
    };
    stack.create_commune("DLQ", 3).await;
    let (amina_id, amina) = stack.register_citizen("DLQ", "Amina", Language::Fr).await;

    // A RequestStatusChanged whose payload cannot be decoded: the handler fails every time.
    let mut poison = status_changed(&amina_id, "POISON");
    poison.data = vec![0x0A, 0xFF, 0xFF];
    publish(&stack, &[poison.clone()]).await;
    publish(&stack, &[status_changed(&amina_id, "AFTER-POISON")]).await;
    stack.wait_for_notification(&amina, "AFTER-POISON").await;

    match (&stack.stack.bus, &stack.amqp_url) {
        (EventBus::InProcess(bus), _) => {
            let letters = bus.dead_letters();
            assert!(
                letters.iter().any(|letter| letter.event.id == poison.id && letter.consumer == "notification"),
                "the poison event is dead-lettered: {letters:?}"
            );
        }
        (EventBus::RabbitMq(_), Some(url)) => {
            let connection =
                lapin::Connection::connect(url, lapin::ConnectionProperties::default())
                    .await
                    .expect("connect");
            let channel = connection.create_channel().await.expect("channel");
            let queue = format!("{}.notification.dead-letter", stack.exchange);
            let id = eventually(Duration::from_secs(30), "the dead-lettered message", || {
                let channel = &channel;
                let queue = queue.clone();
                async move {
                    let message = channel
                        .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
                        .await
                        .ok()??;
                    header(&message.delivery.properties, "cloudEvents:id")
                }
            })
            .await;
            assert_eq!(id, poison.id.to_string());
            let _ = connection.close(200, "done".into()).await;
        }
        (EventBus::RabbitMq(_), None) => panic!("a RabbitMQ stack without a URL"),
    }
    stack.stop().await;
}

fn header(properties: &lapin::BasicProperties, key: &str) -> Option<String> {
    match properties.headers().as_ref()?.inner().get(key)? {
        AMQPValue::LongString(value) => String::from_utf8(value.as_bytes().to_vec()).ok(),
        AMQPValue::ShortString(value) => Some(value.as_str().to_string()),
        _ => None,
    }
}

/// A plain AMQP client bound to the exchange reads a CloudEvent, and the W3C trace context that
/// the gRPC call carried travels on in the message headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_amqp_client_reads_cloud_events_with_trace_context() {
    let Some(stack) = spawn_stack(Backend::Real).await else {
        return;
    };
    let url = stack.amqp_url.clone().expect("amqp url");
    let connection = lapin::Connection::connect(&url, lapin::ConnectionProperties::default())
        .await
        .expect("connect");
    let channel = connection.create_channel().await.expect("channel");
    let queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("declare");
    channel
        .queue_bind(
            queue.name().clone(),
            stack.exchange.as_str().into(),
            "jamaa.events.v1.RequestSubmitted".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind");

    let (_, admin) = stack.create_commune("AMQ", 3).await;
    let service_id = stack.create_service(&admin, "roads").await.id;
    let (_, amina) = stack.register_citizen("AMQ", "Amina", Language::Fr).await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut request = authorized(
        requests::SubmitRequestRequest {
            request_id: uuid::Uuid::now_v7().to_string(),
            service_id,
            description: "Pothole".into(),
            ..Default::default()
        },
        &amina,
    );
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-00f067aa0ba902b7-01")
            .parse()
            .expect("metadata"),
    );
    let submitted = stack
        .requests()
        .submit_request(request)
        .await
        .expect("submit")
        .into_inner()
        .request
        .expect("request");

    let mut consumer = channel
        .basic_consume(
            queue.name().clone(),
            "test-reader".into(),
            lapin::options::BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("consume");
    let delivery = tokio::time::timeout(Duration::from_secs(30), consumer.next())
        .await
        .expect("a message within 30 s")
        .expect("stream open")
        .expect("delivery");
    let properties = &delivery.properties;
    assert_eq!(
        header(properties, "cloudEvents:specversion").as_deref(),
        Some("1.0")
    );
    assert_eq!(
        header(properties, "cloudEvents:type").as_deref(),
        Some("jamaa.events.v1.RequestSubmitted")
    );
    assert_eq!(
        header(properties, "cloudEvents:source").as_deref(),
        Some("jamaa/service-request")
    );
    assert_eq!(
        header(properties, "cloudEvents:subject"),
        Some(format!("requests/{}", submitted.id))
    );
    let id = header(properties, "cloudEvents:id").expect("id");
    assert_eq!(
        uuid::Uuid::parse_str(&id).expect("uuid").get_version_num(),
        7
    );
    assert!(header(properties, "cloudEvents:time").is_some());
    assert_eq!(
        properties
            .content_type()
            .as_ref()
            .map(|value| value.as_str()),
        Some("application/protobuf")
    );
    let traceparent = header(properties, "traceparent").expect("traceparent");
    assert!(
        traceparent.contains(trace_id),
        "the caller's trace continues through the event: {traceparent}"
    );
    let payload =
        events::RequestSubmitted::decode(delivery.data.as_slice()).expect("protobuf payload");
    assert_eq!(payload.tracking_code, submitted.tracking_code);

    let _ = connection.close(200, "done".into()).await;
    stack.stop().await;
}

/// With the broker unreachable, writes still succeed; every event arrives once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_delays_events_and_never_drops_them() {
    let options = Options {
        broker_through_proxy: true,
        relay_poll_interval_ms: Some(200),
        ..Options::default()
    };
    let Some(stack) = spawn_stack_with(Backend::Real, options).await else {
        return;
    };
    let (_, admin) = stack.create_commune("OUT", 3).await;
    let service_id = stack.create_service(&admin, "roads").await.id;
    let (_, amina) = stack.register_citizen("OUT", "Amina", Language::Fr).await;
    let officer = stack
        .create_staff(
            &admin,
            "officer@out.test",
            &[jamaa_proto::identity::v1::Role::CaseOfficer],
        )
        .await;
    // The broker is reachable at first: the receipt of a first request arrives.
    let first = submit(&stack, &amina, &service_id).await;
    stack
        .wait_for_notification(&amina, &first.tracking_code)
        .await;

    let proxy = stack.broker_proxy.as_ref().expect("proxy");
    proxy.cut();
    let second = submit(&stack, &amina, &service_id).await;
    for status in [
        requests::RequestStatus::Received,
        requests::RequestStatus::InProgress,
    ] {
        stack
            .requests()
            .change_request_status(authorized(
                requests::ChangeRequestStatusRequest {
                    id: second.id.clone(),
                    status: status as i32,
                    note: format!("note for {status:?}"),
                    ..Default::default()
                },
                &officer,
            ))
            .await
            .expect("writes succeed while the broker is away");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during = stack.inbox(&amina).await;
    assert!(
        !during
            .iter()
            .any(|n| n.body.contains("note for InProgress")),
        "nothing can be delivered while the broker is cut"
    );

    proxy.restore();
    for text in [
        second.tracking_code.as_str(),
        "note for Received",
        "note for InProgress",
    ] {
        stack.wait_for_notification(&amina, text).await;
    }
    stack.stop().await;
}

async fn submit(stack: &TestStack, citizen: &str, service_id: &str) -> requests::ServiceRequest {
    stack
        .requests()
        .submit_request(authorized(
            requests::SubmitRequestRequest {
                request_id: uuid::Uuid::now_v7().to_string(),
                service_id: service_id.into(),
                description: "Pothole on the main road".into(),
                ..Default::default()
            },
            citizen,
        ))
        .await
        .expect("submit")
        .into_inner()
        .request
        .expect("request")
}

/// What a recording handler saw: each event's subject, label and when its handling ran.
#[derive(Default)]
struct Recorder {
    runs: std::sync::Mutex<Vec<Run>>,
}

#[derive(Clone, Debug)]
struct Run {
    subject: String,
    label: String,
    started: std::time::Instant,
    ended: std::time::Instant,
}

#[async_trait::async_trait]
impl jamaa_events::EventHandler for Recorder {
    async fn handle(&self, event: &CloudEvent) -> Result<(), jamaa_events::HandlerError> {
        let started = std::time::Instant::now();
        let label = if event.is::<events::RequestStatusChanged>() {
            event
                .decode::<events::RequestStatusChanged>()?
                .tracking_code
        } else {
            "fence".to_string()
        };
        if event.subject == "requests/slow" || label == "fence" {
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        let run = Run {
            subject: event.subject.clone(),
            label,
            started,
            ended: std::time::Instant::now(),
        };
        self.runs.lock().expect("runs").push(run);
        Ok(())
    }
}

/// A RabbitMQ consumer's lanes: events about different subjects are handled concurrently (a
/// slow subject does not hold up the others), events about one subject one after another in
/// the order published, and a fence alone: after everything delivered before it, before
/// anything delivered after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rabbitmq_consumer_handles_subjects_concurrently_each_in_order_and_fences_alone() {
    let Some(url) = jamaa_testkit::amqp_url().await else {
        return;
    };
    let exchange = format!("jamaa.test.lanes.{}", uuid::Uuid::new_v4().simple());
    let settings = jamaa_settings::EventsSettings {
        url: jamaa_settings::SecretString::from(url.clone()),
        exchange: exchange.clone(),
        prefetch: 64,
        consumer_lanes: 4,
        delivery_limit: 5,
        relay_poll_interval_ms: 1000,
    };
    let bus = EventBus::from_settings(&settings).expect("a RabbitMQ bus");
    let recorder = std::sync::Arc::new(Recorder::default());
    let shutdown = tokio_util::sync::CancellationToken::new();
    let fence_type = CloudEvent::type_of::<events::CitizenRegistered>();
    let consumer = bus
        .subscribe(
            jamaa_events::Subscription {
                consumer: "lanes".into(),
                event_types: vec![
                    CloudEvent::type_of::<events::RequestStatusChanged>(),
                    fence_type.clone(),
                ],
                fences: vec![fence_type],
                handler: recorder.clone(),
            },
            shutdown.clone(),
        )
        .await;

    let citizen = uuid::Uuid::now_v7().to_string();
    let mut published = Vec::new();
    for n in 1..=4 {
        published.push(status_changed_about(
            "requests/slow",
            &citizen,
            &format!("slow-{n}"),
        ));
    }
    for n in 1..=20 {
        published.push(status_changed(&citizen, &format!("fast-{n}")));
    }
    published.push(CloudEvent::new(
        "jamaa/identity",
        format!("users/{citizen}"),
        &events::CitizenRegistered {
            user_id: citizen.clone(),
            commune_id: uuid::Uuid::now_v7().to_string(),
            ..Default::default()
        },
    ));
    for n in 1..=10 {
        published.push(status_changed(&citizen, &format!("after-{n}")));
    }
    let total = published.len();
    let publisher = bus.publisher();
    for result in publisher.publish(&published).await {
        result.expect("the broker confirms");
    }

    let runs = eventually(Duration::from_secs(30), "every event handled", || {
        let recorder = recorder.clone();
        async move {
            let runs = recorder.runs.lock().expect("runs").clone();
            (runs.len() >= total).then_some(runs)
        }
    })
    .await;
    shutdown.cancel();
    let _ = consumer.await;
    jamaa_testkit::delete_rabbitmq_topology(&url, &exchange, &["lanes"]).await;

    assert_eq!(runs.len(), total, "each event handled once: {runs:?}");
    let find = |label: &str| {
        runs.iter()
            .find(|run| run.label == label)
            .unwrap_or_else(|| panic!("{label} was handled"))
            .clone()
    };
    // One subject: in order, never two at once.
    let slow: Vec<Run> = runs
        .iter()
        .filter(|run| run.subject == "requests/slow")
        .cloned()
        .collect();
    let labels: Vec<&str> = slow.iter().map(|run| run.label.as_str()).collect();
    assert_eq!(labels, ["slow-1", "slow-2", "slow-3", "slow-4"]);
    for pair in slow.windows(2) {
        assert!(
            pair[0].ended <= pair[1].started,
            "one subject, one at a time"
        );
    }
    // Different subjects: most fast events were done while the slow subject was still busy.
    let last_slow = find("slow-4");
    let fast_before = (1..=20)
        .filter(|n| find(&format!("fast-{n}")).ended < last_slow.started)
        .count();
    assert!(
        fast_before >= 10,
        "other subjects go on beside a slow one: {fast_before} of 20 fast events were handled before the last slow one started"
    );
    // The fence: after everything before it, before everything after it.
    let fence = find("fence");
    for run in &runs {
        if run.label.starts_with("slow") || run.label.starts_with("fast") {
            assert!(
                run.ended <= fence.started,
                "{} ended before the fence",
                run.label
            );
        }
        if run.label.starts_with("after") {
            assert!(
                run.started >= fence.ended,
                "{} started after the fence",
                run.label
            );
        }
    }
}
