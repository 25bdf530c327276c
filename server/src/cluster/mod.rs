//! Cluster mode: equal nodes on one PostgreSQL, which is the room directory and the only
//! coordination service (docs/adr/0007-cluster.md).
//!
//! - [`LeaseClock`]: how long this node may still tick the rooms it owns. Rooms check it at every
//!   tick, so a node cut off from the database stops on its own, before the database lets another
//!   node claim its rooms.
//! - [`Cluster`]: the node's registration, the keeper task (heartbeat, lease renewal, claiming the
//!   rooms of dead or draining nodes), the drain, and calls to other nodes ([`forward`]).

pub mod forward;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use persistence::Storage;
use persistence::cluster::{NodeLease, NodeLoad};
use tracing::{Instrument, error, info, info_span, warn};

use crate::error_chain::ErrorChain;
use crate::modes::Modes;
use crate::persistence_link::PersistenceLink;
use crate::room::RoomEnv;
use crate::room::messages::CloseKind;
use crate::room::registry::{Ownership, RoomRegistry};

/// How long this node's lease holds, as its own monotonic clock sees it.
///
/// A renewal sent at `t` holds locally until `t + ttl - margin`; the database keeps it until at
/// least `t + ttl` (it stamps `now() + ttl` when the statement runs, after `t`). The margin covers
/// a tick in progress and clock-rate differences, so the local end always comes first.
#[derive(Debug)]
pub struct LeaseClock {
    base: Instant,
    incarnation: AtomicI64,
    /// Nanoseconds after `base` until which the lease holds; 0: it does not.
    until_ns: AtomicU64,
}

impl Default for LeaseClock {
    fn default() -> Self {
        Self {
            base: Instant::now(),
            incarnation: AtomicI64::new(0),
            until_ns: AtomicU64::new(0),
        }
    }
}

impl LeaseClock {
    /// Whether rooms owned under `incarnation` may still tick at `now`.
    pub fn holds(&self, incarnation: i64, now: Instant) -> bool {
        self.incarnation.load(Ordering::Acquire) == incarnation
            && nanos(now.saturating_duration_since(self.base))
                < self.until_ns.load(Ordering::Acquire)
    }

    fn renew(&self, incarnation: i64, until: Instant) {
        self.incarnation.store(incarnation, Ordering::Release);
        self.until_ns.store(
            nanos(until.saturating_duration_since(self.base)),
            Ordering::Release,
        );
    }

    fn revoke(&self) {
        self.until_ns.store(0, Ordering::Release);
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// What the keeper needs to bring claimed rooms back.
#[derive(Clone)]
pub struct RoomHost {
    pub registry: Arc<RoomRegistry>,
    pub modes: Arc<Modes>,
    pub env: Arc<RoomEnv>,
    pub store: Arc<PersistenceLink>,
}

impl RoomHost {
    fn open_rooms(&self) -> Vec<Arc<crate::room::registry::RoomEntry>> {
        self.registry
            .entries()
            .into_iter()
            .filter(|entry| entry.shared.is_open())
            .collect()
    }
}

/// This node's membership of the cluster.
pub struct Cluster {
    pub node_id: String,
    /// The `ws://host:port` base clients and the other nodes reach this node at.
    pub public_url: String,
    ttl: Duration,
    storage: Storage,
    pub clock: Arc<LeaseClock>,
    /// The current incarnation; none after a lost lease, until registered again.
    lease: Mutex<Option<NodeLease>>,
    draining: AtomicBool,
    stopped: AtomicBool,
    /// The drain has released this node's rooms: their clock is never renewed again.
    released: AtomicBool,
    /// A takeover is running: the next one waits (restoring many rooms must not delay heartbeats).
    taking_over: AtomicBool,
    http: reqwest::Client,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node_id", &self.node_id)
            .field("lease", &self.lease())
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Registers this node (a new incarnation) and starts its lease.
    pub async fn join(
        storage: Storage,
        node_id: String,
        public_url: String,
        ttl: Duration,
    ) -> Result<Arc<Self>, persistence::StorageError> {
        let clock = Arc::new(LeaseClock::default());
        // A previous process with this node_id may still hold a live lease (a restart right after
        // a crash, or two processes given one id): its rooms are not ours to take until it expires.
        let mut waited = false;
        let (lease, sent) = loop {
            let sent = Instant::now();
            if let Some(lease) = storage.register_node(&node_id, &public_url, ttl).await? {
                break (lease, sent);
            }
            if !waited {
                warn!(node_id = %node_id, "this node_id holds a live lease; waiting for it to expire");
                waited = true;
            }
            actix_rt::time::sleep(ttl / 10).await;
        };
        clock.renew(lease.incarnation, sent + Self::local_validity(ttl));
        info!(node_id = %node_id, incarnation = lease.incarnation, %public_url, "joined the cluster");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Ok(Arc::new(Self {
            node_id,
            public_url,
            ttl,
            storage,
            clock,
            lease: Mutex::new(Some(lease)),
            draining: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            released: AtomicBool::new(false),
            taking_over: AtomicBool::new(false),
            http,
        }))
    }

    /// The lease minus the safety margin (a fifth of it).
    fn local_validity(ttl: Duration) -> Duration {
        ttl - ttl / 5
    }

    /// The current incarnation, if the lease holds.
    pub fn lease(&self) -> Option<NodeLease> {
        self.lease.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The ownership a room created now gets (fence 1), if this node may own rooms.
    pub fn ownership_for_new_room(&self) -> Option<(NodeLease, Ownership)> {
        let lease = self.lease()?;
        if self.is_draining() || !self.clock.holds(lease.incarnation, Instant::now()) {
            return None;
        }
        let ownership = Ownership {
            incarnation: lease.incarnation,
            fence: 1,
        };
        Some((lease, ownership))
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Heartbeats every fifth of the TTL; after each renewal, claims a share of the rooms that
    /// have no live owner.
    pub fn spawn_keeper(self: &Arc<Self>, host: RoomHost) {
        let cluster = self.clone();
        actix_rt::spawn(async move {
            let every = cluster.ttl / 5;
            while !cluster.stopped.load(Ordering::Acquire) {
                cluster.keep_once(&host, every).await;
                actix_rt::time::sleep(every).await;
            }
        });
    }

    async fn keep_once(self: &Arc<Self>, host: &RoomHost, timeout: Duration) {
        let Some(lease) = self.lease() else {
            self.register_again(timeout).await;
            return;
        };
        let sent = Instant::now();
        let load = Self::load(&host.registry);
        let rooms_owned = load.room_players.len();
        let renewal =
            tokio::time::timeout(timeout, self.storage.heartbeat(&lease, self.ttl, &load)).await;
        match renewal {
            Ok(Ok(true)) => {
                // Renewed in the database, but too late for this node's own clock: its rooms have
                // stopped already, and must be claimable, not left with a live owner that runs
                // none of them.
                if !self.clock.holds(lease.incarnation, Instant::now()) {
                    self.lose(host, "the renewal came after the lease's local end");
                    return;
                }
                if !self.renew_clock(&lease, sent) {
                    // Released by the drain: the row stays alive (locate answers from it), the
                    // rooms' clock does not.
                    return;
                }
                if !self.is_draining() && !self.taking_over.swap(true, Ordering::AcqRel) {
                    let (cluster, host) = (self.clone(), host.clone());
                    actix_rt::spawn(async move {
                        cluster.take_over(&host, &lease, rooms_owned).await;
                        cluster.taking_over.store(false, Ordering::Release);
                    });
                }
            }
            Ok(Ok(false)) => self.lose(host, "the lease had expired before it was renewed"),
            Ok(Err(error)) => {
                warn!(error = %ErrorChain(&error), "heartbeat failed");
                if !self.clock.holds(lease.incarnation, Instant::now()) {
                    self.lose(host, "heartbeats failed for longer than the lease");
                }
            }
            Err(_) => {
                warn!("heartbeat timed out");
                if !self.clock.holds(lease.incarnation, Instant::now()) {
                    self.lose(host, "heartbeats timed out for longer than the lease");
                }
            }
        }
    }

    fn load(registry: &RoomRegistry) -> NodeLoad {
        let mut load = NodeLoad::default();
        for entry in registry.entries() {
            if entry.shared.is_open() {
                let held = entry.shared.held() as i64;
                load.players += held;
                load.room_players.push((entry.shared.id.to_string(), held));
            }
        }
        load.rooms = load.room_players.len() as i64;
        load
    }

    /// The lease is gone: every room stops here (sessions get 4005 and ask where the room went),
    /// and the node registers again as a new incarnation when the database answers.
    fn lose(&self, host: &RoomHost, why: &str) {
        self.clock.revoke();
        *self.lease.lock().unwrap_or_else(|p| p.into_inner()) = None;
        crate::metrics::lease_lost();
        let rooms = host.open_rooms();
        error!(node_id = %self.node_id, rooms = rooms.len(), reason = why, "lease lost: this node's rooms stop here");
        for entry in rooms {
            actix_rt::spawn(entry.port.close(CloseKind::LeaseLost));
        }
    }

    /// Extends the rooms' clock after a renewal sent at `sent`, unless the drain has released the
    /// rooms (checked under the lease's lock, which the drain holds while it revokes).
    fn renew_clock(&self, lease: &NodeLease, sent: Instant) -> bool {
        let current = self.lease.lock().unwrap_or_else(|p| p.into_inner());
        if self.released.load(Ordering::Acquire) || current.as_ref() != Some(lease) {
            return false;
        }
        self.clock
            .renew(lease.incarnation, sent + Self::local_validity(self.ttl));
        true
    }

    async fn register_again(&self, timeout: Duration) {
        // A draining node never comes back as a fresh one: it is leaving.
        if self.stopped.load(Ordering::Acquire) || self.is_draining() {
            return;
        }
        let sent = Instant::now();
        let registered = tokio::time::timeout(
            timeout,
            self.storage
                .register_node(&self.node_id, &self.public_url, self.ttl),
        )
        .await;
        // `None`: the previous incarnation's row has not expired in the database yet.
        if let Ok(Ok(Some(lease))) = registered {
            self.clock
                .renew(lease.incarnation, sent + Self::local_validity(self.ttl));
            info!(node_id = %self.node_id, incarnation = lease.incarnation, "registered again after a lost lease");
            *self.lease.lock().unwrap_or_else(|p| p.into_inner()) = Some(lease);
        }
    }

    /// Claims this node's share of the rooms without a live owner and restores each from its
    /// newest snapshot.
    async fn take_over(&self, host: &RoomHost, lease: &NodeLease, rooms_owned: usize) {
        let (orphans, nodes) = match self.storage.orphans_and_nodes().await {
            Ok(counts) => counts,
            Err(error) => {
                warn!(error = %ErrorChain(&error), "counting rooms without an owner failed");
                return;
            }
        };
        crate::metrics::lease_renewed(nodes, rooms_owned);
        if orphans == 0 {
            return;
        }
        let share = (orphans + nodes.max(1) - 1) / nodes.max(1);
        let claimed = match self.storage.claim_orphans(lease, share).await {
            Ok(claimed) => claimed,
            Err(error) => {
                warn!(error = %ErrorChain(&error), "claiming rooms failed");
                return;
            }
        };
        for room in claimed {
            if self.is_draining() {
                // Claimed but not started: the drain releases it with the others.
                continue;
            }
            let ownership = Ownership {
                incarnation: lease.incarnation,
                fence: room.record.owner.fence,
            };
            let kind = if room.released { "handoff" } else { "failover" };
            let span = info_span!("room.takeover", room_id = %room.record.room_id, kind);
            let restored = crate::startup::restore_room(
                &self.storage,
                &host.modes,
                &host.env,
                &room.record,
                ownership,
            )
            .instrument(span)
            .await;
            match restored {
                Ok(snapshot) => {
                    crate::metrics::room_taken_over(room.released, room.orphaned_for);
                    // A handoff's final snapshot is its last tick; a dead owner ran on for at most
                    // the time between this snapshot and its lease's end.
                    let ticks_lost = if room.released {
                        0
                    } else {
                        let orphaned_at = time::OffsetDateTime::now_utc() - room.orphaned_for;
                        let ran_on = (orphaned_at - snapshot.created_at)
                            .as_seconds_f64()
                            .max(0.0);
                        (ran_on * f64::from(snapshot.tick_rate)).round() as u64
                    };
                    info!(
                        room_id = %room.record.room_id,
                        kind,
                        from = room.from.as_deref().unwrap_or("-"),
                        to = %self.node_id,
                        tick = snapshot.tick,
                        ticks_lost,
                        orphaned_ms = room.orphaned_for.as_millis() as u64,
                        "room {kind}"
                    );
                }
                Err(reason) => {
                    warn!(room_id = %room.record.room_id, %reason, "claimed room could not be restored; closing it");
                    host.store.close_unrestorable(room.record);
                }
            }
        }
    }

    /// SIGTERM in cluster mode: hand every room to the other nodes. Placement skips this node;
    /// each room takes a final snapshot and closes its sessions with 4005; once the snapshots are
    /// committed the rooms are released, and the node waits (at most one TTL) until others have
    /// claimed them, so `GET /v1/locate` on any node already points at the new owner.
    pub async fn drain(&self, host: &RoomHost) {
        let started = Instant::now();
        self.draining.store(true, Ordering::Release);
        let Some(lease) = self.lease() else {
            self.stopped.store(true, Ordering::Release);
            return;
        };
        if let Err(error) = self.storage.set_draining(&lease).await {
            warn!(error = %ErrorChain(&error), "marking the node draining failed");
        }
        // A takeover under way finishes first, so that every room it starts is handed off too.
        while self.taking_over.load(Ordering::Acquire) {
            actix_rt::time::sleep(Duration::from_millis(10)).await;
        }
        let rooms = host.open_rooms();
        let ids: Vec<String> = rooms.iter().map(|e| e.shared.id.to_string()).collect();
        let handed_off = ids.len();
        futures_util::future::join_all(rooms.iter().map(|e| e.port.close(CloseKind::Handoff)))
            .await;
        if let Err(error) = host.store.flush().await {
            error!(error = %ErrorChain(&error), "final flush before the handoff failed; the rooms resume from older snapshots");
        }
        // From here no room of this node may tick (one created during the drain stops at its next
        // tick, with 4005): released rooms can be claimed at once. Under the lease's lock, so that
        // a renewal in flight cannot extend the clock again.
        {
            let _lease = self.lease.lock().unwrap_or_else(|p| p.into_inner());
            self.released.store(true, Ordering::Release);
            self.clock.revoke();
        }
        match self.storage.release_rooms(&lease).await {
            Ok(released) => info!(released, "rooms released to the cluster"),
            Err(error) => {
                warn!(error = %ErrorChain(&error), "releasing the rooms failed; they move when the lease expires");
            }
        }
        let deadline = Instant::now() + self.ttl;
        let mut waiting = ids;
        while !waiting.is_empty() && Instant::now() < deadline {
            let mut still = Vec::new();
            for id in waiting {
                match self.storage.locate_room(&id).await {
                    Ok(Some(room))
                        if room.record.status == persistence::RoomStatus::Open
                            && room
                                .live_owner
                                .as_ref()
                                .is_none_or(|(node, _)| node == &self.node_id) =>
                    {
                        still.push(id)
                    }
                    _ => {}
                }
            }
            waiting = still;
            if !waiting.is_empty() {
                actix_rt::time::sleep(Duration::from_millis(50)).await;
            }
        }
        self.stopped.store(true, Ordering::Release);
        if let Err(error) = self.storage.deregister(&lease).await {
            warn!(error = %ErrorChain(&error), "leaving the registry failed; the node expires with its TTL");
        }
        self.clock.revoke();
        info!(
            node_id = %self.node_id,
            handed_off,
            unclaimed = waiting.len(),
            drain_ms = started.elapsed().as_millis() as u64,
            "drained"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lease_holds_until_its_local_end_and_only_for_its_incarnation() {
        let clock = LeaseClock::default();
        let now = Instant::now();
        assert!(!clock.holds(0, now), "no lease before the first renewal");
        clock.renew(3, now + Duration::from_millis(800));
        assert!(clock.holds(3, now));
        assert!(clock.holds(3, now + Duration::from_millis(799)));
        assert!(!clock.holds(3, now + Duration::from_millis(800)));
        assert!(
            !clock.holds(2, now),
            "rooms of an earlier incarnation are not ours"
        );
        clock.revoke();
        assert!(!clock.holds(3, now));
    }

    #[test]
    fn the_local_end_comes_a_fifth_of_the_ttl_before_the_database_expiry() {
        assert_eq!(
            Cluster::local_validity(Duration::from_secs(5)),
            Duration::from_secs(4)
        );
    }
}
