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
pub mod entity;
pub mod outbox;
#[cfg(feature = "test-support")]
pub mod test_support;

use entity::{match_results, room_snapshots, rooms, settings};
use sea_orm::sea_query::{Alias, Expr, OnConflict, Order, Query, WindowStatement};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, TransactionTrait,
};
use std::collections::HashMap;
use std::time::Duration;
use time::{OffsetDateTime, UtcOffset};

pub use migrations;
pub use outbox::{ClaimedEvent, OutboxEvent, OutboxStats, OutboxStatus, Outcome, StoredEvent};
pub use sea_orm;
pub use sea_orm::DatabaseBackend;

/// Most rows in one `INSERT`. A batch is normally far smaller (the actor flushes at 500 rows);
/// this only keeps a very large batch under the bind-parameter limits (65,535 on PostgreSQL,
/// 32,766 on SQLite) and statements at a few MiB.
pub const ROWS_PER_INSERT: usize = 1000;

/// Key of the server secret in `settings`.
const SECRET_KEY: &str = "server_secret";

/// Connection-pool settings. They are configured rather than left to sqlx's defaults so that an
/// unreachable database fails fast (`acquire_timeout`) instead of stalling the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolOptions {
    /// Upper bound on open connections.
    pub max_connections: u32,
    /// Connections kept open while idle, so the first write after a quiet spell does not pay for
    /// a connect.
    pub min_connections: u32,
    /// How long to wait for a free (or new) connection before failing; also the connect timeout.
    pub acquire_timeout: Duration,
    /// Longest a statement may run: PostgreSQL's `statement_timeout`, set on every connection; on
    /// SQLite the busy timeout (how long a statement waits for the database lock).
    pub statement_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            min_connections: 1,
            acquire_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(5),
        }
    }
}

/// Everything that can go wrong in storage. Messages say what was being done.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database could not be reached or opened.
    #[error("cannot connect to the database at {url}: {source}")]
    Connect {
        /// The URL, with any password removed.
        url: String,
        /// The driver's error.
        source: DbErr,
    },
    /// The directory of a SQLite database file could not be created.
    #[error("cannot create the directory {path} for the SQLite database: {source}")]
    CreateDir {
        /// The directory.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Applying the schema migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(DbErr),
    /// A query or transaction failed (this includes a lost connection).
    #[error("database query failed: {0}")]
    Query(#[from] DbErr),
    /// A stored row does not decode into a record (for instance an unknown room status).
    #[error("corrupt row in the database: {0}")]
    Corrupt(String),
    /// A record cannot be stored because a value does not fit its column (tick above `i64::MAX`,
    /// rank above `i32::MAX`). Retrying cannot help; nothing of the batch was written.
    #[error("value does not fit the database column: {0}")]
    OutOfRange(String),
}

impl StorageError {
    /// Whether retrying the same operation later can succeed: database and connection failures
    /// can, a record that does not fit its column cannot.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Connect { .. } | Self::Query(_))
    }
}

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

    fn parse(s: &str) -> Result<Self, StorageError> {
        match s {
            "open" => Ok(Self::Open),
            "closed" => Ok(Self::Closed),
            other => Err(StorageError::Corrupt(format!(
                "unknown room status {other:?}"
            ))),
        }
    }
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

/// The storage repository: a pooled connection to PostgreSQL or SQLite. Cheap to clone (the pool
/// is shared).
#[derive(Clone, Debug)]
pub struct Storage {
    db: DatabaseConnection,
}

impl Storage {
    /// Connects to `url` (`postgres://…` or `sqlite:…`) with the given pool.
    ///
    /// For a SQLite file the parent directory and the file are created if missing, and the
    /// database is put in WAL mode with `synchronous=NORMAL`: readers do not block the writer, and
    /// a committed transaction survives a crash of the process (only an OS crash or power loss can
    /// lose the last commits). An in-memory SQLite database (`sqlite::memory:`) gets exactly one
    /// connection that is never recycled, since every connection would otherwise see its own
    /// empty database.
    pub async fn connect(url: &str, pool: &PoolOptions) -> Result<Self, StorageError> {
        let is_sqlite = url.starts_with("sqlite:");
        let in_memory = is_sqlite && (url.contains(":memory:") || url.contains("mode=memory"));
        let mut options = ConnectOptions::new(url.to_owned());
        options
            .max_connections(pool.max_connections.max(1))
            .min_connections(pool.min_connections.min(pool.max_connections.max(1)))
            .acquire_timeout(pool.acquire_timeout)
            .connect_timeout(pool.acquire_timeout)
            .sqlx_logging(false);
        if in_memory {
            const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
            options
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(FOREVER)
                .max_lifetime(FOREVER);
        } else if is_sqlite {
            create_sqlite_dir(url)?;
            let busy_timeout = pool.statement_timeout;
            options.map_sqlx_sqlite_opts(move |o| {
                use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
                o.create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(busy_timeout)
            });
        } else {
            // A startup parameter, so every pooled connection has it, reconnects included.
            let ms = pool.statement_timeout.as_millis().max(1).to_string();
            options
                .map_sqlx_postgres_opts(move |o| o.options([("statement_timeout", ms.as_str())]));
        }
        let db = Database::connect(options)
            .await
            .map_err(|source| StorageError::Connect {
                url: redact_url(url),
                source,
            })?;
        Ok(Self { db })
    }

    /// Wraps an existing connection (tests, tools).
    pub fn from_connection(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// The underlying connection, for tools and tests (migrations down, EXPLAIN).
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Which backend this is.
    pub fn backend(&self) -> DatabaseBackend {
        self.db.get_database_backend()
    }

    /// Applies every pending up migration.
    pub async fn migrate(&self) -> Result<(), StorageError> {
        use migrations::MigratorTrait;
        migrations::Migrator::up(&self.db, None)
            .await
            .map_err(StorageError::Migrate)
    }

    /// Checks that the database answers (readiness probes).
    pub async fn ping(&self) -> Result<(), StorageError> {
        Ok(self.db.ping().await?)
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(self) -> Result<(), StorageError> {
        Ok(self.db.close().await?)
    }

    /// Writes a batch in one transaction, with one multi-row `INSERT` per table (per
    /// [`ROWS_PER_INSERT`] rows). Rooms are upserted on `id` (status and `closed_at` are updated)
    /// and results on `(room_id, player_id)`, so writing the same batch twice is harmless; if a
    /// batch holds the same room or result twice, the last one wins. Empty parts are skipped.
    /// Webhook events are inserted in the same transaction, so an event is stored exactly when the
    /// change it reports is; an event already stored is left alone.
    ///
    /// Every record is validated before the transaction starts: on
    /// [`StorageError::OutOfRange`] nothing was written.
    pub async fn write_batch(&self, batch: &Batch) -> Result<(), StorageError> {
        if batch.is_empty() {
            return Ok(());
        }
        let rooms = last_wins(&batch.rooms, |r| (r.room_id.as_str(), ""))
            .into_iter()
            .map(room_model)
            .collect::<Vec<_>>();
        let snapshots = batch
            .snapshots
            .iter()
            .map(snapshot_model)
            .collect::<Result<Vec<_>, _>>()?;
        let results = last_wins(&batch.results, |r| {
            (r.room_id.as_str(), r.player_id.as_str())
        })
        .into_iter()
        .map(result_model)
        .collect::<Result<Vec<_>, _>>()?;

        let txn = self.db.begin().await?;
        for chunk in chunks(rooms) {
            rooms::Entity::insert_many(chunk)
                .on_conflict(
                    OnConflict::column(rooms::Column::Id)
                        .update_columns([rooms::Column::Status, rooms::Column::ClosedAt])
                        .to_owned(),
                )
                .exec_without_returning(&txn)
                .await?;
        }
        for chunk in chunks(snapshots) {
            room_snapshots::Entity::insert_many(chunk)
                .exec_without_returning(&txn)
                .await?;
        }
        for chunk in chunks(results) {
            match_results::Entity::insert_many(chunk)
                .on_conflict(
                    OnConflict::columns([
                        match_results::Column::RoomId,
                        match_results::Column::PlayerId,
                    ])
                    .update_columns([
                        match_results::Column::Score,
                        match_results::Column::Rank,
                        match_results::Column::FinishedAt,
                    ])
                    .to_owned(),
                )
                .exec_without_returning(&txn)
                .await?;
        }
        outbox::insert_events(&txn, &batch.events).await?;
        txn.commit().await?;
        Ok(())
    }

    /// The snapshot of `room_id` with the highest tick (the newest row among equal ticks), read
    /// off the `(room_id, tick DESC, id DESC)` index (its first entry for the room).
    pub async fn latest_snapshot(
        &self,
        room_id: &str,
    ) -> Result<Option<StoredSnapshot>, StorageError> {
        room_snapshots::Entity::find()
            .filter(room_snapshots::Column::RoomId.eq(room_id))
            .order_by_desc(room_snapshots::Column::Tick)
            .order_by_desc(room_snapshots::Column::Id)
            .one(&self.db)
            .await?
            .map(snapshot_record)
            .transpose()
    }

    /// Every room whose stored status is open, ordered by id: the rooms to restore on restart.
    pub async fn open_rooms(&self) -> Result<Vec<RoomRecord>, StorageError> {
        rooms::Entity::find()
            .filter(rooms::Column::Status.eq(RoomStatus::Open.as_str()))
            .order_by_asc(rooms::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(room_record)
            .collect()
    }

    /// One room, if stored.
    pub async fn room(&self, room_id: &str) -> Result<Option<RoomRecord>, StorageError> {
        rooms::Entity::find_by_id(room_id.to_owned())
            .one(&self.db)
            .await?
            .map(room_record)
            .transpose()
    }

    /// The results of a room, best rank first (ties by player id).
    pub async fn results(&self, room_id: &str) -> Result<Vec<ResultRecord>, StorageError> {
        match_results::Entity::find()
            .filter(match_results::Column::RoomId.eq(room_id))
            .order_by_asc(match_results::Column::Rank)
            .order_by_asc(match_results::Column::PlayerId)
            .all(&self.db)
            .await?
            .into_iter()
            .map(result_record)
            .collect()
    }

    /// Keeps only the newest `keep` snapshots (by tick, then id) of every room; returns the
    /// number of rows deleted. This scans the whole table; the persistence actor uses
    /// [`Storage::prune_snapshots_of`] for the rooms it wrote to instead.
    pub async fn prune_snapshots(&self, keep: u32) -> Result<u64, StorageError> {
        let stmt = prune_statement(keep, None);
        let res = self.db.execute(self.backend().build(&stmt)).await?;
        Ok(res.rows_affected())
    }

    /// [`Storage::prune_snapshots`] restricted to `room_ids`, which only reads those rooms'
    /// index ranges: its cost grows with the rooms written since the last prune, not with the
    /// table.
    pub async fn prune_snapshots_of(
        &self,
        room_ids: &[String],
        keep: u32,
    ) -> Result<u64, StorageError> {
        let mut deleted = 0;
        for ids in room_ids.chunks(ROWS_PER_INSERT) {
            let stmt = prune_statement(keep, Some(ids));
            deleted += self
                .db
                .execute(self.backend().build(&stmt))
                .await?
                .rows_affected();
        }
        Ok(deleted)
    }

    /// The stored server secret; if there is none, stores `candidate` and returns it.
    ///
    /// Race-safe: it inserts `candidate` only if the key is absent (`ON CONFLICT DO NOTHING`),
    /// then reads whatever is stored, so two servers starting at once on one database agree on
    /// one secret and an existing secret is never replaced.
    pub async fn secret_or_insert(&self, candidate: &[u8]) -> Result<Vec<u8>, StorageError> {
        let row = settings::ActiveModel {
            key: Set(SECRET_KEY.to_owned()),
            value: Set(candidate.to_vec()),
        };
        settings::Entity::insert(row)
            .on_conflict(
                OnConflict::column(settings::Column::Key)
                    .do_nothing()
                    .to_owned(),
            )
            .do_nothing()
            .exec_without_returning(&self.db)
            .await?;
        settings::Entity::find_by_id(SECRET_KEY.to_owned())
            .one(&self.db)
            .await?
            .map(|m| m.value)
            .ok_or_else(|| {
                StorageError::Corrupt("the server secret vanished right after insertion".into())
            })
    }
}

/// `DELETE FROM room_snapshots WHERE id IN (SELECT id FROM (SELECT id, ROW_NUMBER() OVER
/// (PARTITION BY room_id ORDER BY tick DESC, id DESC) AS rn FROM room_snapshots [WHERE room_id IN
/// (…)]) AS ranked WHERE rn > keep)`: portable to PostgreSQL and SQLite (3.25+), and the window's
/// order is exactly the index's order, so PostgreSQL reads it with an index-only scan and no sort.
fn prune_statement(keep: u32, rooms: Option<&[String]>) -> sea_orm::sea_query::DeleteStatement {
    use room_snapshots::Column as C;
    let mut ranked = Query::select();
    ranked
        .column(C::Id)
        .expr_window_as(
            Expr::cust("ROW_NUMBER()"),
            WindowStatement::partition_by(C::RoomId)
                .order_by(C::Tick, Order::Desc)
                .order_by(C::Id, Order::Desc)
                .to_owned(),
            Alias::new("rn"),
        )
        .from(room_snapshots::Entity);
    if let Some(rooms) = rooms {
        ranked.and_where(C::RoomId.is_in(rooms.iter().cloned()));
    }
    let mut doomed = Query::select();
    doomed
        .column(Alias::new("id"))
        .from_subquery(ranked, Alias::new("ranked"))
        .and_where(Expr::col(Alias::new("rn")).gt(i64::from(keep)));
    Query::delete()
        .from_table(room_snapshots::Entity)
        .and_where(Expr::col(C::Id).in_subquery(doomed))
        .to_owned()
}

/// Keeps the last record of each key, in first-seen order: PostgreSQL rejects an upsert that
/// touches the same row twice in one statement.
fn last_wins<'a, T>(items: &'a [T], key: impl Fn(&'a T) -> (&'a str, &'a str)) -> Vec<&'a T> {
    let mut index: HashMap<(&str, &str), usize> = HashMap::with_capacity(items.len());
    let mut out: Vec<&T> = Vec::with_capacity(items.len());
    for item in items {
        match index.get(&key(item)) {
            Some(&i) => out[i] = item,
            None => {
                index.insert(key(item), out.len());
                out.push(item);
            }
        }
    }
    out
}

/// Splits owned rows into statements of at most [`ROWS_PER_INSERT`].
fn chunks<T>(rows: Vec<T>) -> impl Iterator<Item = Vec<T>> {
    let mut rows = rows.into_iter().peekable();
    std::iter::from_fn(move || {
        rows.peek()?;
        Some(rows.by_ref().take(ROWS_PER_INSERT).collect())
    })
}

/// UTC, truncated to microseconds: what both backends store, so that a record reads back equal.
fn db_time(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(UtcOffset::UTC);
    t.replace_nanosecond(t.nanosecond() / 1_000 * 1_000)
        .unwrap_or(t)
}

fn room_model(r: &RoomRecord) -> rooms::ActiveModel {
    rooms::ActiveModel {
        id: Set(r.room_id.clone()),
        mode: Set(r.mode.clone()),
        config: Set(r.config.clone()),
        status: Set(r.status.as_str().to_owned()),
        created_at: Set(db_time(r.created_at)),
        closed_at: Set(r.closed_at.map(db_time)),
    }
}

fn snapshot_model(s: &SnapshotRecord) -> Result<room_snapshots::ActiveModel, StorageError> {
    s.check()?;
    Ok(room_snapshots::ActiveModel {
        id: NotSet,
        room_id: Set(s.room_id.clone()),
        tick: Set(s.tick as i64), // checked just above
        state: Set(s.state.clone()),
        created_at: Set(db_time(s.created_at)),
    })
}

fn result_model(r: &ResultRecord) -> Result<match_results::ActiveModel, StorageError> {
    r.check()?;
    Ok(match_results::ActiveModel {
        room_id: Set(r.room_id.clone()),
        player_id: Set(r.player_id.clone()),
        score: Set(i64::from(r.score)),
        rank: Set(r.rank as i32), // checked just above
        finished_at: Set(db_time(r.finished_at)),
    })
}

fn room_record(m: rooms::Model) -> Result<RoomRecord, StorageError> {
    Ok(RoomRecord {
        status: RoomStatus::parse(&m.status)?,
        room_id: m.id,
        mode: m.mode,
        config: m.config,
        created_at: m.created_at,
        closed_at: m.closed_at,
    })
}

fn snapshot_record(m: room_snapshots::Model) -> Result<SnapshotRecord, StorageError> {
    let tick = u64::try_from(m.tick).map_err(|_| {
        StorageError::Corrupt(format!("snapshot {} has a negative tick {}", m.id, m.tick))
    })?;
    Ok(SnapshotRecord {
        room_id: m.room_id,
        tick,
        state: m.state,
        created_at: m.created_at,
    })
}

fn result_record(m: match_results::Model) -> Result<ResultRecord, StorageError> {
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

/// Creates the parent directory of a SQLite file URL (`sqlite://data/x.db?mode=rwc`,
/// `sqlite:data/x.db`, `sqlite:///abs/x.db`).
fn create_sqlite_dir(url: &str) -> Result<(), StorageError> {
    let Some(path) = sqlite_path(url) else {
        return Ok(());
    };
    let Some(parent) = std::path::Path::new(path).parent() else {
        return Ok(());
    };
    if parent.as_os_str().is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(parent).map_err(|source| StorageError::CreateDir {
        path: parent.display().to_string(),
        source,
    })
}

fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next()?;
    (!path.is_empty() && !path.contains(":memory:")).then_some(path)
}

/// The URL without its password, for error messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths() {
        assert_eq!(
            sqlite_path("sqlite://data/x.db?mode=rwc"),
            Some("data/x.db")
        );
        assert_eq!(sqlite_path("sqlite:data/x.db"), Some("data/x.db"));
        assert_eq!(sqlite_path("sqlite:///tmp/x.db"), Some("/tmp/x.db"));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://h/db"), None);
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite://data/x.db"), "sqlite://data/x.db");
    }

    #[test]
    fn last_record_of_a_key_wins_in_first_seen_order() {
        let items = [("a", 1), ("b", 2), ("a", 3)];
        let kept: Vec<_> = last_wins(&items, |(k, _)| (k, "")).into_iter().collect();
        assert_eq!(kept, vec![&("a", 3), &("b", 2)]);
    }

    #[test]
    fn chunks_split_at_the_limit() {
        let sizes: Vec<usize> = chunks((0..2500).collect())
            .map(|c: Vec<i32>| c.len())
            .collect();
        assert_eq!(sizes, vec![1000, 1000, 500]);
        assert_eq!(chunks(Vec::<i32>::new()).count(), 0);
    }

    #[test]
    fn times_are_utc_micros() {
        let t = time::macros::datetime!(2026-01-02 03:04:05.123456789 +02:00);
        let d = db_time(t);
        assert_eq!(d.offset(), UtcOffset::UTC);
        assert_eq!(d.nanosecond(), 123_456_000);
        assert_eq!(d, t.replace_nanosecond(123_456_000).unwrap());
    }
}

#[cfg(test)]
mod sql_tests {
    use super::*;

    /// The pruning statement is the same SQL on both backends apart from placeholders (and it is
    /// the statement whose plan BENCHMARKS.md records).
    #[test]
    fn prune_sql() {
        let stmt = prune_statement(10, Some(&["a".to_owned()]));
        let pg = DatabaseBackend::Postgres.build(&stmt).to_string();
        let lite = DatabaseBackend::Sqlite.build(&stmt).to_string();
        let expected = r#"DELETE FROM "room_snapshots" WHERE "id" IN (SELECT "id" FROM (SELECT "id", ROW_NUMBER() OVER ( PARTITION BY "room_id" ORDER BY "tick" DESC, "id" DESC ) AS "rn" FROM "room_snapshots" WHERE "room_snapshots"."room_id" IN ('a')) AS "ranked" WHERE "rn" > 10)"#;
        assert_eq!(pg, expected);
        assert_eq!(lite, expected);
    }
}
