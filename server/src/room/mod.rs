//! The room actor: owns one game and ticks it at a fixed, drift-free rate.
//!
//! One actor per room, started on one of a pool of arbiters (one per core). It keeps the seats of its
//! players (connection, input cell, drop time), and each tick:
//! 0. reads every seated connection's socket once, without waiting (the transport's pass: frames go
//!    to the session's handler, which puts inputs into the cells and queues replies);
//! 1. takes each player's latest input from its cell and applies it (stale seqs are ignored by the game);
//! 2. steps the game;
//! 3. encodes each event once and queues it on every connection;
//! 4. encodes the state once and queues the same `Bytes` on every connection (acks ride in `last_seq`),
//!    then writes every connection's queue to its socket, one `write` each;
//! 5. once a second: expires reservations, dropped players past their grace and an empty room;
//! 6. every `snapshot_every_ticks`, and at the first tick after the room starts or a player joins:
//!    hands a snapshot to persistence;
//! 7. if the match is over: announces results, persists them, closes the sessions with 4001 and stops.
//!
//! Tick n is due at `start + n·period`. A late tick runs at once and is counted; if a tick is more than a
//! whole period late the schedule is re-anchored instead of running a burst of catch-up ticks.

pub mod game;
pub mod input;
pub mod messages;
pub mod port;
pub mod registry;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix::{Actor, ActorContext, Addr, AsyncContext, Context, Handler, MessageResult};
use actix_rt::ArbiterHandle;
use bytes::Bytes;
use game_core::{GameEvent, JoinError, PlayerId, RankedResult};
use protocol::StateEncoder;
use time::OffsetDateTime;
use tracing::{Span, debug, info, info_span, warn};

pub use self::game::ServerGame;
use self::input::InputCell;
use self::messages::{
    Chat, CloseKind, CloseReason, CloseRoom, Connection, Disconnect, Join, JoinAnswer, Kick,
    RoomHandle, RoomMailbox,
};
use self::registry::{RoomRegistry, RoomShared};
use crate::domain::RoomSettings;
use crate::domain::tickets::{Claims, Signer, TokenKind, new_nonce};
use crate::metrics as m;
use crate::transport::outbound::Push;

/// A tick that starts this much after it was due counts as late.
pub const LATE_TICK_THRESHOLD: Duration = Duration::from_millis(5);
/// How long a resume token stays valid (the room's own grace decides whether the slot is still there).
const RESUME_TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(1);

/// Where rooms send what must outlive them. Implemented by the persistence actor's address.
pub trait RoomStore: Send + Sync {
    /// The room was created (or its stored record must be refreshed).
    fn room_changed(&self, room: &RoomShared, settings: &RoomSettings);
    fn snapshot(&self, room: &RoomShared, tick: u64, state: Vec<u8>);
    /// The room ended for good (it is already marked closed), with the match's results if it
    /// finished. Its status, results and the webhook events reporting them are stored together.
    fn room_closed(&self, room: &RoomShared, reason: CloseReason, results: Option<&[RankedResult]>);
}

/// Timings a room needs from the configuration.
#[derive(Debug, Clone)]
pub struct RoomTimings {
    pub resume_grace: Duration,
    pub empty_room_timeout: Duration,
    pub snapshot_every_ticks: u32,
}

/// What every room shares: the registry, the signer, the arbiters and persistence.
pub struct RoomEnv {
    pub registry: Arc<RoomRegistry>,
    pub signer: Arc<Signer>,
    pub timings: RoomTimings,
    pub store: Option<Arc<dyn RoomStore>>,
    /// Cluster mode: this node's lease. A room ticks only while the lease it is owned under holds.
    pub lease: Option<Arc<crate::cluster::LeaseClock>>,
    /// Where new rooms start, round-robin: dedicated room arbiters, or the HTTP workers' own arbiters
    /// as they register (see [`RoomEnv::register_worker`]).
    arbiters: std::sync::RwLock<Vec<ArbiterHandle>>,
    share_workers: bool,
    next: AtomicUsize,
}

impl std::fmt::Debug for RoomEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomEnv")
            .field("share_workers", &self.share_workers)
            .finish_non_exhaustive()
    }
}

impl RoomEnv {
    /// `arbiters` empty: rooms share the HTTP workers' arbiters, which register themselves.
    pub fn new(
        registry: Arc<RoomRegistry>,
        signer: Arc<Signer>,
        timings: RoomTimings,
        store: Option<Arc<dyn RoomStore>>,
        lease: Option<Arc<crate::cluster::LeaseClock>>,
        arbiters: Vec<ArbiterHandle>,
    ) -> Self {
        Self {
            registry,
            signer,
            timings,
            store,
            lease,
            share_workers: arbiters.is_empty(),
            arbiters: std::sync::RwLock::new(arbiters),
            next: AtomicUsize::new(0),
        }
    }

    /// Called on each HTTP worker as it starts: in shared mode its arbiter joins the room pool.
    pub fn register_worker(&self, worker: ArbiterHandle) {
        if self.share_workers {
            self.arbiters
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .push(worker);
        }
    }

    /// Round-robin over the pool, so rooms spread over every core. Before any worker has started
    /// (rooms restored at start-up) a room runs on the current arbiter.
    fn next_arbiter(&self) -> ArbiterHandle {
        let arbiters = self.arbiters.read().unwrap_or_else(|p| p.into_inner());
        if arbiters.is_empty() {
            return actix_rt::Arbiter::current();
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        arbiters[n % arbiters.len()].clone()
    }
}

#[derive(Debug)]
struct Seat<I> {
    player: PlayerId,
    input: Arc<InputCell<I>>,
    connection: Option<Connection>,
    dropped_at: Option<Instant>,
}

pub struct RoomActor<G: ServerGame> {
    env: Arc<RoomEnv>,
    shared: Arc<RoomShared>,
    game: G,
    seats: Vec<Seat<G::Input>>,
    encoder: StateEncoder,
    events: Vec<GameEvent>,
    period: Duration,
    anchor: Instant,
    ticks_since_anchor: u32,
    next_housekeeping: Instant,
    empty_since: Option<Instant>,
    /// A snapshot at the next tick, whatever the period: the room is new or a player joined, and a
    /// restart (or a failover) must find them.
    snapshot_soon: bool,
    closed: bool,
    /// The span of what created the room, until the room has started (then dropped, so that the
    /// creating request's span can end).
    cause: Span,
}

impl<G: ServerGame> RoomActor<G> {
    /// Starts a room on the next arbiter of the pool.
    pub fn start_next(
        env: &Arc<RoomEnv>,
        shared: Arc<RoomShared>,
        game: G,
        restored_players: Vec<PlayerId>,
    ) -> Addr<Self> {
        let arbiter = env.next_arbiter();
        let env = env.clone();
        // The request (or restore) that creates the room: the room's start span is its child.
        let cause = tracing::Span::current();
        Self::start_in_arbiter(&arbiter, move |_| {
            Self::new(env, shared, game, restored_players, cause)
        })
    }

    /// The room's message API, which is all a session gets to see of it.
    pub fn handle(room: &Addr<Self>) -> RoomHandle<G::Input> {
        RoomHandle::new(room.clone())
    }

    fn new(
        env: Arc<RoomEnv>,
        shared: Arc<RoomShared>,
        game: G,
        restored_players: Vec<PlayerId>,
        cause: Span,
    ) -> Self {
        let now = Instant::now();
        let seats = restored_players
            .into_iter()
            .map(|player| Seat {
                player,
                input: Arc::default(),
                connection: None,
                dropped_at: Some(now),
            })
            .collect();
        Self {
            period: Duration::from_secs(1) / game.tick_rate().max(1),
            env,
            shared,
            game,
            seats,
            encoder: StateEncoder::new(),
            events: Vec::new(),
            anchor: now,
            ticks_since_anchor: 0,
            next_housekeeping: now + HOUSEKEEPING_EVERY,
            empty_since: None,
            snapshot_soon: true,
            closed: false,
            cause,
        }
    }

    fn schedule_next_tick(&mut self, ctx: &mut Context<Self>) {
        self.ticks_since_anchor += 1;
        let due = self.anchor + self.period * self.ticks_since_anchor;
        let delay = due.saturating_duration_since(Instant::now());
        ctx.run_later(delay, move |room, ctx| room.tick(ctx, due));
    }

    fn tick(&mut self, ctx: &mut Context<Self>, due: Instant) {
        if self.closed {
            return;
        }
        let started = Instant::now();
        if let Some(lease) = &self.env.lease
            && !lease.holds(self.shared.ownership.incarnation, started)
        {
            // Stop before the lease can pass to another node: never tick on two nodes.
            let _close = self.close_span(&Span::none(), "lease_lost").entered();
            warn!(room_id = %self.shared.id, "lease lost: the room stops here");
            self.move_away(ctx, false);
            return;
        }
        let lateness = started.saturating_duration_since(due);
        m::tick_lateness(lateness);
        if lateness >= LATE_TICK_THRESHOLD {
            m::late_tick();
            if lateness > self.period {
                // Re-anchor rather than bunch catch-up ticks together.
                warn!(room_id = %self.shared.id, lateness_ms = lateness.as_millis() as u64, "tick more than a period late");
                self.anchor = started;
                self.ticks_since_anchor = 0;
            }
        }

        // 0. read every socket once; inputs land in the cells
        for connection in self.connections() {
            connection.link.read(started);
        }
        // 1. inputs
        for seat in &self.seats {
            if let Some((seq, input)) = seat.input.take() {
                self.game.apply_input(&seat.player, seq, input);
            }
        }
        // 2. step
        self.events.clear();
        self.game.step(&mut self.events);
        // 3. events
        let mut results = None;
        for event in std::mem::take(&mut self.events) {
            match event {
                GameEvent::PlayerJoined(player) => {
                    self.broadcast(protocol::encode_player_joined(player.as_str()), started)
                }
                GameEvent::PlayerLeft(player) => {
                    self.broadcast(protocol::encode_player_left(player.as_str()), started)
                }
                GameEvent::MatchOver(ranked) => {
                    self.broadcast(protocol::encode_match_over(&ranked), started);
                    results = Some(ranked);
                }
            }
        }
        // 4. state, encoded once, and every queue written
        let state = self.encoder.encode(self.game.tick(), &self.game.view());
        self.send_state(state, started);
        crate::transport::flush_traffic();
        // 5. housekeeping
        if started >= self.next_housekeeping {
            self.next_housekeeping = started + HOUSEKEEPING_EVERY;
            self.housekeeping(ctx, started);
        }
        // 6. snapshot
        if self.snapshot_soon
            || self
                .game
                .tick()
                .is_multiple_of(u64::from(self.env.timings.snapshot_every_ticks))
        {
            self.snapshot_soon = false;
            self.save_snapshot();
        }
        m::tick_done(started.elapsed());
        // 7. match over
        if let Some(results) = results {
            let _close = self.close_span(&Span::none(), "finished").entered();
            info!(room_id = %self.shared.id, players = results.len(), "match over");
            self.finish(ctx, CloseReason::Finished, Some(&results));
            return;
        }
        if !self.closed {
            self.schedule_next_tick(ctx);
        }
    }

    fn connections(&self) -> impl Iterator<Item = &Connection> {
        self.seats
            .iter()
            .filter_map(|seat| seat.connection.as_ref())
    }

    fn broadcast(&self, frame: Bytes, now: Instant) {
        for connection in self.connections() {
            Self::push_or_kick(
                connection,
                connection.link.outbound().push_message(frame.clone(), now),
            );
        }
    }

    /// Queues the tick's state on every connection and writes each queue to its socket.
    fn send_state(&self, frame: Bytes, now: Instant) {
        for connection in self.connections() {
            Self::push_or_kick(
                connection,
                connection.link.outbound().push_state(frame.clone(), now),
            );
            connection.link.write(now);
        }
    }

    fn push_or_kick(connection: &Connection, push: Push) {
        if push == Push::TooSlow {
            m::slow_client_closed();
            connection.session.do_send(Kick {
                code: protocol::close::TOO_SLOW,
            });
        }
    }

    fn housekeeping(&mut self, ctx: &mut Context<Self>, now: Instant) {
        let expired = self.shared.purge_expired(now);
        if expired > 0 {
            m::tickets_expired(expired);
        }
        let grace = self.env.timings.resume_grace;
        let mut gone = Vec::new();
        self.seats.retain(|seat| {
            let expired = seat
                .dropped_at
                .is_some_and(|at| now.saturating_duration_since(at) >= grace);
            if expired {
                gone.push(seat.player.clone());
            }
            !expired
        });
        for player in gone {
            debug!(room_id = %self.shared.id, player_id = %player, "resume grace over, slot freed");
            self.game.leave(&player);
            self.shared.release(&player);
        }
        if self.shared.held() == 0 {
            let since = *self.empty_since.get_or_insert(now);
            if now.saturating_duration_since(since) >= self.env.timings.empty_room_timeout {
                let _close = self.close_span(&Span::none(), "expired").entered();
                info!(room_id = %self.shared.id, "empty room expired");
                self.finish(ctx, CloseReason::Expired, None);
            }
        } else {
            self.empty_since = None;
        }
    }

    fn save_snapshot(&self) {
        if let Some(store) = &self.env.store {
            match rmp_serde::to_vec(&self.game.snapshot()) {
                Ok(bytes) => store.snapshot(&self.shared, self.game.tick(), bytes),
                Err(error) => {
                    warn!(room_id = %self.shared.id, %error, "snapshot could not be encoded")
                }
            }
        }
    }

    /// The span of the room's end; `cause` is its parent (`Span::none()`: a root span).
    fn close_span(&self, cause: &Span, reason: &'static str) -> Span {
        info_span!(parent: cause, "room.close", room_id = %self.shared.id, mode = G::MODE, reason)
    }

    /// Ends the room for good: final snapshot, then status closed with the results (and the
    /// webhook events reporting both, `reason` included), sessions closed with 4001.
    fn finish(
        &mut self,
        ctx: &mut Context<Self>,
        reason: CloseReason,
        results: Option<&[RankedResult]>,
    ) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.shared.mark_closed(OffsetDateTime::now_utc());
        self.save_snapshot();
        if let Some(store) = &self.env.store {
            store.room_closed(&self.shared, reason, results);
        }
        self.kick_all(protocol::close::ROOM_CLOSED);
        ctx.stop();
    }

    /// The room goes on at another node (cluster): sessions get 4005 and ask where; the room
    /// stays open in storage. With `final_snapshot` (a drain) the newest state is handed to
    /// persistence first; after a lost lease nothing is written.
    fn move_away(&mut self, ctx: &mut Context<Self>, final_snapshot: bool) {
        if self.closed {
            return;
        }
        self.closed = true;
        if final_snapshot {
            self.save_snapshot();
        }
        self.kick_all(protocol::close::ROOM_MOVED);
        self.env.registry.remove(&self.shared);
        ctx.stop();
    }

    fn kick_all(&mut self, code: u16) {
        for seat in &mut self.seats {
            if let Some(connection) = seat.connection.take() {
                // Written now: the room stops, and the session may not run before the process does.
                connection.close_now(code, Instant::now());
            }
        }
    }

    fn resume_token(&self, player: &PlayerId) -> String {
        let expires_at_ms = crate::clock::now_ms() + RESUME_TOKEN_TTL.as_millis() as u64;
        self.env.signer.sign(&Claims {
            kind: TokenKind::Resume,
            room_id: self.shared.id.clone(),
            player_id: player.clone(),
            expires_at_ms,
            nonce: new_nonce(),
        })
    }
}

impl<G: ServerGame> RoomMailbox<G::Input> for Addr<RoomActor<G>> {
    fn join(&self, join: Join<G::Input>) -> JoinAnswer {
        Box::pin(self.send(join))
    }

    fn clone_box(&self) -> Box<dyn RoomMailbox<G::Input>> {
        Box::new(self.clone())
    }

    fn chat(&self, chat: Chat) {
        self.do_send(chat);
    }

    fn disconnect(&self, disconnect: Disconnect) {
        self.do_send(disconnect);
    }
}

impl<G: ServerGame> Actor for RoomActor<G> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let cause = std::mem::replace(&mut self.cause, Span::none());
        let span =
            info_span!(parent: &cause, "room.start", room_id = %self.shared.id, mode = G::MODE);
        drop(cause);
        let _start = span.enter();
        m::room_started();
        info!(room_id = %self.shared.id, mode = G::MODE, tick = self.game.tick(), "room started");
        self.anchor = Instant::now();
        self.ticks_since_anchor = 0;
        self.schedule_next_tick(ctx);
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        m::room_stopped();
        info!(room_id = %self.shared.id, "room stopped");
    }
}

impl<G: ServerGame> Handler<Join<G::Input>> for RoomActor<G> {
    type Result = MessageResult<Join<G::Input>>;

    fn handle(&mut self, join: Join<G::Input>, _: &mut Context<Self>) -> Self::Result {
        if self.closed {
            return MessageResult(Err(JoinError::MatchOver));
        }
        let now = Instant::now();
        let position = match self.seats.iter().position(|s| s.player == join.player) {
            Some(position) => position,
            None => {
                if let Err(error) = self.game.join(join.player.clone()) {
                    self.shared.release(&join.player);
                    return MessageResult(Err(error));
                }
                self.seats.push(Seat {
                    player: join.player.clone(),
                    input: join.input.clone(),
                    connection: None,
                    dropped_at: None,
                });
                self.snapshot_soon = true;
                self.seats.len() - 1
            }
        };
        let token = self.resume_token(&join.player);
        let welcome = protocol::encode_welcome(
            self.shared.id.as_str(),
            join.player.as_str(),
            self.game.tick(),
            self.game.tick_rate(),
            &token,
            &self.game.view(),
        );
        join.connection.link.outbound().push_message(welcome, now);
        // Out at once rather than at the next tick.
        join.connection.link.write(now);
        let seat = &mut self.seats[position];
        seat.input = join.input;
        if let Some(old) = seat.connection.replace(join.connection) {
            debug!(room_id = %self.shared.id, player_id = %seat.player, "replaced by a newer connection");
            old.close_now(protocol::close::REPLACED, now);
        }
        seat.dropped_at = None;
        MessageResult(Ok(()))
    }
}

impl<G: ServerGame> Handler<Disconnect> for RoomActor<G> {
    type Result = ();

    fn handle(&mut self, disconnect: Disconnect, _: &mut Context<Self>) {
        let Some(position) = self.seats.iter().position(|s| {
            s.player == disconnect.player
                && s.connection
                    .as_ref()
                    .is_some_and(|c| c.id == disconnect.connection_id)
        }) else {
            return; // an older, replaced connection
        };
        if disconnect.left {
            let seat = self.seats.remove(position);
            self.game.leave(&seat.player);
            self.shared.release(&seat.player);
        } else {
            let seat = &mut self.seats[position];
            seat.connection = None;
            seat.dropped_at = Some(Instant::now());
        }
    }
}

impl<G: ServerGame> Handler<Chat> for RoomActor<G> {
    type Result = ();

    fn handle(&mut self, chat: Chat, _: &mut Context<Self>) {
        self.broadcast(
            protocol::encode_chat(chat.from.as_str(), chat.text.as_str()),
            Instant::now(),
        );
    }
}

impl<G: ServerGame> Handler<CloseRoom> for RoomActor<G> {
    type Result = ();

    fn handle(&mut self, CloseRoom { kind, cause }: CloseRoom, ctx: &mut Context<Self>) {
        let span = self.close_span(&cause, kind.as_str());
        drop(cause);
        let _close = span.enter();
        debug!(room_id = %self.shared.id, reason = kind.as_str(), "closing");
        match kind {
            CloseKind::Deleted => self.finish(ctx, CloseReason::Deleted, None),
            CloseKind::Shutdown => {
                // Stays open in storage: it is restored at the next start.
                self.closed = true;
                self.save_snapshot();
                self.kick_all(protocol::close::GOING_AWAY);
                ctx.stop();
            }
            CloseKind::Handoff => self.move_away(ctx, true),
            CloseKind::LeaseLost => self.move_away(ctx, false),
        }
    }
}
