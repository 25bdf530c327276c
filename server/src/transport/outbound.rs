//! A connection's outbound queue and the WebSocket response body that drains it.
//!
//! The room pushes each tick's `state` (the same `Bytes` for every session) straight into this
//! bounded queue; actix-web's connection dispatcher polls [`OutboundBody`] whenever the socket can take
//! more, and each poll turns everything queued into one buffer (WebSocket headers and payloads
//! together), so a tick costs one wakeup and one `write` per session. A client that does not read
//! stops the dispatcher from polling, the queue stops draining, and the slow-client policy applies.
//! It judges a client by what it fails to take, never by how many messages the room had to tell it
//! at once (a burst of events in one tick is normal and is drained whole at the next poll):
//! - an unsent `state` is replaced by the newer one (only the newest state matters), so at most one
//!   state ever waits and it is not counted against the bound;
//! - a frame waiting longer than `slow_client_timeout` closes the connection with 4002 (time);
//! - so does a message (event, chat, reply, ping) that would take the bytes waiting past `max_bytes`
//!   (memory): frames as they go on the wire plus the queue's own slot per frame. A message is always
//!   taken when no other message waits, so one large frame cannot trip the bound. A queue therefore
//!   holds at most `max_bytes` plus one message plus one state.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use actix_http::ws::{CloseCode, CloseReason, OpCode, Parser};
use bytes::{Bytes, BytesMut};
use futures_util::Stream;

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
    let header = match payload {
        0..=125 => 2,
        126..=0xffff => 4,
        _ => 10,
    };
    header + payload
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Open,
    /// A close frame is queued behind the frames already waiting.
    Closing,
    /// The close frame went out at this instant; waiting for the client's answer.
    CloseSent(Instant),
    /// The body has ended (or will at its next poll); the connection is done.
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
    frames: VecDeque<Frame>,
    /// [`Frame::cost`] of every queued frame but the state: what the bound is checked against.
    bytes: usize,
    waker: Option<Waker>,
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
    pub fn new(max_bytes: usize, slow_client_timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Inner {
                frames: VecDeque::new(),
                bytes: 0,
                waker: None,
                phase: Phase::Open,
                waiting_since: None,
            }),
            max_bytes,
            slow_client_timeout,
        })
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
        if matches!(frame, Frame::State(_)) {
            if let Some(position) = inner
                .frames
                .iter()
                .position(|f| matches!(f, Frame::State(_)))
            {
                inner.frames.remove(position);
            }
        } else {
            let cost = frame.cost();
            // A lone message always fits: the bound is on what piles up, not on one frame's size.
            if inner.bytes > 0 && inner.bytes + cost > self.max_bytes {
                Self::begin_close(&mut inner, protocol::close::TOO_SLOW, true);
                return Push::TooSlow;
            }
            inner.bytes += cost;
        }
        // Replacing an unsent state does not restart the clock: the client still took nothing.
        inner.waiting_since.get_or_insert(now);
        inner.frames.push_back(frame);
        if let Some(waker) = inner.waker.take() {
            waker.wake();
        }
        Push::Queued
    }

    fn begin_close(inner: &mut Inner, code: u16, drop_pending: bool) {
        if drop_pending {
            inner.frames.clear();
            inner.bytes = 0;
            inner.waiting_since = None;
        }
        inner.frames.push_back(Frame::Close(code));
        inner.phase = Phase::Closing;
        if let Some(waker) = inner.waker.take() {
            waker.wake();
        }
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

    /// Ends the body: the dispatcher finishes the response and the connection closes.
    pub fn finish(&self) {
        let mut inner = self.lock();
        inner.phase = Phase::Finished;
        inner.frames.clear();
        inner.bytes = 0;
        if let Some(waker) = inner.waker.take() {
            waker.wake();
        }
    }

    pub fn phase(&self) -> Phase {
        self.lock().phase
    }

    /// Frames waiting, the state included.
    pub fn queued(&self) -> usize {
        self.lock().frames.len()
    }

    /// Bytes of messages waiting (everything but the state), as the bound counts them.
    pub fn queued_bytes(&self) -> usize {
        self.lock().bytes
    }
}

/// The response body of an upgraded WebSocket connection.
#[derive(Debug)]
pub struct OutboundBody {
    queue: Arc<Outbound>,
    /// Reused between polls: once the dispatcher drops the previous chunk, `reserve` reclaims it.
    buf: BytesMut,
}

impl OutboundBody {
    pub fn new(queue: Arc<Outbound>) -> Self {
        Self {
            queue,
            buf: BytesMut::new(),
        }
    }
}

impl Stream for OutboundBody {
    type Item = Result<Bytes, actix_web::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let mut inner = this.queue.lock();
        if inner.frames.is_empty() {
            if inner.phase == Phase::Finished {
                return Poll::Ready(None);
            }
            inner.waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let mut frames = 0;
        while let Some(frame) = inner.frames.pop_front() {
            frames += 1;
            match frame {
                Frame::State(payload) | Frame::Message(payload) => {
                    this.buf.reserve(payload.len() + 10);
                    Parser::write_message(&mut this.buf, payload, OpCode::Binary, true, false);
                }
                Frame::Ping => Parser::write_message(&mut this.buf, [], OpCode::Ping, true, false),
                Frame::Pong(payload) => {
                    Parser::write_message(&mut this.buf, payload, OpCode::Pong, true, false)
                }
                Frame::Close(code) => {
                    let reason = CloseReason {
                        code: CloseCode::from(code),
                        description: None,
                    };
                    Parser::write_close(&mut this.buf, Some(reason), false);
                    inner.phase = Phase::CloseSent(Instant::now());
                    // Nothing goes out after a close frame.
                    inner.frames.clear();
                    break;
                }
            }
        }
        // Everything queued went into this chunk (or was dropped behind a close frame).
        inner.bytes = 0;
        inner.waiting_since = None;
        drop(inner);
        crate::metrics::frames_out(frames, this.buf.len() as u64);
        Poll::Ready(Some(Ok(this.buf.split().freeze())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn frame(n: u8) -> Bytes {
        Bytes::from(vec![n; 3])
    }

    async fn next_chunk(body: &mut OutboundBody) -> Bytes {
        body.next().await.unwrap().unwrap()
    }

    #[actix_rt::test]
    async fn a_newer_state_replaces_an_unsent_one_and_messages_keep_their_order() {
        let queue = Outbound::new(8, Duration::from_secs(5));
        let now = Instant::now();
        assert_eq!(queue.push_state(frame(1), now), Push::Queued);
        assert_eq!(queue.push_message(frame(2), now), Push::Queued);
        assert_eq!(queue.push_state(frame(3), now), Push::Queued);
        assert_eq!(queue.queued(), 2);
        let mut body = OutboundBody::new(queue.clone());
        // Two binary frames: 0x82, length 3, payload.
        assert_eq!(
            &next_chunk(&mut body).await[..],
            &[0x82, 3, 2, 2, 2, 0x82, 3, 3, 3, 3][..]
        );
    }

    /// The cost of a 3-byte message: 5 bytes on the wire plus its slot.
    fn message_cost() -> usize {
        Frame::Message(frame(0)).cost()
    }

    #[actix_rt::test]
    async fn a_burst_of_messages_is_judged_by_its_bytes_not_its_count() {
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
        let mut body = OutboundBody::new(queue.clone());
        assert_eq!(next_chunk(&mut body).await.len(), 31 * 5);
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

    #[actix_rt::test]
    async fn bytes_waiting_beyond_the_bound_close_with_4002() {
        let queue = Outbound::new(3 * message_cost(), Duration::from_secs(5));
        let now = Instant::now();
        for i in 0..3 {
            assert_eq!(queue.push_message(frame(i), now), Push::Queued);
        }
        assert_eq!(queue.push_message(frame(3), now), Push::TooSlow);
        assert_eq!(queue.push_message(frame(4), now), Push::Closed);
        assert_eq!(queue.queued_bytes(), 0, "what waited is dropped");
        let mut body = OutboundBody::new(queue.clone());
        // Only the close frame: 0x88, length 2, code 4002 big-endian.
        assert_eq!(&next_chunk(&mut body).await[..], &[0x88, 2, 0x0f, 0xa2][..]);
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

    #[actix_rt::test]
    async fn one_large_message_fits_and_states_are_kept_apart() {
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

    #[actix_rt::test]
    async fn a_frame_waiting_too_long_closes_with_4002() {
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
        let mut body = OutboundBody::new(queue.clone());
        for tick in 0..10u64 {
            let at = now + Duration::from_millis(50 * tick);
            assert_eq!(queue.push_state(frame(1), at), Push::Queued, "tick {tick}");
            assert_eq!(
                queue.push_message(frame(2), at),
                Push::Queued,
                "tick {tick}"
            );
            next_chunk(&mut body).await;
        }
    }

    #[test]
    fn the_cost_counts_the_frame_as_written() {
        for len in [0, 3, 125, 126, 1000, 0xffff, 0x10000] {
            let mut written = BytesMut::new();
            Parser::write_message(&mut written, vec![0u8; len], OpCode::Binary, true, false);
            assert_eq!(wire_len(len), written.len(), "payload of {len}");
            assert_eq!(
                Frame::Message(Bytes::from(vec![0u8; len])).cost(),
                SLOT_BYTES + written.len()
            );
        }
    }

    #[actix_rt::test]
    async fn a_close_waits_behind_queued_frames_and_finish_ends_the_body() {
        let queue = Outbound::new(8, Duration::from_secs(5));
        queue.push_message(frame(7), Instant::now());
        assert!(queue.close(1001));
        assert!(!queue.close(1000));
        let mut body = OutboundBody::new(queue.clone());
        assert_eq!(
            &next_chunk(&mut body).await[..],
            &[0x82, 3, 7, 7, 7, 0x88, 2, 0x03, 0xe9][..]
        );
        queue.finish();
        assert!(body.next().await.is_none());
    }
}
