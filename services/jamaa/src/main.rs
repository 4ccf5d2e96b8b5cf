//! `jamaa`: the whole platform in one process. `cargo run -p jamaa` serves gRPC on 50051 and
//! HTTP/JSON on 8080 with SQLite files under ./data, and creates a demo commune on first start.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings: jamaa::Settings = jamaa_settings::load(jamaa::DEFAULTS)?;
    let _telemetry = jamaa_telemetry::init(&settings.telemetry, "jamaa");
    let demo = settings.demo.clone();
    let platform_admin = (
        settings.identity.platform_admin_email.clone(),
        settings.identity.platform_admin_password.clone(),
    );
    let stack = jamaa::Stack::start(settings, jamaa_server::shutdown_on_signal()).await?;
    if demo.enabled {
        match jamaa::demo::ensure_demo(&stack.grpc_url(), &demo, platform_admin).await {
            Ok(report) => println!("{}", report.instructions(&stack)),
            Err(error) => tracing::error!(%error, "could not prepare the demo commune"),
        }
    }
    stack.wait().await
}
