//! The sender: one task per process, on an arbiter of its own, that drains the outbox.
//!
//! Each round it claims up to [`CLAIM_BATCH`] due events under a fresh claim token with a lease
//! of twice the request timeout plus [`LEASE_MARGIN`], POSTs them concurrently and records the
//! outcomes under that token, in one transaction per round:
//! - a 2xx answer: delivered;
//! - anything else (another status, a timeout, a refused connection): retried after
//!   `retry_base · 2^(attempts-1)`, at most [`MAX_BACKOFF`], half of it random (jitter, so that
//!   the events of an outage do not come back in lockstep), and never later than the end of the
//!   retry window; an attempt that fails after the window (`max_age` after the event was
//!   recorded) marks the event failed.
//!
//! Between rounds it sleeps until woken by the persistence actor (new events were committed), its
//! earliest scheduled retry, or [`POLL_INTERVAL`] (events of other nodes, expired leases, a
//! database that came back). A database error is logged and the round is tried again at the next
//! poll: events wait in the outbox, they are never lost. If recording an outcome fails, the event
//! is sent again once its lease runs out (at least once, never at most once).

use std::sync::Arc;
use std::time::{Duration, Instant};

use persistence::outbox::unix_ms;
use persistence::{ClaimedEvent, Outcome, Storage};
use time::OffsetDateTime;
use tokio::sync::{Notify, watch};
use tracing::{debug, info, warn};

use super::{WebhookSettings, signature};
use crate::metrics as m;

/// Events claimed (and sent concurrently) per round.
pub const CLAIM_BATCH: u64 = 16;
/// Longest wait between two retries of an event.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// Added to twice the request timeout to make a claim's lease: time to record the outcome.
pub const LEASE_MARGIN: Duration = Duration::from_secs(5);
/// Longest sleep between two looks at the outbox.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How often the outbox gauges are refreshed.
const STATS_EVERY: Duration = Duration::from_secs(2);
/// Delivered events are deleted after this long (failed ones are kept for an operator).
const KEEP_DELIVERED: Duration = Duration::from_secs(7 * 24 * 3600);
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// How often at most a failing database is logged while it keeps failing.
const DB_ERROR_LOG_EVERY: Duration = Duration::from_secs(10);
/// Longest error text kept in `last_error`.
const MAX_ERROR_LEN: usize = 500;

/// The HTTP client of the deliveries: the request timeout covers connecting, no redirects (a
/// receiver that moved must be reconfigured, not followed with a signed body).
pub fn client(settings: &WebhookSettings) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("skirmish-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// The delay before the retry that follows attempt number `attempts` (1 after the first):
/// `base · 2^(attempts-1)` capped at [`MAX_BACKOFF`], of which the upper half is scaled by
/// `jitter` (in `[0, 1)`).
pub fn backoff(base: Duration, attempts: u32, jitter: f64) -> Duration {
    let doublings = attempts.saturating_sub(1).min(31);
    let full = base.saturating_mul(1 << doublings).min(MAX_BACKOFF);
    let half = full / 2;
    half + half.mul_f64(jitter.clamp(0.0, 1.0))
}

/// See the module documentation.
pub struct Sender {
    storage: Storage,
    settings: WebhookSettings,
    client: reqwest::Client,
    wake: Arc<Notify>,
    stopping: watch::Receiver<bool>,
    lease_ms: i64,
    last_db_error_log: Option<Instant>,
}

impl Sender {
    pub fn new(
        storage: Storage,
        settings: WebhookSettings,
        client: reqwest::Client,
        wake: Arc<Notify>,
        stopping: watch::Receiver<bool>,
    ) -> Self {
        let lease = settings.timeout.saturating_mul(2) + LEASE_MARGIN;
        Self {
            storage,
            client,
            wake,
            stopping,
            lease_ms: i64::try_from(lease.as_millis()).unwrap_or(i64::MAX),
            settings,
            last_db_error_log: None,
        }
    }

    /// Runs until stopped.
    pub async fn run(mut self) {
        let mut next_stats = Instant::now();
        let mut next_prune = Instant::now();
        let mut next_due: Option<Instant> = None;
        let mut db_failing = false;
        loop {
            if *self.stopping.borrow() {
                break;
            }
            let now = Instant::now();
            if now >= next_stats {
                self.report_stats().await;
                next_stats = now + STATS_EVERY;
            }
            if now >= next_prune {
                self.prune().await;
                next_prune = now + PRUNE_EVERY;
            }
            let token = uuid::Uuid::new_v4().to_string();
            let claimed = self
                .storage
                .claim_events(
                    unix_ms(OffsetDateTime::now_utc()),
                    self.lease_ms,
                    CLAIM_BATCH,
                    &token,
                )
                .await;
            match claimed {
                Ok(events) => {
                    if db_failing {
                        info!("webhook sender: the database answers again");
                        db_failing = false;
                    }
                    if !events.is_empty() {
                        debug!(claimed = events.len(), "webhook round");
                        let attempts = events.into_iter().map(|e| self.attempt(e));
                        let outcomes = futures_util::future::join_all(attempts).await;
                        for retry_in in outcomes.iter().filter_map(|(_, _, retry_in)| *retry_in) {
                            let at = Instant::now() + retry_in;
                            next_due = Some(next_due.map_or(at, |d| d.min(at)));
                        }
                        let outcomes: Vec<(String, Outcome)> = outcomes
                            .into_iter()
                            .map(|(id, outcome, _)| (id, outcome))
                            .collect();
                        self.record(&token, &outcomes).await;
                        // More may be due already: look again before sleeping.
                        continue;
                    }
                }
                Err(error) => {
                    db_failing = true;
                    self.db_error("claiming due events", &error);
                }
            }
            let mut wait = POLL_INTERVAL;
            if let Some(due) = next_due {
                wait = wait.min(due.saturating_duration_since(Instant::now()));
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                changed = self.stopping.changed() => {
                    if changed.is_err() {
                        break; // the handle is gone: nobody can stop us later
                    }
                }
            }
            if next_due.is_some_and(|due| due <= Instant::now()) {
                next_due = None;
            }
        }
        debug!("webhook sender stopped");
    }

    /// One delivery attempt of a claimed event: its outcome to record, and when it is due again
    /// if it will be retried.
    async fn attempt(&self, event: ClaimedEvent) -> (String, Outcome, Option<Duration>) {
        let signed_at = OffsetDateTime::now_utc().unix_timestamp();
        let request = self
            .client
            .post(&self.settings.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("Skirmish-Event-Id", &event.id)
            .header(
                "Skirmish-Signature",
                signature::header(&self.settings.secret, signed_at, event.payload.as_bytes()),
            )
            .body(event.payload.clone());
        let result = match request.send().await {
            Ok(response) if response.status().is_success() => Ok(()),
            Ok(response) => Err(format!("HTTP {}", response.status())),
            Err(error) => Err(error_chain(&error)),
        };
        let now = OffsetDateTime::now_utc();
        let age: Duration = (now - event.created_at).try_into().unwrap_or_default();
        match result {
            Ok(()) => {
                m::webhook_delivered(age);
                debug!(event_id = %event.id, event_type = %event.event_type, attempts = event.attempts, "webhook delivered");
                let outcome = Outcome::Delivered {
                    at_ms: unix_ms(now),
                };
                (event.id, outcome, None)
            }
            Err(error) if age >= self.settings.max_age => {
                m::webhook_failed();
                warn!(event_id = %event.id, event_type = %event.event_type, attempts = event.attempts, %error,
                    "webhook delivery failed for the whole retry window: the event is marked failed");
                (event.id, Outcome::Failed { error }, None)
            }
            Err(error) => {
                m::webhook_retried();
                let left = self.settings.max_age.saturating_sub(age);
                let delay =
                    backoff(self.settings.retry_base, event.attempts, rand::random()).min(left);
                warn!(event_id = %event.id, event_type = %event.event_type, attempts = event.attempts,
                    retry_in_ms = delay.as_millis() as u64, %error, "webhook delivery failed; retrying");
                let outcome = Outcome::Retry {
                    next_attempt_at_ms: unix_ms(now + delay),
                    error,
                };
                (event.id, outcome, Some(delay))
            }
        }
    }

    /// Records a round's outcomes in one transaction. If that fails, the events are attempted
    /// again once their claim's lease runs out (so a delivered one may be delivered twice).
    async fn record(&mut self, token: &str, outcomes: &[(String, Outcome)]) {
        match self.storage.record_outcomes(token, outcomes).await {
            Ok(recorded) if recorded < outcomes.len() => debug!(
                lost = outcomes.len() - recorded,
                "some claims ran out before their outcome was recorded"
            ),
            Ok(_) => {}
            Err(error) => {
                warn!(%error, events = outcomes.len(),
                    "could not record webhook outcomes; the events are attempted again after their lease");
            }
        }
    }

    async fn report_stats(&mut self) {
        match self.storage.outbox_stats().await {
            Ok(stats) => {
                let oldest_age = stats.oldest_pending.map_or(Duration::ZERO, |at| {
                    (OffsetDateTime::now_utc() - at)
                        .try_into()
                        .unwrap_or_default()
                });
                m::webhook_outbox(stats.pending, oldest_age);
            }
            Err(error) => self.db_error("reading the outbox figures", &error),
        }
    }

    async fn prune(&mut self) {
        let before = OffsetDateTime::now_utc() - KEEP_DELIVERED;
        match self.storage.prune_delivered_events(unix_ms(before)).await {
            Ok(0) => {}
            Ok(deleted) => debug!(deleted, "pruned delivered webhook events"),
            Err(error) => self.db_error("pruning delivered events", &error),
        }
    }

    fn db_error(&mut self, what: &str, error: &persistence::StorageError) {
        let now = Instant::now();
        if self
            .last_db_error_log
            .is_none_or(|at| now.duration_since(at) >= DB_ERROR_LOG_EVERY)
        {
            warn!(%error, "webhook sender: {what} failed; events wait in the outbox");
            self.last_db_error_log = Some(now);
        }
    }
}

/// An error with its causes (`error sending request: connection refused`), bounded in length.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    if text.len() > MAX_ERROR_LEN {
        let mut end = MAX_ERROR_LEN;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_in_the_upper_half_and_is_capped() {
        let base = Duration::from_secs(1);
        assert_eq!(backoff(base, 1, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(base, 1, 0.5), Duration::from_millis(750));
        assert_eq!(backoff(base, 2, 0.0), Duration::from_secs(1));
        assert_eq!(backoff(base, 3, 0.5), Duration::from_secs(3));
        assert_eq!(backoff(base, 40, 0.0), MAX_BACKOFF / 2);
        assert_eq!(backoff(base, 40, 1.0), MAX_BACKOFF);
        assert_eq!(backoff(base, 0, 0.0), Duration::from_millis(500));
    }

    #[test]
    fn error_chains_are_bounded() {
        let long = std::io::Error::other("x".repeat(2000));
        assert_eq!(error_chain(&long).len(), MAX_ERROR_LEN);
    }
}
