//! The webhook events and their JSON bodies: `{"id","type","created_at","data"}`.
//!
//! A body is built once, when the event is recorded, and stored whole in the outbox, so every
//! attempt (on any node, after any restart) sends the same bytes under the same `id`.

use serde::Serialize;
use time::OffsetDateTime;

use persistence::OutboxEvent;

use crate::clock::rfc3339;
use crate::room::messages::CloseReason;

/// `type` of the event sent when a match ends with results.
pub const MATCH_FINISHED: &str = "match.finished";
/// `type` of the event sent when a room ends for good.
pub const ROOM_CLOSED: &str = "room.closed";

/// One player's result, as the results endpoint and `match.finished` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PlayerResult {
    pub player_id: String,
    pub score: u32,
    /// 1 is the best; equal scores share a rank.
    #[schema(minimum = 1)]
    pub rank: u32,
}

/// Results best rank first, ties by player id: the one order of the endpoint and the events.
pub fn sort_results(results: &mut [PlayerResult]) {
    results.sort_by(|a, b| {
        a.rank
            .cmp(&b.rank)
            .then_with(|| a.player_id.cmp(&b.player_id))
    });
}

#[derive(Serialize)]
struct Body<'a, D> {
    id: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    created_at: String,
    data: D,
}

#[derive(Serialize)]
struct MatchFinished<'a> {
    room_id: &'a str,
    mode: &'a str,
    results: &'a [PlayerResult],
}

#[derive(Serialize)]
struct RoomClosed<'a> {
    room_id: &'a str,
    reason: &'static str,
}

fn event<D: Serialize>(
    event_type: &str,
    room_id: &str,
    at: OffsetDateTime,
    data: D,
) -> OutboxEvent {
    let id = uuid::Uuid::new_v4().to_string();
    let body = Body {
        id: &id,
        event_type,
        created_at: rfc3339(at),
        data,
    };
    OutboxEvent {
        // unwrap_or_default: serialising plain structs of strings and numbers cannot fail.
        payload: serde_json::to_string(&body).unwrap_or_default(),
        id,
        event_type: event_type.to_owned(),
        created_at: at,
        room_id: room_id.to_owned(),
    }
}

/// `match.finished`: `data` is `{room_id, mode, results}`, results sorted by [`sort_results`].
pub fn match_finished(
    room_id: &str,
    mode: &str,
    results: &[PlayerResult],
    at: OffsetDateTime,
) -> OutboxEvent {
    let mut results = results.to_vec();
    sort_results(&mut results);
    event(
        MATCH_FINISHED,
        room_id,
        at,
        MatchFinished {
            room_id,
            mode,
            results: &results,
        },
    )
}

/// `room.closed`: `data` is `{room_id, reason}`.
pub fn room_closed(room_id: &str, reason: CloseReason, at: OffsetDateTime) -> OutboxEvent {
    event(
        ROOM_CLOSED,
        room_id,
        at,
        RoomClosed {
            room_id,
            reason: reason.as_str(),
        },
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::{Value, json};

    fn at() -> OffsetDateTime {
        time::macros::datetime!(2026-11-29 09:30:00.250 UTC)
    }

    #[test]
    fn match_finished_body() {
        let results = [
            PlayerResult {
                player_id: "zed".into(),
                score: 2,
                rank: 2,
            },
            PlayerResult {
                player_id: "bob".into(),
                score: 5,
                rank: 1,
            },
            PlayerResult {
                player_id: "amy".into(),
                score: 5,
                rank: 1,
            },
        ];
        let event = match_finished("r1", "arena", &results, at());
        assert_eq!(event.event_type, "match.finished");
        assert_eq!(event.room_id, "r1");
        let body: Value = serde_json::from_str(&event.payload).unwrap();
        assert_eq!(
            body,
            json!({
                "id": event.id,
                "type": "match.finished",
                "created_at": "2026-11-29T09:30:00Z",
                "data": {
                    "room_id": "r1",
                    "mode": "arena",
                    "results": [
                        {"player_id": "amy", "score": 5, "rank": 1},
                        {"player_id": "bob", "score": 5, "rank": 1},
                        {"player_id": "zed", "score": 2, "rank": 2},
                    ],
                },
            })
        );
        assert!(uuid::Uuid::parse_str(&event.id).is_ok());
    }

    #[test]
    fn room_closed_bodies_and_fresh_ids() {
        let deleted = room_closed("r1", CloseReason::Deleted, at());
        let expired = room_closed("r1", CloseReason::Expired, at());
        assert_ne!(deleted.id, expired.id);
        let body: Value = serde_json::from_str(&expired.payload).unwrap();
        assert_eq!(body["type"], "room.closed");
        assert_eq!(body["data"], json!({"room_id": "r1", "reason": "expired"}));
        let body: Value = serde_json::from_str(&deleted.payload).unwrap();
        assert_eq!(body["data"]["reason"], "deleted");
        assert_eq!(body["id"], deleted.id.as_str());
    }
}
