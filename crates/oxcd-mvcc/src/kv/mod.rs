//! etcd's v3 KV requests on top of the store: validation before proposing ([`validate`]),
//! application with etcd's semantics ([`apply`]) and etcd's errors ([`KvError`]).

pub mod apply;
pub mod error;
pub mod validate;

pub use apply::{compact, delete_range, is_txn_read_only, put, range, txn, txn_read};
pub use error::KvError;
pub use validate::{
    validate_delete_range, validate_put, validate_range, validate_txn, DEFAULT_MAX_TXN_OPS,
};

use crate::error::StoreError;
use crate::query::{KeySpan, RangeOptions, RangeResult};
use crate::read::ReadView;
use crate::write::WriteBatch;

/// What the KV layer needs from the lease subsystem.
pub trait LeaseHooks {
    /// Whether lease `id` exists (never asked for 0, "no lease").
    fn lease_exists(&self, id: i64) -> bool;
    /// Key `key` now belongs to lease `id`.
    fn attach(&mut self, id: i64, key: &[u8]);
    /// Key `key` no longer belongs to lease `id` (overwritten with another lease or deleted).
    fn detach(&mut self, id: i64, key: &[u8]);
}

/// No leases at all: every put naming a lease fails with "requested lease not found".
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLeases;

impl LeaseHooks for NoLeases {
    fn lease_exists(&self, _id: i64) -> bool {
        false
    }
    fn attach(&mut self, _id: i64, _key: &[u8]) {}
    fn detach(&mut self, _id: i64, _key: &[u8]) {}
}

/// Something ranges can be served from: a [`ReadView`] or a [`WriteBatch`].
pub trait KvRead {
    /// Reads `span` (revision 0: the revision of [`KvRead::kv_revision`]).
    fn kv_range(&self, span: KeySpan<'_>, opts: RangeOptions) -> Result<RangeResult, StoreError>;
    /// The revision reads see.
    fn kv_revision(&self) -> i64;
    /// The oldest revision that can be read: the compacted revision, -1 if never compacted.
    fn kv_first_revision(&self) -> i64;
}

impl KvRead for ReadView {
    fn kv_range(&self, span: KeySpan<'_>, opts: RangeOptions) -> Result<RangeResult, StoreError> {
        self.range(span, opts)
    }
    fn kv_revision(&self) -> i64 {
        self.current_revision()
    }
    fn kv_first_revision(&self) -> i64 {
        first_rev(self.compact_revision())
    }
}

impl KvRead for WriteBatch {
    fn kv_range(&self, span: KeySpan<'_>, opts: RangeOptions) -> Result<RangeResult, StoreError> {
        self.range(span, opts)
    }
    fn kv_revision(&self) -> i64 {
        self.view_revision()
    }
    fn kv_first_revision(&self) -> i64 {
        first_rev(self.compact_revision())
    }
}

fn first_rev(compacted: i64) -> i64 {
    if compacted == 0 {
        -1
    } else {
        compacted
    }
}
