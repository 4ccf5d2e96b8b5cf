//! `spawn_stack()`: the whole platform in-process on free ports, with typed gRPC clients and an
//! HTTP client for the gateway — on SQLite with the in-process bus ([`Backend::Embedded`]) or on
//! PostgreSQL and RabbitMQ ([`Backend::Real`], a fresh database per service and per test, a
//! private exchange per test).

use std::path::PathBuf;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use jamaa_proto::identity::v1 as identity;
use jamaa_proto::identity::v1::identity_service_client::IdentityServiceClient;
use jamaa_proto::notification::v1::notification_service_client::NotificationServiceClient;
use jamaa_proto::participation::v1::participation_service_client::ParticipationServiceClient;
use jamaa_proto::servicerequest::v1::service_request_service_client::ServiceRequestServiceClient;
use jamaa_proto::r#type::v1::{Language, LocalizedText};
use jamaa_testkit::{FaultProxy, TestDatabase};
use tokio_util::sync::CancellationToken;
use tonic::Request;
use tonic::transport::Channel;

pub use jamaa_testkit::eventually;

/// Runs a test scenario, failing it if it takes longer than three minutes (a hang must fail the
/// run, not stall it).
pub async fn within_limit<F: std::future::Future<Output = ()>>(scenario: F) {
    tokio::time::timeout(std::time::Duration::from_secs(180), scenario)
        .await
        .expect("the scenario did not finish within three minutes");
}

/// The finished spans of the traces a test asked to watch ([`watch_trace`]).
pub fn finished_spans() -> Vec<opentelemetry_sdk::trace::SpanData> {
    span_exporter()
        .spans
        .lock()
        .map(|spans| spans.clone())
        .unwrap_or_default()
}

/// Keeps the spans of `trace_id` from now on (every other span is dropped at once, so a long
/// run holds no more than the traces its tests follow).
pub fn watch_trace(trace_id: opentelemetry::trace::TraceId) {
    if let Ok(mut watched) = span_exporter().watched.lock() {
        watched.insert(trace_id);
    }
}

/// A span exporter that keeps only the spans of watched traces.
#[derive(Debug, Default)]
struct WatchedSpans {
    watched: std::sync::Mutex<std::collections::HashSet<opentelemetry::trace::TraceId>>,
    spans: std::sync::Mutex<Vec<opentelemetry_sdk::trace::SpanData>>,
}

#[derive(Debug, Clone, Copy)]
struct WatchedSpansExporter;

impl opentelemetry_sdk::trace::SpanExporter for WatchedSpansExporter {
    async fn export(
        &self,
        batch: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        let exporter = span_exporter();
        let watched = exporter
            .watched
            .lock()
            .map(|watched| watched.clone())
            .unwrap_or_default();
        if watched.is_empty() {
            return Ok(());
        }
        if let Ok(mut spans) = exporter.spans.lock() {
            spans.extend(
                batch
                    .into_iter()
                    .filter(|span| watched.contains(&span.span_context.trace_id())),
            );
        }
        Ok(())
    }
}

fn span_exporter() -> &'static WatchedSpans {
    static EXPORTER: std::sync::OnceLock<WatchedSpans> = std::sync::OnceLock::new();
    EXPORTER.get_or_init(WatchedSpans::default)
}

/// Test telemetry: quiet logs (TEST_LOG=1 prints them), spans kept in memory.
pub fn init_telemetry() {
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_simple_exporter(WatchedSpansExporter)
        .build();
    jamaa_telemetry::init_for_tests_with(provider);
}

/// Where the stack keeps its data and sends its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite files in a temporary folder, the in-process bus.
    Embedded,
    /// PostgreSQL (a fresh database per service) and RabbitMQ (a private exchange).
    Real,
}

/// The platform administrator every test stack starts with.
pub const PLATFORM_ADMIN_EMAIL: &str = "platform@jamaa.local";
pub const PLATFORM_ADMIN_PASSWORD: &str = "platform-admin-change-me";

/// The consumers whose queues a test's exchange gets.
const CONSUMERS: &[&str] = &["notification", "service-request"];

#[derive(Default)]
pub struct Options {
    /// Reach RabbitMQ through a [`FaultProxy`] the test can cut.
    pub broker_through_proxy: bool,
    /// Outbox relay poll interval (ms); small so stranded rows are retried quickly.
    pub relay_poll_interval_ms: Option<u64>,
    /// With `broker_through_proxy`: the proxy starts cut (the broker is away at start-up).
    pub broker_cut_at_start: bool,
    /// More settings, as `JAMAA__…` environment entries.
    pub extra_env: Vec<(String, String)>,
    /// With [`Backend::Real`]: reach this service's database (`service_request`, …) through a
    /// [`FaultProxy`] the test can cut ([`TestStack::database_proxy`]).
    pub database_through_proxy: Option<&'static str>,
}

/// A running stack and what it needs cleaned up.
pub struct TestStack {
    pub backend: Backend,
    pub stack: jamaa::Stack,
    pub exchange: String,
    pub amqp_url: Option<String>,
    pub broker_proxy: Option<FaultProxy>,
    /// See [`Options::database_through_proxy`].
    pub database_proxy: Option<FaultProxy>,
    /// The identity service's database (tests read its signing key to forge tokens).
    pub identity_database_url: String,
    /// Every service's database URL, by service (`identity`, `service_request`, …).
    database_urls: std::collections::HashMap<String, String>,
    databases: Vec<TestDatabase>,
    data_dir: PathBuf,
    channel: Channel,
    /// The settings it was started with (a restart starts again from them).
    env: Vec<(String, String)>,
}

/// Starts the stack on `backend`. `None` when the real servers are absent AND the person opted
/// out with `JAMAA_TEST_SKIP_REAL_SERVERS=1`; otherwise a missing server fails the test.
pub async fn spawn_stack(backend: Backend) -> Option<TestStack> {
    spawn_stack_with(backend, Options::default()).await
}

pub async fn spawn_stack_with(backend: Backend, options: Options) -> Option<TestStack> {
    init_telemetry();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let data_dir = std::env::temp_dir().join(format!("jamaa-test-{id}"));
    let exchange = format!("jamaa.test-{id}");
    let mut env: Vec<(String, String)> = vec![
        ("JAMAA__SERVER__PORT".into(), "0".into()),
        ("JAMAA__HTTP__PORT".into(), "0".into()),
        ("JAMAA__SERVER__METRICS_PORT".into(), "0".into()),
        ("JAMAA__DEMO__ENABLED".into(), "false".into()),
        ("JAMAA__SERVER__DRAIN_TIMEOUT_SECONDS".into(), "2".into()),
        ("JAMAA__HTTP__DRAIN_TIMEOUT_SECONDS".into(), "2".into()),
        ("JAMAA__EVENTS__EXCHANGE".into(), exchange.clone()),
        (
            "JAMAA__EVENTS__RELAY_POLL_INTERVAL_MS".into(),
            options.relay_poll_interval_ms.unwrap_or(200).to_string(),
        ),
    ];
    // Every test calls from 127.0.0.1: the per-address limits would throttle tests that sign up
    // many citizens. The throttling test sets its own.
    env.extend([
        (
            "JAMAA__IDENTITY__THROTTLE__FAILURES_PER_5_MINUTES".to_string(),
            "1000000".to_string(),
        ),
        (
            "JAMAA__IDENTITY__THROTTLE__SIGN_UPS_PER_HOUR".to_string(),
            "1000000".to_string(),
        ),
        (
            "JAMAA__IDENTITY__THROTTLE__RESET_REQUESTS_PER_5_MINUTES".to_string(),
            "1000000".to_string(),
        ),
    ]);
    env.push((
        "JAMAA__SERVICE_REQUEST__ATTACHMENTS_DIR".into(),
        data_dir.join("attachments").display().to_string(),
    ));
    env.extend(options.extra_env);
    let services = [
        "identity",
        "service_request",
        "participation",
        "notification",
    ];
    let mut databases = Vec::new();
    let mut amqp_url = None;
    let mut broker_proxy = None;
    let mut database_proxy = None;
    let mut direct_database_url = None;
    match backend {
        Backend::Embedded => {
            for service in services {
                env.push((
                    format!("JAMAA__DATABASES__{}__URL", service.to_uppercase()),
                    format!("sqlite://{}/{service}.db", data_dir.display()),
                ));
            }
            env.push(("JAMAA__EVENTS__URL".into(), "memory://".into()));
        }
        Backend::Real => {
            for service in services {
                let database = TestDatabase::create(service).await?;
                let mut url = database.url.clone();
                if options.database_through_proxy == Some(service) {
                    let target = broker_address(&url);
                    let proxy = FaultProxy::start(&target)
                        .await
                        .unwrap_or_else(|error| panic!("proxy: {error}"));
                    direct_database_url = Some((service.to_string(), url.clone()));
                    url = url.replacen(&target, &proxy.address().to_string(), 1);
                    database_proxy = Some(proxy);
                }
                env.push((
                    format!("JAMAA__DATABASES__{}__URL", service.to_uppercase()),
                    url,
                ));
                databases.push(database);
            }
            let url = jamaa_testkit::amqp_url().await?;
            let events_url = if options.broker_through_proxy {
                let target = broker_address(&url);
                let proxy = FaultProxy::start(&target)
                    .await
                    .unwrap_or_else(|error| panic!("proxy: {error}"));
                let proxied = url.replacen(&target, &proxy.address().to_string(), 1);
                if options.broker_cut_at_start {
                    proxy.cut();
                }
                broker_proxy = Some(proxy);
                proxied
            } else {
                url.clone()
            };
            env.push(("JAMAA__EVENTS__URL".into(), events_url));
            amqp_url = Some(url);
        }
    }
    let mut database_urls: std::collections::HashMap<String, String> = env
        .iter()
        .filter_map(|(key, url)| {
            let service = key
                .strip_prefix("JAMAA__DATABASES__")?
                .strip_suffix("__URL")?;
            Some((service.to_lowercase(), url.clone()))
        })
        .collect();
    // Tests read the databases directly, never through the proxy they cut.
    database_urls.extend(direct_database_url);
    let identity_database_url = env
        .iter()
        .find(|(key, _)| key == "JAMAA__DATABASES__IDENTITY__URL")
        .map(|(_, url)| url.clone())
        .unwrap_or_default();
    let (stack, channel) = start_stack(env.clone()).await;
    Some(TestStack {
        backend,
        stack,
        exchange,
        amqp_url,
        broker_proxy,
        database_proxy,
        identity_database_url,
        database_urls,
        databases,
        data_dir,
        channel,
        env,
    })
}

async fn start_stack(env: Vec<(String, String)>) -> (jamaa::Stack, Channel) {
    let settings: jamaa::Settings = jamaa_settings::load_from(jamaa::DEFAULTS, None, env)
        .unwrap_or_else(|error| panic!("settings: {error}"));
    let stack = jamaa::Stack::start(settings, CancellationToken::new())
        .await
        .unwrap_or_else(|error| panic!("the stack did not start: {error}"));
    let channel = tonic::transport::Endpoint::from_shared(stack.grpc_url())
        .unwrap_or_else(|error| panic!("endpoint: {error}"))
        .connect_lazy();
    (stack, channel)
}

/// `host:port` of an AMQP or PostgreSQL URL.
fn broker_address(url: &str) -> String {
    let after_scheme = url.split_once("://").map(|(_, rest)| rest).unwrap_or(url);
    let after_credentials = after_scheme
        .rsplit_once('@')
        .map(|(_, rest)| rest)
        .unwrap_or(after_scheme);
    after_credentials
        .split('/')
        .next()
        .unwrap_or(after_credentials)
        .to_string()
}

impl TestStack {
    /// The database URL of `service` (`identity`, `service_request`, `participation`,
    /// `notification`).
    /// The gateway's base URL, e.g. `http://127.0.0.1:43210`.
    pub fn http_url(&self) -> String {
        self.stack.http_url()
    }

    pub fn database_url(&self, service: &str) -> String {
        self.database_urls
            .get(service)
            .cloned()
            .unwrap_or_else(|| panic!("no database for {service}"))
    }

    pub fn identity(&self) -> IdentityServiceClient<Channel> {
        IdentityServiceClient::new(self.channel.clone())
    }
    pub fn requests(&self) -> ServiceRequestServiceClient<Channel> {
        ServiceRequestServiceClient::new(self.channel.clone())
    }
    pub fn appointments(
        &self,
    ) -> jamaa_proto::servicerequest::v1::appointment_service_client::AppointmentServiceClient<
        Channel,
    > {
        jamaa_proto::servicerequest::v1::appointment_service_client::AppointmentServiceClient::new(
            self.channel.clone(),
        )
    }
    pub fn participation(&self) -> ParticipationServiceClient<Channel> {
        ParticipationServiceClient::new(self.channel.clone())
    }
    pub fn notifications(&self) -> NotificationServiceClient<Channel> {
        NotificationServiceClient::new(self.channel.clone())
    }
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// Logs in and returns the access token.
    pub async fn login(&self, email: &str, password: &str) -> String {
        self.identity()
            .login(identity::LoginRequest {
                email: email.into(),
                password: password.into(),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|status| panic!("login {email}: {status:?}"))
            .into_inner()
            .access_token
    }

    /// Creates a commune with `code` and a petition threshold; returns (commune id, admin token).
    pub async fn create_commune(&self, code: &str, threshold: i32) -> (String, String) {
        let platform = self
            .login(PLATFORM_ADMIN_EMAIL, PLATFORM_ADMIN_PASSWORD)
            .await;
        let admin_email = format!("admin@{}.test", code.to_lowercase());
        let response = self
            .identity()
            .create_commune(authorized(
                identity::CreateCommuneRequest {
                    code: code.into(),
                    name: Some(LocalizedText {
                        ar: format!("جماعة {code}"),
                        fr: format!("Commune {code}"),
                        ..LocalizedText::default()
                    }),
                    population: 20_000,
                    has_arrondissements: false,
                    petition_signature_threshold: threshold,
                    admin_email: admin_email.clone(),
                    admin_password: "admin-password-1".into(),
                    admin_display_name: format!("Admin {code}"),
                    admin_language: Language::Fr as i32,
                },
                &platform,
            ))
            .await
            .unwrap_or_else(|status| panic!("create commune {code}: {status:?}"))
            .into_inner();
        let commune_id = response.commune.map(|c| c.id).unwrap_or_default();
        (
            commune_id,
            self.login(&admin_email, "admin-password-1").await,
        )
    }

    /// Registers a citizen of `commune_code` and logs in; returns (user id, token).
    pub async fn register_citizen(
        &self,
        commune_code: &str,
        name: &str,
        language: Language,
    ) -> (String, String) {
        let email = format!(
            "{}@{}.test",
            name.to_lowercase(),
            commune_code.to_lowercase()
        );
        let user = self
            .identity()
            .register_citizen(identity::RegisterCitizenRequest {
                commune_code: commune_code.into(),
                email: email.clone(),
                password: "citizen-password-1".into(),
                display_name: name.into(),
                preferred_language: language as i32,
                ..Default::default()
            })
            .await
            .unwrap_or_else(|status| panic!("register {email}: {status:?}"))
            .into_inner()
            .user
            .map(|user| user.id)
            .unwrap_or_default();
        (user, self.login(&email, "citizen-password-1").await)
    }

    /// Has citizen `user_id` (who signs in with `email` and the citizens' test password)
    /// verified in person at the desk by `admin_token`'s commune, with a national ID number made
    /// from the user id; returns a new token carrying the level.
    pub async fn verify_in_person(&self, admin_token: &str, user_id: &str, email: &str) -> String {
        let digits: u32 = user_id.bytes().fold(0u32, |acc, byte| {
            acc.wrapping_mul(31).wrapping_add(u32::from(byte))
        }) % 1_000_000;
        self.identity()
            .verify_in_person(authorized(
                identity::VerifyInPersonRequest {
                    user_id: user_id.into(),
                    national_id: format!("ZT{digits:06}"),
                },
                admin_token,
            ))
            .await
            .unwrap_or_else(|status| panic!("verify {email} at the desk: {status:?}"));
        self.login(email, "citizen-password-1").await
    }

    /// Creates a staff member with `roles` in the admin's commune; returns their token.
    pub async fn create_staff(
        &self,
        admin_token: &str,
        email: &str,
        roles: &[identity::Role],
    ) -> String {
        self.identity()
            .create_staff_member(authorized(
                identity::CreateStaffMemberRequest {
                    email: email.into(),
                    password: "staff-password-1".into(),
                    display_name: "Staff".into(),
                    preferred_language: Language::Ar as i32,
                    roles: roles.iter().map(|role| *role as i32).collect(),
                },
                admin_token,
            ))
            .await
            .unwrap_or_else(|status| panic!("create staff {email}: {status:?}"));
        self.login(email, "staff-password-1").await
    }

    /// An HTTP call to the gateway; returns (status, content type, JSON body or Null).
    pub async fn http(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> (u16, String, serde_json::Value) {
        self.http_with_headers(method, path, token, body, &[]).await
    }

    /// Like [`Self::http`], with more request headers.
    pub async fn http_with_headers(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
        headers: &[(&str, &str)],
    ) -> (u16, String, serde_json::Value) {
        let mut all_headers: Vec<(&str, String)> =
            vec![("content-type", "application/json".to_string())];
        if let Some(token) = token {
            all_headers.push(("authorization", format!("Bearer {token}")));
        }
        all_headers.extend(
            headers
                .iter()
                .map(|(name, value)| (*name, value.to_string())),
        );
        let body = body.map(|json| json.to_string()).unwrap_or_default();
        let url = format!("{}{path}", self.stack.http_url());
        let (status, content_type, bytes) = send(method, &url, &all_headers, body).await;
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (status, content_type, json)
    }

    /// A new catalogue service `code` (named `code` in French) of the admin's commune.
    pub async fn create_service(
        &self,
        admin_token: &str,
        code: &str,
    ) -> jamaa_proto::servicerequest::v1::ServiceDefinition {
        self.requests()
            .create_service(authorized(
                jamaa_proto::servicerequest::v1::CreateServiceRequest {
                    service: Some(jamaa_proto::servicerequest::v1::ServiceDefinition {
                        code: code.into(),
                        name: Some(LocalizedText {
                            fr: code.into(),
                            ..LocalizedText::default()
                        }),
                        description: None,
                        kind: jamaa_proto::servicerequest::v1::ServiceKind::IncidentReport as i32,
                        channel: jamaa_proto::servicerequest::v1::ServiceChannel::OnlineAndDesk
                            as i32,
                        ..Default::default()
                    }),
                },
                admin_token,
            ))
            .await
            .unwrap_or_else(|status| panic!("create service {code}: {status:?}"))
            .into_inner()
            .service
            .unwrap_or_else(|| panic!("create service {code}: no service in the answer"))
    }

    /// The caller's inbox (up to 200 notifications); empty when the call fails.
    pub async fn inbox(&self, token: &str) -> Vec<jamaa_proto::notification::v1::Notification> {
        self.notifications()
            .list_notifications(authorized(
                jamaa_proto::notification::v1::ListNotificationsRequest {
                    page_size: 200,
                    ..Default::default()
                },
                token,
            ))
            .await
            .map(|response| response.into_inner().notifications)
            .unwrap_or_default()
    }

    /// Waits (up to 30 s) until the caller's inbox holds a notification whose title or body
    /// contains `text`, and returns it.
    pub async fn wait_for_notification(
        &self,
        token: &str,
        text: &str,
    ) -> jamaa_proto::notification::v1::Notification {
        eventually(std::time::Duration::from_secs(30), text, || async {
            self.inbox(token)
                .await
                .into_iter()
                .find(|n| n.title.contains(text) || n.body.contains(text))
        })
        .await
    }

    /// Kills the running stack: no drain, the servers are aborted where they stand and the
    /// relays and consumers told to stop ([`jamaa::Stack::kill`]). Then [`TestStack::restart`].
    pub fn kill(&self) {
        self.stack.kill();
    }

    /// Starts the stack again on the same databases, files and broker (after
    /// [`TestStack::kill`]), on new ports; the clients this gives from now on reach it.
    pub async fn restart(&mut self) {
        let (stack, channel) = start_stack(self.env.clone()).await;
        self.stack = stack;
        self.channel = channel;
    }

    /// Stops the stack and removes its databases, queues and files.
    pub async fn stop(self) {
        self.stack.stop().await;
        for database in self.databases {
            database.drop_database().await;
        }
        if let Some(url) = &self.amqp_url {
            jamaa_testkit::delete_rabbitmq_topology(url, &self.exchange, CONSUMERS).await;
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// An HTTP request to `url`; returns (status, content type, body).
pub async fn send(
    method: &str,
    url: &str,
    headers: &[(&str, String)],
    body: String,
) -> (u16, String, Bytes) {
    let (status, response_headers, bytes) = send_for_headers(method, url, headers, body).await;
    let content_type = response_headers
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, content_type, bytes)
}

/// An HTTP request to `url`; returns (status, response headers, body).
pub async fn send_for_headers(
    method: &str,
    url: &str,
    headers: &[(&str, String)],
    body: String,
) -> (u16, http::HeaderMap, Bytes) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut builder = http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, value.as_str());
    }
    let request = builder
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|error| panic!("request: {error}"));
    let response = client
        .request(request)
        .await
        .unwrap_or_else(|error| panic!("{method} {url}: {error}"));
    let status = response.status().as_u16();
    let response_headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .unwrap_or_default();
    (status, response_headers, bytes)
}

/// The `ErrorInfo` reason of `status` (e.g. `BAD_REFRESH_TOKEN`); empty when it has none.
/// The fields an INVALID_ARGUMENT status names (its BadRequest details), in order.
pub fn bad_fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .bad_request()
        .map(|bad| {
            bad.field_violations
                .iter()
                .map(|v| v.field.clone())
                .collect()
        })
        .unwrap_or_default()
}

pub fn error_reason(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default()
}

/// `message` with `authorization: Bearer <token>`.
/// The claims (payload) of a JWT, without checking it.
pub fn token_claims(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap_or_default();
    serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null)
}

pub fn authorized<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    if let Ok(value) = format!("Bearer {token}").parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}
