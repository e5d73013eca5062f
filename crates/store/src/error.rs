use std::path::PathBuf;

/// What went wrong in the store. Each message says what happened and what to do next.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The thing named (e.g. "session 01j9…") does not exist.
    #[error("{0} not found")]
    NotFound(String),

    /// The directory that should hold the database could not be created.
    #[error(
        "cannot create the directory {path} for the database: {source} — check the permissions of its parent, \
         or set RSWE_DATA_DIR to a writable directory"
    )]
    CreateDirectory { path: PathBuf, source: std::io::Error },

    /// SQLite could not open (or create) the database file.
    #[error(
        "cannot open the database at {path}: {source} — check that the directory is writable, the disk is not \
         full, and the path is not a directory; set RSWE_DATA_DIR to use another place"
    )]
    Open { path: PathBuf, source: sqlx::Error },

    /// The schema could not be brought up to date.
    #[error(
        "cannot bring the database schema at {location} up to date: {source} — if a newer rswe wrote this database, \
         upgrade rswe; otherwise restore a backup or move the file aside to start fresh"
    )]
    Migrate { location: String, source: sqlx::migrate::MigrateError },

    /// The database holds something this version cannot read (a damaged file, an event
    /// that does not decode, a status it does not know).
    #[error("{0}")]
    Corrupt(String),

    /// Something with that identity exists already.
    #[error("{0} already exists")]
    AlreadyExists(String),

    /// The caller asked for something the store cannot represent.
    #[error("{0}")]
    Invalid(String),

    /// A pagination cursor that is malformed or too old to be honoured.
    #[error("{0} — list again from the first page")]
    InvalidCursor(String),

    /// Another writer held the database for longer than the store is willing to wait.
    #[error(
        "the database stayed locked by another writer while trying to {what} ({attempts} attempts) — another \
         rswe process may be stuck holding it; try again, or stop the other process"
    )]
    Busy { what: &'static str, attempts: u32 },

    /// Any other database error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// SQLite primary result codes (the low byte of an extended code).
const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;
const SQLITE_CORRUPT: i32 = 11;
const SQLITE_NOTADB: i32 = 26;

/// The primary SQLite result code of a database error, if it is one.
pub(crate) fn sqlite_code(error: &sqlx::Error) -> Option<i32> {
    match error {
        sqlx::Error::Database(db) => db.code().and_then(|code| code.parse::<i32>().ok()).map(|code| code & 0xff),
        _ => None,
    }
}

/// The database is locked by another connection: worth retrying the whole transaction.
pub(crate) fn is_busy(error: &sqlx::Error) -> bool {
    matches!(sqlite_code(error), Some(SQLITE_BUSY | SQLITE_LOCKED))
}

/// The file is not a SQLite database, or a damaged one.
pub(crate) fn is_corrupt(error: &sqlx::Error) -> bool {
    matches!(sqlite_code(error), Some(SQLITE_CORRUPT | SQLITE_NOTADB))
}

impl StoreError {
    pub(crate) fn is_busy(&self) -> bool {
        match self {
            StoreError::Database(error) => is_busy(error),
            _ => false,
        }
    }

    pub(crate) fn session_not_found(id: &rswe_protocol::SessionId) -> Self {
        StoreError::NotFound(format!("session {id}"))
    }
}
