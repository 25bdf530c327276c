//! `GET /v1/rooms/{id}/results`: a finished match's results, read from the database, so it
//! answers after a restart and for rooms long pruned from the registry.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::auth::Authorized;
use super::errors::{ApiError, ErrorBody};
use crate::clock::rfc3339;
use crate::domain::RoomId;
use crate::webhooks::events::{PlayerResult, sort_results};

/// A finished match.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResultsBody {
    pub room_id: String,
    pub mode: String,
    /// RFC 3339, UTC.
    pub finished_at: String,
    /// Best rank first (ties by player id); rank 1 is the best, equal scores share a rank.
    pub results: Vec<PlayerResult>,
}

fn unavailable(error: persistence::StorageError) -> ApiError {
    tracing::warn!(%error, "reading results failed");
    ApiError::Unavailable("the database does not answer; try again".into())
}

#[utoipa::path(get, path = "/v1/rooms/{id}/results", tag = "rooms",
    params(("id" = String, Path, description = "Room id")),
    responses(
        (status = 200, description = "The results of the room's finished match", body = ResultsBody),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody),
        (status = 409, description = "`not_finished`: the match is still running, or the room closed without results (deleted or expired)", body = ErrorBody),
        (status = 503, description = "The database does not answer", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn get_results(
    _: Authorized,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::RoomNotFound(id.to_string());
    let room_id = RoomId::parse(&id).map_err(|_| not_found())?;
    let live = state.registry.get(&room_id);
    let rows = state
        .storage
        .results(room_id.as_str())
        .await
        .map_err(unavailable)?;
    let Some(first) = rows.first() else {
        let known = live.is_some()
            || state
                .storage
                .room(room_id.as_str())
                .await
                .map_err(unavailable)?
                .is_some();
        return Err(if known {
            ApiError::NotFinished(room_id.to_string())
        } else {
            not_found()
        });
    };
    let finished_at = rfc3339(first.finished_at);
    let mode = match &live {
        Some(entry) => entry.shared.mode.to_owned(),
        None => {
            state
                .storage
                .room(room_id.as_str())
                .await
                .map_err(unavailable)?
                // Results and the closed status are committed in one transaction.
                .ok_or_else(|| {
                    ApiError::Internal(format!("results of {room_id} without its room").into())
                })?
                .mode
        }
    };
    let mut results: Vec<PlayerResult> = rows
        .into_iter()
        .map(|r| PlayerResult {
            player_id: r.player_id,
            score: r.score,
            rank: r.rank,
        })
        .collect();
    sort_results(&mut results);
    Ok(HttpResponse::Ok().json(ResultsBody {
        room_id: room_id.to_string(),
        mode,
        finished_at,
        results,
    }))
}
