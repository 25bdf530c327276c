//! The contract between a game's rules and the server that runs them.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{PlayerId, Seq};

/// A game's rules, driven one fixed tick at a time by a room.
///
/// The server owns one value per room and is the only caller, so implementations need no locking.
/// Everything a game needs to be persisted and restored lives in [`Game::Snapshot`]; nothing may depend
/// on wall-clock time, global randomness or iteration order of hashed collections.
pub trait Game: Sized + Send + 'static {
    /// Per-room settings chosen when the room is created (capacity, tick rate, duration...).
    type Config: Clone + std::fmt::Debug + Serialize + DeserializeOwned + Send + Sync + 'static;
    /// The input as it arrives on the wire, before validation.
    type WireInput: DeserializeOwned;
    /// A validated input: only values the rules accept can be built.
    type Input: TryFrom<Self::WireInput, Error = InvalidInput> + std::fmt::Debug + Send + 'static;
    /// Everything needed to continue the game exactly where it was.
    type Snapshot: Serialize + DeserializeOwned + Send + 'static;
    /// The per-tick view sent to clients (the STATE of the wire protocol), borrowed from the game so
    /// that encoding it allocates nothing.
    type View<'a>: Serialize
    where
        Self: 'a;

    /// The mode name clients and matchmakers use (`"arena"`).
    const MODE: &'static str;

    fn new(config: Self::Config, seed: u64) -> Self;
    fn config(&self) -> &Self::Config;
    /// Ticks per second this game is stepped at.
    fn tick_rate(&self) -> u32;
    /// The number of ticks stepped so far.
    fn tick(&self) -> u64;

    fn join(&mut self, player: PlayerId) -> Result<(), JoinError>;
    /// Frees the player's slot. Returns false if the player was not in the game.
    fn leave(&mut self, player: &PlayerId) -> bool;
    /// Records the player's latest input for the next step. An input whose seq is not newer than the
    /// last applied one is stale: it is ignored and `false` is returned.
    fn apply_input(&mut self, player: &PlayerId, seq: Seq, input: Self::Input) -> bool;
    /// Advances one fixed tick and appends what happened to `events` (joins and leaves since the
    /// previous step first, then anything the tick itself produced, such as the match ending).
    fn step(&mut self, events: &mut Vec<GameEvent>);
    fn is_over(&self) -> bool;
    fn player_count(&self) -> usize;
    /// The players holding a slot, in a deterministic order.
    fn players(&self) -> Vec<PlayerId>;

    fn view(&self) -> Self::View<'_>;
    fn snapshot(&self) -> Self::Snapshot;
    fn restore(snapshot: Self::Snapshot) -> Result<Self, RestoreError>;
}

/// Why a player could not join.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    #[error("the game is full ({capacity} players)")]
    Full { capacity: usize },
    #[error("player {0} is already in the game")]
    AlreadyJoined(PlayerId),
    #[error("the match is over")]
    MatchOver,
}

/// An input the rules refuse (for example a direction that is not a finite number).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid input: {0}")]
pub struct InvalidInput(pub &'static str);

/// A snapshot that cannot be continued from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid snapshot: {0}")]
pub struct RestoreError(pub String);

/// Something that happened during a step, for the room to announce.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub enum GameEvent {
    PlayerJoined(PlayerId),
    PlayerLeft(PlayerId),
    /// Ranked results, best first; equal scores share a rank ("1224" ranking).
    MatchOver(Vec<RankedResult>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RankedResult {
    pub player_id: PlayerId,
    pub score: u32,
    pub rank: u32,
}

/// Ranks `(player, score)` pairs best first; equal scores share a rank and the next rank skips
/// (scores 5, 5, 3 rank 1, 1, 3). Ties keep their given order, so the result is deterministic.
pub fn rank_by_score(mut scores: Vec<(PlayerId, u32)>) -> Vec<RankedResult> {
    scores.sort_by_key(|entry| std::cmp::Reverse(entry.1));
    let mut results = Vec::with_capacity(scores.len());
    let mut rank = 0;
    let mut previous = None;
    for (position, (player_id, score)) in scores.into_iter().enumerate() {
        if previous != Some(score) {
            rank = position as u32 + 1;
            previous = Some(score);
        }
        results.push(RankedResult {
            player_id,
            score,
            rank,
        });
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> PlayerId {
        PlayerId::parse(s).unwrap()
    }

    #[test]
    fn equal_scores_share_a_rank_and_the_next_rank_skips() {
        let ranked = rank_by_score(vec![(id("c"), 3), (id("a"), 5), (id("b"), 5), (id("d"), 0)]);
        let got: Vec<(&str, u32, u32)> = ranked
            .iter()
            .map(|r| (r.player_id.as_str(), r.score, r.rank))
            .collect();
        assert_eq!(
            got,
            vec![("a", 5, 1), ("b", 5, 1), ("c", 3, 3), ("d", 0, 4)]
        );
    }
}
