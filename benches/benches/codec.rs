//! The protocol codec on the hot paths: decoding one client input frame (once per input, where it is
//! read) and encoding the per-tick arena state (once per room tick, shared by every session).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use game_core::Game;
use game_core::Seq;
use game_core::arena::{Arena, RawDirection};
use protocol::{
    ClientMessage, MAX_CLIENT_FRAME_BYTES, StateEncoder, decode_client, encode_client, encode_pong,
};
use std::hint::black_box;

fn decode_input(c: &mut Criterion) {
    let frame = encode_client(&ClientMessage::Input {
        seq: Seq(123_456),
        input: RawDirection { dx: 0.6, dy: -0.8 },
    });
    let ping = encode_client::<RawDirection>(&ClientMessage::Ping { id: 77 });
    let mut group = c.benchmark_group("codec/decode");
    group.bench_function("input_frame", |b| {
        b.iter(|| decode_client::<Arena>(black_box(&frame), MAX_CLIENT_FRAME_BYTES))
    });
    group.bench_function("ping_frame", |b| {
        b.iter(|| decode_client::<Arena>(black_box(&ping), MAX_CLIENT_FRAME_BYTES))
    });
    group.finish();
}

fn encode_state(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec/encode_state");
    for players in [16u32, 64] {
        let arena = benches::busy_arena(players);
        let mut encoder = StateEncoder::new();
        let size = encoder.encode(arena.tick(), &arena.view()).len();
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(
            BenchmarkId::new("state_encoder", players),
            &players,
            |b, _| b.iter(|| encoder.encode(black_box(arena.tick()), &arena.view())),
        );
        // For comparison: rmp-serde's own named encoding into a fresh Vec each time.
        group.bench_with_input(
            BenchmarkId::new("rmp_serde_to_vec_named", players),
            &players,
            |b, _| b.iter(|| rmp_serde::to_vec_named(black_box(&arena.view()))),
        );
    }
    group.finish();
    c.bench_function("codec/encode_pong", |b| {
        b.iter(|| encode_pong(black_box(7), black_box(1_764_408_600_000)))
    });
}

criterion_group!(benches, decode_input, encode_state);
criterion_main!(benches);
