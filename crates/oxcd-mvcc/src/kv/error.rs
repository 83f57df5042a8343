//! [`KvError`]: the errors of etcd's v3 KV requests, with etcd's exact messages and gRPC codes.

use crate::error::StoreError;

/// An error of a KV request. `Display` is the message etcd sends to clients; [`KvError::code`]
/// is the gRPC status code etcd uses for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// A request (or a txn compare or op) has an empty key.
    #[error("etcdserver: key is not provided")]
    EmptyKey,
    /// `ignore_value` / `ignore_lease` on a key that does not exist, or an empty txn op.
    #[error("etcdserver: key not found")]
    KeyNotFound,
    /// `ignore_value` together with a value.
    #[error("etcdserver: value is provided")]
    ValueProvided,
    /// `ignore_lease` together with a lease.
    #[error("etcdserver: lease is provided")]
    LeaseProvided,
    /// A txn with more operations than allowed.
    #[error("etcdserver: too many operations in txn request")]
    TooManyOps,
    /// A txn writing the same key twice (or putting a key it deletes).
    #[error("etcdserver: duplicate key given in txn request")]
    DuplicateKey,
    /// The requested revision was compacted.
    #[error("etcdserver: mvcc: required revision has been compacted")]
    Compacted,
    /// The requested revision is newer than the store.
    #[error("etcdserver: mvcc: required revision is a future revision")]
    FutureRev,
    /// A put names a lease that does not exist.
    #[error("etcdserver: requested lease not found")]
    LeaseNotFound,
    /// The storage layer failed; the batch in progress must be dropped.
    #[error("etcdserver: storage failure: {0}")]
    Internal(String),
}

impl KvError {
    /// The gRPC status code etcd uses for this error.
    pub fn code(&self) -> tonic::Code {
        match self {
            KvError::EmptyKey
            | KvError::KeyNotFound
            | KvError::ValueProvided
            | KvError::LeaseProvided
            | KvError::TooManyOps
            | KvError::DuplicateKey => tonic::Code::InvalidArgument,
            KvError::Compacted | KvError::FutureRev => tonic::Code::OutOfRange,
            KvError::LeaseNotFound => tonic::Code::NotFound,
            KvError::Internal(_) => tonic::Code::Internal,
        }
    }

    /// The error as a gRPC status.
    pub fn to_status(&self) -> tonic::Status {
        tonic::Status::new(self.code(), self.to_string())
    }
}

impl From<StoreError> for KvError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Compacted => KvError::Compacted,
            StoreError::FutureRevision => KvError::FutureRev,
            other => KvError::Internal(other.to_string()),
        }
    }
}

impl From<KvError> for tonic::Status {
    fn from(e: KvError) -> Self {
        e.to_status()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_codes_match_etcd() {
        let cases = [
            (
                KvError::EmptyKey,
                "etcdserver: key is not provided",
                tonic::Code::InvalidArgument,
            ),
            (
                KvError::KeyNotFound,
                "etcdserver: key not found",
                tonic::Code::InvalidArgument,
            ),
            (
                KvError::ValueProvided,
                "etcdserver: value is provided",
                tonic::Code::InvalidArgument,
            ),
            (
                KvError::LeaseProvided,
                "etcdserver: lease is provided",
                tonic::Code::InvalidArgument,
            ),
            (
                KvError::TooManyOps,
                "etcdserver: too many operations in txn request",
                tonic::Code::InvalidArgument,
            ),
            (
                KvError::DuplicateKey,
                "etcdserver: duplicate key given in txn request",
                tonic::Code::InvalidArgument,
            ),
            (
                KvError::Compacted,
                "etcdserver: mvcc: required revision has been compacted",
                tonic::Code::OutOfRange,
            ),
            (
                KvError::FutureRev,
                "etcdserver: mvcc: required revision is a future revision",
                tonic::Code::OutOfRange,
            ),
            (
                KvError::LeaseNotFound,
                "etcdserver: requested lease not found",
                tonic::Code::NotFound,
            ),
        ];
        for (e, msg, code) in cases {
            assert_eq!(e.to_string(), msg);
            assert_eq!(e.code(), code);
            let s = e.to_status();
            assert_eq!((s.code(), s.message()), (code, msg));
        }
        assert_eq!(KvError::from(StoreError::Compacted), KvError::Compacted);
        assert_eq!(
            KvError::from(StoreError::FutureRevision),
            KvError::FutureRev
        );
    }
}
