//! The persistence actor: one per process, on an arbiter of its own, between the rooms and the
//! database.
//!
//! Rooms send it snapshots, status changes and results with `do_send` and never wait for the
//! database. It coalesces them in a bounded [`WriteBuffer`] (a room's newer snapshot replaces its
//! unflushed older one) and writes them with [`Storage::write_batch`] (one transaction, one
//! multi-row `INSERT` per table) every `flush_interval`, or as soon as `batch_size` rows are
//! waiting. Writes never overlap: one is in flight at a time (an in-flight flag, with the write
//! spawned on the actor's context so that the mailbox keeps draining into the bounded buffer while
//! the database works, instead of piling up in actix's unbounded `do_send` queue).
//!
//! On a database error the batch goes back into the buffer (newer data received meanwhile wins)
//! and the write is retried with exponential backoff and equal jitter. Past `max_buffered` rows the snapshots that
//! waited longest are shed (counted in `skirmish_persistence_shed_total` and logged); room statuses
//! and results are never shed. [`Flush`] answers once everything received before it is committed.
//!
//! Webhook events come in [`SaveReported`], with the room status (and results) they report; the
//! buffer keeps them together so that they commit in one transaction (the transactional outbox).
//! After a commit that wrote events, the webhook sender is woken ([`PersistenceActor::wake_on_events`]).
//!
//! Metrics: gauge `skirmish_persistence_queue_depth` (rows buffered), histogram
//! `skirmish_persistence_flush_seconds` (successful writes), counters
//! `skirmish_persistence_shed_total`, `skirmish_persistence_rows_written_total`,
//! `skirmish_persistence_write_errors_total`, `skirmish_persistence_rejected_total` (records that
//! can never be stored, dropped on arrival or with their batch) and
//! `skirmish_persistence_pruned_total`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::fut::wrap_future;
use actix::prelude::*;
use persistence::buffer::WriteBuffer;
use persistence::{
    Batch, OutboxEvent, ResultRecord, RoomRecord, SnapshotRecord, Storage, StorageError,
};
use tokio::sync::{Notify, oneshot};
use tracing::Instrument;

/// First retry delay after a failed write; doubled per consecutive failure up to
/// [`PersistenceConfig::retry_backoff_max`].
const RETRY_BACKOFF_MIN: Duration = Duration::from_millis(100);

/// "Equal jitter": half of `ceiling` plus a random share (`fraction` in `[0, 1)`) of the other half.
/// Servers that lost the same database do not retry in lockstep, and no wait is shorter than half
/// the exponential step, so the backoff still backs off.
fn equal_jitter(ceiling: Duration, fraction: f64) -> Duration {
    let half = ceiling / 2;
    half + half.mul_f64(fraction.clamp(0.0, 1.0))
}

/// How often at most a burst of shedding is logged (it is counted every time).
const SHED_LOG_INTERVAL: Duration = Duration::from_secs(1);

/// Tuning of the persistence actor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersistenceConfig {
    /// Buffered rows are written at least this often.
    pub flush_interval: Duration,
    /// A write starts as soon as this many rows are buffered, and takes at most this many.
    pub batch_size: usize,
    /// Bound of the buffer in rows; past it the oldest snapshots are shed.
    pub max_buffered: usize,
    /// Longest wait between two attempts while the database fails.
    pub retry_backoff_max: Duration,
    /// Snapshots kept per room by pruning; 0 disables pruning.
    pub prune_keep: u32,
    /// Prune the rooms written to since the last prune after this many successful writes.
    pub prune_every: u32,
    /// Consecutive failed attempts after which waiting [`Flush`] callers get an error (the data
    /// stays buffered and is still retried), so that shutdown does not hang on a dead database.
    pub flush_give_up_after: u32,
}

impl Default for PersistenceConfig {
    fn default() -> Self {
        Self {
            flush_interval: Duration::from_millis(250),
            batch_size: 500,
            max_buffered: 10_000,
            retry_backoff_max: Duration::from_secs(5),
            prune_keep: 10,
            prune_every: 40,
            flush_give_up_after: 5,
        }
    }
}

/// Why a [`Flush`] could not confirm that everything before it is committed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FlushError {
    /// The database keeps failing; the data is still buffered and retried, so a later [`Flush`]
    /// may succeed.
    #[error("the database write keeps failing (the data is kept and retried)")]
    Storage(#[source] Arc<StorageError>),
    /// Some records can never be stored (a value does not fit its column) and were dropped.
    #[error("records were rejected by the database and dropped")]
    Rejected(#[source] Arc<StorageError>),
    /// The actor stopped before the data was committed.
    #[error("the persistence actor stopped before the data was committed")]
    Stopped,
}

/// A room's latest state; replaces the room's unflushed older snapshot.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SaveSnapshot(pub SnapshotRecord);

/// A room was created or changed status (closed with `closed_at`); upserted on the room id.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SaveRoom(pub RoomRecord);

/// The results of a finished match; never shed.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SaveResults(pub Vec<ResultRecord>);

/// A room's status with the webhook events that report it (and the results a `match.finished`
/// event carries): stored in one transaction; never shed.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SaveReported {
    pub room: RoomRecord,
    pub results: Vec<ResultRecord>,
    pub events: Vec<OutboxEvent>,
}

/// Answers once everything received before it is committed (or with why not).
#[derive(Debug, Message)]
#[rtype(result = "Result<(), FlushError>")]
pub struct Flush;

/// Asks how the actor is doing: what is buffered and whether the database keeps failing.
#[derive(Debug, Message)]
#[rtype(result = "PersistenceStatus")]
pub struct Status;

/// The answer to [`Status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PersistenceStatus {
    /// Rows waiting to be written (the in-flight batch excluded).
    pub buffered: usize,
    /// Failed write attempts since the last successful one.
    pub consecutive_failures: u32,
}

type Waiter = oneshot::Sender<Result<(), FlushError>>;

/// The persistence actor. See the module documentation.
pub struct PersistenceActor {
    storage: Storage,
    config: PersistenceConfig,
    buffer: WriteBuffer,
    /// A write or a prune is running; nothing else may start.
    in_flight: bool,
    /// Messages received so far; a [`Flush`] waits for the count at its arrival.
    received: u64,
    /// Every message up to this count is committed (or was shed).
    committed: u64,
    waiters: Vec<(u64, Waiter)>,
    /// Current retry delay; `None` while writes succeed.
    backoff: Option<Duration>,
    /// No write is attempted before this instant (a retry is scheduled for it).
    retry_at: Option<Instant>,
    consecutive_failures: u32,
    writes_since_prune: u32,
    /// Rooms with snapshots written since the last prune.
    touched: HashSet<String>,
    shed_unlogged: u64,
    last_shed_log: Option<Instant>,
    /// Woken after a commit that stored webhook events.
    on_events: Option<std::sync::Arc<Notify>>,
}

impl PersistenceActor {
    /// An actor writing to `storage`; start it with `start_in_arbiter` on an arbiter of its own.
    pub fn new(storage: Storage, config: PersistenceConfig) -> Self {
        Self {
            buffer: WriteBuffer::new(config.max_buffered),
            storage,
            config,
            in_flight: false,
            received: 0,
            committed: 0,
            waiters: Vec::new(),
            backoff: None,
            retry_at: None,
            consecutive_failures: 0,
            writes_since_prune: 0,
            touched: HashSet::new(),
            shed_unlogged: 0,
            last_shed_log: None,
            on_events: None,
        }
    }

    /// Wakes `notify` after every commit that stored webhook events, so the sender delivers them
    /// at once instead of at its next poll.
    pub fn wake_on_events(mut self, notify: std::sync::Arc<Notify>) -> Self {
        self.on_events = Some(notify);
        self
    }

    /// Bookkeeping after a message changed the buffer: counts it, accounts for shedding, and
    /// starts a write if a full batch is waiting.
    fn received_one(&mut self, shed: usize, ctx: &mut Context<Self>) {
        self.received += 1;
        if shed > 0 {
            self.note_shed(shed);
        }
        if self.buffer.is_empty() && !self.in_flight {
            // Everything was coalesced away or shed: nothing is left to wait for.
            self.committed = self.received;
        }
        self.report_depth();
        if self.buffer.len() >= self.config.batch_size {
            self.start_write(ctx);
        }
    }

    fn note_shed(&mut self, shed: usize) {
        metrics::counter!("skirmish_persistence_shed_total").increment(shed as u64);
        self.shed_unlogged += shed as u64;
        let now = Instant::now();
        if self
            .last_shed_log
            .is_none_or(|at| now.duration_since(at) >= SHED_LOG_INTERVAL)
        {
            tracing::warn!(
                shed = self.shed_unlogged,
                max_buffered = self.config.max_buffered,
                "persistence buffer full: shed the oldest unflushed snapshots"
            );
            self.shed_unlogged = 0;
            self.last_shed_log = Some(now);
        }
    }

    fn report_depth(&self) {
        metrics::gauge!("skirmish_persistence_queue_depth").set(self.buffer.len() as f64);
    }

    /// Starts one write of up to `batch_size` rows, unless one is running, a retry is pending or
    /// there is nothing to write.
    fn start_write(&mut self, ctx: &mut Context<Self>) {
        if self.in_flight || self.buffer.is_empty() {
            return;
        }
        if self.retry_at.is_some_and(|at| Instant::now() < at) {
            return;
        }
        let batch = self.buffer.take(self.config.batch_size);
        // If this batch empties the buffer, its commit covers every message received so far.
        let covers = self.buffer.is_empty().then_some(self.received);
        self.in_flight = true;
        self.report_depth();
        let storage = self.storage.clone();
        let started = Instant::now();
        // A root span per write: a flush serves many rooms and requests, so it has no one parent.
        let span = tracing::info_span!(
            parent: None,
            "persistence.flush",
            rows = batch.len(),
            rooms = batch.rooms.len(),
            snapshots = batch.snapshots.len(),
            results = batch.results.len(),
            otel.status_code = tracing::field::Empty,
            error = tracing::field::Empty,
        );
        let write = async move {
            let result = storage.write_batch(&batch).await;
            (batch, result)
        }
        .instrument(span.clone());
        ctx.spawn(
            wrap_future::<_, Self>(write).map(move |(batch, result), act, ctx| {
                let _flush = span.enter();
                act.in_flight = false;
                match result {
                    Ok(()) => act.written(batch, covers, started.elapsed(), ctx),
                    Err(e) => {
                        span.record("otel.status_code", "ERROR");
                        span.record("error", tracing::field::display(&e));
                        act.write_failed(batch, e, ctx)
                    }
                }
                act.report_depth();
            }),
        );
    }

    fn written(
        &mut self,
        batch: Batch,
        covers: Option<u64>,
        took: Duration,
        ctx: &mut Context<Self>,
    ) {
        metrics::histogram!("skirmish_persistence_flush_seconds").record(took.as_secs_f64());
        metrics::counter!("skirmish_persistence_rows_written_total").increment(batch.len() as u64);
        if !batch.events.is_empty() {
            crate::metrics::webhook_enqueued(batch.events.len());
            if let Some(notify) = &self.on_events {
                notify.notify_one();
            }
        }
        if self.consecutive_failures > 0 {
            tracing::info!(
                failures = self.consecutive_failures,
                "persistence recovered: the database accepts writes again"
            );
        }
        self.backoff = None;
        self.retry_at = None;
        self.consecutive_failures = 0;
        if let Some(covers) = covers {
            self.committed = self.committed.max(covers);
        }
        self.answer_waiters();
        if self.config.prune_keep > 0 {
            self.touched
                .extend(batch.snapshots.into_iter().map(|s| s.room_id));
            self.writes_since_prune += 1;
            if self.writes_since_prune >= self.config.prune_every.max(1) {
                self.start_prune(ctx);
                return;
            }
        }
        self.continue_writing(ctx);
    }

    /// After a write or prune: write again right away if a full batch is waiting or a [`Flush`]
    /// is waiting for rows still buffered; otherwise the interval timer picks them up.
    fn continue_writing(&mut self, ctx: &mut Context<Self>) {
        if self.buffer.len() >= self.config.batch_size || !self.waiters.is_empty() {
            self.start_write(ctx);
        }
    }

    fn write_failed(&mut self, batch: Batch, error: StorageError, ctx: &mut Context<Self>) {
        metrics::counter!("skirmish_persistence_write_errors_total").increment(1);
        if !error.is_retryable() {
            // Records are checked on arrival, so this is a bug rather than bad input: retrying
            // the batch would block every write after it forever.
            metrics::counter!("skirmish_persistence_rejected_total").increment(batch.len() as u64);
            tracing::error!(rows = batch.len(), error = %error, "persistence batch rejected and dropped");
            let error = Arc::new(error);
            for (_, waiter) in self.waiters.drain(..) {
                let _ = waiter.send(Err(FlushError::Rejected(error.clone())));
            }
            if self.buffer.is_empty() {
                self.committed = self.received;
            }
            self.continue_writing(ctx);
            return;
        }
        let shed = self.buffer.restore(batch);
        if shed > 0 {
            self.note_shed(shed);
        }
        self.consecutive_failures += 1;
        let ceiling = self
            .backoff
            .map_or(RETRY_BACKOFF_MIN, |b| b.saturating_mul(2))
            .min(self.config.retry_backoff_max.max(RETRY_BACKOFF_MIN));
        self.backoff = Some(ceiling);
        let backoff = equal_jitter(ceiling, rand::random());
        self.retry_at = Some(Instant::now() + backoff);
        tracing::warn!(
            error = %error,
            attempt = self.consecutive_failures,
            retry_in_ms = backoff.as_millis() as u64,
            buffered = self.buffer.len(),
            "persistence write failed; the batch is kept and retried"
        );
        if self.consecutive_failures >= self.config.flush_give_up_after.max(1) {
            let error = Arc::new(error);
            for (_, waiter) in self.waiters.drain(..) {
                let _ = waiter.send(Err(FlushError::Storage(error.clone())));
            }
        }
        ctx.run_later(backoff, |act, ctx| {
            act.retry_at = None;
            act.start_write(ctx);
        });
    }

    /// Prunes the rooms written to since the last prune; runs as the in-flight operation so it
    /// never overlaps a write. A failed prune is retried at the next cadence.
    fn start_prune(&mut self, ctx: &mut Context<Self>) {
        self.writes_since_prune = 0;
        if self.touched.is_empty() {
            self.continue_writing(ctx);
            return;
        }
        let rooms: Vec<String> = self.touched.drain().collect();
        let keep = self.config.prune_keep;
        let storage = self.storage.clone();
        self.in_flight = true;
        let prune = async move {
            let result = storage.prune_snapshots_of(&rooms, keep).await;
            (rooms, result)
        };
        ctx.spawn(
            wrap_future::<_, Self>(prune).map(|(rooms, result), act, ctx| {
                act.in_flight = false;
                match result {
                    Ok(deleted) => {
                        metrics::counter!("skirmish_persistence_pruned_total").increment(deleted);
                        tracing::debug!(rooms = rooms.len(), deleted, "pruned old snapshots");
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "pruning old snapshots failed; retried later");
                        act.touched.extend(rooms);
                    }
                }
                act.continue_writing(ctx);
            }),
        );
    }

    fn answer_waiters(&mut self) {
        let committed = self.committed;
        let (done, pending): (Vec<_>, Vec<_>) = self
            .waiters
            .drain(..)
            .partition(|(target, _)| *target <= committed);
        self.waiters = pending;
        for (_, waiter) in done {
            let _ = waiter.send(Ok(()));
        }
    }

    fn reject(&self, what: &str, error: &StorageError) {
        metrics::counter!("skirmish_persistence_rejected_total").increment(1);
        tracing::error!(error = %error, "persistence: {what} cannot be stored and is dropped");
    }
}

impl Actor for PersistenceActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let every = self.config.flush_interval.max(Duration::from_millis(1));
        ctx.run_interval(every, |act, ctx| act.start_write(ctx));
        self.report_depth();
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        if !self.buffer.is_empty() {
            tracing::warn!(
                rows = self.buffer.len(),
                "persistence actor stopped with unwritten rows (no Flush before shutdown?)"
            );
        }
        // Dropping the waiters answers them with `FlushError::Stopped`.
    }
}

impl Handler<SaveSnapshot> for PersistenceActor {
    type Result = ();

    fn handle(&mut self, SaveSnapshot(snapshot): SaveSnapshot, ctx: &mut Self::Context) {
        if let Err(e) = snapshot.check() {
            self.reject("a snapshot", &e);
            return;
        }
        let shed = self.buffer.push_snapshot(snapshot);
        self.received_one(shed, ctx);
    }
}

impl Handler<SaveRoom> for PersistenceActor {
    type Result = ();

    fn handle(&mut self, SaveRoom(room): SaveRoom, ctx: &mut Self::Context) {
        self.buffer.push_room(room);
        self.received_one(0, ctx);
    }
}

impl Handler<SaveResults> for PersistenceActor {
    type Result = ();

    fn handle(&mut self, SaveResults(results): SaveResults, ctx: &mut Self::Context) {
        let mut valid = Vec::with_capacity(results.len());
        for r in results {
            match r.check() {
                Ok(()) => valid.push(r),
                Err(e) => self.reject("a match result", &e),
            }
        }
        self.buffer.push_results(valid);
        self.received_one(0, ctx);
    }
}

impl Handler<SaveReported> for PersistenceActor {
    type Result = ();

    fn handle(&mut self, reported: SaveReported, ctx: &mut Self::Context) {
        let mut valid = Vec::with_capacity(reported.results.len());
        for r in reported.results {
            match r.check() {
                Ok(()) => valid.push(r),
                Err(e) => self.reject("a match result", &e),
            }
        }
        self.buffer
            .push_reported(reported.room, valid, reported.events);
        self.received_one(0, ctx);
    }
}

impl Handler<Status> for PersistenceActor {
    type Result = MessageResult<Status>;

    fn handle(&mut self, _: Status, _: &mut Self::Context) -> Self::Result {
        MessageResult(PersistenceStatus {
            buffered: self.buffer.len(),
            consecutive_failures: self.consecutive_failures,
        })
    }
}

impl Handler<Flush> for PersistenceActor {
    type Result = ResponseFuture<Result<(), FlushError>>;

    fn handle(&mut self, _: Flush, ctx: &mut Self::Context) -> Self::Result {
        if self.committed >= self.received {
            return Box::pin(async { Ok(()) });
        }
        let (tx, rx) = oneshot::channel();
        self.waiters.push((self.received, tx));
        // A flush is a request to commit now: write at once, even during a retry's backoff (the
        // backoff still paces the automatic retries). After an outage this is what shutdown and
        // readiness checks wait on, so it should not sit out a backoff of up to 5 s.
        self.retry_at = None;
        self.start_write(ctx);
        Box::pin(async move { rx.await.unwrap_or(Err(FlushError::Stopped)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_jitter_stays_between_half_and_all_of_the_step() {
        let step = Duration::from_millis(800);
        assert_eq!(equal_jitter(step, 0.0), Duration::from_millis(400));
        assert_eq!(equal_jitter(step, 0.5), Duration::from_millis(600));
        assert!(equal_jitter(step, 0.999_999) <= step);
        // Out-of-range fractions cannot leave the bounds.
        assert_eq!(equal_jitter(step, -1.0), Duration::from_millis(400));
        assert_eq!(equal_jitter(step, 7.0), step);
    }

    #[test]
    fn random_jitter_spreads_the_retries() {
        let step = Duration::from_millis(1000);
        let delays: HashSet<Duration> = (0..200)
            .map(|_| equal_jitter(step, rand::random()))
            .inspect(|d| assert!(*d >= step / 2 && *d <= step, "{d:?}"))
            .collect();
        // 200 draws from a continuous range: lockstep (one value) would be a bug.
        assert!(delays.len() > 100, "only {} distinct delays", delays.len());
    }
}
