//! Configuration: defaults, then an optional `skirmish.toml`, then `SKIRMISH_*` environment variables.
//! Everything is validated before any port is bound; an invalid value names its key.

use std::net::SocketAddr;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// The server's settings. Durations are in milliseconds (`_ms`), as in the environment variables.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub listen: SocketAddr,
    /// Bearer key for `/v1`; none means a random key is generated and logged once.
    pub api_key: Option<String>,
    /// `sqlite://...` or `postgres://...`; the default is an embedded SQLite file.
    pub database_url: String,
    pub database_max_connections: u32,
    pub database_min_connections: u32,
    pub database_acquire_timeout_ms: u64,
    /// Longest a single SQL statement may run (PostgreSQL `statement_timeout`; on SQLite the busy
    /// timeout, how long a statement waits for a lock) before it fails and the write is retried.
    pub database_statement_timeout_ms: u64,
    /// Requests in flight on the HTTP API (`/v1`, the WebSocket upgrade excepted) beyond which
    /// new ones are answered 503 `overloaded` with `Retry-After: 1`.
    pub http_max_concurrent_requests: usize,
    /// Base of the WebSocket URLs in tickets (`ws://host:port`); derived from `listen` when absent.
    pub public_url: Option<String>,
    pub log: String,
    pub log_format: LogFormat,
    /// Signs tickets and resume tokens; when absent one is generated once and kept in the database.
    pub secret: Option<String>,
    pub ticket_ttl_ms: u64,
    pub resume_grace_ms: u64,
    pub outbound_queue: usize,
    pub slow_client_timeout_ms: u64,
    /// SO_SNDBUF of each WebSocket connection; none keeps the OS default.
    pub socket_send_buffer: Option<usize>,
    pub max_frame_bytes: usize,
    pub heartbeat_interval_ms: u64,
    pub client_timeout_ms: u64,
    /// A room with nobody in it (no players, no reservations) closes after this long.
    pub empty_room_timeout_ms: u64,
    /// A closed room still answers `GET` for this long before it is forgotten.
    pub closed_room_retention_ms: u64,
    /// 0 (default): rooms run on the HTTP worker arbiters (one per core), beside the sessions, so a
    /// tick's fan-out never crosses threads. N: N dedicated room arbiters.
    pub room_threads: usize,
    /// HTTP worker arbiters; 0 means one per available core.
    pub workers: usize,
    /// Snapshot every this many ticks (default: once a second at 20 Hz).
    pub snapshot_every_ticks: u32,
    pub persistence_flush_interval_ms: u64,
    pub persistence_batch_size: usize,
    pub persistence_max_buffered: usize,
    /// Snapshots kept per room by pruning.
    pub snapshots_kept: u32,
    /// Serve the browser playground at `/playground` (turn it off in production).
    pub playground: bool,
    /// Where match results and room closings are POSTed (`http://` or `https://`); none turns
    /// webhooks off (no events are recorded).
    pub webhook_url: Option<String>,
    /// HMAC-SHA256 key of the `Skirmish-Signature` header; required (16+ characters) with a URL.
    pub webhook_secret: Option<String>,
    /// First retry delay after a failed delivery; doubled per attempt (with jitter) up to an hour.
    pub webhook_retry_base_ms: u64,
    /// An event still undelivered this long after it was recorded is marked failed (24 h).
    pub webhook_max_age_ms: u64,
    /// Timeout of one delivery request, connecting included.
    pub webhook_timeout_ms: u64,
    /// Cluster mode: nodes share one PostgreSQL, which holds the room directory and the leases.
    pub cluster: bool,
    /// This node's name in the cluster; generated when absent.
    pub node_id: Option<String>,
    /// A node silent for this long is dead and its rooms are claimed by the others (1000-60000).
    pub node_ttl_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            api_key: None,
            database_url: "sqlite://data/skirmish.db?mode=rwc".into(),
            database_max_connections: 10,
            database_min_connections: 1,
            database_acquire_timeout_ms: 3000,
            database_statement_timeout_ms: 5000,
            http_max_concurrent_requests: 256,
            public_url: None,
            log: "info".into(),
            log_format: LogFormat::Pretty,
            secret: None,
            ticket_ttl_ms: 30_000,
            resume_grace_ms: 15_000,
            outbound_queue: 64,
            slow_client_timeout_ms: 5000,
            socket_send_buffer: None,
            max_frame_bytes: protocol::MAX_CLIENT_FRAME_BYTES,
            heartbeat_interval_ms: 5000,
            client_timeout_ms: 30_000,
            empty_room_timeout_ms: 60_000,
            closed_room_retention_ms: 300_000,
            room_threads: 0,
            workers: 0,
            snapshot_every_ticks: 20,
            persistence_flush_interval_ms: 250,
            persistence_batch_size: 500,
            persistence_max_buffered: 20_000,
            snapshots_kept: 10,
            playground: true,
            webhook_url: None,
            webhook_secret: None,
            webhook_retry_base_ms: 1000,
            webhook_max_age_ms: 24 * 3600 * 1000,
            webhook_timeout_ms: 10_000,
            cluster: false,
            node_id: None,
            node_ttl_ms: 5000,
        }
    }
}

/// A configuration value that cannot be used; the message names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid configuration: {0}")]
    Parse(#[from] Box<figment::Error>),
    #[error("invalid configuration: {key}: {reason}")]
    Invalid { key: &'static str, reason: String },
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

impl Config {
    /// Reads `skirmish.toml` (if present) and the environment, then validates.
    pub fn load() -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file("skirmish.toml"));
        // DATABASE_URL is the conventional name; SKIRMISH_DATABASE_URL wins over it.
        if let Ok(url) = std::env::var("DATABASE_URL") {
            figment = figment.merge(Serialized::default("database_url", url));
        }
        let config: Config = figment
            .merge(Env::prefixed("SKIRMISH_").ignore(&["CONFIG"]))
            .extract()
            .map_err(|e| ConfigError::Parse(Box::new(e)))?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(key) = &self.api_key
            && key.len() < 16
        {
            return Err(invalid("api_key", "must be at least 16 characters"));
        }
        if let Some(secret) = &self.secret
            && secret.len() < 32
        {
            return Err(invalid("secret", "must be at least 32 characters"));
        }
        if !(self.database_url.starts_with("sqlite:") || self.database_url.starts_with("postgres"))
        {
            return Err(invalid(
                "database_url",
                "must start with sqlite: or postgres://",
            ));
        }
        if self.database_max_connections == 0
            || self.database_min_connections > self.database_max_connections
        {
            return Err(invalid(
                "database_max_connections",
                "must be at least 1 and at least database_min_connections",
            ));
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("ws://") || url.starts_with("wss://"))
        {
            return Err(invalid("public_url", "must start with ws:// or wss://"));
        }
        self.validate_webhooks()?;
        self.validate_cluster()?;
        tracing_subscriber::EnvFilter::try_new(&self.log)
            .map_err(|e| invalid("log", e.to_string()))?;
        let positive: [(&'static str, u64); 11] = [
            ("ticket_ttl_ms", self.ticket_ttl_ms),
            ("resume_grace_ms", self.resume_grace_ms),
            ("slow_client_timeout_ms", self.slow_client_timeout_ms),
            ("heartbeat_interval_ms", self.heartbeat_interval_ms),
            ("client_timeout_ms", self.client_timeout_ms),
            (
                "database_acquire_timeout_ms",
                self.database_acquire_timeout_ms,
            ),
            (
                "persistence_flush_interval_ms",
                self.persistence_flush_interval_ms,
            ),
            ("snapshot_every_ticks", u64::from(self.snapshot_every_ticks)),
            ("snapshots_kept", u64::from(self.snapshots_kept)),
            (
                "database_statement_timeout_ms",
                self.database_statement_timeout_ms,
            ),
            (
                "http_max_concurrent_requests",
                self.http_max_concurrent_requests as u64,
            ),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(invalid(key, "must be greater than 0"));
            }
        }
        if !(2..=4096).contains(&self.outbound_queue) {
            return Err(invalid(
                "outbound_queue",
                "must be between 2 and 4096 frames",
            ));
        }
        if !(64..=1 << 20).contains(&self.max_frame_bytes) {
            return Err(invalid("max_frame_bytes", "must be between 64 and 1048576"));
        }
        if self.persistence_batch_size == 0
            || self.persistence_max_buffered < self.persistence_batch_size
        {
            return Err(invalid(
                "persistence_max_buffered",
                "must be at least persistence_batch_size, which must be at least 1",
            ));
        }
        Ok(())
    }

    fn validate_webhooks(&self) -> Result<(), ConfigError> {
        let Some(url) = &self.webhook_url else {
            return Ok(());
        };
        match reqwest::Url::parse(url) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() => {}
            _ => {
                return Err(invalid(
                    "webhook_url",
                    "must be an absolute http:// or https:// URL",
                ));
            }
        }
        match &self.webhook_secret {
            None => {
                return Err(invalid(
                    "webhook_secret",
                    "is required when webhook_url is set",
                ));
            }
            Some(secret) if secret.len() < 16 => {
                return Err(invalid("webhook_secret", "must be at least 16 characters"));
            }
            Some(_) => {}
        }
        let positive: [(&'static str, u64); 3] = [
            ("webhook_retry_base_ms", self.webhook_retry_base_ms),
            ("webhook_max_age_ms", self.webhook_max_age_ms),
            ("webhook_timeout_ms", self.webhook_timeout_ms),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(invalid(key, "must be greater than 0"));
            }
        }
        Ok(())
    }

    fn validate_cluster(&self) -> Result<(), ConfigError> {
        if let Some(id) = &self.node_id
            && (id.is_empty()
                || id.len() > 64
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'))
        {
            return Err(invalid(
                "node_id",
                "must be 1 to 64 characters of [A-Za-z0-9._-]",
            ));
        }
        if !(1000..=60_000).contains(&self.node_ttl_ms) {
            return Err(invalid("node_ttl_ms", "must be between 1000 and 60000"));
        }
        if !self.cluster {
            return Ok(());
        }
        if !self.database_url.starts_with("postgres") {
            return Err(invalid(
                "cluster",
                "cluster mode needs PostgreSQL (database_url postgres://...); SQLite is one node's",
            ));
        }
        if self.public_url.is_none() && self.listen.ip().is_unspecified() {
            return Err(invalid(
                "public_url",
                "is required in cluster mode when listen is 0.0.0.0 or [::]: the other nodes and \
                 the clients reach this node there",
            ));
        }
        // Nodes forward API calls to each other with the caller's key, and verify each other's
        // tickets: every node must have the same key and secret.
        if self.api_key.is_none() {
            return Err(invalid(
                "api_key",
                "is required in cluster mode (the same on every node)",
            ));
        }
        Ok(())
    }

    /// This node's id in the cluster: `node_id`, or one made up at start.
    pub fn node_id(&self) -> String {
        self.node_id
            .clone()
            .unwrap_or_else(|| format!("node-{:08x}", rand::random::<u32>()))
    }

    pub fn node_ttl(&self) -> Duration {
        Duration::from_millis(self.node_ttl_ms)
    }

    pub fn ws_base(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("ws://{}", self.listen),
        }
    }

    pub fn resume_grace(&self) -> Duration {
        Duration::from_millis(self.resume_grace_ms)
    }

    /// The bound on a session's waiting messages, in bytes: room for `outbound_queue` frames as large
    /// as the largest a client may send (a relayed chat line is about that size), and so for many
    /// times more of the small ones (events).
    pub fn outbound_max_bytes(&self) -> usize {
        self.outbound_queue.saturating_mul(self.max_frame_bytes)
    }

    pub fn ticket_ttl(&self) -> Duration {
        Duration::from_millis(self.ticket_ttl_ms)
    }

    pub fn workers(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn invalid_values_name_their_key() {
        let cases = [
            (
                Config {
                    outbound_queue: 0,
                    ..Config::default()
                },
                "outbound_queue",
            ),
            (
                Config {
                    api_key: Some("short".into()),
                    ..Config::default()
                },
                "api_key",
            ),
            (
                Config {
                    database_url: "mysql://x".into(),
                    ..Config::default()
                },
                "database_url",
            ),
            (
                Config {
                    log: "[[[".into(),
                    ..Config::default()
                },
                "log",
            ),
            (
                Config {
                    ticket_ttl_ms: 0,
                    ..Config::default()
                },
                "ticket_ttl_ms",
            ),
            (
                Config {
                    webhook_url: Some("ftp://example.com/hooks".into()),
                    webhook_secret: Some("0123456789abcdef".into()),
                    ..Config::default()
                },
                "webhook_url",
            ),
            (
                Config {
                    webhook_url: Some("http://127.0.0.1:9/hooks".into()),
                    ..Config::default()
                },
                "webhook_secret",
            ),
            (
                Config {
                    webhook_url: Some("http://127.0.0.1:9/hooks".into()),
                    webhook_secret: Some("too-short".into()),
                    ..Config::default()
                },
                "webhook_secret",
            ),
            (
                Config {
                    webhook_url: Some("https://hooks.example.com/skirmish".into()),
                    webhook_secret: Some("0123456789abcdef".into()),
                    webhook_retry_base_ms: 0,
                    ..Config::default()
                },
                "webhook_retry_base_ms",
            ),
            (
                Config {
                    database_statement_timeout_ms: 0,
                    ..Config::default()
                },
                "database_statement_timeout_ms",
            ),
            (
                Config {
                    http_max_concurrent_requests: 0,
                    ..Config::default()
                },
                "http_max_concurrent_requests",
            ),
            (
                Config {
                    cluster: true,
                    api_key: Some("0123456789abcdef".into()),
                    ..Config::default()
                },
                "cluster",
            ),
            (
                Config {
                    cluster: true,
                    database_url: "postgres://postgres@127.0.0.1/skirmish".into(),
                    ..Config::default()
                },
                "api_key",
            ),
            (
                Config {
                    cluster: true,
                    api_key: Some("0123456789abcdef".into()),
                    database_url: "postgres://postgres@127.0.0.1/skirmish".into(),
                    listen: "0.0.0.0:8080".parse().unwrap(),
                    ..Config::default()
                },
                "public_url",
            ),
            (
                Config {
                    node_ttl_ms: 999,
                    ..Config::default()
                },
                "node_ttl_ms",
            ),
            (
                Config {
                    node_id: Some("a b".into()),
                    ..Config::default()
                },
                "node_id",
            ),
        ];
        for (config, key) in cases {
            let message = config.validate().unwrap_err().to_string();
            assert!(message.contains(key), "{message:?} names {key}");
        }
    }
}
