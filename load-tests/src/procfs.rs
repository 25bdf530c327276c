//! CPU time and resident memory of a process on this machine, from Linux's /proc.

use std::time::Instant;

/// Clock ticks per second of /proc/PID/stat (`getconf CLK_TCK`; 100 on every Linux build in use).
const CLK_TCK: f64 = 100.0;

/// CPU seconds (user + system) the process has used, from `/proc/PID/stat`.
pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    parse_stat_cpu(&std::fs::read_to_string(path).ok()?)
}

/// utime + stime (the 14th and 15th fields) in seconds. The command name (2nd field) is in
/// parentheses and may hold spaces, so fields are counted after its closing parenthesis.
pub fn parse_stat_cpu(stat: &str) -> Option<f64> {
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace();
    // After ")": state is field 3, so utime (14) is the 12th and stime (15) the 13th.
    let utime: f64 = fields.nth(11)?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) / CLK_TCK)
}

/// Resident set size in KiB, from the `VmRSS` line of `/proc/PID/status`.
pub fn rss_kib(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".to_owned(),
    };
    parse_status_rss(&std::fs::read_to_string(path).ok()?)
}

pub fn parse_status_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The soft limit on open files of this process, from `/proc/self/limits` (None: unlimited or unknown).
pub fn open_files_limit() -> Option<u64> {
    parse_open_files_limit(&std::fs::read_to_string("/proc/self/limits").ok()?)
}

pub fn parse_open_files_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A CPU reading with the time it was taken, to turn two readings into a CPU share.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    pub cpu_s: f64,
    pub at: Instant,
}

impl CpuSample {
    pub fn take(pid: Option<u32>) -> Option<Self> {
        Some(Self {
            cpu_s: cpu_seconds(pid)?,
            at: Instant::now(),
        })
    }

    /// CPU seconds used and wall seconds passed since `earlier`.
    pub fn since(&self, earlier: &CpuSample) -> (f64, f64) {
        (
            self.cpu_s - earlier.cpu_s,
            self.at.saturating_duration_since(earlier.at).as_secs_f64(),
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn parses_stat_with_spaces_in_the_name() {
        let stat = "1234 (my (weird) srv) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 130 0 0 20 0 3 0 100 \
                    1000000 2000 18446744073709551615";
        assert_eq!(parse_stat_cpu(stat), Some(3.8));
    }

    #[test]
    fn parses_rss() {
        let status = "Name:\tskirmish\nVmPeak:\t  100 kB\nVmRSS:\t   20480 kB\nThreads:\t3\n";
        assert_eq!(parse_status_rss(status), Some(20480));
        assert_eq!(parse_status_rss("Name: x\n"), None);
    }

    #[test]
    fn parses_the_open_files_limit() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max cpu time              unlimited            unlimited            seconds   \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(parse_open_files_limit(limits), Some(1024));
        assert_eq!(
            parse_open_files_limit(
                "Max open files            unlimited            unlimited            files"
            ),
            None
        );
    }

    #[test]
    fn reads_this_process() {
        assert!(cpu_seconds(None).is_some());
        assert!(rss_kib(None).unwrap() > 0);
    }
}
