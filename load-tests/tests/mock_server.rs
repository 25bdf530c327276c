//! End to end against a small mock of the server's contract (DESIGN.md): `/healthz`, `/v1/matchmake`,
//! `/v1/rooms`, `/v1/rooms/{id}/seats`, and `/v1/ws` with a welcome, a 20 Hz `state` that acks the
//! player's newest input seq, and `error` replies to invalid frames. It checks the bots' bookkeeping and
//! report without the real server; the real one is measured by `ccu.sh`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::{Bytes, Message};

#[derive(Serialize)]
struct Arena {
    players: Vec<(String, f32, f32, u32, u32)>,
    pickups: Vec<(u32, f32, f32)>,
    remaining_ms: u64,
}

#[derive(Serialize)]
struct Welcome<'a> {
    t: &'a str,
    room_id: &'a str,
    player_id: &'a str,
    tick: u64,
    tick_rate: u32,
    resume_token: &'a str,
    state: Arena,
}

#[derive(Serialize)]
struct State {
    t: &'static str,
    tick: u64,
    state: Arena,
}

#[derive(Serialize)]
struct ErrorMsg {
    t: &'static str,
    code: &'static str,
    message: &'static str,
}

#[derive(Deserialize)]
struct Dir {
    dx: f32,
    dy: f32,
}

#[derive(Deserialize)]
struct ClientMsg {
    t: String,
    seq: Option<u32>,
    input: Option<Dir>,
}

#[derive(Default)]
struct Seen {
    rooms_created: AtomicU64,
    inputs: AtomicU64,
    invalid: AtomicU64,
}

fn arena(me: &str, others: usize, last_seq: u32) -> Arena {
    let mut players: Vec<_> = (0..others)
        .map(|i| (format!("other-{i}"), 1.0, 2.0, 3, 4))
        .collect();
    players.insert(others / 2, (me.to_owned(), 0.5, 0.5, 0, last_seq));
    Arena {
        players,
        pickups: vec![(1, 2.0, 3.0)],
        remaining_ms: 60_000,
    }
}

async fn serve(listener: TcpListener, seen: Arc<Seen>) {
    let port = listener.local_addr().unwrap().port();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let seen = seen.clone();
        tokio::spawn(async move {
            let _ = connection(stream, port, seen).await;
        });
    }
}

async fn connection(mut stream: TcpStream, port: u16, seen: Arc<Seen>) -> std::io::Result<()> {
    let mut peek = [0u8; 256];
    let n = stream.peek(&mut peek).await?;
    let head = String::from_utf8_lossy(&peek[..n]).into_owned();
    if let Some(rest) = head.strip_prefix("GET /v1/ws?ticket=") {
        let ticket = rest.split(' ').next().unwrap().to_owned();
        return websocket(stream, ticket, seen).await;
    }
    // Plain HTTP, one request per connection.
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let body_start = loop {
        let k = stream.read(&mut chunk).await?;
        if k == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..k]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..body_start]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    while buf.len() < body_start + length {
        let k = stream.read(&mut chunk).await?;
        if k == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..k]);
    }
    let body: serde_json::Value =
        serde_json::from_slice(&buf[body_start..body_start + length]).unwrap_or_default();
    let authorised = head.contains("authorization: bearer secret");
    let line = head.lines().next().unwrap_or_default().to_owned();
    let seat = |player: &str| {
        serde_json::json!({
            "room_id": "room-1",
            "ticket": player,
            "ws_url": format!("ws://127.0.0.1:{port}/v1/ws?ticket={player}"),
            "expires_at": "2026-11-29T09:30:00Z",
        })
    };
    let (status, reply) = if line.starts_with("get /healthz") {
        ("200 OK", serde_json::json!({"status": "ok"}))
    } else if !authorised {
        (
            "401 Unauthorized",
            serde_json::json!({"error": {"code": "unauthorized", "message": "no"}}),
        )
    } else if line.starts_with("post /v1/matchmake")
        || (line.starts_with("post /v1/rooms/") && line.contains("/seats"))
    {
        ("201 Created", seat(body["player_id"].as_str().unwrap()))
    } else if line.starts_with("post /v1/rooms") {
        let n = seen.rooms_created.fetch_add(1, Ordering::Relaxed);
        assert!(body["max_players"].as_u64().is_some());
        (
            "201 Created",
            serde_json::json!({"room_id": format!("room-{n}")}),
        )
    } else {
        (
            "404 Not Found",
            serde_json::json!({"error": {"code": "not_found", "message": line}}),
        )
    };
    let body = reply.to_string();
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

async fn websocket(stream: TcpStream, player: String, seen: Arc<Seen>) -> std::io::Result<()> {
    let mut ws = tokio_tungstenite::accept_async(stream)
        .await
        .map_err(std::io::Error::other)?;
    let send = |v: Vec<u8>| Message::Binary(Bytes::from(v));
    let welcome = Welcome {
        t: "welcome",
        room_id: "room-1",
        player_id: &player,
        tick: 0,
        tick_rate: 20,
        resume_token: "resume",
        state: arena(&player, 15, 0),
    };
    if ws
        .send(send(rmp_serde::to_vec_named(&welcome).unwrap()))
        .await
        .is_err()
    {
        return Ok(());
    }
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let (mut newest, mut acked) = (0u32, 0u32);
    let mut n = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                n += 1;
                // A tick applies the newest input received before it.
                acked = newest.max(acked);
                let state = State { t: "state", tick: n, state: arena(&player, 15, acked) };
                if ws.send(send(rmp_serde::to_vec_named(&state).unwrap())).await.is_err() {
                    return Ok(());
                }
            }
            msg = ws.next() => match msg {
                Some(Ok(Message::Binary(b))) => match rmp_serde::from_slice::<ClientMsg>(&b) {
                    Ok(ClientMsg { t, seq: Some(seq), input: Some(Dir { dx, dy }) })
                        if t == "input" && dx.is_finite() && dy.is_finite() =>
                    {
                        seen.inputs.fetch_add(1, Ordering::Relaxed);
                        newest = newest.max(seq);
                    }
                    _ => {
                        seen.invalid.fetch_add(1, Ordering::Relaxed);
                        let e = ErrorMsg { t: "error", code: "invalid_frame", message: "bad" };
                        let _ = ws.send(send(rmp_serde::to_vec_named(&e).unwrap())).await;
                    }
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Ok(()),
                Some(Ok(_)) => {}
            }
        }
    }
}

/// Starts the mock on its own runtime thread; returns its base URL and what it saw.
fn start_mock() -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let (tx, rx) = std::sync::mpsc::channel();
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap().port()).unwrap();
            serve(listener, seen2).await;
        });
    });
    let port = rx.recv().unwrap();
    (format!("http://127.0.0.1:{port}"), seen)
}

fn bots(url: &str, extra: &[&str]) -> (std::process::ExitStatus, serde_json::Value) {
    let dir = std::env::temp_dir().join(format!("skirmish-bots-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join(format!(
        "report-{}.json",
        extra.join("_").replace(['=', ',', '/'], "-")
    ));
    let status = Command::new(env!("CARGO_BIN_EXE_skirmish-bots"))
        .args(["--url", url, "--api-key", "secret", "--quiet", "--json"])
        .arg(&json)
        .args(extra)
        .env_remove("SKIRMISH_API_KEY")
        .status()
        .unwrap();
    let report = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    (status, report)
}

#[test]
fn bots_play_and_measure_against_the_contract() {
    let (url, seen) = start_mock();
    let (status, r) = bots(
        &url,
        &[
            "--bots",
            "24",
            "--ramp",
            "300ms",
            "--duration",
            "2s",
            "--max-p99-ms",
            "200",
            "--max-errors",
            "0",
            "--min-connected",
            "24",
        ],
    );
    assert!(status.success(), "{status}: {r:#}");
    assert_eq!(r["bots"]["connected"], 24);
    assert_eq!(r["bots"]["live_at_end"], 24);
    assert_eq!(r["errors"]["total"], 0, "{r:#}");
    assert_eq!(r["config"]["join"], "matchmake");
    let acks = r["ack_latency_ms"]["count"].as_u64().unwrap();
    // 24 bots x 20 inputs/s x 2 s, give or take the edges of the window.
    assert!(acks > 700, "{r:#}");
    let p99 = r["ack_latency_ms"]["p99"].as_f64().unwrap();
    assert!(p99 > 0.0 && p99 < 200.0, "{r:#}");
    let per_bot = r["rates"]["states_per_bot_s"].as_f64().unwrap();
    assert!((15.0..=25.0).contains(&per_bot), "{r:#}");
    assert!(r["bot_process"]["cpu_pct"].as_f64().is_some());
    assert!(seen.inputs.load(Ordering::Relaxed) > 700);
    assert_eq!(seen.invalid.load(Ordering::Relaxed), 0);
}

#[test]
fn mixed_behaviours_and_own_rooms() {
    let (url, seen) = start_mock();
    let (status, r) = bots(
        &url,
        &[
            "--bots",
            "20",
            "--room-size",
            "4",
            "--ramp",
            "200ms",
            "--duration",
            "3s",
            "--mix",
            "normal=2,idle=1,slow-reader=1,chaos=1",
            "--max-errors",
            "0",
        ],
    );
    assert!(status.success(), "{status}: {r:#}");
    assert_eq!(r["config"]["join"], "rooms");
    assert_eq!(seen.rooms_created.load(Ordering::Relaxed), 5);
    assert_eq!(r["bots"]["live_at_end"], 20);
    // Four chaos bots, one invalid frame each every 2 s: each was answered with an error, which is
    // expected of chaos and not an error of the run.
    assert!(seen.invalid.load(Ordering::Relaxed) >= 4, "{r:#}");
    assert!(
        r["window_totals"]["error_messages"].as_u64().unwrap() >= 1,
        "{r:#}"
    );
    assert_eq!(r["errors"]["error_replies"], 0);
}

#[test]
fn missed_thresholds_exit_with_2() {
    let (url, _) = start_mock();
    // Nobody can be acked within a microsecond.
    let (status, r) = bots(
        &url,
        &[
            "--bots",
            "4",
            "--ramp",
            "0s",
            "--duration",
            "1s",
            "--max-p99-ms",
            "0.001",
        ],
    );
    assert_eq!(status.code(), Some(2), "{r:#}");
    assert_eq!(r["thresholds"]["passed"], false);
}

#[test]
fn a_wrong_api_key_is_a_join_error() {
    let (url, _) = start_mock();
    let out = Command::new(env!("CARGO_BIN_EXE_skirmish-bots"))
        .args([
            "--url",
            &url,
            "--api-key",
            "wrong",
            "--quiet",
            "--bots",
            "2",
            "--ramp",
            "0s",
            "--duration",
            "1s",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("401"), "{stderr}");
}
