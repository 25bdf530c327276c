//! The reference game: a 1000 x 1000 arena where players run into pickups for score.
//!
//! Players spawn at seeded positions and move at [`SPEED`] units per second along their latest
//! [`Direction`]; positions clamp to the arena. Pickups appear from the seeded generator and give one
//! point to the first player (in join order) that touches one. The match ends after `duration_s`.

mod direction;
mod grid;

use std::collections::HashMap;

use serde::ser::{SerializeSeq, SerializeTuple};
use serde::{Deserialize, Serialize, Serializer};

pub use direction::{Direction, RawDirection};
use grid::PickupGrid;

use crate::rng::SplitMix64;
use crate::{Game, GameEvent, JoinError, PlayerId, RestoreError, Seq, rank_by_score};

/// Width and height of the arena.
pub const ARENA_SIZE: f32 = 1000.0;
/// Movement speed in units per second at full input.
pub const SPEED: f32 = 200.0;
/// A player touches a pickup when their centres are closer than this.
pub const TOUCH_DISTANCE: f32 = 18.0;
/// The most pickups that are ever on the field at once.
pub const MAX_PICKUPS: usize = 512;
/// Spawn positions keep this far from the walls.
const SPAWN_MARGIN: f32 = 20.0;

/// Settings of one arena room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArenaConfig {
    pub max_players: u32,
    pub tick_rate: u32,
    pub duration_s: u32,
}

impl Default for ArenaConfig {
    fn default() -> Self {
        Self {
            max_players: 16,
            tick_rate: 20,
            duration_s: 300,
        }
    }
}

impl ArenaConfig {
    fn total_ticks(&self) -> u64 {
        u64::from(self.duration_s) * u64::from(self.tick_rate.max(1))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArenaPlayer {
    pub id: PlayerId,
    pub x: f32,
    pub y: f32,
    pub score: u32,
    pub last_seq: Seq,
    pub direction: Direction,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Pickup {
    pub id: u32,
    pub x: f32,
    pub y: f32,
}

/// Everything needed to continue an arena match exactly where it was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArenaSnapshot {
    pub config: ArenaConfig,
    pub tick: u64,
    pub rng: SplitMix64,
    pub players: Vec<ArenaPlayer>,
    pub pickups: Vec<Pickup>,
    pub next_pickup_id: u32,
    pub over: bool,
    pub pending_events: Vec<GameEvent>,
}

#[derive(Debug)]
pub struct Arena {
    config: ArenaConfig,
    tick: u64,
    rng: SplitMix64,
    /// In join order: the order in which ties for a pickup are decided.
    players: Vec<ArenaPlayer>,
    index: HashMap<PlayerId, usize>,
    pickups: Vec<Pickup>,
    next_pickup_id: u32,
    over: bool,
    pending_events: Vec<GameEvent>,
    /// Scratch space reused every tick; not part of the game's state.
    grid: PickupGrid,
    taken: Vec<bool>,
}

impl Arena {
    pub fn arena_players(&self) -> &[ArenaPlayer] {
        &self.players
    }

    pub fn pickups(&self) -> &[Pickup] {
        &self.pickups
    }

    pub fn remaining_ms(&self) -> u64 {
        let left = self.config.total_ticks().saturating_sub(self.tick);
        left * 1000 / u64::from(self.config.tick_rate.max(1))
    }

    fn rebuild_index(&mut self) {
        self.index.clear();
        for (position, player) in self.players.iter().enumerate() {
            self.index.insert(player.id.clone(), position);
        }
    }

    fn target_pickups(&self) -> usize {
        (4 + self.players.len() / 2).min(MAX_PICKUPS)
    }

    fn spawn_pickups(&mut self) {
        while self.pickups.len() < self.target_pickups() {
            let x = self.rng.range_f32(SPAWN_MARGIN, ARENA_SIZE - SPAWN_MARGIN);
            let y = self.rng.range_f32(SPAWN_MARGIN, ARENA_SIZE - SPAWN_MARGIN);
            self.pickups.push(Pickup {
                id: self.next_pickup_id,
                x,
                y,
            });
            self.next_pickup_id = self.next_pickup_id.wrapping_add(1);
        }
    }

    fn move_players(&mut self) {
        let distance = SPEED / self.config.tick_rate.max(1) as f32;
        for player in &mut self.players {
            player.x = (player.x + player.direction.dx() * distance).clamp(0.0, ARENA_SIZE);
            player.y = (player.y + player.direction.dy() * distance).clamp(0.0, ARENA_SIZE);
        }
    }

    fn collect_pickups(&mut self) {
        if self.pickups.is_empty() || self.players.is_empty() {
            return;
        }
        self.grid.rebuild(&self.pickups);
        self.taken.clear();
        self.taken.resize(self.pickups.len(), false);
        for player in &mut self.players {
            self.grid
                .for_each_near(player.x, player.y, TOUCH_DISTANCE, |index| {
                    let pickup = &self.pickups[index];
                    let (dx, dy) = (pickup.x - player.x, pickup.y - player.y);
                    if !self.taken[index] && dx * dx + dy * dy < TOUCH_DISTANCE * TOUCH_DISTANCE {
                        self.taken[index] = true;
                        player.score = player.score.saturating_add(1);
                    }
                });
        }
        let mut position = 0;
        let taken = &self.taken;
        self.pickups.retain(|_| {
            position += 1;
            !taken[position - 1]
        });
    }
}

impl Game for Arena {
    type Config = ArenaConfig;
    type WireInput = RawDirection;
    type Input = Direction;
    type Snapshot = ArenaSnapshot;
    type View<'a> = ArenaView<'a>;

    const MODE: &'static str = "arena";

    fn new(config: ArenaConfig, seed: u64) -> Self {
        let mut arena = Self {
            config,
            tick: 0,
            rng: SplitMix64::new(seed),
            players: Vec::new(),
            index: HashMap::new(),
            pickups: Vec::new(),
            next_pickup_id: 0,
            over: false,
            pending_events: Vec::new(),
            grid: PickupGrid::default(),
            taken: Vec::new(),
        };
        arena.spawn_pickups();
        arena
    }

    fn config(&self) -> &ArenaConfig {
        &self.config
    }

    fn tick_rate(&self) -> u32 {
        self.config.tick_rate.max(1)
    }

    fn tick(&self) -> u64 {
        self.tick
    }

    fn join(&mut self, player: PlayerId) -> Result<(), JoinError> {
        if self.over {
            return Err(JoinError::MatchOver);
        }
        if self.index.contains_key(&player) {
            return Err(JoinError::AlreadyJoined(player));
        }
        let capacity = self.config.max_players as usize;
        if self.players.len() >= capacity {
            return Err(JoinError::Full { capacity });
        }
        let x = self.rng.range_f32(SPAWN_MARGIN, ARENA_SIZE - SPAWN_MARGIN);
        let y = self.rng.range_f32(SPAWN_MARGIN, ARENA_SIZE - SPAWN_MARGIN);
        self.index.insert(player.clone(), self.players.len());
        self.players.push(ArenaPlayer {
            id: player.clone(),
            x,
            y,
            score: 0,
            last_seq: Seq(0),
            direction: Direction::ZERO,
        });
        self.pending_events.push(GameEvent::PlayerJoined(player));
        Ok(())
    }

    fn leave(&mut self, player: &PlayerId) -> bool {
        let Some(position) = self.index.get(player).copied() else {
            return false;
        };
        self.players.remove(position);
        self.rebuild_index();
        self.pending_events
            .push(GameEvent::PlayerLeft(player.clone()));
        true
    }

    fn apply_input(&mut self, player: &PlayerId, seq: Seq, input: Direction) -> bool {
        let Some(&position) = self.index.get(player) else {
            return false;
        };
        let record = &mut self.players[position];
        if seq <= record.last_seq {
            return false;
        }
        record.last_seq = seq;
        record.direction = input;
        true
    }

    // Phases: 1 announce joins/leaves, 2 move, 3 collect pickups, 4 respawn pickups, 5 end the match.
    fn step(&mut self, events: &mut Vec<GameEvent>) {
        events.append(&mut self.pending_events);
        if self.over {
            return;
        }
        self.tick += 1;
        self.move_players();
        self.collect_pickups();
        self.spawn_pickups();
        if self.tick >= self.config.total_ticks() {
            self.over = true;
            let scores = self
                .players
                .iter()
                .map(|p| (p.id.clone(), p.score))
                .collect();
            events.push(GameEvent::MatchOver(rank_by_score(scores)));
        }
    }

    fn is_over(&self) -> bool {
        self.over
    }

    fn player_count(&self) -> usize {
        self.players.len()
    }

    fn players(&self) -> Vec<PlayerId> {
        self.players.iter().map(|p| p.id.clone()).collect()
    }

    fn view(&self) -> ArenaView<'_> {
        ArenaView {
            players: PlayersView(&self.players),
            pickups: PickupsView(&self.pickups),
            remaining_ms: self.remaining_ms(),
        }
    }

    fn snapshot(&self) -> ArenaSnapshot {
        ArenaSnapshot {
            config: self.config,
            tick: self.tick,
            rng: self.rng.clone(),
            players: self.players.clone(),
            pickups: self.pickups.clone(),
            next_pickup_id: self.next_pickup_id,
            over: self.over,
            pending_events: self.pending_events.clone(),
        }
    }

    fn restore(snapshot: ArenaSnapshot) -> Result<Self, RestoreError> {
        let inside =
            |x: f32, y: f32| (0.0..=ARENA_SIZE).contains(&x) && (0.0..=ARENA_SIZE).contains(&y);
        if snapshot.players.len() > snapshot.config.max_players as usize {
            return Err(RestoreError("more players than max_players".into()));
        }
        if !snapshot.players.iter().all(|p| inside(p.x, p.y))
            || !snapshot.pickups.iter().all(|p| inside(p.x, p.y))
        {
            return Err(RestoreError("a position lies outside the arena".into()));
        }
        let mut arena = Self {
            config: snapshot.config,
            tick: snapshot.tick,
            rng: snapshot.rng,
            players: snapshot.players,
            index: HashMap::new(),
            pickups: snapshot.pickups,
            next_pickup_id: snapshot.next_pickup_id,
            over: snapshot.over,
            pending_events: snapshot.pending_events,
            grid: PickupGrid::default(),
            taken: Vec::new(),
        };
        arena.rebuild_index();
        if arena.index.len() != arena.players.len() {
            return Err(RestoreError("a player appears twice".into()));
        }
        Ok(arena)
    }
}

/// The wire STATE of the arena: `{"players":[[id,x,y,score,last_seq],…],"pickups":[[id,x,y],…],"remaining_ms":u64}`.
/// Borrowed from the game, so serialising it allocates nothing.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ArenaView<'a> {
    pub players: PlayersView<'a>,
    pub pickups: PickupsView<'a>,
    pub remaining_ms: u64,
}

#[derive(Debug, Clone, Copy)]
pub struct PlayersView<'a>(pub &'a [ArenaPlayer]);

#[derive(Debug, Clone, Copy)]
pub struct PickupsView<'a>(pub &'a [Pickup]);

impl Serialize for PlayersView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for player in self.0 {
            seq.serialize_element(&PlayerRow(player))?;
        }
        seq.end()
    }
}

struct PlayerRow<'a>(&'a ArenaPlayer);

impl Serialize for PlayerRow<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let p = self.0;
        let mut row = serializer.serialize_tuple(5)?;
        row.serialize_element(p.id.as_str())?;
        row.serialize_element(&p.x)?;
        row.serialize_element(&p.y)?;
        row.serialize_element(&p.score)?;
        row.serialize_element(&p.last_seq.get())?;
        row.end()
    }
}

impl Serialize for PickupsView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for pickup in self.0 {
            seq.serialize_element(&(pickup.id, pickup.x, pickup.y))?;
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests;
