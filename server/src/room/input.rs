//! The latest input of one player, written by its session and taken by the room at each tick.
//!
//! Inputs are "latest wins": a tick applies each player's newest input and nothing older matters.
//! A one-slot cell instead of a message per input means a burst of inputs costs the room nothing
//! and never wakes the room's thread; the room stays the only owner of the game.

use std::sync::Mutex;

use game_core::Seq;

#[derive(Debug)]
pub struct InputCell<I> {
    latest: Mutex<Option<(Seq, I)>>,
}

impl<I> Default for InputCell<I> {
    fn default() -> Self {
        Self {
            latest: Mutex::new(None),
        }
    }
}

impl<I> InputCell<I> {
    /// Stores the input unless a newer one is already waiting.
    pub fn put(&self, seq: Seq, input: I) {
        let mut latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        if latest.as_ref().is_none_or(|(waiting, _)| *waiting < seq) {
            *latest = Some((seq, input));
        }
    }

    pub fn take(&self) -> Option<(Seq, I)> {
        self.latest.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_input_until_taken() {
        let cell = InputCell::default();
        cell.put(Seq(2), "b");
        cell.put(Seq(1), "a");
        cell.put(Seq(3), "c");
        assert_eq!(cell.take(), Some((Seq(3), "c")));
        assert_eq!(cell.take(), None);
    }
}
