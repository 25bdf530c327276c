//! `GET /v1/locate?resume=TOKEN`: where a resume token's room is served now.
//!
//! No API key: the signed resume token is the credential. A client closed with 4005 (room moved)
//! asks here, then opens the `ws_url` it gets.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::errors::{ApiError, ErrorBody};
use crate::domain::tickets::TokenKind;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LocateQuery {
    /// The `resume_token` of a `welcome`.
    pub resume: String,
}

/// Where to resume.
#[derive(Debug, Serialize, ToSchema)]
pub struct LocateBody {
    pub room_id: String,
    /// The complete WebSocket URL that resumes the slot at the node serving the room now.
    pub ws_url: String,
}

#[utoipa::path(get, path = "/v1/locate", tag = "realtime", params(LocateQuery),
    responses(
        (status = 200, description = "The room is open; `ws_url` resumes the slot", body = LocateBody),
        (status = 401, description = "The resume token is invalid, forged or expired", body = ErrorBody),
        (status = 404, description = "The room is gone (closed, or unknown)", body = ErrorBody),
        (status = 422, description = "The resume parameter is missing", body = ErrorBody),
    ))]
pub async fn locate(
    state: web::Data<AppState>,
    query: web::Query<LocateQuery>,
) -> Result<HttpResponse, ApiError> {
    let claims = state
        .signer
        .verify(&query.resume, TokenKind::Resume, crate::clock::now_ms())
        .inspect_err(|reason| crate::metrics::ticket_rejected(reason.reason()))?;
    let ws_url = |base: &str| {
        format!(
            "{}/v1/ws?resume={}",
            base.trim_end_matches('/'),
            query.resume
        )
    };
    if let Some(entry) = state
        .registry
        .get(&claims.room_id)
        .filter(|entry| entry.shared.is_open())
    {
        return Ok(HttpResponse::Ok().json(LocateBody {
            room_id: entry.shared.id.to_string(),
            ws_url: ws_url(&state.config.ws_base()),
        }));
    }
    let gone = || ApiError::RoomNotFound(claims.room_id.to_string());
    let Some(cluster) = &state.cluster else {
        return Err(gone());
    };
    let room = state
        .storage
        .locate_room(claims.room_id.as_str())
        .await
        .map_err(super::rooms::directory_unavailable)?
        .filter(|room| room.record.status == persistence::RoomStatus::Open)
        .ok_or_else(gone)?;
    match &room.live_owner {
        // This node (or a draining one) owns it on paper but is handing it over.
        Some((node, url)) if node != &cluster.node_id && !room.owner_draining => {
            Ok(HttpResponse::Ok().json(LocateBody {
                room_id: room.record.room_id.clone(),
                ws_url: ws_url(url),
            }))
        }
        _ => Err(super::rooms::between_owners(&room.record.room_id)),
    }
}
