//! What can go wrong in storage.

use sea_orm::DbErr;

/// Everything that can go wrong in storage. Messages say what was being done.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database could not be reached or opened.
    #[error("cannot connect to the database at {url}: {source}")]
    Connect {
        /// The URL, with any password removed.
        url: String,
        /// The driver's error.
        source: DbErr,
    },
    /// The directory of a SQLite database file could not be created.
    #[error("cannot create the directory {path} for the SQLite database: {source}")]
    CreateDir {
        /// The directory.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Applying the schema migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(DbErr),
    /// A query or transaction failed (this includes a lost connection).
    #[error("database query failed: {0}")]
    Query(#[from] DbErr),
    /// A stored row does not decode into a record (for instance an unknown room status).
    #[error("corrupt row in the database: {0}")]
    Corrupt(String),
    /// A record cannot be stored because a value does not fit its column (tick above `i64::MAX`,
    /// rank above `i32::MAX`). Retrying cannot help; nothing of the batch was written.
    #[error("value does not fit the database column: {0}")]
    OutOfRange(String),
}

impl StorageError {
    /// Whether retrying the same operation later can succeed: database and connection failures
    /// can, a record that does not fit its column cannot.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Connect { .. } | Self::Query(_))
    }
}
