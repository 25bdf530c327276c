//! Logging: `tracing` to stderr, pretty or JSON, filtered by `log`.

use crate::config::{Config, LogFormat};

pub fn init(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests) keeps the first subscriber.
    let _ = match config.log_format {
        LogFormat::Json => subscriber.json().try_init(),
        LogFormat::Pretty => subscriber.try_init(),
    };
}
