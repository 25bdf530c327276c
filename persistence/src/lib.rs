//! Storage for Skirmish: the sea-orm entities and the repository the server writes rooms,
//! snapshots and match results through.
//!
//! The same code runs on PostgreSQL (production) and SQLite (the embedded default): every query is
//! built with sea-query for the connected backend, and everything that differs between the two
//! (placeholders, upsert syntax, auto-increment) is left to it. The public API speaks in the
//! record types below, never in entities, so callers do not see database representations.
//!
//! Writes go through [`Storage::write_batch`], one transaction with one multi-row `INSERT` per
//! table; the server's persistence actor accumulates a [`Batch`] in a [`buffer::WriteBuffer`] and
//! flushes it periodically, so rooms never wait on the database.

pub mod buffer;
pub mod cluster;
pub mod entity;
mod error;
pub mod outbox;
mod pool;
mod queries;
mod records;
#[cfg(feature = "test-support")]
pub mod test_support;

use sea_orm::DatabaseConnection;

pub use migrations;
pub use outbox::{ClaimedEvent, OutboxEvent, OutboxStats, OutboxStatus, Outcome, StoredEvent};
pub use sea_orm;
pub use sea_orm::DatabaseBackend;

pub use error::StorageError;
pub use pool::{PoolOptions, redact_url};
pub(crate) use queries::chunks;
pub(crate) use records::db_time;
pub use records::{
    Batch, Owner, ResultRecord, RoomRecord, RoomStatus, SnapshotRecord, StoredSnapshot,
};

/// Most rows in one `INSERT`. A batch is normally far smaller (the actor flushes at 500 rows);
/// this only keeps a very large batch under the bind-parameter limits (65,535 on PostgreSQL,
/// 32,766 on SQLite) and statements at a few MiB.
pub const ROWS_PER_INSERT: usize = 1000;

/// The storage repository: a pooled connection to PostgreSQL or SQLite. Cheap to clone (the pool
/// is shared).
#[derive(Clone, Debug)]
pub struct Storage {
    db: DatabaseConnection,
}
