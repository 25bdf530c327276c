//! Input-ack latency bookkeeping for one bot: the time from sending input `seq` to the first `state`
//! whose own `last_seq >= seq`.
//!
//! Seqs increase per bot, so the inputs in flight form a queue ordered by seq; an ack of `last_seq`
//! settles every queued input with `seq <= last_seq` at once (the server applies only the newest input
//! of a player per tick, so one state may ack several inputs).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// At most this many inputs wait for an ack; past it the oldest is given up (counted as unacked).
pub const MAX_IN_FLIGHT: usize = 256;

#[derive(Debug, Default)]
pub struct InFlight {
    queue: VecDeque<(u32, Instant)>,
    /// Inputs given up on: pushed out by the bound, or still waiting when the bot stopped.
    pub unacked: u64,
    /// The newest `last_seq` seen, so that a stale or repeated ack is ignored.
    newest_ack: Option<u32>,
}

impl InFlight {
    pub fn new() -> Self {
        Self {
            queue: VecDeque::with_capacity(8),
            unacked: 0,
            newest_ack: None,
        }
    }

    /// Records that input `seq` was sent at `at`. Seqs must increase.
    pub fn sent(&mut self, seq: u32, at: Instant) {
        debug_assert!(self.queue.back().is_none_or(|&(s, _)| s < seq));
        if self.queue.len() == MAX_IN_FLIGHT {
            self.queue.pop_front();
            self.unacked += 1;
        }
        self.queue.push_back((seq, at));
    }

    /// A state acked `last_seq` at `now`: calls `record` with the latency of every input it settles,
    /// oldest first, and returns how many it settled.
    pub fn acked(
        &mut self,
        last_seq: u32,
        now: Instant,
        mut record: impl FnMut(Duration),
    ) -> usize {
        if self.newest_ack.is_some_and(|n| last_seq <= n) {
            return 0;
        }
        self.newest_ack = Some(last_seq);
        let mut settled = 0;
        while let Some(&(seq, at)) = self.queue.front() {
            if seq > last_seq {
                break;
            }
            self.queue.pop_front();
            record(now.saturating_duration_since(at));
            settled += 1;
        }
        settled
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// The bot stops: whatever is still waiting is unacked.
    pub fn finish(&mut self) -> u64 {
        self.unacked += self.queue.len() as u64;
        self.queue.clear();
        self.unacked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn one_ack_settles_every_older_input() {
        let t0 = Instant::now();
        let mut f = InFlight::new();
        f.sent(1, t0);
        f.sent(2, t0 + ms(10));
        f.sent(3, t0 + ms(20));
        let mut got = Vec::new();
        assert_eq!(f.acked(2, t0 + ms(50), |d| got.push(d)), 2);
        assert_eq!(got, vec![ms(50), ms(40)]);
        assert_eq!(f.len(), 1);
        got.clear();
        assert_eq!(f.acked(3, t0 + ms(70), |d| got.push(d)), 1);
        assert_eq!(got, vec![ms(50)]);
        assert_eq!(f.finish(), 0);
    }

    #[test]
    fn stale_and_repeated_acks_are_ignored() {
        let t0 = Instant::now();
        let mut f = InFlight::new();
        f.sent(5, t0);
        let mut n = 0;
        assert_eq!(f.acked(4, t0 + ms(5), |_| n += 1), 0);
        f.sent(6, t0 + ms(6));
        assert_eq!(f.acked(5, t0 + ms(10), |_| n += 1), 1);
        // The same ack again (the next tick applied no newer input) settles nothing.
        assert_eq!(f.acked(5, t0 + ms(60), |_| n += 1), 0);
        assert_eq!(f.acked(3, t0 + ms(60), |_| n += 1), 0);
        assert_eq!(n, 1);
        assert_eq!(f.finish(), 1);
    }

    #[test]
    fn an_ack_ahead_of_everything_drains_the_queue() {
        let t0 = Instant::now();
        let mut f = InFlight::new();
        for s in 1..=10 {
            f.sent(s, t0);
        }
        let mut n = 0;
        assert_eq!(f.acked(1_000, t0, |_| n += 1), 10);
        assert_eq!(f.len(), 0);
    }

    #[test]
    fn the_queue_is_bounded() {
        let t0 = Instant::now();
        let mut f = InFlight::new();
        for s in 0..(MAX_IN_FLIGHT as u32 + 10) {
            f.sent(s, t0);
        }
        assert_eq!(f.len(), MAX_IN_FLIGHT);
        assert_eq!(f.unacked, 10);
        let mut first = None;
        f.acked(10, t0 + ms(1), |d| {
            first.get_or_insert(d);
        });
        assert_eq!(f.len(), MAX_IN_FLIGHT - 1);
        assert_eq!(f.finish(), 10 + MAX_IN_FLIGHT as u64 - 1);
    }
}
