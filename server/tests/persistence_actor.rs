//! The persistence actor against a real SQLite file: batching, coalescing, `Flush`, retry after a
//! failing database, shedding and pruning.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failure is a panic with a message

use std::path::PathBuf;
use std::time::Duration;

use actix::{Actor, Addr};
use persistence::entity::room_snapshots;
use persistence::sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use persistence::{PoolOptions, ResultRecord, RoomRecord, RoomStatus, SnapshotRecord, Storage};
use server::persistence_actor::{
    Flush, FlushError, PersistenceActor, PersistenceConfig, SaveResults, SaveRoom, SaveSnapshot,
    Status,
};
use time::OffsetDateTime;

/// A SQLite file in a directory of its own, removed at the end.
struct TempDb {
    dir: PathBuf,
    url: String,
}

impl TempDb {
    fn new() -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "skirmish-actor-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let url = format!("sqlite://{}/db.sqlite", dir.display());
        Self { dir, url }
    }

    /// A connection; `migrated: false` leaves the tables missing so every write fails.
    async fn storage(&self, migrated: bool) -> Storage {
        let s = Storage::connect(&self.url, &PoolOptions::default())
            .await
            .unwrap();
        if migrated {
            s.migrate().await.unwrap();
        }
        s
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Nothing happens on its own: no timer flush within a test, no size trigger, no pruning.
fn manual() -> PersistenceConfig {
    PersistenceConfig {
        flush_interval: Duration::from_secs(3600),
        batch_size: 10_000,
        max_buffered: 10_000,
        retry_backoff_max: Duration::from_millis(200),
        prune_keep: 0,
        ..PersistenceConfig::default()
    }
}

fn snap(room: &str, tick: u64) -> SnapshotRecord {
    SnapshotRecord {
        owner: Default::default(),
        room_id: room.into(),
        tick,
        state: vec![7; 1024],
        created_at: OffsetDateTime::now_utc(),
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

fn result(room: &str, player: &str, rank: u32) -> ResultRecord {
    ResultRecord {
        room_id: room.into(),
        player_id: player.into(),
        score: 10 * rank,
        rank,
        finished_at: OffsetDateTime::UNIX_EPOCH,
    }
}

async fn snapshot_rows(s: &Storage, room: Option<&str>) -> u64 {
    let mut q = room_snapshots::Entity::find();
    if let Some(room) = room {
        q = q.filter(room_snapshots::Column::RoomId.eq(room));
    }
    q.count(s.connection()).await.unwrap()
}

async fn flush(addr: &Addr<PersistenceActor>) -> Result<(), FlushError> {
    addr.send(Flush).await.expect("actor alive")
}

/// Waits (5 s at most) until the actor reports at least `n` failed attempts in a row.
async fn failed_attempts(addr: &Addr<PersistenceActor>, n: u32) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let status = addr.send(Status).await.expect("actor alive");
        if status.consecutive_failures >= n {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {} failed attempts after 5 s, waiting for {n}",
            status.consecutive_failures
        );
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
}

#[actix_rt::test]
async fn flush_commits_everything_before_it_and_keeps_the_newest_snapshot_per_room() {
    let db = TempDb::new();
    let storage = db.storage(true).await;
    let addr = PersistenceActor::new(storage.clone(), manual()).start();
    flush(&addr).await.unwrap(); // nothing buffered: answers at once

    addr.do_send(SaveRoom(room("r", RoomStatus::Open)));
    for tick in 1..=5 {
        addr.do_send(SaveSnapshot(snap("r", tick)));
    }
    addr.do_send(SaveSnapshot(snap("s", 1)));
    flush(&addr).await.unwrap();
    assert_eq!(
        snapshot_rows(&storage, Some("r")).await,
        1,
        "older unflushed ones were replaced"
    );
    assert_eq!(storage.latest_snapshot("r").await.unwrap().unwrap().tick, 5);
    assert_eq!(snapshot_rows(&storage, None).await, 2);

    // A match end: the room's final status and its results.
    addr.do_send(SaveRoom(RoomRecord {
        owner: Default::default(),
        closed_at: Some(OffsetDateTime::UNIX_EPOCH),
        ..room("r", RoomStatus::Closed)
    }));
    addr.do_send(SaveResults(vec![result("r", "b", 2), result("r", "a", 1)]));
    flush(&addr).await.unwrap();
    assert!(storage.open_rooms().await.unwrap().is_empty());
    let ranks: Vec<_> = storage
        .results("r")
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.player_id)
        .collect();
    assert_eq!(ranks, ["a", "b"]);
}

#[actix_rt::test]
async fn writes_start_at_batch_size_and_on_the_interval_without_a_flush() {
    let db = TempDb::new();
    let storage = db.storage(true).await;
    let by_size = PersistenceActor::new(
        storage.clone(),
        PersistenceConfig {
            batch_size: 10,
            ..manual()
        },
    )
    .start();
    for i in 0..25 {
        by_size.do_send(SaveSnapshot(snap(&format!("size-{i}"), 1)));
    }
    let by_time = PersistenceActor::new(
        storage.clone(),
        PersistenceConfig {
            flush_interval: Duration::from_millis(50),
            ..manual()
        },
    )
    .start();
    by_time.do_send(SaveSnapshot(snap("time", 1)));

    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while snapshot_rows(&storage, Some("time")).await == 0
        || snapshot_rows(&storage, None).await < 21
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no write without a Flush"
        );
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    flush(&by_size).await.unwrap();
    assert_eq!(snapshot_rows(&storage, None).await, 26);
}

#[actix_rt::test]
async fn a_failing_database_is_retried_and_nothing_acknowledged_is_lost() {
    let db = TempDb::new();
    // No tables yet: every write fails until the migration below.
    let storage = db.storage(false).await;
    let addr = PersistenceActor::new(
        storage.clone(),
        PersistenceConfig {
            flush_give_up_after: 50,
            ..manual()
        },
    )
    .start();
    addr.do_send(SaveRoom(room("r", RoomStatus::Open)));
    addr.do_send(SaveSnapshot(snap("r", 1)));
    addr.do_send(SaveResults(vec![result("r", "p", 1)]));
    let pending = addr.send(Flush);
    failed_attempts(&addr, 3).await;
    // Newer data arrives while the database is down: it wins over the failed batch.
    addr.do_send(SaveSnapshot(snap("r", 2)));
    storage.migrate().await.unwrap(); // the database "comes back"
    pending.await.unwrap().unwrap();
    flush(&addr).await.unwrap();
    assert_eq!(storage.latest_snapshot("r").await.unwrap().unwrap().tick, 2);
    assert_eq!(snapshot_rows(&storage, None).await, 1);
    assert_eq!(storage.open_rooms().await.unwrap().len(), 1);
    assert_eq!(storage.results("r").await.unwrap().len(), 1);
}

#[actix_rt::test]
async fn flush_reports_a_database_that_keeps_failing() {
    let db = TempDb::new();
    let storage = db.storage(false).await;
    let addr = PersistenceActor::new(
        storage.clone(),
        PersistenceConfig {
            flush_give_up_after: 2,
            ..manual()
        },
    )
    .start();
    addr.do_send(SaveSnapshot(snap("r", 1)));
    let err = flush(&addr).await.unwrap_err();
    assert!(matches!(err, FlushError::Storage(_)), "{err}");
    // The data was kept: once the database works, a new Flush commits it.
    storage.migrate().await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while flush(&addr).await.is_err() {
        assert!(std::time::Instant::now() < deadline);
    }
    assert_eq!(storage.latest_snapshot("r").await.unwrap().unwrap().tick, 1);
}

#[actix_rt::test]
async fn a_full_buffer_sheds_the_oldest_snapshots_never_rooms_or_results() {
    let db = TempDb::new();
    let storage = db.storage(false).await;
    let addr = PersistenceActor::new(
        storage.clone(),
        PersistenceConfig {
            max_buffered: 5,
            flush_give_up_after: 50,
            ..manual()
        },
    )
    .start();
    addr.do_send(SaveRoom(room("r", RoomStatus::Open)));
    addr.do_send(SaveResults(vec![result("r", "a", 1), result("r", "b", 2)]));
    for i in 0..10 {
        addr.do_send(SaveSnapshot(snap(&format!("s{i}"), 1)));
    }
    // Bad input is dropped on arrival instead of poisoning a batch.
    addr.do_send(SaveSnapshot(snap("bad", u64::MAX)));
    let pending = addr.send(Flush);
    // The flush's write fails and its batch goes back into the full buffer.
    failed_attempts(&addr, 1).await;
    storage.migrate().await.unwrap();
    pending.await.unwrap().unwrap();
    assert_eq!(storage.open_rooms().await.unwrap().len(), 1);
    assert_eq!(storage.results("r").await.unwrap().len(), 2);
    // 5 rows allowed: the room, two results and the two newest snapshots.
    assert_eq!(snapshot_rows(&storage, None).await, 2);
    assert!(storage.latest_snapshot("s9").await.unwrap().is_some());
    assert!(storage.latest_snapshot("s8").await.unwrap().is_some());
    assert!(storage.latest_snapshot("bad").await.unwrap().is_none());
}

#[actix_rt::test]
async fn old_snapshots_of_written_rooms_are_pruned() {
    let db = TempDb::new();
    let storage = db.storage(true).await;
    let addr = PersistenceActor::new(
        storage.clone(),
        PersistenceConfig {
            prune_keep: 2,
            prune_every: 1,
            ..manual()
        },
    )
    .start();
    for tick in 1..=6 {
        addr.do_send(SaveSnapshot(snap("r", tick)));
        flush(&addr).await.unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while snapshot_rows(&storage, Some("r")).await != 2 {
        assert!(std::time::Instant::now() < deadline, "pruning never ran");
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(storage.latest_snapshot("r").await.unwrap().unwrap().tick, 6);
}

/// Sustained throughput through the actor (mailbox, buffer, batched writes): 100,000 snapshots of
/// 1 KiB, each from a distinct room so that coalescing cannot hide writes, then a `Flush`. SQLite, or a
/// fresh PostgreSQL database when `TEST_DATABASE_URL` is set. Run in release:
/// `cargo test -p server --release --test persistence_actor -- --ignored --nocapture`.
#[actix_rt::test]
#[ignore = "throughput measurement; run explicitly in release"]
async fn actor_throughput() {
    use persistence::sea_orm::{ConnectionTrait, Database};
    const N: u64 = 100_000;
    let db = TempDb::new();
    let (storage, label, pg) = match std::env::var("TEST_DATABASE_URL") {
        Ok(admin_url) => {
            let name = format!("skirmish_actor_bench_{}", std::process::id());
            let admin = Database::connect(admin_url.as_str()).await.unwrap();
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
            let base = admin_url.rsplit_once('/').unwrap().0;
            let s = Storage::connect(&format!("{base}/{name}"), &PoolOptions::default())
                .await
                .unwrap();
            s.migrate().await.unwrap();
            (s, "postgres", Some((admin, name)))
        }
        Err(_) => (db.storage(true).await, "sqlite", None),
    };
    let addr = PersistenceActor::new(
        storage.clone(),
        PersistenceConfig {
            max_buffered: 1_000_000,
            prune_keep: 0,
            ..PersistenceConfig::default()
        },
    )
    .start();
    let state: Vec<u8> = (0..1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let started = std::time::Instant::now();
    for i in 0..N {
        addr.do_send(SaveSnapshot(SnapshotRecord {
            owner: Default::default(),
            room_id: format!("room-{i}"),
            tick: 1,
            state: state.clone(),
            created_at: OffsetDateTime::now_utc(),
        }));
        if i % 1000 == 999 {
            actix_rt::task::yield_now().await; // let the actor drain, as rooms on other arbiters would
        }
    }
    flush(&addr).await.unwrap();
    let took = started.elapsed();
    let rows = snapshot_rows(&storage, None).await;
    assert_eq!(rows, N, "nothing coalesced or shed");
    println!(
        "{label}: {rows} of {N} snapshots committed through the actor in {:.2} s = {:.0} snapshots/s",
        took.as_secs_f64(),
        rows as f64 / took.as_secs_f64()
    );
    if let Some((admin, name)) = pg {
        storage.close().await.unwrap();
        admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await
            .unwrap();
    }
}
