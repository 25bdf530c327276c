//! Criterion benchmarks live in `benches/`; this library holds the fixtures they share.

use game_core::arena::{Arena, ArenaConfig, Direction};
use game_core::{Game, PlayerId, Seq};

/// An arena with `players` players, each given an input, so that a step does the full work. The
/// match never ends within a benchmark (an ended match's step does nothing).
pub fn busy_arena(players: u32) -> Arena {
    let mut arena = Arena::new(
        ArenaConfig {
            max_players: players,
            tick_rate: 20,
            duration_s: u32::MAX,
        },
        7,
    );
    for n in 0..players {
        let id = PlayerId::parse(&format!("bot-{n}"))
            .unwrap_or_else(|_| unreachable!("valid by construction"));
        let _ = arena.join(id.clone());
        let angle = n as f32 * 0.7;
        if let Ok(direction) = Direction::new(angle.cos(), angle.sin()) {
            arena.apply_input(&id, Seq(1), direction);
        }
    }
    arena.step(&mut Vec::new());
    arena
}
