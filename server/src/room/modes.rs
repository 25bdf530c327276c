//! Game modes by name. Adding a game means implementing [`ServerGame`] for it and adding one line to
//! [`Modes::standard`]; the actors are generic and stay untouched.

use std::marker::PhantomData;
use std::sync::Arc;

use actix::Actor;
use game_core::arena::{Arena, ArenaConfig};
use game_core::{Game, PlayerId, RestoreError};
use time::OffsetDateTime;

use super::registry::{Ownership, RoomEntry, RoomShared};
use super::{RoomActor, RoomEnv};
use crate::domain::{RoomId, RoomSettings};

/// A game the server can host: how a matchmaker's room settings become the game's config.
pub trait ServerGame: Game + Unpin {
    fn config_for(settings: &RoomSettings) -> Self::Config;
}

impl ServerGame for Arena {
    fn config_for(settings: &RoomSettings) -> ArenaConfig {
        ArenaConfig {
            max_players: settings.max_players,
            tick_rate: settings.tick_rate,
            duration_s: settings.duration_s,
        }
    }
}

/// A room being brought back after a restart.
#[derive(Debug)]
pub struct Restored<'a> {
    pub id: RoomId,
    pub settings: RoomSettings,
    pub created_at: OffsetDateTime,
    pub ownership: Ownership,
    pub snapshot: &'a [u8],
}

pub trait GameMode: Send + Sync {
    fn name(&self) -> &'static str;
    /// Starts a new room. In cluster mode the caller has stored it as owned by `ownership` first.
    fn create(
        &self,
        env: &Arc<RoomEnv>,
        id: RoomId,
        settings: RoomSettings,
        created_at: OffsetDateTime,
        ownership: Ownership,
    ) -> Arc<RoomEntry>;
    /// Restores a room from its latest snapshot; its players come back as dropped, within the grace.
    fn restore(
        &self,
        env: &Arc<RoomEnv>,
        restored: Restored<'_>,
    ) -> Result<Arc<RoomEntry>, RestoreError>;
}

struct Mode<G>(PhantomData<fn() -> G>);

impl<G: ServerGame> Mode<G> {
    fn start(
        env: &Arc<RoomEnv>,
        shared: Arc<RoomShared>,
        game: G,
        restored_players: Vec<PlayerId>,
    ) -> Arc<RoomEntry> {
        let arbiter = env.next_arbiter();
        let actor_env = env.clone();
        let actor_shared = shared.clone();
        // The request (or restore) that creates the room: the room's start span is its child.
        let cause = tracing::Span::current();
        let addr = RoomActor::<G>::start_in_arbiter(&arbiter, move |_| {
            RoomActor::new(actor_env, actor_shared, game, restored_players, cause)
        });
        let entry = Arc::new(RoomEntry {
            shared,
            port: Box::new(addr),
        });
        env.registry.insert(entry.clone());
        entry
    }
}

impl<G: ServerGame> GameMode for Mode<G> {
    fn name(&self) -> &'static str {
        G::MODE
    }

    fn create(
        &self,
        env: &Arc<RoomEnv>,
        id: RoomId,
        settings: RoomSettings,
        created_at: OffsetDateTime,
        ownership: Ownership,
    ) -> Arc<RoomEntry> {
        let seed = rand::random();
        let game = G::new(G::config_for(&settings), seed);
        let shared = Arc::new(RoomShared::new(id, G::MODE, settings, created_at).owned(ownership));
        if let Some(store) = &env.store {
            store.room_changed(&shared, &settings);
        }
        Self::start(env, shared, game, Vec::new())
    }

    fn restore(
        &self,
        env: &Arc<RoomEnv>,
        restored: Restored<'_>,
    ) -> Result<Arc<RoomEntry>, RestoreError> {
        let snapshot: G::Snapshot =
            rmp_serde::from_slice(restored.snapshot).map_err(|e| RestoreError(e.to_string()))?;
        let game = G::restore(snapshot)?;
        let shared = Arc::new(
            RoomShared::new(restored.id, G::MODE, restored.settings, restored.created_at)
                .owned(restored.ownership),
        );
        let players = game.players();
        for player in &players {
            shared.seat_restored(player);
        }
        Ok(Self::start(env, shared, game, players))
    }
}

#[derive(Default)]
pub struct Modes {
    modes: Vec<Box<dyn GameMode>>,
}

impl std::fmt::Debug for Modes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.modes.iter().map(|m| m.name()))
            .finish()
    }
}

impl Modes {
    /// The games this server hosts.
    pub fn standard() -> Self {
        let mut modes = Self::default();
        modes.register::<Arena>();
        modes
    }

    pub fn register<G: ServerGame>(&mut self) {
        self.modes.push(Box::new(Mode::<G>(PhantomData)));
    }

    /// The names clients may ask for, in registration order (the OpenAPI `mode` enum).
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.modes.iter().map(|m| m.name())
    }

    pub fn get(&self, name: &str) -> Option<&dyn GameMode> {
        self.modes
            .iter()
            .find(|m| m.name() == name)
            .map(|m| m.as_ref())
    }
}
