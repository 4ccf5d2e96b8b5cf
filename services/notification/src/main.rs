//! `jamaa-notification`: the notification service on its own.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings: jamaa_notification::Settings =
        jamaa_settings::load(&jamaa_notification::default_settings())?;
    let _telemetry = jamaa_telemetry::init(&settings.telemetry, "jamaa-notification");
    let app = jamaa_notification::build(settings, jamaa_server::shutdown_on_signal()).await?;
    app.run_until_stopped().await?;
    Ok(())
}
