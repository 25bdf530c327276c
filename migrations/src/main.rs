//! `skirmish-migrate`: apply, roll back or inspect Skirmish's schema migrations by hand.
//!
//! The server applies pending migrations itself at start; this tool is for operators who want to
//! migrate ahead of a deployment, roll back a step, or see what has been applied.
//!
//! ```text
//! skirmish-migrate [--database-url URL] up [N]      apply pending migrations (all, or the next N)
//! skirmish-migrate [--database-url URL] down [N]    roll back the last N applied migrations (default 1)
//! skirmish-migrate [--database-url URL] status      list migrations and whether they are applied
//! ```
//!
//! The database is `--database-url`, else `SKIRMISH_DATABASE_URL`, else `DATABASE_URL`, else the
//! server's embedded default `sqlite://data/skirmish.db` (created if missing).

use anyhow::{Context, Result, bail};
use migrations::{Migrator, MigratorTrait};
use sea_orm_migration::MigrationStatus;
use sea_orm_migration::sea_orm::{ConnectOptions, Database};
use std::io::Write;

/// The server's embedded default, so that the tool and the server agree without configuration.
const DEFAULT_URL: &str = "sqlite://data/skirmish.db?mode=rwc";

const USAGE: &str = "usage: skirmish-migrate [--database-url URL] <up [N] | down [N] | status>";

enum Command {
    Up(Option<u32>),
    Down(u32),
    Status,
}

fn parse(args: &[String]) -> Result<(Option<String>, Command)> {
    let mut url = None;
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "--database-url" {
            url = Some(it.next().context("--database-url needs a value")?.clone());
        } else if let Some(v) = arg.strip_prefix("--database-url=") {
            url = Some(v.to_owned());
        } else if arg == "-h" || arg == "--help" {
            bail!("{USAGE}");
        } else {
            rest.push(arg.as_str());
        }
    }
    let steps = |s: Option<&&str>| -> Result<Option<u32>> {
        s.map(|n| {
            n.parse::<u32>()
                .with_context(|| format!("not a step count: {n}"))
        })
        .transpose()
    };
    let command = match rest.as_slice() {
        ["up"] | ["up", _] => Command::Up(steps(rest.get(1))?),
        ["down"] | ["down", _] => Command::Down(steps(rest.get(1))?.unwrap_or(1)),
        ["status"] => Command::Status,
        _ => bail!("{USAGE}"),
    };
    Ok((url, command))
}

/// Creates the directory of a SQLite database file, as the server does, so `up` works on a fresh
/// checkout.
fn prepare_sqlite_dir(url: &str) -> Result<()> {
    let Some(rest) = url.strip_prefix("sqlite:") else {
        return Ok(());
    };
    let path = rest.trim_start_matches("//");
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path.contains(":memory:") {
        return Ok(());
    }
    if let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create directory {}", parent.display()))?;
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (url, command) = parse(&args)?;
    let url = url
        .or_else(|| std::env::var("SKIRMISH_DATABASE_URL").ok())
        .or_else(|| std::env::var("DATABASE_URL").ok())
        .unwrap_or_else(|| DEFAULT_URL.to_owned());
    prepare_sqlite_dir(&url)?;
    let mut options = ConnectOptions::new(url.clone());
    // Fail fast on an unreachable database instead of sqlx's 30 s default.
    options
        .acquire_timeout(std::time::Duration::from_secs(5))
        .connect_timeout(std::time::Duration::from_secs(5))
        .sqlx_logging(false);
    let db = Database::connect(options)
        .await
        .context("cannot connect to the database (check --database-url / SKIRMISH_DATABASE_URL)")?;

    let mut out = std::io::stdout().lock();
    match command {
        Command::Up(steps) => {
            let pending = Migrator::get_pending_migrations(&db).await?.len();
            Migrator::up(&db, steps).await.context("migrating up")?;
            let applied = steps.map_or(pending, |n| pending.min(n as usize));
            writeln!(out, "applied {applied} migration(s)")?;
        }
        Command::Down(steps) => {
            let applied = Migrator::get_applied_migrations(&db).await?.len();
            Migrator::down(&db, Some(steps))
                .await
                .context("migrating down")?;
            writeln!(
                out,
                "rolled back {} migration(s)",
                applied.min(steps as usize)
            )?;
        }
        Command::Status => {
            for m in Migrator::get_migration_with_status(&db).await? {
                let status = match m.status() {
                    MigrationStatus::Applied => "applied",
                    MigrationStatus::Pending => "pending",
                };
                writeln!(out, "{status:8} {}", m.name())?;
            }
        }
    }
    Ok(())
}
