//! Identifiers shared by every game.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A player's identity: 1 to 64 characters of `[A-Za-z0-9_-]`.
///
/// Cheap to clone (a shared string), because every tick's state and every event names players.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlayerId(Arc<str>);

/// Why a string is not a [`PlayerId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPlayerId {
    #[error("player_id must not be empty")]
    Empty,
    #[error("player_id must be at most {max} characters, got {len}", max = PlayerId::MAX_LEN)]
    TooLong { len: usize },
    #[error("player_id may only contain A-Z, a-z, 0-9, '_' and '-'")]
    BadCharacter,
}

impl PlayerId {
    pub const MAX_LEN: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, InvalidPlayerId> {
        if raw.is_empty() {
            return Err(InvalidPlayerId::Empty);
        }
        if raw.len() > Self::MAX_LEN {
            return Err(InvalidPlayerId::TooLong { len: raw.len() });
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(InvalidPlayerId::BadCharacter);
        }
        Ok(Self(Arc::from(raw)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for PlayerId {
    type Error = InvalidPlayerId;
    fn try_from(raw: &str) -> Result<Self, Self::Error> {
        Self::parse(raw)
    }
}

impl TryFrom<String> for PlayerId {
    type Error = InvalidPlayerId;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(&raw)
    }
}

impl fmt::Display for PlayerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PlayerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PlayerId({:?})", &*self.0)
    }
}

impl AsRef<str> for PlayerId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for PlayerId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PlayerId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// A client's input sequence number. It increases per player; an input whose seq is not newer than
/// the last applied one is stale and ignored.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Seq(pub u32);

impl Seq {
    pub const fn get(self) -> u32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_alphabet() {
        for ok in ["a", "Z9", "player_1", "x-y", &"a".repeat(64)] {
            assert_eq!(PlayerId::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_empty_long_and_foreign_characters() {
        assert_eq!(PlayerId::parse(""), Err(InvalidPlayerId::Empty));
        assert_eq!(
            PlayerId::parse(&"a".repeat(65)),
            Err(InvalidPlayerId::TooLong { len: 65 })
        );
        for bad in ["a b", "é", "a/b", "a.b", "<script>", "a\0"] {
            assert_eq!(
                PlayerId::parse(bad),
                Err(InvalidPlayerId::BadCharacter),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn deserialising_validates() {
        let bytes = rmp_serde::to_vec("ok_id").unwrap();
        assert!(rmp_serde::from_slice::<PlayerId>(&bytes).is_ok());
        let bytes = rmp_serde::to_vec("not ok").unwrap();
        assert!(rmp_serde::from_slice::<PlayerId>(&bytes).is_err());
    }
}
