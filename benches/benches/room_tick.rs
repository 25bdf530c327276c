//! One room tick plus its fan-out, as the room actor does it (see `benches::RoomTick`). Sockets
//! are left out: their cost is the kernel's, measured by the CCU benchmark's floor (BENCHMARKS.md).

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

fn room_tick(c: &mut Criterion) {
    let mut group = c.benchmark_group("room_tick_fanout");
    for players in [16u32, 64] {
        group.bench_with_input(
            BenchmarkId::from_parameter(players),
            &players,
            |b, &players| {
                let mut room = benches::RoomTick::new(players);
                b.iter(|| std::hint::black_box(room.tick()));
            },
        );
    }
    group.finish();
}

criterion_group!(benches, room_tick);
criterion_main!(benches);
