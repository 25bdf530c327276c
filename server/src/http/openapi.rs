//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use actix_web::{HttpResponse, web};
use utoipa::openapi::header::Header;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Response, ResponseBuilder, Schema};
use utoipa::{Modify, OpenApi};

use super::AppState;
use super::errors::{ErrorBody, ErrorDetail};
use super::health::{self, Health};
use super::locate::{self, LocateBody};
use super::matchmake::{self, MatchmakeBody, MatchmakeRequest};
use super::results::{self, ResultsBody};
use super::rooms::{self, CreateRoomRequest, RoomBody, RoomList, SeatBody, SeatRequest};
use super::ws;
use crate::modes::Modes;
use crate::webhooks::events::PlayerResult;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Skirmish API",
        description = "Matchmaking API v1 of the Skirmish real-time game server. Every /v1 route but /v1/ws \
            needs `Authorization: Bearer API_KEY`. Errors are `{\"error\":{\"code\",\"message\"}}`. \
            Rate limits: the HTTP API has none of its own (it is for trusted matchmakers); the WebSocket \
            session limits are described on /v1/ws. Match results: `GET /v1/rooms/{id}/results`; with a \
            webhook URL configured the server also POSTs signed `match.finished` and `room.closed` events \
            (`Skirmish-Signature: t=UNIX_SECONDS,v1=HMAC-SHA256(secret, t + \".\" + body)`), at least once."
    ),
    paths(
        rooms::create_room, rooms::list_rooms, rooms::get_room, rooms::delete_room, rooms::reserve_seat,
        results::get_results,
        matchmake::matchmake, ws::connect, locate::locate, serve, health::healthz, health::readyz, health::metrics,
    ),
    components(schemas(
        CreateRoomRequest, RoomBody, RoomList, SeatRequest, SeatBody, MatchmakeRequest, MatchmakeBody,
        LocateBody, ResultsBody, PlayerResult, ErrorBody, ErrorDetail, Health,
    )),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document for this server: the generated one, with the `mode` enums set to the modes served.
pub fn document(modes: &Modes) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    let names: Vec<serde_json::Value> = modes.names().map(serde_json::Value::from).collect();
    if let Some(components) = doc.components.as_mut() {
        for request in ["CreateRoomRequest", "MatchmakeRequest"] {
            if let Some(RefOr::T(Schema::Object(body))) = components.schemas.get_mut(request)
                && let Some(RefOr::T(Schema::Object(mode))) = body.properties.get_mut("mode")
            {
                mode.enum_values = Some(names.clone());
            }
        }
    }
    for (path, item) in doc.paths.paths.iter_mut() {
        if !super::limit::is_limited(path) {
            continue;
        }
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            operation
                .responses
                .responses
                .insert("503".into(), RefOr::T(overloaded()));
        }
    }
    doc
}

/// What the concurrency limit (see `limit.rs`) and, in a cluster, a missing owner answer on every
/// route the limit covers.
fn overloaded() -> Response {
    ResponseBuilder::new()
        .description(
            "Too many API requests in flight (`overloaded`), or the database, the room directory, \
             the room's owner or a room between two owners is not available now (`unavailable`); \
             retry after `Retry-After` seconds",
        )
        .content(
            "application/json",
            Content::new(Some(Ref::from_schema_name("ErrorBody"))),
        )
        .header(
            "Retry-After",
            Header::new(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0)),
            ),
        )
        .build()
}

#[utoipa::path(get, path = "/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "This document"), (status = 401, description = "Missing or wrong API key", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn serve(_: super::auth::Authorized, state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(document(&state.modes))
}
