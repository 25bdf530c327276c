//! `skirmish-bots floor`: what this machine's kernel alone costs a 20 Hz game server, the yardstick
//! of the CCU benchmark (`load-tests/ccu.sh`, BENCHMARKS.md).
//!
//! Per client per tick the server does one plain non-blocking `read` (draining the input frames that
//! came in) and one `write` of a state frame, over loopback TCP with `TCP_NODELAY`: no WebSocket
//! framing, no epoll, no allocation, no game. Nothing a real server does can cost less, so its CPU
//! per client-second divided by this one is the server's overhead. Absolute figures differ a lot
//! between machines; compare only with a floor measured in the same run.
//!
//! This process is the server, pinned to `--server-core`. It starts itself again as the clients (the
//! hidden `--clients-of ADDR`), pinned to `--client-core`: each client sleeps in epoll and wakes when a
//! state arrives, as real clients and the bots do, because waking a sleeping reader is a cost that
//! loopback puts on the sender's core. Clients write one input frame per tick each. The server walks
//! every socket once per tick, in one pass: that is what makes it a floor and not an event-driven
//! server. Only the server's CPU over the measured ticks is counted (from /proc/self/stat).

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use clap::Parser;
use serde::{Deserialize, Serialize};

use crate::cli::parse_positive_duration;
use crate::procfs;

/// Bytes of one client input: about a WebSocket frame of our `input` message (6-byte masked header,
/// MessagePack body).
pub const INPUT_BYTES: usize = 24;

/// How long the clients get to connect, and the server to accept them.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

/// After the measured ticks the server closes every socket; the clients must have seen that and
/// reported within this long.
const CLIENTS_EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// One read drains everything a client sent since the last tick (a few inputs at most).
const READ_BUF_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "floor",
    bin_name = "skirmish-bots floor",
    about = "Measure this machine's floor for a 20 Hz game server: per client per tick one plain read of an \
input frame and one write of a state frame on loopback, nothing else. Prints one JSON line.",
    after_help = "Compare a server's CPU per client-second (skirmish-bots --server-pid) with \
server_cpu_us_per_client_s measured in the same run; load-tests/ccu.sh does both."
)]
pub struct FloorArgs {
    /// Number of clients (one loopback TCP connection each).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub clients: u32,

    /// Bytes of the state frame written to each client each tick.
    #[arg(long, default_value_t = 350, value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub state_bytes: u32,

    /// Ticks per second.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub tick_rate: u32,

    /// Measured time (e.g. 20s, 1m).
    #[arg(long, default_value = "20s", value_parser = parse_positive_duration)]
    pub duration: Duration,

    /// CPU core of the server loop (this process).
    #[arg(long, default_value_t = 0)]
    pub server_core: usize,

    /// CPU core of the clients (a second process).
    #[arg(long, default_value_t = 1)]
    pub client_core: usize,

    /// Do not pin the server and the clients to cores.
    #[arg(long)]
    pub no_pin: bool,

    /// Internal: be the clients of the floor server at this address.
    #[arg(long, hide = true)]
    pub clients_of: Option<SocketAddr>,
}

/// The server's figures: one JSON line on stdout.
#[derive(Debug, Serialize)]
pub struct FloorReport {
    pub clients: u32,
    pub state_bytes: u32,
    pub tick_rate: u32,
    /// Wall seconds of the measured ticks.
    pub secs: f64,
    /// Server CPU seconds / (clients × wall seconds) × 1e6: the figure to compare.
    pub server_cpu_us_per_client_s: f64,
    /// Server CPU as a percentage of one core.
    pub server_cpu_pct: f64,
    pub ticks: u64,
    /// Ticks whose pass ended after the next one was due.
    pub late_ticks: u64,
    /// Input frames the server read.
    pub inputs: u64,
    /// State frames written whole; `short_writes` were cut by a full socket buffer.
    pub states_written: u64,
    pub short_writes: u64,
    pub socket_errors: u64,
    /// State frames the clients received (bytes / state size), a check that the load was there.
    pub states_received: u64,
}

/// What the clients' process reports to the server's on its stdout.
#[derive(Debug, Serialize, Deserialize)]
struct ClientsReport {
    bytes_in: u64,
    inputs_sent: u64,
    closed_by_server: u32,
}

/// `skirmish-bots floor ...`: parses `args` (without the program name) and runs either side.
pub fn main(args: impl IntoIterator<Item = std::ffi::OsString>) -> anyhow::Result<()> {
    let args = FloorArgs::parse_from(std::iter::once("floor".into()).chain(args));
    raise_open_files_limit(u64::from(args.clients) + 64)?;
    match args.clients_of {
        Some(addr) => {
            pin(&args, args.client_core)?;
            let report = run_clients(&args, addr)?;
            let line = serde_json::to_string(&report).context("encoding the clients' report")?;
            crate::report::print(&format!("{line}\n"));
        }
        None => {
            pin(&args, args.server_core)?;
            let report = run_server(&args)?;
            let line = serde_json::to_string(&report).context("encoding the report")?;
            crate::report::print(&format!("{line}\n"));
        }
    }
    Ok(())
}

fn pin(args: &FloorArgs, core: usize) -> anyhow::Result<()> {
    if args.no_pin {
        return Ok(());
    }
    ensure!(
        core < rustix::thread::CpuSet::MAX_CPU,
        "core {core} is out of range"
    );
    let mut set = rustix::thread::CpuSet::new();
    set.set(core);
    // The process is single-threaded at this point, so pinning this thread pins the process (and the
    // clients' process, started later, sets its own core).
    rustix::thread::sched_setaffinity(None, &set)
        .with_context(|| format!("pinning to core {core} (see nproc; --no-pin runs unpinned)"))
}

/// Each side holds one socket per client: raise the soft open-file limit as far as the hard one.
fn raise_open_files_limit(needed: u64) -> anyhow::Result<()> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_none_or(|soft| soft >= needed) {
        return Ok(());
    }
    let raised = Rlimit {
        current: limit.maximum.map(|hard| hard.min(needed.max(65_536))),
        maximum: limit.maximum,
    };
    // Failing to raise it is only fatal if the limit is too low, checked just below.
    let _ = setrlimit(Resource::Nofile, raised);
    let now = getrlimit(Resource::Nofile).current;
    ensure!(
        now.is_none_or(|soft| soft >= needed),
        "the open-file limit is {now:?} and the hard limit {:?}, too low for {needed} sockets",
        limit.maximum
    );
    Ok(())
}

fn run_server(args: &FloorArgs) -> anyhow::Result<FloorReport> {
    let n = args.clients as usize;
    let listener = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let mut clients = spawn_clients(args, addr)?;
    let mut sockets = match accept_all(&listener, n, &mut clients) {
        Ok(sockets) => sockets,
        Err(e) => {
            let _ = clients.kill();
            let _ = clients.wait();
            return Err(e);
        }
    };
    drop(listener);

    let frame = vec![7u8; args.state_bytes as usize];
    let mut buf = vec![0u8; READ_BUF_BYTES];
    let period = Duration::from_secs(1) / args.tick_rate;
    let ticks = ((args.duration.as_secs_f64() * f64::from(args.tick_rate)).round() as u64).max(1);
    let mut report = FloorReport {
        clients: args.clients,
        state_bytes: args.state_bytes,
        tick_rate: args.tick_rate,
        secs: 0.0,
        server_cpu_us_per_client_s: 0.0,
        server_cpu_pct: 0.0,
        ticks,
        late_ticks: 0,
        inputs: 0,
        states_written: 0,
        short_writes: 0,
        socket_errors: 0,
        states_received: 0,
    };
    let mut bytes_in = 0u64;
    let cpu0 = procfs::cpu_seconds(None).context("reading /proc/self/stat")?;
    let start = Instant::now();
    for tick in 1..=ticks {
        for socket in &mut sockets {
            match drain(socket, &mut buf) {
                Ok(k) => bytes_in += k as u64,
                Err(_) => report.socket_errors += 1,
            }
            match socket.write(&frame) {
                Ok(k) if k == frame.len() => report.states_written += 1,
                Ok(_) => report.short_writes += 1,
                Err(e) if e.kind() == ErrorKind::WouldBlock => report.short_writes += 1,
                Err(_) => report.socket_errors += 1,
            }
        }
        // Tick n is due at start + n periods, whatever the previous ones cost: no drift.
        let due = start + period * u32::try_from(tick).unwrap_or(u32::MAX);
        let now = Instant::now();
        if now > due {
            report.late_ticks += 1;
        } else {
            std::thread::sleep(due - now);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = procfs::cpu_seconds(None).context("reading /proc/self/stat")? - cpu0;
    report.secs = (secs * 100.0).round() / 100.0;
    report.server_cpu_us_per_client_s = round1(cpu / (n as f64 * secs) * 1e6);
    report.server_cpu_pct = round1(cpu / secs * 100.0);
    report.inputs = bytes_in / INPUT_BYTES as u64;

    // Closing the sockets ends the clients.
    drop(sockets);
    let clients_report = wait_for_clients(clients)?;
    report.states_received = clients_report.bytes_in / u64::from(args.state_bytes);
    ensure!(
        clients_report.closed_by_server == args.clients,
        "only {} of {} clients saw the server close",
        clients_report.closed_by_server,
        args.clients
    );
    Ok(report)
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Reads until the socket has nothing more; returns the bytes read.
fn drain(socket: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut total = 0;
    loop {
        match socket.read(buf) {
            Ok(0) => return Ok(total),
            Ok(k) => total += k,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(total),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn spawn_clients(args: &FloorArgs, addr: SocketAddr) -> anyhow::Result<Child> {
    let exe = std::env::current_exe().context("finding this program to start the clients")?;
    let mut command = Command::new(exe);
    command
        .arg("floor")
        .args(["--clients", &args.clients.to_string()])
        .args(["--tick-rate", &args.tick_rate.to_string()])
        .args(["--duration", &format!("{}s", args.duration.as_secs_f64())])
        .args(["--client-core", &args.client_core.to_string()])
        .args(["--clients-of", &addr.to_string()]);
    if args.no_pin {
        command.arg("--no-pin");
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting the clients' process")
}

fn accept_all(
    listener: &TcpListener,
    n: usize,
    clients: &mut Child,
) -> anyhow::Result<Vec<TcpStream>> {
    listener
        .set_nonblocking(true)
        .context("making the listener non-blocking")?;
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    let mut sockets = Vec::with_capacity(n);
    while sockets.len() < n {
        match listener.accept() {
            Ok((socket, _)) => {
                socket.set_nonblocking(true).context("set_nonblocking")?;
                socket.set_nodelay(true).context("set_nodelay")?;
                sockets.push(socket);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if let Some(status) = clients.try_wait().context("checking on the clients")? {
                    bail!(
                        "the clients' process ended ({status}) after {} connections",
                        sockets.len()
                    );
                }
                ensure!(
                    Instant::now() < deadline,
                    "only {} of {n} clients connected within {CONNECT_TIMEOUT:?}",
                    sockets.len()
                );
                // Not on the measured path: accepting is over before the ticks start.
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(e).context("accepting a client"),
        }
    }
    Ok(sockets)
}

fn wait_for_clients(mut clients: Child) -> anyhow::Result<ClientsReport> {
    let stdout = clients.stdout.take().context("the clients' stdout")?;
    // The clients print one line when every socket is closed or their own deadline passes, which is
    // bounded (see run_clients), so this read ends.
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .context("reading the clients' report")?;
    let status = clients.wait().context("waiting for the clients")?;
    ensure!(status.success(), "the clients' process failed ({status})");
    serde_json::from_str(line.trim()).with_context(|| format!("the clients' report {line:?}"))
}

/// The clients: connect every socket, then write one input per socket per tick and sleep in epoll
/// between ticks, reading each state as it arrives, until the server has closed every socket.
fn run_clients(args: &FloorArgs, addr: SocketAddr) -> anyhow::Result<ClientsReport> {
    use mio::net::TcpStream as MioStream;
    use mio::{Events, Interest, Poll, Token};

    let n = args.clients as usize;
    let mut poll = Poll::new().context("creating the epoll instance")?;
    let mut sockets = Vec::with_capacity(n);
    for i in 0..n {
        let socket = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
            .with_context(|| format!("client {i} connecting to {addr}"))?;
        socket.set_nonblocking(true).context("set_nonblocking")?;
        socket.set_nodelay(true).context("set_nodelay")?;
        let mut socket = MioStream::from_std(socket);
        poll.registry()
            .register(&mut socket, Token(i), Interest::READABLE)
            .context("registering a socket with epoll")?;
        sockets.push(Some(socket));
    }

    let input = [1u8; INPUT_BYTES];
    let mut buf = vec![0u8; READ_BUF_BYTES];
    let mut events = Events::with_capacity(1024);
    let period = Duration::from_secs(1) / args.tick_rate;
    let start = Instant::now();
    // The server measures `duration` after accepting everyone; this bound only stops clients whose
    // server has gone away without closing.
    let deadline = start + args.duration + CLIENTS_EXIT_TIMEOUT;
    let mut report = ClientsReport {
        bytes_in: 0,
        inputs_sent: 0,
        closed_by_server: 0,
    };
    let mut open = n;
    let mut tick = 0u32;
    let mut due = start;
    while open > 0 {
        let now = Instant::now();
        ensure!(
            now < deadline,
            "{open} of {n} sockets still open at the clients' deadline"
        );
        if now >= due {
            for socket in sockets.iter_mut().flatten() {
                if let Ok(INPUT_BYTES) = socket.write(&input) {
                    report.inputs_sent += 1;
                }
            }
            tick += 1;
            due = start + period * tick;
            continue;
        }
        match poll.poll(&mut events, Some(due - now)) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("epoll_wait"),
        }
        for event in &events {
            let slot = &mut sockets[event.token().0];
            let Some(socket) = slot else { continue };
            let closed = loop {
                match socket.read(&mut buf) {
                    Ok(0) => break true,
                    Ok(k) => report.bytes_in += k as u64,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => break true,
                }
            };
            if closed {
                let _ = poll.registry().deregister(socket);
                *slot = None;
                open -= 1;
                report.closed_by_server += 1;
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn parse(argv: &[&str]) -> Result<FloorArgs, clap::Error> {
        FloorArgs::try_parse_from(std::iter::once("floor").chain(argv.iter().copied()))
    }

    #[test]
    fn defaults_are_the_benchmark_shape() {
        let a = parse(&[]).unwrap();
        assert_eq!(a.clients, 1000);
        assert_eq!(a.state_bytes, 350);
        assert_eq!(a.tick_rate, 20);
        assert_eq!(a.duration, Duration::from_secs(20));
        assert_eq!((a.server_core, a.client_core, a.no_pin), (0, 1, false));
        assert_eq!(a.clients_of, None);
    }

    #[test]
    fn rejects_bad_values() {
        for bad in [
            &["--clients", "0"][..],
            &["--state-bytes", "0"],
            &["--tick-rate", "0"],
            &["--duration", "0s"],
            &["--clients-of", "not an address"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn drain_reads_until_would_block() {
        struct Chunks(Vec<std::io::Result<usize>>);
        impl Read for Chunks {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                self.0.remove(0)
            }
        }
        let would_block = || Err(std::io::Error::from(ErrorKind::WouldBlock));
        let mut buf = [0u8; 8];
        let mut s = Chunks(vec![Ok(5), Ok(3), would_block()]);
        assert_eq!(drain(&mut s, &mut buf).unwrap(), 8);
        let mut s = Chunks(vec![Ok(2), Ok(0)]);
        assert_eq!(drain(&mut s, &mut buf).unwrap(), 2);
        let mut s = Chunks(vec![Err(std::io::Error::from(ErrorKind::ConnectionReset))]);
        assert!(drain(&mut s, &mut buf).is_err());
    }
}
