//! Bytes on the socket, below rooms and sessions: the outbound queue of a connection, the client
//! frame parser, and the [`link::Link`] that owns an upgraded socket and is read and written by
//! the room's tick.
//!
//! Rooms drive links through [`link::TickIo`] and sessions handle their frames through
//! [`link::FrameHandler`]; neither needs the other to do so, which is why this lives apart from both.

pub mod frame;
pub mod link;
pub mod outbound;

use std::cell::Cell;

/// The result of one non-blocking `read` or `write`: `None` when the socket cannot move bytes now.
fn nonblocking(result: std::io::Result<usize>) -> std::io::Result<Option<usize>> {
    match result {
        Ok(n) => Ok(Some(n)),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

thread_local! {
    /// Frames and bytes in and out on this thread since the last [`flush_traffic`]: counted per
    /// frame here, handed to the metrics once per tick, not once per client.
    static TRAFFIC: Cell<[u64; 4]> = const { Cell::new([0; 4]) };
}

fn count_traffic(frames_in: u64, bytes_in: u64, frames_out: u64, bytes_out: u64) {
    TRAFFIC.with(|t| {
        let [a, b, c, d] = t.get();
        t.set([a + frames_in, b + bytes_in, c + frames_out, d + bytes_out]);
    });
}

/// Adds this thread's traffic since the last call to the metrics. Called at the end of each pass.
pub fn flush_traffic() {
    let [frames_in, bytes_in, frames_out, bytes_out] = TRAFFIC.with(|t| t.replace([0; 4]));
    if frames_in > 0 {
        crate::metrics::frames_in(frames_in, bytes_in);
    }
    if frames_out > 0 || bytes_out > 0 {
        crate::metrics::frames_out(frames_out, bytes_out);
    }
}

/// An upgraded WebSocket connection as the HTTP side hands it over: the socket, already out of the
/// reactor, and what the client sent after its handshake request that HTTP had already read.
#[derive(Debug)]
pub struct Socket {
    pub stream: std::net::TcpStream,
    pub early: bytes::Bytes,
}
