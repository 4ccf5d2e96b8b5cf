//! `jamaa-service-request`: the service-request service on its own.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings: jamaa_service_request::Settings =
        jamaa_settings::load(&jamaa_service_request::default_settings())?;
    let _telemetry = jamaa_telemetry::init(&settings.telemetry, "jamaa-service-request");
    let app = jamaa_service_request::build(settings, jamaa_server::shutdown_on_signal()).await?;
    app.run_until_stopped().await?;
    Ok(())
}
