//! Each service alone, as in production: its own process (the real `jamaa-<service>` binary,
//! built beside `jamaa-bench`), on the run's databases and broker, for its idle memory. Run after
//! the all-in-one has stopped, so nothing else consumes from the queues.
//!
//! Identity starts first (the others fetch its keys), then each other service, then the gateway
//! in front of all of them; each is read 2 s after it answers its health check.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::process::{Memory, memory};
use crate::world::wait_serving;

/// The processes, in start order: (binary, database key, its health check).
const SERVICES: [(&str, Option<&str>); 5] = [
    ("jamaa-identity", Some("identity")),
    ("jamaa-service-request", Some("service_request")),
    ("jamaa-participation", Some("participation")),
    ("jamaa-notification", Some("notification")),
    ("jamaa-gateway", None),
];

/// One service's process and its memory once idle.
pub struct Measured {
    pub process: String,
    pub pid: u32,
    pub idle: Option<Memory>,
}

/// Where the run keeps its data, for the services to start on.
pub struct Environment<'a> {
    pub database_urls: &'a HashMap<String, String>,
    pub events_url: String,
    pub exchange: String,
    /// Removed with the run's other data.
    pub data_dir: &'a Path,
}

/// The directory of the service binaries (beside this one), if they are all there.
pub fn binaries() -> Option<PathBuf> {
    let directory = std::env::current_exe().ok()?.parent()?.to_path_buf();
    SERVICES
        .iter()
        .all(|(binary, _)| directory.join(binary).is_file())
        .then_some(directory)
}

struct Running {
    name: String,
    child: Child,
}

impl Running {
    /// SIGTERM (the services drain and exit), then SIGKILL after `grace`.
    fn stop(mut self, grace: Duration) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = std::time::Instant::now() + grace;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("  {} did not stop in {grace:?}; killed", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Starts every service alone in turn and reads its idle memory.
pub async fn idle_memory(
    binaries: &Path,
    environment: &Environment<'_>,
) -> anyhow::Result<Vec<Measured>> {
    let mut running: Vec<Running> = Vec::new();
    let mut measured = Vec::new();
    let mut urls: HashMap<&str, String> = HashMap::new();
    let result = async {
        for (binary, database) in SERVICES {
            let port = free_port()?;
            let url = format!("http://127.0.0.1:{port}");
            let mut env: Vec<(String, String)> = vec![
                ("JAMAA__SERVER__PORT".into(), port.to_string()),
                ("JAMAA__SERVER__METRICS_PORT".into(), "0".into()),
                ("JAMAA__SERVER__DRAIN_TIMEOUT_SECONDS".into(), "2".into()),
                ("JAMAA__TELEMETRY__LOG_FILTER".into(), "warn".into()),
                ("JAMAA__EVENTS__URL".into(), environment.events_url.clone()),
                (
                    "JAMAA__EVENTS__EXCHANGE".into(),
                    environment.exchange.clone(),
                ),
            ];
            if let Some(identity) = urls.get("identity") {
                env.push(("JAMAA__AUTH__IDENTITY_URL".into(), identity.clone()));
            }
            if let Some(database) = database {
                let database_url = environment
                    .database_urls
                    .get(database)
                    .ok_or_else(|| anyhow::anyhow!("no database for {database}"))?;
                env.push(("JAMAA__DATABASE__URL".into(), database_url.clone()));
            } else {
                for (key, service) in [
                    ("IDENTITY_URL", "identity"),
                    ("SERVICE_REQUEST_URL", "service_request"),
                    ("PARTICIPATION_URL", "participation"),
                    ("NOTIFICATION_URL", "notification"),
                ] {
                    if let Some(upstream) = urls.get(service) {
                        env.push((format!("JAMAA__GATEWAY__{key}"), upstream.clone()));
                    }
                }
            }
            if binary == "jamaa-service-request" {
                let attachments = environment.data_dir.join("attachments-alone");
                env.push((
                    "JAMAA__SERVICE_REQUEST__ATTACHMENTS_DIR".into(),
                    attachments.display().to_string(),
                ));
            }
            let child = Command::new(binaries.join(binary))
                .envs(env)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()?;
            let pid = child.id();
            running.push(Running {
                name: binary.to_string(),
                child,
            });
            match database {
                Some(_) => {
                    let channel =
                        tonic::transport::Endpoint::from_shared(url.clone())?.connect_lazy();
                    wait_serving(channel, Duration::from_secs(60)).await?;
                }
                None => wait_ready_http(port, Duration::from_secs(60)).await?,
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
            let idle = memory(pid);
            eprintln!(
                "  {binary}: idle {:.1} MiB",
                idle.map(|m| m.rss_kib as f64 / 1024.0).unwrap_or(0.0)
            );
            measured.push(Measured {
                process: binary.to_string(),
                pid,
                idle,
            });
            if let Some(database) = database {
                urls.insert(database, url);
            }
        }
        anyhow::Ok(())
    }
    .await;
    for process in running.into_iter().rev() {
        process.stop(Duration::from_secs(10));
    }
    result.map(|()| measured)
}

/// Waits until the gateway's `/readyz` answers 200.
async fn wait_ready_http(port: u16, timeout: Duration) -> anyhow::Result<()> {
    let client: crate::world::HttpClient =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let uri: http::Uri = format!("http://127.0.0.1:{port}/readyz").parse()?;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Ok(answer) = client.get(uri.clone()).await
            && answer.status() == http::StatusCode::OK
        {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("the gateway was not ready within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
