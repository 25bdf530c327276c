//! Messages a room handles and sends.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix::{MailboxError, Message, Recipient};
use game_core::{JoinError, PlayerId};
use protocol::ChatText;

use super::input::InputCell;
use crate::transport::link::TickIo;

/// A connection of a player, as the room knows it.
#[derive(Debug, Clone)]
pub struct Connection {
    /// Unique per WebSocket connection, so a replaced session's late disconnect is recognised.
    pub id: u64,
    /// The socket, which the room's tick reads and writes.
    pub link: Arc<dyn TickIo>,
    pub session: Recipient<Kick>,
}

impl Connection {
    /// Writes a close frame with `code` at once and tells the session, which runs the rest of the
    /// close handshake.
    pub fn close_now(&self, code: u16, now: std::time::Instant) {
        self.link.outbound().close(code);
        self.link.write(now);
        self.session.do_send(Kick { code });
    }
}

/// A session asks to take (or take back) its player's slot, with the cell it writes the player's
/// inputs into. Once seated, the room reads the connection at every tick; it has already queued
/// `welcome` on it when it answers.
#[derive(Debug)]
pub struct Join<I: 'static> {
    pub player: PlayerId,
    pub connection: Connection,
    pub input: Arc<InputCell<I>>,
}

impl<I: Send + 'static> Message for Join<I> {
    type Result = Result<(), JoinError>;
}

/// The answer to a [`Join`], as a session awaits it.
pub type JoinAnswer = Pin<Box<dyn Future<Output = Result<Result<(), JoinError>, MailboxError>>>>;

/// The messages a session sends its room. Implemented by the room's address, so a session reaches
/// its room without knowing the room actor's type.
pub trait RoomMailbox<I: Send + 'static>: Send {
    fn join(&self, join: Join<I>) -> JoinAnswer;
    fn chat(&self, chat: Chat);
    fn disconnect(&self, disconnect: Disconnect);
    fn clone_box(&self) -> Box<dyn RoomMailbox<I>>;
}

/// The room as a session reaches it: its messages, not its actor. One address behind it (not one
/// `Recipient` per message), so a connection holds no more than it did with the actor's `Addr`.
pub struct RoomHandle<I: Send + 'static>(Box<dyn RoomMailbox<I>>);

impl<I: Send + 'static> RoomHandle<I> {
    pub fn new(room: impl RoomMailbox<I> + 'static) -> Self {
        Self(Box::new(room))
    }

    /// Asks for the player's slot; resolves to why not, if not (an error of the mailbox means the
    /// room has stopped).
    pub fn join(&self, join: Join<I>) -> JoinAnswer {
        self.0.join(join)
    }

    pub fn chat(&self, chat: Chat) {
        self.0.chat(chat);
    }

    pub fn disconnect(&self, disconnect: Disconnect) {
        self.0.disconnect(disconnect);
    }
}

impl<I: Send + 'static> Clone for RoomHandle<I> {
    fn clone(&self) -> Self {
        Self(self.0.clone_box())
    }
}

impl<I: Send + 'static> std::fmt::Debug for RoomHandle<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomHandle").finish_non_exhaustive()
    }
}

/// A session ended. `left` (a `leave` or a close with 1000) frees the slot at once; otherwise the
/// slot is kept for the resume grace.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Disconnect {
    pub player: PlayerId,
    pub connection_id: u64,
    pub left: bool,
}

/// A chat line to broadcast to the room.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Chat {
    pub from: PlayerId,
    pub text: ChatText,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseKind {
    /// `DELETE /v1/rooms/{id}`: the room ends for good (sessions get 4001).
    Deleted,
    /// The server is stopping: a final snapshot, sessions get 1001, and the room stays open in
    /// storage so that it is restored at the next start.
    Shutdown,
    /// Cluster drain: a final snapshot, sessions get 4005 (room moved), the room stays open in
    /// storage and another node claims it once this one releases it.
    Handoff,
    /// Cluster: this node's lease is gone, another node may own the room already. No write (it
    /// would be refused anyway), sessions get 4005.
    LeaseLost,
}

impl CloseKind {
    /// The reason as traces and logs name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deleted => "deleted",
            Self::Shutdown => "shutdown",
            Self::Handoff => "handoff",
            Self::LeaseLost => "lease_lost",
        }
    }
}

/// Why a room ended for good, as webhook `room.closed` events report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Closed over HTTP (`DELETE /v1/rooms/{id}`).
    Deleted,
    /// Empty past `empty_room_timeout`, or not restorable after a restart.
    Expired,
    /// The match ended; its results were recorded.
    Finished,
}

impl CloseReason {
    /// The wire name (`reason` of a `room.closed` event).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deleted => "deleted",
            Self::Expired => "expired",
            Self::Finished => "finished",
        }
    }
}

/// Close the room; answered once its final state has been handed to persistence.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct CloseRoom {
    pub kind: CloseKind,
    /// The sender's span (the `DELETE` request, or shutdown): the room's close span is its child.
    pub cause: tracing::Span,
}

impl CloseRoom {
    /// A close caused by whatever the current span is.
    pub fn new(kind: CloseKind) -> Self {
        Self {
            kind,
            cause: tracing::Span::current(),
        }
    }
}

/// Sent by a room to a session: close the connection with this code.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Kick {
    pub code: u16,
}
