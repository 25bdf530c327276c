//! Cluster mode end to end: real `skirmish` processes on one PostgreSQL (a fresh database per
//! test), real WebSockets. Placement and concurrent matchmaking over three nodes, failover after a
//! SIGKILL, the drain on SIGTERM, and a node cut off from the database by a TCP proxy (it stops,
//! another node takes its room, and the database refuses its stale writes).
//!
//! The tests of this file run one at a time: each starts several servers, and a 2-core machine
//! that runs them all at once could starve a heartbeat, which is what the lease guards against.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{HashMap, HashSet};

use futures_util::StreamExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::proxy::{Proxy, through};
use common::{API_KEY, Client, Received, Seen, seen_in, towards_nearest_pickup};
use persistence::sea_orm::{self, ConnectionTrait, Database, Statement};
use persistence::test_support::FreshPostgres;
use protocol::{ServerMessage, close};
use serde_json::{Value, json};

const NODE_TTL_MS: u64 = 3000;
const WAIT: Duration = Duration::from_secs(10);

/// One test at a time (see the module comment).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A `skirmish` process in cluster mode; killed if the test ends without stopping it.
struct Node {
    id: String,
    child: Child,
    port: u16,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Drop for Node {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Node {
    async fn start(id: &str, database_url: &str) -> Node {
        Self::start_with_ttl(id, database_url, NODE_TTL_MS).await
    }

    /// `CLUSTER_TEST_BIN` runs another build of the binary (the benchmark uses the release one).
    async fn start_with_ttl(id: &str, database_url: &str, ttl_ms: u64) -> Node {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let binary = std::env::var("CLUSTER_TEST_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_skirmish").into());
        let child = Command::new(binary)
            .current_dir(dir.path())
            .env_remove("DATABASE_URL")
            .env("SKIRMISH_LISTEN", format!("127.0.0.1:{port}"))
            .env("SKIRMISH_DATABASE_URL", database_url)
            .env("SKIRMISH_API_KEY", API_KEY)
            .env("SKIRMISH_CLUSTER", "true")
            .env("SKIRMISH_NODE_ID", id)
            .env("SKIRMISH_NODE_TTL_MS", ttl_ms.to_string())
            .env("SKIRMISH_WORKERS", "1")
            .env("SKIRMISH_DATABASE_ACQUIRE_TIMEOUT_MS", "1000")
            .env("SKIRMISH_DATABASE_STATEMENT_TIMEOUT_MS", "1000")
            .env(
                "SKIRMISH_LOG",
                std::env::var("E2E_SKIRMISH_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .spawn()
            .expect("start the skirmish binary");
        let node = Node {
            id: id.to_string(),
            child,
            port,
            http: reqwest::Client::new(),
            _dir: dir,
        };
        node.wait_healthy().await;
        node
    }

    async fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = self.http.get(self.url("/healthz")).send().await
                && response.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not become healthy",
                self.id
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.url(path))
            .bearer_auth(API_KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(API_KEY)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A room created on this very node (a forwarded call is served where it lands).
    async fn create_room_here(&self) -> String {
        let response = self
            .http
            .post(self.url("/v1/rooms"))
            .bearer_auth(API_KEY)
            .header("Skirmish-Forwarded", "test")
            .json(&json!({ "mode": "arena", "duration_s": 600 }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let room: Value = response.json().await.unwrap();
        assert_eq!(room["node"], self.id.as_str());
        room["room_id"].as_str().unwrap().to_string()
    }

    async fn join(&self, room_id: &str, player: &str) -> Client {
        let (status, seat) = self
            .post(
                &format!("/v1/rooms/{room_id}/seats"),
                json!({ "player_id": player }),
            )
            .await;
        assert_eq!(status, 201, "seat for {player}: {seat}");
        let mut client = Client::connect(seat["ws_url"].as_str().unwrap()).await;
        client.read_welcome().await;
        client
    }

    async fn metric(&self, name: &str) -> f64 {
        let text = reqwest::get(self.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or(0.0)
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    async fn exited_within(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "{} still running", self.id);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Nodes started together on one empty database: they migrate one at a time and agree on one
/// secret (no `secret` is configured; a resume token signed by one node works on another).
async fn nodes(database_url: &str, ids: &[&str]) -> Vec<Node> {
    futures_util::future::join_all(ids.iter().map(|id| Node::start(id, database_url))).await
}

/// The port of the node a `ws://127.0.0.1:PORT/...` URL points at.
fn port_of(url: &str) -> u16 {
    let rest = url.split("://").nth(1).unwrap();
    let authority = rest.split('/').next().unwrap();
    authority.rsplit(':').next().unwrap().parse().unwrap()
}

/// Chases the nearest pickup until the player has scored; returns what it saw and the next seq.
async fn score_a_point(client: &mut Client, mut seq: u32) -> (Seen, u32) {
    let player = client.player_id.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (message, me) = client
            .until(WAIT, |m| seen_in(m, &player).map(|s| (m.clone(), s)))
            .await;
        if me.score > 0 {
            client.send_input(seq, 0.0, 0.0).await;
            return (me, seq + 1);
        }
        assert!(Instant::now() < deadline, "never reached a pickup: {me:?}");
        let (dx, dy) = towards_nearest_pickup(&message, &me);
        client.send_input(seq, dx, dy).await;
        seq += 1;
    }
}

/// Asks `node` where the token's room is until it names a node other than `gone` (a killed node
/// stays the owner on paper until its lease expires; a client that fails to connect asks again),
/// waiting out 503s (the room has no owner yet).
async fn locate(node: &Node, token: &str, gone: u16, limit: Duration) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let response = node
            .http
            .get(node.url(&format!("/v1/locate?resume={token}")))
            .send()
            .await
            .unwrap();
        match response.status().as_u16() {
            200 => {
                let located: Value = response.json().await.unwrap();
                if port_of(located["ws_url"].as_str().unwrap()) != gone {
                    return located;
                }
            }
            503 => assert!(
                response.headers().contains_key("retry-after"),
                "503 from locate carries Retry-After"
            ),
            other => panic!("locate answered {other}"),
        }
        assert!(Instant::now() < deadline, "the room found no new owner");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Resumes at `ws_url`: the welcome, then an input acknowledged on a later tick (playing again).
async fn resume_and_play(ws_url: &str, player: &str, seq: u32) -> (Seen, Seen) {
    let (_, welcome, acked) = resume_and_keep_playing(ws_url, player, seq).await;
    (welcome, acked)
}

/// [`resume_and_play`], keeping the connection.
async fn resume_and_keep_playing(ws_url: &str, player: &str, seq: u32) -> (Client, Seen, Seen) {
    let mut client = Client::connect(ws_url).await;
    let welcome = match client.next_within(WAIT).await {
        Received::Message(ServerMessage::Welcome {
            player_id,
            tick,
            state,
            ..
        }) => {
            assert_eq!(player_id, player);
            let row = state.players.iter().find(|p| p.0 == player).unwrap();
            Seen {
                tick,
                x: row.1,
                y: row.2,
                score: row.3,
                last_seq: row.4,
            }
        }
        other => panic!("expected a welcome after resuming, got {other:?}"),
    };
    client.player_id = player.to_string();
    client.send_input(seq, 1.0, 0.0).await;
    let acked = client
        .until(WAIT, |m| {
            seen_in(m, player).filter(|s| s.last_seq >= seq && s.tick > welcome.tick)
        })
        .await;
    (client, welcome, acked)
}

/// The admin connection to the test database, for checks the API does not expose.
async fn sql(database_url: &str, query: &str) -> Vec<sea_orm::QueryResult> {
    let db = Database::connect(database_url).await.unwrap();
    let rows = db
        .query_all(Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            query.to_string(),
        ))
        .await
        .unwrap();
    let _ = db.close().await;
    rows
}

#[tokio::test]
async fn two_hundred_matchmakes_over_three_nodes_never_overfill_and_open_at_the_owner() {
    let _serial = SERIAL.lock().await;
    let Some(db) = FreshPostgres::create("cluster e2e").await else {
        return;
    };
    let nodes = nodes(&db.url, &["node-a", "node-b", "node-c"]).await;
    let port_of_node: HashMap<String, u16> = nodes.iter().map(|n| (n.id.clone(), n.port)).collect();

    let started = Instant::now();
    let calls = (0..200).map(|i| {
        let node = &nodes[i % nodes.len()];
        async move {
            node.post(
                "/v1/matchmake",
                json!({ "mode": "arena", "player_id": format!("p{i}") }),
            )
            .await
        }
    });
    let answers = futures_util::future::join_all(calls).await;
    eprintln!("200 matchmakes over 3 nodes in {:?}", started.elapsed());

    let mut per_room: HashMap<String, Vec<String>> = HashMap::new();
    for (status, body) in &answers {
        assert_eq!(*status, 201, "matchmake: {body}");
        per_room
            .entry(body["room_id"].as_str().unwrap().to_string())
            .or_default()
            .push(body["ws_url"].as_str().unwrap().to_string());
    }
    let mut owners = HashSet::new();
    for (room_id, urls) in &per_room {
        assert!(urls.len() <= 16, "room {room_id} got {} seats", urls.len());
        let (status, room) = nodes[0].get(&format!("/v1/rooms/{room_id}")).await;
        assert_eq!(status, 200);
        let owner = room["node"].as_str().unwrap().to_string();
        for url in urls {
            assert_eq!(
                port_of(url),
                port_of_node[&owner],
                "a ticket opens at the owner"
            );
        }
        owners.insert(owner);
    }
    assert!(owners.len() >= 2, "rooms spread over the nodes: {owners:?}");

    // Every listing shows the whole cluster, each room with its owner.
    for node in &nodes {
        let (status, list) = node.get("/v1/rooms").await;
        assert_eq!(status, 200);
        let listed: HashSet<String> = list["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                assert!(r["node"].is_string(), "{r}");
                r["room_id"].as_str().unwrap().to_string()
            })
            .collect();
        assert_eq!(listed, per_room.keys().cloned().collect::<HashSet<_>>());
    }

    // Every ticket opens (at its owner).
    let opens = answers.iter().map(|(_, body)| async move {
        let mut client = Client::connect(body["ws_url"].as_str().unwrap()).await;
        client.read_welcome().await;
        client
    });
    let clients = futures_util::future::join_all(opens).await;
    assert_eq!(clients.len(), 200);

    // A ticket presented to a node that does not own the room is refused with 409.
    let (_, other) = nodes[0]
        .post(
            "/v1/matchmake",
            json!({ "mode": "arena", "player_id": "late" }),
        )
        .await;
    let owner_port = port_of(other["ws_url"].as_str().unwrap());
    let stranger = nodes.iter().find(|n| n.port != owner_port).unwrap();
    let wrong = other["ws_url"]
        .as_str()
        .unwrap()
        .replace(&format!(":{owner_port}/"), &format!(":{}/", stranger.port));
    match tokio_tungstenite::connect_async(wrong.as_str()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 409)
        }
        other => panic!("expected 409 from a node that does not own the room: {other:?}"),
    }

    // DELETE on any node closes the room on its owner (4001 to its sessions).
    let (room_id, _) = per_room.iter().next().unwrap();
    let deleter = &nodes[2];
    let response = deleter
        .http
        .delete(deleter.url(&format!("/v1/rooms/{room_id}")))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let mut in_room: Vec<Client> = clients
        .into_iter()
        .filter(|c| &c.room_id == room_id)
        .collect();
    for client in &mut in_room {
        assert_eq!(client.expect_close(WAIT).await, Some(close::ROOM_CLOSED));
    }
    let (_, room) = nodes[1].get(&format!("/v1/rooms/{room_id}")).await;
    assert_eq!(room["status"], "closed", "{room}");
}

#[tokio::test]
async fn sigkill_of_the_owner_players_resume_elsewhere_with_their_scores() {
    let _serial = SERIAL.lock().await;
    let Some(db) = FreshPostgres::create("cluster e2e").await else {
        return;
    };
    let mut nodes = nodes(&db.url, &["node-a", "node-b", "node-c"]).await;
    let room_id = nodes[0].create_room_here().await;
    let mut alice = nodes[1].join(&room_id, "alice").await;
    let mut bob = nodes[2].join(&room_id, "bob").await;
    let (alice_seen, alice_seq) = score_a_point(&mut alice, 1).await;
    let (bob_seen, bob_seq) = score_a_point(&mut bob, 1).await;
    // Let a snapshot (every second) holding both scores reach the database.
    tokio::time::sleep(Duration::from_millis(1800)).await;
    let snapshot_tick: i64 = sql(
        &db.url,
        &format!("SELECT max(tick) AS t FROM room_snapshots WHERE room_id = '{room_id}'"),
    )
    .await[0]
        .try_get("", "t")
        .unwrap();

    let mut victim = nodes.remove(0);
    let killed = Instant::now();
    victim.signal("-KILL");
    victim.exited_within(WAIT).await;
    let limit = Duration::from_millis(NODE_TTL_MS) + Duration::from_secs(5);

    for (client, seen, seq) in [
        (&mut alice, alice_seen, alice_seq),
        (&mut bob, bob_seen, bob_seq),
    ] {
        let player = client.player_id.clone();
        let located = locate(&nodes[0], &client.resume_token, victim.port, limit).await;
        let url = located["ws_url"].as_str().unwrap();
        assert_ne!(port_of(url), victim.port);
        let (welcome, acked) = resume_and_play(url, &player, seq + 10).await;
        assert_eq!(welcome.score, seen.score, "{player} keeps the score");
        assert!(
            welcome.tick >= snapshot_tick as u64,
            "restored from the newest snapshot"
        );
        assert!(acked.tick > welcome.tick, "the room ticks on");
    }
    let elapsed = killed.elapsed();
    eprintln!("failover: both players playing again {elapsed:?} after the SIGKILL");
    assert!(elapsed <= limit, "failover took {elapsed:?}");

    let (_, room) = nodes[1].get(&format!("/v1/rooms/{room_id}")).await;
    assert_eq!(room["status"], "open");
    assert_ne!(room["node"], "node-a");
    // At least this one; a node starved of CPU long enough to miss its lease (a loaded CI machine)
    // hands the room on once more, which is the lease doing its job.
    let failovers = nodes[0].metric("skirmish_cluster_failovers_total").await
        + nodes[1].metric("skirmish_cluster_failovers_total").await;
    assert!(failovers >= 1.0, "the takeover is counted: {failovers}");
}

#[tokio::test]
async fn sigterm_drains_every_room_to_the_other_nodes() {
    let _serial = SERIAL.lock().await;
    let Some(db) = FreshPostgres::create("cluster e2e").await else {
        return;
    };
    let mut nodes = nodes(&db.url, &["node-a", "node-b", "node-c"]).await;
    let mut players = Vec::new();
    for i in 0..3 {
        let room_id = nodes[0].create_room_here().await;
        let mut client = nodes[0].join(&room_id, &format!("p{i}")).await;
        let (seen, seq) = score_a_point(&mut client, 1).await;
        players.push((room_id, client, seen, seq));
    }
    let mut victim = nodes.remove(0);
    let signalled = Instant::now();
    victim.signal("-TERM");
    for (room_id, client, seen, seq) in &mut players {
        assert_eq!(client.expect_close(WAIT).await, Some(close::ROOM_MOVED));
        let player = client.player_id.clone();
        let located = locate(&nodes[0], &client.resume_token, victim.port, WAIT).await;
        assert_eq!(located["room_id"], room_id.as_str());
        let url = located["ws_url"].as_str().unwrap();
        assert_ne!(port_of(url), victim.port);
        let (welcome, _) = resume_and_play(url, &player, *seq + 10).await;
        assert_eq!(welcome.score, seen.score, "{player} keeps the score");
        assert!(welcome.tick >= seen.tick, "nothing lost in a handoff");
    }
    eprintln!(
        "drain: every player playing elsewhere {:?} after SIGTERM",
        signalled.elapsed()
    );
    let status = victim.exited_within(WAIT).await;
    assert!(status.success(), "a drained node exits 0: {status}");
    let (_, list) = nodes[0].get("/v1/rooms").await;
    let rooms = list["rooms"].as_array().unwrap();
    assert_eq!(rooms.len(), 3);
    for room in rooms {
        assert_eq!(room["status"], "open", "no room is lost: {room}");
        assert_ne!(room["node"], "node-a");
    }
}

#[tokio::test]
async fn a_rolling_restart_of_every_node_loses_no_room_and_no_player() {
    let _serial = SERIAL.lock().await;
    let Some(db) = FreshPostgres::create("cluster e2e").await else {
        return;
    };
    let mut nodes = nodes(&db.url, &["node-a", "node-b", "node-c"]).await;
    // Two rooms on each node, one player in each, who follows the room wherever it goes.
    let mut players = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        for r in 0..2 {
            let room_id = node.create_room_here().await;
            let (seen, client) = {
                let mut client = node.join(&room_id, &format!("p{n}x{r}")).await;
                let (seen, _) = score_a_point(&mut client, 1).await;
                (seen, client)
            };
            players.push((room_id, client, seen.score));
        }
    }
    let mut seq = 100;
    for turn in 0..nodes.len() {
        let id = nodes[turn].id.clone();
        nodes[turn].signal("-TERM");
        let gone = nodes[turn].port;
        let asker = &nodes[(turn + 1) % nodes.len()];
        for (room_id, client, score) in &mut players {
            // Players on the draining node are told 4005; the others play on undisturbed.
            if port_of(&client_url(client)) != gone {
                continue;
            }
            assert_eq!(client.expect_close(WAIT).await, Some(close::ROOM_MOVED));
            let located = locate(asker, &client.resume_token, gone, WAIT).await;
            assert_eq!(located["room_id"], room_id.as_str());
            let player = client.player_id.clone();
            let token = client.resume_token.clone();
            let (mut moved, welcome, _) =
                resume_and_keep_playing(located["ws_url"].as_str().unwrap(), &player, seq).await;
            assert_eq!(welcome.score, *score, "{player} keeps the score");
            moved.resume_token = token;
            moved.room_id = room_id.clone();
            *client = moved;
            seq += 1;
        }
        let status = nodes[turn].exited_within(WAIT).await;
        assert!(status.success(), "{id} drained and exited: {status}");
        nodes[turn] = Node::start(&id, &db.url).await;
    }
    let (_, list) = nodes[0].get("/v1/rooms").await;
    let rooms = list["rooms"].as_array().unwrap();
    assert_eq!(rooms.len(), players.len(), "no room is lost: {list}");
    for room in rooms {
        assert_eq!(room["status"], "open", "{room}");
        assert_eq!(room["players"], 1, "{room}");
    }
}

/// The URL a client's WebSocket is connected to.
fn client_url(client: &Client) -> String {
    client.url.clone()
}

#[tokio::test]
async fn a_node_cut_off_from_postgres_stops_its_room_and_its_stale_writes_are_refused() {
    let _serial = SERIAL.lock().await;
    let Some(db) = FreshPostgres::create("cluster e2e").await else {
        return;
    };
    let (_, upstream) = through(&db.url, "127.0.0.1:1".parse().unwrap());
    let proxy = Proxy::start(upstream).await;
    let (cut_url, _) = through(&db.url, proxy.addr);
    let a = Node::start("node-a", &cut_url).await;
    let b = Node::start("node-b", &db.url).await;
    let room_id = a.create_room_here().await;
    let mut alice = a.join(&room_id, "alice").await;
    let (seen, seq) = score_a_point(&mut alice, 1).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    proxy.cut();
    let cut = Instant::now();
    // The node stops the room when its lease can no longer be renewed: 4005 to its session.
    assert_eq!(alice.expect_close(WAIT).await, Some(close::ROOM_MOVED));
    let stopped_after = cut.elapsed();
    assert!(
        stopped_after < Duration::from_millis(NODE_TTL_MS),
        "stopped {stopped_after:?} after the cut, before the lease could pass"
    );
    let ticks = a.metric("skirmish_ticks_total").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        a.metric("skirmish_ticks_total").await,
        ticks,
        "no tick after the lease"
    );

    // The other node takes the room over; the player resumes there with the score.
    let located = locate(&b, &alice.resume_token, a.port, WAIT).await;
    let url = located["ws_url"].as_str().unwrap();
    assert_eq!(port_of(url), b.port);
    let (welcome, _) = resume_and_play(url, "alice", seq + 10).await;
    assert_eq!(welcome.score, seen.score);

    // The cut heals: the old node registers again but never writes the room again.
    proxy.restore();
    tokio::time::sleep(Duration::from_millis(NODE_TTL_MS + 1000)).await;
    let rows = sql(
        &db.url,
        &format!(
            "SELECT node_id, fence, count(*) AS n FROM room_snapshots WHERE room_id = '{room_id}' \
             GROUP BY node_id, fence ORDER BY fence"
        ),
    )
    .await;
    let writers: Vec<(String, i64, i64)> = rows
        .iter()
        .map(|r| {
            (
                r.try_get("", "node_id").unwrap(),
                r.try_get("", "fence").unwrap(),
                r.try_get("", "n").unwrap(),
            )
        })
        .collect();
    assert_eq!(writers.len(), 2, "{writers:?}");
    assert_eq!((writers[0].0.as_str(), writers[0].1), ("node-a", 1));
    assert_eq!((writers[1].0.as_str(), writers[1].1), ("node-b", 2));
    let room = &sql(
        &db.url,
        &format!("SELECT owner_node, fence FROM rooms WHERE id = '{room_id}'"),
    )
    .await[0];
    assert_eq!(room.try_get::<String>("", "owner_node").unwrap(), "node-b");
    assert_eq!(room.try_get::<i64>("", "fence").unwrap(), 2);

    // The database itself refuses a write with the old fencing number.
    let before = writers[0].2;
    sql(
        &db.url,
        &format!(
            "INSERT INTO room_snapshots (room_id, tick, state, created_at, node_id, fence) \
             VALUES ('{room_id}', 999999, '\\x00', now(), 'node-a', 1)"
        ),
    )
    .await;
    let after: i64 = sql(
        &db.url,
        &format!(
            "SELECT count(*) AS n FROM room_snapshots WHERE room_id = '{room_id}' AND fence = 1"
        ),
    )
    .await[0]
        .try_get("", "n")
        .unwrap();
    assert_eq!(after, before, "a stale fencing number is refused");
    let (_, room) = a.get(&format!("/v1/rooms/{room_id}")).await;
    assert_eq!(room["node"], "node-b", "{room}");
}

/// The figures of BENCHMARKS.md ("Cluster"), not a pass/fail test: matchmakes per second over three
/// nodes, failover time over 5 SIGKILLs, drain time. Run with the release binary:
/// `cargo build --release -p server && CLUSTER_TEST_BIN=target/release/skirmish
/// TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo test -p server --test cluster
/// -- --ignored --nocapture cluster_figures`
#[tokio::test]
#[ignore = "a benchmark: run by hand with the release binary"]
async fn cluster_figures() {
    let _serial = SERIAL.lock().await;
    let db = FreshPostgres::create("cluster benchmark").await.unwrap();
    let ttl_ms: u64 = std::env::var("BENCH_NODE_TTL_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let mut nodes = Vec::new();
    for id in ["node-a", "node-b", "node-c"] {
        nodes.push(Node::start_with_ttl(id, &db.url, ttl_ms).await);
    }

    // Matchmakes per second: 3,000 calls, 64 at a time, spread over the nodes.
    let total = 3000;
    let started = Instant::now();
    let answers: Vec<(u16, Value)> = futures_util::stream::iter(0..total)
        .map(|i| {
            let node = &nodes[i % nodes.len()];
            async move {
                node.post(
                    "/v1/matchmake",
                    json!({ "mode": "arena", "player_id": format!("m{i}") }),
                )
                .await
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let mut per_room: HashMap<String, usize> = HashMap::new();
    for (status, body) in &answers {
        assert_eq!(*status, 201, "{body}");
        *per_room
            .entry(body["room_id"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let fullest = per_room.values().max().copied().unwrap_or(0);
    eprintln!(
        "FIGURE matchmake: {total} in {elapsed:?} = {:.0}/s over 3 nodes; {} rooms, fullest {fullest}/16",
        total as f64 / elapsed.as_secs_f64(),
        per_room.len()
    );
    assert!(fullest <= 16);
    for room_id in per_room.keys() {
        let response = nodes[0]
            .http
            .delete(nodes[0].url(&format!("/v1/rooms/{room_id}")))
            .bearer_auth(API_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
    }

    // Failover: kill the owner of a room of two players; time until both play again elsewhere.
    let mut failovers = Vec::new();
    for run in 0..5 {
        let victim_index = run % nodes.len();
        let room_id = nodes[victim_index].create_room_here().await;
        let helper = (victim_index + 1) % nodes.len();
        let mut players = Vec::new();
        for name in ["alice", "bob"] {
            let mut client = nodes[helper].join(&room_id, &format!("{name}{run}")).await;
            client.send_input(1, 1.0, 0.0).await;
            players.push(client);
        }
        // A snapshot follows each join; give it a flush interval to be committed.
        tokio::time::sleep(Duration::from_millis(600)).await;
        let victim_id = nodes[victim_index].id.clone();
        let victim = nodes.remove(victim_index);
        let killed = Instant::now();
        victim.signal("-KILL");
        let limit = Duration::from_millis(ttl_ms) + Duration::from_secs(10);
        let resumes = players.iter().map(|client| {
            let asker = &nodes[0];
            let token = client.resume_token.clone();
            let player = client.player_id.clone();
            let gone = victim.port;
            async move {
                let located = locate(asker, &token, gone, limit).await;
                resume_and_play(located["ws_url"].as_str().unwrap(), &player, 100).await;
            }
        });
        futures_util::future::join_all(resumes).await;
        let took = killed.elapsed();
        eprintln!("FIGURE failover run {run}: {took:?} (node_ttl_ms {ttl_ms})");
        failovers.push(took);
        drop(victim);
        nodes.insert(
            victim_index,
            Node::start_with_ttl(&victim_id, &db.url, ttl_ms).await,
        );
    }
    failovers.sort();
    eprintln!(
        "FIGURE failover: median {:?}, max {:?} over 5 runs (node_ttl_ms {ttl_ms})",
        failovers[2], failovers[4]
    );

    // Drain: a node with 10 rooms of 2 players each; SIGTERM; every player playing elsewhere.
    let mut players = Vec::new();
    for r in 0..10 {
        let room_id = nodes[0].create_room_here().await;
        for p in 0..2 {
            players.push(nodes[0].join(&room_id, &format!("d{r}x{p}")).await);
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut victim = nodes.remove(0);
    let signalled = Instant::now();
    victim.signal("-TERM");
    let resumes = players.iter_mut().map(|client| {
        let asker = &nodes[0];
        let gone = victim.port;
        async move {
            assert_eq!(client.expect_close(WAIT).await, Some(close::ROOM_MOVED));
            let located = locate(asker, &client.resume_token, gone, WAIT).await;
            resume_and_play(located["ws_url"].as_str().unwrap(), &client.player_id, 100).await;
        }
    });
    futures_util::future::join_all(resumes).await;
    let all_back = signalled.elapsed();
    let status = victim.exited_within(WAIT).await;
    eprintln!(
        "FIGURE drain: 10 rooms, 20 players all playing elsewhere {all_back:?} after SIGTERM; \
         the node exited ({status}) {:?} after it",
        signalled.elapsed()
    );
}
