//! The service-request service: each commune's catalogue of services, and the requests citizens
//! file for them with their workflow (submitted → received → in progress → resolved → closed),
//! their legal deadlines on the commune's working-day calendar, and the desk.
//!
//! Layout: [`grpc`] (handlers: parse, check the caller) → [`catalogue`], [`requests`],
//! [`closed_days`] and [`deadlines`] (operations, outbox, the deadline scheduler) →
//! [`storage`] (tables, migrations). [`domain`] and [`definition`] hold the parsed value types
//! and the workflow; [`calendar`] the working-day arithmetic.

pub mod appeals;
pub mod appointments;
pub mod appointments_grpc;
pub mod attachments;
pub mod calendar;
pub mod catalogue;
pub mod closed_days;
pub mod deadlines;
pub mod definition;
pub mod domain;
pub mod error;
pub mod followers;
pub mod grpc;
pub mod profiles;
pub mod public_reports;
pub mod requests;
pub mod response_templates;
pub mod starter;
pub mod statistics;
pub mod storage;

use std::sync::Arc;

use jamaa_auth::TokenVerifier;
use jamaa_events::{Outbox, Subscription};
use jamaa_proto::servicerequest::v1::appointment_service_server::AppointmentServiceServer;
use jamaa_proto::servicerequest::v1::service_request_service_server::ServiceRequestServiceServer;
use jamaa_server::{Application, GrpcServer, ServiceContext, StartError};
use tokio_util::sync::CancellationToken;

use crate::catalogue::Catalogue;
use crate::closed_days::ClosedDays;
use crate::requests::Requests;

/// The CloudEvents source of this service's events.
pub const EVENT_SOURCE: &str = "jamaa/service-request";

/// The service-request service's own settings (section `[service_request]`, env
/// `JAMAA__SERVICE_REQUEST__…`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ServiceRequestConfig {
    /// How long after its resolution a citizen may reopen a request, in days.
    pub reopen_window_days: u32,
    /// The communes' offset from UTC, in minutes, that decides which civil day "today" is for
    /// deadlines (Morocco: +60; the Ramadan switch to +0 is not modelled).
    pub utc_offset_minutes: i32,
    /// `DeadlineApproaching` goes out this many working days before the due date.
    pub deadline_warning_working_days: u32,
    /// How often the deadline scheduler and the appointment reminders scan, in seconds.
    pub deadline_scan_interval_seconds: u64,
    /// `AppointmentReminder` goes out this many hours before an appointment.
    pub appointment_reminder_hours: u32,
    /// How often the statistics roller folds changed requests into the figures, in seconds.
    pub statistics_interval_seconds: u64,
    /// The directory attachments are kept in (the local-disk store).
    pub attachments_dir: String,
}

/// Settings of the standalone service-request process.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Settings {
    pub server: jamaa_settings::ServerSettings,
    pub database: jamaa_settings::DatabaseSettings,
    pub events: jamaa_settings::EventsSettings,
    pub auth: jamaa_settings::AuthSettings,
    pub telemetry: jamaa_settings::TelemetrySettings,
    pub service_request: ServiceRequestConfig,
}

/// The defaults of the `[service_request]` section.
pub const SERVICE_REQUEST_DEFAULTS: &str = r#"
[service_request]
reopen_window_days = 30
utc_offset_minutes = 60
deadline_warning_working_days = 2
deadline_scan_interval_seconds = 60
appointment_reminder_hours = 24
statistics_interval_seconds = 10
attachments_dir = "data/attachments"
"#;

/// The built-in defaults of the standalone process.
pub fn default_settings() -> String {
    jamaa_settings::common_defaults("service-request") + SERVICE_REQUEST_DEFAULTS
}

/// Adds the service-request service to `server`: its gRPC service, its outbox relay and its
/// deadline scheduler.
pub async fn mount(
    server: &mut GrpcServer,
    context: &ServiceContext,
    config: &ServiceRequestConfig,
) -> Result<(), StartError> {
    let outbox = Outbox::new(EVENT_SOURCE);
    let clock = deadlines::CommuneClock::new(config.utc_offset_minutes);
    let closed_days = Arc::new(ClosedDays::new(context.db.clone()));
    let catalogue = Arc::new(Catalogue::new(context.db.clone()));
    let requests = Arc::new(Requests::new(
        context.db.clone(),
        outbox.clone(),
        clock,
        config.reopen_window_days,
    ));
    let scheduler = deadlines::DeadlineScheduler::new(
        context.db.clone(),
        outbox.clone(),
        closed_days.clone(),
        clock,
        config.deadline_warning_working_days,
    );
    let scan_every = std::time::Duration::from_secs(config.deadline_scan_interval_seconds.max(1));
    scheduler.run_every(scan_every, context.shutdown.clone());
    let appointments = Arc::new(appointments::Appointments::new(
        context.db.clone(),
        outbox.clone(),
        clock,
    ));
    appointments::AppointmentReminders::new(
        context.db.clone(),
        outbox.clone(),
        clock,
        config.appointment_reminder_hours,
    )
    .run_every(scan_every, context.shutdown.clone());
    let statistics = Arc::new(statistics::Statistics::new(
        context.db.clone(),
        closed_days.clone(),
        clock,
    ));
    statistics.run_every(
        std::time::Duration::from_secs(config.statistics_interval_seconds.max(1)),
        context.shutdown.clone(),
    );
    let followers = Arc::new(followers::Followers::new(
        context.db.clone(),
        outbox.clone(),
    ));
    let attachments = Arc::new(attachments::Attachments::new(
        context.db.clone(),
        Arc::new(attachments::LocalDiskStore::new(&config.attachments_dir)),
    ));
    context
        .subscribe(Subscription {
            consumer: profiles::CONSUMER.into(),
            event_types: profiles::handled_event_types(),
            // All about one person each (`users/<id>`): in order per person without fences.
            fences: Vec::new(),
            handler: Arc::new(profiles::ProfileHandler::new(context.db.clone())),
        })
        .await;
    context.start_outbox_relay(&outbox);
    server.add_service(ServiceRequestServiceServer::new(
        grpc::ServiceRequestGrpc::new(grpc::Parts {
            catalogue,
            requests,
            closed_days,
            statistics,
            followers,
            attachments,
            templates: Arc::new(response_templates::ResponseTemplates::new(
                context.db.clone(),
            )),
            appeals: Arc::new(appeals::Appeals::new(context.db.clone(), clock)),
            public_reports: Arc::new(public_reports::PublicReports::new(context.db.clone())),
        }),
    ));
    server.add_service(AppointmentServiceServer::new(
        appointments_grpc::AppointmentGrpc::new(appointments),
    ));
    Ok(())
}

/// Builds the standalone service-request process; it verifies tokens with the identity
/// service's public keys (`auth.identity_url`).
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
    mount(&mut server, &context, &settings.service_request).await?;
    Ok(Application::standalone(
        server,
        &context,
        TokenVerifier::from_identity(&settings.auth),
    ))
}
