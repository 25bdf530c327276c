//! A database outage, end to end: the server (in process) talks to PostgreSQL through a small TCP
//! proxy of the test's own, which is cut for a few seconds. Rooms must keep ticking, nothing may
//! panic, and once the proxy is back the persistence actor must catch up: the latest snapshot is
//! recent and the room statuses and match results produced during the outage are stored.
//!
//! Also overload: past `http_max_concurrent_requests` API requests in flight, the next is refused
//! at once with 503 `overloaded` and `Retry-After: 1` (SQLite; runs everywhere).
//!
//! PostgreSQL only: a fresh database per run, dropped at the end, in `TEST_DATABASE_URL` or in a
//! throwaway local cluster (see `persistence::test_support`); an unreachable server fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::proxy::{Proxy, through};
use common::{Received, row_of, spawn_app_with};
use persistence::{PoolOptions, RoomStatus, Storage};
use protocol::{ServerMessage, close};
use serde_json::json;
use tokio::net::TcpStream;

use persistence::test_support::FreshPostgres;

const WAIT: Duration = Duration::from_secs(10);
const OUTAGE: Duration = Duration::from_millis(3500);
const SNAPSHOT_EVERY_TICKS: u32 = 5;

static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        previous(info);
    }));
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|line| line.starts_with(name))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[actix_rt::test]
async fn a_database_outage_stalls_no_room_and_persistence_catches_up() {
    let Some(db) = FreshPostgres::create("outage").await else {
        return;
    };
    count_panics();
    let (_, upstream) = through(&db.url, "127.0.0.1:1".parse().unwrap());
    let proxy = Proxy::start(upstream).await;
    let (proxied_url, _) = through(&db.url, proxy.addr);
    let app = spawn_app_with(|config| {
        config.database_url = proxied_url;
        config.database_acquire_timeout_ms = 500;
        config.snapshot_every_ticks = SNAPSHOT_EVERY_TICKS;
        config.persistence_flush_interval_ms = 100;
    })
    .await;
    // The test's own view of the database, around the proxy.
    let storage = Storage::connect(&db.url, &PoolOptions::default())
        .await
        .unwrap();

    let playing = app
        .create_room(json!({ "mode": "arena", "duration_s": 600 }))
        .await;
    let mut alice = app.join(&playing, "alice").await;
    let deleted = app.create_room(json!({ "mode": "arena" })).await;
    let ending = app
        .create_room(json!({ "mode": "arena", "duration_s": 2 }))
        .await;
    let mut carol = app.join(&ending, "carol").await;
    // Past the first snapshot of the playing room.
    alice
        .until(WAIT, |m| match m {
            ServerMessage::State { tick, .. } => {
                (*tick > u64::from(SNAPSHOT_EVERY_TICKS)).then_some(())
            }
            _ => None,
        })
        .await;
    app.shutdown
        .flush_persistence()
        .await
        .expect("the first writes are committed");
    assert!(storage.latest_snapshot(&playing).await.unwrap().is_some());

    // The outage.
    proxy.cut();
    let cut_at = Instant::now();
    let response = app.delete(&format!("/v1/rooms/{deleted}")).await;
    assert_eq!(
        response.status(),
        204,
        "DELETE does not wait for the database"
    );
    let mut ticks = Vec::new();
    let mut longest_gap = Duration::ZERO;
    let mut last_state_at = Instant::now();
    let mut seq = 1;
    while cut_at.elapsed() < OUTAGE {
        let tick = alice
            .until(WAIT, |m| match m {
                ServerMessage::State { tick, .. } => Some(*tick),
                _ => None,
            })
            .await;
        longest_gap = longest_gap.max(last_state_at.elapsed());
        last_state_at = Instant::now();
        ticks.push(tick);
        if tick % 10 == 0 {
            alice.send_input(seq, 1.0, 0.5).await;
            seq += 1;
        }
    }
    // The match of the other room ended during the outage.
    assert_eq!(carol.expect_close(WAIT).await, Some(close::ROOM_CLOSED));
    let last_tick_in_outage = *ticks.last().unwrap();
    // Readiness tells the truth: the database does not answer.
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503, "readyz during the outage");
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable");
    proxy.restore();
    let restored_at = Instant::now();

    // Generous bounds for a loaded machine: a room that waited on the database would stall for
    // the whole outage, not for a scheduling hiccup.
    assert!(
        ticks.windows(2).all(|w| w[1] > w[0]),
        "ticks keep increasing during the outage: {ticks:?}"
    );
    let expected = OUTAGE.as_millis() as usize * 20 / 1000;
    assert!(
        ticks.len() * 2 >= expected,
        "{} states in {OUTAGE:?} of outage at 20 Hz (expected about {expected})",
        ticks.len()
    );
    assert!(
        longest_gap < Duration::from_secs(1),
        "a room stalled for {longest_gap:?} during the outage"
    );
    let metrics = app.metrics().await;
    assert!(
        metric(&metrics, "skirmish_persistence_write_errors_total") > 0.0,
        "the outage made writes fail (else the proxy did not cut anything)"
    );

    // The actor catches up: a Flush eventually confirms that everything is committed.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut attempts = 0;
    loop {
        attempts += 1;
        match app.shutdown.flush_persistence().await {
            Ok(()) => break,
            Err(error) => {
                assert!(
                    Instant::now() < deadline,
                    "persistence never caught up after the outage: {error}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "readyz once the database is back");
    eprintln!(
        "outage: {} states during {OUTAGE:?} (longest gap {longest_gap:?}); caught up {:?} after the proxy came back ({attempts} flush calls)",
        ticks.len(),
        restored_at.elapsed()
    );

    let snapshot = storage
        .latest_snapshot(&playing)
        .await
        .unwrap()
        .expect("a snapshot of the playing room");
    assert!(
        snapshot.tick + u64::from(SNAPSHOT_EVERY_TICKS) >= last_tick_in_outage,
        "the latest stored snapshot (tick {}) is older than the outage's last tick {last_tick_in_outage}",
        snapshot.tick
    );
    let room = storage.room(&deleted).await.unwrap().unwrap();
    assert_eq!(
        room.status,
        RoomStatus::Closed,
        "the DELETE made during the outage is stored"
    );
    assert!(room.closed_at.is_some());
    let room = storage.room(&ending).await.unwrap().unwrap();
    assert_eq!(
        room.status,
        RoomStatus::Closed,
        "the match end during the outage is stored"
    );
    let results = storage.results(&ending).await.unwrap();
    assert_eq!(results.len(), 1, "the results of the match: {results:?}");
    assert_eq!(
        (results[0].player_id.as_str(), results[0].rank),
        ("carol", 1)
    );
    let room = storage.room(&playing).await.unwrap().unwrap();
    assert_eq!(room.status, RoomStatus::Open);

    // The playing room never noticed: it still acknowledges inputs.
    alice.send_input(seq, -1.0, 0.0).await;
    let acked = alice
        .until(WAIT, |m| row_of(m, "alice").filter(|r| r.3 >= seq))
        .await;
    assert_eq!(acked.3, seq);
    match alice.next().await {
        Received::Message(_) => {}
        Received::Closed(code) => panic!("alice was closed with {code:?}"),
    }
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "something panicked");
    app.shutdown.shutdown().await;
    storage.close().await.ok();
}

/// Limit 1: a request held in flight (its JSON body only half sent, so the handler waits for the
/// rest) makes the next API request a 503 with `Retry-After: 1`; health and metrics still answer,
/// and once the held request completes the API serves again.
#[actix_rt::test]
async fn past_the_concurrency_limit_the_api_answers_503_with_retry_after() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with(|c| c.http_max_concurrent_requests = 1).await;
    let body = br#"{"mode":"arena"}"#;
    let mut held = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    let head = format!(
        "POST /v1/rooms HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        common::API_KEY,
        body.len()
    );
    held.write_all(head.as_bytes()).await.unwrap();
    held.write_all(&body[..5]).await.unwrap();

    // The held request reaches the server asynchronously: poll until the API refuses (bounded).
    let deadline = Instant::now() + WAIT;
    let refused = loop {
        let response = app.get("/v1/rooms").await;
        if response.status() == 503 {
            break response;
        }
        assert_eq!(response.status(), 200);
        assert!(Instant::now() < deadline, "the limit never applied");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(
        refused
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let error: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(error["error"]["code"], "overloaded", "{error}");
    assert_eq!(app.post("/v1/matchmake", json!({})).await.status(), 503);
    // Operations routes are not limited, nor is the WebSocket upgrade.
    assert_eq!(app.get("/healthz").await.status(), 200);
    assert_eq!(app.get("/readyz").await.status(), 200);
    assert!(app.metrics().await.contains("status=\"503\""));
    assert_ne!(app.get("/v1/ws").await.status(), 503);

    // The held request completes; its permit is released before its response is written.
    held.write_all(&body[5..]).await.unwrap();
    let mut answer = [0u8; 12];
    held.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 201");
    assert_eq!(app.get("/v1/rooms").await.status(), 200);
}
