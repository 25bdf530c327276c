//! One WebSocket connection after the handshake: the socket, out of the reactor, read and written
//! only when a pass reaches it.
//!
//! The pass is the room's tick: it reads every seated connection before it steps (one non-blocking
//! `read` per socket into the thread's shared buffer, frames parsed in place and handed to the
//! connection's [`FrameHandler`], which is the session's logic) and writes every queue after it
//! has encoded the state (one `write` per socket). Between ticks nothing on a connection wakes
//! anything. A closing session runs the same two calls itself on its close timer.
//!
//! Memory per connection is what it uses: a frame split across two reads keeps its first part in
//! a buffer of its own until it is whole, and a write the socket did not take keeps its tail in
//! the outbound queue; an idle connection holds neither.

use std::cell::RefCell;
use std::io::Read;
use std::net::{Shutdown, TcpStream};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use super::frame::{self, FrameError, InFrame, MAX_HEADER};
use super::outbound::Outbound;

/// What a connection's frames go to: the session's logic, called by whichever pass reads.
pub trait FrameHandler: Send + 'static {
    /// A complete frame from the client.
    fn frame(&mut self, frame: InFrame<'_>, outbound: &Outbound, now: Instant);
    /// The client broke the framing; nothing more can be read from this connection.
    fn broken(&mut self, error: FrameError, now: Instant);
    /// The client's side of the TCP connection is gone (end of stream, reset).
    fn gone(&mut self);
}

/// A connection as a pass sees it, whatever handles its frames.
pub trait TickIo: Send + Sync + std::fmt::Debug {
    fn outbound(&self) -> &Outbound;
    /// Reads what the client sent since the last pass and hands it to the connection's handler.
    fn read(&self, now: Instant);
    /// Writes what is queued.
    fn write(&self, now: Instant);
}

struct Inbound<H> {
    handler: H,
    /// The start of a frame whose rest has not arrived yet (bytes read after the handshake, too).
    partial: Vec<u8>,
    /// End of stream, an error, or broken framing: nothing more is read.
    ended: bool,
}

impl<H: FrameHandler> Inbound<H> {
    /// The client is gone (end of stream, reset): tell the handler once, read nothing more.
    fn end(&mut self) {
        if !self.ended {
            self.ended = true;
            self.handler.gone();
        }
    }
}

pub struct Link<H> {
    socket: TcpStream,
    outbound: Outbound,
    inbound: Mutex<Inbound<H>>,
    max_frame_bytes: usize,
}

impl<H> std::fmt::Debug for Link<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("peer", &self.socket.peer_addr().ok())
            .field("outbound", &self.outbound)
            .finish_non_exhaustive()
    }
}

thread_local! {
    /// One read buffer per thread, shared by every connection the thread reads.
    static READ_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// One write buffer per thread, where a pass frames each connection's queue.
    static WRITE_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl<H: FrameHandler> Link<H> {
    /// Takes over `socket` (set non-blocking, out of any reactor); `early` is what the client sent after
    /// its handshake request and the HTTP side had already read.
    pub fn new(
        socket: TcpStream,
        early: &[u8],
        outbound: Outbound,
        handler: H,
        max_frame_bytes: usize,
    ) -> Self {
        Self {
            socket,
            outbound,
            inbound: Mutex::new(Inbound {
                handler,
                partial: early.to_vec(),
                ended: false,
            }),
            max_frame_bytes,
        }
    }

    fn inbound(&self) -> MutexGuard<'_, Inbound<H>> {
        // Every mutation under this lock leaves it consistent; a panic elsewhere does not stop reads.
        self.inbound.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` with the handler, for the session's own checks between passes.
    pub fn with_handler<R>(&self, f: impl FnOnce(&mut H) -> R) -> R {
        f(&mut self.inbound().handler)
    }

    pub fn queue(&self) -> &Outbound {
        &self.outbound
    }

    /// The session is done: nothing more is written, what the client still sent is discarded (so the
    /// kernel ends the connection with FIN rather than a reset), and our side is shut.
    pub fn finish(&self) {
        self.outbound.finish();
        let mut inbound = self.inbound();
        inbound.ended = true;
        inbound.partial = Vec::new();
        let mut discard = [0u8; 1024];
        for _ in 0..64 {
            match (&self.socket).read(&mut discard) {
                Ok(n) if n > 0 => continue,
                _ => break,
            }
        }
        let _ = self.socket.shutdown(Shutdown::Write);
    }

    fn read_into(&self, inbound: &mut Inbound<H>, buf: &mut Vec<u8>, now: Instant) {
        let capacity = self.max_frame_bytes + MAX_HEADER;
        if buf.len() < capacity {
            buf.resize(capacity, 0);
        }
        let carried = inbound.partial.len().min(capacity);
        buf[..carried].copy_from_slice(&inbound.partial[..carried]);
        // Only early bytes can be more than a buffer; the rest waits for the next pass.
        let more_waiting = inbound.partial.len() > carried;
        if more_waiting {
            inbound.partial.drain(..carried);
        } else {
            inbound.partial = Vec::new();
        }
        let read = if more_waiting || carried == capacity {
            Ok(None)
        } else {
            super::nonblocking((&self.socket).read(&mut buf[carried..capacity]))
        };
        let read = match read {
            Ok(Some(0)) | Err(_) => return inbound.end(),
            Ok(Some(n)) => n,
            Ok(None) => 0,
        };
        let filled = carried + read;
        let mut at = 0;
        while at < filled {
            match frame::parse(&mut buf[at..filled], self.max_frame_bytes) {
                Ok(Some((taken, frame))) => {
                    super::count_traffic(1, taken as u64, 0, 0);
                    inbound.handler.frame(frame, &self.outbound, now);
                    at += taken;
                }
                Ok(None) => break,
                Err(error) => {
                    inbound.ended = true;
                    inbound.handler.broken(error, now);
                    return;
                }
            }
        }
        if at < filled {
            let mut rest = buf[at..filled].to_vec();
            rest.append(&mut inbound.partial);
            inbound.partial = rest;
        }
    }
}

impl<H: FrameHandler> TickIo for Link<H> {
    fn outbound(&self) -> &Outbound {
        &self.outbound
    }

    fn read(&self, now: Instant) {
        let mut inbound = self.inbound();
        if inbound.ended {
            return;
        }
        READ_BUF.with(|buf| match buf.try_borrow_mut() {
            Ok(mut buf) => self.read_into(&mut inbound, &mut buf, now),
            // A handler that reads another connection from inside a read: give it its own buffer.
            Err(_) => self.read_into(&mut inbound, &mut Vec::new(), now),
        });
    }

    fn write(&self, now: Instant) {
        let written = WRITE_BUF.with(|buf| match buf.try_borrow_mut() {
            Ok(mut buf) => self.outbound.write_to(&mut &self.socket, &mut buf, now),
            Err(_) => self
                .outbound
                .write_to(&mut &self.socket, &mut Vec::new(), now),
        });
        if written.is_err() {
            // Reset or broken pipe: the client is gone. The next read would say so too.
            self.inbound().end();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::frame::client_frame;
    use std::io::Write;
    use std::sync::Arc;
    use std::time::Duration;

    #[derive(Default)]
    struct Seen {
        frames: Vec<String>,
        gone: bool,
        broken: Option<FrameError>,
    }

    struct Recorder(Arc<Mutex<Seen>>);

    impl FrameHandler for Recorder {
        fn frame(&mut self, frame: InFrame<'_>, _: &Outbound, _: Instant) {
            self.0.lock().unwrap().frames.push(format!("{frame:?}"));
        }
        fn broken(&mut self, error: FrameError, _: Instant) {
            self.0.lock().unwrap().broken = Some(error);
        }
        fn gone(&mut self) {
            self.0.lock().unwrap().gone = true;
        }
    }

    fn pair() -> (TcpStream, TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (server, client)
    }

    fn new_link(server: TcpStream, early: &[u8]) -> (Link<Recorder>, Arc<Mutex<Seen>>) {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let outbound = Outbound::new(1 << 16, Duration::from_secs(5));
        let link = {
            server.set_nonblocking(true).unwrap();
            Link::new(server, early, outbound, Recorder(seen.clone()), 64)
        };
        (link, seen)
    }

    /// Reads until `n` frames were seen (bytes on loopback arrive at once, but not within a call).
    fn read_until(link: &Link<Recorder>, seen: &Mutex<Seen>, n: usize) {
        for _ in 0..200 {
            link.read(Instant::now());
            if seen.lock().unwrap().frames.len() >= n {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn frames_split_anywhere_arrive_whole_and_early_bytes_come_first() {
        let (server, mut client) = pair();
        let early = client_frame(true, 2, b"early", [1, 2, 3, 4]);
        let (link, seen) = new_link(server, &early[..3]);
        let mut rest = early[3..].to_vec();
        let second = client_frame(true, 9, b"ping", [9, 9, 9, 9]);
        rest.extend_from_slice(&second[..5]);
        client.write_all(&rest).unwrap();
        read_until(&link, &seen, 1);
        client.write_all(&second[5..]).unwrap();
        read_until(&link, &seen, 2);
        assert_eq!(
            seen.lock().unwrap().frames,
            [
                "Binary([101, 97, 114, 108, 121])",
                "Ping([112, 105, 110, 103])"
            ]
        );
        assert!(
            link.inbound().partial.capacity() == 0,
            "nothing held once frames are whole"
        );
    }

    #[test]
    fn an_oversized_frame_breaks_the_link_and_a_closed_peer_is_gone() {
        let (server, mut client) = pair();
        let (link, seen) = new_link(server, &[]);
        client
            .write_all(&client_frame(true, 2, &[0; 65], [0; 4])[..4])
            .unwrap();
        for _ in 0..100 {
            link.read(Instant::now());
            if seen.lock().unwrap().broken.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(seen.lock().unwrap().broken, Some(FrameError::TooBig));

        let (server, client) = pair();
        let (link, seen) = new_link(server, &[]);
        drop(client);
        for _ in 0..100 {
            link.read(Instant::now());
            if seen.lock().unwrap().gone {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(seen.lock().unwrap().gone);
    }

    #[test]
    fn writes_reach_the_client_framed() {
        let (server, mut client) = pair();
        let (link, _) = new_link(server, &[]);
        link.outbound()
            .push_message(bytes::Bytes::from_static(b"abc"), Instant::now());
        link.write(Instant::now());
        let mut got = [0u8; 5];
        client.read_exact(&mut got).unwrap();
        assert_eq!(got, [0x82, 3, b'a', b'b', b'c']);
    }
}
