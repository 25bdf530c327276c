//! The HTTP side: the matchmaking API (`/v1`), the WebSocket upgrade, health, metrics and OpenAPI.

pub mod auth;
pub mod errors;
mod health;
pub mod limit;
mod locate;
mod matchmake;
pub mod openapi;
mod playground;
pub mod request_id;
mod results;
mod rooms;
pub mod upgrade;
mod ws;

use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, web};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::Config;
use crate::domain::tickets::{Signer, UsedNonces};
use crate::modes::Modes;
use crate::room::RoomEnv;
use crate::room::registry::RoomRegistry;
use crate::session::SessionSettings;
use errors::ApiError;
// The request bodies and their validation, for the fuzz targets (`fuzz/fuzz_targets/http_bodies.rs`).
pub use matchmake::MatchmakeRequest;
pub use rooms::{CreateRoomRequest, NewRoom, SeatRequest, parse_player};

/// What every handler shares.
pub struct AppState {
    pub config: Arc<Config>,
    pub api_key: String,
    pub registry: Arc<RoomRegistry>,
    pub modes: Arc<Modes>,
    pub env: Arc<RoomEnv>,
    pub signer: Arc<Signer>,
    pub nonces: Arc<UsedNonces>,
    pub storage: persistence::Storage,
    pub sessions: Arc<SessionSettings>,
    pub metrics: PrometheusHandle,
    /// Serialises "find the fullest room or create one" so concurrent quick matches fill rooms
    /// instead of each opening its own; seat reservation itself is atomic per room.
    pub matchmaking: tokio::sync::Mutex<()>,
    pub store: Arc<crate::persistence_link::PersistenceLink>,
    /// The webhook sender, when a webhook URL is configured.
    pub webhooks: Option<Arc<crate::webhooks::Webhooks>>,
    /// Cluster mode: this node's membership (lease, directory, calls to other nodes).
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
}

impl AppState {
    /// What the cluster keeper needs to run rooms on this node.
    pub fn room_host(&self) -> crate::cluster::RoomHost {
        crate::cluster::RoomHost {
            registry: self.registry.clone(),
            modes: self.modes.clone(),
            env: self.env.clone(),
            store: self.store.clone(),
        }
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("rooms", &self.registry.len())
            .finish_non_exhaustive()
    }
}

/// Every route the application serves, as `(method, path)`; the OpenAPI test checks each is documented.
pub const ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/rooms"),
    ("get", "/v1/rooms"),
    ("get", "/v1/rooms/{id}"),
    ("delete", "/v1/rooms/{id}"),
    ("post", "/v1/rooms/{id}/seats"),
    ("get", "/v1/rooms/{id}/results"),
    ("post", "/v1/matchmake"),
    ("get", "/v1/ws"),
    ("get", "/v1/locate"),
    ("get", "/v1/openapi.json"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
];

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(16 * 1024)
            .error_handler(errors::json_error),
    )
    .app_data(web::QueryConfig::default().error_handler(errors::query_error))
    .app_data(web::PathConfig::default().error_handler(errors::path_error))
    .service(
        web::scope("/v1")
            .service(
                resource("/rooms", "GET, POST")
                    .route(web::post().to(rooms::create_room))
                    .route(web::get().to(rooms::list_rooms)),
            )
            .service(
                resource("/rooms/{id}", "GET, DELETE")
                    .route(web::get().to(rooms::get_room))
                    .route(web::delete().to(rooms::delete_room)),
            )
            .service(
                resource("/rooms/{id}/seats", "POST").route(web::post().to(rooms::reserve_seat)),
            )
            .service(
                resource("/rooms/{id}/results", "GET").route(web::get().to(results::get_results)),
            )
            .service(resource("/matchmake", "POST").route(web::post().to(matchmake::matchmake)))
            .service(resource("/ws", "GET").route(web::get().to(ws::connect)))
            .service(resource("/locate", "GET").route(web::get().to(locate::locate)))
            .service(resource("/openapi.json", "GET").route(web::get().to(openapi::serve))),
    )
    .service(resource("/healthz", "GET").route(web::get().to(health::healthz)))
    .service(resource("/readyz", "GET").route(web::get().to(health::readyz)))
    .service(resource("/metrics", "GET").route(web::get().to(health::metrics)))
    .service(resource("/playground", "GET").route(web::get().to(playground::page)))
    .default_service(web::to(not_found));
}

/// A resource that answers 405 with an `Allow` header for the methods it does not serve.
fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(move |req: HttpRequest| async move {
        Err::<actix_web::HttpResponse, _>(ApiError::MethodNotAllowed {
            method: req.method().to_string(),
            allow,
        })
    }))
}

async fn not_found(req: HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::RouteNotFound(format!(
        "{} {}",
        req.method(),
        req.path()
    )))
}

/// Counts requests by route pattern, method and status, with latency.
pub async fn track_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let response = next.call(req).await?;
    crate::metrics::http_request(
        &route,
        &method,
        response.status().as_u16(),
        started.elapsed(),
    );
    Ok(response)
}
