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

/// One room as the room actor runs it, without the actor: each player's input cell, the game, the
/// state encoder, and per player the connection's outbound queue, written at the end of the tick.
pub struct RoomTick {
    arena: Arena,
    sessions: Vec<FakeConnection>,
    encoder: protocol::StateEncoder,
    events: Vec<game_core::GameEvent>,
    seq: u32,
    /// The worker's write buffer, shared by every connection of the pass.
    write_buf: Vec<u8>,
}

/// A socket that takes everything and keeps the count.
struct Discard(usize);

impl std::io::Write for Discard {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0 += bytes.len();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct FakeConnection {
    player: PlayerId,
    input: std::sync::Arc<server::room::input::InputCell<Direction>>,
    queue: server::transport::outbound::Outbound,
}

impl RoomTick {
    pub fn new(players: u32) -> Self {
        let arena = busy_arena(players);
        let sessions = arena
            .players()
            .into_iter()
            .map(|player| {
                let queue = server::transport::outbound::Outbound::new(
                    64,
                    std::time::Duration::from_secs(5),
                );
                FakeConnection {
                    player,
                    input: std::sync::Arc::default(),
                    queue,
                }
            })
            .collect();
        Self {
            arena,
            sessions,
            encoder: protocol::StateEncoder::new(),
            events: Vec::new(),
            seq: 1,
            write_buf: Vec::new(),
        }
    }

    /// Every player has sent an input since the last tick (the sessions' side, not counted as the
    /// room's work but included), then the room's tick: inputs, step, encode once, queue the same
    /// `Bytes` on every connection; then each connection's queue is framed into the thread's write
    /// buffer and written (here to memory: the syscall is the kernel's share, measured apart).
    /// Returns the bytes that would be written to the sockets.
    pub fn tick(&mut self) -> usize {
        self.seq += 1;
        for (n, session) in self.sessions.iter().enumerate() {
            let angle = (self.seq as f32 + n as f32) * 0.1;
            if let Ok(direction) = Direction::new(angle.cos(), angle.sin()) {
                session.input.put(Seq(self.seq), direction);
            }
        }
        for session in &self.sessions {
            if let Some((seq, input)) = session.input.take() {
                self.arena.apply_input(&session.player, seq, input);
            }
        }
        self.events.clear();
        self.arena.step(&mut self.events);
        let frame = self.encoder.encode(self.arena.tick(), &self.arena.view());
        let now = std::time::Instant::now();
        for session in &self.sessions {
            session.queue.push_state(frame.clone(), now);
        }
        // The socket's side (the kernel's copy) is the floor's cost, not ours: count, do not copy.
        let mut socket = Discard(0);
        for session in &self.sessions {
            let _ = session
                .queue
                .write_to(&mut socket, &mut self.write_buf, now);
        }
        socket.0
    }
}
