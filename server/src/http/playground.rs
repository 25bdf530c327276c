//! `GET /playground`: the browser playground, one self-contained HTML page (the TypeScript SDK and
//! the page's script inlined) built by `clients/typescript` and embedded here, so serving it needs no
//! Node and no files at run time. It is not an API route, so it is not in the OpenAPI document.
//! The page holds no secret: the user types the API key, which stays in the browser tab.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::AppState;
use super::errors::ApiError;

/// Built by `npm run build:playground` in `clients/typescript`; a test there keeps it current.
const PAGE: &str = include_str!("../../playground/index.html");

pub async fn page(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if !state.config.playground {
        return Err(ApiError::RouteNotFound(format!("GET {}", req.path())));
    }
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        // The page talks only to this origin; nothing may frame it or load scripts from elsewhere.
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
             connect-src 'self' ws: wss:; img-src 'self' data:; frame-ancestors 'none'",
        ))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(PAGE))
}
