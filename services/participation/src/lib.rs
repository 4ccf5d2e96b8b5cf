//! The participation service: petitions to the communal council under organic law 113-14
//! ([`petitions`], [`lifecycle`], filed by citizens or [`associations`]), proposals with
//! supports ([`proposals`]), consultations and surveys ([`consultations`]), participatory
//! budgets ([`budgets`]), comments and their moderation ([`comments`]) and accountability
//! ([`results`]); each commune's rules in [`commune_settings`].
//!
//! Layout: [`grpc`] (handlers: parse, check the caller) → the area modules (operations,
//! outbox) → [`storage`] (tables, migrations). [`domain`] holds the parsed value types and the
//! threshold rule; [`communes`] asks identity for a commune's threshold.

pub mod associations;
pub mod budgets;
pub mod comments;
pub mod commune_settings;
pub mod communes;
pub mod consultations;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod lifecycle;
pub mod petitions;
pub mod proposals;
pub mod results;
pub mod storage;

use std::sync::Arc;

use jamaa_auth::TokenVerifier;
use jamaa_events::Outbox;
use jamaa_proto::participation::v1::participation_service_server::ParticipationServiceServer;
use jamaa_server::{Application, GrpcServer, ServiceContext, StartError};
use tokio_util::sync::CancellationToken;

use crate::communes::CommuneDirectory;
use crate::petitions::Petitions;

/// The CloudEvents source of participation's events.
pub const EVENT_SOURCE: &str = "jamaa/participation";

/// Participation's own settings (section `[participation]`, env `JAMAA__PARTICIPATION__…`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ParticipationConfig {
    /// How long a published petition collects signatures, in days.
    pub collecting_days: u32,
    /// How often the petition scheduler (expiries, overdue decisions) scans, in seconds.
    pub scan_interval_seconds: u64,
    /// Supports that send a proposal to official review.
    pub proposal_support_threshold: i32,
    /// Reports that hide a comment pending review.
    pub comment_report_threshold: u64,
}

/// Settings of the standalone participation process.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Settings {
    pub server: jamaa_settings::ServerSettings,
    pub database: jamaa_settings::DatabaseSettings,
    pub events: jamaa_settings::EventsSettings,
    pub auth: jamaa_settings::AuthSettings,
    pub telemetry: jamaa_settings::TelemetrySettings,
    pub participation: ParticipationConfig,
}

/// The defaults of the `[participation]` section.
pub const PARTICIPATION_DEFAULTS: &str = r#"
[participation]
collecting_days = 90
scan_interval_seconds = 60
proposal_support_threshold = 100
comment_report_threshold = 3
"#;

/// The built-in defaults of the standalone process.
pub fn default_settings() -> String {
    jamaa_settings::common_defaults("participation") + PARTICIPATION_DEFAULTS
}

/// Adds participation to `server`: its gRPC service and its outbox relay. `identity_url` is
/// where identity's gRPC answers `GetCommune`; it is connected lazily, so identity may start
/// listening after this returns (the all-in-one passes its own port).
pub async fn mount(
    server: &mut GrpcServer,
    context: &ServiceContext,
    identity_url: &str,
    config: &ParticipationConfig,
) -> Result<(), StartError> {
    let communes = CommuneDirectory::connect(identity_url, context.shutdown.clone())?;
    let outbox = Outbox::new(EVENT_SOURCE);
    let db = &context.db;
    let settings = Arc::new(commune_settings::CommuneSettingsStore::new(
        db.clone(),
        config,
    ));
    let petitions = Arc::new(Petitions::new(
        db.clone(),
        outbox.clone(),
        communes,
        settings.clone(),
    ));
    let scan_every = std::time::Duration::from_secs(config.scan_interval_seconds.max(1));
    petitions
        .clone()
        .run_scheduler(scan_every, context.shutdown.clone());
    let consultations = Arc::new(consultations::Consultations::new(
        db.clone(),
        outbox.clone(),
    ));
    consultations
        .clone()
        .run_scheduler(scan_every, context.shutdown.clone());
    context.start_outbox_relay(&outbox);
    server.add_service(ParticipationServiceServer::new(
        grpc::ParticipationGrpc::new(grpc::Parts {
            petitions,
            proposals: Arc::new(proposals::Proposals::new(
                db.clone(),
                outbox.clone(),
                settings.clone(),
            )),
            consultations,
            comments: Arc::new(comments::Comments::new(db.clone(), settings.clone())),
            results: Arc::new(results::Results::new(db.clone(), outbox.clone())),
            associations: Arc::new(associations::Associations::new(db.clone())),
            budgets: Arc::new(budgets::Budgets::new(db.clone(), outbox.clone())),
            settings,
        }),
    ));
    Ok(())
}

/// Builds the standalone participation process.
pub async fn build(
    settings: Settings,
    shutdown: CancellationToken,
) -> Result<Application, StartError> {
    let (mut server, context) = jamaa_server::prepare_standalone::<storage::Migrator>(
        &settings.server,
        &settings.database,
        &settings.events,
        shutdown,
    )
    .await?;
    mount(
        &mut server,
        &context,
        &settings.auth.identity_url,
        &settings.participation,
    )
    .await?;
    Ok(Application::standalone(
        server,
        &context,
        TokenVerifier::from_identity(&settings.auth),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jamaa_settings::ExposeSecret;

    #[test]
    fn defaults_load() {
        let settings: Settings = jamaa_settings::load_from(&default_settings(), None, Vec::new())
            .expect("defaults load");
        assert_eq!(
            settings.database.url.expose_secret(),
            "sqlite://data/participation.db"
        );
    }
}
