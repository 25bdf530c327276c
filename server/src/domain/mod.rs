//! Values parsed once at the edge: an invalid one cannot be built.

mod room_id;
pub mod room_settings;
pub mod tickets;

pub use room_id::{InvalidRoomId, RoomId};
pub use room_settings::{RoomSettings, RoomSettingsError};
