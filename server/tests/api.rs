//! The matchmaking HTTP API v1 end to end: every route, every documented error status and body,
//! tickets at the WebSocket upgrade, concurrent quick matches, and the OpenAPI document.
//!
//! JSON bodies are insta snapshots (volatile fields redacted), so any change of the API shows up as a
//! reviewed snapshot diff.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use common::{API_KEY, Client, TestApp, spawn_app, spawn_app_with};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Asserts `status`, a JSON content type and the `{"error":{"code","message"}}` shape; returns the body.
async fn error_body(response: reqwest::Response, status: u16, code: &str) -> Value {
    let url = response.url().clone();
    assert_eq!(response.status(), status, "status of {url}");
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "{url}: content type {content_type:?}"
    );
    let body: Value = response.json().await.unwrap();
    let error = body["error"].as_object().expect("an error object");
    assert_eq!(error.len(), 2, "only code and message: {body}");
    assert_eq!(body["error"]["code"], code, "{url}: {body}");
    assert!(
        !body["error"]["message"].as_str().unwrap().is_empty(),
        "{body}"
    );
    assert_eq!(body.as_object().unwrap().len(), 1, "only error: {body}");
    body
}

async fn json_of(response: reqwest::Response, status: u16) -> Value {
    let url = response.url().clone();
    let got = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(got, status, "status of {url}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// A raw body with a given content type, authorised.
async fn post_raw(app: &TestApp, path: &str, content_type: &str, body: &str) -> reqwest::Response {
    app.http
        .post(app.url(path))
        .bearer_auth(API_KEY)
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

/// A WebSocket upgrade request made with plain HTTP, so a refusal's status and JSON body are visible.
/// Only for requests expected to be refused (a successful one would consume the ticket).
async fn upgrade(app: &TestApp, query: &str) -> reqwest::Response {
    app.http
        .get(app.url(&format!("/v1/ws?{query}")))
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap()
}

/// Expects the upgrade with `ticket` to be refused with 401 `invalid_ticket` JSON; returns the body.
async fn refused_ticket(app: &TestApp, ticket: &str) -> Value {
    error_body(
        upgrade(app, &format!("ticket={ticket}")).await,
        401,
        "invalid_ticket",
    )
    .await
}

/// Expects a real WebSocket client's handshake to fail with HTTP `status`.
async fn ws_refused(url: &str, status: u16) {
    match tokio_tungstenite::connect_async(url).await {
        Ok(_) => panic!("the upgrade to {url} succeeded"),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), status, "{url}");
        }
        Err(other) => panic!("unexpected handshake error for {url}: {other}"),
    }
}

fn assert_rfc3339_utc(value: &Value) {
    let text = value.as_str().expect("a time string");
    assert!(text.ends_with('Z'), "UTC: {text}");
    OffsetDateTime::parse(text, &Rfc3339).unwrap_or_else(|e| panic!("{text}: {e}"));
}

fn ticket_in(url: &str) -> &str {
    url.split_once("ticket=")
        .expect("ws_url carries the ticket")
        .1
}

/// Replaces one character in the middle of a ticket (inside the signed payload).
fn tamper(ticket: &str) -> String {
    let mut chars: Vec<char> = ticket.chars().collect();
    let i = 12;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

// ---------------------------------------------------------------------------------------------
// Rooms
// ---------------------------------------------------------------------------------------------

#[actix_rt::test]
async fn create_get_list_and_delete_a_room() {
    let app = spawn_app().await;

    let created = json_of(app.post("/v1/rooms", json!({ "mode": "arena" })).await, 201).await;
    assert_rfc3339_utc(&created["created_at"]);
    insta::assert_json_snapshot!("room_created_with_defaults", created, {
        ".room_id" => "[id]", ".created_at" => "[time]",
    });
    let id = created["room_id"].as_str().unwrap().to_string();

    let custom = json_of(
        app.post(
            "/v1/rooms",
            json!({ "mode": "arena", "max_players": 64, "tick_rate": 60, "duration_s": 3600 }),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(custom["max_players"], 64);
    assert_eq!(custom["tick_rate"], 60);
    let smallest = json_of(
        app.post(
            "/v1/rooms",
            json!({ "mode": "arena", "max_players": 1, "tick_rate": 1, "duration_s": 1 }),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(smallest["max_players"], 1);

    let fetched = json_of(app.get(&format!("/v1/rooms/{id}")).await, 200).await;
    assert_eq!(fetched, created);

    let list = json_of(app.get("/v1/rooms").await, 200).await;
    assert_eq!(list["rooms"].as_array().unwrap().len(), 3);
    insta::assert_json_snapshot!("room_list", list, {
        ".rooms[].room_id" => "[id]", ".rooms[].created_at" => "[time]",
    });

    let deleted = app.delete(&format!("/v1/rooms/{id}")).await;
    assert_eq!(deleted.status(), 204);
    assert!(deleted.bytes().await.unwrap().is_empty());

    // A closed room still answers until it is pruned.
    let closed = json_of(app.get(&format!("/v1/rooms/{id}")).await, 200).await;
    assert_eq!(closed["status"], "closed");
    insta::assert_json_snapshot!("room_closed", closed, {
        ".room_id" => "[id]", ".created_at" => "[time]",
    });
}

/// Results: 409 while the match runs, 200 with the ranked results (the same as `match_over`) once
/// it ended, also after the room was pruned from memory; a deleted room has none (409).
#[actix_rt::test]
async fn results_are_409_until_the_match_ends_then_200() {
    let app = spawn_app_with(|c| c.closed_room_retention_ms = 1).await;
    let room = app
        .create_room(json!({ "mode": "arena", "duration_s": 1 }))
        .await;
    let body = error_body(
        app.get(&format!("/v1/rooms/{room}/results")).await,
        409,
        "not_finished",
    )
    .await;
    insta::assert_json_snapshot!("error_not_finished", body, {
        ".error.message" => insta::dynamic_redaction(move |value, _| {
            assert!(value.as_str().unwrap().contains(room.as_str()), "{value:?} names the room");
            "[message naming the room]"
        }),
    });

    let room = app
        .create_room(json!({ "mode": "arena", "duration_s": 1 }))
        .await;
    let mut alice = app.join(&room, "alice").await;
    let mut bob = app.join(&room, "bob").await;
    let over = alice
        .until(Duration::from_secs(10), |m| match m {
            protocol::ServerMessage::Event(protocol::Event::MatchOver { results }) => {
                Some(results.clone())
            }
            _ => None,
        })
        .await;
    bob.expect_close(Duration::from_secs(10)).await;
    // Results are written by the persistence actor: wait for its commit.
    app.shutdown.flush_persistence().await.unwrap();
    // Closed rooms are pruned from memory within a second here; the database still answers.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while app.get(&format!("/v1/rooms/{room}")).await.status() != 404 {
        assert!(
            std::time::Instant::now() < deadline,
            "the closed room is never pruned"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let results = json_of(app.get(&format!("/v1/rooms/{room}/results")).await, 200).await;
    assert_eq!(results["room_id"], room.as_str());
    assert_rfc3339_utc(&results["finished_at"]);
    let mut expected: Vec<(String, u64, u64)> = over
        .iter()
        .map(|r| (r.0.clone(), u64::from(r.1), u64::from(r.2)))
        .collect();
    expected.sort_by(|a, b| a.2.cmp(&b.2).then_with(|| a.0.cmp(&b.0)));
    let got: Vec<(String, u64, u64)> = results["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["player_id"].as_str().unwrap().to_string(),
                r["score"].as_u64().unwrap(),
                r["rank"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got, expected,
        "the results are match_over's, best rank first"
    );
    insta::assert_json_snapshot!("results", results, {
        ".room_id" => "[id]", ".finished_at" => "[time]",
        ".results[].score" => "[score]", ".results[].rank" => "[rank]",
        ".results[].player_id" => "[player]",
    });

    let deleted = app.create_room(json!({ "mode": "arena" })).await;
    assert_eq!(
        app.delete(&format!("/v1/rooms/{deleted}")).await.status(),
        204
    );
    app.shutdown.flush_persistence().await.unwrap();
    error_body(
        app.get(&format!("/v1/rooms/{deleted}/results")).await,
        409,
        "not_finished",
    )
    .await;
}

#[actix_rt::test]
async fn unknown_rooms_are_404_on_every_room_route() {
    let app = spawn_app().await;
    let body = error_body(app.get("/v1/rooms/nosuchroom").await, 404, "room_not_found").await;
    insta::assert_json_snapshot!("error_room_not_found", body);
    error_body(
        app.delete("/v1/rooms/nosuchroom").await,
        404,
        "room_not_found",
    )
    .await;
    error_body(
        app.post(
            "/v1/rooms/nosuchroom/seats",
            json!({ "player_id": "alice" }),
        )
        .await,
        404,
        "room_not_found",
    )
    .await;
    error_body(
        app.get("/v1/rooms/nosuchroom/results").await,
        404,
        "room_not_found",
    )
    .await;
    // Not even a valid room id: still 404, not 400.
    error_body(
        app.get("/v1/rooms/not%20an%20id!").await,
        404,
        "room_not_found",
    )
    .await;
}

#[actix_rt::test]
async fn the_list_filters_by_mode_and_space() {
    let app = spawn_app().await;
    let full = app
        .create_room(json!({ "mode": "arena", "max_players": 1 }))
        .await;
    let roomy = app
        .create_room(json!({ "mode": "arena", "max_players": 4 }))
        .await;
    app.seat(&full, "alice").await;
    app.seat(&roomy, "bob").await;

    let ids = |list: &Value| -> Vec<String> {
        list["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["room_id"].as_str().unwrap().to_string())
            .collect()
    };
    let all = json_of(app.get("/v1/rooms").await, 200).await;
    assert_eq!(ids(&all).len(), 2);
    let arena = json_of(app.get("/v1/rooms?mode=arena").await, 200).await;
    assert_eq!(ids(&arena).len(), 2);
    let other = json_of(app.get("/v1/rooms?mode=nosuchmode").await, 200).await;
    assert_eq!(other, json!({ "rooms": [] }));

    let with_space = json_of(app.get("/v1/rooms?has_space=true").await, 200).await;
    assert_eq!(ids(&with_space), vec![roomy.clone()]);
    assert_eq!(with_space["rooms"][0]["players"], 1);
    let without = json_of(app.get("/v1/rooms?has_space=false").await, 200).await;
    assert_eq!(ids(&without), vec![full.clone()]);
    let both = json_of(app.get("/v1/rooms?mode=arena&has_space=true").await, 200).await;
    assert_eq!(ids(&both), vec![roomy.clone()]);

    // A closed room never has space, however few players it held.
    let closed = app
        .create_room(json!({ "mode": "arena", "max_players": 4 }))
        .await;
    assert_eq!(
        app.delete(&format!("/v1/rooms/{closed}")).await.status(),
        204
    );
    let with_space = json_of(app.get("/v1/rooms?has_space=true").await, 200).await;
    assert_eq!(ids(&with_space), vec![roomy]);
    let without = json_of(app.get("/v1/rooms?has_space=false").await, 200).await;
    assert_eq!(ids(&without), vec![full.clone(), closed.clone()]);
    assert_eq!(without["rooms"][1]["status"], "closed");

    // An invalid filter value is 422 JSON.
    let body = error_body(
        app.get("/v1/rooms?has_space=maybe").await,
        422,
        "invalid_request",
    )
    .await;
    insta::assert_json_snapshot!("error_invalid_query", body);
}

// ---------------------------------------------------------------------------------------------
// Seats
// ---------------------------------------------------------------------------------------------

#[actix_rt::test]
async fn seats_are_201_until_full_then_409_and_409_once_closed() {
    let app = spawn_app().await;
    let room = app
        .create_room(json!({ "mode": "arena", "max_players": 2 }))
        .await;

    let seat = json_of(
        app.post(
            &format!("/v1/rooms/{room}/seats"),
            json!({ "player_id": "alice" }),
        )
        .await,
        201,
    )
    .await;
    assert_rfc3339_utc(&seat["expires_at"]);
    let ws_url = seat["ws_url"].as_str().unwrap();
    assert!(ws_url.starts_with("ws://127.0.0.1:"), "{ws_url}");
    assert!(ws_url.contains("/v1/ws?ticket="), "{ws_url}");
    assert_eq!(ticket_in(ws_url), seat["ticket"].as_str().unwrap());
    insta::assert_json_snapshot!("seat", seat, {
        ".ticket" => "[ticket]", ".ws_url" => "[ws_url]", ".expires_at" => "[time]",
    });

    // A second ticket for a player who holds a seat takes no second slot.
    app.seat(&room, "alice").await;
    app.seat(&room, "bob").await;
    let room_now = json_of(app.get(&format!("/v1/rooms/{room}")).await, 200).await;
    assert_eq!(room_now["players"], 2);

    let body = error_body(
        app.post(
            &format!("/v1/rooms/{room}/seats"),
            json!({ "player_id": "carol" }),
        )
        .await,
        409,
        "room_full",
    )
    .await;
    insta::assert_json_snapshot!("error_room_full", body);

    assert_eq!(app.delete(&format!("/v1/rooms/{room}")).await.status(), 204);
    let body = error_body(
        app.post(
            &format!("/v1/rooms/{room}/seats"),
            json!({ "player_id": "dave" }),
        )
        .await,
        409,
        "room_closed",
    )
    .await;
    insta::assert_json_snapshot!("error_room_closed", body);
}

#[actix_rt::test]
async fn a_seat_ticket_connects_and_its_player_is_welcomed() {
    let app = spawn_app().await;
    let room = app.create_room(json!({ "mode": "arena" })).await;
    let client = app.join(&room, "alice").await;
    assert_eq!(client.room_id, room);
    assert_eq!(client.player_id, "alice");
    let listed = json_of(app.get(&format!("/v1/rooms/{room}")).await, 200).await;
    assert_eq!(listed["players"], 1);
}

// ---------------------------------------------------------------------------------------------
// Matchmaking
// ---------------------------------------------------------------------------------------------

#[actix_rt::test]
async fn matchmake_creates_a_room_then_fills_it() {
    let app = spawn_app().await;
    let first = json_of(
        app.post(
            "/v1/matchmake",
            json!({ "mode": "arena", "player_id": "alice" }),
        )
        .await,
        201,
    )
    .await;
    assert_rfc3339_utc(&first["expires_at"]);
    assert_eq!(
        ticket_in(first["ws_url"].as_str().unwrap()),
        first["ticket"].as_str().unwrap()
    );
    insta::assert_json_snapshot!("matchmake", first, {
        ".room_id" => "[id]", ".ticket" => "[ticket]", ".ws_url" => "[ws_url]", ".expires_at" => "[time]",
    });
    let second = json_of(
        app.post(
            "/v1/matchmake",
            json!({ "mode": "arena", "player_id": "bob" }),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(first["room_id"], second["room_id"], "rooms fill");
    let room = json_of(
        app.get(&format!("/v1/rooms/{}", first["room_id"].as_str().unwrap()))
            .await,
        200,
    )
    .await;
    assert_eq!(room["players"], 2);
    assert_eq!(room["max_players"], 16);

    // The matchmake ticket connects.
    let mut client = Client::connect(first["ws_url"].as_str().unwrap()).await;
    client.read_welcome().await;
    assert_eq!(client.room_id, first["room_id"].as_str().unwrap());
}

#[actix_rt::test]
async fn matchmake_prefers_the_fullest_open_room() {
    let app = spawn_app().await;
    let emptier = app
        .create_room(json!({ "mode": "arena", "max_players": 8 }))
        .await;
    let fuller = app
        .create_room(json!({ "mode": "arena", "max_players": 8 }))
        .await;
    let full = app
        .create_room(json!({ "mode": "arena", "max_players": 2 }))
        .await;
    app.seat(&emptier, "a1").await;
    app.seat(&fuller, "b1").await;
    app.seat(&fuller, "b2").await;
    app.seat(&full, "c1").await;
    app.seat(&full, "c2").await;
    let answer = json_of(
        app.post(
            "/v1/matchmake",
            json!({ "mode": "arena", "player_id": "zed" }),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(answer["room_id"], fuller);
}

#[actix_rt::test]
async fn two_hundred_concurrent_quick_matches_share_rooms_and_never_overfill() {
    let app = spawn_app().await;
    let requests = (0..200).map(|i| {
        let app = &app;
        async move {
            let response = app
                .post(
                    "/v1/matchmake",
                    json!({ "mode": "arena", "player_id": format!("player-{i}") }),
                )
                .await;
            json_of(response, 201).await
        }
    });
    let answers = futures_util::future::join_all(requests).await;
    assert_eq!(answers.len(), 200);

    let tickets: HashSet<&str> = answers
        .iter()
        .map(|a| a["ticket"].as_str().unwrap())
        .collect();
    assert_eq!(tickets.len(), 200, "every ticket is distinct");
    let mut per_room: HashMap<&str, usize> = HashMap::new();
    for answer in &answers {
        *per_room
            .entry(answer["room_id"].as_str().unwrap())
            .or_default() += 1;
    }
    assert_eq!(
        per_room.len(),
        13,
        "200 players over 16-seat rooms: {per_room:?}"
    );
    assert!(per_room.values().all(|&n| n <= 16), "{per_room:?}");

    let list = json_of(app.get("/v1/rooms?mode=arena").await, 200).await;
    let rooms = list["rooms"].as_array().unwrap();
    assert_eq!(rooms.len(), 13);
    let mut total = 0;
    for room in rooms {
        let players = room["players"].as_u64().unwrap();
        assert!(players <= room["max_players"].as_u64().unwrap(), "{room}");
        assert_eq!(
            players as usize,
            per_room[room["room_id"].as_str().unwrap()],
            "{room}"
        );
        total += players;
    }
    assert_eq!(total, 200);
    let full = json_of(app.get("/v1/rooms?has_space=false").await, 200).await;
    assert_eq!(full["rooms"].as_array().unwrap().len(), 12);

    // One ticket connects once, and only once.
    let url = answers[0]["ws_url"].as_str().unwrap();
    let mut client = Client::connect(url).await;
    client.read_welcome().await;
    ws_refused(url, 401).await;
    let body = refused_ticket(&app, ticket_in(url)).await;
    assert_eq!(body["error"]["message"], "the ticket has already been used");
}

// ---------------------------------------------------------------------------------------------
// Tickets at the WebSocket upgrade
// ---------------------------------------------------------------------------------------------

#[actix_rt::test]
async fn an_expired_ticket_is_401() {
    let app = spawn_app_with(|config| config.ticket_ttl_ms = 200).await;
    let room = app.create_room(json!({ "mode": "arena" })).await;
    let seat = app.seat(&room, "alice").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let url = seat["ws_url"].as_str().unwrap();
    ws_refused(url, 401).await;
    let body = refused_ticket(&app, ticket_in(url)).await;
    insta::assert_json_snapshot!("error_ticket_expired", body);
    // The unused seat is released once the ticket has expired (the sweep runs once a second).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let listed = json_of(app.get(&format!("/v1/rooms/{room}")).await, 200).await;
        if listed["players"] == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "seat never released: {listed}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let metrics = app.metrics().await;
    assert!(metrics.contains("skirmish_tickets_rejected_total{reason=\"expired\"}"));
    assert!(metrics.contains("skirmish_tickets_expired_total"));
}

#[actix_rt::test]
async fn a_reused_ticket_is_401() {
    let app = spawn_app().await;
    let room = app.create_room(json!({ "mode": "arena" })).await;
    let seat = app.seat(&room, "alice").await;
    let url = seat["ws_url"].as_str().unwrap();
    let mut first = Client::connect(url).await;
    first.read_welcome().await;
    ws_refused(url, 401).await;
    let body = refused_ticket(&app, ticket_in(url)).await;
    insta::assert_json_snapshot!("error_ticket_reused", body);
    assert!(
        app.metrics()
            .await
            .contains("skirmish_tickets_rejected_total{reason=\"reused\"}")
    );
}

#[actix_rt::test]
async fn a_forged_ticket_is_401() {
    let app = spawn_app().await;
    let room = app.create_room(json!({ "mode": "arena" })).await;
    let seat = app.seat(&room, "alice").await;
    let ticket = seat["ticket"].as_str().unwrap();

    // One character changed.
    let tampered = tamper(ticket);
    assert_ne!(tampered, ticket);
    ws_refused(&app.ws_url(&format!("ticket={tampered}")), 401).await;
    let body = refused_ticket(&app, &tampered).await;
    insta::assert_json_snapshot!("error_ticket_forged", body);

    // The same claims signed with another secret.
    let claims = server::domain::tickets::Claims {
        kind: server::domain::tickets::TokenKind::Ticket,
        room_id: server::domain::RoomId::parse(&room).unwrap(),
        player_id: game_core::PlayerId::parse("alice").unwrap(),
        expires_at_ms: server::clock::now_ms() + 30_000,
        nonce: server::domain::tickets::new_nonce(),
    };
    let other = server::domain::tickets::Signer::new(b"another server's secret, 32 bytes!");
    let forged = other.sign(&claims);
    let body = refused_ticket(&app, &forged).await;
    assert_eq!(
        body["error"]["message"],
        "the ticket's signature does not match"
    );

    // Garbage.
    let body = refused_ticket(&app, "not-a-ticket").await;
    insta::assert_json_snapshot!("error_ticket_malformed", body);

    // The real ticket still works: refusals did not consume it.
    let mut client = Client::connect(seat["ws_url"].as_str().unwrap()).await;
    client.read_welcome().await;
    assert!(
        app.metrics()
            .await
            .contains("skirmish_tickets_rejected_total{reason=\"forged\"}")
    );
}

#[actix_rt::test]
async fn a_ticket_for_a_deleted_room_is_401() {
    let app = spawn_app().await;
    let room = app.create_room(json!({ "mode": "arena" })).await;
    let seat = app.seat(&room, "alice").await;
    assert_eq!(app.delete(&format!("/v1/rooms/{room}")).await.status(), 204);
    let url = seat["ws_url"].as_str().unwrap();
    let body = refused_ticket(&app, ticket_in(url)).await;
    insta::assert_json_snapshot!("error_ticket_room_closed", body);
    // A refusal does not spend the ticket: a retry gets the same reason, not "already used".
    ws_refused(url, 401).await;
    let again = refused_ticket(&app, ticket_in(url)).await;
    assert_eq!(again, body);
    assert!(
        app.metrics()
            .await
            .contains("skirmish_tickets_rejected_total{reason=\"unknown_room\"}")
    );
}

#[actix_rt::test]
async fn a_genuine_ticket_moved_to_another_room_is_401() {
    // A known secret, so the test can sign: a validly signed ticket whose seat is in another room.
    const SECRET: &str = "a test secret of at least 32 characters";
    let app = spawn_app_with(|config| config.secret = Some(SECRET.into())).await;
    let room_a = app.create_room(json!({ "mode": "arena" })).await;
    let room_b = app.create_room(json!({ "mode": "arena" })).await;
    let seat = app.seat(&room_a, "alice").await;
    let signer = server::domain::tickets::Signer::new(SECRET.as_bytes());
    let kind = server::domain::tickets::TokenKind::Ticket;
    let mut claims = signer
        .verify(
            seat["ticket"].as_str().unwrap(),
            kind,
            server::clock::now_ms(),
        )
        .expect("the test knows the server's secret");
    claims.room_id = server::domain::RoomId::parse(&room_b).unwrap();
    let moved = signer.sign(&claims);
    let body = refused_ticket(&app, &moved).await;
    insta::assert_json_snapshot!("error_ticket_no_seat", body);
    // A resume token is not a ticket.
    claims.kind = server::domain::tickets::TokenKind::Resume;
    claims.room_id = server::domain::RoomId::parse(&room_a).unwrap();
    let resume = signer.sign(&claims);
    let body = refused_ticket(&app, &resume).await;
    assert_eq!(
        body["error"]["message"],
        "a resume token was given where a ticket was expected, or the other way round"
    );
}

#[actix_rt::test]
async fn the_upgrade_needs_exactly_one_credential_and_an_upgrade() {
    let app = spawn_app().await;
    let body = error_body(upgrade(&app, "").await, 401, "invalid_ticket").await;
    insta::assert_json_snapshot!("error_ws_no_credential", body);
    ws_refused(&app.ws_url(""), 401).await;
    error_body(
        upgrade(&app, "ticket=abc&resume=def").await,
        401,
        "invalid_ticket",
    )
    .await;

    // A plain GET (no upgrade headers) is 400 JSON too.
    let room = app.create_room(json!({ "mode": "arena" })).await;
    let seat = app.seat(&room, "alice").await;
    let plain = app
        .http
        .get(seat["ws_url"].as_str().unwrap().replace("ws://", "http://"))
        .send()
        .await
        .unwrap();
    let body = error_body(plain, 400, "bad_request").await;
    insta::assert_json_snapshot!("error_ws_not_an_upgrade", body);
}

// ---------------------------------------------------------------------------------------------
// Errors: 400, 401, 404, 422
// ---------------------------------------------------------------------------------------------

#[actix_rt::test]
async fn malformed_json_and_wrong_content_types_are_400() {
    let app = spawn_app().await;
    let body = error_body(
        post_raw(&app, "/v1/rooms", "application/json", "{\"mode\": ").await,
        400,
        "bad_request",
    )
    .await;
    insta::assert_json_snapshot!("error_malformed_json", body);
    error_body(
        post_raw(&app, "/v1/matchmake", "application/json", "not json").await,
        400,
        "bad_request",
    )
    .await;
    error_body(
        post_raw(&app, "/v1/rooms", "application/json", "").await,
        400,
        "bad_request",
    )
    .await;

    let body = error_body(
        post_raw(&app, "/v1/rooms", "text/plain", "{\"mode\":\"arena\"}").await,
        400,
        "bad_request",
    )
    .await;
    insta::assert_json_snapshot!("error_wrong_content_type", body);
    // No content type at all.
    let bare = app
        .http
        .post(app.url("/v1/matchmake"))
        .bearer_auth(API_KEY)
        .body("{\"mode\":\"arena\",\"player_id\":\"alice\"}")
        .send()
        .await
        .unwrap();
    error_body(bare, 400, "bad_request").await;
    // Over the 16 KiB body limit.
    let huge = format!("{{\"mode\":\"arena\",\"pad\":\"{}\"}}", "x".repeat(20_000));
    let body = error_body(
        post_raw(&app, "/v1/rooms", "application/json", &huge).await,
        400,
        "bad_request",
    )
    .await;
    insta::assert_json_snapshot!("error_body_too_large", body);
    let room = app.create_room(json!({ "mode": "arena" })).await;
    error_body(
        post_raw(
            &app,
            &format!("/v1/rooms/{room}/seats"),
            "text/plain",
            "{\"player_id\":\"alice\"}",
        )
        .await,
        400,
        "bad_request",
    )
    .await;
}

#[actix_rt::test]
async fn out_of_bounds_and_wrongly_typed_values_are_422() {
    let app = spawn_app().await;
    let cases = [
        (
            "max_players_0",
            json!({ "mode": "arena", "max_players": 0 }),
        ),
        (
            "max_players_65",
            json!({ "mode": "arena", "max_players": 65 }),
        ),
        (
            "max_players_negative",
            json!({ "mode": "arena", "max_players": -3 }),
        ),
        (
            "max_players_string",
            json!({ "mode": "arena", "max_players": "ten" }),
        ),
        (
            "max_players_float",
            json!({ "mode": "arena", "max_players": 2.5 }),
        ),
        ("tick_rate_0", json!({ "mode": "arena", "tick_rate": 0 })),
        ("tick_rate_61", json!({ "mode": "arena", "tick_rate": 61 })),
        ("duration_s_0", json!({ "mode": "arena", "duration_s": 0 })),
        (
            "duration_s_3601",
            json!({ "mode": "arena", "duration_s": 3601 }),
        ),
        (
            "duration_s_negative",
            json!({ "mode": "arena", "duration_s": -1 }),
        ),
        ("missing_mode", json!({ "max_players": 4 })),
        ("mode_not_a_string", json!({ "mode": 7 })),
        ("unknown_field", json!({ "mode": "arena", "colour": "red" })),
        ("not_an_object", json!(["arena"])),
    ];
    for (name, request) in cases {
        let body = error_body(
            app.post("/v1/rooms", request.clone()).await,
            422,
            "invalid_request",
        )
        .await;
        insta::assert_json_snapshot!(format!("error_422_create_{name}"), body);
    }
    let body = error_body(
        app.post("/v1/rooms", json!({ "mode": "chess" })).await,
        422,
        "unknown_mode",
    )
    .await;
    insta::assert_json_snapshot!("error_unknown_mode", body);
    error_body(
        app.post(
            "/v1/matchmake",
            json!({ "mode": "chess", "player_id": "alice" }),
        )
        .await,
        422,
        "unknown_mode",
    )
    .await;
    // Nothing was created by any of these.
    let list = json_of(app.get("/v1/rooms").await, 200).await;
    assert_eq!(list, json!({ "rooms": [] }));

    // JSON Schema counts 44.0 as an integer, so the API takes it as 44.
    let response = app
        .post(
            "/v1/rooms",
            json!({ "mode": "arena", "max_players": 44.0, "duration_s": null }),
        )
        .await;
    let room = json_of(response, 201).await;
    assert_eq!(room["max_players"], 44);
}

#[actix_rt::test]
async fn bad_player_ids_are_422() {
    let app = spawn_app().await;
    let room = app.create_room(json!({ "mode": "arena" })).await;
    app.seat(&room, &"x".repeat(64)).await;
    app.seat(&room, "A-z_0-9").await;
    let cases = [
        ("space", json!({ "player_id": "a b" })),
        ("too_long", json!({ "player_id": "x".repeat(65) })),
        ("empty", json!({ "player_id": "" })),
        ("unicode", json!({ "player_id": "zoë" })),
        ("number", json!({ "player_id": 42 })),
        ("missing", json!({})),
    ];
    for (name, request) in cases {
        let body = error_body(
            app.post(&format!("/v1/rooms/{room}/seats"), request.clone())
                .await,
            422,
            "invalid_request",
        )
        .await;
        insta::assert_json_snapshot!(format!("error_422_player_id_{name}"), body);
        let mut matchmake = request.clone();
        matchmake["mode"] = json!("arena");
        error_body(
            app.post("/v1/matchmake", matchmake).await,
            422,
            "invalid_request",
        )
        .await;
    }
}

#[actix_rt::test]
async fn every_v1_route_but_ws_needs_the_api_key() {
    let app = spawn_app().await;
    let room = app.create_room(json!({ "mode": "arena" })).await;
    let routes = [
        (
            "POST",
            "/v1/rooms".to_string(),
            Some(json!({ "mode": "arena" })),
        ),
        ("GET", "/v1/rooms".to_string(), None),
        ("GET", format!("/v1/rooms/{room}"), None),
        ("DELETE", format!("/v1/rooms/{room}"), None),
        (
            "POST",
            format!("/v1/rooms/{room}/seats"),
            Some(json!({ "player_id": "alice" })),
        ),
        ("GET", format!("/v1/rooms/{room}/results"), None),
        (
            "POST",
            "/v1/matchmake".to_string(),
            Some(json!({ "mode": "arena", "player_id": "alice" })),
        ),
        ("GET", "/v1/openapi.json".to_string(), None),
    ];
    let mut first = None;
    for (method, path, body) in &routes {
        for auth in [
            None,
            Some("Bearer wrong-key-0123456789".to_string()),
            Some(format!("Bearer {API_KEY}x")),
            Some(format!("Basic {API_KEY}")),
            Some(API_KEY.to_string()),
            Some("Bearer ".to_string()),
        ] {
            let mut request = app.http.request(method.parse().unwrap(), app.url(path));
            if let Some(auth) = &auth {
                request = request.header(reqwest::header::AUTHORIZATION, auth);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await.unwrap();
            let got = error_body(response, 401, "unauthorized").await;
            first.get_or_insert(got);
        }
    }
    insta::assert_json_snapshot!("error_unauthorized", first.unwrap());
    // The scheme is case-insensitive.
    let response = app
        .http
        .get(app.url("/v1/rooms"))
        .header(reqwest::header::AUTHORIZATION, format!("bearer {API_KEY}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Auth is checked before the body: a bad body without a key is still 401.
    let response = app
        .http
        .post(app.url("/v1/rooms"))
        .header(reqwest::header::CONTENT_TYPE, "text/plain")
        .body("{")
        .send()
        .await
        .unwrap();
    error_body(response, 401, "unauthorized").await;
    // Nothing happened: the room is still open and still empty.
    let room = json_of(app.get(&format!("/v1/rooms/{room}")).await, 200).await;
    assert_eq!(room["status"], "open");
    assert_eq!(room["players"], 0);
}

#[actix_rt::test]
async fn unknown_routes_and_methods_are_json_not_html() {
    let app = spawn_app().await;
    let body = error_body(app.get("/v1/nope").await, 404, "not_found").await;
    insta::assert_json_snapshot!("error_route_not_found", body);
    error_body(app.get("/").await, 404, "not_found").await;
    error_body(app.get("/v2/rooms").await, 404, "not_found").await;
    error_body(app.get("/v1/rooms/a/b/c").await, 404, "not_found").await;
    // Unauthenticated unknown routes are also JSON (404: there is nothing to authorise).
    let response = app.http.get(app.url("/v1/nope")).send().await.unwrap();
    error_body(response, 404, "not_found").await;
    // Methods a path does not serve: 405 with the methods it does serve.
    for (method, path, allow) in [
        ("PUT", "/v1/rooms", "GET, POST"),
        ("PATCH", "/v1/rooms/abc", "GET, DELETE"),
        ("DELETE", "/v1/rooms", "GET, POST"),
        ("GET", "/v1/rooms/abc/seats", "POST"),
        ("GET", "/v1/matchmake", "POST"),
        ("POST", "/healthz", "GET"),
        ("POST", "/v1/ws", "GET"),
        ("DELETE", "/v1/locate", "GET"),
        ("PUT", "/metrics", "GET"),
    ] {
        let response = app
            .http
            .request(method.parse().unwrap(), app.url(path))
            .bearer_auth(API_KEY)
            .send()
            .await
            .unwrap();
        let allowed = response
            .headers()
            .get(reqwest::header::ALLOW)
            .map(|v| v.to_str().unwrap().to_string());
        assert_eq!(allowed.as_deref(), Some(allow), "{method} {path}");
        error_body(response, 405, "method_not_allowed").await;
    }
    // Without a key too: the method is wrong whoever asks.
    let response = app.http.put(app.url("/v1/rooms")).send().await.unwrap();
    let body = error_body(response, 405, "method_not_allowed").await;
    insta::assert_json_snapshot!("error_method_not_allowed", body);
}

// ---------------------------------------------------------------------------------------------
// Operations: health, readiness, metrics
// ---------------------------------------------------------------------------------------------

#[actix_rt::test]
async fn health_readiness_and_metrics_need_no_key() {
    let app = spawn_app().await;
    let health = json_of(reqwest::get(app.url("/healthz")).await.unwrap(), 200).await;
    assert_eq!(health, json!({ "status": "ok" }));
    let ready = json_of(reqwest::get(app.url("/readyz")).await.unwrap(), 200).await;
    assert_eq!(ready, json!({ "status": "ready" }));

    let room = app.create_room(json!({ "mode": "arena" })).await;
    app.seat(&room, "alice").await;
    let response = reqwest::get(app.url("/metrics")).await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = response.text().await.unwrap();
    assert!(
        text.contains("# TYPE skirmish_tickets_issued_total counter"),
        "{text}"
    );
    let issued = text
        .lines()
        .find(|l| l.starts_with("skirmish_tickets_issued_total "))
        .expect("the issued counter");
    let value: f64 = issued.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(value >= 1.0, "{issued}");
    assert!(text.contains("skirmish_http_requests_total"), "{text}");
}

#[actix_rt::test]
async fn every_metric_family_has_help_and_type_from_the_start() {
    let app = spawn_app().await;
    let text = app.metrics().await;
    for family in server::metrics::FAMILIES {
        assert!(
            text.contains(&format!("# HELP {} ", family.name)),
            "no HELP for {}",
            family.name
        );
        let kind = match family.kind {
            server::metrics::Kind::Counter => "counter",
            server::metrics::Kind::Gauge => "gauge",
            server::metrics::Kind::Histogram => "histogram",
        };
        assert!(
            text.contains(&format!("# TYPE {} {kind}\n", family.name)),
            "no TYPE {kind} for {}",
            family.name
        );
    }
    // Finite labels have a series per value before anything happened.
    for reason in ["forged", "expired", "reused"] {
        assert!(
            text.contains(&format!(
                "skirmish_tickets_rejected_total{{reason=\"{reason}\"}}"
            )),
            "no series for reason {reason}"
        );
    }
    assert!(text.contains("skirmish_late_ticks_total "), "{text}");
}

/// `promtool check metrics` (Debian's `prometheus` package) finds nothing to complain about.
#[actix_rt::test]
async fn promtool_finds_the_metrics_clean() {
    use std::io::Write as _;
    let Ok(status) = std::process::Command::new("promtool")
        .arg("--version")
        .output()
    else {
        assert!(
            std::env::var_os("CI").is_none(),
            "promtool is not installed, and CI must run this check (apt-get install prometheus)"
        );
        eprintln!("SKIPPED: promtool is not installed (apt-get install prometheus)");
        return;
    };
    assert!(status.status.success());
    let app = spawn_app().await;
    // Some traffic first, so labelled families have samples too.
    let room = app.create_room(json!({ "mode": "arena" })).await;
    app.seat(&room, "alice").await;
    let text = app.metrics().await;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let complaints = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && complaints.trim().is_empty(),
        "promtool check metrics: {complaints}"
    );
}

// ---------------------------------------------------------------------------------------------
// Locate
// ---------------------------------------------------------------------------------------------

#[actix_rt::test]
async fn locate_answers_where_a_resume_token_resumes() {
    let app = spawn_app().await;
    let room = app.create_room(json!({ "mode": "arena" })).await;
    let mut alice = app.join(&room, "alice").await;
    let token = alice.resume_token.clone();

    // No API key needed: the token is the credential.
    let response = app
        .http
        .get(app.url(&format!("/v1/locate?resume={token}")))
        .send()
        .await
        .unwrap();
    let located = json_of(response, 200).await;
    assert_eq!(located["room_id"], room.as_str());
    let ws_url = located["ws_url"].as_str().unwrap();
    assert_eq!(ws_url, app.ws_url(&format!("resume={token}")));
    assert_eq!(located.as_object().unwrap().len(), 2, "{located}");

    // The URL it gives resumes the slot (and replaces the old connection).
    let mut again = common::Client::connect(ws_url).await;
    again.read_welcome().await;
    assert_eq!(again.player_id, "alice");
    assert_eq!(alice.expect_close(Duration::from_secs(5)).await, Some(4003));

    let locate = |query: String| {
        let http = app.http.clone();
        let url = app.url(&format!("/v1/locate?{query}"));
        async move { http.get(url).send().await.unwrap() }
    };
    error_body(
        locate(format!("resume={}", tamper(&token))).await,
        401,
        "invalid_ticket",
    )
    .await;
    error_body(locate("resume=garbage".into()).await, 401, "invalid_ticket").await;
    error_body(locate(String::new()).await, 422, "invalid_request").await;
    // A ticket is not a resume token.
    let seat = app.seat(&room, "bob").await;
    let ticket = ticket_in(seat["ws_url"].as_str().unwrap()).to_string();
    error_body(
        locate(format!("resume={ticket}")).await,
        401,
        "invalid_ticket",
    )
    .await;

    // Once the room is gone, 404.
    assert_eq!(app.delete(&format!("/v1/rooms/{room}")).await.status(), 204);
    error_body(
        locate(format!("resume={token}")).await,
        404,
        "room_not_found",
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// OpenAPI
// ---------------------------------------------------------------------------------------------

async fn openapi(app: &TestApp) -> Value {
    json_of(app.get("/v1/openapi.json").await, 200).await
}

#[actix_rt::test]
async fn the_openapi_document_covers_every_route() {
    let app = spawn_app().await;
    let doc = openapi(&app).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    for (method, path) in server::http::ROUTES {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is not documented"
        );
    }
    // And nothing documented that the app does not serve.
    let served: HashSet<(String, String)> = server::http::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            assert!(
                served.contains(&(method.clone(), path.clone())),
                "{method} {path} is documented but not in ROUTES"
            );
        }
    }

    // Parameters: `{id}` is a required path parameter; filters and credentials are optional queries.
    for (method, path) in server::http::ROUTES {
        let parameters = doc["paths"][path][method]["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let names: Vec<&str> = parameters
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        let expected: &[&str] = match *path {
            "/v1/rooms" if *method == "get" => &["mode", "has_space"],
            "/v1/ws" => &[
                "ticket",
                "resume",
                "Connection",
                "Upgrade",
                "Sec-WebSocket-Key",
                "Sec-WebSocket-Version",
            ],
            "/v1/locate" => &["resume"],
            p if p.contains("{id}") => &["id"],
            _ => &[],
        };
        assert_eq!(names, expected, "{method} {path}");
        for parameter in &parameters {
            if parameter["name"] == "id" {
                assert_eq!(parameter["in"], "path", "{method} {path}");
                assert_eq!(parameter["required"], true, "{method} {path}");
            } else if parameter["in"] == "header" {
                // The upgrade's own headers: the handshake refuses a request without them (400).
                assert_eq!(*path, "/v1/ws", "{parameter}");
                assert_eq!(parameter["required"], true, "{method} {path}: {parameter}");
            } else if *path == "/v1/locate" {
                assert_eq!(parameter["in"], "query", "{method} {path}: {parameter}");
                assert_eq!(parameter["required"], true, "{method} {path}: {parameter}");
            } else {
                assert_eq!(parameter["in"], "query", "{method} {path}: {parameter}");
                assert_ne!(parameter["required"], true, "{method} {path}: {parameter}");
            }
        }
    }
    let bounds = &doc["components"]["schemas"]["CreateRoomRequest"]["properties"];
    assert_eq!(bounds["max_players"]["minimum"], 1);
    assert_eq!(bounds["max_players"]["maximum"], 64);
    assert_eq!(bounds["tick_rate"]["maximum"], 60);
    assert_eq!(bounds["duration_s"]["maximum"], 3600);
    // The constraints the server enforces on strings are stated too.
    let schemas = &doc["components"]["schemas"];
    for request in ["CreateRoomRequest", "MatchmakeRequest"] {
        assert_eq!(
            schemas[request]["properties"]["mode"]["enum"],
            json!(["arena"]),
            "{request}"
        );
        assert_eq!(schemas[request]["additionalProperties"], false, "{request}");
    }
    for request in ["SeatRequest", "MatchmakeRequest"] {
        let player = &schemas[request]["properties"]["player_id"];
        assert_eq!(player["pattern"], "^[A-Za-z0-9_-]{1,64}$", "{request}");
        assert_eq!(player["minLength"], 1, "{request}");
        assert_eq!(player["maxLength"], 64, "{request}");
    }

    let scheme = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "bearer");

    // Every /v1 route but the upgrade asks for the key and documents 401 with the error body.
    let error_ref = "#/components/schemas/ErrorBody";
    for (method, path) in server::http::ROUTES {
        let operation = &doc["paths"][path][method];
        let responses = operation["responses"].as_object().unwrap();
        for (status, response) in responses {
            if status.starts_with('4') || status.starts_with('5') {
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"], error_ref,
                    "{method} {path} {status}"
                );
            }
        }
        // The upgrade and locate take a signed token instead of the key.
        if path.starts_with("/v1") && *path != "/v1/ws" && *path != "/v1/locate" {
            assert!(
                operation["security"][0]
                    .as_object()
                    .is_some_and(|s| s.contains_key("bearer")),
                "{method} {path} has no bearer security"
            );
            assert!(responses.contains_key("401"), "{method} {path} lacks 401");
            // The concurrency limit may answer any of them with 503 `overloaded`.
            assert!(responses.contains_key("503"), "{method} {path} lacks 503");
        }
    }
    let expected: &[(&str, &str, &[&str])] = &[
        ("post", "/v1/rooms", &["201", "400", "401", "422"]),
        ("get", "/v1/rooms", &["200", "401", "422"]),
        ("get", "/v1/rooms/{id}", &["200", "401", "404"]),
        ("delete", "/v1/rooms/{id}", &["204", "401", "404"]),
        (
            "post",
            "/v1/rooms/{id}/seats",
            &["201", "400", "401", "404", "409", "422"],
        ),
        (
            "get",
            "/v1/rooms/{id}/results",
            &["200", "401", "404", "409", "503"],
        ),
        ("post", "/v1/matchmake", &["201", "400", "401", "422"]),
        ("get", "/v1/ws", &["101", "400", "401"]),
        ("get", "/v1/locate", &["200", "401", "404", "422"]),
        ("get", "/readyz", &["200", "503"]),
    ];
    for (method, path, statuses) in expected {
        let responses = &doc["paths"][path][method]["responses"];
        for status in *statuses {
            assert!(
                responses[status].is_object(),
                "{method} {path} does not document {status}"
            );
        }
    }
    for schema in [
        "RoomBody",
        "RoomList",
        "SeatBody",
        "MatchmakeBody",
        "CreateRoomRequest",
        "SeatRequest",
        "MatchmakeRequest",
        "ResultsBody",
        "PlayerResult",
        "ErrorBody",
        "ErrorDetail",
    ] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "schema {schema}"
        );
    }

    insta::assert_json_snapshot!("openapi", doc, { ".info.version" => "[version]" });
}

#[actix_rt::test]
async fn matchmaking_a_player_who_already_holds_a_seat_returns_that_room() {
    let app = spawn_app().await;
    let full = app
        .create_room(json!({ "mode": "arena", "max_players": 2 }))
        .await;
    app.seat(&full, "dana").await;
    app.seat(&full, "erin").await;
    // Dana's room is full, yet matchmaking her again hands her a ticket back into it, not a
    // second seat in another room.
    let again = json_of(
        app.post(
            "/v1/matchmake",
            json!({ "mode": "arena", "player_id": "dana" }),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(again["room_id"], full.as_str());
    let rooms = json_of(app.get("/v1/rooms").await, 200).await;
    assert_eq!(
        rooms["rooms"].as_array().unwrap().len(),
        1,
        "no room was opened for her"
    );
    let room = json_of(app.get(&format!("/v1/rooms/{full}")).await, 200).await;
    assert_eq!(room["players"], 2, "she still holds one slot");
    let mut client = Client::connect(again["ws_url"].as_str().unwrap()).await;
    client.read_welcome().await;
}
