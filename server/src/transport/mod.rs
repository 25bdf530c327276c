//! Bytes on the socket, below rooms and sessions: the outbound queue of a connection and the
//! response body that frames and writes it, and the upgraded socket as the HTTP side hands it over.
//!
//! Rooms push into an [`outbound::Outbound`] and sessions read a [`Socket`]'s frames; neither needs
//! the other to do so, which is why this lives apart from both.

pub mod outbound;

use std::sync::Arc;

use self::outbound::Outbound;

/// An accepted WebSocket connection: the client's incoming frames, and the queue that the
/// connection's response body drains.
pub struct Socket {
    pub frames: actix_ws::MessageStream,
    pub outbound: Arc<Outbound>,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("outbound", &self.outbound)
            .finish_non_exhaustive()
    }
}
