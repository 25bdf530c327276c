//! A throwaway PostgreSQL cluster for one test process, used when `TEST_DATABASE_URL` is not set
//! but PostgreSQL's server binaries (`initdb`, `pg_ctl`) are installed: what testcontainers does
//! with Docker, with the local binaries.
//!
//! `initdb` (trust authentication, superuser `postgres`, no fsync) into a fresh directory under the
//! temporary directory, then `pg_ctl start` on a free 127.0.0.1 port with the Unix socket in that
//! directory. As root, both run as the `postgres` user (`initdb` refuses root).
//!
//! Stopping: a watcher process (`sh`) is started first, reading its stdin from a pipe whose write
//! end only this process holds. When this process ends, however it ends (even killed), the kernel
//! closes that end, the watcher's `read` returns, and it stops the server and removes the directory.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// A running cluster: its admin URL, and the pipe whose closing stops it.
pub(super) struct LocalCluster {
    pub admin_url: String,
    /// Never written to; dropped only with the process.
    _watcher: Mutex<Child>,
}

/// The cluster of this process, started by the first caller. `Err` says why none could be started
/// (binaries missing, or they failed).
pub(super) fn shared() -> &'static Result<LocalCluster, String> {
    static CLUSTER: OnceLock<Result<LocalCluster, String>> = OnceLock::new();
    CLUSTER.get_or_init(start)
}

/// Where `initdb` and `pg_ctl` are: on `PATH`, else the newest `/usr/lib/postgresql/*/bin`.
fn find_binaries() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
    });
    on_path.or_else(|| {
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|entry| {
                let entry = entry.ok()?;
                let version = entry.file_name().to_str()?.parse().ok()?;
                let bin = entry.path().join("bin");
                (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
                    .then_some((version, bin))
            })
            .collect();
        versions.sort();
        versions.pop().map(|(_, bin)| bin)
    })
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `program args...`, as the `postgres` user when this process is root.
fn command(as_postgres: bool, program: &Path) -> Command {
    if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn run(mut c: Command, what: &str) -> Result<(), String> {
    let out = c
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: cannot run: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

fn start() -> Result<LocalCluster, String> {
    let bin = find_binaries().ok_or("initdb and pg_ctl are not installed")?;
    let as_postgres = is_root();
    let dir = std::env::temp_dir().join(format!("skirmish-pg-{}", super::unique_suffix()));
    let data = dir.join("data");
    // Made by the user that runs the server, so it owns (and may write) everything inside.
    let mut mkdir = if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", "mkdir", "-m", "700"]);
        c
    } else {
        let mut c = Command::new("mkdir");
        c.args(["-m", "700"]);
        c
    };
    mkdir.arg(&dir);
    run(mkdir, "mkdir")?;

    // The watcher first, so the directory is removed even if what follows fails.
    let pg_ctl = bin.join("pg_ctl");
    let stop = format!(
        "read _; {runas}'{pg_ctl}' -D '{data}' stop -m immediate -w >/dev/null 2>&1; rm -rf '{dir}'",
        runas = if as_postgres {
            "runuser -u postgres -- "
        } else {
            ""
        },
        pg_ctl = pg_ctl.display(),
        data = data.display(),
        dir = dir.display(),
    );
    let watcher = Command::new("sh")
        .args(["-c", &stop])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the cleanup watcher: {e}"))?;

    let mut initdb = command(as_postgres, &bin.join("initdb"));
    initdb
        .args([
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "-D",
        ])
        .arg(&data);
    run(initdb, "initdb")?;

    // A port can be taken between probing and binding: a few attempts.
    let mut last = String::new();
    for _ in 0..3 {
        let port = free_port()?;
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
            dir.display()
        );
        let mut start = command(as_postgres, &pg_ctl);
        start
            .args(["-D"])
            .arg(&data)
            .args(["-l"])
            .arg(dir.join("log"))
            .args(["-w", "-t", "30", "-o", &options, "start"]);
        match run(start, "pg_ctl start") {
            Ok(()) => {
                return Ok(LocalCluster {
                    admin_url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
                    _watcher: Mutex::new(watcher),
                });
            }
            Err(e) => {
                let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
                last = format!("{e}\n{log}");
            }
        }
    }
    // Dropping the watcher's stdin here cleans up at once.
    drop(watcher);
    Err(last)
}
