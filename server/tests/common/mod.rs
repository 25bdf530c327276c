//! Test helpers: the real server on an ephemeral port with its own SQLite file, an HTTP client,
//! and a real WebSocket client.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod proxy;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use game_core::Seq;
use game_core::arena::{ARENA_SIZE, RawDirection};
use protocol::{ClientMessage, ServerMessage};
use serde_json::{Value, json};
use server::config::Config;
use server::startup::{Application, ShutdownHandle};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

pub const API_KEY: &str = "test-api-key-0123456789";

pub struct TestApp {
    pub port: u16,
    pub http: reqwest::Client,
    pub shutdown: ShutdownHandle,
    pub database_url: String,
    pub dir: tempfile::TempDir,
}

pub fn test_config(dir: &tempfile::TempDir) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        api_key: Some(API_KEY.into()),
        database_url: format!("sqlite://{}/skirmish.db?mode=rwc", dir.path().display()),
        log: "warn".into(),
        workers: 2,
        ..Config::default()
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(&dir);
    adjust(&mut config);
    spawn_app_in(dir, config).await
}

pub async fn spawn_app_in(dir: tempfile::TempDir, config: Config) -> TestApp {
    server::telemetry::init(&config);
    config.validate().unwrap();
    let database_url = config.database_url.clone();
    let app = Application::build(config).await.expect("server starts");
    let port = app.port();
    let shutdown = app.shutdown_handle();
    actix_rt::spawn(app.run_until_stopped());
    TestApp {
        port,
        http: reqwest::Client::new(),
        shutdown,
        database_url,
        dir,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn ws_url(&self, query: &str) -> String {
        format!("ws://127.0.0.1:{}/v1/ws?{query}", self.port)
    }

    pub async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(API_KEY)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(API_KEY)
            .send()
            .await
            .unwrap()
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.http
            .delete(self.url(path))
            .bearer_auth(API_KEY)
            .send()
            .await
            .unwrap()
    }

    pub async fn create_room(&self, body: Value) -> String {
        let response = self.post("/v1/rooms", body).await;
        assert_eq!(response.status(), 201);
        response.json::<Value>().await.unwrap()["room_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn seat(&self, room_id: &str, player: &str) -> Value {
        let response = self
            .post(
                &format!("/v1/rooms/{room_id}/seats"),
                json!({ "player_id": player }),
            )
            .await;
        assert_eq!(response.status(), 201, "seat for {player}");
        response.json().await.unwrap()
    }

    /// Reserves a seat, connects and reads the welcome.
    pub async fn join(&self, room_id: &str, player: &str) -> Client {
        let seat = self.seat(room_id, player).await;
        let mut client = Client::connect(seat["ws_url"].as_str().unwrap()).await;
        client.read_welcome().await;
        client
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(self.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub struct Client {
    pub ws: Ws,
    /// The URL it connected to.
    pub url: String,
    pub room_id: String,
    pub player_id: String,
    pub resume_token: String,
    pub welcome_tick: u64,
}

/// What a client saw last: a message, a close code, or the end of the stream.
#[derive(Debug)]
pub enum Received {
    Message(ServerMessage),
    Closed(Option<u16>),
}

impl Client {
    pub async fn connect(url: &str) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("websocket upgrade");
        Client {
            ws,
            url: url.to_string(),
            room_id: String::new(),
            player_id: String::new(),
            resume_token: String::new(),
            welcome_tick: 0,
        }
    }

    pub async fn read_welcome(&mut self) {
        match self.next().await {
            Received::Message(ServerMessage::Welcome {
                room_id,
                player_id,
                tick,
                resume_token,
                state,
                ..
            }) => {
                assert!(
                    state.players.iter().any(|p| p.0 == player_id),
                    "welcome state holds the joining player"
                );
                self.room_id = room_id;
                self.player_id = player_id;
                self.resume_token = resume_token;
                self.welcome_tick = tick;
            }
            other => panic!("expected welcome, got {other:?}"),
        }
    }

    pub async fn send_input(&mut self, seq: u32, dx: f32, dy: f32) {
        let frame = protocol::encode_client(&ClientMessage::Input {
            seq: Seq(seq),
            input: RawDirection { dx, dy },
        });
        self.send_binary(frame.to_vec()).await;
    }

    pub async fn send(&mut self, message: ClientMessage<RawDirection>) {
        self.send_binary(protocol::encode_client(&message).to_vec())
            .await;
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.ws.send(Message::Binary(bytes.into())).await.unwrap();
    }

    /// Encodes any serde value as a MessagePack map with string keys.
    pub async fn send_value(&mut self, value: &Value) {
        let bytes = rmp_serde::to_vec_named(value).unwrap();
        self.send_binary(bytes).await;
    }

    /// The next message or close, within 5 s.
    pub async fn next(&mut self) -> Received {
        self.next_within(Duration::from_secs(5)).await
    }

    pub async fn next_within(&mut self, limit: Duration) -> Received {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let item = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .expect("timed out waiting for the server");
            match item {
                Some(Ok(Message::Binary(bytes))) => {
                    return Received::Message(
                        protocol::decode_server(&bytes).expect("server frames decode"),
                    );
                }
                Some(Ok(Message::Close(frame))) => {
                    return Received::Closed(frame.map(|f| u16::from(f.code)));
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Received::Closed(None),
            }
        }
    }

    /// Reads until `pick` returns something, within `limit`.
    pub async fn until<T>(
        &mut self,
        limit: Duration,
        mut pick: impl FnMut(&ServerMessage) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_within(left).await {
                Received::Message(message) => {
                    if let Some(found) = pick(&message) {
                        return found;
                    }
                }
                Received::Closed(code) => panic!("closed with {code:?} while waiting"),
            }
        }
    }

    /// Reads (discarding messages) until the server closes; returns the close code.
    pub async fn expect_close(&mut self, limit: Duration) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if let Received::Closed(code) = self.next_within(left).await {
                return code;
            }
        }
    }

    /// This player's row in a state: (x, y, score, last_seq).
    pub fn own_row(&self, message: &ServerMessage) -> Option<(f32, f32, u32, u32)> {
        row_of(message, &self.player_id)
    }

    /// Drops the connection without a close handshake (half-closes TCP, as a client that lost its
    /// network would look to the server) and waits, within `limit`, until the server has ended it:
    /// by then the session has stopped and told its room about the drop.
    pub async fn drop_abruptly(&mut self, limit: Duration) {
        use tokio::io::AsyncWriteExt;
        match self.ws.get_mut() {
            tokio_tungstenite::MaybeTlsStream::Plain(tcp) => tcp.shutdown().await.unwrap(),
            _ => panic!("test clients use plain TCP"),
        }
        self.expect_close(limit).await;
    }

    pub async fn close(&mut self, code: u16) {
        let frame = CloseFrame {
            code: code.into(),
            reason: "".into(),
        };
        let _ = self.ws.close(Some(frame)).await;
    }
}

pub fn row_of(message: &ServerMessage, player: &str) -> Option<(f32, f32, u32, u32)> {
    match message {
        ServerMessage::State { state, .. } => state
            .players
            .iter()
            .find(|p| p.0 == player)
            .map(|p| (p.1, p.2, p.3, p.4)),
        _ => None,
    }
}

/// What the client saw of its player at some tick.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seen {
    pub tick: u64,
    pub x: f32,
    pub y: f32,
    pub score: u32,
    pub last_seq: u32,
}

pub fn seen_in(message: &ServerMessage, player: &str) -> Option<Seen> {
    match message {
        ServerMessage::State { tick, .. } => {
            row_of(message, player).map(|(x, y, score, last_seq)| Seen {
                tick: *tick,
                x,
                y,
                score,
                last_seq,
            })
        }
        _ => None,
    }
}

/// A unit direction from the player towards the nearest pickup (or the centre if none).
pub fn towards_nearest_pickup(message: &ServerMessage, me: &Seen) -> (f32, f32) {
    let target = match message {
        ServerMessage::State { state, .. } => {
            state.pickups.iter().map(|p| (p.1, p.2)).min_by(|a, b| {
                let da = (a.0 - me.x).powi(2) + (a.1 - me.y).powi(2);
                let db = (b.0 - me.x).powi(2) + (b.1 - me.y).powi(2);
                da.total_cmp(&db)
            })
        }
        _ => None,
    }
    .unwrap_or((ARENA_SIZE / 2.0, ARENA_SIZE / 2.0));
    let (dx, dy) = (target.0 - me.x, target.1 - me.y);
    let length = (dx * dx + dy * dy).sqrt().max(1e-3);
    (dx / length, dy / length)
}
