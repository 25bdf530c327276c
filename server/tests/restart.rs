//! Restart end to end, against the real `skirmish` binary: play, stop it (SIGTERM or SIGKILL), start
//! it again on the same database, and check that the room is back with its tick, positions and
//! scores, and that the old resume token still gets the player back into their slot.
//!
//! Every scenario runs on SQLite (a file in a temporary directory) and on PostgreSQL (a fresh
//! database per test, dropped at the end, in `TEST_DATABASE_URL` or in a throwaway local cluster; see
//! `persistence::test_support`). An unreachable server fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::{API_KEY, Client, Received, Seen, seen_in, towards_nearest_pickup};
use futures_util::StreamExt;
use persistence::{PoolOptions, RoomStatus, Storage};
use protocol::{ServerMessage, close};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);
const TICK_RATE: u64 = 20;
const SNAPSHOT_EVERY_TICKS: u64 = 20;
const FLUSH_INTERVAL_MS: u64 = 250;

/// A free local port: bind port 0, read it, let it go.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The `skirmish` binary running as a child process; killed if the test ends without stopping it.
struct Server {
    child: Child,
    port: u16,
    http: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Server {
    /// Starts the binary in `dir` on `database_url` and waits until `/healthz` answers.
    async fn start(dir: &std::path::Path, database_url: &str) -> Server {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_skirmish"))
            .current_dir(dir)
            .env_remove("DATABASE_URL")
            .env("SKIRMISH_LISTEN", format!("127.0.0.1:{port}"))
            .env("SKIRMISH_DATABASE_URL", database_url)
            .env("SKIRMISH_API_KEY", API_KEY)
            // A loaded CI machine can take seconds to open the pool after a SIGKILL.
            .env("SKIRMISH_DATABASE_ACQUIRE_TIMEOUT_MS", "30000")
            .env(
                "SKIRMISH_LOG",
                std::env::var("E2E_SKIRMISH_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .env("SKIRMISH_ROOM_THREADS", "2")
            .env(
                "SKIRMISH_SNAPSHOT_EVERY_TICKS",
                SNAPSHOT_EVERY_TICKS.to_string(),
            )
            .env(
                "SKIRMISH_PERSISTENCE_FLUSH_INTERVAL_MS",
                FLUSH_INTERVAL_MS.to_string(),
            )
            .stdin(Stdio::null())
            .spawn()
            .expect("start the skirmish binary");
        let mut server = Server {
            child,
            port,
            http: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("skirmish exited during start: {status}");
            }
            if let Ok(response) = server.http.get(server.url("/healthz")).send().await
                && response.status().is_success()
            {
                return server;
            }
            assert!(Instant::now() < deadline, "skirmish did not become healthy");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn ws_url(&self, query: &str) -> String {
        format!("ws://127.0.0.1:{}/v1/ws?{query}", self.port)
    }

    async fn create_room(&self) -> String {
        let response = self
            .http
            .post(self.url("/v1/rooms"))
            .bearer_auth(API_KEY)
            .json(&json!({ "mode": "arena", "tick_rate": TICK_RATE, "duration_s": 600 }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        response.json::<Value>().await.unwrap()["room_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn room(&self, room_id: &str) -> (u16, Value) {
        let response = self
            .http
            .get(self.url(&format!("/v1/rooms/{room_id}")))
            .bearer_auth(API_KEY)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn join(&self, room_id: &str, player: &str) -> Client {
        let response = self
            .http
            .post(self.url(&format!("/v1/rooms/{room_id}/seats")))
            .bearer_auth(API_KEY)
            .json(&json!({ "player_id": player }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let seat: Value = response.json().await.unwrap();
        let mut client = Client::connect(seat["ws_url"].as_str().unwrap()).await;
        client.read_welcome().await;
        client
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} failed");
    }

    /// Waits for the process to exit, at most `limit`.
    async fn exited_within(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "skirmish still running {limit:?} after the signal"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Chases pickups until the player has scored (at most 20 s): position, score and tick all move.
/// Returns the next input seq to use.
async fn chase_pickups(client: &mut Client, mut seq: u32) -> (Seen, u32) {
    let player = client.player_id.clone();
    let start = client.until(WAIT, |m| seen_in(m, &player)).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (message, me) = client
            .until(WAIT, |m| seen_in(m, &player).map(|s| (m.clone(), s)))
            .await;
        if me.score > start.score && me.tick > start.tick + 20 {
            return (me, seq);
        }
        assert!(Instant::now() < deadline, "never reached a pickup: {me:?}");
        let (dx, dy) = towards_nearest_pickup(&message, &me);
        client.send_input(seq, dx, dy).await;
        seq += 1;
    }
}

/// Stops the player and waits until the stop is acknowledged and the position no longer changes.
async fn stand_still(client: &mut Client, seq: u32) -> Seen {
    let player = client.player_id.clone();
    client.send_input(seq, 0.0, 0.0).await;
    let mut previous = client
        .until(WAIT, |m| seen_in(m, &player).filter(|s| s.last_seq >= seq))
        .await;
    loop {
        let now = client.until(WAIT, |m| seen_in(m, &player)).await;
        if (now.x, now.y) == (previous.x, previous.y) {
            return now;
        }
        previous = now;
    }
}

/// Reads until the server closes; returns the close code and the last state seen of `player`.
async fn read_until_closed(
    client: &mut Client,
    player: &str,
    mut last: Seen,
) -> (Option<u16>, Seen) {
    loop {
        match client.next_within(WAIT).await {
            Received::Message(message) => {
                if let Some(seen) = seen_in(&message, player) {
                    last = seen;
                }
            }
            Received::Closed(code) => {
                // Finish the closing handshake as a well-behaved client does (the reply to the
                // close frame goes out while the stream is driven to its end).
                let _ = tokio::time::timeout(WAIT, async {
                    while let Some(Ok(_)) = client.ws.next().await {}
                })
                .await;
                return (code, last);
            }
        }
    }
}

/// Resumes with `token` and returns the welcome's tick and the player's row in it.
async fn resume(server: &Server, token: &str, player: &str) -> (Client, Seen) {
    let mut client = Client::connect(&server.ws_url(&format!("resume={token}"))).await;
    match client.next_within(WAIT).await {
        Received::Message(ServerMessage::Welcome {
            player_id,
            tick,
            state,
            resume_token,
            room_id,
            ..
        }) => {
            assert_eq!(player_id, player);
            let row = state
                .players
                .iter()
                .find(|p| p.0 == player)
                .expect("the welcome holds the resumed player");
            client.room_id = room_id;
            client.player_id = player_id;
            client.resume_token = resume_token;
            client.welcome_tick = tick;
            let seen = Seen {
                tick,
                x: row.1,
                y: row.2,
                score: row.3,
                last_seq: row.4,
            };
            (client, seen)
        }
        other => panic!("expected a welcome after resuming, got {other:?}"),
    }
}

/// The stored room and its latest snapshot's tick, read with the server down.
async fn stored(database_url: &str, room_id: &str) -> (RoomStatus, Option<u64>) {
    let storage = Storage::connect(database_url, &PoolOptions::default())
        .await
        .expect("open the test database");
    let room = storage
        .room(room_id)
        .await
        .unwrap()
        .expect("the room is stored");
    let tick = storage
        .latest_snapshot(room_id)
        .await
        .unwrap()
        .map(|s| s.tick);
    storage.close().await.ok();
    (room.status, tick)
}

/// After the restart: the room is open over HTTP, the old token resumes, the player is where
/// they were with their score, and play goes on (a new input is acknowledged).
async fn check_restored(
    server: &Server,
    room_id: &str,
    token: &str,
    player: &str,
    snapshot_tick: u64,
    next_seq: u32,
) -> Seen {
    let (status, room) = server.room(room_id).await;
    assert_eq!(status, 200, "the room is back after the restart: {room}");
    assert_eq!(room["status"], "open");
    assert_eq!(room["players"], 1, "the player's slot is held: {room}");

    let (mut client, welcome) = resume(server, token, player).await;
    assert!(
        welcome.tick >= snapshot_tick,
        "the restored room goes on from its snapshot (welcome tick {} < snapshot tick {snapshot_tick})",
        welcome.tick
    );
    client.send_input(next_seq, 1.0, 0.0).await;
    client
        .until(WAIT, |m| {
            seen_in(m, player).filter(|s| s.last_seq >= next_seq && s.tick > welcome.tick)
        })
        .await;
    welcome
}

async fn sigterm_keeps_tick_positions_and_scores(database_url: &str, dir: &std::path::Path) {
    let server = Server::start(dir, database_url).await;
    let room_id = server.create_room().await;
    let mut client = server.join(&room_id, "alice").await;
    let token = client.resume_token.clone();
    let (_, seq) = chase_pickups(&mut client, 1).await;
    let still = stand_still(&mut client, seq).await;
    assert!(still.score > 0 && still.tick > 20, "play moved: {still:?}");

    let mut server = server;
    let signalled = Instant::now();
    server.signal("-TERM");
    let (code, last) = read_until_closed(&mut client, "alice", still).await;
    assert_eq!(code, Some(close::GOING_AWAY), "clients are told 1001");
    let status = server.exited_within(Duration::from_secs(10)).await;
    assert!(status.success(), "a graceful stop exits 0, got {status}");
    eprintln!("SIGTERM: exited {:?} after the signal", signalled.elapsed());
    drop(server);

    // The final snapshot holds the last tick the client saw (or the one after it, if its state
    // did not reach the client before the close).
    let (room_status, snapshot_tick) = stored(database_url, &room_id).await;
    assert_eq!(room_status, RoomStatus::Open, "a shut-down room stays open");
    let snapshot_tick = snapshot_tick.expect("a final snapshot");
    assert!(
        (last.tick..=last.tick + 1).contains(&snapshot_tick),
        "final snapshot at tick {snapshot_tick}, last state seen at tick {}",
        last.tick
    );

    let server = Server::start(dir, database_url).await;
    let welcome = check_restored(
        &server,
        &room_id,
        &token,
        "alice",
        snapshot_tick,
        still.last_seq + 1,
    )
    .await;
    assert_eq!(
        (welcome.x, welcome.y),
        (last.x, last.y),
        "same position after the restart"
    );
    assert_eq!(welcome.score, last.score, "same score after the restart");
    assert_eq!(
        welcome.last_seq, last.last_seq,
        "same last acknowledged input"
    );
}

async fn sigkill_loses_at_most_a_snapshot_and_a_flush_interval(
    database_url: &str,
    dir: &std::path::Path,
) {
    let server = Server::start(dir, database_url).await;
    let room_id = server.create_room().await;
    let mut client = server.join(&room_id, "bob").await;
    let token = client.resume_token.clone();
    let (_, seq) = chase_pickups(&mut client, 1).await;
    // Keep moving right up to the kill, so that the lost play is visible in the tick.
    let moving = stand_still(&mut client, seq).await;
    client.send_input(seq + 1, 0.0, 1.0).await;
    let mut last = moving;
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        last = client.until(WAIT, |m| seen_in(m, "bob")).await;
    }

    let mut server = server;
    server.signal("-KILL");
    let (code, last) = read_until_closed(&mut client, "bob", last).await;
    assert_ne!(
        code,
        Some(close::GOING_AWAY),
        "no goodbye from a killed server"
    );
    let status = server.exited_within(Duration::from_secs(5)).await;
    assert!(!status.success());
    drop(server);

    let (room_status, snapshot_tick) = stored(database_url, &room_id).await;
    assert_eq!(room_status, RoomStatus::Open);
    let snapshot_tick = snapshot_tick.expect("a snapshot was flushed before the kill");
    // At most one snapshot interval plus one flush interval of play is lost; the slack covers a
    // write in progress and scheduling on a busy machine.
    let flush_ticks = FLUSH_INTERVAL_MS * TICK_RATE / 1000;
    let bound = SNAPSHOT_EVERY_TICKS + flush_ticks + 10;
    let lost = last.tick.saturating_sub(snapshot_tick);
    eprintln!(
        "SIGKILL: last tick seen {}, restored from tick {snapshot_tick}: {lost} ticks lost (bound {bound})",
        last.tick
    );
    assert!(
        lost <= bound,
        "lost {lost} ticks (seen {}, snapshot {snapshot_tick}), more than {bound}",
        last.tick
    );

    let server = Server::start(dir, database_url).await;
    let welcome = check_restored(
        &server,
        &room_id,
        &token,
        "bob",
        snapshot_tick,
        last.last_seq + 1,
    )
    .await;
    assert!(
        welcome.score >= moving.score,
        "the score from before the last snapshot is kept"
    );
}

mod sqlite {
    #[tokio::test]
    async fn sigterm_then_restart_keeps_tick_positions_scores_and_resume() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/s.db?mode=rwc", dir.path().display());
        super::sigterm_keeps_tick_positions_and_scores(&url, dir.path()).await;
    }

    #[tokio::test]
    async fn sigkill_then_restart_loses_at_most_a_snapshot_and_a_flush_interval() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/s.db?mode=rwc", dir.path().display());
        super::sigkill_loses_at_most_a_snapshot_and_a_flush_interval(&url, dir.path()).await;
    }
}

mod postgres {
    use persistence::test_support::FreshPostgres;

    #[tokio::test]
    async fn sigterm_then_restart_keeps_tick_positions_scores_and_resume() {
        let Some(db) = FreshPostgres::create("restart e2e").await else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        super::sigterm_keeps_tick_positions_and_scores(&db.url, dir.path()).await;
    }

    #[tokio::test]
    async fn sigkill_then_restart_loses_at_most_a_snapshot_and_a_flush_interval() {
        let Some(db) = FreshPostgres::create("restart e2e").await else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        super::sigkill_loses_at_most_a_snapshot_and_a_flush_interval(&db.url, dir.path()).await;
    }
}
