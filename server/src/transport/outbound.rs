//! A connection's outbound queue, drained onto the socket by whoever runs the connection's pass.
//!
//! The room pushes each tick's `state` (the same `Bytes` for every session) straight into this
//! bounded queue, and at the end of the same tick writes each queue to its socket: everything queued
//! becomes one buffer (WebSocket headers and payloads together) and one `write`. What the socket does
//! not take waits, ahead of anything newer, for the next tick. The slow-client policy judges a client
//! by what it fails to take, never by how many messages the room had to tell it at once (a burst of
//! events in one tick is normal and goes out whole at the tick's write):
//! - an unsent `state` is replaced by the newer one (only the newest state matters): it waits in a
//!   slot of its own, written after the messages, and is not counted against the bound;
//! - a frame waiting longer than `slow_client_timeout` closes the connection with 4002 (time);
//! - so does a message (event, chat, reply, ping) that would take the bytes waiting past `max_bytes`
//!   (memory): frames as they go on the wire plus the queue's own slot per frame, plus the unsent
//!   tail of the last write. A message is always taken when nothing else waits, so one large frame
//!   cannot trip the bound. A queue therefore holds at most `max_bytes` plus one message plus one
//!   state.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;

#[derive(Debug)]
enum Frame {
    State(Bytes),
    Message(Bytes),
    Ping,
    Pong(Bytes),
    Close(u16),
}

/// What a queued frame costs besides its bytes on the wire: its slot in the queue. Counting it keeps
/// even empty frames (pings, empty pongs) from piling up without bound.
const SLOT_BYTES: usize = std::mem::size_of::<Frame>();

impl Frame {
    /// The bytes this frame holds while it waits: WebSocket header and payload, plus its slot.
    fn cost(&self) -> usize {
        let payload = match self {
            Frame::State(p) | Frame::Message(p) | Frame::Pong(p) => p.len(),
            Frame::Ping => 0,
            Frame::Close(_) => 2,
        };
        SLOT_BYTES + wire_len(payload)
    }
}

/// Length on the wire of an unmasked (server-to-client) frame with this payload.
fn wire_len(payload: usize) -> usize {
    super::frame::header_len(payload) + payload
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Open,
    /// A close frame is queued behind the frames already waiting.
    Closing,
    /// The close frame went out at this instant; waiting for the client's answer.
    CloseSent(Instant),
    /// The connection is done; nothing more is written.
    Finished,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    Queued,
    /// The client is too slow: the queue now holds only a 4002 close frame.
    TooSlow,
    /// The connection is closing or closed; the frame was dropped.
    Closed,
}

#[derive(Debug)]
struct Inner {
    /// The newest state not yet written: states replace each other, so one slot, outside the queue.
    state: Option<Bytes>,
    /// Everything else, in order. Emptied queues give their memory back: most ticks queue nothing
    /// here, so a quiet connection holds no queue at all.
    frames: VecDeque<Frame>,
    /// [`Frame::cost`] of every queued frame but the state: what the bound is checked against.
    bytes: usize,
    /// The tail of a write the socket did not take, sent before anything else.
    unsent: Vec<u8>,
    phase: Phase,
    /// When the oldest unsent frame started waiting.
    waiting_since: Option<Instant>,
}

/// Shared by the room (pushes states and events), the session (pushes replies, closes) and the body.
#[derive(Debug)]
pub struct Outbound {
    inner: Mutex<Inner>,
    /// Bytes of messages (everything but the state) that may wait before the client is too slow.
    max_bytes: usize,
    slow_client_timeout: Duration,
}

impl Outbound {
    pub fn new(max_bytes: usize, slow_client_timeout: Duration) -> Self {
        Self {
            inner: Mutex::new(Inner {
                state: None,
                frames: VecDeque::new(),
                bytes: 0,
                unsent: Vec::new(),
                phase: Phase::Open,
                waiting_since: None,
            }),
            max_bytes,
            slow_client_timeout,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock only means another thread panicked while holding it; the queue itself is
        // still consistent (every mutation is a single push or pop), so keep serving.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues a tick's state, replacing an unsent older one.
    pub fn push_state(&self, frame: Bytes, now: Instant) -> Push {
        self.push(Frame::State(frame), now)
    }

    /// Queues a message that must not be dropped (welcome, events, chat, pong, error).
    pub fn push_message(&self, frame: Bytes, now: Instant) -> Push {
        self.push(Frame::Message(frame), now)
    }

    pub fn push_ping(&self, now: Instant) -> Push {
        self.push(Frame::Ping, now)
    }

    /// Answers a client's WebSocket ping.
    pub fn push_pong(&self, payload: Bytes, now: Instant) -> Push {
        self.push(Frame::Pong(payload), now)
    }

    fn push(&self, frame: Frame, now: Instant) -> Push {
        let mut inner = self.lock();
        if inner.phase != Phase::Open {
            return Push::Closed;
        }
        if let Some(since) = inner.waiting_since
            && now.saturating_duration_since(since) > self.slow_client_timeout
        {
            Self::begin_close(&mut inner, protocol::close::TOO_SLOW, true);
            return Push::TooSlow;
        }
        // Replacing an unsent state does not restart the clock: the client still took nothing.
        if let Frame::State(state) = frame {
            inner.state = Some(state);
            inner.waiting_since.get_or_insert(now);
            return Push::Queued;
        }
        let cost = frame.cost();
        // A lone message always fits: the bound is on what piles up, not on one frame's size.
        if inner.bytes > 0 && inner.bytes + cost > self.max_bytes {
            Self::begin_close(&mut inner, protocol::close::TOO_SLOW, true);
            return Push::TooSlow;
        }
        inner.bytes += cost;
        inner.waiting_since.get_or_insert(now);
        inner.frames.push_back(frame);
        Push::Queued
    }

    fn begin_close(inner: &mut Inner, code: u16, drop_pending: bool) {
        if drop_pending {
            inner.frames.clear();
            inner.state = None;
            // A half-written frame stays: it must be finished before the close frame can follow.
            inner.bytes = inner.unsent.len();
            if inner.unsent.is_empty() {
                inner.waiting_since = None;
            }
        } else if let Some(state) = inner.state.take() {
            // The newest state still goes out, before the close frame.
            inner.frames.push_back(Frame::State(state));
        }
        inner.frames.push_back(Frame::Close(code));
        inner.phase = Phase::Closing;
    }

    /// Queues a close frame behind what is already queued. Returns false if closing had already begun.
    pub fn close(&self, code: u16) -> bool {
        let mut inner = self.lock();
        if inner.phase != Phase::Open {
            return false;
        }
        Self::begin_close(&mut inner, code, false);
        true
    }

    /// The connection is done: nothing more is written.
    pub fn finish(&self) {
        let mut inner = self.lock();
        inner.phase = Phase::Finished;
        inner.frames = VecDeque::new();
        inner.state = None;
        inner.unsent = Vec::new();
        inner.bytes = 0;
    }

    pub fn phase(&self) -> Phase {
        self.lock().phase
    }

    /// Frames waiting, the state included.
    pub fn queued(&self) -> usize {
        let inner = self.lock();
        inner.frames.len() + usize::from(inner.state.is_some())
    }

    /// Bytes of messages waiting (everything but the state), as the bound counts them.
    pub fn queued_bytes(&self) -> usize {
        self.lock().bytes
    }
}

/// What [`Outbound::write_to`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Nothing was waiting.
    Idle,
    /// Everything waiting is now with the kernel.
    All,
    /// The socket took only part: the rest waits for the next pass.
    Partial,
}

impl Outbound {
    /// Frames everything queued into `buf` (cleared first) and writes it to `sink` with one `write`.
    /// Bytes the sink does not take are kept, ahead of anything queued later, for the next call; while
    /// they wait, newer states still replace older queued ones. Called by the pass that owns the
    /// socket: the room's tick, or the session while it closes.
    pub fn write_to(
        &self,
        sink: &mut impl std::io::Write,
        buf: &mut Vec<u8>,
        now: Instant,
    ) -> std::io::Result<Written> {
        let mut inner = self.lock();
        if inner.phase == Phase::Finished {
            return Ok(Written::Idle);
        }
        let mut wrote = false;
        if !inner.unsent.is_empty() {
            // A frame is half out: finish it before anything else, so the stream stays framed.
            let taken = write_some(sink, &inner.unsent)?;
            inner.bytes = inner.bytes.saturating_sub(taken);
            super::count_traffic(0, 0, 0, taken as u64);
            if taken < inner.unsent.len() {
                inner.unsent.drain(..taken);
                inner.note_stall(taken > 0, now);
                return Ok(Written::Partial);
            }
            // An allocation only a stalled connection pays for, returned as soon as it drains.
            inner.unsent = Vec::new();
            wrote = true;
        }
        if inner.frames.is_empty() && inner.state.is_none() {
            if inner.bytes == 0 {
                inner.waiting_since = None;
            }
            return Ok(if wrote { Written::All } else { Written::Idle });
        }
        buf.clear();
        let mut frames = 0;
        while let Some(frame) = inner.frames.pop_front() {
            frames += 1;
            match frame {
                Frame::State(payload) | Frame::Message(payload) => {
                    write_frame(buf, OpCode::Binary, &payload)
                }
                Frame::Ping => write_frame(buf, OpCode::Ping, &[]),
                Frame::Pong(payload) => write_frame(buf, OpCode::Pong, &payload),
                Frame::Close(code) => {
                    write_frame(buf, OpCode::Close, &code.to_be_bytes());
                    inner.phase = Phase::CloseSent(now);
                    // Nothing goes out after a close frame.
                    inner.frames.clear();
                    inner.state = None;
                    break;
                }
            }
        }
        if let Some(state) = inner.state.take() {
            frames += 1;
            write_frame(buf, OpCode::Binary, &state);
        }
        if inner.frames.capacity() > 0 {
            inner.frames = VecDeque::new();
        }
        let taken = write_some(sink, buf)?;
        super::count_traffic(0, 0, frames, taken as u64);
        if taken == buf.len() {
            inner.bytes = 0;
            inner.waiting_since = None;
            return Ok(Written::All);
        }
        inner.unsent = buf[taken..].to_vec();
        inner.bytes = inner.unsent.len();
        inner.note_stall(taken > 0, now);
        Ok(Written::Partial)
    }
}

impl Inner {
    /// Part of a write stayed behind. A client that took something is judged by what it leaves from
    /// here on; one that took nothing keeps the clock it had.
    fn note_stall(&mut self, progress: bool, now: Instant) {
        if progress {
            self.waiting_since = Some(now);
        } else {
            self.waiting_since.get_or_insert(now);
        }
    }
}

/// One `write`; a socket that cannot take anything now has taken 0 bytes.
fn write_some(sink: &mut impl std::io::Write, bytes: &[u8]) -> std::io::Result<usize> {
    super::nonblocking(sink.write(bytes)).map(|taken| taken.unwrap_or(0))
}

/// Appends an unmasked (server-to-client) frame.
fn write_frame(buf: &mut Vec<u8>, opcode: OpCode, payload: &[u8]) {
    let first = 0x80
        | match opcode {
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xa,
        };
    super::frame::push_header(buf, first, false, payload.len());
    buf.extend_from_slice(payload);
}

#[derive(Debug, Clone, Copy)]
enum OpCode {
    Binary,
    Close,
    Ping,
    Pong,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: u8) -> Bytes {
        Bytes::from(vec![n; 3])
    }

    /// What one pass writes to a socket that takes everything.
    fn next_chunk(queue: &Outbound) -> Vec<u8> {
        let mut socket = Vec::new();
        queue
            .write_to(&mut socket, &mut Vec::new(), Instant::now())
            .unwrap();
        socket
    }

    #[test]
    fn a_newer_state_replaces_an_unsent_one_and_messages_keep_their_order() {
        let queue = Outbound::new(8, Duration::from_secs(5));
        let now = Instant::now();
        assert_eq!(queue.push_state(frame(1), now), Push::Queued);
        assert_eq!(queue.push_message(frame(2), now), Push::Queued);
        assert_eq!(queue.push_state(frame(3), now), Push::Queued);
        assert_eq!(queue.queued(), 2);
        // Two binary frames: 0x82, length 3, payload.
        assert_eq!(
            &next_chunk(&queue)[..],
            &[0x82, 3, 2, 2, 2, 0x82, 3, 3, 3, 3][..]
        );
    }

    /// The cost of a 3-byte message: 5 bytes on the wire plus its slot.
    fn message_cost() -> usize {
        Frame::Message(frame(0)).cost()
    }

    #[test]
    fn a_burst_of_messages_is_judged_by_its_bytes_not_its_count() {
        // Room for 40 small messages: a burst of 30 in one tick (more than any frame count the old
        // bound allowed) is taken, and draining it makes room again.
        let queue = Outbound::new(40 * message_cost(), Duration::from_secs(5));
        let now = Instant::now();
        for i in 0..30 {
            assert_eq!(
                queue.push_message(frame(i), now),
                Push::Queued,
                "message {i}"
            );
        }
        assert_eq!(queue.push_state(frame(99), now), Push::Queued);
        assert_eq!(queue.queued(), 31);
        assert_eq!(
            queue.queued_bytes(),
            30 * message_cost(),
            "the state is not counted"
        );
        assert_eq!(next_chunk(&queue).len(), 31 * 5);
        assert_eq!(queue.queued_bytes(), 0);
        for i in 0..40 {
            assert_eq!(
                queue.push_message(frame(i), now),
                Push::Queued,
                "message {i}"
            );
        }
        assert_eq!(queue.phase(), Phase::Open);
    }

    #[test]
    fn bytes_waiting_beyond_the_bound_close_with_4002() {
        let queue = Outbound::new(3 * message_cost(), Duration::from_secs(5));
        let now = Instant::now();
        for i in 0..3 {
            assert_eq!(queue.push_message(frame(i), now), Push::Queued);
        }
        assert_eq!(queue.push_message(frame(3), now), Push::TooSlow);
        assert_eq!(queue.push_message(frame(4), now), Push::Closed);
        assert_eq!(queue.queued_bytes(), 0, "what waited is dropped");
        // Only the close frame: 0x88, length 2, code 4002 big-endian.
        assert_eq!(&next_chunk(&queue)[..], &[0x88, 2, 0x0f, 0xa2][..]);
        assert!(matches!(queue.phase(), Phase::CloseSent(_)));

        // Empty frames count too (their slot), so pings or pongs cannot pile up without bound.
        let queue = Outbound::new(4 * Frame::Ping.cost(), Duration::from_secs(5));
        let mut pushes = 0;
        while queue.push_ping(now) == Push::Queued {
            pushes += 1;
            assert!(pushes <= 4, "the bound holds for empty frames");
        }
        assert_eq!(pushes, 4);
    }

    #[test]
    fn one_large_message_fits_and_states_are_kept_apart() {
        let queue = Outbound::new(100, Duration::from_secs(5));
        let now = Instant::now();
        // States larger than the bound come and go: only the newest waits, and it is not counted.
        for i in 0..5 {
            let state = Bytes::from(vec![i; 4000]);
            assert_eq!(queue.push_state(state, now), Push::Queued);
        }
        assert_eq!((queue.queued(), queue.queued_bytes()), (1, 0));
        // A lone message larger than the bound (a welcome with a big state, say) is taken...
        assert_eq!(
            queue.push_message(Bytes::from(vec![1; 4000]), now),
            Push::Queued
        );
        // ...but nothing may pile up behind it.
        assert_eq!(queue.push_message(frame(2), now), Push::TooSlow);
    }

    #[test]
    fn a_frame_waiting_too_long_closes_with_4002() {
        let queue = Outbound::new(1 << 20, Duration::from_millis(100));
        let now = Instant::now();
        queue.push_state(frame(1), now);
        assert_eq!(
            queue.push_state(frame(2), now + Duration::from_millis(50)),
            Push::Queued
        );
        assert_eq!(
            queue.push_state(frame(3), now + Duration::from_millis(150)),
            Push::TooSlow
        );

        // A client that takes its frames restarts the clock.
        let queue = Outbound::new(1 << 20, Duration::from_millis(100));
        for tick in 0..10u64 {
            let at = now + Duration::from_millis(50 * tick);
            assert_eq!(queue.push_state(frame(1), at), Push::Queued, "tick {tick}");
            assert_eq!(
                queue.push_message(frame(2), at),
                Push::Queued,
                "tick {tick}"
            );
            next_chunk(&queue);
        }
    }

    #[test]
    fn the_cost_counts_the_frame_as_written() {
        use actix_http::ws::{OpCode as Op, Parser};
        for len in [0, 3, 125, 126, 1000, 0xffff, 0x10000] {
            // actix-http's encoder as the reference for our framing.
            let mut written = bytes::BytesMut::new();
            Parser::write_message(&mut written, vec![0u8; len], Op::Binary, true, false);
            let mut ours = Vec::new();
            write_frame(&mut ours, OpCode::Binary, &vec![0u8; len]);
            assert_eq!(&ours[..], &written[..], "payload of {len}");
            assert_eq!(wire_len(len), written.len(), "payload of {len}");
            assert_eq!(
                Frame::Message(Bytes::from(vec![0u8; len])).cost(),
                SLOT_BYTES + written.len()
            );
        }
    }

    #[test]
    fn a_close_waits_behind_queued_frames_and_finish_ends_the_body() {
        let queue = Outbound::new(8, Duration::from_secs(5));
        queue.push_message(frame(7), Instant::now());
        assert!(queue.close(1001));
        assert!(!queue.close(1000));
        assert_eq!(
            &next_chunk(&queue)[..],
            &[0x82, 3, 7, 7, 7, 0x88, 2, 0x03, 0xe9][..]
        );
        queue.finish();
        assert_eq!(queue.push_message(frame(8), Instant::now()), Push::Closed);
        assert!(next_chunk(&queue).is_empty());
    }

    /// A socket that takes at most `room` bytes per write.
    struct Stingy {
        room: usize,
        taken: Vec<u8>,
    }

    impl std::io::Write for Stingy {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            if self.room == 0 {
                return Err(std::io::ErrorKind::WouldBlock.into());
            }
            let n = bytes.len().min(self.room);
            self.taken.extend_from_slice(&bytes[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_short_write_finishes_its_frame_first_and_newer_states_still_replace_older_ones() {
        let queue = Outbound::new(1000, Duration::from_secs(5));
        let now = Instant::now();
        let mut socket = Stingy {
            room: 4,
            taken: Vec::new(),
        };
        let mut buf = Vec::new();
        queue.push_message(frame(1), now);
        queue.push_state(frame(2), now);
        assert_eq!(
            queue.write_to(&mut socket, &mut buf, now).unwrap(),
            Written::Partial
        );
        assert_eq!(
            queue.queued_bytes(),
            6,
            "the unsent tail counts against the bound"
        );
        // Two states arrive while the tail waits; only the newer is sent, after the tail.
        queue.push_state(frame(3), now);
        queue.push_state(frame(4), now);
        socket.room = 0;
        assert_eq!(
            queue.write_to(&mut socket, &mut buf, now).unwrap(),
            Written::Partial
        );
        socket.room = 100;
        assert_eq!(
            queue.write_to(&mut socket, &mut buf, now).unwrap(),
            Written::All
        );
        assert_eq!(
            socket.taken,
            [0x82, 3, 1, 1, 1, 0x82, 3, 2, 2, 2, 0x82, 3, 4, 4, 4]
        );
        assert_eq!((queue.queued(), queue.queued_bytes()), (0, 0));
    }

    #[test]
    fn a_socket_that_takes_nothing_is_closed_4002_by_time() {
        let queue = Outbound::new(1 << 20, Duration::from_millis(100));
        let now = Instant::now();
        let mut socket = Stingy {
            room: 0,
            taken: Vec::new(),
        };
        let mut buf = Vec::new();
        queue.push_state(frame(1), now);
        queue.write_to(&mut socket, &mut buf, now).unwrap();
        queue.push_state(frame(2), now + Duration::from_millis(60));
        queue
            .write_to(&mut socket, &mut buf, now + Duration::from_millis(60))
            .unwrap();
        assert_eq!(
            queue.push_state(frame(3), now + Duration::from_millis(120)),
            Push::TooSlow
        );
    }
}
