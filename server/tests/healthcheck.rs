//! `skirmish healthcheck` against the real binary: 0 once a server on SQLite (in a temporary
//! directory) answers, 1 with a reason on stderr when nothing listens, 2 on a usage error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const API_KEY: &str = "healthcheck-test-key-0123456789";

/// A free local port: bind port 0, read it, let it go.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The binary with a clean configuration: run in `dir` (no `skirmish.toml`), on SQLite there.
fn skirmish(dir: &Path, listen: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_skirmish"));
    command
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env("SKIRMISH_LISTEN", listen)
        .env("SKIRMISH_DATABASE_URL", "sqlite://skirmish.db?mode=rwc")
        .env("SKIRMISH_API_KEY", API_KEY)
        .env("SKIRMISH_LOG", "warn")
        .stdin(Stdio::null());
    command
}

fn healthcheck(dir: &Path, listen: &str) -> Output {
    skirmish(dir, listen)
        .arg("healthcheck")
        .output()
        .expect("run skirmish healthcheck")
}

/// Kills the server if the test ends without stopping it.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn healthy_once_the_server_answers() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut server = Server(
        skirmish(dir.path(), &listen)
            .spawn()
            .expect("start the skirmish binary"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            panic!("skirmish exited during start: {status}");
        }
        let output = healthcheck(dir.path(), &listen);
        if output.status.success() {
            assert!(output.stderr.is_empty(), "a healthy probe prints nothing");
            break;
        }
        assert_eq!(output.status.code(), Some(1), "{output:?}");
        assert!(
            Instant::now() < deadline,
            "skirmish did not become healthy: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // A server listening on every address is probed on the loopback address.
    let output = healthcheck(dir.path(), &format!("0.0.0.0:{port}"));
    assert!(output.status.success(), "{output:?}");
}

#[test]
fn unhealthy_when_nothing_listens() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let started = Instant::now();
    let output = healthcheck(dir.path(), &format!("127.0.0.1:{port}"));
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unhealthy") && stderr.contains(&port.to_string()),
        "the reason names the address: {stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn unhealthy_on_an_invalid_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let output = skirmish(dir.path(), "127.0.0.1:1")
        .env("SKIRMISH_API_KEY", "short")
        .arg("healthcheck")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("api_key"));
}

#[test]
fn other_arguments_are_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&["serve"][..], &["healthcheck", "now"], &["--help"]] {
        let output = skirmish(dir.path(), "127.0.0.1:1")
            .args(args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
        assert!(String::from_utf8_lossy(&output.stderr).contains("usage: skirmish"));
    }
}
