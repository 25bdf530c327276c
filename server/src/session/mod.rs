//! The session actor: one per WebSocket connection.
//!
//! It consumes the incoming frame stream, decodes each frame once with the protocol crate, applies
//! the rate limits, writes inputs into the player's input cell and forwards chat to the room. The
//! room queues states and events straight onto the connection's [`Outbound`]; the session
//! adds its own replies (pong, error) there. It keeps the heartbeat and runs the close handshake:
//! after sending its close frame it reads and discards until the client answers, waiting up to the
//! resume grace for the frame to get out and about a second for the answer once it is out.
//!
//! It knows its room only by the room's messages ([`RoomHandle`]) and input cell, never the actor.

pub mod rate;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix::{
    Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Handler, StreamHandler, WrapFuture,
};
use actix_ws::{CloseCode, Message, ProtocolError as WsError};
use game_core::PlayerId;
use protocol::{ClientMessage, ErrorCode, ProtocolError, close};
use tracing::{debug, info_span};

use self::rate::TokenBucket;
use crate::domain::RoomId;
use crate::metrics as m;
use crate::room::ServerGame;
use crate::room::input::InputCell;
use crate::room::messages::{Chat, Connection, Disconnect, Join, Kick, RoomHandle};
use crate::transport::outbound::{Outbound, Phase};

/// A session that sends more invalid frames than this within [`ABUSE_WINDOW`] is closed with 1008.
pub const MAX_INVALID_FRAMES: usize = 10;
pub const ABUSE_WINDOW: Duration = Duration::from_secs(10);
/// How long the client has to answer our close frame once it is out.
pub const CLOSE_ANSWER_WAIT: Duration = Duration::from_secs(1);
const CLOSE_POLL: Duration = Duration::from_millis(100);
/// Chat: a burst of 5, then one line every 2 seconds.
const CHAT_BURST: f64 = 5.0;
const CHAT_PER_SECOND: f64 = 0.5;

/// Settings every session of the process shares.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    pub max_frame_bytes: usize,
    pub heartbeat_interval: Duration,
    pub client_timeout: Duration,
    pub resume_grace: Duration,
    /// Bytes of messages a session may have waiting before it is closed with 4002 (see outbound.rs).
    pub outbound_max_bytes: usize,
    pub slow_client_timeout: Duration,
}

/// Everything a new session needs: the accepted connection and what it was admitted to.
pub struct SessionStart {
    pub room_id: RoomId,
    pub player: PlayerId,
    pub tick_rate: u32,
    pub stream: actix_ws::MessageStream,
    pub outbound: Arc<Outbound>,
    pub settings: Arc<SessionSettings>,
}

impl std::fmt::Debug for SessionStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionStart")
            .field("room_id", &self.room_id)
            .field("player", &self.player)
            .finish_non_exhaustive()
    }
}

impl SessionSettings {
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            max_frame_bytes: config.max_frame_bytes,
            heartbeat_interval: Duration::from_millis(config.heartbeat_interval_ms),
            client_timeout: Duration::from_millis(config.client_timeout_ms),
            resume_grace: config.resume_grace(),
            outbound_max_bytes: config.outbound_max_bytes(),
            slow_client_timeout: Duration::from_millis(config.slow_client_timeout_ms),
        }
    }
}

static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

pub struct SessionActor<G: ServerGame> {
    connection_id: u64,
    player: PlayerId,
    room: RoomHandle<G::Input>,
    outbound: Arc<Outbound>,
    settings: Arc<SessionSettings>,
    input: Option<Arc<InputCell<G::Input>>>,
    inputs: TokenBucket,
    chats: TokenBucket,
    invalid_frames: VecDeque<Instant>,
    last_heard: Instant,
    last_rate_limit_error: Option<Instant>,
    /// A `leave` or a close with 1000: the slot is freed, not kept for a resume.
    left: bool,
    /// When this side started closing.
    closing_since: Option<Instant>,
    /// The client sent its close frame: nothing more to wait for once ours is out.
    peer_closed: bool,
    span: tracing::Span,
}

impl<G: ServerGame> SessionActor<G> {
    pub fn spawn(room: RoomHandle<G::Input>, start: SessionStart) {
        let now = Instant::now();
        let connection_id = NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed);
        // A client may send about twice the room's tick rate, with a burst of the same size.
        let tick_rate = f64::from(start.tick_rate.max(1));
        // A root span that lives as long as the connection, linked to (not a child of) the upgrade
        // request, so the request's span ends when its response is sent.
        let span = info_span!(parent: None, "session", room_id = %start.room_id, player_id = %start.player, connection_id);
        span.follows_from(tracing::Span::current().id());
        let stream = start.stream.max_frame_size(start.settings.max_frame_bytes);
        SessionActor::create(move |ctx| {
            ctx.add_stream(stream);
            Self {
                connection_id,
                player: start.player,
                room,
                outbound: start.outbound,
                settings: start.settings,
                input: None,
                inputs: TokenBucket::new(2.0 * tick_rate, 2.0 * tick_rate, now),
                chats: TokenBucket::new(CHAT_BURST, CHAT_PER_SECOND, now),
                invalid_frames: VecDeque::new(),
                last_heard: now,
                last_rate_limit_error: None,
                left: false,
                closing_since: None,
                peer_closed: false,
                span,
            }
        });
    }

    fn send_error(&self, code: ErrorCode, message: &str) {
        self.outbound
            .push_message(protocol::encode_error(code, message), Instant::now());
    }

    /// Starts the close handshake with `code`; the connection ends when the client answers or the
    /// waits run out.
    fn begin_close(&mut self, ctx: &mut Context<Self>, code: u16) {
        if self.closing_since.is_some() {
            return;
        }
        let _enter = self.span.enter();
        debug!(code, "closing");
        m::session_closed(code);
        self.outbound.close(code);
        self.closing_since = Some(Instant::now());
        ctx.run_interval(CLOSE_POLL, |session, ctx| session.check_close(ctx));
    }

    fn check_close(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        let done = match self.outbound.phase() {
            Phase::CloseSent(at) => {
                self.peer_closed || now.saturating_duration_since(at) >= CLOSE_ANSWER_WAIT
            }
            Phase::Finished => true,
            Phase::Open | Phase::Closing => self.closing_since.is_some_and(|since| {
                now.saturating_duration_since(since) >= self.settings.resume_grace
            }),
        };
        if done {
            ctx.stop();
        }
    }

    fn invalid_frame(&mut self, ctx: &mut Context<Self>, error: &ProtocolError) {
        m::invalid_frame(error.code().as_str());
        let now = Instant::now();
        while self
            .invalid_frames
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > ABUSE_WINDOW)
        {
            self.invalid_frames.pop_front();
        }
        self.invalid_frames.push_back(now);
        self.send_error(error.code(), &error.to_string());
        if self.invalid_frames.len() > MAX_INVALID_FRAMES {
            self.begin_close(ctx, close::POLICY);
        }
    }

    fn rate_limited(&mut self, what: &str) {
        m::rate_limited(what);
        let now = Instant::now();
        // One error a second is enough to tell the client; more would only add to its backlog.
        if self
            .last_rate_limit_error
            .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1))
        {
            self.last_rate_limit_error = Some(now);
            self.send_error(
                ErrorCode::RateLimited,
                &format!("too many {what} messages; slow down"),
            );
        }
    }

    fn handle_message(
        &mut self,
        ctx: &mut Context<Self>,
        message: ClientMessage<G::Input>,
        now: Instant,
    ) {
        match message {
            ClientMessage::Input { seq, input } => {
                if !self.inputs.try_take(now) {
                    self.rate_limited("input");
                } else if let Some(cell) = &self.input {
                    cell.put(seq, input);
                }
            }
            ClientMessage::Ping { id } => {
                self.outbound
                    .push_message(protocol::encode_pong(id, crate::clock::now_ms()), now);
            }
            ClientMessage::Chat { text } => {
                if self.chats.try_take(now) {
                    self.room.chat(Chat {
                        from: self.player.clone(),
                        text,
                    });
                } else {
                    self.rate_limited("chat");
                }
            }
            ClientMessage::Leave => {
                self.left = true;
                self.begin_close(ctx, close::NORMAL);
            }
        }
    }

    fn heartbeat(&mut self, ctx: &mut Context<Self>) {
        if self.closing_since.is_some() {
            return;
        }
        let now = Instant::now();
        if now.saturating_duration_since(self.last_heard) > self.settings.client_timeout {
            self.begin_close(ctx, close::SILENT);
            return;
        }
        self.outbound.push_ping(now);
    }
}

impl<G: ServerGame> Actor for SessionActor<G> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        m::client_connected();
        let join = Join::<G::Input> {
            player: self.player.clone(),
            connection: Connection {
                id: self.connection_id,
                outbound: self.outbound.clone(),
                session: ctx.address().recipient(),
            },
            _input: std::marker::PhantomData,
        };
        // Frames are not processed until the room has answered: an input needs the cell.
        ctx.wait(
            self.room
                .join(join)
                .into_actor(self)
                .map(|answer, session, ctx| match answer {
                    Ok(Ok(cell)) => session.input = Some(cell),
                    Ok(Err(error)) => {
                        session.send_error(ErrorCode::NotAllowed, &error.to_string());
                        session.begin_close(ctx, close::POLICY);
                    }
                    Err(_) => {
                        session.send_error(ErrorCode::NotAllowed, "the room is closed");
                        session.begin_close(ctx, close::ROOM_CLOSED);
                    }
                }),
        );
        let heartbeat = self.settings.heartbeat_interval;
        ctx.run_interval(heartbeat, |session, ctx| session.heartbeat(ctx));
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        m::client_disconnected();
        self.outbound.finish();
        self.room.disconnect(Disconnect {
            player: self.player.clone(),
            connection_id: self.connection_id,
            left: self.left,
        });
    }
}

impl<G: ServerGame> StreamHandler<Result<Message, WsError>> for SessionActor<G> {
    fn handle(&mut self, item: Result<Message, WsError>, ctx: &mut Context<Self>) {
        let now = Instant::now();
        self.last_heard = now;
        let message = match item {
            Ok(message) => message,
            Err(WsError::Overflow) => {
                m::invalid_frame("too_big");
                return self.begin_close(ctx, close::TOO_BIG);
            }
            Err(_) => return self.begin_close(ctx, close::POLICY),
        };
        if self.closing_since.is_some() {
            // Reading and discarding until the client answers our close frame.
            if let Message::Close(_) = message {
                self.peer_closed = true;
                self.check_close(ctx);
            }
            return;
        }
        match message {
            Message::Binary(frame) => {
                m::frame_in(frame.len());
                match protocol::decode_client::<G>(&frame, self.settings.max_frame_bytes) {
                    Ok(message) => self.handle_message(ctx, message, now),
                    Err(error) => self.invalid_frame(ctx, &error),
                }
            }
            Message::Text(_) => self.begin_close(ctx, close::UNSUPPORTED_DATA),
            Message::Close(reason) => {
                // The client closes: 1000 is a leave, anything else a drop kept for the resume grace.
                self.left = reason.is_some_and(|r| r.code == CloseCode::Normal);
                self.peer_closed = true;
                let code = if self.left {
                    close::NORMAL
                } else {
                    close::GOING_AWAY
                };
                self.begin_close(ctx, code);
            }
            Message::Continuation(_) => self.begin_close(ctx, close::UNSUPPORTED_DATA),
            Message::Ping(payload) => {
                self.outbound.push_pong(payload, now);
            }
            Message::Pong(_) | Message::Nop => {}
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        // The client's side of the TCP connection is gone.
        ctx.stop();
    }
}

impl<G: ServerGame> Handler<Kick> for SessionActor<G> {
    type Result = ();

    fn handle(&mut self, kick: Kick, ctx: &mut Context<Self>) {
        self.begin_close(ctx, kick.code);
    }
}
