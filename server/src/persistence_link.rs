//! How rooms reach the persistence actor: [`RoomStore`] over its address.

use std::sync::Arc;

use actix::{Actor as _, Addr};
use actix_rt::Arbiter;
use game_core::RankedResult;
use persistence::{ResultRecord, RoomRecord, RoomStatus as StoredStatus, SnapshotRecord};
use time::OffsetDateTime;

use crate::config::Config;
use crate::domain::RoomSettings;
use crate::persistence_actor::{
    Flush, FlushError, PersistenceActor, PersistenceConfig, SaveResults, SaveRoom, SaveSnapshot,
};
use crate::room::RoomStore;
use crate::room::registry::{RoomShared, RoomStatus};

#[derive(Clone)]
pub struct PersistenceLink {
    addr: Addr<PersistenceActor>,
}

impl std::fmt::Debug for PersistenceLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PersistenceLink")
    }
}

/// Starts the persistence actor on an arbiter of its own, away from the rooms.
pub fn start(storage: persistence::Storage, config: &Config) -> Arc<PersistenceLink> {
    let settings = PersistenceConfig {
        flush_interval: std::time::Duration::from_millis(config.persistence_flush_interval_ms),
        batch_size: config.persistence_batch_size,
        max_buffered: config.persistence_max_buffered,
        prune_keep: config.snapshots_kept,
        ..PersistenceConfig::default()
    };
    let arbiter = Arbiter::new();
    let addr = PersistenceActor::start_in_arbiter(&arbiter.handle(), move |_| {
        PersistenceActor::new(storage, settings)
    });
    // The arbiter lives as long as the process: the actor must drain at shutdown.
    std::mem::forget(arbiter);
    Arc::new(PersistenceLink { addr })
}

fn room_record(room: &RoomShared, settings: &RoomSettings) -> RoomRecord {
    let summary = room.summary();
    RoomRecord {
        room_id: room.id.to_string(),
        mode: room.mode.to_string(),
        config: serde_json::to_string(settings).unwrap_or_default(),
        status: match summary.status {
            RoomStatus::Open => StoredStatus::Open,
            RoomStatus::Closed => StoredStatus::Closed,
        },
        created_at: room.created_at,
        closed_at: summary.closed_at,
    }
}

impl RoomStore for PersistenceLink {
    fn room_changed(&self, room: &RoomShared, settings: &RoomSettings) {
        self.addr.do_send(SaveRoom(room_record(room, settings)));
    }

    fn snapshot(&self, room: &RoomShared, tick: u64, state: Vec<u8>) {
        self.addr.do_send(SaveSnapshot(SnapshotRecord {
            room_id: room.id.to_string(),
            tick,
            state,
            created_at: OffsetDateTime::now_utc(),
        }));
    }

    fn results(&self, room: &RoomShared, results: &[RankedResult]) {
        let finished_at = OffsetDateTime::now_utc();
        self.addr.do_send(SaveResults(
            results
                .iter()
                .map(|r| ResultRecord {
                    room_id: room.id.to_string(),
                    player_id: r.player_id.to_string(),
                    score: r.score,
                    rank: r.rank,
                    finished_at,
                })
                .collect(),
        ));
    }
}

impl PersistenceLink {
    /// Resolves once everything sent before it is committed.
    pub async fn flush(&self) -> Result<(), FlushError> {
        // A closed mailbox means the actor has stopped.
        self.addr
            .send(Flush)
            .await
            .unwrap_or(Err(FlushError::Stopped))
    }

    /// Marks a room that could not be restored as closed.
    pub fn close_unrestorable(&self, mut record: RoomRecord) {
        record.status = StoredStatus::Closed;
        record.closed_at = Some(OffsetDateTime::now_utc());
        self.addr.do_send(SaveRoom(record));
    }
}
