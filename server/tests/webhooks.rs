//! Webhooks end to end, with a real HTTP receiver on 127.0.0.1 in the test:
//! - a finished match is reported (`match.finished` with its ranked results, `room.closed` with
//!   `finished`), signed, and `GET …/results` serves the same results; a deleted room is reported
//!   as `room.closed` with `deleted`;
//! - a receiver that answers 500 twice then 200 gets the same event id three times, then never again;
//! - an event undelivered past its retry window is marked failed and no longer sent;
//! - against the real binary: the receiver is down when the match ends, the server is killed with
//!   SIGKILL, restarted, the receiver comes back, and the events (same ids) are delivered.
//!
//! Each runs on SQLite and on PostgreSQL (`TEST_DATABASE_URL`; skipped with a loud line without it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{HashMap, VecDeque};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::proxy::{Proxy, through};
use common::{API_KEY, Client, TestApp, spawn_app_with};
use hmac::{Hmac, Mac};
use persistence::{OutboxStatus, PoolOptions, Storage, StoredEvent};
use protocol::{Event, ServerMessage};
use serde_json::{Value, json};
use sha2::Sha256;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Notify;

const SECRET: &str = "whsec-test-0123456789";
const WAIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// The receiver: a minimal HTTP/1.1 server that records every request and answers from a script.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Delivery {
    /// Lower-case names.
    headers: HashMap<String, String>,
    body: String,
    json: Value,
    at: Instant,
}

impl Delivery {
    fn id(&self) -> &str {
        self.json["id"].as_str().unwrap()
    }

    fn kind(&self) -> &str {
        self.json["type"].as_str().unwrap()
    }
}

struct Shared {
    deliveries: Mutex<Vec<Delivery>>,
    arrived: Notify,
    /// Statuses for the next requests, in order; then `then`.
    script: Mutex<VecDeque<u16>>,
    then: u16,
}

struct Receiver {
    port: u16,
    shared: Arc<Shared>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Receiver {
    async fn start(script: &[u16], then: u16) -> Receiver {
        Self::start_on(0, script, then).await
    }

    async fn start_on(port: u16, script: &[u16], then: u16) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            deliveries: Mutex::new(Vec::new()),
            arrived: Notify::new(),
            script: Mutex::new(script.iter().copied().collect()),
            then,
        });
        let serving = shared.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(serve(socket, serving.clone()));
            }
        });
        Receiver {
            port,
            shared,
            accept,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks", self.port)
    }

    fn deliveries(&self) -> Vec<Delivery> {
        self.shared.deliveries.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests arrived; returns them all.
    async fn wait_for(&self, n: usize, limit: Duration) -> Vec<Delivery> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let arrived = self.shared.arrived.notified();
            let got = self.deliveries();
            if got.len() >= n {
                return got;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!(
                    "{} of {n} webhook requests arrived within {limit:?}: {got:#?}",
                    got.len()
                );
            }
        }
    }
}

/// One request per connection: read head and body, record, answer, close.
async fn serve(mut socket: tokio::net::TcpStream, shared: Arc<Shared>) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        assert!(buffer.len() < 64 * 1024, "request head too large");
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_string();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buffer.len() < head_end + length {
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
    let body = String::from_utf8(buffer[head_end..head_end + length].to_vec()).unwrap();
    assert_eq!(request_line, "POST /hooks HTTP/1.1");
    let status = shared
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(shared.then);
    let delivery = Delivery {
        json: serde_json::from_str(&body).expect("the body is JSON"),
        headers,
        body,
        at: Instant::now(),
    };
    shared.deliveries.lock().unwrap().push(delivery);
    shared.arrived.notify_waiters();
    let response =
        format!("HTTP/1.1 {status} Scripted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    let _ = socket.write_all(response.as_bytes()).await;
    let _ = socket.shutdown().await;
}

/// Checks what every request must carry: JSON content, the event id header equal to the body's,
/// a signature over `t.body` with the shared secret and a recent `t`, and the body's shape.
fn assert_signed(delivery: &Delivery) {
    assert_eq!(delivery.headers["content-type"], "application/json");
    assert_eq!(delivery.headers["skirmish-event-id"], delivery.id());
    let signature = &delivery.headers["skirmish-signature"];
    let (t, v1) = signature
        .split_once(',')
        .and_then(|(t, v)| Some((t.strip_prefix("t=")?, v.strip_prefix("v1=")?)))
        .unwrap_or_else(|| panic!("signature {signature:?} is t=…,v1=…"));
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.{}", delivery.body).as_bytes());
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(v1, expected, "the signature verifies");
    let t: i64 = t.parse().unwrap();
    let now = OffsetDateTime::now_utc().unix_timestamp();
    assert!((now - t).abs() < 300, "t={t} is recent (now {now})");

    let body = delivery.json.as_object().unwrap();
    let mut keys: Vec<_> = body.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["created_at", "data", "id", "type"]);
    uuid::Uuid::parse_str(delivery.id()).expect("the id is a UUID");
    let created_at = body["created_at"].as_str().unwrap();
    OffsetDateTime::parse(created_at, &Rfc3339).expect("created_at is RFC 3339");
    assert!(created_at.ends_with('Z'), "{created_at} is UTC");
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn with_webhooks(
    receiver_url: String,
    database_url: Option<String>,
) -> impl FnOnce(&mut server::config::Config) {
    move |c| {
        c.webhook_url = Some(receiver_url);
        c.webhook_secret = Some(SECRET.into());
        c.webhook_retry_base_ms = 100;
        c.webhook_timeout_ms = 2000;
        c.persistence_flush_interval_ms = 50;
        if let Some(url) = database_url {
            c.database_url = url;
        }
    }
}

async fn storage(database_url: &str) -> Storage {
    Storage::connect(database_url, &PoolOptions::default())
        .await
        .expect("open the test database")
}

/// Polls `check` every 50 ms until it returns something, at most `limit`.
async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    limit: Duration,
    what: &str,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The outbox rows once `pick` accepts them.
async fn outbox_when(
    storage: &Storage,
    what: &str,
    pick: impl Fn(&[StoredEvent]) -> bool,
) -> Vec<StoredEvent> {
    eventually(WAIT, what, || async {
        let events = storage.outbox_events().await.ok()?;
        pick(&events).then_some(events)
    })
    .await
}

/// Reads until `match_over`; returns its results.
async fn match_over(client: &mut Client) -> Vec<(String, u32, u32)> {
    client
        .until(WAIT, |m| match m {
            ServerMessage::Event(Event::MatchOver { results }) => Some(results.clone()),
            _ => None,
        })
        .await
}

fn metric(text: &str, name: &str) -> f64 {
    metric_if_any(text, name).unwrap_or_else(|| panic!("{name} missing from /metrics"))
}

fn metric_if_any(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

fn results_json(results: &[(String, u32, u32)]) -> Value {
    let mut sorted = results.to_vec();
    sorted.sort_by(|a, b| a.2.cmp(&b.2).then_with(|| a.0.cmp(&b.0)));
    Value::Array(
        sorted
            .into_iter()
            .map(|(player_id, score, rank)| json!({"player_id": player_id, "score": score, "rank": rank}))
            .collect(),
    )
}

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

async fn finished_and_deleted_rooms_are_reported(database_url: Option<String>) {
    let receiver = Receiver::start(&[], 200).await;
    let app: TestApp = spawn_app_with(with_webhooks(receiver.url(), database_url)).await;
    let metrics = app.metrics().await;
    for family in [
        "skirmish_webhook_events_enqueued_total",
        "skirmish_webhook_delivered_total",
        "skirmish_webhook_retried_total",
        "skirmish_webhook_failed_total",
        "skirmish_webhook_oldest_pending_seconds",
    ] {
        metric(&metrics, family);
    }

    let room = app
        .create_room(json!({ "mode": "arena", "duration_s": 1 }))
        .await;
    let mut alice = app.join(&room, "alice").await;
    let _bob = app.join(&room, "bob").await;
    let over = match_over(&mut alice).await;
    assert_eq!(over.len(), 2);

    let got = receiver.wait_for(2, WAIT).await;
    for delivery in &got {
        assert_signed(delivery);
    }
    let finished = got
        .iter()
        .find(|d| d.kind() == "match.finished")
        .expect("match.finished");
    let closed = got
        .iter()
        .find(|d| d.kind() == "room.closed")
        .expect("room.closed");
    assert_ne!(finished.id(), closed.id());
    assert_eq!(
        finished.json["data"],
        json!({ "room_id": room, "mode": "arena", "results": results_json(&over) })
    );
    assert_eq!(
        closed.json["data"],
        json!({ "room_id": room, "reason": "finished" })
    );

    let response = app.get(&format!("/v1/rooms/{room}/results")).await;
    assert_eq!(response.status(), 200);
    let results: Value = response.json().await.unwrap();
    assert_eq!(results["room_id"], room.as_str());
    assert_eq!(results["mode"], "arena");
    assert_eq!(results["results"], finished.json["data"]["results"]);
    assert_eq!(results["finished_at"], finished.json["created_at"]);

    let doomed = app.create_room(json!({ "mode": "arena" })).await;
    assert_eq!(
        app.delete(&format!("/v1/rooms/{doomed}")).await.status(),
        204
    );
    let got = receiver.wait_for(3, WAIT).await;
    let deleted = &got[2];
    assert_signed(deleted);
    assert_eq!(deleted.kind(), "room.closed");
    assert_eq!(
        deleted.json["data"],
        json!({ "room_id": doomed, "reason": "deleted" })
    );

    // Every event is recorded as delivered, at the first attempt, and none is sent twice.
    let storage = storage(&app.database_url).await;
    let stored = outbox_when(&storage, "all three delivered", |events| {
        events.len() == 3 && events.iter().all(|e| e.status == OutboxStatus::Delivered)
    })
    .await;
    assert!(stored.iter().all(|e| e.attempts == 1), "{stored:#?}");
    for delivery in receiver.deliveries() {
        let row = stored.iter().find(|e| e.id == delivery.id()).unwrap();
        assert_eq!(
            row.payload, delivery.body,
            "the stored body is what was sent"
        );
    }
    assert_eq!(receiver.deliveries().len(), 3);
    let metrics = app.metrics().await;
    assert!(metric(&metrics, "skirmish_webhook_delivered_total") >= 3.0);
    assert!(metric(&metrics, "skirmish_webhook_events_enqueued_total") >= 3.0);
    assert!(metrics.contains("skirmish_webhook_delivery_seconds_bucket"));
    app.shutdown.shutdown().await;
}

async fn failed_attempts_are_retried_with_the_same_id(database_url: Option<String>) {
    let receiver = Receiver::start(&[500, 500], 200).await;
    let app = spawn_app_with(with_webhooks(receiver.url(), database_url)).await;
    let room = app.create_room(json!({ "mode": "arena" })).await;
    assert_eq!(app.delete(&format!("/v1/rooms/{room}")).await.status(), 204);

    let got = receiver.wait_for(3, WAIT).await;
    for delivery in &got {
        assert_signed(delivery);
        assert_eq!(
            delivery.body, got[0].body,
            "every attempt sends the same body"
        );
    }
    assert_eq!(
        got[0].json["data"],
        json!({ "room_id": room, "reason": "deleted" })
    );
    // Backoff: at least half of base·2^(n-1) between attempts (100 ms base: 50 ms, then 100 ms).
    assert!(
        got[1].at - got[0].at >= Duration::from_millis(50),
        "{got:#?}"
    );
    assert!(
        got[2].at - got[1].at >= Duration::from_millis(100),
        "{got:#?}"
    );

    let storage = storage(&app.database_url).await;
    let stored = outbox_when(&storage, "the event is delivered", |events| {
        events.len() == 1 && events[0].status == OutboxStatus::Delivered
    })
    .await;
    assert_eq!(stored[0].id, got[0].id());
    assert_eq!(stored[0].attempts, 3);
    assert_eq!(stored[0].last_error, None);
    // Delivered means never again: over ten times the next backoff, nothing more arrives.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        receiver.deliveries().len(),
        3,
        "{:#?}",
        receiver.deliveries()
    );
    assert!(metric(&app.metrics().await, "skirmish_webhook_retried_total") >= 2.0);
    app.shutdown.shutdown().await;
}

async fn events_past_their_window_are_marked_failed(database_url: Option<String>) {
    let receiver = Receiver::start(&[], 503).await;
    let app = spawn_app_with(|c| {
        with_webhooks(receiver.url(), database_url)(c);
        c.webhook_max_age_ms = 800;
    })
    .await;
    let room = app.create_room(json!({ "mode": "arena" })).await;
    assert_eq!(app.delete(&format!("/v1/rooms/{room}")).await.status(), 204);

    let storage = storage(&app.database_url).await;
    let stored = outbox_when(&storage, "the event is marked failed", |events| {
        events.len() == 1 && events[0].status == OutboxStatus::Failed
    })
    .await;
    assert_eq!(
        stored[0].last_error.as_deref(),
        Some("HTTP 503 Service Unavailable")
    );
    let attempts = stored[0].attempts as usize;
    assert!(attempts >= 2, "retried within the window: {attempts}");
    let got = receiver.deliveries();
    assert_eq!(got.len(), attempts);
    assert!(got.iter().all(|d| d.id() == stored[0].id));
    assert!(metric(&app.metrics().await, "skirmish_webhook_failed_total") >= 1.0);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        receiver.deliveries().len(),
        attempts,
        "a failed event is never sent again"
    );
    app.shutdown.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// The real binary, killed with SIGKILL while its receiver is down
// ---------------------------------------------------------------------------------------------

/// The `skirmish` binary as a child process; killed if the test ends without stopping it.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

impl Server {
    async fn start(dir: &std::path::Path, database_url: &str, receiver_port: u16) -> Server {
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
                std::env::var("E2E_SKIRMISH_LOG").unwrap_or_else(|_| "error".into()),
            )
            .env(
                "SKIRMISH_WEBHOOK_URL",
                format!("http://127.0.0.1:{receiver_port}/hooks"),
            )
            .env("SKIRMISH_WEBHOOK_SECRET", SECRET)
            .env("SKIRMISH_WEBHOOK_RETRY_BASE_MS", "200")
            .env("SKIRMISH_WEBHOOK_TIMEOUT_MS", "1000")
            .env("SKIRMISH_PERSISTENCE_FLUSH_INTERVAL_MS", "50")
            .stdin(Stdio::null())
            .spawn()
            .expect("start the skirmish binary");
        let mut server = Server { child, port };
        let http = reqwest::Client::new();
        let url = server.url("/healthz");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("skirmish exited during start: {status}");
            }
            if let Ok(response) = http.get(&url).send().await
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

    /// Sends `signal` (`-KILL`, `-TERM`) and waits for the exit; a SIGTERM must exit cleanly.
    async fn stop(mut self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        let exit = loop {
            if let Some(exit) = self.child.try_wait().unwrap() {
                break exit;
            }
            assert!(
                Instant::now() < deadline,
                "still running 10 s after {signal}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        if signal == "-TERM" {
            assert!(exit.success(), "a graceful stop exits 0, got {exit}");
        }
    }
}

async fn pending_events_survive_a_stop_and_go_out_after_restart(
    database_url: &str,
    dir: &std::path::Path,
    signal: &str,
) {
    let receiver_port = free_port(); // nothing listens there yet: connections are refused
    let server = Server::start(dir, database_url, receiver_port).await;
    let http = reqwest::Client::new();
    let created: Value = http
        .post(server.url("/v1/rooms"))
        .bearer_auth(API_KEY)
        .json(&json!({ "mode": "arena", "duration_s": 1 }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let room = created["room_id"].as_str().unwrap().to_string();
    let seat: Value = http
        .post(server.url(&format!("/v1/rooms/{room}/seats")))
        .bearer_auth(API_KEY)
        .json(&json!({ "player_id": "alice" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut alice = Client::connect(seat["ws_url"].as_str().unwrap()).await;
    alice.read_welcome().await;
    let over = match_over(&mut alice).await;

    // Both events are stored and have been attempted (and refused) at least once.
    let storage = storage(database_url).await;
    let before = outbox_when(&storage, "both events attempted", |events| {
        events.len() == 2
            && events
                .iter()
                .all(|e| e.status == OutboxStatus::Pending && e.attempts >= 1)
    })
    .await;
    server.stop(signal).await;

    let receiver = Receiver::start_on(receiver_port, &[], 200).await;
    let server = Server::start(dir, database_url, receiver_port).await;
    let got = receiver.wait_for(2, Duration::from_secs(40)).await;
    for delivery in &got {
        assert_signed(delivery);
        assert!(
            before
                .iter()
                .any(|e| e.id == delivery.id() && e.payload == delivery.body),
            "the event sent after the restart is the one stored before: {delivery:#?}"
        );
    }
    let finished = got.iter().find(|d| d.kind() == "match.finished").unwrap();
    assert_eq!(
        finished.json["data"],
        json!({ "room_id": room, "mode": "arena", "results": results_json(&over) })
    );
    let closed = got.iter().find(|d| d.kind() == "room.closed").unwrap();
    assert_eq!(closed.json["data"]["reason"], "finished");
    outbox_when(&storage, "both delivered", |events| {
        events.iter().all(|e| e.status == OutboxStatus::Delivered)
    })
    .await;
    // The results outlive the process too.
    let response = http
        .get(server.url(&format!("/v1/rooms/{room}/results")))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let results: Value = response.json().await.unwrap();
    assert_eq!(results["results"], finished.json["data"]["results"]);
    storage.close().await.ok();
}

// ---------------------------------------------------------------------------------------------
// A database outage (PostgreSQL behind a TCP proxy of the test's own, which is cut)
// ---------------------------------------------------------------------------------------------

/// A room deleted while the database is cut: its event cannot be stored, so nothing is sent (an
/// event exists only once its change is committed); once the database is back, the persistence
/// actor commits both and the event goes out.
async fn an_event_of_an_outage_goes_out_once_the_database_is_back(database_url: &str) {
    let (_, upstream) = through(database_url, "127.0.0.1:1".parse().unwrap());
    let proxy = Proxy::start(upstream).await;
    let (proxied, _) = through(database_url, proxy.addr);
    let receiver = Receiver::start(&[], 200).await;
    let app = spawn_app_with(|c| {
        with_webhooks(receiver.url(), Some(proxied))(c);
        c.database_acquire_timeout_ms = 500;
    })
    .await;
    let room = app.create_room(json!({ "mode": "arena" })).await;
    app.shutdown.flush_persistence().await.unwrap();

    let errors = "skirmish_persistence_write_errors_total";
    let errors_before = metric_if_any(&app.metrics().await, errors).unwrap_or(0.0);
    proxy.cut();
    assert_eq!(app.delete(&format!("/v1/rooms/{room}")).await.status(), 204);
    // The write is failing and retried meanwhile; nothing can have been sent.
    let failing = Instant::now() + Duration::from_secs(10);
    while metric_if_any(&app.metrics().await, errors).unwrap_or(0.0) <= errors_before {
        assert!(
            Instant::now() < failing,
            "the write never failed during the outage"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        receiver.deliveries().is_empty(),
        "an uncommitted event was sent"
    );

    proxy.restore();
    let got = receiver.wait_for(1, WAIT).await;
    assert_signed(&got[0]);
    assert_eq!(
        got[0].json["data"],
        json!({ "room_id": room, "reason": "deleted" })
    );
    let storage = storage(database_url).await;
    let stored = outbox_when(&storage, "the event is delivered", |events| {
        events.len() == 1 && events[0].status == OutboxStatus::Delivered
    })
    .await;
    assert_eq!(stored[0].id, got[0].id());
    app.shutdown.shutdown().await;
}

mod sqlite {
    #[actix_rt::test]
    async fn a_finished_match_and_a_deleted_room_are_reported_signed() {
        super::finished_and_deleted_rooms_are_reported(None).await;
    }

    #[actix_rt::test]
    async fn a_receiver_that_fails_twice_gets_the_same_event_three_times_then_never() {
        super::failed_attempts_are_retried_with_the_same_id(None).await;
    }

    #[actix_rt::test]
    async fn an_event_undelivered_past_its_window_is_marked_failed() {
        super::events_past_their_window_are_marked_failed(None).await;
    }

    #[tokio::test]
    async fn pending_events_survive_sigkill_and_go_out_after_restart() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/s.db?mode=rwc", dir.path().display());
        super::pending_events_survive_a_stop_and_go_out_after_restart(&url, dir.path(), "-KILL")
            .await;
    }

    #[tokio::test]
    async fn pending_events_survive_sigterm_and_go_out_after_restart() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/s.db?mode=rwc", dir.path().display());
        super::pending_events_survive_a_stop_and_go_out_after_restart(&url, dir.path(), "-TERM")
            .await;
    }
}

mod postgres {
    use persistence::test_support::FreshPostgres;

    #[actix_rt::test]
    async fn a_finished_match_and_a_deleted_room_are_reported_signed() {
        let Some(db) = FreshPostgres::create("webhooks").await else {
            return;
        };
        super::finished_and_deleted_rooms_are_reported(Some(db.url.clone())).await;
    }

    #[actix_rt::test]
    async fn a_receiver_that_fails_twice_gets_the_same_event_three_times_then_never() {
        let Some(db) = FreshPostgres::create("webhooks").await else {
            return;
        };
        super::failed_attempts_are_retried_with_the_same_id(Some(db.url.clone())).await;
    }

    #[actix_rt::test]
    async fn an_event_undelivered_past_its_window_is_marked_failed() {
        let Some(db) = FreshPostgres::create("webhooks").await else {
            return;
        };
        super::events_past_their_window_are_marked_failed(Some(db.url.clone())).await;
    }

    #[tokio::test]
    async fn pending_events_survive_sigkill_and_go_out_after_restart() {
        let Some(db) = FreshPostgres::create("webhooks e2e").await else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        super::pending_events_survive_a_stop_and_go_out_after_restart(&db.url, dir.path(), "-KILL")
            .await;
    }

    #[tokio::test]
    async fn pending_events_survive_sigterm_and_go_out_after_restart() {
        let Some(db) = FreshPostgres::create("webhooks e2e").await else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        super::pending_events_survive_a_stop_and_go_out_after_restart(&db.url, dir.path(), "-TERM")
            .await;
    }

    #[actix_rt::test]
    async fn an_event_of_a_database_outage_goes_out_once_the_database_is_back() {
        let Some(db) = FreshPostgres::create("webhooks outage").await else {
            return;
        };
        super::an_event_of_an_outage_goes_out_once_the_database_is_back(&db.url).await;
    }
}
