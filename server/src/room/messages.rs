//! Messages a room handles and sends.

use std::sync::Arc;

use actix::{Message, Recipient};
use game_core::{JoinError, PlayerId};
use protocol::ChatText;

use super::input::InputCell;
use crate::session::outbound::Outbound;

/// A connection of a player, as the room knows it.
#[derive(Debug, Clone)]
pub struct Connection {
    /// Unique per WebSocket connection, so a replaced session's late disconnect is recognised.
    pub id: u64,
    pub outbound: Arc<Outbound>,
    pub session: Recipient<Kick>,
}

/// A session asks to take (or take back) its player's slot. The answer is the cell the session writes
/// the player's inputs into; the room has already queued `welcome` on the connection.
#[derive(Debug)]
pub struct Join<I: 'static> {
    pub player: PlayerId,
    pub connection: Connection,
    pub _input: std::marker::PhantomData<fn() -> I>,
}

impl<I: Send + 'static> Message for Join<I> {
    type Result = Result<Arc<InputCell<I>>, JoinError>;
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
