//! The `skirmish` binary: configuration, logging and traces, the server, and graceful shutdown on
//! SIGINT/SIGTERM; the spans still buffered are exported before the process exits.
//!
//! `skirmish healthcheck` instead probes the server that the same configuration describes (the
//! container's `HEALTHCHECK`): exit 0 when `/healthz` answers 2xx, 1 otherwise, 2 on a usage error.

use anyhow::Context;
use server::config::Config;
use server::startup::Application;

const USAGE: &str = "usage: skirmish [healthcheck]";

#[cfg(feature = "dhat-heap")]
#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args_os().skip(1);
    match (args.next(), args.next()) {
        (None, _) => {
            // Written to dhat-heap.json when it is dropped, after the graceful stop.
            #[cfg(feature = "dhat-heap")]
            let _profiler = dhat::Profiler::new_heap();
            actix_web::rt::System::new().block_on(serve())
        }
        (Some(command), None) if command == "healthcheck" => {
            // The probe's only output, one line for the operator (`docker inspect`); not a log.
            let code = match server::healthcheck::run() {
                Ok(_) => 0,
                Err(reason) => {
                    eprintln!("skirmish healthcheck: unhealthy: {reason}");
                    1
                }
            };
            std::process::exit(code)
        }
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2)
        }
    }
}

async fn serve() -> anyhow::Result<()> {
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
