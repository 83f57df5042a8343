//! Errors of the storage layer.

/// An error of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The requested revision was removed by a compaction.
    #[error("mvcc: required revision has been compacted")]
    Compacted,
    /// The requested revision is newer than the store's current revision.
    #[error("mvcc: required revision is a future revision")]
    FutureRevision,
    /// redb failed (I/O, corruption detected by redb, ...).
    #[error("storage: {0}")]
    Redb(#[from] redb::Error),
    /// A record in the database does not have the expected shape.
    #[error("storage corrupt: {0}")]
    Corrupt(String),
    /// Writing applied changes to the backend file failed earlier; nothing more is accepted.
    #[error("storage: backend flush failed: {0}")]
    Flush(String),
    /// An argument is out of the range the store supports.
    #[error("invalid argument: {0}")]
    Invalid(String),
}

macro_rules! from_redb {
    ($($t:ty),*) => {
        $(impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Redb(e.into())
            }
        })*
    };
}

from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Redb(e.into())
    }
}
