//! Command-line options.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Parser)]
#[command(
    name = "skirmish-bots",
    version,
    about = "Load-test a Skirmish server with bot clients that matchmake over HTTP and play over WebSockets",
    after_help = "Bots join evenly over --ramp, then every figure but the connect times is measured over the next \
--duration. Exit status: 0 when every threshold holds, 2 when one is missed, 1 on a setup error.\n\n\
`skirmish-bots floor --help`: measure this machine's floor (one plain read and write per client per tick), \
the yardstick of load-tests/ccu.sh."
)]
pub struct Args {
    /// Base HTTP URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,

    /// API key for the `/v1` HTTP routes.
    #[arg(long, env = "SKIRMISH_API_KEY", hide_env_values = true)]
    pub api_key: String,

    /// Number of bots.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub bots: u32,

    /// Game mode to matchmake into.
    #[arg(long, default_value = "arena")]
    pub mode: String,

    /// Players per room. 16 (the server's default room) joins with `POST /v1/matchmake`; any other size
    /// creates rooms of that size with `POST /v1/rooms` and reserves seats in them (see --join).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub room_size: u32,

    /// How bots get their seats: `matchmake`, `rooms` (the bots create rooms of --room-size and fill
    /// them in order), or `auto` (matchmake when --room-size is 16, else rooms).
    #[arg(long, value_enum, default_value_t = Join::Auto)]
    pub join: Join,

    /// Inputs per second per bot (0: send none).
    #[arg(long, default_value_t = 20.0, value_parser = parse_rate)]
    pub input_rate: f64,

    /// Time over which the bots join, evenly spread (e.g. 10s, 500ms, 1m).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub ramp: Duration,

    /// Measured time after the ramp.
    #[arg(long, default_value = "30s", value_parser = parse_positive_duration)]
    pub duration: Duration,

    /// Behaviour mix, as weights: normal (random-walk inputs), idle (connected, sends nothing),
    /// slow-reader (reads in bursts every 2 s), chaos (like normal, plus an invalid frame every 2 s).
    #[arg(long, default_value = "normal=100", value_parser = parse_mix)]
    pub mix: Mix,

    /// Write the JSON report to this file (`-` for stdout, replacing the table).
    #[arg(long)]
    pub json: Option<PathBuf>,

    /// Exit with status 2 when the p99 input-ack latency is above this (milliseconds).
    #[arg(long)]
    pub max_p99_ms: Option<f64>,

    /// Exit with status 2 when more errors than this happen (failed joins, unexpected disconnects,
    /// undecodable frames, error replies to valid frames).
    #[arg(long)]
    pub max_errors: Option<u64>,

    /// Exit with status 2 when fewer bots than this are connected at the end of the window.
    #[arg(long)]
    pub min_connected: Option<u32>,

    /// PID of the server process on this machine: adds its CPU and RSS over the measured window
    /// (from /proc) to the report.
    #[arg(long)]
    pub server_pid: Option<u32>,

    /// Scrape the server's `/metrics` at the start and end of the window and report tick lateness.
    #[arg(long)]
    pub scrape_metrics: bool,

    /// Allow a --url (or a returned ws_url) that is not a loopback address.
    #[arg(long)]
    pub allow_remote: bool,

    /// No progress line.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Join {
    Auto,
    Matchmake,
    Rooms,
}

impl Args {
    /// Whether bots create their own rooms (true) or use the matchmaker (false).
    pub fn creates_rooms(&self) -> bool {
        match self.join {
            Join::Auto => self.room_size != 16,
            Join::Matchmake => false,
            Join::Rooms => true,
        }
    }
}

/// One bot's behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Behaviour {
    Normal,
    Idle,
    SlowReader,
    Chaos,
}

impl Behaviour {
    pub const ALL: [Behaviour; 4] = [
        Behaviour::Normal,
        Behaviour::Idle,
        Behaviour::SlowReader,
        Behaviour::Chaos,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Idle => "idle",
            Self::SlowReader => "slow-reader",
            Self::Chaos => "chaos",
        }
    }

    fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.name() == s)
    }
}

/// Behaviour weights. Bots are dealt out by smooth weighted round-robin, so every stretch of
/// consecutive bots (and so every room) has close to the mix's proportions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mix {
    pub weights: Vec<(Behaviour, u32)>,
}

impl Mix {
    /// The behaviour of each of `n` bots, in joining order.
    pub fn assign(&self, n: usize) -> Vec<Behaviour> {
        let total: i64 = self.weights.iter().map(|&(_, w)| i64::from(w)).sum();
        let mut current = vec![0i64; self.weights.len()];
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let mut best = 0;
            for (i, &(_, w)) in self.weights.iter().enumerate() {
                current[i] += i64::from(w);
                if current[i] > current[best] {
                    best = i;
                }
            }
            current[best] -= total;
            out.push(self.weights[best].0);
        }
        out
    }

    pub fn describe(&self) -> String {
        self.weights
            .iter()
            .map(|(b, w)| format!("{}={w}", b.name()))
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn parse_mix(s: &str) -> Result<Mix, String> {
    let mut weights: Vec<(Behaviour, u32)> = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, weight) = part
            .split_once('=')
            .ok_or_else(|| format!("`{part}`: expected NAME=WEIGHT"))?;
        let b = Behaviour::from_name(name.trim()).ok_or_else(|| {
            format!("unknown behaviour `{name}` (expected normal, idle, slow-reader or chaos)")
        })?;
        let w: u32 = weight
            .trim()
            .parse()
            .map_err(|_| format!("`{weight}`: the weight must be a whole number"))?;
        if weights.iter().any(|&(seen, _)| seen == b) {
            return Err(format!("`{name}` is given twice"));
        }
        if w > 0 {
            weights.push((b, w));
        }
    }
    if weights.is_empty() {
        return Err("the mix needs at least one behaviour with a weight above 0".into());
    }
    if weights.iter().map(|&(_, w)| u64::from(w)).sum::<u64>() > 1_000_000 {
        return Err("the weights add up to more than 1000000".into());
    }
    Ok(Mix { weights })
}

/// `10s`, `500ms`, `2m`, `1.5s`, or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let v: f64 = num
        .parse()
        .map_err(|_| format!("`{s}`: expected a duration such as 10s, 500ms or 2m"))?;
    let secs = match unit.trim() {
        "" | "s" => v,
        "ms" => v / 1000.0,
        "m" | "min" => v * 60.0,
        "h" => v * 3600.0,
        other => return Err(format!("`{other}`: unknown unit (use ms, s, m or h)")),
    };
    if !secs.is_finite() || !(0.0..=86_400.0).contains(&secs) {
        return Err(format!("`{s}`: must be between 0 and 24h"));
    }
    Ok(Duration::from_secs_f64(secs))
}

pub fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err("must be longer than 0".into());
    }
    Ok(d)
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("`{s}`: expected a number"))?;
    if !v.is_finite() || !(0.0..=1000.0).contains(&v) {
        return Err("must be between 0 and 1000".into());
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn parse(extra: &[&str]) -> Result<Args, clap::Error> {
        let mut argv = vec!["skirmish-bots", "--api-key", "k"];
        argv.extend_from_slice(extra);
        Args::try_parse_from(argv)
    }

    #[test]
    fn defaults_are_the_standard_shape() {
        let a = parse(&[]).unwrap();
        assert_eq!(a.url, "http://127.0.0.1:8080");
        assert_eq!(a.bots, 100);
        assert_eq!(a.mode, "arena");
        assert_eq!(a.room_size, 16);
        assert_eq!(a.input_rate, 20.0);
        assert_eq!(a.ramp, Duration::from_secs(10));
        assert_eq!(a.duration, Duration::from_secs(30));
        assert_eq!(a.mix.weights, vec![(Behaviour::Normal, 100)]);
        assert!(!a.creates_rooms());
    }

    #[test]
    fn parses_every_option() {
        let a = parse(&[
            "--url",
            "http://127.0.0.1:9000",
            "--bots",
            "2000",
            "--room-size",
            "8",
            "--input-rate",
            "10",
            "--ramp",
            "500ms",
            "--duration",
            "2m",
            "--mix",
            "normal=90, idle=5,slow-reader=3,chaos=2",
            "--json",
            "out.json",
            "--max-p99-ms",
            "60",
            "--max-errors",
            "0",
            "--server-pid",
            "42",
            "--scrape-metrics",
            "-q",
        ])
        .unwrap();
        assert_eq!(a.bots, 2000);
        assert_eq!(a.ramp, Duration::from_millis(500));
        assert_eq!(a.duration, Duration::from_secs(120));
        assert_eq!(a.mix.describe(), "normal=90,idle=5,slow-reader=3,chaos=2");
        assert_eq!(a.max_p99_ms, Some(60.0));
        assert_eq!(a.max_errors, Some(0));
        assert_eq!(a.server_pid, Some(42));
        assert!(a.creates_rooms() && a.scrape_metrics && a.quiet);
        let a = parse(&["--room-size", "8", "--join", "matchmake"]).unwrap();
        assert!(!a.creates_rooms());
    }

    #[test]
    fn rejects_bad_values() {
        for bad in [
            &["--bots", "0"][..],
            &["--room-size", "65"],
            &["--input-rate", "-1"],
            &["--duration", "0s"],
            &["--ramp", "10 parsecs"],
            &["--mix", "normal=90,dancer=10"],
            &["--mix", "normal=0"],
            &["--mix", "normal=1,normal=2"],
            &["--mix", "normal"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("25h").is_err());
    }

    #[test]
    fn the_mix_is_dealt_evenly() {
        let mix = parse_mix("normal=90,idle=5,slow-reader=3,chaos=2").unwrap();
        let bots = mix.assign(1000);
        let count = |b| bots.iter().filter(|&&x| x == b).count();
        assert_eq!(count(Behaviour::Normal), 900);
        assert_eq!(count(Behaviour::Idle), 50);
        assert_eq!(count(Behaviour::SlowReader), 30);
        assert_eq!(count(Behaviour::Chaos), 20);
        // Every room of 16 consecutive bots is mostly normal.
        for room in bots.chunks_exact(16) {
            assert!(room.iter().filter(|&&x| x == Behaviour::Normal).count() >= 13);
        }
        assert_eq!(
            parse_mix("idle=1").unwrap().assign(3),
            vec![Behaviour::Idle; 3]
        );
    }
}
