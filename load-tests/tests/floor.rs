//! `skirmish-bots floor` end to end: the real binary, its own clients' process, loopback only.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use serde_json::Value;

fn floor(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_skirmish-bots"))
        .arg("floor")
        .args(args)
        .output()
        .expect("skirmish-bots runs")
}

#[test]
fn every_client_gets_every_state_and_the_server_reports_its_cost() {
    // Unpinned, so it runs on any machine; 40 ticks of 20 Hz.
    let out = floor(&[
        "--clients",
        "50",
        "--duration",
        "2s",
        "--state-bytes",
        "400",
        "--no-pin",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "floor failed: {stderr}");
    let line = String::from_utf8(out.stdout).unwrap();
    assert_eq!(line.lines().count(), 1, "one JSON line: {line}");
    let report: Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(report["clients"], 50);
    assert_eq!(report["state_bytes"], 400);
    assert_eq!(report["ticks"], 40);
    assert_eq!(report["socket_errors"], 0);
    // Every state written whole reached its client before the server closed.
    assert_eq!(report["states_written"], 50 * 40);
    assert_eq!(report["states_received"], report["states_written"]);
    // The clients wrote one input per tick each; the server read them as they came (the bounds
    // leave room for a busy machine delaying the clients' process by up to half the run).
    let inputs = report["inputs"].as_u64().unwrap();
    assert!(
        (50 * 20..=50 * 45).contains(&inputs),
        "about one input per client per tick: {inputs}"
    );
    assert!(report["secs"].as_f64().unwrap() >= 2.0);
    assert!(report["server_cpu_us_per_client_s"].as_f64().unwrap() >= 0.0);
}

#[test]
fn bad_options_are_refused_with_a_message() {
    for bad in [&["--clients", "0"][..], &["--duration", "0s"], &["--bogus"]] {
        let out = floor(bad);
        assert!(!out.status.success(), "{bad:?} was accepted");
        assert!(!out.stderr.is_empty(), "{bad:?}: no message");
    }
}
