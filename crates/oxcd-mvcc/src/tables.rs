//! The redb tables of the store and the encoding of their records.
//!
//! On-disk format (one redb database file):
//!
//! * `revisions`: `&[u8] -> &[u8]`. Key: a revision in etcd's layout (see [`crate::revision`]),
//!   17 bytes, or 18 bytes ending in `b't'` for a tombstone. Value: the protobuf-encoded
//!   `mvccpb.KeyValue` written at that revision; for a tombstone only its `key` field is set.
//!   This table is the complete history (minus what compaction removed) and is what
//!   [`crate::ReadView::hash_kv`] hashes.
//! * `latest`: `&[u8] -> &[u8]`. Key: the user key. Value: the protobuf-encoded `KeyValue` of
//!   the key's newest version (which carries its mod revision). Only keys that currently exist
//!   are present; reads at the current revision use only this table.
//! * `history`: `(&[u8], u64, u64) -> u8`. Key: `(user key, main, sub)` for every revision in
//!   `revisions`. Value: [`HISTORY_PUT`] or [`HISTORY_TOMBSTONE`]. Reads at an older revision
//!   look here for the newest revision of each key at or below the requested one.
//! * `meta`: `&str -> u64`: the bookkeeping values named by the `META_*` constants.
//! * `aux:<name>`: `&[u8] -> &[u8]`, tables owned by the caller (membership, leases, auth...),
//!   written in the same transaction as the consistent index.

use bytes::Bytes;
use oxcd_proto::mvccpb::KeyValue;
use prost::Message;
use redb::TableDefinition;

use crate::error::StoreError;

/// Revision key → encoded `KeyValue`.
pub const REVISIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("revisions");
/// User key → encoded newest `KeyValue` of a key that exists now.
pub const LATEST: TableDefinition<&[u8], &[u8]> = TableDefinition::new("latest");
/// `(user key, main, sub)` → [`HISTORY_PUT`] / [`HISTORY_TOMBSTONE`].
pub const HISTORY: TableDefinition<(&[u8], u64, u64), u8> = TableDefinition::new("history");
/// Bookkeeping counters.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// `history` value of a revision that wrote a value.
pub const HISTORY_PUT: u8 = 0;
/// `history` value of a revision that deleted the key.
pub const HISTORY_TOMBSTONE: u8 = 1;

/// The raft index of the last entry applied to the store.
pub const META_CONSISTENT_INDEX: &str = "consistent_index";
/// The raft term of that entry.
pub const META_CONSISTENT_TERM: &str = "consistent_term";
/// The store's current revision.
pub const META_CURRENT_REVISION: &str = "current_revision";
/// The revision of the last finished compaction (0: never compacted).
pub const META_COMPACT_REVISION: &str = "compact_revision";
/// The revision of the last scheduled compaction. Compaction runs inside the transaction that
/// schedules it, so this always equals [`META_COMPACT_REVISION`]; kept for diagnostics.
pub const META_SCHEDULED_COMPACT_REVISION: &str = "scheduled_compact_revision";
/// Version of this on-disk format.
pub const META_FORMAT_VERSION: &str = "format_version";
/// The format version written by this code.
pub const FORMAT_VERSION: u64 = 1;

/// The prefix of the redb table names of caller-owned auxiliary tables.
pub const AUX_PREFIX: &str = "aux:";

/// The entries of an auxiliary table: `(key, value)` pairs in key order.
pub type AuxEntries = Vec<(Vec<u8>, Vec<u8>)>;

/// The redb table name of the auxiliary table `name`.
pub fn aux_table_name(name: &str) -> String {
    format!("{AUX_PREFIX}{name}")
}

/// Encodes a `KeyValue` for storage.
pub fn encode_kv(kv: &KeyValue) -> Vec<u8> {
    kv.encode_to_vec()
}

/// Decodes a stored `KeyValue`. The values share one buffer (a single copy out of redb).
pub fn decode_kv(bytes: &[u8]) -> Result<KeyValue, StoreError> {
    KeyValue::decode(Bytes::copy_from_slice(bytes))
        .map_err(|e| StoreError::Corrupt(format!("undecodable KeyValue record: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_roundtrip() {
        let kv = KeyValue {
            key: Bytes::from_static(b"foo"),
            create_revision: 2,
            mod_revision: 5,
            version: 3,
            value: Bytes::from_static(b"bar"),
            lease: 7,
        };
        assert_eq!(decode_kv(&encode_kv(&kv)).ok(), Some(kv));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode_kv(&[0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn aux_names_are_prefixed() {
        assert_eq!(aux_table_name("members"), "aux:members");
    }
}
