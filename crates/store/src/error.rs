use aim_domain::Refusal;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The write conflicts with what is stored (a taken name, a concurrent update).
    #[error(transparent)]
    Conflict(Refusal),
    /// The store could not answer: unreachable, read-only, full, timed out.
    #[error("store unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// A stored value could not be read back (a bug or a hand-edited row).
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::Decode(_)
            | sqlx::Error::ColumnNotFound(_) => StoreError::Corrupt(e.to_string()),
            other => StoreError::Unavailable(other),
        }
    }
}

/// Maps a unique violation to `refusal`, anything else as usual.
pub(crate) fn unique_or(e: sqlx::Error, refusal: impl FnOnce() -> Refusal) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(refusal()),
        _ => e.into(),
    }
}
