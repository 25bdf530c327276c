use std::fmt;
use std::sync::Arc;

/// A room's identity: 1 to 64 characters of `[A-Za-z0-9_-]` (new rooms get 32 random hex digits).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId(Arc<str>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("room_id must be 1 to 64 characters of A-Z, a-z, 0-9, '_' and '-'")]
pub struct InvalidRoomId;

impl RoomId {
    pub fn parse(raw: &str) -> Result<Self, InvalidRoomId> {
        let valid = (1..=64).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if valid {
            Ok(Self(Arc::from(raw)))
        } else {
            Err(InvalidRoomId)
        }
    }

    pub fn generate() -> Self {
        let bits: u128 = rand::random();
        Self(Arc::from(format!("{bits:032x}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RoomId({})", &*self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_and_bad_ones_do_not() {
        let id = RoomId::generate();
        assert_eq!(RoomId::parse(id.as_str()).unwrap(), id);
        assert_eq!(id.as_str().len(), 32);
        for bad in ["", "a b", "../x", &"x".repeat(65)] {
            assert!(RoomId::parse(bad).is_err());
        }
    }
}
