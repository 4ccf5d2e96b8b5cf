//! Layered configuration, the one way every Jamaa process reads its settings.
//!
//! Layers, later ones win:
//! 1. the built-in defaults each binary embeds (a TOML string),
//! 2. an optional file named by `JAMAA_CONFIG_FILE` (TOML),
//! 3. environment variables `JAMAA__SECTION__KEY` (e.g. `JAMAA__DATABASE__URL`).
//!
//! Secrets (database and broker URLs, passwords) are [`SecretString`]s: their `Debug` prints
//! `[REDACTED]`, so logging a settings tree never leaks them.

use std::time::Duration;

pub use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Names the optional configuration file.
pub const CONFIG_FILE_ENV: &str = "JAMAA_CONFIG_FILE";

/// Loads settings of type `T` from `defaults` (TOML), the optional file and the environment.
pub fn load<T: DeserializeOwned>(defaults: &str) -> Result<T, config::ConfigError> {
    let file = std::env::var(CONFIG_FILE_ENV).ok();
    load_from(defaults, file.as_deref(), std::env::vars())
}

/// Like [`load`], with the file and environment given explicitly (for tests).
pub fn load_from<T: DeserializeOwned>(
    defaults: &str,
    file: Option<&str>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<T, config::ConfigError> {
    let mut builder = config::Config::builder()
        .add_source(config::File::from_str(defaults, config::FileFormat::Toml));
    if let Some(path) = file {
        builder = builder.add_source(config::File::new(path, config::FileFormat::Toml));
    }
    let env: config::Map<String, String> = env
        .into_iter()
        .filter(|(key, _)| key.starts_with("JAMAA__"))
        .collect();
    builder = builder.add_source(
        config::Environment::with_prefix("JAMAA")
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .source(Some(env)),
    );
    builder.build()?.try_deserialize()
}

/// Settings of a standalone service process that has no section of its own.
#[derive(Debug, Clone, Deserialize)]
pub struct ServiceSettings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub events: EventsSettings,
    pub auth: AuthSettings,
    pub telemetry: TelemetrySettings,
}

/// The gRPC (or HTTP) listener of a process.
#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    /// Address to bind, e.g. `127.0.0.1` on a laptop, `0.0.0.0` in a container.
    pub host: String,
    /// Port to bind; 0 picks a free one (tests).
    pub port: u16,
    /// How long in-flight calls may take to finish after SIGTERM.
    pub drain_timeout_seconds: u64,
    /// Calls that may run at once in the process; more are shed with UNAVAILABLE (health
    /// checks excepted).
    pub max_concurrent_requests: usize,
    /// Longest a single call may run.
    pub request_timeout_seconds: u64,
    /// Port of the separate HTTP listener serving `GET /metrics` (Prometheus) next to a gRPC
    /// server, on the same host; 0 picks a free one (tests). The gateway ignores it: it serves
    /// `/metrics` on its own HTTP port.
    #[serde(default = "default_metrics_port")]
    pub metrics_port: u16,
}

/// The metrics port when a `[server]`-like section does not name one.
pub const DEFAULT_METRICS_PORT: u16 = 9090;

fn default_metrics_port() -> u16 {
    DEFAULT_METRICS_PORT
}

impl ServerSettings {
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
    /// The address of the metrics listener.
    pub fn metrics_address(&self) -> String {
        format!("{}:{}", self.host, self.metrics_port)
    }
    pub fn drain_timeout(&self) -> Duration {
        Duration::from_secs(self.drain_timeout_seconds)
    }
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_seconds)
    }
}

/// A service's own database.
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// `sqlite://path/to/file.db` or `postgres://user:password@host:5432/name`.
    pub url: SecretString,
    pub max_connections: u32,
    /// Apply pending migrations at start-up.
    pub migrate_on_start: bool,
}

/// The event bus.
#[derive(Debug, Clone, Deserialize)]
pub struct EventsSettings {
    /// `memory://` for the in-process bus, or `amqp://user:password@host:5672/%2f` for RabbitMQ.
    pub url: SecretString,
    /// The durable topic exchange every event is published to.
    pub exchange: String,
    /// Unacknowledged deliveries a consumer holds at once.
    pub prefetch: u16,
    /// How many events a consumer handles at once (RabbitMQ): events about one subject are
    /// always handled in order, one at a time; different subjects concurrently.
    pub consumer_lanes: u16,
    /// Deliveries of one message before it is dead-lettered.
    pub delivery_limit: u32,
    /// How often the outbox relay looks for stranded rows when nothing woke it.
    pub relay_poll_interval_ms: u64,
}

/// How callers are authenticated.
#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    /// The `iss` of access tokens.
    pub issuer: String,
    /// The `aud` of access tokens.
    pub audience: String,
    /// Where the identity service answers `ListPublicKeys` (unused by identity itself).
    pub identity_url: String,
    /// How often the public keys are fetched again.
    pub key_refresh_seconds: u64,
}

/// Logs and traces.
#[derive(Debug, Clone, Deserialize)]
pub struct TelemetrySettings {
    /// `json` (production) or `pretty` (a terminal).
    pub log_format: LogFormat,
    /// Default filter when `RUST_LOG` is unset, e.g. `info`.
    pub log_filter: String,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

/// The sections every service's settings share, as built-in TOML defaults: a service's
/// database defaults to an SQLite file named after it under `./data`. A service appends its own
/// sections to this.
pub fn common_defaults(service: &str) -> String {
    format!(
        "{COMMON_DEFAULTS}\n[database]\nurl = \"sqlite://data/{service}.db\"\nmax_connections = 10\nmigrate_on_start = true\n"
    )
}

const COMMON_DEFAULTS: &str = r#"
[server]
host = "127.0.0.1"
port = 50051
drain_timeout_seconds = 20
max_concurrent_requests = 512
request_timeout_seconds = 30
metrics_port = 9090

[events]
url = "memory://"
exchange = "jamaa.events"
prefetch = 32
consumer_lanes = 8
delivery_limit = 5
relay_poll_interval_ms = 1000

[auth]
issuer = "jamaa-identity"
audience = "jamaa"
identity_url = "http://127.0.0.1:50051"
key_refresh_seconds = 300

[telemetry]
log_format = "pretty"
log_filter = "info"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Sample {
        server: ServerSettings,
        database: DatabaseSettings,
    }

    fn defaults() -> String {
        common_defaults("sample")
    }

    #[test]
    fn environment_overrides_defaults() {
        let env = vec![
            ("JAMAA__SERVER__PORT".to_string(), "6000".to_string()),
            (
                "JAMAA__DATABASE__URL".to_string(),
                "postgres://u:hunter2@h/db".to_string(),
            ),
            ("UNRELATED".to_string(), "1".to_string()),
        ];
        let settings: Sample = load_from(&defaults(), None, env).expect("settings load");
        assert_eq!(settings.server.port, 6000);
        assert_eq!(
            settings.database.url.expose_secret(),
            "postgres://u:hunter2@h/db"
        );
    }

    #[test]
    fn secrets_are_not_printed() {
        let settings: Sample = load_from(&defaults(), None, Vec::new()).expect("settings load");
        let printed = format!("{settings:?}");
        assert!(!printed.contains("sample.db"), "secret leaked: {printed}");
    }
}
