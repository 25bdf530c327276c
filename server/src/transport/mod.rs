//! Bytes on the socket, below rooms and sessions: the outbound queue of a connection, the client
//! frame parser, and the [`link::Link`] that owns an upgraded socket and is read and written by
//! the room's tick.
//!
//! Rooms drive links through [`link::TickIo`] and sessions handle their frames through
//! [`link::FrameHandler`]; neither needs the other to do so, which is why this lives apart from both.

pub mod frame;
pub mod link;
pub mod outbound;

/// An upgraded WebSocket connection as the HTTP side hands it over: the socket, already out of the
/// reactor, and what the client sent after its handshake request that HTTP had already read.
#[derive(Debug)]
pub struct Socket {
    pub stream: std::net::TcpStream,
    pub early: bytes::Bytes,
}
