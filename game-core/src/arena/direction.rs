//! The arena's input: a movement direction.

use serde::{Deserialize, Serialize};

use crate::InvalidInput;

/// The direction a player wants to move in, as it arrives on the wire: `{"dx": f32, "dy": f32}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RawDirection {
    pub dx: f32,
    pub dy: f32,
}

/// A validated direction: both components finite and the length at most 1 (a longer one is
/// normalised, so "full speed" is any length >= 1). A NaN cannot be built, so it never reaches a room.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Direction {
    dx: f32,
    dy: f32,
}

impl Direction {
    pub const ZERO: Self = Self { dx: 0.0, dy: 0.0 };

    pub fn new(dx: f32, dy: f32) -> Result<Self, InvalidInput> {
        if !dx.is_finite() || !dy.is_finite() {
            return Err(InvalidInput("direction components must be finite numbers"));
        }
        let length = dx.hypot(dy);
        if length <= 1.0 {
            return Ok(Self { dx, dy });
        }
        // Scale by the larger component first: hypot of two huge finite values overflows to inf.
        let largest = dx.abs().max(dy.abs());
        let (sx, sy) = (dx / largest, dy / largest);
        let scaled = sx.hypot(sy);
        let (mut nx, mut ny) = (sx / scaled, sy / scaled);
        // Rounding can leave the length a hair above 1; the invariant is "at most 1".
        while nx.hypot(ny) > 1.0 {
            nx *= 0.999_999_9;
            ny *= 0.999_999_9;
        }
        Ok(Self { dx: nx, dy: ny })
    }

    pub fn dx(self) -> f32 {
        self.dx
    }

    pub fn dy(self) -> f32 {
        self.dy
    }
}

impl TryFrom<RawDirection> for Direction {
    type Error = InvalidInput;
    fn try_from(raw: RawDirection) -> Result<Self, Self::Error> {
        Self::new(raw.dx, raw.dy)
    }
}

impl<'de> Deserialize<'de> for Direction {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawDirection::deserialize(deserializer)?;
        Self::try_from(raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_nan_and_infinities() {
        for (dx, dy) in [
            (f32::NAN, 0.0),
            (0.0, f32::INFINITY),
            (f32::NEG_INFINITY, 1.0),
        ] {
            assert!(Direction::new(dx, dy).is_err());
        }
    }

    #[test]
    fn keeps_short_directions_and_normalises_long_ones() {
        assert_eq!(
            Direction::new(0.5, 0.0).unwrap(),
            Direction { dx: 0.5, dy: 0.0 }
        );
        let d = Direction::new(3.0, 4.0).unwrap();
        assert!((d.dx() - 0.6).abs() < 1e-6 && (d.dy() - 0.8).abs() < 1e-6);
        let huge = Direction::new(f32::MAX, f32::MAX).unwrap();
        assert!(huge.dx() > 0.7 && huge.dy() > 0.7);
    }

    proptest! {
        #[test]
        fn any_finite_input_gives_a_length_of_at_most_one(dx in any::<f32>(), dy in any::<f32>()) {
            match Direction::new(dx, dy) {
                Ok(d) => {
                    prop_assert!(dx.is_finite() && dy.is_finite());
                    prop_assert!(d.dx().hypot(d.dy()) <= 1.0);
                }
                Err(_) => prop_assert!(!dx.is_finite() || !dy.is_finite()),
            }
        }
    }
}
