//! etcd-format write-ahead log and raft snapshot files.
//!
//! oxcd must be able to adopt an etcd 3.4 data directory in place, so this
//! crate reads and writes `member/wal` and `member/snap` byte-compatibly
//! with etcd.
//!
//! # WAL directory
//!
//! The log is a chain of *segments* named `%016x-%016x.wal` — sequence
//! number, then the raft index of the first entry the segment may hold —
//! both lowercase hex, zero padded. Sequence numbers are consecutive.
//! Segments are preallocated to [`SEGMENT_SIZE_BYTES`] (64,000,000 bytes, as
//! in etcd); the unused tail is zeros. When a write pushes the tail past that
//! size it is truncated to its real length and a new segment is started,
//! prepared as `0.tmp` and renamed into place once its header is durable.
//! A new log is built in `<dir>.tmp` and renamed to `<dir>`.
//!
//! # Record framing
//!
//! Each record is:
//!
//! ```text
//! +-------------------------+-----------------------------+-------------+
//! | length word (8 bytes LE)| walpb.Record (protobuf)     | zero pad    |
//! +-------------------------+-----------------------------+-------------+
//! ```
//!
//! The low 56 bits of the length word are the protobuf size. If that size is
//! not a multiple of 8, `pad = 8 - size % 8` zero bytes follow and the top
//! byte of the word is `0x80 | pad`. Records therefore stay 8-byte aligned,
//! so the length word itself can never be torn. A zero length word means "end
//! of this segment" (preallocated space).
//!
//! `walpb.Record` is `{type: int64 = 1, crc: uint32 = 2, data: bytes = 3}`
//! with types: 1 metadata (opaque blob, etcd's etcdserverpb.Metadata; all
//! copies must be identical), 2 entry (raftpb.Entry), 3 state
//! (raftpb.HardState), 4 crc (no data; carries the running CRC into a new
//! segment), 5 snapshot (walpb.Snapshot `{index = 1, term = 2}`).
//!
//! # Checksums
//!
//! `crc` is CRC-32C (Castagnoli), chained: each record's crc is the CRC of
//! its data appended to the previous record's crc, across segment
//! boundaries. Every segment starts with a crc record holding the running
//! value, followed by the metadata record (and, after the first segment, the
//! latest hard state). The first segment is `crc(0)`, `metadata`,
//! `snapshot{0,0}`.
//!
//! # Recovery rules
//!
//! Replay starts at the last segment whose first index is <= the start
//! snapshot's index; the snapshot record for that (index, term) must be
//! present. Entries at or below the start index are skipped, and an entry
//! whose index is <= the last one read replaces the tail (raft truncation).
//! A partially written record at the end of the *last* segment (short read,
//! or an undecodable / bad-CRC record containing an all-zero 512-byte
//! sector) is treated as a torn write and cut off; any other damage is a hard
//! error naming the file and offset.
//!
//! # Snapshot files
//!
//! `member/snap/%016x-%016x.snap` (term, index) contains snappb.Snapshot
//! `{crc: uint32 = 1, data: bytes = 2}` with `data` = marshalled
//! raftpb.Snapshot and `crc` = CRC-32C of `data`. See [`Snapshotter`].

#![warn(missing_docs)]

mod decoder;
mod error;
mod fileutil;
mod record;
mod snap;
mod wal;

pub use error::WalError;
pub use snap::Snapshotter;
pub use wal::{Wal, WalContents, WalSnapshot, SEGMENT_SIZE_BYTES};

#[cfg(test)]
mod tests;
