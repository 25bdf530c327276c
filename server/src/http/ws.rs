//! `GET /v1/ws?ticket=…` and `GET /v1/ws?resume=…`: verify, then upgrade and start a session.
//!
//! Everything is checked before the upgrade, so a bad ticket gets a 401 JSON answer and no socket.

use actix_http::ws::handshake;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use serde::Deserialize;
use tracing::field::Empty;
use utoipa::IntoParams;

use super::AppState;
use super::errors::{ApiError, ErrorBody};
use super::upgrade::{Admitted, HandOver};
use crate::domain::tickets::{TicketError, TokenKind};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WsQuery {
    /// A seat ticket from `POST /v1/rooms/{id}/seats` or `POST /v1/matchmake`.
    pub ticket: Option<String>,
    /// The `resume_token` of a `welcome`, to take a dropped slot back.
    pub resume: Option<String>,
}

/// The headers of a WebSocket upgrade (RFC 6455): without them the answer is 400.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // documents the headers; actix-http's handshake reads them
pub struct UpgradeHeaders {
    #[param(rename = "Connection", pattern = "^Upgrade$")]
    connection: String,
    #[param(rename = "Upgrade", pattern = "^websocket$")]
    upgrade: String,
    /// 16 random bytes, base64.
    #[param(rename = "Sec-WebSocket-Key", pattern = "^[A-Za-z0-9+/]{21}[AQgw]==$")]
    sec_websocket_key: String,
    #[param(rename = "Sec-WebSocket-Version", pattern = "^13$")]
    sec_websocket_version: String,
}

#[utoipa::path(get, path = "/v1/ws", tag = "realtime", params(WsQuery, UpgradeHeaders),
    description = "Upgrades to a WebSocket speaking the binary MessagePack protocol of PROTOCOL.md. \
        Rate limits on the socket: about twice the room's tick rate in inputs per second, \
        a burst of 5 chat lines then one every 2 s; more than 10 invalid frames in 10 s closes with 1008.",
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, description = "Not a WebSocket upgrade request", body = ErrorBody),
        (status = 401, description = "Not exactly one of ticket and resume, or the one given is invalid, expired, reused, forged or for a closed room", body = ErrorBody),
        (status = 409, description = "Cluster mode: the room is served by another node; ask GET /v1/locate", body = ErrorBody),
        (status = 503, description = "Cluster mode: the room directory does not answer", body = ErrorBody),
    ))]
#[tracing::instrument(name = "ws.upgrade", skip_all,
    fields(credential = Empty, room_id = Empty, player_id = Empty))]
pub async fn connect(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<WsQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut response = handshake(req.head())
        .map_err(|e| ApiError::BadRequest(format!("not a WebSocket upgrade: {e}")))?;
    let span = tracing::Span::current();
    if query.ticket.is_some() {
        span.record("credential", "ticket");
    } else if query.resume.is_some() {
        span.record("credential", "resume");
    }
    if state.cluster.is_some() {
        served_elsewhere(&state, &query).await?;
    }
    let (entry, player) = admit(&state, &query).inspect_err(|error| {
        if let ApiError::Ticket(reason) = error {
            crate::metrics::ticket_rejected(reason.reason());
        }
    })?;
    span.record("room_id", entry.shared.id.as_str());
    span.record("player_id", player.as_str());
    // Every upgrade request comes with its connection through `upgrade::service`, which hands the
    // socket to the room once this answer is written.
    let hand_over = req
        .extensions()
        .get::<HandOver>()
        .cloned()
        .ok_or_else(|| ApiError::Internal("an upgrade without its connection".into()))?;
    hand_over.admit(Admitted {
        entry,
        player,
        span,
    });
    Ok(HttpResponse::from(response.finish().map_into_boxed_body()))
}

/// Cluster mode: a credential for a room this node does not run, but which is open in the
/// directory, is refused with 409 (the client asks `GET /v1/locate`), before any nonce is spent;
/// unless this node owns it and is restoring it, which is waited for.
async fn served_elsewhere(state: &AppState, query: &WsQuery) -> Result<(), ApiError> {
    let now_ms = crate::clock::now_ms();
    let claims = match (&query.ticket, &query.resume) {
        (Some(ticket), None) => state.signer.verify(ticket, TokenKind::Ticket, now_ms),
        (None, Some(token)) => state.signer.verify(token, TokenKind::Resume, now_ms),
        // Refused with its reason by `admit`.
        _ => return Ok(()),
    };
    let Ok(claims) = claims else {
        return Ok(());
    };
    if state.registry.get(&claims.room_id).is_some() {
        return Ok(());
    }
    let room = match state.storage.locate_room(claims.room_id.as_str()).await {
        Ok(Some(room)) if room.record.status == persistence::RoomStatus::Open => room,
        Ok(_) => return Ok(()),
        Err(error) => return Err(super::rooms::directory_unavailable(error)),
    };
    let me = state.cluster.as_ref().map(|c| c.node_id.as_str());
    if room.live_owner.as_ref().map(|(node, _)| node.as_str()) != me {
        return Err(ApiError::WrongNode(claims.room_id.to_string()));
    }
    // This node has just claimed the room and is restoring it (locate already points here):
    // wait for the room rather than send the client away.
    for _ in 0..RESTORE_WAIT_STEPS {
        actix_rt::time::sleep(RESTORE_WAIT_STEP).await;
        if state.registry.get(&claims.room_id).is_some() {
            return Ok(());
        }
    }
    Err(super::rooms::between_owners(claims.room_id.as_str()))
}

/// How long an upgrade waits for a room this node is restoring: 40 × 25 ms.
const RESTORE_WAIT_STEPS: u32 = 40;
const RESTORE_WAIT_STEP: std::time::Duration = std::time::Duration::from_millis(25);

/// Checks the ticket (signature, expiry, single use, seat) or the resume token (signature, slot).
fn admit(
    state: &AppState,
    query: &WsQuery,
) -> Result<
    (
        std::sync::Arc<crate::room::registry::RoomEntry>,
        game_core::PlayerId,
    ),
    ApiError,
> {
    let now_ms = crate::clock::now_ms();
    match (&query.ticket, &query.resume) {
        (Some(ticket), None) => {
            let claims = state.signer.verify(ticket, TokenKind::Ticket, now_ms)?;
            let entry = state
                .registry
                .get(&claims.room_id)
                .ok_or(TicketError::UnknownRoom)?;
            // A closed room refuses before the nonce is spent, so every attempt gives the same reason.
            if !entry.shared.is_open() {
                return Err(TicketError::UnknownRoom.into());
            }
            if !state.nonces.consume(&claims) {
                return Err(TicketError::Reused.into());
            }
            if !entry.shared.claim(&claims.player_id, &claims.nonce) {
                return Err(if entry.shared.is_open() {
                    TicketError::NoSeat
                } else {
                    TicketError::UnknownRoom
                }
                .into());
            }
            crate::metrics::ticket_consumed();
            Ok((entry, claims.player_id))
        }
        (None, Some(token)) => {
            let claims = state.signer.verify(token, TokenKind::Resume, now_ms)?;
            let entry = state
                .registry
                .get(&claims.room_id)
                .ok_or(TicketError::UnknownRoom)?;
            if !entry.shared.holds(&claims.player_id) {
                return Err(TicketError::NoSeat.into());
            }
            Ok((entry, claims.player_id))
        }
        _ => Err(TicketError::Missing.into()),
    }
}
