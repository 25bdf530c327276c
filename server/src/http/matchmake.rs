//! `POST /v1/matchmake`: a seat in the fullest open room of a mode that has space, or in a new room.

use actix_web::{HttpRequest, HttpResponse, web};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use tracing::field::Empty;
use utoipa::ToSchema;

use super::AppState;
use super::auth::Authorized;
use super::errors::{ApiError, ErrorBody};
use super::rooms::{
    RoomBody, create_here, directory_unavailable, issue_seat, parse_player, placement,
};
use crate::cluster::forward::is_forwarded;
use crate::domain::RoomSettings;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchmakeRequest {
    /// A game mode this server hosts (the document lists them as an enum).
    pub mode: String,
    /// 1 to 64 characters of `[A-Za-z0-9_-]`.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$", min_length = 1, max_length = 64)]
    pub player_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MatchmakeBody {
    pub room_id: String,
    pub ticket: String,
    /// The complete WebSocket URL to open, ticket included.
    pub ws_url: String,
    /// RFC 3339, UTC.
    pub expires_at: String,
}

#[utoipa::path(post, path = "/v1/matchmake", tag = "matchmaking", request_body = MatchmakeRequest,
    responses(
        (status = 201, description = "A seat in the fullest open room with space, or in a new room", body = MatchmakeBody),
        (status = 400, description = "Malformed JSON or wrong content type", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 422, description = "Invalid player_id or unknown mode", body = ErrorBody),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(name = "matchmake", skip_all,
    fields(mode = Empty, player_id = Empty, room_id = Empty, new_room = Empty))]
pub async fn matchmake(
    _: Authorized,
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<MatchmakeRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let player = parse_player(&body.player_id)?;
    let mode = state
        .modes
        .get(&body.mode)
        .ok_or_else(|| ApiError::UnknownMode(body.mode.clone()))?;
    let span = tracing::Span::current();
    span.record("mode", mode.name());
    span.record("player_id", player.as_str());
    span.record("new_room", false);
    let Some(cluster) = state.cluster.as_ref().filter(|_| !is_forwarded(&req)) else {
        // One node (or a call another node placed here): this node's rooms, or a new one here.
        let _matchmaking = state.matchmaking.lock().await;
        if let Some(seated) = seat_here(&state, mode.name(), &player) {
            return seated;
        }
        return create_and_seat(&state, mode, &player).await;
    };
    // A cluster: a room of this node first (no hop), unless it is draining.
    if !cluster.is_draining() {
        let _matchmaking = state.matchmaking.lock().await;
        if let Some(seated) = seat_here(&state, mode.name(), &player) {
            return seated;
        }
    }
    // Then the fullest room with space on another node, as the directory last saw it; its owner
    // decides (409 when it filled up meanwhile: try the next).
    let remote = state
        .storage
        .remote_rooms_of_mode(mode.name(), &cluster.node_id)
        .await
        .map_err(directory_unavailable)?;
    let seat_body = serde_json::json!({ "player_id": player.as_str() });
    for room in remote
        .iter()
        .filter(|room| RoomBody::stored(room).has_space())
        .take(REMOTE_TRIES)
    {
        let Some((_, url)) = &room.live_owner else {
            continue;
        };
        let path = format!("/v1/rooms/{}/seats", room.record.room_id);
        let answer = cluster
            .forward(&req, Method::POST, url, &path, Some(&seat_body), "seats")
            .await;
        if let Ok(answer) = answer
            && answer.status == 201
            && let Ok(seat) = serde_json::from_slice::<super::rooms::SeatBody>(&answer.body)
        {
            return Ok(created(room.record.room_id.clone(), seat));
        }
    }
    // No room has space: a new one on the least-loaded node.
    match placement(&state).await? {
        Some(node) => {
            let body = serde_json::json!({ "mode": mode.name(), "player_id": player.as_str() });
            let answer = cluster
                .forward(
                    &req,
                    Method::POST,
                    &node.public_url,
                    "/v1/matchmake",
                    Some(&body),
                    "matchmake",
                )
                .await?;
            Ok(answer.into_response())
        }
        None => {
            let _matchmaking = state.matchmaking.lock().await;
            if let Some(seated) = seat_here(&state, mode.name(), &player) {
                return seated;
            }
            create_and_seat(&state, mode, &player).await
        }
    }
}

/// Rooms on other nodes tried before a new room is made.
const REMOTE_TRIES: usize = 3;

/// A seat in one of this node's rooms of `mode`: the player's own if they hold one, else the
/// fullest with space. None if no room here has space. Call with `state.matchmaking` held.
fn seat_here(
    state: &AppState,
    mode: &str,
    player: &game_core::PlayerId,
) -> Option<Result<HttpResponse, ApiError>> {
    // A player who already holds a slot (or a reservation) in a room of this mode gets a ticket
    // back into it rather than a second seat elsewhere.
    let entries = state.registry.entries();
    if let Some(entry) = entries
        .iter()
        .find(|entry| entry.shared.mode == mode && entry.shared.has_player(player))
    {
        return Some(
            issue_seat(state, entry, player).map(|seat| created(entry.shared.id.to_string(), seat)),
        );
    }
    let mut candidates: Vec<_> = entries
        .into_iter()
        .filter(|entry| entry.shared.mode == mode && entry.shared.is_open())
        .map(|entry| (entry.shared.held(), entry))
        .filter(|(held, entry)| *held < entry.shared.settings.max_players as usize)
        .collect();
    // Fullest first, so rooms fill; oldest first among equals.
    candidates.sort_by(|(a_held, a), (b_held, b)| {
        b_held
            .cmp(a_held)
            .then_with(|| a.shared.created_at.cmp(&b.shared.created_at))
    });
    candidates.iter().find_map(|(_, entry)| {
        issue_seat(state, entry, player)
            .ok()
            .map(|seat| Ok(created(entry.shared.id.to_string(), seat)))
    })
}

/// A new room here (call with `state.matchmaking` held) and a seat in it.
async fn create_and_seat(
    state: &AppState,
    mode: &dyn crate::modes::GameMode,
    player: &game_core::PlayerId,
) -> Result<HttpResponse, ApiError> {
    // The room's start span is a child of this one (the actor gets the current span).
    tracing::Span::current().record("new_room", true);
    let entry = create_here(state, mode, RoomSettings::default()).await?;
    let seat = issue_seat(state, &entry, player)?;
    Ok(created(entry.shared.id.to_string(), seat))
}

fn created(room_id: String, seat: super::rooms::SeatBody) -> HttpResponse {
    tracing::Span::current().record("room_id", room_id.as_str());
    HttpResponse::Created().json(MatchmakeBody {
        room_id,
        ticket: seat.ticket,
        ws_url: seat.ws_url,
        expires_at: seat.expires_at,
    })
}
