//! `POST /v1/matchmake`: a seat in the fullest open room of a mode that has space, or in a new room.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use tracing::field::Empty;
use utoipa::ToSchema;

use super::AppState;
use super::auth::Authorized;
use super::errors::{ApiError, ErrorBody};
use super::rooms::{issue_seat, parse_player};
use crate::domain::{RoomId, RoomSettings};

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
    // Held only for the scan and the reservation: microseconds, no await inside.
    let _matchmaking = state.matchmaking.lock().unwrap_or_else(|p| p.into_inner());
    // A player who already holds a slot (or a reservation) in a room of this mode gets a ticket
    // back into it rather than a second seat elsewhere.
    let entries = state.registry.entries();
    if let Some(entry) = entries
        .iter()
        .find(|entry| entry.shared.mode == mode.name() && entry.shared.has_player(&player))
    {
        let seat = issue_seat(&state, entry, &player)?;
        return Ok(created(entry.shared.id.to_string(), seat));
    }
    let mut candidates: Vec<_> = entries
        .into_iter()
        .filter(|entry| entry.shared.mode == mode.name() && entry.shared.is_open())
        .map(|entry| (entry.shared.held(), entry))
        .filter(|(held, entry)| *held < entry.shared.settings.max_players as usize)
        .collect();
    // Fullest first, so rooms fill; oldest first among equals.
    candidates.sort_by(|(a_held, a), (b_held, b)| {
        b_held
            .cmp(a_held)
            .then_with(|| a.shared.created_at.cmp(&b.shared.created_at))
    });
    for (_, entry) in &candidates {
        if let Ok(seat) = issue_seat(&state, entry, &player) {
            return Ok(created(entry.shared.id.to_string(), seat));
        }
    }
    // The room's start span is a child of this one (the actor gets the current span).
    tracing::Span::current().record("new_room", true);
    let entry = mode.create(&state.env, RoomId::generate(), RoomSettings::default());
    let seat = issue_seat(&state, &entry, &player)?;
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
