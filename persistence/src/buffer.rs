//! The bounded write buffer behind the server's persistence actor, kept free of actix so that its
//! policy (coalescing, shedding, putting a failed batch back) is tested on its own.
//!
//! Policy:
//! - a room's newer snapshot replaces its older unflushed one (restore needs only the latest);
//! - a room's newer status replaces its older one, a player's newer result replaces the older one;
//! - past `max_rows`, the snapshots that have waited longest are shed first. Room status rows,
//!   results and webhook events are never shed: they are small, bounded by the number of rooms and
//!   players, and losing one would lose a match's outcome, resurrect a closed room on restart or
//!   never tell a receiver. The buffer can therefore exceed `max_rows` only by those rows;
//! - a webhook event is buffered with its room's status (and results), and [`WriteBuffer::take`]
//!   takes a room's status, all its results and its events together, so an event is always
//!   committed in the same transaction as the change it reports. (A batch may therefore exceed its
//!   row budget by one room's results and events.)

use crate::{Batch, OutboxEvent, ResultRecord, RoomRecord, SnapshotRecord};
use std::collections::{BTreeMap, HashMap};

/// Sequence numbers start in the middle so that a failed batch put back with
/// [`WriteBuffer::restore`] can be ordered before everything buffered since (counting down).
const SEQ_START: u64 = u64::MAX / 2;

/// Buffered rows waiting to be written, coalesced per room and per player.
#[derive(Debug)]
pub struct WriteBuffer {
    max_rows: usize,
    rooms: HashMap<String, RoomRecord>,
    /// Per room, per player.
    results: HashMap<String, HashMap<String, ResultRecord>>,
    result_rows: usize,
    /// Per room. Invariant: every room here also has a buffered status in `rooms`.
    events: HashMap<String, Vec<OutboxEvent>>,
    event_rows: usize,
    /// Per room: its unflushed snapshot and the sequence number it was queued with.
    snapshots: HashMap<String, (u64, SnapshotRecord)>,
    /// Queue order of the snapshots, oldest first (the shedding order).
    order: BTreeMap<u64, String>,
    next_seq: u64,
    restore_seq: u64,
}

impl WriteBuffer {
    /// An empty buffer that holds at most `max_rows` snapshots (see the module doc).
    pub fn new(max_rows: usize) -> Self {
        Self {
            max_rows: max_rows.max(1),
            rooms: HashMap::new(),
            results: HashMap::new(),
            result_rows: 0,
            events: HashMap::new(),
            event_rows: 0,
            snapshots: HashMap::new(),
            order: BTreeMap::new(),
            next_seq: SEQ_START,
            restore_seq: SEQ_START,
        }
    }

    /// Rows buffered, over all tables.
    pub fn len(&self) -> usize {
        self.rooms.len() + self.result_rows + self.event_rows + self.snapshots.len()
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues a room's status; replaces an unflushed older status of the same room.
    pub fn push_room(&mut self, room: RoomRecord) {
        self.rooms.insert(room.room_id.clone(), room);
    }

    /// Queues a room's status together with webhook events reporting it (and the results they
    /// carry, if any): all of them are written in one batch. Each event must name `room`'s id.
    pub fn push_reported(
        &mut self,
        room: RoomRecord,
        results: impl IntoIterator<Item = ResultRecord>,
        events: impl IntoIterator<Item = OutboxEvent>,
    ) {
        let room_id = room.room_id.clone();
        self.push_room(room);
        self.push_results(results);
        for event in events {
            debug_assert_eq!(event.room_id, room_id);
            self.add_event(room_id.clone(), event);
        }
    }

    fn add_event(&mut self, room_id: String, event: OutboxEvent) {
        let queued = self.events.entry(room_id).or_default();
        if !queued.iter().any(|e| e.id == event.id) {
            queued.push(event);
            self.event_rows += 1;
        }
    }

    /// Queues results; each replaces an unflushed older result of the same player in the room.
    pub fn push_results(&mut self, results: impl IntoIterator<Item = ResultRecord>) {
        for r in results {
            let room = self.results.entry(r.room_id.clone()).or_default();
            if room.insert(r.player_id.clone(), r).is_none() {
                self.result_rows += 1;
            }
        }
    }

    /// Takes every buffered result of `room_id` into `batch`; returns how many.
    fn take_results_of(&mut self, room_id: &str, batch: &mut Batch) -> usize {
        let Some(results) = self.results.remove(room_id) else {
            return 0;
        };
        self.result_rows -= results.len();
        let n = results.len();
        batch.results.extend(results.into_values());
        n
    }

    /// Queues a snapshot, replacing the room's unflushed one. Returns the number of snapshots
    /// shed to stay within the bound.
    pub fn push_snapshot(&mut self, snapshot: SnapshotRecord) -> usize {
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Some((old_seq, _)) = self
            .snapshots
            .insert(snapshot.room_id.clone(), (seq, snapshot.clone()))
        {
            self.order.remove(&old_seq);
        }
        self.order.insert(seq, snapshot.room_id);
        self.shed()
    }

    /// Takes up to `max_rows` rows for one write: room statuses first (each with its room's
    /// results and events), then the results of other rooms (a room's results at once), then the
    /// snapshots that have waited longest.
    pub fn take(&mut self, max_rows: usize) -> Batch {
        let mut budget = max_rows.max(1);
        let mut batch = Batch::default();
        let room_ids: Vec<String> = self.rooms.keys().cloned().collect();
        for id in room_ids {
            if budget == 0 {
                break;
            }
            if let Some(r) = self.rooms.remove(&id) {
                batch.rooms.push(r);
                budget -= 1;
            }
            budget = budget.saturating_sub(self.take_results_of(&id, &mut batch));
            if let Some(events) = self.events.remove(&id) {
                self.event_rows -= events.len();
                budget = budget.saturating_sub(events.len());
                batch.events.extend(events);
            }
        }
        let result_rooms: Vec<String> = self.results.keys().cloned().collect();
        for id in result_rooms {
            if budget == 0 {
                break;
            }
            budget = budget.saturating_sub(self.take_results_of(&id, &mut batch));
        }
        while budget > 0 {
            let Some((_, room_id)) = self.order.pop_first() else {
                break;
            };
            if let Some((_, s)) = self.snapshots.remove(&room_id) {
                batch.snapshots.push(s);
                budget -= 1;
            }
        }
        batch
    }

    /// Puts back a batch whose write failed, behind nothing: anything queued since for the same
    /// room or player is newer and wins; the returned snapshots are the oldest again, so they are
    /// the first to be shed. Events go back with their room. Returns the number of snapshots shed
    /// to stay within the bound.
    pub fn restore(&mut self, batch: Batch) -> usize {
        for r in batch.rooms {
            self.rooms.entry(r.room_id.clone()).or_insert(r);
        }
        for r in batch.results {
            let room = self.results.entry(r.room_id.clone()).or_default();
            if let std::collections::hash_map::Entry::Vacant(slot) = room.entry(r.player_id.clone())
            {
                slot.insert(r);
                self.result_rows += 1;
            }
        }
        // A batch only holds events together with their room's status, which is back in `rooms`
        // now (or a newer status of the room is), so the invariant holds.
        for e in batch.events {
            self.add_event(e.room_id.clone(), e);
        }
        // Walk newest to oldest so that the oldest ends with the lowest sequence number.
        for s in batch.snapshots.into_iter().rev() {
            if self.snapshots.contains_key(&s.room_id) {
                continue;
            }
            self.restore_seq -= 1;
            let seq = self.restore_seq;
            self.order.insert(seq, s.room_id.clone());
            self.snapshots.insert(s.room_id.clone(), (seq, s));
        }
        self.shed()
    }

    /// Drops the snapshots that have waited longest until the buffer is within its bound, or no
    /// snapshot is left.
    fn shed(&mut self) -> usize {
        let mut shed = 0;
        while self.len() > self.max_rows {
            let Some((_, room_id)) = self.order.pop_first() else {
                break;
            };
            self.snapshots.remove(&room_id);
            shed += 1;
        }
        shed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RoomStatus;
    use time::OffsetDateTime;

    fn snap(room: &str, tick: u64) -> SnapshotRecord {
        SnapshotRecord {
            owner: Default::default(),
            room_id: room.into(),
            tick,
            state: vec![tick as u8],
            created_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn room(id: &str, status: RoomStatus) -> RoomRecord {
        RoomRecord {
            owner: Default::default(),
            room_id: id.into(),
            mode: "arena".into(),
            config: "{}".into(),
            status,
            created_at: OffsetDateTime::UNIX_EPOCH,
            closed_at: None,
        }
    }

    fn result(room: &str, player: &str, score: u32) -> ResultRecord {
        ResultRecord {
            room_id: room.into(),
            player_id: player.into(),
            score,
            rank: 1,
            finished_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn newer_snapshot_replaces_unflushed_one() {
        let mut b = WriteBuffer::new(100);
        b.push_snapshot(snap("a", 1));
        b.push_snapshot(snap("b", 1));
        b.push_snapshot(snap("a", 2));
        assert_eq!(b.len(), 2);
        let batch = b.take(10);
        assert!(b.is_empty());
        // "a" was re-queued last, so it now comes after "b".
        let ticks: Vec<_> = batch
            .snapshots
            .iter()
            .map(|s| (s.room_id.as_str(), s.tick))
            .collect();
        assert_eq!(ticks, vec![("b", 1), ("a", 2)]);
    }

    #[test]
    fn sheds_oldest_snapshots_never_rooms_or_results() {
        let mut b = WriteBuffer::new(3);
        b.push_room(room("r", RoomStatus::Open));
        b.push_results([result("r", "p1", 1), result("r", "p2", 2)]);
        assert_eq!(
            b.push_snapshot(snap("a", 1)),
            1,
            "over the bound: a is shed"
        );
        assert_eq!(b.len(), 3);
        b.push_results([result("r", "p3", 3)]);
        assert_eq!(b.len(), 4, "results are kept even over the bound");
        assert_eq!(b.push_snapshot(snap("b", 1)), 1);
        let batch = b.take(100);
        assert_eq!(batch.rooms.len(), 1);
        assert_eq!(batch.results.len(), 3);
        assert!(batch.snapshots.is_empty());
    }

    #[test]
    fn sheds_in_queue_order() {
        let mut b = WriteBuffer::new(2);
        b.push_snapshot(snap("a", 1));
        b.push_snapshot(snap("b", 1));
        b.push_snapshot(snap("a", 2)); // a is now the newest
        assert_eq!(b.push_snapshot(snap("c", 1)), 1);
        let rooms: Vec<_> = b
            .take(10)
            .snapshots
            .into_iter()
            .map(|s| s.room_id)
            .collect();
        assert_eq!(rooms, vec!["a", "c"]);
    }

    #[test]
    fn take_respects_the_row_budget_and_priorities() {
        let mut b = WriteBuffer::new(100);
        for i in 0..5 {
            b.push_snapshot(snap(&format!("s{i}"), 1));
        }
        b.push_room(room("r", RoomStatus::Closed));
        b.push_results([result("r", "p", 1)]);
        let first = b.take(3);
        assert_eq!(
            (
                first.rooms.len(),
                first.results.len(),
                first.snapshots.len()
            ),
            (1, 1, 1)
        );
        assert_eq!(first.snapshots[0].room_id, "s0");
        assert_eq!(b.len(), 4);
        let second = b.take(10);
        assert_eq!(second.snapshots.len(), 4);
        assert!(b.is_empty());
    }

    #[test]
    fn restore_keeps_newer_data_and_puts_the_old_first() {
        let mut b = WriteBuffer::new(100);
        b.push_snapshot(snap("a", 1));
        b.push_snapshot(snap("b", 1));
        b.push_room(room("r", RoomStatus::Open));
        b.push_results([result("r", "p", 1)]);
        let failed = b.take(100);
        // While the write was failing, newer data arrived for a, r and p.
        b.push_snapshot(snap("a", 2));
        b.push_snapshot(snap("c", 1));
        b.push_room(room("r", RoomStatus::Closed));
        b.push_results([result("r", "p", 9)]);
        assert_eq!(b.restore(failed), 0);
        let batch = b.take(100);
        assert_eq!(batch.rooms, vec![room("r", RoomStatus::Closed)]);
        assert_eq!(batch.results[0].score, 9);
        let snaps: Vec<_> = batch
            .snapshots
            .iter()
            .map(|s| (s.room_id.as_str(), s.tick))
            .collect();
        assert_eq!(snaps, vec![("b", 1), ("a", 2), ("c", 1)]);
    }

    #[test]
    fn restore_sheds_the_restored_snapshots_first() {
        let mut b = WriteBuffer::new(2);
        b.push_snapshot(snap("a", 1));
        b.push_snapshot(snap("b", 1));
        let failed = b.take(100);
        b.push_snapshot(snap("c", 1));
        b.push_snapshot(snap("d", 1));
        assert_eq!(b.restore(failed), 2);
        let rooms: Vec<_> = b
            .take(10)
            .snapshots
            .into_iter()
            .map(|s| s.room_id)
            .collect();
        assert_eq!(rooms, vec!["c", "d"]);
    }

    fn event(room: &str, id: &str) -> OutboxEvent {
        OutboxEvent {
            id: id.into(),
            event_type: "room.closed".into(),
            payload: "{}".into(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            room_id: room.into(),
        }
    }

    #[test]
    fn events_are_taken_with_their_room_and_its_results_whatever_the_budget() {
        let mut b = WriteBuffer::new(100);
        b.push_snapshot(snap("s", 1));
        b.push_results([result("r", "p0", 1)]);
        b.push_reported(
            room("r", RoomStatus::Closed),
            [result("r", "p1", 1), result("r", "p2", 2)],
            [event("r", "e1"), event("r", "e2")],
        );
        assert_eq!(b.len(), 1 + 3 + 2 + 1);
        // A budget of one row still takes the room with all it reports.
        let first = b.take(1);
        assert_eq!(first.rooms.len(), 1);
        assert_eq!(first.results.len(), 3);
        let ids: Vec<_> = first.events.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, vec!["e1", "e2"]);
        assert!(first.snapshots.is_empty());
        assert_eq!(b.len(), 1);
        assert_eq!(b.take(10).snapshots.len(), 1);
        assert!(b.is_empty());
    }

    #[test]
    fn a_failed_batch_puts_its_events_back_once() {
        let mut b = WriteBuffer::new(100);
        b.push_reported(
            room("r", RoomStatus::Closed),
            [result("r", "p", 1)],
            [event("r", "e1")],
        );
        let failed = b.take(100);
        assert!(b.is_empty());
        // The same event queued again (it never is, but ids make it harmless) is kept once.
        b.push_reported(room("r", RoomStatus::Closed), [], [event("r", "e1")]);
        assert_eq!(b.restore(failed), 0);
        assert_eq!(b.len(), 3);
        let batch = b.take(100);
        assert_eq!(
            (batch.rooms.len(), batch.results.len(), batch.events.len()),
            (1, 1, 1)
        );
        assert!(b.is_empty());
    }

    #[test]
    fn events_are_never_shed() {
        let mut b = WriteBuffer::new(1);
        b.push_reported(room("r", RoomStatus::Closed), [], [event("r", "e")]);
        assert_eq!(b.push_snapshot(snap("a", 1)), 1);
        assert_eq!(b.take(10).events.len(), 1);
    }
}
