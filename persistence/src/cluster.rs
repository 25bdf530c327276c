//! Cluster mode (PostgreSQL only): the node registry, room ownership with leases and fencing
//! numbers, and the directory every node answers from.
//!
//! A node's lease on all its rooms is its `nodes` row: `expires_at` (the database's clock) is
//! pushed forward by each heartbeat and only while it has not passed, so an expired node can never
//! renew; it registers again as a new incarnation. A room belongs to one incarnation of one node
//! (`owner_node`, `owner_incarnation`); it can be claimed only when that incarnation is not live,
//! and each claim bumps the room's `fence`. Writes carry the fence they were made under: a status
//! change with an old fence changes nothing and a snapshot with an old fence is skipped by a
//! trigger (see the `cluster` migration).

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseBackend, QueryResult, Statement, TransactionTrait, Value};
use time::OffsetDateTime;

use crate::records::db_time;
use crate::{Owner, RoomRecord, RoomStatus, Storage, StorageError};

/// An incarnation of a node: what its rooms are owned by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeLease {
    pub node_id: String,
    pub incarnation: i64,
}

/// A live node as the registry shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub node_id: String,
    pub public_url: String,
    pub draining: bool,
    pub rooms: i64,
    pub players: i64,
}

/// A room as the directory knows it: its stored record, the held slots its owner last published,
/// and its live owner, if it has one.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomLocation {
    pub record: RoomRecord,
    pub players: i64,
    /// `(node_id, public_url)` of the live owner; none while the room waits to be claimed.
    pub live_owner: Option<(String, String)>,
    /// The live owner is draining: the room is about to move.
    pub owner_draining: bool,
}

/// A room this node has just claimed.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedRoom {
    /// The record with this node as the owner and the new fencing number.
    pub record: RoomRecord,
    /// The previous owner, if any.
    pub from: Option<String>,
    /// True when the previous owner released it (drain); false when it died.
    pub released: bool,
    /// How long the room had no live owner.
    pub orphaned_for: Duration,
}

/// Load figures a heartbeat publishes.
#[derive(Debug, Clone, Default)]
pub struct NodeLoad {
    pub rooms: i64,
    pub players: i64,
    /// `(room_id, held slots)` of each open room this node owns.
    pub room_players: Vec<(String, i64)>,
}

const LIVE_OWNER: &str = "EXISTS (SELECT 1 FROM nodes l WHERE l.node_id = r.owner_node \
     AND l.incarnation = r.owner_incarnation AND l.expires_at > now())";

/// Advisory-lock key that serialises migrations of nodes starting together.
const MIGRATION_LOCK: i64 = 0x736b_6972_6d69;

fn stmt(sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(DatabaseBackend::Postgres, sql, values)
}

fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl Storage {
    /// Applies the pending migrations while holding a PostgreSQL advisory lock, on one dedicated
    /// connection, so that nodes starting together on an empty database migrate one at a time.
    pub async fn migrate_serialized(url: &str) -> Result<(), StorageError> {
        use migrations::MigratorTrait;
        let mut options = sea_orm::ConnectOptions::new(url.to_owned());
        options
            .max_connections(1)
            .min_connections(1)
            .sqlx_logging(false);
        let db = sea_orm::Database::connect(options)
            .await
            .map_err(|source| StorageError::Connect {
                url: crate::redact_url(url),
                source,
            })?;
        db.execute(stmt(
            "SELECT pg_advisory_lock($1)",
            vec![MIGRATION_LOCK.into()],
        ))
        .await?;
        let migrated = migrations::Migrator::up(&db, None)
            .await
            .map_err(StorageError::Migrate);
        // Closing the connection releases the lock too; unlock first so the next node goes on.
        let _ = db
            .execute(stmt(
                "SELECT pg_advisory_unlock($1)",
                vec![MIGRATION_LOCK.into()],
            ))
            .await;
        let _ = db.close().await;
        migrated
    }

    /// Registers `node_id` as a new incarnation, live for `ttl`; rooms owned by an earlier
    /// incarnation become claimable (by anyone, this node included). `None` while an earlier
    /// incarnation's lease is still live: taking its row then would let its rooms be claimed while
    /// it may still tick them.
    pub async fn register_node(
        &self,
        node_id: &str,
        public_url: &str,
        ttl: Duration,
    ) -> Result<Option<NodeLease>, StorageError> {
        let row = self
            .db
            .query_one(stmt(
                "INSERT INTO nodes (node_id, incarnation, public_url, draining, rooms, players, \
                     started_at, heartbeat_at, expires_at) \
                 VALUES ($1, 1, $2, false, 0, 0, now(), now(), now() + $3 * interval '1 millisecond') \
                 ON CONFLICT (node_id) DO UPDATE SET incarnation = nodes.incarnation + 1, \
                     public_url = excluded.public_url, draining = false, rooms = 0, players = 0, \
                     started_at = now(), heartbeat_at = now(), expires_at = excluded.expires_at \
                 WHERE nodes.expires_at <= now() \
                 RETURNING incarnation",
                vec![node_id.into(), public_url.into(), ms(ttl).into()],
            ))
            .await?;
        row.map(|row| {
            Ok(NodeLease {
                node_id: node_id.to_owned(),
                incarnation: row.try_get("", "incarnation")?,
            })
        })
        .transpose()
    }

    /// Renews the lease for `ttl` and publishes the load. False when the lease had already
    /// expired: then nothing is renewed, and the node must consider its rooms lost.
    pub async fn heartbeat(
        &self,
        lease: &NodeLease,
        ttl: Duration,
        load: &NodeLoad,
    ) -> Result<bool, StorageError> {
        let txn = self.db.begin().await?;
        let renewed = txn
            .execute(stmt(
                "UPDATE nodes SET expires_at = now() + $3 * interval '1 millisecond', \
                     heartbeat_at = now(), rooms = $4, players = $5 \
                 WHERE node_id = $1 AND incarnation = $2 AND expires_at > now()",
                vec![
                    lease.node_id.clone().into(),
                    lease.incarnation.into(),
                    ms(ttl).into(),
                    load.rooms.into(),
                    load.players.into(),
                ],
            ))
            .await?
            .rows_affected();
        if renewed == 0 {
            txn.rollback().await?;
            return Ok(false);
        }
        for chunk in load.room_players.chunks(500) {
            let mut values: Vec<Value> =
                vec![lease.node_id.clone().into(), lease.incarnation.into()];
            let mut rows = Vec::with_capacity(chunk.len());
            for (room_id, players) in chunk {
                let n = values.len();
                rows.push(format!("(${}, ${}::bigint)", n + 1, n + 2));
                values.push(room_id.clone().into());
                values.push((*players).into());
            }
            let sql = format!(
                "UPDATE rooms SET players = f.players FROM (VALUES {}) AS f(id, players) \
                 WHERE rooms.id = f.id AND rooms.owner_node = $1 AND rooms.owner_incarnation = $2",
                rows.join(", ")
            );
            txn.execute(stmt(&sql, values)).await?;
        }
        txn.commit().await?;
        Ok(true)
    }

    /// Marks the node as draining: placement skips it.
    pub async fn set_draining(&self, lease: &NodeLease) -> Result<(), StorageError> {
        self.db
            .execute(stmt(
                "UPDATE nodes SET draining = true WHERE node_id = $1 AND incarnation = $2",
                vec![lease.node_id.clone().into(), lease.incarnation.into()],
            ))
            .await?;
        Ok(())
    }

    /// Gives up every open room of this incarnation (after their final snapshots are committed):
    /// other nodes may claim them at once. Returns how many.
    pub async fn release_rooms(&self, lease: &NodeLease) -> Result<u64, StorageError> {
        Ok(self
            .db
            .execute(stmt(
                "UPDATE rooms SET owner_incarnation = NULL, orphaned_at = now() \
                 WHERE owner_node = $1 AND owner_incarnation = $2 AND status = 'open'",
                vec![lease.node_id.clone().into(), lease.incarnation.into()],
            ))
            .await?
            .rows_affected())
    }

    /// The node leaves: it is dead from now on.
    pub async fn deregister(&self, lease: &NodeLease) -> Result<(), StorageError> {
        self.db
            .execute(stmt(
                "UPDATE nodes SET expires_at = now(), draining = true \
                 WHERE node_id = $1 AND incarnation = $2",
                vec![lease.node_id.clone().into(), lease.incarnation.into()],
            ))
            .await?;
        Ok(())
    }

    /// Every live node, least loaded first (players, then rooms, then id).
    pub async fn live_nodes(&self) -> Result<Vec<NodeInfo>, StorageError> {
        let rows = self
            .db
            .query_all(stmt(
                "SELECT node_id, public_url, draining, rooms, players FROM nodes \
                 WHERE expires_at > now() ORDER BY players, rooms, node_id",
                vec![],
            ))
            .await?;
        rows.iter()
            .map(|row| {
                Ok(NodeInfo {
                    node_id: row.try_get("", "node_id")?,
                    public_url: row.try_get("", "public_url")?,
                    draining: row.try_get("", "draining")?,
                    rooms: row.try_get("", "rooms")?,
                    players: row.try_get("", "players")?,
                })
            })
            .collect()
    }

    /// Stores a new room owned by `lease` with fencing number 1, before anyone is told of it.
    pub async fn insert_owned_room(
        &self,
        record: &RoomRecord,
        lease: &NodeLease,
    ) -> Result<(), StorageError> {
        let txn = self.db.begin().await?;
        txn.execute(stmt(
            "INSERT INTO rooms (id, mode, config, status, created_at, owner_node, \
                 owner_incarnation, fence, players) \
             VALUES ($1, $2, $3, 'open', $4, $5, $6, 1, 0)",
            vec![
                record.room_id.clone().into(),
                record.mode.clone().into(),
                record.config.clone().into(),
                db_time(record.created_at).into(),
                lease.node_id.clone().into(),
                lease.incarnation.into(),
            ],
        ))
        .await?;
        // Placement sees the new room before the next heartbeat.
        txn.execute(stmt(
            "UPDATE nodes SET rooms = rooms + 1 WHERE node_id = $1 AND incarnation = $2",
            vec![lease.node_id.clone().into(), lease.incarnation.into()],
        ))
        .await?;
        txn.commit().await?;
        Ok(())
    }

    /// Where a room is: its record, published figures and live owner. None if never stored.
    pub async fn locate_room(&self, room_id: &str) -> Result<Option<RoomLocation>, StorageError> {
        let row = self
            .db
            .query_one(stmt(
                &format!("{LOCATION_SELECT} WHERE r.id = $1"),
                vec![room_id.into()],
            ))
            .await?;
        row.as_ref().map(location).transpose()
    }

    /// The rooms of the whole cluster: open ones, and closed ones closed after `closed_since`.
    pub async fn cluster_rooms(
        &self,
        closed_since: OffsetDateTime,
    ) -> Result<Vec<RoomLocation>, StorageError> {
        let rows = self
            .db
            .query_all(stmt(
                &format!(
                    "{LOCATION_SELECT} WHERE r.status = 'open' OR r.closed_at > $1 \
                     ORDER BY r.created_at, r.id"
                ),
                vec![db_time(closed_since).into()],
            ))
            .await?;
        rows.iter().map(location).collect()
    }

    /// Open rooms of `mode` owned by other live, non-draining nodes, fullest first (as published).
    pub async fn remote_rooms_of_mode(
        &self,
        mode: &str,
        me: &str,
    ) -> Result<Vec<RoomLocation>, StorageError> {
        let rows = self
            .db
            .query_all(stmt(
                &format!(
                    "{LOCATION_SELECT} WHERE r.status = 'open' AND r.mode = $1 \
                     AND n.node_id <> $2 AND NOT n.draining \
                     ORDER BY r.players DESC, r.created_at LIMIT 64"
                ),
                vec![mode.into(), me.into()],
            ))
            .await?;
        rows.iter().map(location).collect()
    }

    /// How many open rooms have no live owner, and how many nodes are live.
    pub async fn orphans_and_nodes(&self) -> Result<(i64, i64), StorageError> {
        let row = self
            .db
            .query_one(stmt(
                &format!(
                    "SELECT (SELECT count(*) FROM rooms r WHERE r.status = 'open' AND NOT {LIVE_OWNER}) \
                         AS orphans, \
                     (SELECT count(*) FROM nodes WHERE expires_at > now()) AS nodes"
                ),
                vec![],
            ))
            .await?
            .ok_or_else(|| StorageError::Corrupt("count returned no row".into()))?;
        Ok((row.try_get("", "orphans")?, row.try_get("", "nodes")?))
    }

    /// Claims up to `limit` open rooms that have no live owner, for `lease` (which must be live),
    /// bumping each one's fencing number. Rooms another node is claiming at the same moment are
    /// skipped (`FOR UPDATE SKIP LOCKED`).
    pub async fn claim_orphans(
        &self,
        lease: &NodeLease,
        limit: i64,
    ) -> Result<Vec<ClaimedRoom>, StorageError> {
        let sql = format!(
            "WITH c AS ( \
                SELECT r.id, r.owner_node AS old_owner, r.orphaned_at IS NOT NULL AS released, \
                    GREATEST(0, EXTRACT(EPOCH FROM now() - COALESCE(r.orphaned_at, \
                        (SELECT d.expires_at FROM nodes d WHERE d.node_id = r.owner_node), now())) \
                        * 1000)::bigint AS orphaned_ms \
                FROM rooms r \
                WHERE r.status = 'open' AND NOT {LIVE_OWNER} \
                  AND EXISTS (SELECT 1 FROM nodes me WHERE me.node_id = $1 \
                      AND me.incarnation = $2 AND me.expires_at > now()) \
                ORDER BY r.created_at, r.id LIMIT $3 \
                FOR UPDATE OF r SKIP LOCKED) \
             UPDATE rooms SET owner_node = $1, owner_incarnation = $2, fence = rooms.fence + 1, \
                 orphaned_at = NULL \
             FROM c WHERE rooms.id = c.id \
             RETURNING rooms.id, rooms.mode, rooms.config, rooms.status, rooms.created_at, \
                 rooms.closed_at, rooms.fence, c.old_owner, c.released, c.orphaned_ms"
        );
        let rows = self
            .db
            .query_all(stmt(
                &sql,
                vec![
                    lease.node_id.clone().into(),
                    lease.incarnation.into(),
                    limit.into(),
                ],
            ))
            .await?;
        rows.iter()
            .map(|row| {
                let orphaned_ms: i64 = row.try_get("", "orphaned_ms")?;
                Ok(ClaimedRoom {
                    record: RoomRecord {
                        room_id: row.try_get("", "id")?,
                        mode: row.try_get("", "mode")?,
                        config: row.try_get("", "config")?,
                        status: RoomStatus::Open,
                        created_at: row.try_get("", "created_at")?,
                        closed_at: row.try_get("", "closed_at")?,
                        owner: Owner {
                            node_id: Some(lease.node_id.clone()),
                            fence: row.try_get("", "fence")?,
                        },
                    },
                    from: row.try_get("", "old_owner")?,
                    released: row.try_get("", "released")?,
                    orphaned_for: Duration::from_millis(orphaned_ms.max(0) as u64),
                })
            })
            .collect()
    }
}

const LOCATION_SELECT: &str = "SELECT r.id, r.mode, r.config, r.status, r.created_at, \
     r.closed_at, r.owner_node, r.fence, r.players, n.node_id AS live_node, \
     n.public_url AS live_url, n.draining \
     FROM rooms r LEFT JOIN nodes n ON n.node_id = r.owner_node \
         AND n.incarnation = r.owner_incarnation AND n.expires_at > now()";

fn location(row: &QueryResult) -> Result<RoomLocation, StorageError> {
    let status: String = row.try_get("", "status")?;
    let live_node: Option<String> = row.try_get("", "live_node")?;
    let live_url: Option<String> = row.try_get("", "live_url")?;
    let draining: Option<bool> = row.try_get("", "draining")?;
    Ok(RoomLocation {
        record: RoomRecord {
            room_id: row.try_get("", "id")?,
            mode: row.try_get("", "mode")?,
            config: row.try_get("", "config")?,
            status: RoomStatus::parse(&status)?,
            created_at: row.try_get("", "created_at")?,
            closed_at: row.try_get("", "closed_at")?,
            owner: Owner {
                node_id: row.try_get("", "owner_node")?,
                fence: row.try_get("", "fence")?,
            },
        },
        players: row.try_get("", "players")?,
        live_owner: live_node.zip(live_url),
        owner_draining: draining.unwrap_or(false),
    })
}
