//! The repository and the migrations against real databases: every test body runs on SQLite (a
//! temporary file) and on PostgreSQL.
//!
//! PostgreSQL: `TEST_DATABASE_URL` (CI: `postgres://postgres@127.0.0.1:5432/test`), or without it a
//! throwaway local cluster (see `persistence::test_support`). Each test creates its own database
//! there (`skirmish_test_<random>`) and drops it at the end, so runs cannot interfere; an unreachable
//! server fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failure is a panic with a message

use migrations::{Migrator, MigratorTrait, SchemaManager, TABLES};
use persistence::entity::{match_results, room_snapshots, rooms};
use persistence::{
    Batch, PoolOptions, ResultRecord, RoomRecord, RoomStatus, SnapshotRecord, Storage, StorageError,
};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};
use std::path::PathBuf;
use time::{Duration, OffsetDateTime};

/// A migrated database of one backend, removed when dropped (also when the test panics).
struct TestDb {
    url: String,
    storage: Storage,
    cleanup: Cleanup,
}

enum Cleanup {
    File(PathBuf),
    /// Dropping it drops the database.
    Postgres(#[allow(dead_code)] FreshPostgres),
}

use persistence::test_support::{FreshPostgres, unique_suffix};

impl TestDb {
    async fn sqlite() -> Self {
        let path = std::env::temp_dir()
            .join(format!("skirmish-test-{}", unique_suffix()))
            .join("db.sqlite");
        let url = format!("sqlite://{}", path.display());
        let storage = Storage::connect(&url, &PoolOptions::default())
            .await
            .expect("open the SQLite test database");
        storage.migrate().await.expect("migrate SQLite");
        Self {
            url,
            storage,
            cleanup: Cleanup::File(path),
        }
    }

    async fn postgres() -> Option<Self> {
        let fresh = FreshPostgres::create("repository").await?;
        let storage = Storage::connect(&fresh.url, &PoolOptions::default())
            .await
            .expect("connect to the per-test database");
        storage.migrate().await.expect("migrate PostgreSQL");
        Some(Self {
            url: fresh.url.clone(),
            storage,
            cleanup: Cleanup::Postgres(fresh),
        })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Cleanup::File(path) = &self.cleanup
            && let Some(dir) = path.parent()
        {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Runs each named body once on SQLite and once on PostgreSQL.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let db = super::TestDb::sqlite().await;
                    super::$name(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(db) = super::TestDb::postgres().await else { return };
                    super::$name(&db).await;
                }
            )*
        }
    };
}

on_both_backends!(
    migrations_go_up_down_and_up_again,
    batch_writes_many_rows_in_one_call,
    latest_snapshot_is_per_room,
    open_rooms_follow_status_changes,
    results_are_ordered_by_rank_and_upserted,
    pruning_keeps_exactly_the_newest_k_per_room,
    secret_persists_and_is_never_replaced,
    room_upsert_is_idempotent,
    out_of_range_records_write_nothing,
);

/// A fixed, microsecond-precise UTC time (what the databases store).
fn t0() -> OffsetDateTime {
    time::macros::datetime!(2026-11-29 12:00:00.123456 UTC)
}

fn room(id: &str, status: RoomStatus) -> RoomRecord {
    RoomRecord {
        owner: Default::default(),
        room_id: id.into(),
        mode: "arena".into(),
        config: format!(r#"{{"capacity":16,"room":"{id}"}}"#),
        status,
        created_at: t0(),
        closed_at: (status == RoomStatus::Closed).then(|| t0() + Duration::minutes(5)),
    }
}

fn snap(room: &str, tick: u64) -> SnapshotRecord {
    SnapshotRecord {
        owner: Default::default(),
        room_id: room.into(),
        tick,
        state: format!("{room}@{tick}").into_bytes(),
        created_at: t0() + Duration::milliseconds(tick as i64),
    }
}

fn result(room: &str, player: &str, score: u32, rank: u32) -> ResultRecord {
    ResultRecord {
        room_id: room.into(),
        player_id: player.into(),
        score,
        rank,
        finished_at: t0() + Duration::minutes(5),
    }
}

async fn count<E: EntityTrait>(s: &Storage) -> u64
where
    E::Model: Sync,
{
    E::find().count(s.connection()).await.unwrap()
}

async fn ticks_of(s: &Storage, room: &str) -> Vec<i64> {
    let mut ticks: Vec<i64> = room_snapshots::Entity::find()
        .filter(room_snapshots::Column::RoomId.eq(room))
        .all(s.connection())
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.tick)
        .collect();
    ticks.sort_unstable();
    ticks
}

async fn migrations_go_up_down_and_up_again(db: &TestDb) {
    let conn = db.storage.connection();
    let manager = SchemaManager::new(conn);
    for table in TABLES {
        assert!(manager.has_table(table).await.unwrap(), "{table} after up");
    }
    assert!(
        Migrator::get_pending_migrations(conn)
            .await
            .unwrap()
            .is_empty()
    );
    db.storage
        .write_batch(&Batch {
            rooms: vec![room("r", RoomStatus::Open)],
            snapshots: vec![snap("r", 1)],
            ..Batch::default()
        })
        .await
        .unwrap();

    Migrator::down(conn, None).await.unwrap();
    for table in TABLES {
        assert!(
            !manager.has_table(table).await.unwrap(),
            "{table} after down"
        );
    }
    assert_eq!(
        Migrator::get_pending_migrations(conn).await.unwrap().len(),
        TABLES.len()
    );

    // `migrate` is what the server runs at start: it must bring an empty schema back.
    db.storage.migrate().await.unwrap();
    for table in TABLES {
        assert!(
            manager.has_table(table).await.unwrap(),
            "{table} after up again"
        );
    }
    assert!(db.storage.latest_snapshot("r").await.unwrap().is_none());
    db.storage
        .write_batch(&Batch {
            snapshots: vec![snap("r", 2)],
            ..Batch::default()
        })
        .await
        .unwrap();
    assert_eq!(
        db.storage.latest_snapshot("r").await.unwrap().unwrap().tick,
        2
    );

    // One step down removes only the newest migration (its table is the last of TABLES).
    let (newest, older) = TABLES.split_last().unwrap();
    Migrator::down(conn, Some(1)).await.unwrap();
    assert!(!manager.has_table(newest).await.unwrap());
    for table in older {
        assert!(manager.has_table(table).await.unwrap(), "{table} kept");
    }
    db.storage.migrate().await.unwrap();
    assert!(manager.has_table(newest).await.unwrap());
}

async fn batch_writes_many_rows_in_one_call(db: &TestDb) {
    let s = &db.storage;
    // More rows than one INSERT takes, so the chunking is exercised too.
    let rooms: Vec<_> = (0..300)
        .map(|i| room(&format!("room-{i:03}"), RoomStatus::Open))
        .collect();
    let snapshots: Vec<_> = (0..2500)
        .map(|i| SnapshotRecord {
            owner: Default::default(),
            state: vec![(i % 251) as u8; 1024],
            ..snap(&format!("room-{:03}", i % 300), i / 300)
        })
        .collect();
    let results: Vec<_> = (0..1200)
        .map(|i| {
            result(
                &format!("room-{:03}", i % 300),
                &format!("p{i}"),
                i,
                i / 300 + 1,
            )
        })
        .collect();
    let batch = Batch {
        rooms,
        snapshots,
        results,
        ..Batch::default()
    };
    s.write_batch(&batch).await.unwrap();
    assert_eq!(count::<rooms::Entity>(s).await, 300);
    assert_eq!(count::<room_snapshots::Entity>(s).await, 2500);
    assert_eq!(count::<match_results::Entity>(s).await, 1200);
    // room-007 got ticks 0..=8 (i = 7, 307, …, 2407).
    let latest = s.latest_snapshot("room-007").await.unwrap().unwrap();
    assert_eq!(latest, batch.snapshots[2407]);
    assert_eq!(s.open_rooms().await.unwrap().len(), 300);
    assert_eq!(s.room("room-299").await.unwrap().unwrap(), batch.rooms[299]);
    // An empty batch is a no-op.
    s.write_batch(&Batch::default()).await.unwrap();
}

async fn latest_snapshot_is_per_room(db: &TestDb) {
    let s = &db.storage;
    assert_eq!(s.latest_snapshot("nobody").await.unwrap(), None);
    s.write_batch(&Batch {
        snapshots: vec![snap("a", 10), snap("b", 3), snap("a", 20), snap("b", 1)],
        ..Batch::default()
    })
    .await
    .unwrap();
    // A later write with an older tick does not become "latest".
    s.write_batch(&Batch {
        snapshots: vec![snap("a", 15)],
        ..Batch::default()
    })
    .await
    .unwrap();
    assert_eq!(s.latest_snapshot("a").await.unwrap(), Some(snap("a", 20)));
    assert_eq!(s.latest_snapshot("b").await.unwrap(), Some(snap("b", 3)));
    // Two snapshots of the same tick (a restore re-snapshotting): the newer row wins.
    let again = SnapshotRecord {
        owner: Default::default(),
        state: b"again".to_vec(),
        ..snap("b", 3)
    };
    s.write_batch(&Batch {
        snapshots: vec![again.clone()],
        ..Batch::default()
    })
    .await
    .unwrap();
    assert_eq!(s.latest_snapshot("b").await.unwrap(), Some(again));
}

async fn open_rooms_follow_status_changes(db: &TestDb) {
    let s = &db.storage;
    s.write_batch(&Batch {
        rooms: vec![
            room("c", RoomStatus::Open),
            room("a", RoomStatus::Open),
            room("b", RoomStatus::Open),
        ],
        ..Batch::default()
    })
    .await
    .unwrap();
    let ids = |v: Vec<RoomRecord>| v.into_iter().map(|r| r.room_id).collect::<Vec<_>>();
    assert_eq!(ids(s.open_rooms().await.unwrap()), ["a", "b", "c"]);

    // Closing upserts status and closed_at only; mode and config stay as first stored.
    let closed = RoomRecord {
        owner: Default::default(),
        mode: "other".into(),
        config: "{}".into(),
        ..room("b", RoomStatus::Closed)
    };
    s.write_batch(&Batch {
        rooms: vec![closed],
        ..Batch::default()
    })
    .await
    .unwrap();
    assert_eq!(ids(s.open_rooms().await.unwrap()), ["a", "c"]);
    let b = s.room("b").await.unwrap().unwrap();
    assert_eq!(b, room("b", RoomStatus::Closed));
    assert_eq!(b.closed_at, Some(t0() + Duration::minutes(5)));
    assert_eq!(s.room("missing").await.unwrap(), None);
}

async fn results_are_ordered_by_rank_and_upserted(db: &TestDb) {
    let s = &db.storage;
    s.write_batch(&Batch {
        results: vec![
            result("m", "carol", 5, 3),
            result("m", "alice", 30, 1),
            result("other", "zed", 1, 1),
            result("m", "bob", 20, 2),
        ],
        ..Batch::default()
    })
    .await
    .unwrap();
    let got = s.results("m").await.unwrap();
    assert_eq!(
        got,
        vec![
            result("m", "alice", 30, 1),
            result("m", "bob", 20, 2),
            result("m", "carol", 5, 3)
        ]
    );
    // A corrected result replaces the old one rather than duplicating it.
    s.write_batch(&Batch {
        results: vec![result("m", "carol", 25, 2), result("m", "bob", 20, 3)],
        ..Batch::default()
    })
    .await
    .unwrap();
    let players: Vec<_> = s
        .results("m")
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.player_id, r.rank))
        .collect();
    assert_eq!(
        players,
        [
            ("alice".to_owned(), 1),
            ("carol".to_owned(), 2),
            ("bob".to_owned(), 3)
        ]
    );
    assert!(s.results("nothing").await.unwrap().is_empty());
}

async fn pruning_keeps_exactly_the_newest_k_per_room(db: &TestDb) {
    let s = &db.storage;
    let mut snapshots = Vec::new();
    for t in (0..20).rev() {
        snapshots.push(snap("a", t)); // inserted newest first: ids do not follow ticks
    }
    for t in 0..3 {
        snapshots.push(snap("b", t));
    }
    for t in 0..10 {
        snapshots.push(snap("c", t));
    }
    s.write_batch(&Batch {
        snapshots,
        ..Batch::default()
    })
    .await
    .unwrap();
    assert_eq!(s.prune_snapshots(5).await.unwrap(), 15 + 5);
    assert_eq!(ticks_of(s, "a").await, [15, 16, 17, 18, 19]);
    assert_eq!(ticks_of(s, "b").await, [0, 1, 2]);
    assert_eq!(ticks_of(s, "c").await, [5, 6, 7, 8, 9]);
    assert_eq!(
        s.prune_snapshots(5).await.unwrap(),
        0,
        "pruning is idempotent"
    );

    // The targeted variant leaves other rooms alone.
    assert_eq!(
        s.prune_snapshots_of(&["a".into(), "zzz".into()], 2)
            .await
            .unwrap(),
        3
    );
    assert_eq!(ticks_of(s, "a").await, [18, 19]);
    assert_eq!(ticks_of(s, "c").await.len(), 5);
    assert_eq!(s.prune_snapshots_of(&[], 2).await.unwrap(), 0);
    assert_eq!(s.latest_snapshot("a").await.unwrap(), Some(snap("a", 19)));
}

async fn secret_persists_and_is_never_replaced(db: &TestDb) {
    let first = db.storage.secret_or_insert(b"first-secret").await.unwrap();
    assert_eq!(first, b"first-secret");
    assert_eq!(
        db.storage.secret_or_insert(b"second").await.unwrap(),
        b"first-secret"
    );
    // A new connection (a restarted server) reads the same secret.
    let other = Storage::connect(&db.url, &PoolOptions::default())
        .await
        .unwrap();
    other.migrate().await.unwrap();
    assert_eq!(
        other.secret_or_insert(b"third").await.unwrap(),
        b"first-secret"
    );
    other.close().await.unwrap();
}

async fn room_upsert_is_idempotent(db: &TestDb) {
    let s = &db.storage;
    let batch = Batch {
        rooms: vec![room("r", RoomStatus::Open)],
        results: vec![result("r", "p", 1, 1)],
        ..Batch::default()
    };
    s.write_batch(&batch).await.unwrap();
    s.write_batch(&batch).await.unwrap();
    assert_eq!(count::<rooms::Entity>(s).await, 1);
    assert_eq!(count::<match_results::Entity>(s).await, 1);
    // The same room twice in one batch (opened, then closed before the flush): the last wins,
    // and PostgreSQL does not reject the statement for touching a row twice.
    s.write_batch(&Batch {
        rooms: vec![room("q", RoomStatus::Open), room("q", RoomStatus::Closed)],
        results: vec![result("q", "p", 1, 2), result("q", "p", 7, 1)],
        ..Batch::default()
    })
    .await
    .unwrap();
    assert_eq!(
        s.room("q").await.unwrap(),
        Some(room("q", RoomStatus::Closed))
    );
    assert_eq!(s.results("q").await.unwrap(), [result("q", "p", 7, 1)]);
    assert_eq!(s.open_rooms().await.unwrap(), [room("r", RoomStatus::Open)]);
}

async fn out_of_range_records_write_nothing(db: &TestDb) {
    let s = &db.storage;
    let err = s
        .write_batch(&Batch {
            rooms: vec![room("r", RoomStatus::Open)],
            snapshots: vec![snap("r", u64::MAX)],
            ..Batch::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::OutOfRange(_)), "{err}");
    assert!(!err.is_retryable());
    let err = s
        .write_batch(&Batch {
            results: vec![result("r", "p", 1, u32::MAX)],
            ..Batch::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::OutOfRange(_)), "{err}");
    assert_eq!(s.room("r").await.unwrap(), None);
    s.ping().await.unwrap();
}

/// Two servers starting at once on one database agree on one secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_concurrent_secret_insert_agrees() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let tasks: Vec<_> = (0..8u8)
        .map(|i| {
            let s = db.storage.clone();
            tokio::spawn(async move { s.secret_or_insert(&[i; 32]).await.unwrap() })
        })
        .collect();
    let mut secrets = Vec::new();
    for t in tasks {
        secrets.push(t.await.unwrap());
    }
    assert!(secrets.windows(2).all(|w| w[0] == w[1]), "{secrets:?}");
}

#[tokio::test]
async fn sqlite_in_memory_works_and_a_file_url_creates_its_directory() {
    let mem = Storage::connect("sqlite::memory:", &PoolOptions::default())
        .await
        .unwrap();
    mem.migrate().await.unwrap();
    mem.write_batch(&Batch {
        snapshots: vec![snap("m", 1)],
        ..Batch::default()
    })
    .await
    .unwrap();
    assert_eq!(mem.latest_snapshot("m").await.unwrap(), Some(snap("m", 1)));

    let dir = std::env::temp_dir().join(format!("skirmish-test-{}", unique_suffix()));
    let url = format!("sqlite://{}/nested/data/skirmish.db", dir.display());
    let s = Storage::connect(&url, &PoolOptions::default())
        .await
        .unwrap();
    s.migrate().await.unwrap();
    assert!(dir.join("nested/data/skirmish.db").exists());
    let mode: Option<String> = s
        .connection()
        .query_one(sea_orm::Statement::from_string(
            s.backend(),
            "PRAGMA journal_mode",
        ))
        .await
        .unwrap()
        .and_then(|row| row.try_get_by_index(0).ok());
    assert_eq!(mode.as_deref(), Some("wal"));
    s.close().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn an_unreachable_database_fails_fast_with_a_redacted_url() {
    let pool = PoolOptions {
        acquire_timeout: std::time::Duration::from_millis(500),
        ..PoolOptions::default()
    };
    let started = std::time::Instant::now();
    // Port 1 on localhost: nothing listens there.
    let err = Storage::connect("postgres://u:hunter2@127.0.0.1:1/db", &pool)
        .await
        .unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let msg = err.to_string();
    assert!(
        msg.contains("u:***@127.0.0.1:1/db") && !msg.contains("hunter2"),
        "{msg}"
    );
}

/// PostgreSQL: every pooled connection carries `statement_timeout`, and a statement that runs past
/// it fails instead of holding a connection (and the persistence actor) indefinitely.
#[tokio::test]
async fn postgres_statements_past_the_timeout_fail() {
    let Some(fresh) = FreshPostgres::create("statement timeout").await else {
        return;
    };
    let pool = PoolOptions {
        statement_timeout: std::time::Duration::from_millis(300),
        ..PoolOptions::default()
    };
    let s = Storage::connect(&fresh.url, &pool).await.unwrap();
    let query = |sql: &str| {
        s.connection()
            .query_one(sea_orm::Statement::from_string(s.backend(), sql.to_owned()))
    };
    let shown: Option<String> = query("SHOW statement_timeout")
        .await
        .unwrap()
        .and_then(|row| row.try_get_by_index(0).ok());
    assert_eq!(shown.as_deref(), Some("300ms"));
    let started = std::time::Instant::now();
    let err = query("SELECT pg_sleep(5)").await.unwrap_err();
    assert!(
        err.to_string().contains("statement timeout"),
        "canceled by the timeout: {err}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    // The connection is still usable afterwards.
    s.ping().await.unwrap();
    s.close().await.unwrap();
}

/// SQLite: the timeout is the busy timeout, so a write blocked by another connection's write
/// transaction fails after it rather than waiting for the lock indefinitely.
#[tokio::test]
async fn sqlite_a_write_blocked_by_a_lock_fails_after_the_timeout() {
    use sea_orm::TransactionTrait;
    let db = TestDb::sqlite().await;
    let pool = PoolOptions {
        statement_timeout: std::time::Duration::from_millis(300),
        ..PoolOptions::default()
    };
    let impatient = Storage::connect(&db.url, &pool).await.unwrap();
    // Another connection takes the write lock and keeps it.
    let holder = db.storage.connection().begin().await.unwrap();
    holder
        .execute_unprepared("INSERT INTO settings (key, value) VALUES ('lock-holder', x'00')")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let err = impatient
        .write_batch(&Batch {
            snapshots: vec![snap("locked", 1)],
            ..Batch::default()
        })
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert!(err.to_string().contains("locked"), "{err}");
    assert!(
        waited >= std::time::Duration::from_millis(250)
            && waited < std::time::Duration::from_secs(3),
        "waited {waited:?} for the lock"
    );
    holder.rollback().await.unwrap();
    impatient.close().await.unwrap();
}
