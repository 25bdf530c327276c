//! The `skirmish` binary: configuration, logging, the server, and graceful shutdown on SIGINT/SIGTERM.

use anyhow::Context;
use server::config::Config;
use server::startup::Application;

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::load().context("reading the configuration")?;
    server::telemetry::init(&config);
    let app = Application::build(config)
        .await
        .context("starting skirmish")?;
    let shutdown = app.shutdown_handle();
    actix_rt::spawn(async move {
        wait_for_signal().await;
        shutdown.shutdown().await;
    });
    app.run_until_stopped().await.context("serving")?;
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = int.recv() => tracing::info!("SIGINT received"),
            }
        }
        _ => {
            // Without signal handlers, fall back to Ctrl-C only.
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
