//! The type-erased face of a room, so that the registry and the HTTP handlers need not know which
//! game a room runs. It is implemented above both rooms and sessions (`crate::modes`), where a
//! room's game is known and a session can be started for it.

use std::future::Future;
use std::pin::Pin;

use game_core::PlayerId;

use super::messages::CloseKind;
use crate::transport::Socket;

pub type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

pub trait RoomPort: Send + Sync {
    /// Serves an upgraded connection of `player` (its ticket or resume token already checked): a
    /// session actor on the current arbiter, the socket read and written by the room's tick.
    fn connect(&self, player: PlayerId, socket: Socket);
    /// Closes the room; resolves once it has handed its final state to persistence.
    fn close(&self, kind: CloseKind) -> BoxFuture;
}
