//! The type-erased face of a room, so that the registry and the HTTP handlers need not know which
//! game a room runs.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix::Addr;
use game_core::PlayerId;

use super::messages::{CloseKind, CloseRoom};
use super::{RoomActor, ServerGame};
use crate::domain::RoomId;
use crate::session::outbound::Outbound;
use crate::session::{SessionActor, SessionSettings};

/// Everything a new session needs, gathered by the WebSocket upgrade.
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

pub type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

pub trait RoomPort: Send + Sync {
    /// Starts the session actor of an accepted connection on the current arbiter (the worker that
    /// owns the socket).
    fn start_session(&self, start: SessionStart);
    /// Closes the room; resolves once it has handed its final state to persistence.
    fn close(&self, kind: CloseKind) -> BoxFuture;
}

impl<G: ServerGame> RoomPort for Addr<RoomActor<G>> {
    fn start_session(&self, start: SessionStart) {
        SessionActor::<G>::spawn(self.clone(), start);
    }

    fn close(&self, kind: CloseKind) -> BoxFuture {
        let request = self.send(CloseRoom::new(kind));
        Box::pin(async move {
            // An error means the room already stopped, which is what was asked.
            let _ = request.await;
        })
    }
}
