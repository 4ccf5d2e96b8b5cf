//! `jamaa-identity`: the identity service on its own.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings: jamaa_identity::Settings =
        jamaa_settings::load(&jamaa_identity::default_settings())?;
    let _telemetry = jamaa_telemetry::init(&settings.telemetry, "jamaa-identity");
    let app = jamaa_identity::build(settings, jamaa_server::shutdown_on_signal()).await?;
    app.run_until_stopped().await?;
    Ok(())
}
