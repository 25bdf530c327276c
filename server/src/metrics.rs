//! Prometheus metrics: names in one place, recorded through the `metrics` facade.
//!
//! Hot paths (per frame) record into counters whose handles the facade caches per call site; per-tick
//! figures are recorded once per room tick, never per player.
//!
//! Every family is in [`FAMILIES`] with its help text, and exists from start: unlabelled series and
//! the known values of finite labels (close codes, error codes, reasons) are registered at zero, so
//! dashboards and alerts see a 0 rather than nothing on a fresh server. Families whose labels are
//! open-ended (HTTP route and status) show their HELP and TYPE before their first sample.

use std::fmt::Write as _;
use std::time::Duration;

use std::sync::OnceLock;

use metrics::{
    Counter, Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

/// The labels of a family's series.
#[derive(Debug, Clone, Copy)]
pub enum Labels {
    /// One series.
    None,
    /// One label whose every value is known: each gets a zero series at start.
    Finite(&'static str, &'static [&'static str]),
    /// Labels with values known only when they happen (HTTP route and status).
    Open,
}

/// A metric family: its name, its type, its help text and its labels.
#[derive(Debug)]
pub struct Family {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
    pub labels: Labels,
}

const fn family(name: &'static str, kind: Kind, help: &'static str) -> Family {
    Family {
        name,
        kind,
        help,
        labels: Labels::None,
    }
}

const CLOSE_CODES: &[&str] = &[
    "1000", "1001", "1003", "1008", "1009", "4001", "4002", "4003", "4004", "4005",
];

const CROSS_NODE_ROUTES: &[&str] = &["seats", "matchmake", "create", "delete"];

const FRAME_ERRORS: &[&str] = &[
    "too_big",
    "malformed",
    "unknown_type",
    "invalid_field",
    "invalid_value",
    "rate_limited",
    "not_allowed",
    "internal",
];

const TICKET_REJECTIONS: &[&str] = &[
    "missing",
    "malformed",
    "forged",
    "expired",
    "reused",
    "wrong_kind",
    "unknown_room",
    "no_seat",
];

/// Every metric family the server exports.
pub const FAMILIES: &[Family] = &[
    family("skirmish_ticks_total", Kind::Counter, "Room ticks run."),
    family(
        "skirmish_late_ticks_total",
        Kind::Counter,
        "Room ticks that started more than a period late (the schedule was re-anchored).",
    ),
    family(
        "skirmish_tick_duration_seconds",
        Kind::Histogram,
        "Time a room tick took: inputs, step, encode, fan-out.",
    ),
    family(
        "skirmish_tick_lateness_seconds",
        Kind::Histogram,
        "How late each room tick started against its drift-free schedule.",
    ),
    family(
        "skirmish_rooms",
        Kind::Gauge,
        "Rooms whose actor is running.",
    ),
    family(
        "skirmish_connected_clients",
        Kind::Gauge,
        "WebSocket sessions connected.",
    ),
    Family {
        name: "skirmish_sessions_closed_total",
        kind: Kind::Counter,
        help: "Sessions closed, by WebSocket close code.",
        labels: Labels::Finite("code", CLOSE_CODES),
    },
    family(
        "skirmish_slow_clients_total",
        Kind::Counter,
        "Sessions closed with 4002 because the client did not keep up.",
    ),
    family(
        "skirmish_frames_in_total",
        Kind::Counter,
        "WebSocket frames received from clients.",
    ),
    family(
        "skirmish_bytes_in_total",
        Kind::Counter,
        "Payload bytes received from clients.",
    ),
    family(
        "skirmish_frames_out_total",
        Kind::Counter,
        "WebSocket frames written to clients.",
    ),
    family(
        "skirmish_bytes_out_total",
        Kind::Counter,
        "Bytes written to clients, WebSocket headers included.",
    ),
    Family {
        name: "skirmish_invalid_frames_total",
        kind: Kind::Counter,
        help: "Client frames refused, by wire error code.",
        labels: Labels::Finite("code", FRAME_ERRORS),
    },
    Family {
        name: "skirmish_rate_limited_total",
        kind: Kind::Counter,
        help: "Client messages dropped by a rate limit, by message kind.",
        labels: Labels::Finite("kind", &["input", "chat"]),
    },
    family(
        "skirmish_tickets_issued_total",
        Kind::Counter,
        "Seat tickets signed.",
    ),
    family(
        "skirmish_tickets_consumed_total",
        Kind::Counter,
        "Seat tickets used to open a WebSocket.",
    ),
    family(
        "skirmish_tickets_expired_total",
        Kind::Counter,
        "Seat reservations released because their ticket expired unused.",
    ),
    Family {
        name: "skirmish_tickets_rejected_total",
        kind: Kind::Counter,
        help: "Tickets and resume tokens refused, by reason.",
        labels: Labels::Finite("reason", TICKET_REJECTIONS),
    },
    Family {
        name: "skirmish_http_requests_total",
        kind: Kind::Counter,
        help: "HTTP requests answered, by route pattern, method and status.",
        labels: Labels::Open,
    },
    Family {
        name: "skirmish_http_request_duration_seconds",
        kind: Kind::Histogram,
        help: "HTTP request latency, by route pattern, method and status.",
        labels: Labels::Open,
    },
    family(
        "skirmish_persistence_queue_depth",
        Kind::Gauge,
        "Rows buffered in the persistence actor, not yet committed.",
    ),
    family(
        "skirmish_persistence_flush_seconds",
        Kind::Histogram,
        "Duration of successful batch writes.",
    ),
    family(
        "skirmish_persistence_rows_written_total",
        Kind::Counter,
        "Rows committed by batch writes.",
    ),
    family(
        "skirmish_persistence_write_errors_total",
        Kind::Counter,
        "Batch writes that failed (the batch is kept and retried).",
    ),
    family(
        "skirmish_persistence_shed_total",
        Kind::Counter,
        "Snapshots dropped because the persistence buffer was full.",
    ),
    family(
        "skirmish_persistence_rejected_total",
        Kind::Counter,
        "Records the database can never store, dropped.",
    ),
    family(
        "skirmish_persistence_pruned_total",
        Kind::Counter,
        "Old snapshots deleted by pruning.",
    ),
    family(
        "skirmish_webhook_events_enqueued_total",
        Kind::Counter,
        "Webhook events committed to the outbox with the change they report.",
    ),
    family(
        "skirmish_webhook_delivered_total",
        Kind::Counter,
        "Webhook events delivered (the receiver answered 2xx).",
    ),
    family(
        "skirmish_webhook_retried_total",
        Kind::Counter,
        "Webhook delivery attempts that failed and were scheduled again.",
    ),
    family(
        "skirmish_webhook_failed_total",
        Kind::Counter,
        "Webhook events given up on after their retry window (webhook_max_age_ms).",
    ),
    family(
        WEBHOOK_DELIVERY_SECONDS,
        Kind::Histogram,
        "Time from a webhook event being recorded to its delivery, retries included.",
    ),
    family(
        "skirmish_webhook_pending_events",
        Kind::Gauge,
        "Webhook events in the outbox not yet delivered nor failed (whole database).",
    ),
    family(
        "skirmish_webhook_oldest_pending_seconds",
        Kind::Gauge,
        "Age of the oldest undelivered webhook event (whole database); 0 when none.",
    ),
    family(
        "skirmish_cluster_nodes_alive",
        Kind::Gauge,
        "Live nodes of the cluster, as this node last saw them (0 on a single node).",
    ),
    family(
        "skirmish_cluster_rooms_owned",
        Kind::Gauge,
        "Open rooms this node owns under its lease.",
    ),
    family(
        "skirmish_cluster_lease_renewals_total",
        Kind::Counter,
        "Heartbeats that renewed this node's lease.",
    ),
    family(
        "skirmish_cluster_leases_lost_total",
        Kind::Counter,
        "Times this node lost its lease (its rooms stopped and moved away).",
    ),
    family(
        "skirmish_cluster_failovers_total",
        Kind::Counter,
        "Rooms of a dead node claimed and restored by this node.",
    ),
    family(
        "skirmish_cluster_handoffs_total",
        Kind::Counter,
        "Rooms released by a draining node claimed and restored by this node.",
    ),
    family(
        "skirmish_cluster_failover_seconds",
        Kind::Histogram,
        "Time a room spent without a live owner before this node restored it (failovers and handoffs).",
    ),
    Family {
        name: "skirmish_cluster_forwarded_requests_total",
        kind: Kind::Counter,
        help: "API calls this node forwarded to the room's owner or to the placed node, by route.",
        labels: Labels::Finite("route", CROSS_NODE_ROUTES),
    },
];

const WEBHOOK_DELIVERY_SECONDS: &str = "skirmish_webhook_delivery_seconds";
const FAILOVER_SECONDS: &str = "skirmish_cluster_failover_seconds";

/// Describes every family and registers its zero series.
fn register_families() {
    for family in FAMILIES {
        let unit = family.name.ends_with("_seconds").then_some(Unit::Seconds);
        match (family.kind, unit) {
            (Kind::Counter, _) => describe_counter!(family.name, family.help),
            (Kind::Gauge, _) => describe_gauge!(family.name, family.help),
            (Kind::Histogram, Some(unit)) => describe_histogram!(family.name, unit, family.help),
            (Kind::Histogram, None) => describe_histogram!(family.name, family.help),
        }
        match (family.labels, family.kind) {
            (Labels::Finite(key, values), Kind::Counter) => {
                for value in values {
                    counter!(family.name, key => *value).absolute(0);
                }
            }
            (Labels::None, Kind::Counter) => counter!(family.name).absolute(0),
            (Labels::None, Kind::Gauge) => gauge!(family.name).set(0.0),
            (Labels::None, Kind::Histogram) => {
                // Registering the handle is enough: the exporter shows an empty histogram.
                let _ = histogram!(family.name);
            }
            (Labels::Finite(..), _) | (Labels::Open, _) => {}
        }
    }
}

/// The Prometheus text, with HELP and TYPE for families that have no sample yet.
pub fn render(handle: &PrometheusHandle) -> String {
    let mut text = handle.render();
    for family in FAMILIES {
        if !text.contains(&format!("# TYPE {} ", family.name)) {
            let _ = write!(
                text,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n",
                name = family.name,
                help = family.help,
                kind = family.kind.as_str()
            );
        }
    }
    text
}

/// Installs the global recorder once per process (tests start several servers in one process).
pub fn install() -> PrometheusHandle {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let seconds = [
                0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ];
            // From a sub-second delivery to the end of the 24 h retry window.
            let delivery = [
                0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 300.0, 1800.0, 7200.0,
                21600.0, 86400.0,
            ];
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds)
                // A full name wins over a suffix.
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(WEBHOOK_DELIVERY_SECONDS.into()),
                        &delivery,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(FAILOVER_SECONDS.into()),
                        &[0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0],
                    )
                })
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (for example by a test harness); then this
            // handle renders nothing but the server still works.
            let _ = metrics::set_global_recorder(recorder);
            register_families();
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

pub fn frames_in(frames: u64, bytes: u64) {
    static FRAMES: OnceLock<Counter> = OnceLock::new();
    static BYTES: OnceLock<Counter> = OnceLock::new();
    hot(&FRAMES, "skirmish_frames_in_total").increment(frames);
    hot(&BYTES, "skirmish_bytes_in_total").increment(bytes);
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

/// Webhook events committed to the outbox (with the change they report).
pub fn webhook_enqueued(n: usize) {
    counter!("skirmish_webhook_events_enqueued_total").increment(n as u64);
}

/// A webhook event was delivered `latency` after it was recorded (retries included).
pub fn webhook_delivered(latency: Duration) {
    counter!("skirmish_webhook_delivered_total").increment(1);
    histogram!(WEBHOOK_DELIVERY_SECONDS).record(latency.as_secs_f64());
}

/// A delivery attempt failed and the event was scheduled again.
pub fn webhook_retried() {
    counter!("skirmish_webhook_retried_total").increment(1);
}

/// A webhook event was given up on after its retry window.
pub fn webhook_failed() {
    counter!("skirmish_webhook_failed_total").increment(1);
}

/// Outbox figures (of the whole database, so every node of a cluster reports the same).
pub fn webhook_outbox(pending: u64, oldest_pending_age: Duration) {
    gauge!("skirmish_webhook_pending_events").set(pending as f64);
    gauge!("skirmish_webhook_oldest_pending_seconds").set(oldest_pending_age.as_secs_f64());
}

/// A heartbeat renewed the lease; the figures it saw.
pub fn lease_renewed(nodes_alive: i64, rooms_owned: usize) {
    counter!("skirmish_cluster_lease_renewals_total").increment(1);
    gauge!("skirmish_cluster_nodes_alive").set(nodes_alive as f64);
    gauge!("skirmish_cluster_rooms_owned").set(rooms_owned as f64);
}

pub fn lease_lost() {
    counter!("skirmish_cluster_leases_lost_total").increment(1);
    gauge!("skirmish_cluster_rooms_owned").set(0.0);
}

/// A room without a live owner was restored here after `orphaned_for`.
pub fn room_taken_over(handoff: bool, orphaned_for: Duration) {
    if handoff {
        counter!("skirmish_cluster_handoffs_total").increment(1);
    } else {
        counter!("skirmish_cluster_failovers_total").increment(1);
    }
    histogram!(FAILOVER_SECONDS).record(orphaned_for.as_secs_f64());
}

pub fn forwarded(route: &'static str) {
    counter!("skirmish_cluster_forwarded_requests_total", "route" => route).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_error_labels_are_the_wire_error_codes() {
        let wire: Vec<&str> = protocol::ErrorCode::ALL
            .iter()
            .map(|c| c.as_str())
            .collect();
        assert_eq!(FRAME_ERRORS, wire.as_slice());
    }

    #[test]
    fn family_names_are_unique_and_prometheus_valid() {
        let mut names: Vec<&str> = FAMILIES.iter().map(|f| f.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FAMILIES.len());
        for family in FAMILIES {
            assert!(
                family
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_')
            );
            assert_eq!(
                family.name.ends_with("_total"),
                family.kind == Kind::Counter,
                "{}",
                family.name
            );
        }
    }
}
