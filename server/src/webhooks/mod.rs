//! Webhooks: signed `match.finished` and `room.closed` events, delivered at least once.
//!
//! - [`events`]: the event bodies, built when a room ends and stored whole in the outbox.
//! - [`signature`]: the `Skirmish-Signature` header.
//! - [`sender`]: the task that drains the outbox: claim due events (a lease, so that with several
//!   nodes on one database each event is sent by one node at a time), POST them, record the
//!   outcome; retries with exponential backoff and jitter, gives up after `webhook_max_age_ms`.
//!
//! Events enter the outbox in the persistence actor's transaction that stores the change they
//! report (see `persistence::outbox`), so an event exists exactly when its change was committed and
//! survives crashes and database outages; the sender runs on an arbiter of its own, so a slow or
//! dead receiver never delays a room.

pub mod events;
pub mod sender;
pub mod signature;

use std::sync::Arc;
use std::time::Duration;

use actix_rt::Arbiter;
use tokio::sync::{Notify, oneshot, watch};
use tracing::{info, warn};

use crate::config::Config;

/// What the sender needs from the configuration.
#[derive(Clone)]
pub struct WebhookSettings {
    pub url: String,
    pub secret: Vec<u8>,
    /// First retry delay; doubled per attempt with jitter, at most [`sender::MAX_BACKOFF`].
    pub retry_base: Duration,
    /// Undelivered this long after it was recorded: failed.
    pub max_age: Duration,
    /// One request, connect included.
    pub timeout: Duration,
}

impl std::fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("url", &self.url)
            .field("retry_base", &self.retry_base)
            .field("max_age", &self.max_age)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl WebhookSettings {
    /// `None` when webhooks are off (no `webhook_url`). The configuration is already validated.
    pub fn from_config(config: &Config) -> Option<Self> {
        let url = config.webhook_url.clone()?;
        Some(Self {
            url,
            secret: config
                .webhook_secret
                .clone()
                .unwrap_or_default()
                .into_bytes(),
            retry_base: Duration::from_millis(config.webhook_retry_base_ms),
            max_age: Duration::from_millis(config.webhook_max_age_ms),
            timeout: Duration::from_millis(config.webhook_timeout_ms),
        })
    }
}

/// Could not start the sender.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the webhook HTTP client: {0}")]
pub struct StartError(#[from] reqwest::Error);

/// The running sender: wake it when events were stored, stop it at shutdown.
pub struct Webhooks {
    wake: Arc<Notify>,
    stop: watch::Sender<bool>,
    done: std::sync::Mutex<Option<oneshot::Receiver<()>>>,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Webhooks")
    }
}

impl Webhooks {
    /// Starts the sender on an arbiter (thread) of its own.
    pub fn start(
        storage: persistence::Storage,
        settings: WebhookSettings,
    ) -> Result<Arc<Self>, StartError> {
        let client = sender::client(&settings)?;
        let wake = Arc::new(Notify::new());
        let (stop, stopping) = watch::channel(false);
        let (done_tx, done_rx) = oneshot::channel();
        info!(url = %settings.url, "webhooks on");
        let sender = sender::Sender::new(storage, settings, client, wake.clone(), stopping);
        let arbiter = Arbiter::new();
        arbiter.spawn(async move {
            sender.run().await;
            let _ = done_tx.send(());
            Arbiter::current().stop();
        });
        Ok(Arc::new(Self {
            wake,
            stop,
            done: std::sync::Mutex::new(Some(done_rx)),
        }))
    }

    /// Woken after events were committed (by the persistence actor).
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Stops claiming events and waits (at most `limit`) for the attempts under way to be recorded.
    /// What is not delivered stays in the outbox for the next start; an attempt cut short is
    /// retried once its claim's lease has run out.
    pub async fn stop(&self, limit: Duration) {
        let _ = self.stop.send(true);
        let done = self.done.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(done) = done
            && tokio::time::timeout(limit, done).await.is_err()
        {
            warn!("webhook sender still busy at shutdown; its claims will expire");
        }
    }
}
