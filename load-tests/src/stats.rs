//! Figures shared by every bot of the run. The run is one thread (a tokio current-thread runtime and a
//! `LocalSet`), so the bots share one `Rc<RefCell<Stats>>`: no atomics, no locks, one histogram.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Latencies are recorded in microseconds, from 1 µs to 60 s, with 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    match Histogram::new_with_bounds(1, 60_000_000, 3) {
        Ok(h) => h,
        // The bounds are constants that hdrhistogram accepts (low >= 1, high >= 2 * low, sigfig <= 5).
        Err(e) => unreachable!("constant histogram bounds rejected: {e}"),
    }
}

pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Counters that only grow; the window's figures are the difference of two copies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub frames_in: u64,
    pub states: u64,
    pub bytes_in: u64,
    pub inputs_sent: u64,
    pub acks: u64,
    pub chaos_sent: u64,
    pub error_msgs: u64,
}

impl Counters {
    pub fn since(&self, earlier: &Counters) -> Counters {
        Counters {
            frames_in: self.frames_in - earlier.frames_in,
            states: self.states - earlier.states,
            bytes_in: self.bytes_in - earlier.bytes_in,
            inputs_sent: self.inputs_sent - earlier.inputs_sent,
            acks: self.acks - earlier.acks,
            chaos_sent: self.chaos_sent - earlier.chaos_sent,
            error_msgs: self.error_msgs - earlier.error_msgs,
        }
    }
}

/// Errors by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Errors {
    /// The seat request (matchmake, room creation or seat reservation) failed.
    pub join: u64,
    /// The WebSocket connection or handshake failed, or no welcome came.
    pub connect: u64,
    /// A frame the bot could not scan, or a text frame.
    pub decode: u64,
    /// An `error` message in answer to a bot that sent only valid frames.
    pub error_replies: u64,
    /// Connections that ended before the bot ended them (also listed by close code).
    pub disconnects: u64,
    /// The first few messages, to say what went wrong.
    pub samples: Vec<String>,
}

impl Errors {
    pub fn total(&self) -> u64 {
        self.join + self.connect + self.decode + self.error_replies + self.disconnects
    }
}

pub struct Stats {
    /// Latencies are recorded only while the window is open.
    pub measuring: bool,
    pub started: u64,
    pub joined: u64,
    pub connected: u64,
    /// Bots connected now.
    pub live: u64,
    pub counters: Counters,
    pub ack: Histogram<u64>,
    pub connect: Histogram<u64>,
    pub join: Histogram<u64>,
    /// How late the bots' input timers fired in the window (the generator's own delay).
    pub input_lag: Histogram<u64>,
    /// Ends of connection that the bot did not ask for, by close code (or `eof`, `io-error`).
    pub disconnects: BTreeMap<String, u64>,
    pub errors: Errors,
    /// Inputs that no state acked (the bound in flight, or still waiting at the end).
    pub unacked: u64,
    pub match_over: u64,
}

const MAX_ERROR_SAMPLES: usize = 10;

impl Stats {
    pub fn new() -> Self {
        Self {
            measuring: false,
            started: 0,
            joined: 0,
            connected: 0,
            live: 0,
            counters: Counters::default(),
            ack: new_histogram(),
            connect: new_histogram(),
            join: new_histogram(),
            input_lag: new_histogram(),
            disconnects: BTreeMap::new(),
            errors: Errors::default(),
            unacked: 0,
            match_over: 0,
        }
    }

    pub fn sample(&mut self, what: impl FnOnce() -> String) {
        if self.errors.samples.len() < MAX_ERROR_SAMPLES {
            self.errors.samples.push(what());
        }
    }

    pub fn disconnected(&mut self, reason: String) {
        self.errors.disconnects += 1;
        *self.disconnects.entry(reason).or_default() += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_keeps_three_digits_and_saturates() {
        let mut h = new_histogram();
        for ms in 1..=100u64 {
            h.saturating_record(ms * 1000);
        }
        h.saturating_record(u64::MAX);
        assert_eq!(h.len(), 101);
        let p50 = h.value_at_quantile(0.5);
        assert!((51_000..=51_100).contains(&p50), "{p50}");
        assert!(h.max() >= 60_000_000);
    }

    #[test]
    fn window_counters_are_differences() {
        let a = Counters {
            states: 10,
            bytes_in: 100,
            ..Counters::default()
        };
        let b = Counters {
            states: 25,
            bytes_in: 400,
            inputs_sent: 3,
            ..Counters::default()
        };
        let d = b.since(&a);
        assert_eq!((d.states, d.bytes_in, d.inputs_sent), (15, 300, 3));
    }
}
