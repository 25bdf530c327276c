//! `/v1/rooms`: create, list, get, delete, and reserve a seat.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{HttpResponse, web};
use game_core::PlayerId;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::Authorized;
use super::errors::{ApiError, ErrorBody};
use crate::domain::tickets::{Claims, TokenKind, new_nonce};
use crate::domain::{RoomId, RoomSettings};
use crate::room::messages::CloseKind;
use crate::room::registry::{RoomEntry, RoomSummary};

/// `POST /v1/rooms` body, as sent.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRoomRequest {
    /// A game mode this server hosts (the document lists them as an enum).
    pub mode: String,
    /// 1 to 64, default 16.
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 64)]
    pub max_players: Option<JsonInteger>,
    /// Ticks per second, 1 to 60, default 20.
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 60)]
    pub tick_rate: Option<JsonInteger>,
    /// Match length in seconds, 1 to 3600, default 300.
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 3600)]
    pub duration_s: Option<JsonInteger>,
}

/// A JSON integer. JSON Schema counts `44.0` as an integer, and so does the API; `2.5` is refused
/// (422).
#[derive(Debug, Clone, Copy)]
pub struct JsonInteger(pub i64);

impl<'de> Deserialize<'de> for JsonInteger {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let number = serde_json::Number::deserialize(deserializer)?;
        if let Some(integer) = number.as_i64() {
            return Ok(Self(integer));
        }
        match number.as_f64() {
            Some(float) if float.fract() == 0.0 && float.abs() < 2f64.powi(63) => {
                Ok(Self(float as i64))
            }
            _ => Err(D::Error::custom(format!(
                "invalid value: {number}, expected an integer within i64"
            ))),
        }
    }
}

/// A room request that passed validation.
#[derive(Debug)]
pub struct NewRoom {
    pub mode: String,
    pub settings: RoomSettings,
}

impl TryFrom<CreateRoomRequest> for NewRoom {
    type Error = ApiError;
    fn try_from(raw: CreateRoomRequest) -> Result<Self, ApiError> {
        let value = |field: Option<JsonInteger>| field.map(|JsonInteger(v)| v);
        let settings = RoomSettings::new(
            value(raw.max_players),
            value(raw.tick_rate),
            value(raw.duration_s),
        )
        .map_err(|e| ApiError::Invalid(e.to_string()))?;
        Ok(Self {
            mode: raw.mode,
            settings,
        })
    }
}

/// `POST /v1/rooms/{id}/seats` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeatRequest {
    /// 1 to 64 characters of `[A-Za-z0-9_-]`.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$", min_length = 1, max_length = 64)]
    pub player_id: String,
}

pub fn parse_player(raw: &str) -> Result<PlayerId, ApiError> {
    PlayerId::parse(raw).map_err(|e| ApiError::Invalid(e.to_string()))
}

/// A room as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoomBody {
    pub room_id: String,
    pub mode: String,
    /// Held slots: connected players, dropped players within their grace, unexpired reservations.
    pub players: usize,
    pub max_players: u32,
    pub tick_rate: u32,
    /// `"open"` or `"closed"`.
    pub status: &'static str,
    /// RFC 3339, UTC.
    pub created_at: String,
}

impl From<RoomSummary> for RoomBody {
    fn from(room: RoomSummary) -> Self {
        Self {
            room_id: room.room_id.to_string(),
            mode: room.mode.to_string(),
            players: room.players,
            max_players: room.max_players,
            tick_rate: room.tick_rate,
            status: room.status.as_str(),
            created_at: rfc3339(room.created_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RoomList {
    pub rooms: Vec<RoomBody>,
}

/// A reserved seat: open `ws_url` before `expires_at`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeatBody {
    pub ticket: String,
    /// The complete WebSocket URL to open, ticket included.
    pub ws_url: String,
    /// RFC 3339, UTC.
    pub expires_at: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only rooms of this mode.
    pub mode: Option<String>,
    /// `true`: only open rooms with a free slot; `false`: only rooms without one (full or closed).
    pub has_space: Option<bool>,
}

pub use crate::clock::rfc3339;

fn find(state: &AppState, raw_id: &str) -> Result<Arc<RoomEntry>, ApiError> {
    RoomId::parse(raw_id)
        .ok()
        .and_then(|id| state.registry.get(&id))
        .ok_or_else(|| ApiError::RoomNotFound(raw_id.to_string()))
}

/// Reserves a seat in `entry` for `player` and signs its ticket.
pub fn issue_seat(
    state: &AppState,
    entry: &RoomEntry,
    player: &PlayerId,
) -> Result<SeatBody, ApiError> {
    let ttl = state.config.ticket_ttl();
    let nonce = new_nonce();
    let expires_at_ms = crate::clock::now_ms() + ttl.as_millis() as u64;
    entry.shared.reserve(player, nonce, Instant::now() + ttl)?;
    let ticket = state.signer.sign(&Claims {
        kind: TokenKind::Ticket,
        room_id: entry.shared.id.clone(),
        player_id: player.clone(),
        expires_at_ms,
        nonce,
    });
    crate::metrics::ticket_issued();
    let expires_at = OffsetDateTime::UNIX_EPOCH + Duration::from_millis(expires_at_ms);
    Ok(SeatBody {
        ws_url: format!("{}/v1/ws?ticket={ticket}", state.config.ws_base()),
        ticket,
        expires_at: rfc3339(expires_at),
    })
}

#[utoipa::path(post, path = "/v1/rooms", tag = "rooms", request_body = CreateRoomRequest,
    responses(
        (status = 201, description = "The room was created", body = RoomBody),
        (status = 400, description = "Malformed JSON or wrong content type", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 422, description = "A value out of bounds or an unknown mode", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn create_room(
    _: Authorized,
    state: web::Data<AppState>,
    body: web::Json<CreateRoomRequest>,
) -> Result<HttpResponse, ApiError> {
    let new_room = NewRoom::try_from(body.into_inner())?;
    let mode = state
        .modes
        .get(&new_room.mode)
        .ok_or(ApiError::UnknownMode(new_room.mode))?;
    let entry = mode.create(&state.env, RoomId::generate(), new_room.settings);
    Ok(HttpResponse::Created().json(RoomBody::from(entry.shared.summary())))
}

#[utoipa::path(get, path = "/v1/rooms", tag = "rooms", params(ListQuery),
    responses(
        (status = 200, description = "Rooms matching the filters", body = RoomList),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 422, description = "Invalid filter", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn list_rooms(
    _: Authorized,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut rooms: Vec<RoomSummary> = state
        .registry
        .entries()
        .iter()
        .map(|entry| entry.shared.summary())
        .filter(|room| query.mode.as_deref().is_none_or(|mode| room.mode == mode))
        .filter(|room| {
            query
                .has_space
                .is_none_or(|wanted| room.has_space() == wanted)
        })
        .collect();
    rooms.sort_by(|a, b| {
        a.created_at
            .cmp(&b.created_at)
            .then_with(|| a.room_id.cmp(&b.room_id))
    });
    Ok(HttpResponse::Ok().json(RoomList {
        rooms: rooms.into_iter().map(RoomBody::from).collect(),
    }))
}

#[utoipa::path(get, path = "/v1/rooms/{id}", tag = "rooms", params(("id" = String, Path, description = "Room id")),
    responses(
        (status = 200, description = "The room (a closed room answers until it is pruned)", body = RoomBody),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn get_room(
    _: Authorized,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let entry = find(&state, &id)?;
    Ok(HttpResponse::Ok().json(RoomBody::from(entry.shared.summary())))
}

#[utoipa::path(delete, path = "/v1/rooms/{id}", tag = "rooms", params(("id" = String, Path, description = "Room id")),
    responses(
        (status = 204, description = "The room is closed; its sessions were closed with 4001"),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn delete_room(
    _: Authorized,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let entry = find(&state, &id)?;
    entry.port.close(CloseKind::Deleted).await;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/v1/rooms/{id}/seats", tag = "rooms", request_body = SeatRequest,
    params(("id" = String, Path, description = "Room id")),
    responses(
        (status = 201, description = "A seat is held until the ticket expires", body = SeatBody),
        (status = 400, description = "Malformed JSON or wrong content type", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody),
        (status = 409, description = "The room is full or closed", body = ErrorBody),
        (status = 422, description = "Invalid player_id", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn reserve_seat(
    _: Authorized,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<SeatRequest>,
) -> Result<HttpResponse, ApiError> {
    let player = parse_player(&body.player_id)?;
    let entry = find(&state, &id)?;
    let seat = issue_seat(&state, &entry, &player)?;
    Ok(HttpResponse::Created().json(seat))
}
