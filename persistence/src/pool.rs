//! The connection pool: how the server connects to PostgreSQL or SQLite, and the connection's
//! lifecycle (migrate, ping, close).

use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection};

use crate::{Storage, StorageError};

/// Connection-pool settings. They are configured rather than left to sqlx's defaults so that an
/// unreachable database fails fast (`acquire_timeout`) instead of stalling the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolOptions {
    /// Upper bound on open connections.
    pub max_connections: u32,
    /// Connections kept open while idle, so the first write after a quiet spell does not pay for
    /// a connect.
    pub min_connections: u32,
    /// How long to wait for a free (or new) connection before failing; also the connect timeout.
    pub acquire_timeout: Duration,
    /// Longest a statement may run: PostgreSQL's `statement_timeout`, set on every connection; on
    /// SQLite the busy timeout (how long a statement waits for the database lock).
    pub statement_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            min_connections: 1,
            acquire_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(5),
        }
    }
}

impl Storage {
    /// Connects to `url` (`postgres://…` or `sqlite:…`) with the given pool.
    ///
    /// For a SQLite file the parent directory and the file are created if missing, and the
    /// database is put in WAL mode with `synchronous=NORMAL`: readers do not block the writer, and
    /// a committed transaction survives a crash of the process (only an OS crash or power loss can
    /// lose the last commits). An in-memory SQLite database (`sqlite::memory:`) gets exactly one
    /// connection that is never recycled, since every connection would otherwise see its own
    /// empty database.
    pub async fn connect(url: &str, pool: &PoolOptions) -> Result<Self, StorageError> {
        let is_sqlite = url.starts_with("sqlite:");
        let in_memory = is_sqlite && (url.contains(":memory:") || url.contains("mode=memory"));
        let mut options = ConnectOptions::new(url.to_owned());
        options
            .max_connections(pool.max_connections.max(1))
            .min_connections(pool.min_connections.min(pool.max_connections.max(1)))
            .acquire_timeout(pool.acquire_timeout)
            .connect_timeout(pool.acquire_timeout)
            .sqlx_logging(false);
        if in_memory {
            const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
            options
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(FOREVER)
                .max_lifetime(FOREVER);
        } else if is_sqlite {
            create_sqlite_dir(url)?;
            let busy_timeout = pool.statement_timeout;
            options.map_sqlx_sqlite_opts(move |o| {
                use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
                o.create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(busy_timeout)
            });
        } else {
            // A startup parameter, so every pooled connection has it, reconnects included.
            let ms = pool.statement_timeout.as_millis().max(1).to_string();
            options
                .map_sqlx_postgres_opts(move |o| o.options([("statement_timeout", ms.as_str())]));
        }
        let db = Database::connect(options)
            .await
            .map_err(|source| StorageError::Connect {
                url: redact_url(url),
                source,
            })?;
        Ok(Self { db })
    }

    /// Wraps an existing connection (tests, tools).
    pub fn from_connection(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// The underlying connection, for tools and tests (migrations down, EXPLAIN).
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Which backend this is.
    pub fn backend(&self) -> DatabaseBackend {
        self.db.get_database_backend()
    }

    /// Applies every pending up migration.
    pub async fn migrate(&self) -> Result<(), StorageError> {
        use migrations::MigratorTrait;
        migrations::Migrator::up(&self.db, None)
            .await
            .map_err(StorageError::Migrate)
    }

    /// Checks that the database answers (readiness probes).
    pub async fn ping(&self) -> Result<(), StorageError> {
        Ok(self.db.ping().await?)
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(self) -> Result<(), StorageError> {
        Ok(self.db.close().await?)
    }
}

/// Creates the parent directory of a SQLite file URL (`sqlite://data/x.db?mode=rwc`,
/// `sqlite:data/x.db`, `sqlite:///abs/x.db`).
fn create_sqlite_dir(url: &str) -> Result<(), StorageError> {
    let Some(path) = sqlite_path(url) else {
        return Ok(());
    };
    let Some(parent) = std::path::Path::new(path).parent() else {
        return Ok(());
    };
    if parent.as_os_str().is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(parent).map_err(|source| StorageError::CreateDir {
        path: parent.display().to_string(),
        source,
    })
}

fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next()?;
    (!path.is_empty() && !path.contains(":memory:")).then_some(path)
}

/// The URL without its password, for error messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths() {
        assert_eq!(
            sqlite_path("sqlite://data/x.db?mode=rwc"),
            Some("data/x.db")
        );
        assert_eq!(sqlite_path("sqlite:data/x.db"), Some("data/x.db"));
        assert_eq!(sqlite_path("sqlite:///tmp/x.db"), Some("/tmp/x.db"));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://h/db"), None);
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite://data/x.db"), "sqlite://data/x.db");
    }
}
