//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::errors::{ErrorBody, ErrorDetail};
use super::health::{self, Health};
use super::matchmake::{self, MatchmakeBody, MatchmakeRequest};
use super::rooms::{self, CreateRoomRequest, RoomBody, RoomList, SeatBody, SeatRequest};
use super::ws;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Skirmish API",
        description = "Matchmaking API v1 of the Skirmish real-time game server. Every /v1 route but /v1/ws \
            needs `Authorization: Bearer API_KEY`. Errors are `{\"error\":{\"code\",\"message\"}}`. \
            Rate limits: the HTTP API has none of its own (it is for trusted matchmakers); the WebSocket \
            session limits are described on /v1/ws."
    ),
    paths(
        rooms::create_room, rooms::list_rooms, rooms::get_room, rooms::delete_room, rooms::reserve_seat,
        matchmake::matchmake, ws::connect, serve, health::healthz, health::readyz, health::metrics,
    ),
    components(schemas(
        CreateRoomRequest, RoomBody, RoomList, SeatRequest, SeatBody, MatchmakeRequest, MatchmakeBody,
        ErrorBody, ErrorDetail, Health,
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

#[utoipa::path(get, path = "/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "This document"), (status = 401, description = "Missing or wrong API key", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn serve(_: super::auth::Authorized) -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
