//! The multi-version key-value store of oxcd, on redb, with etcd 3.4's revision semantics.
//!
//! * [`KvStore`] opens the database file and hands out [`ReadView`] snapshots and
//!   [`WriteBatch`]es (one redb transaction each).
//! * [`revision`] and [`tables`] describe the on-disk format.
//! * [`kv`] applies etcd's v3 KV requests (Range, Put, DeleteRange, Txn, Compact) with etcd's
//!   exact semantics and error messages.

pub mod error;
mod export;
mod flush;
pub mod kv;
mod overlay;
mod paced_file;
pub mod query;
pub mod read;
pub mod revision;
pub mod store;
pub mod tables;
pub mod write;

pub use error::StoreError;
pub use export::StoreSnapshot;
pub use kv::{KvError, LeaseHooks, NoLeases};
pub use query::{KeySpan, RangeOptions, RangeResult};
pub use read::{HashKv, Meta, ReadView};
pub use revision::Revision;
pub use store::{KvStore, StoreOptions, DEFAULT_CACHE_SIZE};
pub use write::WriteBatch;
