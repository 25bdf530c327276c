//! One room tick plus its fan-out, as the room actor does it: take each player's input from its
//! cell, step, encode the state once, queue the same `Bytes` on every session, and drain each
//! session's outbound body into WebSocket frames (what the connection dispatcher does per tick).
//! Sockets are left out: their cost is the kernel's, measured by `../shared/floor`.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use futures_util::Stream;
use game_core::arena::Direction;
use game_core::{Game, PlayerId, Seq};
use protocol::StateEncoder;
use server::room::input::InputCell;
use server::session::outbound::{Outbound, OutboundBody};

struct Session {
    player: PlayerId,
    input: Arc<InputCell<Direction>>,
    body: OutboundBody,
    queue: Arc<Outbound>,
}

fn room_tick(c: &mut Criterion) {
    let mut group = c.benchmark_group("room_tick_fanout");
    for players in [16u32, 64] {
        group.bench_with_input(
            BenchmarkId::from_parameter(players),
            &players,
            |b, &players| {
                let mut arena = benches::busy_arena(players);
                let mut sessions: Vec<Session> = arena
                    .players()
                    .into_iter()
                    .map(|player| {
                        let queue = Outbound::new(64, Duration::from_secs(5));
                        Session {
                            player,
                            input: Arc::default(),
                            body: OutboundBody::new(queue.clone()),
                            queue,
                        }
                    })
                    .collect();
                let mut encoder = StateEncoder::new();
                let mut events = Vec::new();
                let mut seq = 1;
                let waker = futures_util::task::noop_waker();
                let mut cx = Context::from_waker(&waker);
                b.iter(|| {
                    seq += 1;
                    // Every player sent an input since the last tick (the sessions' side).
                    for (n, session) in sessions.iter().enumerate() {
                        let angle = (seq as f32 + n as f32) * 0.1;
                        if let Ok(direction) = Direction::new(angle.cos(), angle.sin()) {
                            session.input.put(Seq(seq), direction);
                        }
                    }
                    // The room's tick.
                    for session in &sessions {
                        if let Some((s, input)) = session.input.take() {
                            arena.apply_input(&session.player, s, input);
                        }
                    }
                    events.clear();
                    arena.step(&mut events);
                    let frame = encoder.encode(arena.tick(), &arena.view());
                    let now = Instant::now();
                    for session in &sessions {
                        session.queue.push_state(frame.clone(), now);
                    }
                    // Each connection's dispatcher drains its body into one buffer.
                    for session in &mut sessions {
                        if let Poll::Ready(Some(Ok(chunk))) =
                            Pin::new(&mut session.body).poll_next(&mut cx)
                        {
                            std::hint::black_box(chunk);
                        }
                    }
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, room_tick);
criterion_main!(benches);
