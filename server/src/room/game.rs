//! What the room needs of a game beyond [`game_core::Game`].

use game_core::Game;
use game_core::arena::{Arena, ArenaConfig};

use crate::domain::RoomSettings;

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
