//! `Authorization: Bearer API_KEY` for the `/v1` routes, compared in constant time.

use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header, web};
use subtle::ConstantTimeEq;

use super::AppState;
use super::errors::ApiError;

/// Present in a handler's arguments means the request carried the right key.
#[derive(Debug, Clone, Copy)]
pub struct Authorized;

impl FromRequest for Authorized {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(state) = req.app_data::<web::Data<AppState>>() else {
            return ready(Err(ApiError::Internal("application state missing".into())));
        };
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split_once(' '))
            // The scheme is case-insensitive (RFC 9110, section 11.1).
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map_or("", |(_, key)| key.trim());
        let matches: bool = given.as_bytes().ct_eq(state.api_key.as_bytes()).into();
        ready(if matches {
            Ok(Authorized)
        } else {
            Err(ApiError::Unauthorized)
        })
    }
}
