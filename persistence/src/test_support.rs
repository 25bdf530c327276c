//! For tests of this crate and of the server: a fresh PostgreSQL database per test.
//!
//! `TEST_DATABASE_URL` names an admin connection (CI: `postgres://postgres@127.0.0.1:5432/test`).
//! [`FreshPostgres::create`] makes a database of its own next to it, so runs cannot interfere, and
//! drops it when the value is dropped (also while a failed test unwinds). Without the variable it
//! prints a loud SKIPPED line and returns `None`; with it set and PostgreSQL unreachable, it panics,
//! so CI fails instead of skipping.
#![allow(clippy::expect_used)] // test support: a failure is a panic with a message

use std::sync::atomic::{AtomicU64, Ordering};

use sea_orm::{ConnectOptions, ConnectionTrait, Database};

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
        let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
            eprintln!(
                "\n*** PostgreSQL {what} tests SKIPPED: TEST_DATABASE_URL not set \
                 (e.g. postgres://postgres@127.0.0.1:5432/test) ***\n"
            );
            return None;
        };
        let name = format!("skirmish_test_{}", unique_suffix());
        let mut options = ConnectOptions::new(admin_url.clone());
        options
            .acquire_timeout(std::time::Duration::from_secs(5))
            .sqlx_logging(false);
        let admin = Database::connect(options)
            .await
            .expect("TEST_DATABASE_URL is set but PostgreSQL is unreachable");
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
