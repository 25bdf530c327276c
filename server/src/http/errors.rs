//! The one mapping from errors to HTTP: a status and `{"error":{"code","message"}}`.
//!
//! Extractor failures (malformed JSON, wrong content type, bad path or query) are routed here too,
//! so a client never sees actix-web's plain-text or HTML defaults.

use actix_web::error::{JsonPayloadError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::tickets::TicketError;
use crate::error_chain::ErrorChain;
use crate::room::registry::SeatError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Not JSON (malformed, empty, too large) or the wrong content type. Well-formed JSON of the
    /// wrong shape is [`ApiError::Invalid`].
    #[error("{0}")]
    BadRequest(String),
    #[error("missing or invalid API key: send `Authorization: Bearer <key>`")]
    Unauthorized,
    #[error("{0}")]
    Ticket(#[from] TicketError),
    #[error("room {0} not found")]
    RoomNotFound(String),
    #[error("no route for {0}")]
    RouteNotFound(String),
    /// The route exists but does not serve this method; `allow` lists the ones it serves.
    #[error("{method} is not allowed here; allowed: {allow}")]
    MethodNotAllowed { method: String, allow: &'static str },
    /// The room exists but has no results: its match is running, or it closed without one.
    #[error("room {0} has no results: its match has not finished")]
    NotFinished(String),
    #[error("{0}")]
    Seat(#[from] SeatError),
    /// Well-formed JSON whose values are out of bounds or of the wrong type.
    #[error("{0}")]
    Invalid(String),
    #[error("unknown mode {0:?}")]
    UnknownMode(String),
    /// Answered with `Retry-After`: the database, or a room between two owners.
    #[error("{0}")]
    Unavailable(String),
    /// Cluster mode: the room has no live owner for a moment (its node died or is draining);
    /// answered like `Unavailable` but expected, so not logged as a failure.
    #[error("room {0} is moving to another node; retry shortly")]
    Moving(String),
    /// Cluster mode: the room is served by another node (ask `GET /v1/locate`).
    #[error("room {0} is served by another node; ask GET /v1/locate")]
    WrongNode(String),
    /// A failure that is ours, not the client's; the cause is logged, never sent.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Too many API requests in flight (`http_max_concurrent_requests`); answered with `Retry-After`.
    #[error("the server is overloaded; retry shortly")]
    Overloaded,
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::Ticket(_) => "invalid_ticket",
            Self::RoomNotFound(_) => "room_not_found",
            Self::RouteNotFound(_) => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::NotFinished(_) => "not_finished",
            Self::Seat(SeatError::Full) => "room_full",
            Self::Seat(SeatError::Closed) => "room_closed",
            Self::Invalid(_) => "invalid_request",
            Self::UnknownMode(_) => "unknown_mode",
            Self::Unavailable(_) | Self::Moving(_) => "unavailable",
            Self::WrongNode(_) => "wrong_node",
            Self::Internal(_) => "internal",
            Self::Overloaded => "overloaded",
        }
    }
}

/// The JSON error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable, machine-readable code (`room_full`, `invalid_request`, ...).
    pub code: &'static str,
    pub message: String,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized | Self::Ticket(_) => StatusCode::UNAUTHORIZED,
            Self::RoomNotFound(_) | Self::RouteNotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Seat(_) | Self::NotFinished(_) | Self::WrongNode(_) => StatusCode::CONFLICT,
            Self::Invalid(_) | Self::UnknownMode(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable(_) | Self::Moving(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let message = match self {
            // Internal details go to the log, not to the client.
            Self::Internal(_) => {
                tracing::error!(error = %ErrorChain(self), "internal error");
                self.to_string()
            }
            other => other.to_string(),
        };
        // Overload is refused by the thousand: a warning each would flood the log (it is counted
        // in the request metrics).
        if status.is_server_error() && !matches!(self, Self::Overloaded | Self::Moving(_)) {
            tracing::warn!(code = self.code(), detail = %message, "request failed");
        } else {
            tracing::debug!(code = self.code(), detail = %message, "request refused");
        }
        let mut response = HttpResponse::build(status);
        if let Self::MethodNotAllowed { allow, .. } = self {
            response.insert_header((actix_web::http::header::ALLOW, *allow));
        }
        if let Self::Overloaded | Self::Unavailable(_) | Self::Moving(_) = self {
            response.insert_header((actix_web::http::header::RETRY_AFTER, "1"));
        }
        response.json(ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message,
            },
        })
    }
}

/// Malformed JSON and wrong content types are 400; well-formed JSON of the wrong shape is 422.
pub fn json_error(error: JsonPayloadError, _: &HttpRequest) -> actix_web::Error {
    let api = match &error {
        JsonPayloadError::Deserialize(e) if e.is_data() => ApiError::Invalid(e.to_string()),
        JsonPayloadError::Deserialize(e) => ApiError::BadRequest(format!("malformed JSON: {e}")),
        JsonPayloadError::ContentType => {
            ApiError::BadRequest("the content type must be application/json".into())
        }
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
            ApiError::BadRequest("the request body is too large".into())
        }
        other => ApiError::BadRequest(other.to_string()),
    };
    api.into()
}

pub fn query_error(error: QueryPayloadError, _: &HttpRequest) -> actix_web::Error {
    ApiError::Invalid(format!("invalid query: {error}")).into()
}

pub fn path_error(error: actix_web::error::PathError, _: &HttpRequest) -> actix_web::Error {
    ApiError::BadRequest(format!("invalid path: {error}")).into()
}
