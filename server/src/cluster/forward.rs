//! Calls between nodes: an API request that another node must serve (the room's owner, or the node
//! a new room is placed on) is sent there with the caller's own API key and answered with that
//! node's status and body, as if the caller had asked it directly.
//!
//! The forwarded request carries `Skirmish-Forwarded: <node_id>`; a node serves such a request
//! itself and never forwards it again, so a request crosses at most one hop.

use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use actix_web::{HttpRequest, HttpResponse};

use super::Cluster;
use crate::http::errors::ApiError;

pub const FORWARDED: &str = "skirmish-forwarded";

/// Whether another node sent this request on (then it is served here, whatever the directory says).
pub fn is_forwarded(req: &HttpRequest) -> bool {
    req.headers().contains_key(FORWARDED)
}

/// The HTTP base of a node's `ws://` or `wss://` public URL.
pub fn http_base(public_url: &str) -> String {
    let url = public_url.trim_end_matches('/');
    if let Some(rest) = url.strip_prefix("wss://") {
        format!("https://{rest}")
    } else if let Some(rest) = url.strip_prefix("ws://") {
        format!("http://{rest}")
    } else {
        url.to_owned()
    }
}

/// A forwarded call's answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: bytes::Bytes,
}

impl Answer {
    /// The other node's answer, as this node's.
    pub fn into_response(self) -> HttpResponse {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_GATEWAY);
        let mut response = HttpResponse::build(status);
        if let Some(retry_after) = self.retry_after {
            response.insert_header((RETRY_AFTER, retry_after));
        }
        if self.body.is_empty() {
            response.finish()
        } else {
            response
                .insert_header((CONTENT_TYPE, "application/json"))
                .body(self.body)
        }
    }
}

impl Cluster {
    /// Sends `method path` with `body` to the node at `public_url`, with the caller's API key.
    /// `route` names the call in `skirmish_cluster_forwarded_requests_total`.
    pub async fn forward(
        &self,
        req: &HttpRequest,
        method: reqwest::Method,
        public_url: &str,
        path: &str,
        body: Option<&serde_json::Value>,
        route: &'static str,
    ) -> Result<Answer, ApiError> {
        let url = format!("{}{path}", http_base(public_url));
        let mut request = self
            .http
            .request(method, &url)
            .header(FORWARDED, self.node_id.as_str());
        if let Some(key) = req.headers().get(AUTHORIZATION) {
            request = request.header(reqwest::header::AUTHORIZATION, key.as_bytes());
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        crate::metrics::forwarded(route);
        let unavailable = |error: reqwest::Error| {
            tracing::warn!(%url, %error, "a call to another node failed");
            ApiError::Unavailable(format!(
                "the node serving this request ({public_url}) did not answer; retry shortly"
            ))
        };
        let response = request.send().await.map_err(unavailable)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.bytes().await.map_err(unavailable)?;
        Ok(Answer {
            status,
            retry_after,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_bases_of_public_urls() {
        assert_eq!(http_base("ws://10.0.0.1:8080"), "http://10.0.0.1:8080");
        assert_eq!(http_base("wss://game.example/"), "https://game.example");
    }
}
