//! How rooms reach the persistence actor: [`RoomStore`] over its address.

use std::sync::Arc;

use actix::{Actor as _, Addr};
use actix_rt::Arbiter;
use game_core::RankedResult;
use persistence::{Owner, ResultRecord, RoomRecord, RoomStatus as StoredStatus, SnapshotRecord};
use time::OffsetDateTime;

use crate::config::Config;
use crate::domain::RoomSettings;
use crate::persistence_actor::{
    Flush, FlushError, PersistenceActor, PersistenceConfig, SaveReported, SaveRoom, SaveSnapshot,
};
use crate::room::RoomStore;
use crate::room::messages::CloseReason;
use crate::room::registry::{RoomShared, RoomStatus};
use crate::webhooks::events::{self, PlayerResult};

#[derive(Clone)]
pub struct PersistenceLink {
    addr: Addr<PersistenceActor>,
    /// Webhook events are recorded only when a receiver is configured.
    record_events: bool,
    /// Cluster mode: this node, recorded as the writer of each snapshot.
    node_id: Option<String>,
}

impl std::fmt::Debug for PersistenceLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PersistenceLink")
    }
}

/// Starts the persistence actor on an arbiter of its own, away from the rooms. With `webhooks`
/// (the sender's waker), closing rooms record webhook events and the sender is woken after each
/// commit that stored some.
pub fn start(
    storage: persistence::Storage,
    config: &Config,
    webhooks: Option<Arc<tokio::sync::Notify>>,
    node_id: Option<String>,
) -> Arc<PersistenceLink> {
    let settings = PersistenceConfig {
        flush_interval: std::time::Duration::from_millis(config.persistence_flush_interval_ms),
        batch_size: config.persistence_batch_size,
        max_buffered: config.persistence_max_buffered,
        prune_keep: config.snapshots_kept,
        ..PersistenceConfig::default()
    };
    let arbiter = Arbiter::new();
    let record_events = webhooks.is_some();
    let addr = PersistenceActor::start_in_arbiter(&arbiter.handle(), move |_| {
        let actor = PersistenceActor::new(storage, settings);
        match webhooks {
            Some(waker) => actor.wake_on_events(waker),
            None => actor,
        }
    });
    // The arbiter lives as long as the process: the actor must drain at shutdown.
    std::mem::forget(arbiter);
    Arc::new(PersistenceLink {
        addr,
        record_events,
        node_id,
    })
}

fn room_record(room: &RoomShared, settings: &RoomSettings, owner: Owner) -> RoomRecord {
    let summary = room.summary();
    RoomRecord {
        owner,
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
        self.addr
            .do_send(SaveRoom(room_record(room, settings, self.owner(room))));
    }

    fn snapshot(&self, room: &RoomShared, tick: u64, state: Vec<u8>) {
        self.addr.do_send(SaveSnapshot(SnapshotRecord {
            owner: self.owner(room),
            room_id: room.id.to_string(),
            tick,
            state,
            created_at: OffsetDateTime::now_utc(),
        }));
    }

    fn room_closed(
        &self,
        room: &RoomShared,
        reason: CloseReason,
        results: Option<&[RankedResult]>,
    ) {
        let record = room_record(room, &room.settings, self.owner(room));
        let finished_at = record.closed_at.unwrap_or_else(OffsetDateTime::now_utc);
        let room_id = record.room_id.clone();
        let results: Vec<ResultRecord> = results
            .unwrap_or_default()
            .iter()
            .map(|r| ResultRecord {
                room_id: room_id.clone(),
                player_id: r.player_id.to_string(),
                score: r.score,
                rank: r.rank,
                finished_at,
            })
            .collect();
        let mut reported = Vec::new();
        if self.record_events {
            if reason == CloseReason::Finished {
                let players: Vec<PlayerResult> = results
                    .iter()
                    .map(|r| PlayerResult {
                        player_id: r.player_id.clone(),
                        score: r.score,
                        rank: r.rank,
                    })
                    .collect();
                reported.push(events::match_finished(
                    &room_id,
                    &record.mode,
                    &players,
                    finished_at,
                ));
            }
            reported.push(events::room_closed(&room_id, reason, finished_at));
        }
        self.addr.do_send(SaveReported {
            room: record,
            results,
            events: reported,
        });
    }
}

impl PersistenceLink {
    /// Who writes `room`: this node, under the room's fencing number.
    fn owner(&self, room: &RoomShared) -> Owner {
        Owner {
            node_id: self.node_id.clone(),
            fence: room.ownership.fence,
        }
    }

    /// Resolves once everything sent before it is committed.
    pub async fn flush(&self) -> Result<(), FlushError> {
        // A closed mailbox means the actor has stopped.
        self.addr
            .send(Flush)
            .await
            .unwrap_or(Err(FlushError::Stopped))
    }

    /// Marks a room that could not be restored as closed (reported as `expired`: it can never
    /// resume).
    pub fn close_unrestorable(&self, mut record: RoomRecord) {
        let closed_at = OffsetDateTime::now_utc();
        record.status = StoredStatus::Closed;
        record.closed_at = Some(closed_at);
        let events = if self.record_events {
            vec![events::room_closed(
                &record.room_id,
                CloseReason::Expired,
                closed_at,
            )]
        } else {
            Vec::new()
        };
        self.addr.do_send(SaveReported {
            room: record,
            results: Vec::new(),
            events,
        });
    }
}
