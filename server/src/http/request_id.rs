//! Request ids and the request span: the outermost middleware.
//!
//! Each request gets an id: the caller's `X-Request-Id` when it is usable (1 to 128 visible ASCII
//! characters), otherwise a new UUID v4. The id is returned in the response's `X-Request-Id` and is
//! a field of the request's span (`http.request`, with method, route pattern and status), which is
//! entered while the request is handled, so every log line of the request carries it and the
//! exported trace has it as the `request_id` attribute. A W3C `traceparent` header makes the span
//! join the caller's trace.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Instrument;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");
/// The longest caller-supplied id that is kept.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// The caller's id if it is 1 to [`MAX_REQUEST_ID_LEN`] visible ASCII characters (no spaces or
/// control characters, so it is safe in logs and headers).
pub fn valid_request_id(raw: &[u8]) -> Option<&str> {
    if raw.is_empty() || raw.len() > MAX_REQUEST_ID_LEN || !raw.iter().all(u8::is_ascii_graphic) {
        return None;
    }
    std::str::from_utf8(raw).ok()
}

/// Opens the request span around everything else and answers with the request id.
pub async fn trace_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|value| valid_request_id(value.as_bytes()))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    let route = req.match_pattern();
    let span = tracing::info_span!(
        "http.request",
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = %req.method(),
        http.route = route.as_deref().unwrap_or("unmatched"),
        url.path = req.path(),
        request_id = %request_id,
        http.response.status_code = Empty,
    );
    if req.headers().contains_key("traceparent") {
        let parent = TraceContextPropagator::new().extract(&Headers(req.headers()));
        // Fails only when traces are off (the span is not exported), which needs no parent.
        let _ = span.set_parent(parent);
    }
    // Handlers' and extractors' errors arrive here as responses (`ApiError` → `ResponseError`), so
    // they get the header too. (The request cannot be kept to answer an `Err` here: routing needs
    // it unshared.)
    let mut response = next.call(req).instrument(span.clone()).await?;
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    span.in_scope(|| {
        tracing::debug!(
            status = status.as_u16(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "request finished"
        );
    });
    Ok(response)
}

/// Request headers as the trace-context propagator reads them.
struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usable_ids_are_kept() {
        assert_eq!(valid_request_id(b"abc-123"), Some("abc-123"));
        assert_eq!(valid_request_id(b"a"), Some("a"));
        let longest = "x".repeat(MAX_REQUEST_ID_LEN);
        assert_eq!(valid_request_id(longest.as_bytes()), Some(longest.as_str()));
        let punctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
        assert_eq!(valid_request_id(punctuation.as_bytes()), Some(punctuation));
    }

    #[test]
    fn unusable_ids_are_refused() {
        assert_eq!(valid_request_id(b""), None);
        assert_eq!(
            valid_request_id("x".repeat(MAX_REQUEST_ID_LEN + 1).as_bytes()),
            None
        );
        for bad in [
            &b"two words"[..],
            b"tab\there",
            b"new\nline",
            b"nul\0",
            b"del\x7f",
            "caf\u{e9}".as_bytes(),
        ] {
            assert_eq!(valid_request_id(bad), None, "{bad:?}");
        }
    }
}
