//! DHAT allocation profile of one room's tick and fan-out: allocations per tick in steady state.
//! `cargo test -p benches --release --test room_alloc -- --nocapture` prints the figures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

#[test]
fn a_room_tick_with_fan_out_does_not_allocate_per_player_or_per_tick() {
    let _profiler = dhat::Profiler::builder().testing().build();
    for players in [16u32, 64] {
        let mut room = benches::RoomTick::new(players);
        for _ in 0..100 {
            room.tick(); // warm up: buffers reach their steady size
        }
        let before = dhat::HeapStats::get();
        let ticks = 1000;
        let mut written = 0;
        for _ in 0..ticks {
            written += room.tick();
        }
        let after = dhat::HeapStats::get();
        let blocks = after.total_blocks - before.total_blocks;
        let bytes = after.total_bytes - before.total_bytes;
        println!(
            "{players} players: {:.2} allocations and {} bytes allocated per tick, {} bytes written per tick",
            blocks as f64 / ticks as f64,
            bytes / ticks,
            written / ticks as usize
        );
        // Nothing per player and, in steady state, nothing per tick: the state's buffer is reused
        // once the sessions have written the previous one. What remains is the game's occasional
        // growth (a few per thousand ticks).
        assert!(
            blocks <= ticks / 5,
            "{players} players: {blocks} allocations in {ticks} ticks"
        );
    }
}
