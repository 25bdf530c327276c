//! Prometheus metrics: names in one place, recorded through the `metrics` facade.
//!
//! Hot paths (per frame) record into counters whose handles the facade caches per call site; per-tick
//! figures are recorded once per room tick, never per player.

use std::time::Duration;

use std::sync::OnceLock;

use metrics::{Counter, counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Installs the global recorder once per process (tests start several servers in one process).
pub fn install() -> PrometheusHandle {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let seconds = [
                0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ];
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (for example by a test harness); then this
            // handle renders nothing but the server still works.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

pub fn tick_lateness(lateness: Duration) {
    histogram!("skirmish_tick_lateness_seconds").record(lateness.as_secs_f64());
}

pub fn late_tick() {
    counter!("skirmish_late_ticks_total").increment(1);
}

pub fn tick_done(duration: Duration) {
    counter!("skirmish_ticks_total").increment(1);
    histogram!("skirmish_tick_duration_seconds").record(duration.as_secs_f64());
}

pub fn room_started() {
    gauge!("skirmish_rooms").increment(1.0);
}

pub fn room_stopped() {
    gauge!("skirmish_rooms").decrement(1.0);
}

pub fn client_connected() {
    gauge!("skirmish_connected_clients").increment(1.0);
}

pub fn client_disconnected() {
    gauge!("skirmish_connected_clients").decrement(1.0);
}

pub fn session_closed(code: u16) {
    counter!("skirmish_sessions_closed_total", "code" => code.to_string()).increment(1);
}

pub fn slow_client_closed() {
    counter!("skirmish_slow_clients_total").increment(1);
}

/// A counter on a per-frame path: looked up in the registry once, then a plain atomic add.
/// (The recorder is installed before any server code runs, so the cached handle is the live one.)
fn hot(cell: &'static OnceLock<Counter>, name: &'static str) -> &'static Counter {
    cell.get_or_init(|| counter!(name))
}

pub fn frame_in(bytes: usize) {
    static FRAMES: OnceLock<Counter> = OnceLock::new();
    static BYTES: OnceLock<Counter> = OnceLock::new();
    hot(&FRAMES, "skirmish_frames_in_total").increment(1);
    hot(&BYTES, "skirmish_bytes_in_total").increment(bytes as u64);
}

pub fn frames_out(frames: u64, bytes: u64) {
    static FRAMES: OnceLock<Counter> = OnceLock::new();
    static BYTES: OnceLock<Counter> = OnceLock::new();
    hot(&FRAMES, "skirmish_frames_out_total").increment(frames);
    hot(&BYTES, "skirmish_bytes_out_total").increment(bytes);
}

pub fn invalid_frame(code: &'static str) {
    counter!("skirmish_invalid_frames_total", "code" => code).increment(1);
}

pub fn rate_limited(what: &str) {
    counter!("skirmish_rate_limited_total", "kind" => what.to_string()).increment(1);
}

pub fn ticket_issued() {
    counter!("skirmish_tickets_issued_total").increment(1);
}

pub fn ticket_consumed() {
    counter!("skirmish_tickets_consumed_total").increment(1);
}

pub fn tickets_expired(n: usize) {
    counter!("skirmish_tickets_expired_total").increment(n as u64);
}

pub fn ticket_rejected(reason: &'static str) {
    counter!("skirmish_tickets_rejected_total", "reason" => reason).increment(1);
}

pub fn http_request(route: &str, method: &str, status: u16, duration: Duration) {
    let labels = [
        ("route", route.to_string()),
        ("method", method.to_string()),
        ("status", status.to_string()),
    ];
    counter!("skirmish_http_requests_total", &labels).increment(1);
    histogram!("skirmish_http_request_duration_seconds", &labels).record(duration.as_secs_f64());
}
