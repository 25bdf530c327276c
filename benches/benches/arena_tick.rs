//! One arena tick (move, collect pickups, respawn) at 16 to 1024 players.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use game_core::Game;

fn arena_tick(c: &mut Criterion) {
    let mut group = c.benchmark_group("arena_tick");
    for players in [16u32, 64, 256, 1024] {
        group.bench_with_input(
            BenchmarkId::from_parameter(players),
            &players,
            |b, &players| {
                let mut arena = benches::busy_arena(players);
                let mut events = Vec::with_capacity(16);
                b.iter(|| {
                    events.clear();
                    arena.step(&mut events);
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, arena_tick);
criterion_main!(benches);
