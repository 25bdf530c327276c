//! A bound on HTTP API requests in flight: past it, new requests are refused at once with 503
//! `overloaded` and `Retry-After: 1` instead of queueing behind the ones being served.
//!
//! It covers `/v1` except the WebSocket upgrade (a connection lives for a whole match; sessions are
//! bounded by the rooms). Health, readiness and metrics stay reachable under overload. Refused
//! requests are counted in `skirmish_http_requests_total` with status 503.

use std::sync::atomic::{AtomicUsize, Ordering};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{ResponseError, web};

use super::errors::ApiError;

/// Requests being served, shared by every worker (register one `web::Data` for the whole server).
#[derive(Debug)]
pub struct InFlight {
    current: AtomicUsize,
    max: usize,
}

impl InFlight {
    pub fn new(max: usize) -> Self {
        Self {
            current: AtomicUsize::new(0),
            max: max.max(1),
        }
    }

    /// A permit if fewer than `max` requests are in flight; the count drops with the permit.
    fn try_acquire(&self) -> Option<Permit<'_>> {
        self.current
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| Permit(self))
    }
}

struct Permit<'a>(&'a InFlight);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        // Also on a cancelled request (client gone): the future and the permit are dropped together.
        self.0.current.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Whether the limit covers `path` (the OpenAPI document lists its 503 on these).
pub(crate) fn is_limited(path: &str) -> bool {
    path.starts_with("/v1/") && path != "/v1/ws"
}

/// The middleware; needs a `web::Data<InFlight>` in the app data, and lets everything through
/// without one.
pub async fn limit_concurrency(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let limiter = match req.app_data::<web::Data<InFlight>>() {
        Some(limiter) if is_limited(req.path()) => limiter.clone(),
        _ => return Ok(next.call(req).await?.map_into_left_body()),
    };
    let Some(_permit) = limiter.try_acquire() else {
        let response = ApiError::Overloaded.error_response();
        return Ok(req.into_response(response).map_into_right_body());
    };
    Ok(next.call(req).await?.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_stop_at_the_limit_and_come_back_when_dropped() {
        let limiter = InFlight::new(2);
        let a = limiter.try_acquire();
        let b = limiter.try_acquire();
        assert!(a.is_some() && b.is_some());
        assert!(limiter.try_acquire().is_none());
        drop(a);
        assert!(
            limiter.try_acquire().is_some(),
            "a dropped permit frees its slot"
        );
        drop(b);
        assert_eq!(limiter.current.load(Ordering::Acquire), 0);
    }

    #[test]
    fn the_websocket_upgrade_and_operations_routes_are_not_limited() {
        assert!(is_limited("/v1/rooms"));
        assert!(is_limited("/v1/matchmake"));
        assert!(is_limited("/v1/rooms/abc/seats"));
        assert!(!is_limited("/v1/ws"));
        assert!(!is_limited("/healthz"));
        assert!(!is_limited("/readyz"));
        assert!(!is_limited("/metrics"));
    }
}
