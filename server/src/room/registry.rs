//! The rooms of this process, shared by the HTTP handlers and the WebSocket upgrade.
//!
//! Not an actor: a `DashMap` of entries whose listing figures (mode, held slots, capacity, status)
//! live beside the room's address, so that listing rooms never waits on a room's mailbox. Seats are
//! reserved under the entry's own lock, so concurrent reservations can never overfill a room.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use dashmap::DashMap;
use game_core::PlayerId;
use time::OffsetDateTime;

use super::port::RoomPort;
use crate::domain::RoomId;
use crate::domain::RoomSettings;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomStatus {
    Open,
    Closed,
}

impl RoomStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SeatError {
    #[error("the room is full")]
    Full,
    #[error("the room is closed")]
    Closed,
}

#[derive(Debug)]
struct Reservation {
    player: PlayerId,
    nonce: [u8; 16],
    expires: Instant,
}

#[derive(Debug)]
struct Slots {
    status: RoomStatus,
    closed_at: Option<OffsetDateTime>,
    /// Players in the game: connected, or dropped and still within their resume grace.
    players: Vec<PlayerId>,
    /// Seats handed out as tickets and not yet used.
    reservations: Vec<Reservation>,
}

impl Slots {
    fn held(&self) -> usize {
        let mut held = self.players.len();
        for (i, r) in self.reservations.iter().enumerate() {
            let counted = self.players.contains(&r.player)
                || self.reservations[..i]
                    .iter()
                    .any(|earlier| earlier.player == r.player);
            if !counted {
                held += 1;
            }
        }
        held
    }
}

/// Which incarnation of this node holds the room and under which fencing number (cluster mode;
/// both 0 on a single node). Every write of the room carries the fence.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ownership {
    pub incarnation: i64,
    pub fence: i64,
}

/// What a room shares with the rest of the process.
#[derive(Debug)]
pub struct RoomShared {
    pub id: RoomId,
    pub mode: &'static str,
    pub settings: RoomSettings,
    pub created_at: OffsetDateTime,
    pub ownership: Ownership,
    slots: Mutex<Slots>,
}

/// A point-in-time view of a room for listings.
#[derive(Debug, Clone)]
pub struct RoomSummary {
    pub room_id: RoomId,
    pub mode: &'static str,
    pub players: usize,
    pub max_players: u32,
    pub tick_rate: u32,
    pub status: RoomStatus,
    pub created_at: OffsetDateTime,
    pub closed_at: Option<OffsetDateTime>,
}

impl RoomSummary {
    /// A matchmaker may seat a player here: the room is open and a slot is free.
    pub fn has_space(&self) -> bool {
        self.status == RoomStatus::Open && self.players < self.max_players as usize
    }
}

impl RoomShared {
    pub fn new(
        id: RoomId,
        mode: &'static str,
        settings: RoomSettings,
        created_at: OffsetDateTime,
    ) -> Self {
        Self {
            id,
            mode,
            settings,
            created_at,
            ownership: Ownership::default(),
            slots: Mutex::new(Slots {
                status: RoomStatus::Open,
                closed_at: None,
                players: Vec::new(),
                reservations: Vec::new(),
            }),
        }
    }

    pub fn owned(mut self, ownership: Ownership) -> Self {
        self.ownership = ownership;
        self
    }

    fn slots(&self) -> MutexGuard<'_, Slots> {
        // Every mutation under this lock is a single push, remove or assignment: still consistent
        // after a panic elsewhere.
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn summary(&self) -> RoomSummary {
        let slots = self.slots();
        RoomSummary {
            room_id: self.id.clone(),
            mode: self.mode,
            players: slots.held(),
            max_players: self.settings.max_players,
            tick_rate: self.settings.tick_rate,
            status: slots.status,
            created_at: self.created_at,
            closed_at: slots.closed_at,
        }
    }

    pub fn held(&self) -> usize {
        self.slots().held()
    }

    pub fn is_open(&self) -> bool {
        self.slots().status == RoomStatus::Open
    }

    /// Holds a seat for `player` until `expires`. A player who already holds a slot gets a ticket to
    /// it (to reconnect) without taking a second one.
    pub fn reserve(
        &self,
        player: &PlayerId,
        nonce: [u8; 16],
        expires: Instant,
    ) -> Result<(), SeatError> {
        let mut slots = self.slots();
        if slots.status != RoomStatus::Open {
            return Err(SeatError::Closed);
        }
        let already = slots.players.contains(player)
            || slots.reservations.iter().any(|r| &r.player == player);
        if !already && slots.held() >= self.settings.max_players as usize {
            return Err(SeatError::Full);
        }
        slots.reservations.push(Reservation {
            player: player.clone(),
            nonce,
            expires,
        });
        Ok(())
    }

    /// Turns a ticket's reservation into a player slot. False if the reservation is gone.
    pub fn claim(&self, player: &PlayerId, nonce: &[u8; 16]) -> bool {
        let mut slots = self.slots();
        if slots.status != RoomStatus::Open {
            return false;
        }
        let Some(position) = slots
            .reservations
            .iter()
            .position(|r| &r.nonce == nonce && &r.player == player)
        else {
            return false;
        };
        slots.reservations.swap_remove(position);
        if !slots.players.contains(player) {
            slots.players.push(player.clone());
        }
        true
    }

    /// Whether `player` holds a slot in the game (for resuming).
    pub fn holds(&self, player: &PlayerId) -> bool {
        let slots = self.slots();
        slots.status == RoomStatus::Open && slots.players.contains(player)
    }

    /// Whether `player` holds a slot or an unused reservation in this open room.
    pub fn has_player(&self, player: &PlayerId) -> bool {
        let slots = self.slots();
        slots.status == RoomStatus::Open
            && (slots.players.contains(player)
                || slots.reservations.iter().any(|r| &r.player == player))
    }

    /// Puts a player back without a reservation (restoring a room after a restart).
    pub fn seat_restored(&self, player: &PlayerId) {
        let mut slots = self.slots();
        if !slots.players.contains(player) {
            slots.players.push(player.clone());
        }
    }

    pub fn release(&self, player: &PlayerId) {
        self.slots().players.retain(|p| p != player);
    }

    /// Drops expired reservations; returns how many.
    pub fn purge_expired(&self, now: Instant) -> usize {
        let mut slots = self.slots();
        let before = slots.reservations.len();
        slots.reservations.retain(|r| r.expires > now);
        before - slots.reservations.len()
    }

    pub fn mark_closed(&self, at: OffsetDateTime) {
        let mut slots = self.slots();
        slots.status = RoomStatus::Closed;
        slots.closed_at.get_or_insert(at);
        slots.reservations.clear();
    }

    pub fn closed_at(&self) -> Option<OffsetDateTime> {
        self.slots().closed_at
    }
}

/// A room as the registry holds it: shared figures plus a way to reach its actor.
pub struct RoomEntry {
    pub shared: Arc<RoomShared>,
    pub port: Box<dyn RoomPort>,
}

impl std::fmt::Debug for RoomEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomEntry")
            .field("shared", &self.shared)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
pub struct RoomRegistry {
    rooms: DashMap<RoomId, Arc<RoomEntry>>,
}

impl RoomRegistry {
    pub fn insert(&self, entry: Arc<RoomEntry>) {
        self.rooms.insert(entry.shared.id.clone(), entry);
    }

    pub fn get(&self, id: &RoomId) -> Option<Arc<RoomEntry>> {
        self.rooms.get(id).map(|e| e.value().clone())
    }

    /// Forgets a room that moved to another node, if `shared` is still the entry of its id (a
    /// newer start of the same room, restored here again, is left alone).
    pub fn remove(&self, shared: &Arc<RoomShared>) {
        self.rooms
            .remove_if(&shared.id, |_, entry| Arc::ptr_eq(&entry.shared, shared));
    }

    pub fn entries(&self) -> Vec<Arc<RoomEntry>> {
        self.rooms.iter().map(|e| e.value().clone()).collect()
    }

    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    /// Forgets closed rooms older than the retention; returns how many.
    pub fn prune_closed(&self, closed_before: OffsetDateTime) -> usize {
        let before = self.rooms.len();
        self.rooms
            .retain(|_, entry| entry.shared.closed_at().is_none_or(|at| at > closed_before));
        before - self.rooms.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn room(max_players: u32) -> RoomShared {
        let settings = RoomSettings {
            max_players,
            ..RoomSettings::default()
        };
        RoomShared::new(
            RoomId::generate(),
            "arena",
            settings,
            OffsetDateTime::UNIX_EPOCH,
        )
    }

    fn id(s: &str) -> PlayerId {
        PlayerId::parse(s).unwrap()
    }

    #[test]
    fn reservations_count_until_claimed_or_expired_and_never_overfill() {
        let room = room(2);
        let later = Instant::now() + Duration::from_secs(30);
        room.reserve(&id("a"), [1; 16], later).unwrap();
        room.reserve(&id("b"), [2; 16], later).unwrap();
        assert_eq!(room.reserve(&id("c"), [3; 16], later), Err(SeatError::Full));
        // A second ticket for a player who already holds a seat takes no new slot.
        room.reserve(&id("a"), [4; 16], later).unwrap();
        assert_eq!(room.held(), 2);
        assert!(room.claim(&id("a"), &[1; 16]));
        assert!(
            !room.claim(&id("a"), &[1; 16]),
            "a reservation is claimed once"
        );
        assert!(!room.claim(&id("b"), &[9; 16]), "wrong nonce");
        assert_eq!(room.held(), 2);
        assert_eq!(room.purge_expired(later + Duration::from_secs(1)), 2);
        assert_eq!(room.held(), 1);
        room.release(&id("a"));
        assert_eq!(room.held(), 0);
        room.mark_closed(OffsetDateTime::UNIX_EPOCH);
        assert_eq!(
            room.reserve(&id("c"), [5; 16], later),
            Err(SeatError::Closed)
        );
    }
}
