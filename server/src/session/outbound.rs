//! A session's outbound queue and the WebSocket response body that drains it.
//!
//! The room pushes each tick's `state` (the same `Bytes` for every session) straight into this
//! bounded queue; actix-web's connection dispatcher polls [`OutboundBody`] whenever the socket can take
//! more, and each poll turns everything queued into one buffer (WebSocket headers and payloads
//! together), so a tick costs one wakeup and one `write` per session. A client that does not read
//! stops the dispatcher from polling, the queue stops draining, and the slow-client policy applies:
//! - an unsent `state` is replaced by the newer one (only the newest state matters);
//! - a frame waiting longer than `slow_client_timeout`, or a queue that would exceed its bound,
//!   closes the connection with 4002.

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
    waker: Option<Waker>,
    phase: Phase,
    /// When the oldest unsent frame started waiting.
    waiting_since: Option<Instant>,
}

/// Shared by the room (pushes states and events), the session (pushes replies, closes) and the body.
#[derive(Debug)]
pub struct Outbound {
    inner: Mutex<Inner>,
    capacity: usize,
    slow_client_timeout: Duration,
}

impl Outbound {
    pub fn new(capacity: usize, slow_client_timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Inner {
                frames: VecDeque::new(),
                waker: None,
                phase: Phase::Open,
                waiting_since: None,
            }),
            capacity,
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
        if matches!(frame, Frame::State(_))
            && let Some(position) = inner
                .frames
                .iter()
                .position(|f| matches!(f, Frame::State(_)))
        {
            inner.frames.remove(position);
        }
        if inner.frames.len() >= self.capacity {
            Self::begin_close(&mut inner, protocol::close::TOO_SLOW, true);
            return Push::TooSlow;
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
        if let Some(waker) = inner.waker.take() {
            waker.wake();
        }
    }

    pub fn phase(&self) -> Phase {
        self.lock().phase
    }

    pub fn queued(&self) -> usize {
        self.lock().frames.len()
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

    #[actix_rt::test]
    async fn a_full_queue_or_a_long_wait_closes_with_4002() {
        let queue = Outbound::new(2, Duration::from_secs(5));
        let now = Instant::now();
        queue.push_message(frame(1), now);
        queue.push_message(frame(2), now);
        assert_eq!(queue.push_message(frame(3), now), Push::TooSlow);
        assert_eq!(queue.push_message(frame(4), now), Push::Closed);
        let mut body = OutboundBody::new(queue.clone());
        // Only the close frame: 0x88, length 2, code 4002 big-endian.
        assert_eq!(&next_chunk(&mut body).await[..], &[0x88, 2, 0x0f, 0xa2][..]);
        assert!(matches!(queue.phase(), Phase::CloseSent(_)));

        let queue = Outbound::new(8, Duration::from_millis(100));
        queue.push_state(frame(1), now);
        assert_eq!(
            queue.push_state(frame(2), now + Duration::from_millis(50)),
            Push::Queued
        );
        assert_eq!(
            queue.push_state(frame(3), now + Duration::from_millis(150)),
            Push::TooSlow
        );
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
