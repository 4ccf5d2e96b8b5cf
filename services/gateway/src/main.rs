//! `jamaa-gateway`: the HTTP/JSON gateway on its own.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings: jamaa_gateway::Settings =
        jamaa_settings::load(&jamaa_gateway::default_settings())?;
    let _telemetry = jamaa_telemetry::init(&settings.telemetry, "jamaa-gateway");
    let gateway =
        jamaa_gateway::Gateway::build(settings, jamaa_server::shutdown_on_signal()).await?;
    gateway.run_until_stopped().await?;
    Ok(())
}
