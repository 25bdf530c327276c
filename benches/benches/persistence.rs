//! Batched persistence writes on SQLite and PostgreSQL (custom harness: prints rows per second).
//!
//! ```text
//! TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo bench -p benches --bench persistence
//! ```
//!
//! Each backend gets a fresh database (PostgreSQL: `skirmish_bench_<pid>` next to
//! `TEST_DATABASE_URL`, dropped at the end; without the variable PostgreSQL is skipped loudly).
//! Workload: 1,000 rooms, 1 KiB MessagePack-sized states of incompressible bytes, written
//! - `write_batch`: batches of N snapshots straight through `Storage::write_batch`;
//! - `actor path`: through a `WriteBuffer` (coalescing, taking `batch_size` rows, one write in
//!   flight at a time), which is what the persistence actor does minus the mailbox hop;
//!
//! then `latest_snapshot` and pruning latencies on the resulting table.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // a benchmark binary

use persistence::buffer::WriteBuffer;
use persistence::sea_orm::{ConnectOptions, ConnectionTrait, Database};
use persistence::{Batch, PoolOptions, SnapshotRecord, Storage};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

const ROOMS: u64 = 1_000;
const STATE_BYTES: usize = 1024;
const SNAPSHOTS: u64 = 100_000;

fn state(seed: u64) -> Vec<u8> {
    // xorshift: incompressible, so PostgreSQL cannot shrink the rows.
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..STATE_BYTES)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn snapshots(from: u64, n: u64) -> Vec<SnapshotRecord> {
    let now = OffsetDateTime::now_utc();
    (from..from + n)
        .map(|i| SnapshotRecord {
            owner: Default::default(),
            room_id: format!("room-{:04}", i % ROOMS),
            tick: i / ROOMS * 20,
            state: state(i),
            created_at: now,
        })
        .collect()
}

fn report(backend: &str, what: &str, rows: u64, took: Duration) {
    println!(
        "{backend:<10} {what:<34} {rows:>7} rows in {:>7.3} s = {:>8.0} snapshots/s",
        took.as_secs_f64(),
        rows as f64 / took.as_secs_f64()
    );
}

async fn bench_writes(backend: &str, storage: &Storage, batch_size: usize, next: &mut u64) {
    let all = snapshots(*next, SNAPSHOTS);
    *next += SNAPSHOTS;
    let started = Instant::now();
    for chunk in all.chunks(batch_size) {
        let batch = Batch {
            snapshots: chunk.to_vec(),
            ..Batch::default()
        };
        storage.write_batch(&batch).await.unwrap();
    }
    report(
        backend,
        &format!("write_batch, batches of {batch_size}"),
        SNAPSHOTS,
        started.elapsed(),
    );
}

/// The actor's loop without the mailbox: push every snapshot into the bounded buffer and write
/// `batch_size` rows whenever that many are waiting (one write at a time).
async fn bench_actor_path(backend: &str, storage: &Storage, next: &mut u64) {
    let all = snapshots(*next, SNAPSHOTS);
    *next += SNAPSHOTS;
    let mut buffer = WriteBuffer::new(10_000);
    let batch_size = 500;
    let started = Instant::now();
    let mut shed = 0;
    for s in all {
        shed += buffer.push_snapshot(s);
        if buffer.len() >= batch_size {
            storage.write_batch(&buffer.take(batch_size)).await.unwrap();
        }
    }
    while !buffer.is_empty() {
        storage.write_batch(&buffer.take(batch_size)).await.unwrap();
    }
    assert_eq!(shed, 0);
    report(
        backend,
        "actor path (WriteBuffer, 500/batch)",
        SNAPSHOTS,
        started.elapsed(),
    );
}

async fn bench_reads(backend: &str, storage: &Storage) {
    let n = 2_000;
    let started = Instant::now();
    for i in 0..n {
        let s = storage
            .latest_snapshot(&format!("room-{:04}", i % ROOMS))
            .await
            .unwrap();
        assert!(s.is_some());
    }
    let per = started.elapsed() / n as u32;
    println!(
        "{backend:<10} latest_snapshot                    {:>8.1} µs per query",
        per.as_secs_f64() * 1e6
    );

    let rooms: Vec<String> = (0..100).map(|i| format!("room-{i:04}")).collect();
    let started = Instant::now();
    let deleted = storage.prune_snapshots_of(&rooms, 10).await.unwrap();
    println!(
        "{backend:<10} prune_snapshots_of(100 rooms, 10) {:>8.1} ms, {deleted} rows deleted",
        started.elapsed().as_secs_f64() * 1e3
    );
    let started = Instant::now();
    let deleted = storage.prune_snapshots(10).await.unwrap();
    println!(
        "{backend:<10} prune_snapshots(10), whole table  {:>8.1} ms, {deleted} rows deleted",
        started.elapsed().as_secs_f64() * 1e3
    );
}

async fn run(backend: &str, storage: &Storage) {
    storage.migrate().await.unwrap();
    let mut next = 0;
    // Warm-up: connections, statement caches, file growth.
    bench_writes(backend, storage, 500, &mut next).await;
    for batch_size in [100, 500, 1000] {
        bench_writes(backend, storage, batch_size, &mut next).await;
    }
    bench_actor_path(backend, storage, &mut next).await;
    bench_reads(backend, storage).await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run a smoke pass.
    if !std::env::args().any(|a| a == "--bench") {
        println!("persistence bench: run with `cargo bench` (skipped under `cargo test`)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("skirmish-bench-{}", std::process::id()));
    let url = format!("sqlite://{}/bench.db", dir.display());
    let sqlite = Storage::connect(&url, &PoolOptions::default())
        .await
        .unwrap();
    run("sqlite", &sqlite).await;
    sqlite.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);

    let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
        println!("\n*** PostgreSQL bench SKIPPED: TEST_DATABASE_URL not set ***");
        return;
    };
    let name = format!("skirmish_bench_{}", std::process::id());
    let mut opts = ConnectOptions::new(admin_url.clone());
    opts.sqlx_logging(false);
    let admin = Database::connect(opts)
        .await
        .expect("PostgreSQL unreachable");
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let (base, query) = match admin_url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin_url.as_str(), String::new()),
    };
    let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
    let pg = Storage::connect(&format!("{base}/{name}{query}"), &PoolOptions::default())
        .await
        .unwrap();
    run("postgres", &pg).await;
    pg.close().await.unwrap();
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .unwrap();
}
