//! `skirmish-bots`: bot clients that matchmake over HTTP, play over WebSockets, and report input-ack
//! latency, connect times, throughput, disconnects and errors.
//!
//! The whole run is one thread: a tokio current-thread runtime with a `LocalSet`, one task per bot.
//! Bots join evenly over `--ramp`; the figures are those of the `--duration` window that follows.
//!
//! `skirmish-bots floor ...` measures the machine's floor instead (floor.rs): no server, no bots.

mod bot;
mod cli;
mod floor;
mod latency;
mod procfs;
mod prom;
mod report;
mod stats;
mod wire;
mod ws;

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::net::IpAddr;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::time::{Instant, sleep, sleep_until, timeout};

use crate::bot::Shared;
use crate::cli::Args;
use crate::procfs::CpuSample;
use crate::report::Edge;
use crate::stats::Stats;

/// After the window, bots get this long to finish their close handshakes before the report.
const WIND_DOWN: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    // The floor is a command of its own with its own options; the bots' options stay at the top level.
    let mut argv = std::env::args_os().skip(1).peekable();
    if argv.next_if(|a| a == "floor").is_some() {
        return match floor::main(argv) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("skirmish-bots floor: {e:#}");
                ExitCode::from(1)
            }
        };
    }
    let args = Args::parse();
    match run_main(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(2),
        Err(e) => {
            eprintln!("skirmish-bots: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run_main(args: Args) -> anyhow::Result<bool> {
    check_loopback(&args.url, args.allow_remote).map_err(|e| anyhow::anyhow!("--url: {e}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, run(args))
}

/// Refuses a URL whose host is not a loopback address, unless remote targets are allowed.
pub fn check_loopback(url: &str, allow_remote: bool) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    let host = parsed.host_str().ok_or("the URL has no host")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if loopback || allow_remote {
        Ok(())
    } else {
        Err(format!(
            "{host} is not a loopback address; pass --allow-remote to load-test another machine"
        ))
    }
}

async fn run(args: Args) -> anyhow::Result<bool> {
    let base = args.url.trim_end_matches('/').to_owned();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .pool_max_idle_per_host(64)
        .build()
        .context("building the HTTP client")?;
    let health = http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .with_context(|| format!("{base}/healthz: is the server running?"))?;
    ensure!(
        health.status().is_success(),
        "{base}/healthz answered {}",
        health.status()
    );

    // Each bot holds one socket (and briefly an HTTP one): say so before thousands of connects fail.
    if let Some(limit) = procfs::open_files_limit()
        && limit < u64::from(args.bots) + 100
    {
        eprintln!(
            "skirmish-bots: warning: the open-file limit is {limit}, too low for {} bots; raise it (ulimit -n)",
            args.bots
        );
    }
    let seed = run_seed();
    let n = args.bots;
    let t0 = Instant::now() + Duration::from_millis(50);
    let window_start = t0 + args.ramp;
    let window_end = window_start + args.duration;
    let shared = Rc::new(Shared {
        args: args.clone(),
        http: http.clone(),
        base: base.clone(),
        run_id: format!("{:08x}", seed as u32),
        seed,
        stats: RefCell::new(Stats::new()),
        rooms: RefCell::new(HashMap::new()),
        window_end,
    });

    let behaviours = args.mix.assign(n as usize);
    let mut bots = Vec::with_capacity(behaviours.len());
    for (i, behaviour) in behaviours.into_iter().enumerate() {
        let start = t0 + args.ramp.mul_f64(i as f64 / f64::from(n));
        bots.push(tokio::task::spawn_local(bot::run(
            shared.clone(),
            i as u32,
            behaviour,
            start,
        )));
    }
    let progress = tokio::task::spawn_local(progress(shared.clone(), t0, window_start));

    sleep_until(window_start).await;
    let w0 = edge(&shared, &http, &base).await;
    shared.stats.borrow_mut().measuring = true;
    sleep_until(window_end).await;
    shared.stats.borrow_mut().measuring = false;
    let w1 = edge(&shared, &http, &base).await;

    let _ = timeout(WIND_DOWN, async {
        for b in bots {
            let _ = b.await;
        }
    })
    .await;
    progress.abort();
    let _ = progress.await;

    let (report, failures) = report::build(&args, &shared.stats.borrow(), &w0, &w1);
    let json = serde_json::to_string_pretty(&report).context("encoding the report")?;
    match &args.json {
        Some(path) if path.as_os_str() == "-" => report::print(&format!("{json}\n")),
        Some(path) => {
            std::fs::write(path, json + "\n")
                .with_context(|| format!("writing {}", path.display()))?;
            report::print(&report::table(&report));
        }
        None => report::print(&report::table(&report)),
    }
    if shared.stats.borrow().connected == 0 {
        bail!(
            "no bot connected; first errors: {:?}",
            shared.stats.borrow().errors.samples
        );
    }
    Ok(failures.is_empty())
}

/// Reads everything the report compares across the window.
async fn edge(shared: &Shared, http: &reqwest::Client, base: &str) -> Edge {
    let (counters, live) = {
        let s = shared.stats.borrow();
        (s.counters, s.live)
    };
    let at = std::time::Instant::now();
    let own_cpu = CpuSample::take(None);
    let server_cpu = shared
        .args
        .server_pid
        .and_then(|p| CpuSample::take(Some(p)));
    let server_rss_kib = shared
        .args
        .server_pid
        .and_then(|p| procfs::rss_kib(Some(p)));
    let metrics = if shared.args.scrape_metrics {
        match http.get(format!("{base}/metrics")).send().await {
            Ok(r) if r.status().is_success() => r.text().await.ok(),
            _ => None,
        }
    } else {
        None
    };
    Edge {
        at,
        counters,
        live,
        own_cpu,
        server_cpu,
        server_rss_kib,
        metrics,
    }
}

/// A live progress line: an indicatif spinner on a terminal, a plain line every 5 s otherwise.
async fn progress(shared: Rc<Shared>, t0: Instant, window_start: Instant) {
    if shared.args.quiet {
        return;
    }
    let tty = std::io::stderr().is_terminal();
    let bar = tty.then(|| {
        let bar = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}") {
            bar.set_style(style);
        }
        bar
    });
    let every = if tty {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(5)
    };
    let total = (shared.window_end - t0).as_secs_f64();
    let mut last = (Instant::now(), shared.stats.borrow().counters);
    loop {
        sleep(every).await;
        let now = Instant::now();
        let line = {
            let s = shared.stats.borrow();
            let dt = (now - last.0).as_secs_f64().max(1e-6);
            let d = s.counters.since(&last.1);
            last = (now, s.counters);
            let phase = if now < window_start {
                "ramp"
            } else {
                "measure"
            };
            let latency = if s.ack.is_empty() {
                String::new()
            } else {
                format!(
                    " | ack p50 {:.1} ms p99 {:.1} ms",
                    s.ack.value_at_quantile(0.5) as f64 / 1000.0,
                    s.ack.value_at_quantile(0.99) as f64 / 1000.0
                )
            };
            format!(
                "{phase} {:.0}/{total:.0}s | live {}/{} | {:.0} states/s | {:.0} KB/s in | {:.0} inputs/s{latency} | errors {}",
                (now - t0).as_secs_f64(),
                s.live,
                shared.args.bots,
                d.states as f64 / dt,
                d.bytes_in as f64 / dt / 1000.0,
                d.inputs_sent as f64 / dt,
                s.errors.total()
            )
        };
        match &bar {
            Some(bar) => {
                bar.set_message(line);
                bar.tick();
            }
            None => eprintln!("{line}"),
        }
        if now >= shared.window_end + WIND_DOWN {
            break;
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}

/// A seed that differs between runs (and so do the bots' player ids).
fn run_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_by_default() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "ws://127.0.0.1:8080/v1/ws?ticket=abc",
            "http://[::1]:80",
            "http://127.8.9.10",
        ] {
            assert!(check_loopback(ok, false).is_ok(), "{ok}");
        }
        for bad in [
            "http://10.0.0.1:8080",
            "ws://example.com/v1/ws",
            "not a url",
        ] {
            assert!(check_loopback(bad, false).is_err(), "{bad}");
        }
        assert!(check_loopback("http://10.0.0.1:8080", true).is_ok());
    }
}
