//! `/v1/rooms`: create, list, get, delete, and reserve a seat.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{HttpRequest, HttpResponse, web};
use game_core::PlayerId;
use persistence::cluster::{NodeInfo, RoomLocation};
use persistence::{Owner, RoomRecord, RoomStatus as StoredStatus};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::Authorized;
use super::errors::{ApiError, ErrorBody};
use crate::cluster::forward::is_forwarded;
use crate::domain::tickets::{Claims, TokenKind, new_nonce};
use crate::domain::{RoomId, RoomSettings};
use crate::modes::GameMode;
use crate::room::messages::CloseKind;
use crate::room::registry::{Ownership, RoomEntry, RoomSummary, SeatError};

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
    /// Cluster mode: the `node_id` of the node that owns the room (absent while it has no live
    /// owner, and on a single node).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
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
            node: None,
        }
    }
}

impl RoomBody {
    /// A room of this node.
    fn local(state: &AppState, room: RoomSummary) -> Self {
        Self {
            node: state.cluster.as_ref().map(|c| c.node_id.clone()),
            ..Self::from(room)
        }
    }

    /// A room as the cluster directory stores it, with the held slots its owner last published.
    pub(crate) fn stored(room: &RoomLocation) -> Self {
        let settings: RoomSettings = serde_json::from_str(&room.record.config).unwrap_or_default();
        Self {
            room_id: room.record.room_id.clone(),
            mode: room.record.mode.clone(),
            players: usize::try_from(room.players).unwrap_or(0),
            max_players: settings.max_players,
            tick_rate: settings.tick_rate,
            status: room.record.status.as_str(),
            created_at: rfc3339(room.record.created_at),
            node: room.live_owner.as_ref().map(|(node, _)| node.clone()),
        }
    }

    pub(crate) fn has_space(&self) -> bool {
        self.status == "open" && self.players < self.max_players as usize
    }
}

/// The directory could not be read: the database does not answer.
pub fn directory_unavailable(error: persistence::StorageError) -> ApiError {
    tracing::warn!(error = %crate::error_chain::ErrorChain(&error), "reading the cluster directory failed");
    ApiError::Unavailable("the room directory (database) does not answer; retry shortly".into())
}

/// A room that is open in the directory but has no live owner right now (its node died or is
/// handing it over); another node claims it within the node TTL.
pub fn between_owners(room_id: &str) -> ApiError {
    ApiError::Moving(room_id.to_owned())
}

/// Starts a room on this node. In cluster mode it is first stored as owned by this node's lease
/// (fencing number 1), so that the directory knows it before any ticket for it exists.
pub async fn create_here(
    state: &AppState,
    mode: &dyn GameMode,
    settings: RoomSettings,
) -> Result<Arc<RoomEntry>, ApiError> {
    let id = RoomId::generate();
    let created_at = OffsetDateTime::now_utc();
    let ownership = match &state.cluster {
        None => Ownership::default(),
        Some(cluster) => {
            let (lease, ownership) = cluster.ownership_for_new_room().ok_or_else(|| {
                ApiError::Unavailable(
                    "this node takes no new rooms (draining, or cut off from the database); retry"
                        .into(),
                )
            })?;
            let record = RoomRecord {
                room_id: id.to_string(),
                mode: mode.name().to_owned(),
                config: serde_json::to_string(&settings)
                    .map_err(|e| ApiError::Internal(e.into()))?,
                status: StoredStatus::Open,
                created_at,
                closed_at: None,
                owner: Owner {
                    node_id: Some(cluster.node_id.clone()),
                    fence: ownership.fence,
                },
            };
            state
                .storage
                .insert_owned_room(&record, &lease)
                .await
                .map_err(directory_unavailable)?;
            ownership
        }
    };
    Ok(mode.create(&state.env, id, settings, created_at, ownership))
}

/// Cluster mode: the live node a new room should go to, if not this one (the least loaded by
/// held slots, then rooms; never a draining node).
pub async fn placement(state: &AppState) -> Result<Option<NodeInfo>, ApiError> {
    let Some(cluster) = &state.cluster else {
        return Ok(None);
    };
    let nodes = state
        .storage
        .live_nodes()
        .await
        .map_err(directory_unavailable)?;
    let target = nodes.into_iter().find(|node| !node.draining);
    Ok(target.filter(|node| node.node_id != cluster.node_id))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RoomList {
    pub rooms: Vec<RoomBody>,
}

/// A reserved seat: open `ws_url` before `expires_at`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
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
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<CreateRoomRequest>,
) -> Result<HttpResponse, ApiError> {
    let new_room = NewRoom::try_from(body.into_inner())?;
    let mode = state
        .modes
        .get(&new_room.mode)
        .ok_or(ApiError::UnknownMode(new_room.mode))?;
    if let Some(cluster) = &state.cluster
        && !is_forwarded(&req)
        && let Some(node) = placement(&state).await?
    {
        let settings = new_room.settings;
        let body = serde_json::json!({
            "mode": mode.name(),
            "max_players": settings.max_players,
            "tick_rate": settings.tick_rate,
            "duration_s": settings.duration_s,
        });
        let answer = cluster
            .forward(
                &req,
                Method::POST,
                &node.public_url,
                "/v1/rooms",
                Some(&body),
                "create",
            )
            .await?;
        return Ok(answer.into_response());
    }
    let entry = create_here(&state, mode, new_room.settings).await?;
    Ok(HttpResponse::Created().json(RoomBody::local(&state, entry.shared.summary())))
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
    let local: Vec<RoomSummary> = state
        .registry
        .entries()
        .iter()
        .map(|entry| entry.shared.summary())
        .collect();
    let mut rooms: Vec<(OffsetDateTime, RoomBody)> = Vec::with_capacity(local.len());
    // In a cluster the directory adds the other nodes' rooms (this node's own are fresher here).
    if state.cluster.is_some() {
        let retention = Duration::from_millis(state.config.closed_room_retention_ms);
        let stored = state
            .storage
            .cluster_rooms(OffsetDateTime::now_utc() - retention)
            .await
            .map_err(directory_unavailable)?;
        for room in stored {
            if !local
                .iter()
                .any(|l| l.room_id.as_str() == room.record.room_id)
            {
                rooms.push((room.record.created_at, RoomBody::stored(&room)));
            }
        }
    }
    for room in local {
        rooms.push((room.created_at, RoomBody::local(&state, room)));
    }
    rooms.retain(|(_, room)| {
        query.mode.as_deref().is_none_or(|mode| room.mode == mode)
            && query
                .has_space
                .is_none_or(|wanted| room.has_space() == wanted)
    });
    rooms.sort_by(|(a_at, a), (b_at, b)| a_at.cmp(b_at).then_with(|| a.room_id.cmp(&b.room_id)));
    Ok(HttpResponse::Ok().json(RoomList {
        rooms: rooms.into_iter().map(|(_, room)| room).collect(),
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
    if let Ok(entry) = find(&state, &id) {
        return Ok(HttpResponse::Ok().json(RoomBody::local(&state, entry.shared.summary())));
    }
    let room = elsewhere(&state, &id).await?;
    Ok(HttpResponse::Ok().json(RoomBody::stored(&room)))
}

/// Cluster mode: a room this node does not run, from the directory (404 if unknown there too, or
/// on a single node).
async fn elsewhere(state: &AppState, raw_id: &str) -> Result<RoomLocation, ApiError> {
    let not_found = || ApiError::RoomNotFound(raw_id.to_string());
    if state.cluster.is_none() || RoomId::parse(raw_id).is_err() {
        return Err(not_found());
    }
    state
        .storage
        .locate_room(raw_id)
        .await
        .map_err(directory_unavailable)?
        .ok_or_else(not_found)
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
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    if let Ok(entry) = find(&state, &id) {
        entry.port.close(CloseKind::Deleted).await;
        // In a cluster the other nodes answer from the directory: commit the close before 204.
        if state.cluster.is_some()
            && let Err(error) = state.store.flush().await
        {
            tracing::warn!(error = %crate::error_chain::ErrorChain(&error), "the closed room is not committed yet");
        }
        return Ok(HttpResponse::NoContent().finish());
    }
    let room = elsewhere(&state, &id).await?;
    if room.record.status == StoredStatus::Closed {
        return Ok(HttpResponse::NoContent().finish());
    }
    let path = format!("/v1/rooms/{}", room.record.room_id);
    to_owner(&state, &req, &room, Method::DELETE, &path, None, "delete").await
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
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<SeatRequest>,
) -> Result<HttpResponse, ApiError> {
    let player = parse_player(&body.player_id)?;
    if let Ok(entry) = find(&state, &id) {
        let seat = issue_seat(&state, &entry, &player)?;
        return Ok(HttpResponse::Created().json(seat));
    }
    let room = elsewhere(&state, &id).await?;
    if room.record.status == StoredStatus::Closed {
        return Err(SeatError::Closed.into());
    }
    let path = format!("/v1/rooms/{}/seats", room.record.room_id);
    let body = serde_json::json!({ "player_id": player.as_str() });
    to_owner(
        &state,
        &req,
        &room,
        Method::POST,
        &path,
        Some(&body),
        "seats",
    )
    .await
}

/// Sends a request for another node's room to its live owner and answers with the owner's answer;
/// a room without a live owner (or a request already forwarded once) is between owners.
async fn to_owner(
    state: &AppState,
    req: &HttpRequest,
    room: &RoomLocation,
    method: Method,
    path: &str,
    body: Option<&serde_json::Value>,
    route: &'static str,
) -> Result<HttpResponse, ApiError> {
    match (&state.cluster, &room.live_owner) {
        (Some(cluster), Some((_, url))) if !is_forwarded(req) => {
            let answer = cluster.forward(req, method, url, path, body, route).await?;
            Ok(answer.into_response())
        }
        _ => Err(between_owners(&room.record.room_id)),
    }
}
