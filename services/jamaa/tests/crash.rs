//! R2 with a real process: the all-in-one `jamaa` binary, on its SQLite files, is killed with
//! SIGKILL after its writes committed and before the relay published their events (the fail
//! point: the broker unreachable, so every event waits in the outbox). Started again on the same
//! files with RabbitMQ reachable, it publishes them and each has its effect once; the files
//! survive the abrupt exit intact (`PRAGMA integrity_check`).
//!
//! The in-process variant (`tests/e2e/faults.rs`, `r2_killed_between_commit_and_publish`) aborts
//! the servers where they stand; this one leaves the operating system to end the process.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use jamaa_proto::identity::v1 as identity;
use jamaa_proto::identity::v1::identity_service_client::IdentityServiceClient;
use jamaa_proto::servicerequest::v1 as requests;
use jamaa_proto::servicerequest::v1::service_request_service_client::ServiceRequestServiceClient;
use jamaa_proto::r#type::v1::{Language, LocalizedText};
use jamaa_tests::{PLATFORM_ADMIN_EMAIL, PLATFORM_ADMIN_PASSWORD, authorized};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use tonic::transport::Channel;

/// The services of the all-in-one, each with its own SQLite file.
const SERVICES: [&str; 4] = [
    "identity",
    "service_request",
    "participation",
    "notification",
];
/// The consumers whose queues the run leaves on the broker (removed at the end).
const CONSUMERS: &[&str] = &["notification", "service-request"];
const SUBMISSIONS: i64 = 20;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// One run of the all-in-one binary on the files in `dir`.
struct Process {
    child: std::process::Child,
    channel: Channel,
    log: PathBuf,
}

impl Process {
    /// Starts `jamaa` with events going to `events_url`; returns once it answers.
    async fn start(dir: &Path, events_url: &str, exchange: &str, run: &str) -> Process {
        let (grpc_port, http_port) = (free_port(), free_port());
        let log = dir.join(format!("{run}.log"));
        let output = std::fs::File::create(&log).expect("a log file");
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_jamaa"));
        command
            .env("JAMAA__SERVER__PORT", grpc_port.to_string())
            .env("JAMAA__HTTP__PORT", http_port.to_string())
            .env("JAMAA__SERVER__METRICS_PORT", "0")
            .env("JAMAA__DEMO__ENABLED", "false")
            .env("JAMAA__EVENTS__URL", events_url)
            .env("JAMAA__EVENTS__EXCHANGE", exchange)
            .env("JAMAA__EVENTS__RELAY_POLL_INTERVAL_MS", "200")
            .env(
                "JAMAA__IDENTITY__PLATFORM_ADMIN_EMAIL",
                PLATFORM_ADMIN_EMAIL,
            )
            .env(
                "JAMAA__IDENTITY__PLATFORM_ADMIN_PASSWORD",
                PLATFORM_ADMIN_PASSWORD,
            )
            .env(
                "JAMAA__SERVICE_REQUEST__ATTACHMENTS_DIR",
                dir.join("attachments"),
            )
            .stdout(Stdio::from(output.try_clone().expect("a log file")))
            .stderr(Stdio::from(output));
        for service in SERVICES {
            command.env(
                format!("JAMAA__DATABASES__{}__URL", service.to_uppercase()),
                database_url(dir, service),
            );
        }
        let child = command.spawn().expect("the jamaa binary starts");
        let channel =
            tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{grpc_port}"))
                .expect("an endpoint")
                .connect_lazy();
        let process = Process {
            child,
            channel,
            log,
        };
        let started = tokio::time::Instant::now();
        while process
            .login(PLATFORM_ADMIN_EMAIL, PLATFORM_ADMIN_PASSWORD)
            .await
            .is_err()
        {
            if started.elapsed() > Duration::from_secs(60) {
                process.fail("did not answer within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        process
    }

    fn fail(&self, what: &str) -> ! {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = &lines[lines.len().saturating_sub(40)..];
        panic!("jamaa {what}; the end of its log:\n{}", tail.join("\n"));
    }

    fn identity(&self) -> IdentityServiceClient<Channel> {
        IdentityServiceClient::new(self.channel.clone())
    }

    fn requests(&self) -> ServiceRequestServiceClient<Channel> {
        ServiceRequestServiceClient::new(self.channel.clone())
    }

    async fn login(&self, email: &str, password: &str) -> Result<String, tonic::Status> {
        Ok(self
            .identity()
            .login(identity::LoginRequest {
                email: email.into(),
                password: password.into(),
                ..Default::default()
            })
            .await?
            .into_inner()
            .access_token)
    }

    /// SIGKILL: no drain, no shutdown hook, no flush.
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL sent");
        let status = self.child.wait().expect("the process ended");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "killed by SIGKILL: {status:?}"
        );
    }
}

impl Drop for Process {
    /// A failed assertion must not leave the process running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn database_url(dir: &Path, service: &str) -> String {
    format!("sqlite://{}/{service}.db", dir.display())
}

async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error}"))
        .unwrap_or_else(|| panic!("{sql}: no row"));
    row.try_get_by_index::<i64>(0)
        .unwrap_or_else(|error| panic!("{sql}: {error}"))
}

/// What the two databases hold of the submissions.
#[derive(Debug, PartialEq, Eq)]
struct Counts {
    requests: i64,
    unsent_submitted_events: i64,
    processed: i64,
    receipts: i64,
    distinct_receipts: i64,
}

async fn counts(dir: &Path) -> Counts {
    let requests_db = Database::connect(database_url(dir, "service_request"))
        .await
        .expect("service-request's file");
    let notification_db = Database::connect(database_url(dir, "notification"))
        .await
        .expect("notification's file");
    let counts = Counts {
        requests: count(&requests_db, "SELECT COUNT(*) FROM requests").await,
        unsent_submitted_events: count(
            &requests_db,
            "SELECT COUNT(*) FROM outbox_events WHERE sent_at_ms IS NULL \
             AND event_type = 'jamaa.events.v1.RequestSubmitted'",
        )
        .await,
        processed: count(
            &notification_db,
            "SELECT COUNT(*) FROM inbox_events WHERE event_type = 'jamaa.events.v1.RequestSubmitted'",
        )
        .await,
        receipts: count(
            &notification_db,
            "SELECT COUNT(*) FROM notifications WHERE event_type LIKE '%RequestSubmitted'",
        )
        .await,
        distinct_receipts: count(
            &notification_db,
            "SELECT COUNT(DISTINCT event_id) FROM notifications WHERE event_type LIKE '%RequestSubmitted'",
        )
        .await,
    };
    let _ = requests_db.close().await;
    let _ = notification_db.close().await;
    counts
}

/// `PRAGMA integrity_check` of every service's file.
async fn assert_files_intact(dir: &Path) {
    for service in SERVICES {
        let db = Database::connect(database_url(dir, service))
            .await
            .unwrap_or_else(|error| panic!("{service}'s file: {error}"));
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                "PRAGMA integrity_check",
            ))
            .await
            .unwrap_or_else(|error| panic!("{service}'s integrity check: {error}"))
            .unwrap_or_else(|| panic!("{service}'s integrity check: no row"));
        let verdict: String = row
            .try_get_by_index(0)
            .unwrap_or_else(|error| panic!("{service}'s integrity check: {error}"));
        assert_eq!(verdict, "ok", "{service}'s file after SIGKILL");
        let _ = db.close().await;
    }
}

/// The commune, service and citizen of the run; then the submissions. Returns nothing: what
/// counts is in the files.
async fn file_requests(process: &Process) {
    let platform = process
        .login(PLATFORM_ADMIN_EMAIL, PLATFORM_ADMIN_PASSWORD)
        .await
        .expect("the platform administrator");
    process
        .identity()
        .create_commune(authorized(
            identity::CreateCommuneRequest {
                code: "KIL".into(),
                name: Some(LocalizedText {
                    fr: "Commune KIL".into(),
                    ..LocalizedText::default()
                }),
                population: 20_000,
                petition_signature_threshold: 3,
                admin_email: "admin@kil.test".into(),
                admin_password: "admin-password-1".into(),
                admin_display_name: "Admin KIL".into(),
                admin_language: Language::Fr as i32,
                ..Default::default()
            },
            &platform,
        ))
        .await
        .expect("a commune");
    let admin = process
        .login("admin@kil.test", "admin-password-1")
        .await
        .expect("the commune's administrator");
    let service = process
        .requests()
        .create_service(authorized(
            requests::CreateServiceRequest {
                service: Some(requests::ServiceDefinition {
                    code: "lighting".into(),
                    name: Some(LocalizedText {
                        fr: "Éclairage".into(),
                        ..LocalizedText::default()
                    }),
                    kind: requests::ServiceKind::IncidentReport as i32,
                    channel: requests::ServiceChannel::OnlineAndDesk as i32,
                    ..Default::default()
                }),
            },
            &admin,
        ))
        .await
        .expect("a service")
        .into_inner()
        .service
        .expect("the service in the answer");
    process
        .identity()
        .register_citizen(identity::RegisterCitizenRequest {
            commune_code: "KIL".into(),
            email: "salma@kil.test".into(),
            password: "citizen-password-1".into(),
            display_name: "Salma".into(),
            preferred_language: Language::Fr as i32,
            ..Default::default()
        })
        .await
        .expect("a citizen");
    let citizen = process
        .login("salma@kil.test", "citizen-password-1")
        .await
        .expect("the citizen");
    for n in 0..SUBMISSIONS {
        process
            .requests()
            .submit_request(authorized(
                requests::SubmitRequestRequest {
                    request_id: uuid::Uuid::now_v7().to_string(),
                    service_id: service.id.clone(),
                    description: format!("Lamp {n} out"),
                    ..Default::default()
                },
                &citizen,
            ))
            .await
            .expect("committed without the broker");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r2_sigkill_between_commit_and_publish_loses_no_event() {
    let Some(amqp_url) = jamaa_testkit::amqp_url().await else {
        return; // JAMAA_TEST_SKIP_REAL_SERVERS=1 and no RabbitMQ
    };
    let dir = std::env::temp_dir().join(format!("jamaa-crash-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).expect("a data directory");
    let exchange = format!("jamaa.crash-{}", uuid::Uuid::now_v7().simple());
    // Nothing listens on this port: every publish fails, every event waits in the outbox.
    let unreachable = format!("amqp://guest:guest@127.0.0.1:{}/%2f", free_port());

    let first = Process::start(&dir, &unreachable, &exchange, "first").await;
    file_requests(&first).await;
    let before = counts(&dir).await;
    assert_eq!(
        before,
        Counts {
            requests: SUBMISSIONS,
            unsent_submitted_events: SUBMISSIONS,
            processed: 0,
            receipts: 0,
            distinct_receipts: 0,
        }
    );
    first.kill();
    assert_files_intact(&dir).await;
    assert_eq!(counts(&dir).await, before, "the files after SIGKILL");

    let second = Process::start(&dir, &amqp_url, &exchange, "second").await;
    let started = tokio::time::Instant::now();
    let after = loop {
        let now = counts(&dir).await;
        if now.processed >= SUBMISSIONS && now.unsent_submitted_events == 0 {
            break now;
        }
        if started.elapsed() > Duration::from_secs(90) {
            second.fail(&format!("did not deliver the waiting events: {now:?}"));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    // Let any second delivery land before counting again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let settled = counts(&dir).await;
    assert_eq!(settled, after);
    assert_eq!(
        settled,
        Counts {
            requests: SUBMISSIONS,
            unsent_submitted_events: 0,
            processed: SUBMISSIONS,
            receipts: SUBMISSIONS,
            distinct_receipts: SUBMISSIONS,
        }
    );
    second.kill();
    jamaa_testkit::delete_rabbitmq_topology(&amqp_url, &exchange, CONSUMERS).await;
    let _ = std::fs::remove_dir_all(&dir);
}
