//! The production shape: each service its own process (here: its own `Application` on its own
//! port), its own PostgreSQL database, events over RabbitMQ, tokens verified with the keys fetched
//! from identity's `ListPublicKeys`, and the gateway in front.

use std::time::Duration;

use jamaa_proto::identity::v1 as identity;
use jamaa_proto::identity::v1::identity_service_client::IdentityServiceClient;
use jamaa_proto::notification::v1 as notification;
use jamaa_proto::notification::v1::notification_service_client::NotificationServiceClient;
use jamaa_proto::servicerequest::v1 as requests;
use jamaa_proto::servicerequest::v1::service_request_service_client::ServiceRequestServiceClient;
use jamaa_proto::r#type::v1::{Language, LocalizedText};
use jamaa_testkit::TestDatabase;
use jamaa_tests::{PLATFORM_ADMIN_EMAIL, PLATFORM_ADMIN_PASSWORD, authorized, eventually};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

struct Environment {
    exchange: String,
    amqp_url: String,
    identity_url: String,
}

impl Environment {
    fn settings<T: DeserializeOwned>(
        &self,
        defaults: &str,
        database_url: Option<&str>,
        port: u16,
    ) -> T {
        let mut env = vec![
            ("JAMAA__SERVER__PORT".to_string(), port.to_string()),
            ("JAMAA__SERVER__METRICS_PORT".to_string(), "0".to_string()),
            (
                "JAMAA__SERVER__DRAIN_TIMEOUT_SECONDS".to_string(),
                "2".to_string(),
            ),
            ("JAMAA__EVENTS__URL".to_string(), self.amqp_url.clone()),
            ("JAMAA__EVENTS__EXCHANGE".to_string(), self.exchange.clone()),
            (
                "JAMAA__EVENTS__RELAY_POLL_INTERVAL_MS".to_string(),
                "200".to_string(),
            ),
            (
                "JAMAA__AUTH__IDENTITY_URL".to_string(),
                self.identity_url.clone(),
            ),
            (
                "JAMAA__IDENTITY__PLATFORM_ADMIN_EMAIL".to_string(),
                PLATFORM_ADMIN_EMAIL.to_string(),
            ),
            (
                "JAMAA__IDENTITY__PLATFORM_ADMIN_PASSWORD".to_string(),
                PLATFORM_ADMIN_PASSWORD.to_string(),
            ),
            (
                "JAMAA__GATEWAY__IDENTITY_URL".to_string(),
                self.identity_url.clone(),
            ),
        ];
        if let Some(url) = database_url {
            env.push(("JAMAA__DATABASE__URL".to_string(), url.to_string()));
        }
        jamaa_settings::load_from(defaults, None, env)
            .unwrap_or_else(|error| panic!("settings: {error}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_as_separate_applications_over_rabbitmq() {
    jamaa_tests::init_telemetry();
    let Some(amqp_url) = jamaa_testkit::amqp_url().await else {
        return;
    };
    let mut databases = Vec::new();
    for label in ["identity", "requests", "notification"] {
        let Some(database) = TestDatabase::create(label).await else {
            return;
        };
        databases.push(database);
    }
    let shutdown = CancellationToken::new();
    // Identity's port is chosen first, so every service knows where to fetch the keys.
    let identity_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let environment = Environment {
        exchange: format!("jamaa.test-{}", uuid::Uuid::new_v4().simple()),
        amqp_url: amqp_url.clone(),
        identity_url: format!("http://127.0.0.1:{identity_port}"),
    };

    // Consumers first, so their queue exists before anything is published.
    let notification_app = jamaa_notification::build(
        environment.settings(
            &jamaa_notification::default_settings(),
            Some(&databases[2].url),
            0,
        ),
        shutdown.clone(),
    )
    .await
    .expect("notification starts");
    let identity_app = jamaa_identity::build(
        environment.settings(
            &jamaa_identity::default_settings(),
            Some(&databases[0].url),
            identity_port,
        ),
        shutdown.clone(),
    )
    .await
    .expect("identity starts");
    let requests_app = jamaa_service_request::build(
        environment.settings(
            &jamaa_service_request::default_settings(),
            Some(&databases[1].url),
            0,
        ),
        shutdown.clone(),
    )
    .await
    .expect("service-request starts");
    let urls = [
        identity_app.port(),
        requests_app.port(),
        notification_app.port(),
    ]
    .map(|port| format!("http://127.0.0.1:{port}"));
    let mut gateway_settings: jamaa_gateway::Settings =
        environment.settings(&jamaa_gateway::default_settings(), None, 0);
    gateway_settings.gateway.service_request_url = urls[1].clone();
    gateway_settings.gateway.notification_url = urls[2].clone();
    let gateway = jamaa_gateway::Gateway::build(gateway_settings, shutdown.clone())
        .await
        .expect("gateway starts");
    let gateway_url = format!("http://127.0.0.1:{}", gateway.port());
    let mut tasks = Vec::new();
    for app in [identity_app, requests_app, notification_app] {
        tasks.push(tokio::spawn(async move {
            let _ = app.run_until_stopped().await;
        }));
    }
    tasks.push(tokio::spawn(async move {
        let _ = gateway.run_until_stopped().await;
    }));

    let identity_client = IdentityServiceClient::connect(urls[0].clone())
        .await
        .expect("identity");
    let mut requests_client = ServiceRequestServiceClient::connect(urls[1].clone())
        .await
        .expect("requests");
    let inbox_client = NotificationServiceClient::connect(urls[2].clone())
        .await
        .expect("notification");
    let login = |email: &'static str, password: &'static str| {
        let mut client = identity_client.clone();
        async move {
            client
                .login(identity::LoginRequest {
                    email: email.into(),
                    password: password.into(),
                    ..Default::default()
                })
                .await
                .unwrap_or_else(|error| panic!("login {email}: {error:?}"))
                .into_inner()
                .access_token
        }
    };
    let platform = login(PLATFORM_ADMIN_EMAIL, PLATFORM_ADMIN_PASSWORD).await;
    identity_client
        .clone()
        .create_commune(authorized(
            identity::CreateCommuneRequest {
                code: "LRH".into(),
                name: Some(LocalizedText {
                    ar: "العرائش".into(),
                    fr: "Larache".into(),
                    ..LocalizedText::default()
                }),
                population: 125_000,
                admin_email: "admin@lrh.test".into(),
                admin_password: "admin-password-1".into(),
                ..Default::default()
            },
            &platform,
        ))
        .await
        .expect("create commune");
    identity_client
        .clone()
        .register_citizen(identity::RegisterCitizenRequest {
            commune_code: "LRH".into(),
            email: "nadia@lrh.test".into(),
            password: "citizen-password-1".into(),
            display_name: "Nadia".into(),
            preferred_language: Language::Fr as i32,
            ..Default::default()
        })
        .await
        .expect("register");
    let admin = login("admin@lrh.test", "admin-password-1").await;
    let nadia = login("nadia@lrh.test", "citizen-password-1").await;

    // service-request verifies identity's tokens with the keys it fetched from identity.
    let service = requests_client
        .create_service(authorized(
            requests::CreateServiceRequest {
                service: Some(requests::ServiceDefinition {
                    code: "civil-status".into(),
                    name: Some(LocalizedText {
                        fr: "État civil".into(),
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
        .expect("create service with a token verified by fetched keys")
        .into_inner()
        .service
        .expect("service");
    let submitted = requests_client
        .submit_request(authorized(
            requests::SubmitRequestRequest {
                request_id: uuid::Uuid::now_v7().to_string(),
                service_id: service.id,
                description: "Copie intégrale d'acte de naissance".into(),
                ..Default::default()
            },
            &nadia,
        ))
        .await
        .expect("submit")
        .into_inner()
        .request
        .expect("request");
    requests_client
        .change_request_status(authorized(
            requests::ChangeRequestStatusRequest {
                id: submitted.id.clone(),
                status: requests::RequestStatus::Received as i32,
                note: "Dossier reçu au bureau d'état civil".into(),
                ..Default::default()
            },
            &admin,
        ))
        .await
        .expect("change status");

    // The event crossed RabbitMQ into the notification service's own database, in French.
    eventually(
        Duration::from_secs(30),
        "the notification in the other process",
        || {
            let mut inbox_client = inbox_client.clone();
            let nadia = nadia.clone();
            async move {
                let inbox = inbox_client
                    .list_notifications(authorized(
                        notification::ListNotificationsRequest::default(),
                        &nadia,
                    ))
                    .await
                    .ok()?
                    .into_inner();
                inbox
                    .notifications
                    .into_iter()
                    .find(|n| n.body.contains("Dossier reçu au bureau d'état civil"))
                    .map(|n| assert_eq!(n.language, Language::Fr as i32))
            }
        },
    )
    .await;

    // And through the gateway in front of them.
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let request = http::Request::get(format!("{gateway_url}/v1/requests/{}", submitted.id))
        .header("authorization", format!("Bearer {nadia}"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .expect("request");
    let response = client.request(request).await.expect("gateway answers");
    assert_eq!(response.status(), 200);

    shutdown.cancel();
    for task in tasks {
        let _ = task.await;
    }
    for database in databases {
        database.drop_database().await;
    }
    jamaa_testkit::delete_rabbitmq_topology(&amqp_url, &environment.exchange, &["notification"])
        .await;
}
