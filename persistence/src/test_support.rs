//! For tests of this crate and of the server: a fresh PostgreSQL database per test.
//!
//! Where PostgreSQL comes from, in order:
//! 1. `TEST_DATABASE_URL`, an admin connection (CI: `postgres://postgres@127.0.0.1:5432/test`);
//!    unreachable means the test fails, never that it skips.
//! 2. Otherwise, when PostgreSQL's server binaries are installed (`initdb` and `pg_ctl` on `PATH` or
//!    under `/usr/lib/postgresql/*/bin`), a throwaway cluster started once per test process in a
//!    temporary directory and removed when the process ends (see `local_cluster`).
//! 3. Otherwise the test fails with a message saying how to provide PostgreSQL, unless
//!    `SKIRMISH_ALLOW_PG_SKIP=1` (then it prints a SKIPPED line and passes: an explicit choice).
//!    A silent skip reported as "ok" is what this replaces.
//!
//! [`FreshPostgres::create`] makes a database of its own in that server, so tests cannot interfere,
//! and drops it when the value is dropped (also while a failed test unwinds).
#![allow(clippy::expect_used)] // test support: a failure is a panic with a message

use std::sync::atomic::{AtomicU64, Ordering};

use sea_orm::{ConnectOptions, ConnectionTrait, Database};

mod local_cluster;

#[derive(Debug)]
pub struct FreshPostgres {
    /// The URL of the fresh database.
    pub url: String,
    admin_url: String,
    name: String,
}

/// Unique within this machine: process id, time and a counter.
pub fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{}_{:x}_{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn skip_allowed() -> bool {
    std::env::var("SKIRMISH_ALLOW_PG_SKIP").is_ok_and(|v| v == "1")
}

/// `postgres://u@h:5432/test?x=y` with the database replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url
        .split_once("://")
        .expect("TEST_DATABASE_URL has a scheme");
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, format!("?{q}")),
        None => (rest, String::new()),
    };
    let authority = rest.split('/').next().unwrap_or(rest);
    format!("{scheme}://{authority}/{name}{query}")
}

impl FreshPostgres {
    /// `what` names the skipped tests in the SKIPPED line.
    pub async fn create(what: &str) -> Option<Self> {
        let admin_url = match std::env::var("TEST_DATABASE_URL") {
            Ok(url) => url,
            Err(_) => match local_cluster::shared() {
                Ok(cluster) => cluster.admin_url.clone(),
                Err(why) if skip_allowed() => {
                    eprintln!(
                        "\n*** PostgreSQL {what} tests SKIPPED (SKIRMISH_ALLOW_PG_SKIP=1): {why} ***\n"
                    );
                    return None;
                }
                Err(why) => panic!(
                    "PostgreSQL {what} tests cannot run: TEST_DATABASE_URL is not set and no \
                     throwaway cluster could be started ({why}). Install PostgreSQL's server \
                     binaries (initdb, pg_ctl), or set TEST_DATABASE_URL to an admin connection \
                     (e.g. postgres://postgres@127.0.0.1:5432/test), or set \
                     SKIRMISH_ALLOW_PG_SKIP=1 to skip them knowingly."
                ),
            },
        };
        let name = format!("skirmish_test_{}", unique_suffix());
        let mut options = ConnectOptions::new(admin_url.clone());
        options
            .acquire_timeout(std::time::Duration::from_secs(5))
            .sqlx_logging(false);
        let admin = Database::connect(options)
            .await
            .expect("PostgreSQL (TEST_DATABASE_URL or the throwaway cluster) is unreachable");
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create the per-test database");
        let _ = admin.close().await;
        Some(Self {
            url: with_database(&admin_url, &name),
            admin_url,
            name,
        })
    }
}

impl Drop for FreshPostgres {
    fn drop(&mut self) {
        // Drop cannot await: best effort on a thread (and runtime) of its own.
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                if let Ok(admin) = Database::connect(admin_url.as_str()).await {
                    let _ = admin
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                    let _ = admin.close().await;
                }
            });
            Ok::<_, std::io::Error>(())
        })
        .join();
    }
}
