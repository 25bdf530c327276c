//! The settings a matchmaker may choose for a room, validated against the documented bounds.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomSettings {
    pub max_players: u32,
    pub tick_rate: u32,
    pub duration_s: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoomSettingsError {
    #[error("max_players must be between 1 and 64, got {0}")]
    MaxPlayers(i64),
    #[error("tick_rate must be between 1 and 60, got {0}")]
    TickRate(i64),
    #[error("duration_s must be between 1 and 3600, got {0}")]
    Duration(i64),
}

impl Default for RoomSettings {
    fn default() -> Self {
        Self {
            max_players: 16,
            tick_rate: 20,
            duration_s: 300,
        }
    }
}

impl RoomSettings {
    /// Takes raw, possibly out-of-range numbers (as JSON gave them) and checks each bound.
    pub fn new(
        max_players: Option<i64>,
        tick_rate: Option<i64>,
        duration_s: Option<i64>,
    ) -> Result<Self, RoomSettingsError> {
        let defaults = Self::default();
        let within = |value: Option<i64>,
                      default: u32,
                      high: i64,
                      error: fn(i64) -> RoomSettingsError| match value {
            None => Ok(default),
            Some(v) if (1..=high).contains(&v) => Ok(v as u32),
            Some(v) => Err(error(v)),
        };
        Ok(Self {
            max_players: within(
                max_players,
                defaults.max_players,
                64,
                RoomSettingsError::MaxPlayers,
            )?,
            tick_rate: within(
                tick_rate,
                defaults.tick_rate,
                60,
                RoomSettingsError::TickRate,
            )?,
            duration_s: within(
                duration_s,
                defaults.duration_s,
                3600,
                RoomSettingsError::Duration,
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bounds() {
        assert_eq!(
            RoomSettings::new(None, None, None).unwrap(),
            RoomSettings::default()
        );
        assert_eq!(
            RoomSettings::new(Some(64), Some(1), Some(3600))
                .unwrap()
                .max_players,
            64
        );
        assert_eq!(
            RoomSettings::new(Some(0), None, None),
            Err(RoomSettingsError::MaxPlayers(0))
        );
        assert_eq!(
            RoomSettings::new(None, Some(61), None),
            Err(RoomSettingsError::TickRate(61))
        );
        assert_eq!(
            RoomSettings::new(None, None, Some(-5)),
            Err(RoomSettingsError::Duration(-5))
        );
    }
}
