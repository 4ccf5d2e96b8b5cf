//! `jamaa-participation`: the participation service on its own.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings: jamaa_participation::Settings =
        jamaa_settings::load(&jamaa_participation::default_settings())?;
    let _telemetry = jamaa_telemetry::init(&settings.telemetry, "jamaa-participation");
    let app = jamaa_participation::build(settings, jamaa_server::shutdown_on_signal()).await?;
    app.run_until_stopped().await?;
    Ok(())
}
