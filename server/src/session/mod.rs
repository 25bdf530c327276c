//! The session actor: one per WebSocket connection.
//!
//! The connection's socket is a [`Link`] that the room's tick reads and writes; the session's logic
//! for what the client sends is [`Frames`], the link's frame handler, which the tick calls with each
//! frame: decode once with the protocol crate, apply the rate limits, write inputs into the player's
//! input cell (the room takes them in the same tick), forward chat to the room, answer pings. The
//! room queues states and events on the link's outbound queue; the session adds its own replies
//! there. The actor keeps what needs a timer or the room's answer: the join, the heartbeat, and the
//! close handshake, during which it reads and writes the link itself (the room may no longer): after
//! sending its close frame it reads and discards until the client answers, waiting up to the resume
//! grace for the frame to get out and about a second for the answer once it is out.
//!
//! It knows its room only by the room's messages ([`RoomHandle`]), never the actor.

pub mod rate;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix::{
    Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Handler, Message, WeakAddr,
    WrapFuture,
};
use bytes::Bytes;
use game_core::PlayerId;
use protocol::{ClientMessage, ErrorCode, ProtocolError, close};
use tracing::{debug, info_span};

use self::rate::TokenBucket;
use crate::domain::RoomId;
use crate::metrics as m;
use crate::room::ServerGame;
use crate::room::input::InputCell;
use crate::room::messages::{Chat, Connection, Disconnect, Join, Kick, RoomHandle};
use crate::transport::Socket;
use crate::transport::frame::{FrameError, InFrame};
use crate::transport::link::{FrameHandler, Link, TickIo};
use crate::transport::outbound::{Outbound, Phase, Push};

/// A session that sends more invalid frames than this within [`ABUSE_WINDOW`] is closed with 1008.
pub const MAX_INVALID_FRAMES: usize = 10;
pub const ABUSE_WINDOW: Duration = Duration::from_secs(10);
/// How long the client has to answer our close frame once it is out.
pub const CLOSE_ANSWER_WAIT: Duration = Duration::from_secs(1);
/// While closing, the session reads and writes its link itself this often.
const CLOSE_POLL: Duration = Duration::from_millis(50);
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
    pub socket: Socket,
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

/// The session's handling of the client's frames, called by whichever pass reads the link: the
/// room's tick, or the session itself while it closes.
pub struct Frames<G: ServerGame> {
    player: PlayerId,
    room: RoomHandle<G::Input>,
    session: WeakAddr<SessionActor<G>>,
    input: Arc<InputCell<G::Input>>,
    max_frame_bytes: usize,
    inputs: TokenBucket,
    chats: TokenBucket,
    invalid_frames: VecDeque<Instant>,
    last_rate_limit_error: Option<Instant>,
    last_heard: Instant,
    /// A `leave` or a close with 1000: the slot is freed, not kept for a resume.
    left: bool,
    /// Closing has begun (on either side): frames are discarded but for the client's close.
    closing: bool,
    /// The client sent its close frame: nothing more to wait for once ours is out.
    peer_closed: bool,
}

impl<G: ServerGame> Frames<G> {
    /// Asks the actor to close with `code`; frames are discarded from now on.
    fn close(&mut self, code: u16) {
        self.closing = true;
        if let Some(session) = self.session.upgrade() {
            session.do_send(Kick { code });
        }
    }

    fn send_error(outbound: &Outbound, code: ErrorCode, message: &str, now: Instant) {
        outbound.push_message(protocol::encode_error(code, message), now);
    }

    fn invalid_frame(&mut self, outbound: &Outbound, error: &ProtocolError, now: Instant) {
        m::invalid_frame(error.code().as_str());
        while self
            .invalid_frames
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > ABUSE_WINDOW)
        {
            self.invalid_frames.pop_front();
        }
        self.invalid_frames.push_back(now);
        Self::send_error(outbound, error.code(), &error.to_string(), now);
        if self.invalid_frames.len() > MAX_INVALID_FRAMES {
            self.close(close::POLICY);
        }
    }

    fn rate_limited(&mut self, outbound: &Outbound, what: &str, now: Instant) {
        m::rate_limited(what);
        // One error a second is enough to tell the client; more would only add to its backlog.
        if self
            .last_rate_limit_error
            .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1))
        {
            self.last_rate_limit_error = Some(now);
            Self::send_error(
                outbound,
                ErrorCode::RateLimited,
                &format!("too many {what} messages; slow down"),
                now,
            );
        }
    }

    fn handle_message(
        &mut self,
        outbound: &Outbound,
        message: ClientMessage<G::Input>,
        now: Instant,
    ) {
        match message {
            ClientMessage::Input { seq, input } => {
                if self.inputs.try_take(now) {
                    self.input.put(seq, input);
                } else {
                    self.rate_limited(outbound, "input", now);
                }
            }
            ClientMessage::Ping { id } => {
                outbound.push_message(protocol::encode_pong(id, crate::clock::now_ms()), now);
            }
            ClientMessage::Chat { text } => {
                if self.chats.try_take(now) {
                    self.room.chat(Chat {
                        from: self.player.clone(),
                        text,
                    });
                } else {
                    self.rate_limited(outbound, "chat", now);
                }
            }
            ClientMessage::Leave => {
                self.left = true;
                self.close(close::NORMAL);
            }
        }
    }
}

impl<G: ServerGame> FrameHandler for Frames<G> {
    fn frame(&mut self, frame: InFrame<'_>, outbound: &Outbound, now: Instant) {
        self.last_heard = now;
        if self.closing {
            // Reading and discarding until the client answers our close frame.
            if let InFrame::Close(_) = frame {
                self.peer_closed = true;
            }
            return;
        }
        match frame {
            InFrame::Binary(frame) => {
                match protocol::decode_client::<G>(frame, self.max_frame_bytes) {
                    Ok(message) => self.handle_message(outbound, message, now),
                    Err(error) => self.invalid_frame(outbound, &error, now),
                }
            }
            InFrame::Text | InFrame::Fragment => self.close(close::UNSUPPORTED_DATA),
            InFrame::Close(code) => {
                // The client closes: 1000 is a leave, anything else a drop kept for the resume grace.
                self.left = code == Some(close::NORMAL);
                self.peer_closed = true;
                self.close(if self.left {
                    close::NORMAL
                } else {
                    close::GOING_AWAY
                });
            }
            InFrame::Ping(payload) => {
                outbound.push_pong(Bytes::copy_from_slice(payload), now);
            }
            InFrame::Pong => {}
        }
    }

    fn broken(&mut self, error: FrameError, _: Instant) {
        if self.closing {
            return;
        }
        if error == FrameError::TooBig {
            m::invalid_frame("too_big");
            self.close(close::TOO_BIG);
        } else {
            self.close(close::POLICY);
        }
    }

    fn gone(&mut self) {
        if let Some(session) = self.session.upgrade() {
            session.do_send(PeerGone);
        }
    }
}

/// The client's side of the TCP connection is gone.
#[derive(Debug, Message)]
#[rtype(result = "()")]
struct PeerGone;

pub struct SessionActor<G: ServerGame> {
    connection_id: u64,
    player: PlayerId,
    room: RoomHandle<G::Input>,
    link: Arc<Link<Frames<G>>>,
    settings: Arc<SessionSettings>,
    /// When this side started closing.
    closing_since: Option<Instant>,
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
        let settings = start.settings;
        SessionActor::create(move |ctx| {
            let frames = Frames {
                player: start.player.clone(),
                room: room.clone(),
                session: ctx.address().downgrade(),
                input: Arc::default(),
                max_frame_bytes: settings.max_frame_bytes,
                inputs: TokenBucket::new(2.0 * tick_rate, 2.0 * tick_rate, now),
                chats: TokenBucket::new(CHAT_BURST, CHAT_PER_SECOND, now),
                invalid_frames: VecDeque::new(),
                last_rate_limit_error: None,
                last_heard: now,
                left: false,
                closing: false,
                peer_closed: false,
            };
            let outbound = Outbound::new(settings.outbound_max_bytes, settings.slow_client_timeout);
            let link = Link::new(
                start.socket.stream,
                &start.socket.early,
                outbound,
                frames,
                settings.max_frame_bytes,
            );
            Self {
                connection_id,
                player: start.player,
                room,
                link: Arc::new(link),
                settings,
                closing_since: None,
                span,
            }
        });
    }

    fn outbound(&self) -> &Outbound {
        self.link.queue()
    }

    /// Starts the close handshake with `code`; the connection ends when the client answers or the
    /// waits run out. From here on the session runs the link's reads and writes itself.
    fn begin_close(&mut self, ctx: &mut Context<Self>, code: u16) {
        if self.closing_since.is_some() {
            return;
        }
        self.span.in_scope(|| debug!(code, "closing"));
        m::session_closed(code);
        self.outbound().close(code);
        self.link.with_handler(|frames| frames.closing = true);
        let now = Instant::now();
        self.closing_since = Some(now);
        self.link.write(now);
        ctx.run_interval(CLOSE_POLL, |session, ctx| {
            let now = Instant::now();
            session.link.write(now);
            session.link.read(now);
            crate::transport::flush_traffic();
            session.check_close(ctx);
        });
        self.check_close(ctx);
    }

    fn check_close(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        let done = match self.outbound().phase() {
            Phase::CloseSent(at) => {
                self.link.with_handler(|frames| frames.peer_closed)
                    || now.saturating_duration_since(at) >= CLOSE_ANSWER_WAIT
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

    fn heartbeat(&mut self, ctx: &mut Context<Self>) {
        if self.closing_since.is_some() {
            return;
        }
        let now = Instant::now();
        let last_heard = self.link.with_handler(|frames| frames.last_heard);
        if now.saturating_duration_since(last_heard) > self.settings.client_timeout {
            self.begin_close(ctx, close::SILENT);
            return;
        }
        if self.outbound().push_ping(now) == Push::TooSlow {
            m::slow_client_closed();
            self.begin_close(ctx, close::TOO_SLOW);
        }
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
                link: self.link.clone(),
                session: ctx.address().recipient(),
            },
            input: self.link.with_handler(|frames| frames.input.clone()),
        };
        // The room reads the link only once it has seated the connection, so no frame comes
        // before the join's answer.
        ctx.spawn(
            self.room
                .join(join)
                .into_actor(self)
                .map(|answer, session, ctx| {
                    let refusal = match answer {
                        Ok(Ok(())) => return,
                        Ok(Err(error)) => (error.to_string(), close::POLICY),
                        Err(_) => ("the room is closed".to_owned(), close::ROOM_CLOSED),
                    };
                    Frames::<G>::send_error(
                        session.outbound(),
                        ErrorCode::NotAllowed,
                        &refusal.0,
                        Instant::now(),
                    );
                    session.begin_close(ctx, refusal.1);
                }),
        );
        let heartbeat = self.settings.heartbeat_interval;
        ctx.run_interval(heartbeat, |session, ctx| session.heartbeat(ctx));
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        m::client_disconnected();
        self.link.finish();
        let left = self.link.with_handler(|frames| frames.left);
        self.room.disconnect(Disconnect {
            player: self.player.clone(),
            connection_id: self.connection_id,
            left,
        });
    }
}

impl<G: ServerGame> Handler<Kick> for SessionActor<G> {
    type Result = ();

    fn handle(&mut self, kick: Kick, ctx: &mut Context<Self>) {
        self.begin_close(ctx, kick.code);
    }
}

impl<G: ServerGame> Handler<PeerGone> for SessionActor<G> {
    type Result = ();

    fn handle(&mut self, _: PeerGone, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
