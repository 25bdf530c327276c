use anyhow::Context;
use server::config::{Config, LogFormat};
use server::startup::Application;

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::load()?;
    let subscriber = tracing_subscriber::fmt().with_env_filter(
        tracing_subscriber::EnvFilter::try_new(&config.log)
            .context("invalid configuration: log")?,
    );
    match config.log_format {
        LogFormat::Json => subscriber.json().init(),
        LogFormat::Pretty => subscriber.init(),
    }
    let app = Application::build(&config).with_context(|| format!("binding {}", config.listen))?;
    tracing::info!(port = app.port(), "skirmish listening");
    app.run_until_stopped().await?;
    Ok(())
}
