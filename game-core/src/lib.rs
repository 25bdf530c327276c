//! Pure, deterministic game simulation.
//!
//! - [`Game`]: the trait the server drives and a game developer implements for their own rules.
//! - [`PlayerId`], [`Seq`]: identifiers validated at construction, shared by every game.
//! - [`arena`]: the reference game, a 1000 x 1000 arena with pickups.
//! - [`rng`]: the seeded generator games use instead of any global randomness.
//!
//! Architecture invariant: this crate does no I/O, reads no clock, spawns nothing and knows nothing
//! of actix, tokio or sea-orm. Time advances only through [`Game::step`], one fixed tick at a time, so
//! the same seed and the same inputs in the same ticks give bit-identical snapshots.

pub mod arena;
mod game;
mod ids;
pub mod rng;

pub use game::{
    Game, GameEvent, InvalidInput, JoinError, RankedResult, RestoreError, rank_by_score,
};
pub use ids::{InvalidPlayerId, PlayerId, Seq};
