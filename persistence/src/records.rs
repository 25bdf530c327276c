//! The records the repository speaks in (never entities), and their conversions to and from the
//! sea-orm models.

use sea_orm::ActiveValue::{NotSet, Set};
use time::{OffsetDateTime, UtcOffset};

use crate::entity::{match_results, room_snapshots, rooms};
use crate::{OutboxEvent, StorageError};

/// Whether a room accepts play.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoomStatus {
    /// Running; restored on restart.
    Open,
    /// Ended or closed; never restored.
    Closed,
}

impl RoomStatus {
    /// The value stored in `rooms.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Self, StorageError> {
        match s {
            "open" => Ok(Self::Open),
            "closed" => Ok(Self::Closed),
            other => Err(StorageError::Corrupt(format!(
                "unknown room status {other:?}"
            ))),
        }
    }
}

/// Who writes a room in cluster mode: its owning node and the fencing number it holds the room
/// with. A write carrying an older fencing number than the room's is refused by the database.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Owner {
    /// Empty on a single node.
    pub node_id: Option<String>,
    pub fence: i64,
}

/// A room as stored in `rooms`. Timestamps are stored in UTC with microsecond precision.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomRecord {
    pub room_id: String,
    pub mode: String,
    /// The room's configuration as JSON text.
    pub config: String,
    pub status: RoomStatus,
    pub created_at: OffsetDateTime,
    pub closed_at: Option<OffsetDateTime>,
    /// The writer (a status change is applied only if its fencing number is the room's).
    pub owner: Owner,
}

/// A snapshot of a room's state at a tick.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotRecord {
    pub room_id: String,
    /// Stored as a signed 64-bit integer: ticks above `i64::MAX` are rejected.
    pub tick: u64,
    /// MessagePack bytes, opaque to storage.
    pub state: Vec<u8>,
    pub created_at: OffsetDateTime,
    /// The writer; the database skips a snapshot whose fencing number is not the room's.
    pub owner: Owner,
}

impl SnapshotRecord {
    /// Whether the record fits its columns; [`Storage::write_batch`] rejects the whole batch
    /// otherwise, so a buffering caller checks each record on arrival.
    pub fn check(&self) -> Result<(), StorageError> {
        i64::try_from(self.tick).map(drop).map_err(|_| {
            StorageError::OutOfRange(format!(
                "tick {} of room {} exceeds i64",
                self.tick, self.room_id
            ))
        })
    }
}

/// A snapshot read back from the database.
pub type StoredSnapshot = SnapshotRecord;

/// One player's result of a finished match.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultRecord {
    pub room_id: String,
    pub player_id: String,
    pub score: u32,
    /// 1 is the winner. Stored as a 32-bit signed integer.
    pub rank: u32,
    pub finished_at: OffsetDateTime,
}

impl ResultRecord {
    /// Whether the record fits its columns (see [`SnapshotRecord::check`]).
    pub fn check(&self) -> Result<(), StorageError> {
        i32::try_from(self.rank).map(drop).map_err(|_| {
            StorageError::OutOfRange(format!(
                "rank {} of player {} in room {} exceeds i32",
                self.rank, self.player_id, self.room_id
            ))
        })
    }
}

/// What one flush writes: rooms (upserted), snapshots (appended), results (upserted) and
/// webhook events (inserted once; see [`outbox`]), all in one transaction.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub rooms: Vec<RoomRecord>,
    pub snapshots: Vec<SnapshotRecord>,
    pub results: Vec<ResultRecord>,
    pub events: Vec<OutboxEvent>,
}

impl Batch {
    /// Rows in the batch, over all tables.
    pub fn len(&self) -> usize {
        self.rooms.len() + self.snapshots.len() + self.results.len() + self.events.len()
    }

    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// UTC, truncated to microseconds: what both backends store, so that a record reads back equal.
pub(crate) fn db_time(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(UtcOffset::UTC);
    t.replace_nanosecond(t.nanosecond() / 1_000 * 1_000)
        .unwrap_or(t)
}

pub(crate) fn room_model(r: &RoomRecord) -> rooms::ActiveModel {
    rooms::ActiveModel {
        id: Set(r.room_id.clone()),
        mode: Set(r.mode.clone()),
        config: Set(r.config.clone()),
        status: Set(r.status.as_str().to_owned()),
        created_at: Set(db_time(r.created_at)),
        closed_at: Set(r.closed_at.map(db_time)),
        owner_node: NotSet,
        owner_incarnation: NotSet,
        fence: Set(r.owner.fence),
        players: NotSet,
        orphaned_at: NotSet,
    }
}

pub(crate) fn snapshot_model(
    s: &SnapshotRecord,
) -> Result<room_snapshots::ActiveModel, StorageError> {
    s.check()?;
    Ok(room_snapshots::ActiveModel {
        id: NotSet,
        room_id: Set(s.room_id.clone()),
        tick: Set(s.tick as i64), // checked just above
        state: Set(s.state.clone()),
        created_at: Set(db_time(s.created_at)),
        node_id: Set(s.owner.node_id.clone()),
        fence: Set(s.owner.fence),
    })
}

pub(crate) fn result_model(r: &ResultRecord) -> Result<match_results::ActiveModel, StorageError> {
    r.check()?;
    Ok(match_results::ActiveModel {
        room_id: Set(r.room_id.clone()),
        player_id: Set(r.player_id.clone()),
        score: Set(i64::from(r.score)),
        rank: Set(r.rank as i32), // checked just above
        finished_at: Set(db_time(r.finished_at)),
    })
}

pub(crate) fn room_record(m: rooms::Model) -> Result<RoomRecord, StorageError> {
    Ok(RoomRecord {
        status: RoomStatus::parse(&m.status)?,
        room_id: m.id,
        mode: m.mode,
        config: m.config,
        created_at: m.created_at,
        closed_at: m.closed_at,
        owner: Owner {
            node_id: m.owner_node,
            fence: m.fence,
        },
    })
}

pub(crate) fn snapshot_record(m: room_snapshots::Model) -> Result<SnapshotRecord, StorageError> {
    let tick = u64::try_from(m.tick).map_err(|_| {
        StorageError::Corrupt(format!("snapshot {} has a negative tick {}", m.id, m.tick))
    })?;
    Ok(SnapshotRecord {
        room_id: m.room_id,
        tick,
        state: m.state,
        created_at: m.created_at,
        owner: Owner {
            node_id: m.node_id,
            fence: m.fence,
        },
    })
}

pub(crate) fn result_record(m: match_results::Model) -> Result<ResultRecord, StorageError> {
    let corrupt = |what: &str| {
        StorageError::Corrupt(format!(
            "result of player {} in room {} has an invalid {what}",
            m.player_id, m.room_id
        ))
    };
    let score = u32::try_from(m.score).map_err(|_| corrupt("score"))?;
    let rank = u32::try_from(m.rank).map_err(|_| corrupt("rank"))?;
    Ok(ResultRecord {
        room_id: m.room_id,
        player_id: m.player_id,
        score,
        rank,
        finished_at: m.finished_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_micros() {
        let t = time::macros::datetime!(2026-01-02 03:04:05.123456789 +02:00);
        let d = db_time(t);
        assert_eq!(d.offset(), UtcOffset::UTC);
        assert_eq!(d.nanosecond(), 123_456_000);
        assert_eq!(d, t.replace_nanosecond(123_456_000).unwrap());
    }
}
