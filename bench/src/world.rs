//! The system under test: the all-in-one started as a child process on free ports (PostgreSQL +
//! RabbitMQ by default, SQLite + in-process bus on request) or a running one, and what the
//! scenarios need in it: a commune, a catalogue service, citizens, a case officer.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jamaa_proto::identity::v1 as identity;
use jamaa_proto::identity::v1::identity_service_client::IdentityServiceClient;
use jamaa_proto::servicerequest::v1 as requests;
use jamaa_proto::servicerequest::v1::service_request_service_client::ServiceRequestServiceClient;
use jamaa_proto::r#type::v1::{Language, LocalizedText};
use jamaa_testkit::TestDatabase;
use tonic::Request;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::process::ChildProcess;

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// Where the stack keeps its data (self-started stacks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// A stack the benchmark started, with what it must clean up.
pub struct OwnStack {
    pub process: ChildProcess,
    pub databases: Vec<TestDatabase>,
    pub amqp_url: Option<String>,
    pub exchange: String,
    pub data_dir: std::path::PathBuf,
    /// Database URLs by service (`service_request`, `notification`, …).
    pub database_urls: std::collections::HashMap<String, String>,
    pub grpc_url: String,
    pub http_url: String,
}

pub struct StackOptions {
    pub backend: Backend,
    pub stats_interval_seconds: u64,
}

impl OwnStack {
    pub async fn start(options: &StackOptions) -> anyhow::Result<OwnStack> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let data_dir = std::env::temp_dir().join(format!("jamaa-bench-{id}"));
        std::fs::create_dir_all(&data_dir)?;
        let exchange = format!("jamaa.bench-{id}");
        let mut env: Vec<(String, String)> = [
            ("JAMAA__SERVER__PORT", "0".to_string()),
            ("JAMAA__HTTP__PORT", "0".to_string()),
            ("JAMAA__SERVER__METRICS_PORT", "0".to_string()),
            ("JAMAA__DEMO__ENABLED", "false".to_string()),
            ("JAMAA__SERVER__DRAIN_TIMEOUT_SECONDS", "2".to_string()),
            ("JAMAA__HTTP__DRAIN_TIMEOUT_SECONDS", "2".to_string()),
            ("JAMAA__EVENTS__EXCHANGE", exchange.clone()),
            ("JAMAA__TELEMETRY__LOG_FILTER", "warn".to_string()),
            (
                "JAMAA__SERVICE_REQUEST__STATISTICS_INTERVAL_SECONDS",
                options.stats_interval_seconds.to_string(),
            ),
            (
                "JAMAA__SERVICE_REQUEST__ATTACHMENTS_DIR",
                data_dir.join("attachments").display().to_string(),
            ),
            // One address drives the whole load: the per-address and per-token limits are
            // for the public internet, not for a benchmark.
            (
                "JAMAA__IDENTITY__THROTTLE__SIGN_UPS_PER_HOUR",
                "100000000".to_string(),
            ),
            (
                "JAMAA__IDENTITY__THROTTLE__FAILURES_PER_5_MINUTES",
                "100000000".to_string(),
            ),
            (
                "JAMAA__GATEWAY__RATE_LIMIT_PER_ADDRESS_PER_MINUTE",
                "100000000".to_string(),
            ),
            (
                "JAMAA__GATEWAY__RATE_LIMIT_PER_TOKEN_PER_MINUTE",
                "100000000".to_string(),
            ),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .collect();
        let services = [
            "identity",
            "service_request",
            "participation",
            "notification",
        ];
        let mut databases = Vec::new();
        let mut amqp_url = None;
        let mut database_urls = std::collections::HashMap::new();
        match options.backend {
            Backend::Sqlite => {
                for service in services {
                    let url = format!("sqlite://{}/{service}.db", data_dir.display());
                    database_urls.insert(service.to_string(), url);
                }
                env.push(("JAMAA__EVENTS__URL".into(), "memory://".into()));
            }
            Backend::Postgres => {
                for service in services {
                    let database = TestDatabase::create(&format!("bench_{service}"))
                        .await
                        .ok_or_else(|| anyhow::anyhow!("PostgreSQL is not available"))?;
                    database_urls.insert(service.to_string(), database.url.clone());
                    databases.push(database);
                }
                let url = jamaa_testkit::amqp_url()
                    .await
                    .ok_or_else(|| anyhow::anyhow!("RabbitMQ is not available"))?;
                env.push(("JAMAA__EVENTS__URL".into(), url.clone()));
                amqp_url = Some(url);
            }
        }
        for (service, url) in &database_urls {
            env.push((
                format!("JAMAA__DATABASES__{}__URL", service.to_uppercase()),
                url.clone(),
            ));
        }
        let process = ChildProcess::spawn("jamaa", "serve", &env, Duration::from_secs(180)).await?;
        let port = |index: usize| -> anyhow::Result<u16> {
            Ok(process
                .ready
                .get(index)
                .ok_or_else(|| anyhow::anyhow!("the stack did not say its ports"))?
                .parse()?)
        };
        let grpc_url = format!("http://127.0.0.1:{}", port(0)?);
        let http_url = format!("http://127.0.0.1:{}", port(1)?);
        Ok(OwnStack {
            process,
            databases,
            amqp_url,
            exchange,
            data_dir,
            database_urls,
            grpc_url,
            http_url,
        })
    }

    pub async fn stop(mut self) {
        self.process.stop(Duration::from_secs(10));
        for database in self.databases.drain(..) {
            database.drop_database().await;
        }
        if let Some(url) = &self.amqp_url {
            jamaa_testkit::delete_rabbitmq_topology(
                url,
                &self.exchange,
                &["notification", "service-request"],
            )
            .await;
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// Child mode `serve`: the all-in-one from `JAMAA__…` variables, until stdin closes.
pub async fn serve() -> anyhow::Result<()> {
    let settings: jamaa::Settings = jamaa_settings::load(jamaa::DEFAULTS)?;
    let _telemetry = jamaa_telemetry::init(&settings.telemetry, "jamaa");
    let shutdown = tokio_util::sync::CancellationToken::new();
    let stack = jamaa::Stack::start(settings, shutdown.clone()).await?;
    println!(
        "{} {} {}",
        crate::process::READY,
        stack.grpc_port,
        stack.http_port
    );
    crate::process::stop_when_stdin_closes(shutdown);
    stack.wait().await
}

/// `channels` lazy connections to `url`.
pub fn channels(url: &str, count: usize) -> anyhow::Result<Vec<Channel>> {
    (0..count.max(1))
        .map(|_| Ok(Endpoint::from_shared(url.to_string())?.connect_lazy()))
        .collect()
}

/// Waits until `grpc.health.v1` answers SERVING at `channel`.
pub async fn wait_serving(channel: Channel, timeout: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let answer = HealthClient::new(channel.clone())
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await;
        if let Ok(answer) = answer
            && answer.into_inner().status == 1
        {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("the stack was not SERVING within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn authorized<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    if let Ok(value) = format!("Bearer {token}").parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// What the scenarios act as and on.
pub struct World {
    pub channels: Vec<Channel>,
    pub http: HttpClient,
    pub http_url: String,
    pub commune_code: String,
    pub commune_id: String,
    pub service_id: String,
    pub admin: String,
    pub officer: String,
    /// (user id, access token) per client.
    pub citizens: Vec<(String, String)>,
}

pub struct Credentials {
    pub platform_email: String,
    pub platform_password: String,
}

impl World {
    pub fn channel(&self, client: usize) -> Channel {
        self.channels[client % self.channels.len()].clone()
    }

    pub fn requests(&self, client: usize) -> ServiceRequestServiceClient<Channel> {
        ServiceRequestServiceClient::new(self.channel(client))
    }

    /// A fresh commune with a service, a case officer and `citizens` citizens.
    pub async fn prepare(
        channels: Vec<Channel>,
        http_url: String,
        credentials: &Credentials,
        citizens: usize,
    ) -> anyhow::Result<World> {
        let channel = channels[0].clone();
        let mut identity_client = IdentityServiceClient::new(channel.clone());
        let platform = login(
            &mut identity_client,
            &credentials.platform_email,
            &credentials.platform_password,
        )
        .await?;
        let suffix: String = uuid::Uuid::new_v4()
            .as_bytes()
            .iter()
            .take(5)
            .map(|byte| char::from(b'A' + byte % 26))
            .collect();
        let code = format!("B{suffix}");
        let admin_email = format!("admin@{}.bench", code.to_lowercase());
        let commune = identity_client
            .create_commune(authorized(
                identity::CreateCommuneRequest {
                    code: code.clone(),
                    name: Some(LocalizedText {
                        ar: format!("جماعة {code}"),
                        fr: format!("Commune {code}"),
                        ..LocalizedText::default()
                    }),
                    population: 1_000_000,
                    has_arrondissements: false,
                    petition_signature_threshold: 1_000_000,
                    admin_email: admin_email.clone(),
                    admin_password: "admin-password-1".into(),
                    admin_display_name: format!("Admin {code}"),
                    admin_language: Language::Fr as i32,
                },
                &platform,
            ))
            .await?
            .into_inner()
            .commune
            .ok_or_else(|| anyhow::anyhow!("no commune in the answer"))?;
        let admin = login(&mut identity_client, &admin_email, "admin-password-1").await?;
        let officer_email = format!("officer@{}.bench", code.to_lowercase());
        identity_client
            .create_staff_member(authorized(
                identity::CreateStaffMemberRequest {
                    email: officer_email.clone(),
                    password: "staff-password-1".into(),
                    display_name: "Officer".into(),
                    preferred_language: Language::Fr as i32,
                    roles: vec![identity::Role::CaseOfficer as i32],
                },
                &admin,
            ))
            .await?;
        let officer = login(&mut identity_client, &officer_email, "staff-password-1").await?;
        let service = ServiceRequestServiceClient::new(channel.clone())
            .create_service(authorized(
                requests::CreateServiceRequest {
                    service: Some(service_definition("roads")),
                },
                &admin,
            ))
            .await?
            .into_inner()
            .service
            .ok_or_else(|| anyhow::anyhow!("no service in the answer"))?;

        // Citizens, a few at a time (each costs two password hashes).
        let domain = code.to_lowercase();
        let people = four_at_a_time(citizens, |n| {
            let mut client = IdentityServiceClient::new(channel.clone());
            let email = format!("citizen{n}@{domain}.bench");
            let code = code.clone();
            async move {
                let user = register(&mut client, &code, &email, "Citizen", Language::Fr).await?;
                let token = login(&mut client, &email, CITIZEN_PASSWORD).await?;
                anyhow::Ok((user, token))
            }
        })
        .await?;
        Ok(World {
            channels,
            http: Client::builder(TokioExecutor::new()).build_http(),
            http_url,
            commune_code: code,
            commune_id: commune.id,
            service_id: service.id,
            admin,
            officer,
            citizens: people,
        })
    }

    /// `count` residents of the commune verified at the desk (assurance level "verified", as
    /// signing a petition asks), signed in: their tokens. Four at a time (each costs two password
    /// hashes).
    pub async fn verified_residents(&self, count: usize) -> anyhow::Result<Vec<String>> {
        let channel = self.channels[0].clone();
        let domain = self.commune_code.to_lowercase();
        // A made-up national ID per resident: the commune's letters and a number.
        let letters: String = self.commune_code.chars().skip(1).take(2).collect();
        four_at_a_time(count, |n| {
            let mut client = IdentityServiceClient::new(channel.clone());
            let email = format!("signer{n}@{domain}.bench");
            let national_id = format!("{letters}{n:06}");
            async move {
                let user_id = register(
                    &mut client,
                    &self.commune_code,
                    &email,
                    "Signer",
                    Language::Ar,
                )
                .await?;
                client
                    .verify_in_person(authorized(
                        identity::VerifyInPersonRequest {
                            user_id,
                            national_id,
                        },
                        &self.admin,
                    ))
                    .await?;
                login(&mut client, &email, CITIZEN_PASSWORD).await
            }
        })
        .await
    }

    /// An HTTP call to the gateway; returns (status, body).
    pub async fn http_call(
        &self,
        method: http::Method,
        path: &str,
        token: &str,
        body: Option<String>,
    ) -> Result<(u16, Bytes), String> {
        let request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.http_url))
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {token}"))
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|error| error.to_string())?;
        let response = self
            .http
            .request(request)
            .await
            .map_err(|error| error.to_string())?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|error| error.to_string())?
            .to_bytes();
        Ok((status, body))
    }
}

pub fn service_definition(code: &str) -> requests::ServiceDefinition {
    requests::ServiceDefinition {
        code: code.into(),
        name: Some(LocalizedText {
            fr: code.into(),
            ..LocalizedText::default()
        }),
        kind: requests::ServiceKind::IncidentReport as i32,
        channel: requests::ServiceChannel::OnlineAndDesk as i32,
        ..Default::default()
    }
}

/// The password of every citizen the bench signs up.
const CITIZEN_PASSWORD: &str = "citizen-password-1";

/// Runs `make(0..count)` four at a time (sign-ups cost password hashes, which the identity
/// service works through a few at a time): the results in order, or the first error.
async fn four_at_a_time<T, F, Fut>(count: usize, make: F) -> anyhow::Result<Vec<T>>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let mut results = Vec::with_capacity(count);
    for chunk in (0..count).collect::<Vec<_>>().chunks(4) {
        for result in futures_util::future::join_all(chunk.iter().map(|n| make(*n))).await {
            results.push(result?);
        }
    }
    Ok(results)
}

/// Signs up a citizen of `commune_code` with [`CITIZEN_PASSWORD`]: their user id.
async fn register(
    client: &mut IdentityServiceClient<Channel>,
    commune_code: &str,
    email: &str,
    display_name: &str,
    language: Language,
) -> anyhow::Result<String> {
    Ok(client
        .register_citizen(identity::RegisterCitizenRequest {
            commune_code: commune_code.into(),
            email: email.into(),
            password: CITIZEN_PASSWORD.into(),
            display_name: display_name.into(),
            preferred_language: language as i32,
            ..Default::default()
        })
        .await?
        .into_inner()
        .user
        .map(|user| user.id)
        .unwrap_or_default())
}

async fn login(
    client: &mut IdentityServiceClient<Channel>,
    email: &str,
    password: &str,
) -> anyhow::Result<String> {
    Ok(client
        .login(identity::LoginRequest {
            email: email.into(),
            password: password.into(),
            ..Default::default()
        })
        .await
        .map_err(|status| anyhow::anyhow!("login {email}: {status}"))?
        .into_inner()
        .access_token)
}
