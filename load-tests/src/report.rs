//! The end of a run: the figures of the measured window, the thresholds, the summary table (stdout)
//! and the JSON report.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use crate::cli::Args;
use crate::procfs::CpuSample;
use crate::prom;
use crate::stats::{Counters, Stats};

/// What was read at one edge of the measured window.
pub struct Edge {
    pub at: std::time::Instant,
    pub counters: Counters,
    pub live: u64,
    pub own_cpu: Option<CpuSample>,
    pub server_cpu: Option<CpuSample>,
    pub server_rss_kib: Option<u64>,
    pub metrics: Option<String>,
}

/// Percentiles of a histogram of microseconds, in milliseconds.
fn percentiles(h: &Histogram<u64>) -> Value {
    let ms = |us: u64| (us as f64 / 1000.0 * 1000.0).round() / 1000.0;
    if h.is_empty() {
        return json!({ "count": 0 });
    }
    json!({
        "count": h.len(),
        "p50": ms(h.value_at_quantile(0.50)),
        "p90": ms(h.value_at_quantile(0.90)),
        "p99": ms(h.value_at_quantile(0.99)),
        "p99_9": ms(h.value_at_quantile(0.999)),
        "max": ms(h.max()),
        "mean": (h.mean() / 1000.0 * 1000.0).round() / 1000.0,
    })
}

fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

/// Builds the JSON report and the list of missed thresholds.
pub fn build(args: &Args, stats: &Stats, w0: &Edge, w1: &Edge) -> (Value, Vec<String>) {
    let window_s = w1
        .at
        .saturating_duration_since(w0.at)
        .as_secs_f64()
        .max(1e-9);
    let d = w1.counters.since(&w0.counters);
    let clients = w1.live;
    let per_s = |n: u64| round(n as f64 / window_s, 1);
    let per_bot_s = |n: u64| {
        if clients == 0 {
            0.0
        } else {
            round(n as f64 / window_s / clients as f64, 2)
        }
    };

    let own = match (w0.own_cpu, w1.own_cpu) {
        (Some(a), Some(b)) => {
            let (cpu, wall) = b.since(&a);
            json!({ "cpu_pct": round(cpu / wall * 100.0, 1), "rss_kib": crate::procfs::rss_kib(None) })
        }
        _ => Value::Null,
    };
    let server = match (args.server_pid, w0.server_cpu, w1.server_cpu) {
        (Some(pid), Some(a), Some(b)) => {
            let (cpu, wall) = b.since(&a);
            let per_client = if clients == 0 {
                Value::Null
            } else {
                json!(round(cpu / (clients as f64 * wall) * 1e6, 1))
            };
            json!({
                "pid": pid,
                "cpu_s": round(cpu, 3),
                "cpu_pct": round(cpu / wall * 100.0, 1),
                "cpu_us_per_client_s": per_client,
                "rss_kib_start": w0.server_rss_kib,
                "rss_kib_end": w1.server_rss_kib,
            })
        }
        _ => Value::Null,
    };
    let ticks = match (&w0.metrics, &w1.metrics) {
        (Some(a), Some(b)) => tick_figures(a, b),
        _ => Value::Null,
    };

    let mut failures = Vec::new();
    let p99_ms = (!stats.ack.is_empty()).then(|| stats.ack.value_at_quantile(0.99) as f64 / 1000.0);
    if let Some(limit) = args.max_p99_ms {
        match p99_ms {
            Some(p99) if p99 > limit => {
                failures.push(format!("p99 ack latency {p99:.1} ms > {limit} ms"));
            }
            None => failures.push("no input was acked in the window".into()),
            Some(_) => {}
        }
    }
    let errors = stats.errors.total();
    if let Some(limit) = args.max_errors
        && errors > limit
    {
        failures.push(format!("{errors} errors > {limit}"));
    }
    if let Some(min) = args.min_connected
        && clients < u64::from(min)
    {
        failures.push(format!("{clients} bots connected at the end < {min}"));
    }

    let e = &stats.errors;
    let report = json!({
        "config": {
            "url": args.url,
            "bots": args.bots,
            "mode": args.mode,
            "room_size": args.room_size,
            "join": if args.creates_rooms() { "rooms" } else { "matchmake" },
            "input_rate": args.input_rate,
            "ramp_s": args.ramp.as_secs_f64(),
            "duration_s": args.duration.as_secs_f64(),
            "mix": args.mix.describe(),
        },
        "window_s": round(window_s, 3),
        "bots": {
            "requested": args.bots,
            "started": stats.started,
            "joined": stats.joined,
            "connected": stats.connected,
            "live_at_start": w0.live,
            "live_at_end": w1.live,
        },
        "ack_latency_ms": percentiles(&stats.ack),
        "connect_ms": percentiles(&stats.connect),
        "join_ms": percentiles(&stats.join),
        "bot_input_lag_ms": percentiles(&stats.input_lag),
        "rates": {
            "states_per_s": per_s(d.states),
            "states_per_bot_s": per_bot_s(d.states),
            "frames_in_per_s": per_s(d.frames_in),
            "bytes_in_per_s": per_s(d.bytes_in),
            "inputs_per_s": per_s(d.inputs_sent),
            "acks_per_s": per_s(d.acks),
        },
        "window_totals": {
            "states": d.states,
            "frames_in": d.frames_in,
            "bytes_in": d.bytes_in,
            "inputs_sent": d.inputs_sent,
            "chaos_frames_sent": d.chaos_sent,
            "error_messages": d.error_msgs,
        },
        "unacked_inputs": stats.unacked,
        "disconnects": stats.disconnects,
        "match_over_closes": stats.match_over,
        "errors": {
            "total": errors,
            "join": e.join,
            "connect": e.connect,
            "decode": e.decode,
            "error_replies": e.error_replies,
            "disconnects": e.disconnects,
            "samples": e.samples,
        },
        "bot_process": own,
        "server_process": server,
        "server_ticks": ticks,
        "thresholds": {
            "max_p99_ms": args.max_p99_ms,
            "max_errors": args.max_errors,
            "min_connected": args.min_connected,
            "passed": failures.is_empty(),
            "failures": failures,
        },
    });
    (report, failures)
}

/// Tick lateness over the window, from two scrapes of `/metrics`: the first histogram whose name has
/// `tick_lateness` (or `lateness`) in it, and a `late_ticks` counter if there is one.
fn tick_figures(before: &str, after: &str) -> Value {
    let mut out = serde_json::Map::new();
    let name = prom::find_histogram(after, "tick_lateness")
        .or_else(|| prom::find_histogram(after, "lateness"));
    if let Some(name) = name
        && let (Some(h0), Some(h1)) = (
            prom::Hist::read(before, &name),
            prom::Hist::read(after, &name),
        )
    {
        let d = h1.since(&h0);
        let ms = |v: Option<f64>| v.map(|s| round(s * 1000.0, 3));
        out.insert("lateness_metric".into(), json!(name));
        out.insert("ticks".into(), json!(d.count()));
        out.insert("lateness_p50_ms".into(), json!(ms(d.quantile(0.5))));
        out.insert("lateness_p99_ms".into(), json!(ms(d.quantile(0.99))));
        out.insert("lateness_max_bucket_ms".into(), json!(ms(d.quantile(1.0))));
        out.insert("late_over_5ms".into(), json!(d.above(0.005)));
    }
    if let Some(name) = prom::find_counter(after, "late_tick") {
        let a = prom::sum(before, &name).unwrap_or(0.0);
        let b = prom::sum(after, &name).unwrap_or(0.0);
        out.insert("late_ticks_metric".into(), json!(name));
        out.insert("late_ticks".into(), json!(b - a));
    }
    Value::Object(out)
}

fn ms_cell(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_f64)
        .map_or_else(|| "-".into(), |ms| format!("{ms:.1} ms"))
}

/// The summary table, as printed at the end of a run.
pub fn table(r: &Value) -> String {
    let mut t = String::new();
    let c = &r["config"];
    let _ = writeln!(
        t,
        "\nskirmish-bots: {} bots ({}) against {}, rooms of {} via {}, {} inputs/s, ramp {}s, window {}s",
        c["bots"],
        c["mix"].as_str().unwrap_or(""),
        c["url"].as_str().unwrap_or(""),
        c["room_size"],
        c["join"].as_str().unwrap_or(""),
        c["input_rate"],
        c["ramp_s"],
        r["window_s"]
    );
    let b = &r["bots"];
    let _ = writeln!(
        t,
        "bots          requested {}  joined {}  connected {}  live at window start {}  at end {}",
        b["requested"], b["joined"], b["connected"], b["live_at_start"], b["live_at_end"]
    );
    let _ = writeln!(
        t,
        "{:<14}{:>10}{:>10}{:>10}{:>10}{:>10}{:>11}",
        "", "p50", "p90", "p99", "p99.9", "max", "count"
    );
    for (label, key) in [
        ("input ack", "ack_latency_ms"),
        ("ws connect", "connect_ms"),
        ("seat (HTTP)", "join_ms"),
        ("bot timer lag", "bot_input_lag_ms"),
    ] {
        let h = &r[key];
        let _ = writeln!(
            t,
            "{label:<14}{:>10}{:>10}{:>10}{:>10}{:>10}{:>11}",
            ms_cell(h, "p50"),
            ms_cell(h, "p90"),
            ms_cell(h, "p99"),
            ms_cell(h, "p99_9"),
            ms_cell(h, "max"),
            h["count"].to_string()
        );
    }
    let rt = &r["rates"];
    let _ = writeln!(
        t,
        "rates         states {}/s ({} per bot/s)  in {:.1} KB/s  inputs {}/s  acks {}/s  unacked {}",
        rt["states_per_s"],
        rt["states_per_bot_s"],
        rt["bytes_in_per_s"].as_f64().unwrap_or(0.0) / 1000.0,
        rt["inputs_per_s"],
        rt["acks_per_s"],
        r["unacked_inputs"]
    );
    let disconnects = match r["disconnects"].as_object() {
        Some(m) if !m.is_empty() => m
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", "),
        _ => "none".into(),
    };
    let _ = writeln!(t, "disconnects   {disconnects}");
    let e = &r["errors"];
    let _ = writeln!(
        t,
        "errors        {} (join {}, connect {}, decode {}, error replies {}, disconnects {})",
        e["total"], e["join"], e["connect"], e["decode"], e["error_replies"], e["disconnects"]
    );
    if let Some(samples) = e["samples"].as_array() {
        for s in samples.iter().take(5) {
            let _ = writeln!(t, "              {}", s.as_str().unwrap_or(""));
        }
    }
    let own = &r["bot_process"];
    if !own.is_null() {
        let _ = writeln!(
            t,
            "bot process   cpu {}%  rss {} KiB",
            own["cpu_pct"], own["rss_kib"]
        );
    }
    let s = &r["server_process"];
    if !s.is_null() {
        let _ = writeln!(
            t,
            "server        cpu {}%  {} µs per client-second  rss {} KiB at the end",
            s["cpu_pct"], s["cpu_us_per_client_s"], s["rss_kib_end"]
        );
    }
    let k = &r["server_ticks"];
    if let Some(obj) = k.as_object()
        && !obj.is_empty()
    {
        let _ = writeln!(
            t,
            "server ticks  lateness p50 {} ms  p99 {} ms  over 5 ms {} of {}  late ticks {}",
            k["lateness_p50_ms"],
            k["lateness_p99_ms"],
            k["late_over_5ms"],
            k["ticks"],
            k["late_ticks"]
        );
    }
    let th = &r["thresholds"];
    let verdict = match th["failures"].as_array() {
        Some(f) if !f.is_empty() => format!(
            "MISSED: {}",
            f.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("; ")
        ),
        _ => "ok".into(),
    };
    let _ = writeln!(t, "thresholds    {verdict}");
    t
}

/// Prints to stdout: the one place where this binary writes there.
#[allow(clippy::print_stdout)]
pub fn print(text: &str) {
    print!("{text}");
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use clap::Parser;
    use std::time::{Duration, Instant};

    fn edge(at: Instant, states: u64, live: u64) -> Edge {
        Edge {
            at,
            counters: Counters {
                states,
                ..Counters::default()
            },
            live,
            own_cpu: None,
            server_cpu: None,
            server_rss_kib: None,
            metrics: None,
        }
    }

    #[test]
    fn thresholds_and_rates() {
        let args = Args::try_parse_from([
            "b",
            "--api-key",
            "k",
            "--bots",
            "10",
            "--max-p99-ms",
            "60",
            "--max-errors",
            "0",
        ])
        .unwrap();
        let mut stats = Stats::new();
        for ms in 1..=100u64 {
            stats.ack.saturating_record(ms * 1000);
        }
        let t0 = Instant::now();
        let (r, failures) = build(
            &args,
            &stats,
            &edge(t0, 0, 10),
            &edge(t0 + Duration::from_secs(10), 2000, 10),
        );
        assert_eq!(r["rates"]["states_per_bot_s"], json!(20.0));
        let p50 = r["ack_latency_ms"]["p50"].as_f64().unwrap();
        assert!((50.0..50.1).contains(&p50), "{p50}");
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert!(
            failures[0].starts_with("p99 ack latency 99"),
            "{failures:?}"
        );
        assert_eq!(r["thresholds"]["passed"], json!(false));

        stats.disconnected("4002".into());
        let (r, failures) = build(
            &args,
            &stats,
            &edge(t0, 0, 10),
            &edge(t0 + Duration::from_secs(10), 0, 10),
        );
        assert_eq!(failures.len(), 2);
        assert_eq!(r["disconnects"]["4002"], json!(1));
        let text = table(&r);
        assert!(
            text.contains("4002: 1") && text.contains("MISSED"),
            "{text}"
        );
    }

    #[test]
    fn no_thresholds_no_failures() {
        let args = Args::try_parse_from(["b", "--api-key", "k"]).unwrap();
        let stats = Stats::new();
        let t0 = Instant::now();
        let (r, failures) = build(&args, &stats, &edge(t0, 0, 0), &edge(t0, 0, 0));
        assert!(failures.is_empty());
        assert!(table(&r).contains("thresholds    ok"));
    }
}
