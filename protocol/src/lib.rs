//! Skirmish wire protocol v1: the MessagePack messages between game clients and the server.
//!
//! `PROTOCOL.md` at the repository root is the normative description, with hex examples that are
//! checked against the test vectors in `protocol/vectors/`.
//!
//! - Client to server: [`decode_client`] turns one binary frame into a validated [`ClientMessage`]
//!   (size limit checked before any parsing; a game's raw input becomes its validated input through
//!   `TryFrom`, so a NaN never reaches a room). [`encode_client`] is the other side, for bots and tests.
//! - Server to client: the `encode_*` functions and [`StateEncoder`] write each message once into a
//!   [`bytes::Bytes`] that a room hands to every session. [`ServerMessage`] is the typed, owned form of
//!   every server message, with [`ServerMessage::encode`] and [`decode_server`], for clients, bots and
//!   tests.
//!
//! Every frame is one MessagePack map with string keys and the message type under `"t"`. Decoding
//! never allocates from a length prefix: the frame is walked in place and every length is checked
//! against the bytes that are actually left.

mod client;
mod error;
mod server;
mod wire;

pub use client::{ChatText, ClientMessage, decode_client, encode_client};
pub use error::{ErrorCode, ProtocolError};
pub use server::{
    ArenaState, Event, PickupRow, PlayerRow, ResultRow, ServerMessage, StateEncoder, decode_server,
    decode_server_as, encode_chat, encode_error, encode_match_over, encode_player_joined,
    encode_player_left, encode_pong, encode_welcome,
};

/// The length in bytes of the first complete MessagePack value in `bytes` (of any nesting), for
/// clients that scan frames themselves and skip what they do not need. Iterative and bounded by
/// `bytes.len()`: a forged length fails at once instead of making it run long.
pub fn value_len(bytes: &[u8]) -> Result<usize, ProtocolError> {
    wire::Reader::new(bytes).value().map(<[u8]>::len)
}

/// Default limit for one inbound (client to server) frame, in bytes. Real client frames are tens of
/// bytes; the limit only bounds what a hostile client can make the server parse.
pub const MAX_CLIENT_FRAME_BYTES: usize = 4096;

/// Most characters (Unicode scalar values, not bytes) in one chat message.
pub const MAX_CHAT_CHARS: usize = 200;

/// WebSocket close codes of the design, so the server and clients agree on their meaning.
pub mod close {
    /// Normal close; a client closing with it leaves (frees its slot) like `leave`.
    pub const NORMAL: u16 = 1000;
    /// The server is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// A text frame was received; the protocol is binary only.
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// Policy violation: bad ticket, or too many invalid frames (more than 10 in 10 s).
    pub const POLICY: u16 = 1008;
    /// A frame over the inbound size limit.
    pub const TOO_BIG: u16 = 1009;
    /// The room closed (match over or closed over HTTP).
    pub const ROOM_CLOSED: u16 = 4001;
    /// The client did not keep up with the outbound stream.
    pub const TOO_SLOW: u16 = 4002;
    /// A newer connection of the same player took over.
    pub const REPLACED: u16 = 4003;
    /// Nothing received from the client within the heartbeat timeout.
    pub const SILENT: u16 = 4004;
    /// The room moved to another node of a cluster; the client asks `GET /v1/locate` where it is.
    pub const ROOM_MOVED: u16 = 4005;
}
