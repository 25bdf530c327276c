//! Traces end to end: the real `skirmish` binary, pointed by `OTEL_EXPORTER_OTLP_ENDPOINT` at a small
//! OTLP/HTTP receiver in this test that decodes the protobuf bodies, and checks the spans' names,
//! attributes and parents: request → matchmake → room start, request → WebSocket upgrade, `DELETE`
//! request → room close; the request id in the span, the response header and the JSON log lines; the
//! spans still buffered at SIGTERM are exported before the process exits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use futures_util::StreamExt;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const API_KEY: &str = "traces-test-api-key-0123456789";
const WAIT: Duration = Duration::from_secs(20);
const SERVICE_NAME: &str = "skirmish-traces-test";

/// One received span, flattened with its resource's service name.
#[derive(Debug, Clone)]
struct ReceivedSpan {
    service_name: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    kind: i32,
    attributes: HashMap<String, String>,
    linked_span_ids: Vec<String>,
}

impl ReceivedSpan {
    fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }

    fn is_child_of(&self, parent: &ReceivedSpan) -> bool {
        self.trace_id == parent.trace_id && self.parent_span_id == parent.span_id
    }
}

#[derive(Debug, Default)]
struct Received {
    spans: Vec<ReceivedSpan>,
    /// Requests the receiver could not accept (wrong path, content type or body).
    rejected: Vec<String>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attributes(list: &[KeyValue]) -> HashMap<String, String> {
    list.iter()
        .filter_map(|kv| {
            let value = match kv.value.as_ref()?.value.as_ref()? {
                AnyValue::StringValue(s) => s.clone(),
                AnyValue::BoolValue(b) => b.to_string(),
                AnyValue::IntValue(i) => i.to_string(),
                AnyValue::DoubleValue(d) => d.to_string(),
                other => format!("{other:?}"),
            };
            Some((kv.key.clone(), value))
        })
        .collect()
}

/// The OTLP/HTTP receiver: `POST /v1/traces` with `application/x-protobuf`.
async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    received: web::Data<Mutex<Received>>,
) -> HttpResponse {
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    // A failed assertion elsewhere may have poisoned the lock; the data is still good.
    let mut received = received.lock().unwrap_or_else(|p| p.into_inner());
    if content_type != "application/x-protobuf" {
        received
            .rejected
            .push(format!("content type {content_type:?}"));
        return HttpResponse::UnsupportedMediaType().finish();
    }
    let request = match ExportTraceServiceRequest::decode(body) {
        Ok(request) => request,
        Err(error) => {
            received.rejected.push(format!("undecodable body: {error}"));
            return HttpResponse::BadRequest().finish();
        }
    };
    for resource_spans in request.resource_spans {
        let resource = attributes(
            &resource_spans
                .resource
                .map(|r| r.attributes)
                .unwrap_or_default(),
        );
        let service_name = resource.get("service.name").cloned().unwrap_or_default();
        for scope_spans in resource_spans.scope_spans {
            for span in scope_spans.spans {
                received.spans.push(ReceivedSpan {
                    service_name: service_name.clone(),
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    kind: span.kind,
                    attributes: attributes(&span.attributes),
                    linked_span_ids: span.links.iter().map(|l| hex(&l.span_id)).collect(),
                });
            }
        }
    }
    HttpResponse::Ok()
        .content_type("application/x-protobuf")
        .body(ExportTraceServiceResponse::default().encode_to_vec())
}

async fn unexpected(req: HttpRequest, received: web::Data<Mutex<Received>>) -> HttpResponse {
    received
        .lock()
        .unwrap()
        .rejected
        .push(format!("{} {}", req.method(), req.path()));
    HttpResponse::NotFound().finish()
}

struct Receiver {
    port: u16,
    received: web::Data<Mutex<Received>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let received = web::Data::new(Mutex::new(Received::default()));
        let data = received.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(16 * 1024 * 1024))
                .route("/v1/traces", web::post().to(receive))
                .default_service(web::to(unexpected))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        actix_rt::spawn(server);
        Receiver { port, received }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Waits until `found` finds what it looks for in the spans received so far.
    async fn wait_for<T>(&self, what: &str, found: impl Fn(&[ReceivedSpan]) -> Option<T>) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            {
                let received = self.received.lock().unwrap();
                assert!(
                    received.rejected.is_empty(),
                    "the receiver rejected: {:?}",
                    received.rejected
                );
                if let Some(result) = found(&received.spans) {
                    return result;
                }
                assert!(
                    Instant::now() < deadline,
                    "no {what} within {WAIT:?}; received: {:#?}",
                    received
                        .spans
                        .iter()
                        .map(|s| (&s.name, &s.attributes))
                        .collect::<Vec<_>>()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn find<'a>(
    spans: &'a [ReceivedSpan],
    name: &str,
    attrs: &[(&str, &str)],
) -> Option<&'a ReceivedSpan> {
    spans
        .iter()
        .find(|s| s.name == name && attrs.iter().all(|(k, v)| s.attr(k) == Some(*v)))
}

fn request_span<'a>(spans: &'a [ReceivedSpan], request_id: &str) -> Option<&'a ReceivedSpan> {
    find(spans, "http.request", &[("request_id", request_id)])
}

/// The `skirmish` binary as a child process, stderr in a file; killed if the test ends early.
struct Server {
    child: Child,
    port: u16,
    http: reqwest::Client,
    log: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The command for the binary in `dir`, with a clean OTEL environment plus `otel`.
fn command(dir: &Path, port: u16, otel: &[(&str, String)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_skirmish"));
    command
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env("SKIRMISH_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "SKIRMISH_DATABASE_URL",
            format!("sqlite://{}/skirmish.db?mode=rwc", dir.display()),
        )
        .env("SKIRMISH_API_KEY", API_KEY)
        .env("SKIRMISH_LOG_FORMAT", "json")
        .env("SKIRMISH_LOG", "info,server::http=debug")
        .env("SKIRMISH_WORKERS", "2")
        .stdin(Stdio::null());
    for (name, _) in std::env::vars() {
        if name.starts_with("OTEL_") {
            command.env_remove(name);
        }
    }
    for (name, value) in otel {
        command.env(name, value);
    }
    command
}

impl Server {
    async fn start(dir: &Path, otel: &[(&str, String)]) -> Server {
        let port = free_port();
        let log = dir.join("stderr.log");
        let child = command(dir, port, otel)
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start the skirmish binary");
        let mut server = Server {
            child,
            port,
            http: reqwest::Client::new(),
            log,
        };
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!(
                    "skirmish exited during start: {status}\n{}",
                    std::fs::read_to_string(&server.log).unwrap_or_default()
                );
            }
            if let Ok(response) = server.http.get(server.url("/healthz")).send().await
                && response.status().is_success()
            {
                return server;
            }
            assert!(Instant::now() < deadline, "skirmish did not become healthy");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn log_lines(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap()
            .lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
            })
            .collect()
    }

    async fn exited_within(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "skirmish still running after {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn response_id(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-request-id")
        .expect("every response has X-Request-Id")
        .to_str()
        .unwrap()
        .to_string()
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

#[actix_rt::test]
async fn spans_reach_an_otlp_receiver_with_their_parents_and_request_ids() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
            ("OTEL_SERVICE_NAME", SERVICE_NAME.into()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".into()),
        ],
    )
    .await;

    // Matchmake: request → matchmake → room start (on the room's arbiter).
    let matchmake_id = unique("matchmake");
    let response = server
        .http
        .post(server.url("/v1/matchmake"))
        .bearer_auth(API_KEY)
        .header("X-Request-Id", &matchmake_id)
        .json(&json!({ "mode": "arena", "player_id": "tracer" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response_id(&response), matchmake_id);
    let seat: Value = response.json().await.unwrap();
    let room_id = seat["room_id"].as_str().unwrap().to_string();

    // The WebSocket upgrade, with its own request id.
    let upgrade_id = unique("upgrade");
    let mut ws_request = seat["ws_url"]
        .as_str()
        .unwrap()
        .into_client_request()
        .unwrap();
    ws_request
        .headers_mut()
        .insert("x-request-id", upgrade_id.parse().unwrap());
    let (mut ws, upgrade) = tokio_tungstenite::connect_async(ws_request).await.unwrap();
    assert_eq!(
        upgrade
            .headers()
            .get("x-request-id")
            .unwrap()
            .to_str()
            .unwrap(),
        upgrade_id
    );

    // A room created inside a caller's trace (W3C traceparent).
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let create_id = unique("create");
    let response = server
        .http
        .post(server.url("/v1/rooms"))
        .bearer_auth(API_KEY)
        .header("X-Request-Id", &create_id)
        .header("traceparent", format!("00-{caller_trace}-{caller_span}-01"))
        .json(&json!({ "mode": "arena" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    let created_room = created["room_id"].as_str().unwrap().to_string();

    // A refused request: its log line carries its id.
    let missing_id = unique("missing");
    let response = server
        .http
        .get(server.url("/v1/rooms/no-such-room"))
        .bearer_auth(API_KEY)
        .header("X-Request-Id", &missing_id)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(response_id(&response), missing_id);

    // DELETE: request → CloseRoom message → room close, a child of the request.
    let delete_id = unique("delete");
    let response = server
        .http
        .delete(server.url(&format!("/v1/rooms/{room_id}")))
        .bearer_auth(API_KEY)
        .header("X-Request-Id", &delete_id)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(response_id(&response), delete_id);
    // Answer the room's close (4001) so the session ends and its span is exported.
    let deadline = Instant::now() + WAIT;
    loop {
        let frame = tokio::time::timeout_at(deadline.into(), ws.next())
            .await
            .expect("the session is closed after DELETE");
        match frame {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(close))) => {
                assert_eq!(u16::from(close.unwrap().code), protocol::close::ROOM_CLOSED);
                break;
            }
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
    drop(ws);

    // Request ids: a usable one is echoed, anything else is replaced by a fresh UUID.
    let longest = "x".repeat(128);
    let response = server
        .http
        .get(server.url("/healthz"))
        .header("X-Request-Id", &longest)
        .send()
        .await
        .unwrap();
    assert_eq!(response_id(&response), longest);
    let mut made = Vec::new();
    for bad in [Some("x".repeat(129)), Some("two words".into()), None] {
        let mut request = server.http.get(server.url("/healthz"));
        if let Some(bad) = &bad {
            request = request.header("X-Request-Id", bad);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        let id = response_id(&response);
        let parsed = uuid::Uuid::parse_str(&id)
            .unwrap_or_else(|_| panic!("{bad:?} was answered with {id:?}, not a new UUID"));
        assert_eq!(parsed.get_version_num(), 4);
        made.push(id);
    }
    made.sort();
    made.dedup();
    assert_eq!(made.len(), 3, "each request gets its own id");

    // The spans, as the receiver decoded them.
    let (request, matchmake, start) = receiver
        .wait_for("matchmake request → matchmake → room.start", |spans| {
            let request = request_span(spans, &matchmake_id)?;
            let matchmake = spans
                .iter()
                .find(|s| s.name == "matchmake" && s.is_child_of(request))?;
            let start = spans
                .iter()
                .find(|s| s.name == "room.start" && s.is_child_of(matchmake))?;
            Some((request.clone(), matchmake.clone(), start.clone()))
        })
        .await;
    assert_eq!(request.kind, SpanKind::Server as i32);
    assert_eq!(request.attr("http.route"), Some("/v1/matchmake"));
    assert_eq!(request.attr("http.request.method"), Some("POST"));
    assert_eq!(request.attr("http.response.status_code"), Some("201"));
    assert_eq!(
        request.parent_span_id, "",
        "a request without traceparent starts a trace"
    );
    assert_eq!(matchmake.attr("room_id"), Some(room_id.as_str()));
    assert_eq!(matchmake.attr("player_id"), Some("tracer"));
    assert_eq!(matchmake.attr("new_room"), Some("true"));
    assert_eq!(start.attr("room_id"), Some(room_id.as_str()));

    let upgrade_span = receiver
        .wait_for("upgrade request → ws.upgrade", |spans| {
            let request = request_span(spans, &upgrade_id)?;
            let upgrade = spans
                .iter()
                .find(|s| s.name == "ws.upgrade" && s.is_child_of(request))?;
            Some((request.clone(), upgrade.clone()))
        })
        .await;
    assert_eq!(upgrade_span.0.attr("http.route"), Some("/v1/ws"));
    assert_eq!(
        upgrade_span.0.attr("http.response.status_code"),
        Some("101")
    );
    assert_eq!(upgrade_span.1.attr("room_id"), Some(room_id.as_str()));
    assert_eq!(upgrade_span.1.attr("player_id"), Some("tracer"));
    assert_eq!(upgrade_span.1.attr("credential"), Some("ticket"));
    // The session outlives the request: its own trace, linked to the upgrade.
    let session = receiver
        .wait_for("the session span", |spans| {
            find(spans, "session", &[("room_id", room_id.as_str())]).cloned()
        })
        .await;
    assert_eq!(session.parent_span_id, "");
    assert_eq!(
        session.linked_span_ids,
        vec![upgrade_span.1.span_id.clone()]
    );

    let (delete, close) = receiver
        .wait_for("DELETE request → room.close", |spans| {
            let request = request_span(spans, &delete_id)?;
            let close = spans
                .iter()
                .find(|s| s.name == "room.close" && s.is_child_of(request))?;
            Some((request.clone(), close.clone()))
        })
        .await;
    assert_eq!(delete.attr("http.route"), Some("/v1/rooms/{id}"));
    assert_eq!(delete.attr("http.response.status_code"), Some("204"));
    assert_eq!(close.attr("room_id"), Some(room_id.as_str()));
    assert_eq!(close.attr("reason"), Some("deleted"));

    let (create, created_start) = receiver
        .wait_for("traceparent request → room.start", |spans| {
            let request = request_span(spans, &create_id)?;
            let start = spans
                .iter()
                .find(|s| s.name == "room.start" && s.is_child_of(request))?;
            Some((request.clone(), start.clone()))
        })
        .await;
    assert_eq!(
        create.trace_id, caller_trace,
        "the request joins the caller's trace"
    );
    assert_eq!(create.parent_span_id, caller_span);
    assert_eq!(created_start.attr("room_id"), Some(created_room.as_str()));

    let flush = receiver
        .wait_for("a persistence.flush span", |spans| {
            find(spans, "persistence.flush", &[]).cloned()
        })
        .await;
    assert_eq!(
        flush.parent_span_id, "",
        "a flush serves many requests: a root span"
    );
    assert!(
        flush.attr("rows").is_some_and(|rows| rows != "0"),
        "{flush:?}"
    );

    let refused = receiver
        .wait_for("the refused request's span", |spans| {
            request_span(spans, &missing_id).cloned()
        })
        .await;
    assert_eq!(refused.attr("http.response.status_code"), Some("404"));

    let services: Vec<_> = receiver
        .received
        .lock()
        .unwrap()
        .spans
        .iter()
        .map(|s| s.service_name.clone())
        .filter(|name| name != SERVICE_NAME)
        .collect();
    assert!(
        services.is_empty(),
        "spans from other services: {services:?}"
    );

    // JSON logs: the lines of a request carry its request id, including those of the actor that
    // the request made do the work.
    let lines = server.log_lines();
    let in_request = |line: &Value, id: &str| {
        line["spans"]
            .as_array()
            .is_some_and(|spans| spans.iter().any(|s| s["request_id"] == id))
    };
    let message = |line: &Value| {
        line["fields"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        lines
            .iter()
            .any(|l| message(l) == "request refused" && in_request(l, &missing_id)),
        "no 'request refused' log line with request_id {missing_id}"
    );
    assert!(
        lines
            .iter()
            .any(|l| message(l) == "request finished"
                && l["span"]["request_id"] == delete_id.as_str()),
        "no 'request finished' log line with request_id {delete_id}"
    );
    assert!(
        lines.iter().any(|l| message(l) == "room started"
            && l["fields"]["room_id"] == room_id.as_str()
            && in_request(l, &matchmake_id)),
        "the room's 'room started' line does not carry the matchmake request's id"
    );
}

#[actix_rt::test]
async fn spans_still_buffered_at_sigterm_are_exported_before_exit() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    // A ten-minute export interval: whatever arrives below was sent by the flush at exit.
    let mut server = Server::start(
        dir.path(),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
            ("OTEL_SERVICE_NAME", SERVICE_NAME.into()),
            ("OTEL_BSP_SCHEDULE_DELAY", "600000".into()),
        ],
    )
    .await;
    let create_id = unique("before-exit");
    let response = server
        .http
        .post(server.url("/v1/rooms"))
        .bearer_auth(API_KEY)
        .header("X-Request-Id", &create_id)
        .json(&json!({ "mode": "arena" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let room: Value = response.json().await.unwrap();
    let room_id = room["room_id"].as_str().unwrap().to_string();

    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = server.exited_within(WAIT).await;
    assert!(exit.success(), "skirmish exited with {exit}");

    receiver
        .wait_for("the request and its room.start", |spans| {
            let request = request_span(spans, &create_id)?;
            spans
                .iter()
                .find(|s| s.name == "room.start" && s.is_child_of(request))
                .map(|_| ())
        })
        .await;
    let close = receiver
        .wait_for("shutdown → room.close", |spans| {
            let shutdown = find(spans, "shutdown", &[])?;
            spans
                .iter()
                .find(|s| s.name == "room.close" && s.is_child_of(shutdown))
                .cloned()
        })
        .await;
    assert_eq!(close.attr("room_id"), Some(room_id.as_str()));
    assert_eq!(close.attr("reason"), Some("shutdown"));
}

#[actix_rt::test]
async fn an_unsupported_otlp_protocol_stops_the_server_at_start_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr.log");
    let mut child = command(
        dir.path(),
        free_port(),
        &[
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "http://127.0.0.1:4318".into(),
            ),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".into()),
        ],
    )
    .stderr(std::fs::File::create(&log).unwrap())
    .spawn()
    .unwrap();
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("skirmish kept running with OTEL_EXPORTER_OTLP_PROTOCOL=grpc");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(!status.success());
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(
        stderr.contains("OTEL_EXPORTER_OTLP_PROTOCOL") && stderr.contains("http/protobuf"),
        "{stderr}"
    );
}
