//! Game modes by name, and the wiring of a game's rooms to their sessions.
//!
//! Adding a game means implementing [`ServerGame`] for it and adding one line to
//! [`Modes::standard`]; the actors are generic and stay untouched. This is the one place that knows
//! a room's game, the room actor and the session actor together: rooms and sessions do not import
//! each other, so starting a session for a room is composed here.

use std::marker::PhantomData;
use std::sync::Arc;

use actix::Addr;
use game_core::arena::Arena;
use game_core::{PlayerId, RestoreError};
use time::OffsetDateTime;

use crate::domain::{RoomId, RoomSettings};
use crate::room::messages::{CloseKind, CloseRoom};
use crate::room::port::{BoxFuture, RoomPort};
use crate::room::registry::{Ownership, RoomEntry, RoomShared};
use crate::room::{RoomActor, RoomEnv, ServerGame};
use crate::session::{SessionActor, SessionSettings, SessionStart};
use crate::transport::Socket;

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

/// A room of game `G` as the registry holds it: its actor, and what its sessions need.
struct Port<G: ServerGame> {
    room: Addr<RoomActor<G>>,
    room_id: RoomId,
    tick_rate: u32,
    sessions: Arc<SessionSettings>,
}

impl<G: ServerGame> RoomPort for Port<G> {
    fn connect(&self, player: PlayerId, socket: Socket) {
        SessionActor::<G>::spawn(
            RoomActor::handle(&self.room),
            SessionStart {
                room_id: self.room_id.clone(),
                player,
                tick_rate: self.tick_rate,
                socket,
                settings: self.sessions.clone(),
            },
        );
    }

    fn close(&self, kind: CloseKind) -> BoxFuture {
        let request = self.room.send(CloseRoom::new(kind));
        Box::pin(async move {
            // An error means the room already stopped, which is what was asked.
            let _ = request.await;
        })
    }
}

struct Mode<G> {
    sessions: Arc<SessionSettings>,
    game: PhantomData<fn() -> G>,
}

impl<G: ServerGame> Mode<G> {
    fn start(
        &self,
        env: &Arc<RoomEnv>,
        shared: Arc<RoomShared>,
        game: G,
        restored_players: Vec<PlayerId>,
    ) -> Arc<RoomEntry> {
        let room = RoomActor::<G>::start_next(env, shared.clone(), game, restored_players);
        let port = Port {
            room,
            room_id: shared.id.clone(),
            tick_rate: shared.settings.tick_rate,
            sessions: self.sessions.clone(),
        };
        let entry = Arc::new(RoomEntry {
            shared,
            port: Box::new(port),
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
        self.start(env, shared, game, Vec::new())
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
        Ok(self.start(env, shared, game, players))
    }
}

pub struct Modes {
    modes: Vec<Box<dyn GameMode>>,
    /// What the sessions of every room share.
    sessions: Arc<SessionSettings>,
}

impl std::fmt::Debug for Modes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.modes.iter().map(|m| m.name()))
            .finish()
    }
}

impl Modes {
    /// The games this server hosts, their sessions run with `sessions`.
    pub fn standard(sessions: Arc<SessionSettings>) -> Self {
        let mut modes = Self {
            modes: Vec::new(),
            sessions,
        };
        modes.register::<Arena>();
        modes
    }

    pub fn register<G: ServerGame>(&mut self) {
        self.modes.push(Box::new(Mode::<G> {
            sessions: self.sessions.clone(),
            game: PhantomData,
        }));
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
