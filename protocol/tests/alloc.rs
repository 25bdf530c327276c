//! Allocation bounds, measured with dhat's heap profiler: a frame claiming billions of elements
//! reserves nothing, and encoding a tick's state allocates only the output `Bytes`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

use game_core::arena::{Arena, ArenaConfig};
use game_core::{Game, PlayerId, Seq};
use protocol::{MAX_CLIENT_FRAME_BYTES, StateEncoder, decode_client, decode_server};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn arena(players: u32) -> Arena {
    let config = ArenaConfig {
        max_players: players,
        tick_rate: 20,
        duration_s: 60,
    };
    let mut arena = Arena::new(config, 1);
    for n in 0..players {
        let id = PlayerId::parse(&format!("player-{n}")).unwrap();
        arena.join(id.clone()).unwrap();
        let direction = game_core::arena::Direction::new(1.0, 0.5).unwrap();
        arena.apply_input(&id, Seq(1), direction);
    }
    arena.step(&mut Vec::new());
    arena
}

// One test function: dhat allows one profiler at a time.
#[test]
fn allocation_bounds() {
    let _profiler = dhat::Profiler::builder().testing().build();

    // Huge length prefixes: no allocation proportional to the claimed length.
    let prefix = [0xffu8, 0xff, 0xff, 0xff];
    let head = [
        0x83, 0xa1, b't', 0xa5, b'i', b'n', b'p', b'u', b't', 0xa3, b's', b'e', b'q', 0x01, 0xa5,
        b'i', b'n', b'p', b'u', b't',
    ];
    let mut frames = Vec::new();
    for marker in [0xdd, 0xdf, 0xdb, 0xc6, 0xc9] {
        let mut value = vec![marker];
        value.extend_from_slice(&prefix);
        value.extend(std::iter::repeat_n(0x00, 64));
        frames.push(value.clone());
        let mut nested = head.to_vec();
        nested.extend_from_slice(&value);
        frames.push(nested);
    }
    let before = dhat::HeapStats::get();
    for frame in &frames {
        assert!(decode_client::<Arena>(frame, MAX_CLIENT_FRAME_BYTES).is_err());
        assert!(decode_server(frame).is_err());
    }
    let after = dhat::HeapStats::get();
    let peak_growth = after.max_bytes.saturating_sub(before.curr_bytes);
    assert!(
        peak_growth < 16 * 1024,
        "decoding hostile prefixes peaked {peak_growth} bytes above the baseline"
    );

    // The per-tick state, whatever the player count, once the encoder's buffers have grown: no
    // allocation when the previous frame has been dropped (the memory is reused), a new buffer while
    // it is still held; and handing a clone to every session allocates nothing.
    for players in [16, 64] {
        let arena = arena(players);
        let mut encoder = StateEncoder::new();
        drop(encoder.encode(arena.tick(), &arena.view()));
        let mut clones = Vec::with_capacity(players as usize);
        let before = dhat::HeapStats::get();
        let bytes = encoder.encode(arena.tick(), &arena.view());
        clones.extend((0..players).map(|_| bytes.clone()));
        let after = dhat::HeapStats::get();
        assert_eq!(
            after.total_blocks - before.total_blocks,
            0,
            "{players} players, previous frame dropped"
        );
        assert!(bytes.len() > players as usize * 10);
        let before = dhat::HeapStats::get();
        let next = encoder.encode(arena.tick(), &arena.view());
        let after = dhat::HeapStats::get();
        // A fresh buffer and the header that lets it be shared.
        assert!(
            after.total_blocks - before.total_blocks <= 2,
            "{players} players, previous frame still held"
        );
        assert_eq!(next, bytes, "same state, same bytes");
        drop(clones);
    }
}
