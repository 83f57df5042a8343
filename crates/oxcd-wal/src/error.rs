//! Error type shared by the WAL and the snapshotter.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while reading or writing the WAL or snap
/// files. Variants carry the file and byte offset involved so an operator can
/// find the damage without re-running with extra logging.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// An operating-system call failed; `op` says what we were doing.
    #[error("wal: {op} {path}: {source}")]
    Io {
        /// Short description of the failed operation.
        op: &'static str,
        /// File or directory the operation was applied to.
        path: PathBuf,
        /// Underlying OS error.
        #[source]
        source: io::Error,
    },

    /// `Wal::create` was pointed at a directory that already holds segments;
    /// refusing protects an existing member's log from being overwritten.
    #[error("wal: directory {0} already contains WAL files")]
    AlreadyExists(PathBuf),

    /// No segment covers the requested start index, or the segment sequence
    /// numbers have a hole (a segment went missing).
    #[error("wal: file not found in {dir}: {detail}")]
    FileNotFound {
        /// The WAL directory searched.
        dir: PathBuf,
        /// Why no usable chain of segments was found.
        detail: String,
    },

    /// Another `Wal` (in this or another process) holds the segment lock.
    #[error("wal: segment {0} is locked by another writer")]
    Locked(PathBuf),

    /// A record could not be decoded and it is not a torn tail write.
    #[error("wal: corrupt record in {path} at offset {offset}: {reason}")]
    Corrupt {
        /// Segment containing the bad record.
        path: PathBuf,
        /// Byte offset of the record's length field inside the segment.
        offset: u64,
        /// What exactly failed to decode.
        reason: String,
    },

    /// A record's checksum does not match the running CRC chain.
    #[error("wal: crc mismatch in {path} at offset {offset} (stored {stored:#010x}, computed {computed:#010x})")]
    CrcMismatch {
        /// Segment containing the bad record.
        path: PathBuf,
        /// Byte offset of the record's length field inside the segment.
        offset: u64,
        /// Checksum stored in the record.
        stored: u32,
        /// Checksum computed over the data read so far.
        computed: u32,
    },

    /// Two metadata records in the log disagree.
    #[error("wal: conflicting metadata found in {path} at offset {offset}")]
    MetadataConflict {
        /// Segment containing the conflicting record.
        path: PathBuf,
        /// Byte offset of the conflicting record.
        offset: u64,
    },

    /// The snapshot record the caller asked to start from is not in the log.
    #[error("wal: snapshot not found (index {index}, term {term})")]
    SnapshotNotFound {
        /// Requested snapshot index.
        index: u64,
        /// Requested snapshot term.
        term: u64,
    },

    /// A snapshot record exists at the requested index but with another term.
    #[error("wal: snapshot mismatch at index {index}: wanted term {wanted}, log has term {found}")]
    SnapshotMismatch {
        /// Snapshot index.
        index: u64,
        /// Term the caller asked for.
        wanted: u64,
        /// Term recorded in the log.
        found: u64,
    },

    /// An entry would leave a hole in the recovered log.
    #[error("wal: entry {index} in {path} at offset {offset} leaves a gap (log holds entries up to {last})")]
    EntryGap {
        /// Index of the out-of-place entry.
        index: u64,
        /// Last index recovered before it.
        last: u64,
        /// Segment containing the entry.
        path: PathBuf,
        /// Byte offset of the entry record.
        offset: u64,
    },

    /// A record is larger than etcd's reader accepts, so writing it would
    /// produce a log that cannot be read back.
    #[error("wal: record of {size} bytes exceeds the {limit} byte limit")]
    RecordTooLarge {
        /// Encoded record size.
        size: u64,
        /// Maximum allowed size.
        limit: u64,
    },

    /// A previous write or fsync failed; after that the on-disk state is
    /// unknown, so the log refuses further writes instead of guessing.
    #[error("wal: a previous write or sync failed; the log must be reopened")]
    Poisoned,

    /// Serialising a raft protobuf message failed.
    #[error("wal: cannot encode {what}: {source}")]
    Encode {
        /// The message kind being encoded.
        what: &'static str,
        /// Underlying protobuf error.
        #[source]
        source: protobuf::ProtobufError,
    },
}

impl WalError {
    /// Shorthand for wrapping an `io::Error` with context.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        WalError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
