//! The `skirmish` binary: configuration, logging and traces, the server, and graceful shutdown on
//! SIGINT/SIGTERM; the spans still buffered are exported before the process exits.

use anyhow::Context;
use server::config::Config;
use server::startup::Application;

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::load().context("reading the configuration")?;
    let telemetry = server::telemetry::init_from_env(&config)
        .context("setting up traces (OTEL_* environment variables)")?;
    // On an early return `telemetry` is dropped, which flushes its spans too.
    let app = Application::build(config)
        .await
        .context("starting skirmish")?;
    let shutdown = app.shutdown_handle();
    actix_rt::spawn(async move {
        wait_for_signal().await;
        shutdown.shutdown().await;
    });
    let served = app.run_until_stopped().await.context("serving");
    telemetry.shutdown();
    served
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
