//! The segmented write-ahead log.

use std::fs::{self, File};
use std::os::unix::fs::{DirBuilderExt, FileExt};
use std::path::{Path, PathBuf};

use prost::Message as _;
use raft_proto::eraftpb::{Entry, HardState};

use crate::decoder::{Decoder, Next};
use crate::fileutil::{
    fsync_dir, open_locked, parent_dir, preallocate, read_wal_names, wal_name, SegmentName,
};
use crate::record::{
    append_record, SnapshotRecord, CRC_TYPE, ENTRY_TYPE, METADATA_TYPE, SNAPSHOT_TYPE, STATE_TYPE,
};
use crate::WalError;

/// Size at which a segment is cut and a new one started; also the size each
/// segment is preallocated to. Same value as etcd (64 * 1000 * 1000 bytes),
/// so files look exactly like the ones etcd writes.
pub const SEGMENT_SIZE_BYTES: u64 = 64 * 1000 * 1000;

/// Name of the scratch file a new segment is prepared in before it is
/// renamed into place (the `.tmp` suffix makes both us and etcd ignore it).
const SEGMENT_TMP_NAME: &str = "0.tmp";

/// Position of a raft snapshot in the log: the `(index, term)` marker that
/// tells [`Wal::open`] where replay starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct WalSnapshot {
    /// Raft index covered by the snapshot.
    pub index: u64,
    /// Term of the entry at `index`.
    pub term: u64,
}

/// What [`Wal::open`] recovered: everything raft needs to restart.
#[derive(Debug, Clone, Default)]
pub struct WalContents {
    /// Opaque metadata blob written at creation (etcd: etcdserverpb.Metadata).
    pub metadata: Vec<u8>,
    /// Last hard state recorded (default when none was ever written).
    pub hard_state: HardState,
    /// Entries after the start snapshot, with raft truncations applied.
    pub entries: Vec<Entry>,
}

/// A segment this `Wal` holds the lock on.
struct Segment {
    path: PathBuf,
    seq: u64,
    index: u64,
    file: File,
}

/// An open, writable WAL directory. Holds exclusive locks on every segment
/// it may still need; segments released by [`Wal::release_lock_to`] become
/// eligible for [`Wal::purge`]. Not thread-safe by design: the owner drives
/// it from one dedicated thread.
pub struct Wal {
    dir: PathBuf,
    metadata: Vec<u8>,
    /// Last non-empty hard state written, repeated at the head of new segments.
    state: HardState,
    /// Index of the last entry (or snapshot marker) written.
    enti: u64,
    /// Running CRC-32C after the last record written.
    crc: u32,
    /// Locked segments, oldest first; the last one is the write tail.
    segments: Vec<Segment>,
    /// Offset in the tail segment where the next record goes.
    tail_off: u64,
    segment_size: u64,
    /// Scratch buffer reused between writes.
    buf: Vec<u8>,
    /// Set after a failed write/sync; the file state is then unknown.
    poisoned: bool,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.dir)
            .field("last_index", &self.enti)
            .field("segments", &self.segments.len())
            .field("tail_off", &self.tail_off)
            .field("poisoned", &self.poisoned)
            .finish()
    }
}

fn is_empty_hard_state(hs: &HardState) -> bool {
    hs.term == 0 && hs.vote == 0 && hs.commit == 0
}

fn encode_pb(msg: &dyn protobuf::Message, what: &'static str) -> Result<Vec<u8>, WalError> {
    msg.write_to_bytes()
        .map_err(|source| WalError::Encode { what, source })
}

fn decode_pb<M: protobuf::Message>(
    data: Option<&[u8]>,
    what: &str,
    path: &Path,
    offset: u64,
) -> Result<M, WalError> {
    M::parse_from_bytes(data.unwrap_or(&[])).map_err(|e| WalError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason: format!("undecodable {what}: {e}"),
    })
}

/// `<dir>.tmp`, the staging directory used by [`Wal::create`].
fn staging_dir(dir: &Path) -> Result<PathBuf, WalError> {
    let Some(name) = dir.file_name() else {
        return Err(WalError::io(
            "resolve",
            dir,
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "WAL path has no final component",
            ),
        ));
    };
    let mut tmp = name.to_os_string();
    tmp.push(".tmp");
    Ok(parent_dir(dir).join(tmp))
}

impl Wal {
    /// True when `dir` holds at least one `*.wal` segment, i.e. this member
    /// was initialised before and must restart from its log.
    pub fn exists(dir: &Path) -> bool {
        match fs::read_dir(dir) {
            Ok(rd) => rd
                .flatten()
                .any(|e| e.file_name().to_str().is_some_and(|n| n.ends_with(".wal"))),
            Err(_) => false,
        }
    }

    /// Creates a new log in `dir` holding `metadata`. The first segment is
    /// built in `<dir>.tmp` and renamed into place, so a crash never leaves
    /// a half-initialised log behind.
    pub fn create(dir: &Path, metadata: &[u8]) -> Result<Wal, WalError> {
        Self::create_with_segment_size(dir, metadata, SEGMENT_SIZE_BYTES)
    }

    pub(crate) fn create_with_segment_size(
        dir: &Path,
        metadata: &[u8],
        segment_size: u64,
    ) -> Result<Wal, WalError> {
        if Self::exists(dir) {
            return Err(WalError::AlreadyExists(dir.to_path_buf()));
        }
        let tmp = staging_dir(dir)?;
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(|e| WalError::io("remove", &tmp, e))?;
        }
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&tmp)
            .map_err(|e| WalError::io("create directory", &tmp, e))?;

        let name = wal_name(0, 0);
        let tmp_path = tmp.join(&name);
        let file =
            open_locked(&tmp_path, true)?.ok_or_else(|| WalError::Locked(tmp_path.clone()))?;
        preallocate(&file, segment_size).map_err(|e| WalError::io("preallocate", &tmp_path, e))?;

        let mut buf = Vec::new();
        let mut crc = append_record(&mut buf, 0, CRC_TYPE, None)?;
        crc = append_record(&mut buf, crc, METADATA_TYPE, Some(metadata))?;
        let snap = SnapshotRecord { index: 0, term: 0 }.encode_to_vec();
        crc = append_record(&mut buf, crc, SNAPSHOT_TYPE, Some(&snap))?;
        file.write_all_at(&buf, 0)
            .map_err(|e| WalError::io("write", &tmp_path, e))?;
        file.sync_data()
            .map_err(|e| WalError::io("fdatasync", &tmp_path, e))?;

        if dir.exists() {
            fs::remove_dir_all(dir).map_err(|e| WalError::io("remove", dir, e))?;
        }
        fs::rename(&tmp, dir).map_err(|e| WalError::io("rename staging directory to", dir, e))?;
        fsync_dir(&parent_dir(dir))?;

        Ok(Wal {
            dir: dir.to_path_buf(),
            metadata: metadata.to_vec(),
            state: HardState::default(),
            enti: 0,
            crc,
            segments: vec![Segment {
                path: dir.join(&name),
                seq: 0,
                index: 0,
                file,
            }],
            tail_off: buf.len() as u64,
            segment_size,
            buf: Vec::new(),
            poisoned: false,
        })
    }

    /// Opens the log for appending and replays everything after `from`
    /// (the snapshot the state machine was restored from; default for none).
    /// A torn record at the very end of the last segment — a crash in the
    /// middle of a write — is cut off (a `.broken` copy is kept); any other
    /// damage is an error naming the file and offset.
    pub fn open(dir: &Path, from: WalSnapshot) -> Result<(Wal, WalContents), WalError> {
        Self::open_with_segment_size(dir, from, SEGMENT_SIZE_BYTES)
    }

    pub(crate) fn open_with_segment_size(
        dir: &Path,
        from: WalSnapshot,
        segment_size: u64,
    ) -> Result<(Wal, WalContents), WalError> {
        let names = select_segments(dir, from.index)?;
        let mut segments = Vec::with_capacity(names.len());
        for n in &names {
            let path = dir.join(&n.name);
            let file = open_locked(&path, false)?.ok_or_else(|| WalError::Locked(path.clone()))?;
            segments.push(Segment {
                path,
                seq: n.seq,
                index: n.index,
                file,
            });
        }

        let mut dec = Decoder::new(segments.iter().map(|s| s.path.clone()).collect());
        let mut metadata: Option<Vec<u8>> = None;
        let mut state = HardState::default();
        let mut entries: Vec<Entry> = Vec::new();
        let mut enti = 0u64;
        let mut matched = false;
        let mut torn: Option<(u64, String)> = None;

        loop {
            let d = match dec.next()? {
                Next::Record(d) => d,
                Next::End => break,
                Next::Torn { offset, reason } => {
                    torn = Some((offset, reason));
                    break;
                }
            };
            let path = dec.path(d.file);
            let data = d.rec.data.as_deref();
            match d.rec.rec_type {
                ENTRY_TYPE => {
                    let e: Entry = decode_pb(data, "entry", &path, d.offset)?;
                    enti = e.index;
                    if e.index > from.index {
                        // Position the entry would take in `entries`; a
                        // smaller index means raft truncated its log tail.
                        let pos = e.index - from.index - 1;
                        if pos > entries.len() as u64 {
                            return Err(WalError::EntryGap {
                                index: e.index,
                                last: from.index + entries.len() as u64,
                                path,
                                offset: d.offset,
                            });
                        }
                        entries.truncate(pos as usize);
                        entries.push(e);
                    }
                }
                STATE_TYPE => {
                    state = decode_pb(data, "hard state", &path, d.offset)?;
                }
                METADATA_TYPE => {
                    let m = data.unwrap_or(&[]);
                    match &metadata {
                        Some(prev) if prev.as_slice() != m => {
                            return Err(WalError::MetadataConflict {
                                path,
                                offset: d.offset,
                            });
                        }
                        Some(_) => {}
                        None => metadata = Some(m.to_vec()),
                    }
                }
                SNAPSHOT_TYPE => {
                    let s = SnapshotRecord::decode(data.unwrap_or(&[])).map_err(|e| {
                        WalError::Corrupt {
                            path: path.clone(),
                            offset: d.offset,
                            reason: format!("undecodable snapshot marker: {e}"),
                        }
                    })?;
                    if s.index == from.index {
                        if s.term != from.term {
                            return Err(WalError::SnapshotMismatch {
                                index: s.index,
                                wanted: from.term,
                                found: s.term,
                            });
                        }
                        matched = true;
                    }
                    enti = enti.max(s.index);
                }
                other => {
                    return Err(WalError::Corrupt {
                        path,
                        offset: d.offset,
                        reason: format!("unexpected record type {other}"),
                    });
                }
            }
        }

        if !matched {
            return Err(WalError::SnapshotNotFound {
                index: from.index,
                term: from.term,
            });
        }

        let Some(tail) = segments.last() else {
            return Err(WalError::FileNotFound {
                dir: dir.to_path_buf(),
                detail: "no segments".to_owned(),
            });
        };
        let tail_off = match torn {
            Some((offset, reason)) => {
                repair_tail(tail, offset, &reason)?;
                offset
            }
            None => {
                let off = dec.last_offset();
                zero_to_end(tail, off)?;
                off
            }
        };

        let metadata = metadata.unwrap_or_default();
        let wal = Wal {
            dir: dir.to_path_buf(),
            metadata: metadata.clone(),
            state: state.clone(),
            enti,
            crc: dec.crc(),
            segments,
            tail_off,
            segment_size,
            buf: Vec::new(),
            poisoned: false,
        };
        Ok((
            wal,
            WalContents {
                metadata,
                hard_state: state,
                entries,
            },
        ))
    }

    /// Appends `entries` and then `hard_state` (skipped when `None` or
    /// empty) and makes them durable with a single fdatasync — one sync per
    /// raft Ready is the group commit. When the tail segment has grown past
    /// the segment size a new segment is cut (which syncs the old tail and
    /// the new segment header instead).
    pub fn save(
        &mut self,
        hard_state: Option<&HardState>,
        entries: &[Entry],
    ) -> Result<(), WalError> {
        self.save_with(hard_state, entries, true)
    }

    /// Records a hard state whose only change is the commit index, without fdatasync (like
    /// etcd): the commit index can always be recovered from a quorum, but keeping it current in
    /// the page cache means a restart after a process crash knows what it had applied.
    pub fn save_commit(&mut self, hard_state: &HardState) -> Result<(), WalError> {
        self.save_with(Some(hard_state), &[], false)
    }

    fn save_with(
        &mut self,
        hard_state: Option<&HardState>,
        entries: &[Entry],
        must_sync: bool,
    ) -> Result<(), WalError> {
        self.check_usable()?;
        let hard_state = hard_state.filter(|h| !is_empty_hard_state(h));
        if hard_state.is_none() && entries.is_empty() {
            return Ok(());
        }
        // Encode everything first: encoding errors leave the log untouched.
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let mut crc = self.crc;
        let mut enti = self.enti;
        let encoded = (|| {
            for e in entries {
                let b = encode_pb(e, "entry")?;
                crc = append_record(&mut buf, crc, ENTRY_TYPE, Some(&b))?;
                enti = e.index;
            }
            if let Some(hs) = hard_state {
                let b = encode_pb(hs, "hard state")?;
                crc = append_record(&mut buf, crc, STATE_TYPE, Some(&b))?;
            }
            Ok::<(), WalError>(())
        })();
        if let Err(e) = encoded {
            self.buf = buf;
            return Err(e);
        }
        let r = self.write_tail(&buf);
        self.buf = buf;
        self.poison_on_err(r)?;
        self.crc = crc;
        self.enti = enti;
        if let Some(hs) = hard_state {
            self.state = hs.clone();
        }
        let r = if self.tail_off >= self.segment_size {
            self.cut()
        } else if must_sync {
            self.sync_tail()
        } else {
            Ok(())
        };
        self.poison_on_err(r)
    }

    /// Records that a raft snapshot at `snap` was persisted, so a later
    /// [`Wal::open`] can start from it; synced before returning.
    pub fn save_snapshot(&mut self, snap: WalSnapshot) -> Result<(), WalError> {
        self.check_usable()?;
        let data = SnapshotRecord {
            index: snap.index,
            term: snap.term,
        }
        .encode_to_vec();
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let crc = append_record(&mut buf, self.crc, SNAPSHOT_TYPE, Some(&data));
        let r = match crc {
            Ok(crc) => self.write_tail(&buf).map(|()| crc),
            Err(e) => Err(e),
        };
        self.buf = buf;
        let crc = self.poison_on_err(r)?;
        self.crc = crc;
        if self.enti < snap.index {
            self.enti = snap.index;
        }
        let r = self.sync_tail();
        self.poison_on_err(r)
    }

    /// Makes everything written so far durable (normally already the case
    /// after each call; provided for shutdown paths).
    pub fn sync(&mut self) -> Result<(), WalError> {
        self.check_usable()?;
        let r = self.sync_tail();
        self.poison_on_err(r)
    }

    /// Releases the locks on segments that only hold entries before the
    /// segment containing `index` (normally the index of a snapshot that
    /// was just saved), making them eligible for [`Wal::purge`]. The tail is
    /// never released.
    pub fn release_lock_to(&mut self, index: u64) -> Result<(), WalError> {
        if self.segments.is_empty() {
            return Ok(());
        }
        let keep_from = match self.segments.iter().position(|s| s.index >= index) {
            // The segment before the first one starting at/after `index`
            // may still hold `index` itself, so keep it too.
            Some(i) => i.saturating_sub(1),
            None => self.segments.len() - 1,
        };
        if keep_from == 0 {
            return Ok(());
        }
        // Dropping the files releases their locks.
        self.segments.drain(..keep_from);
        Ok(())
    }

    /// Deletes the oldest segments in `dir` while more than `keep_files`
    /// remain, stopping at the first one still locked by a live `Wal`.
    /// Returns the removed paths. etcd keeps 5 by default.
    pub fn purge(dir: &Path, keep_files: usize) -> Result<Vec<PathBuf>, WalError> {
        let names = read_wal_names(dir)?;
        let mut removed = Vec::new();
        for n in &names {
            if names.len() - removed.len() <= keep_files {
                break;
            }
            let path = dir.join(&n.name);
            let Some(lock) = open_locked(&path, false)? else {
                break;
            };
            fs::remove_file(&path).map_err(|e| WalError::io("remove", &path, e))?;
            drop(lock);
            tracing::info!(path = %path.display(), "purged WAL segment");
            removed.push(path);
        }
        Ok(removed)
    }

    /// Index of the last entry written or recovered (or of a later snapshot
    /// marker); names the next segment and lets callers sanity-check raft.
    pub fn last_index(&self) -> u64 {
        self.enti
    }

    /// The directory this log lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Snapshot markers in the whole log whose index is covered by the last
    /// committed hard state; used to pick a `.snap` file that the WAL can
    /// actually replay from (etcd's ValidSnapshotEntries). Read-only: takes
    /// no locks and tolerates a torn tail.
    pub fn valid_snapshot_entries(dir: &Path) -> Result<Vec<WalSnapshot>, WalError> {
        let names = read_wal_names(dir)?;
        if names.is_empty() {
            return Err(WalError::FileNotFound {
                dir: dir.to_path_buf(),
                detail: "no *.wal files".to_owned(),
            });
        }
        let mut dec = Decoder::new(names.iter().map(|n| dir.join(&n.name)).collect());
        let mut snaps = Vec::new();
        let mut state = HardState::default();
        while let Next::Record(d) = dec.next()? {
            let path = dec.path(d.file);
            match d.rec.rec_type {
                SNAPSHOT_TYPE => {
                    let s = SnapshotRecord::decode(d.rec.data.as_deref().unwrap_or(&[])).map_err(
                        |e| WalError::Corrupt {
                            path,
                            offset: d.offset,
                            reason: format!("undecodable snapshot marker: {e}"),
                        },
                    )?;
                    snaps.push(WalSnapshot {
                        index: s.index,
                        term: s.term,
                    });
                }
                STATE_TYPE => {
                    state = decode_pb(d.rec.data.as_deref(), "hard state", &path, d.offset)?;
                }
                _ => {}
            }
        }
        snaps.retain(|s| s.index <= state.commit);
        Ok(snaps)
    }

    fn check_usable(&self) -> Result<(), WalError> {
        if self.poisoned {
            Err(WalError::Poisoned)
        } else {
            Ok(())
        }
    }

    fn poison_on_err<T>(&mut self, r: Result<T, WalError>) -> Result<T, WalError> {
        if r.is_err() {
            self.poisoned = true;
        }
        r
    }

    fn tail(&self) -> Result<&Segment, WalError> {
        self.segments.last().ok_or_else(|| WalError::FileNotFound {
            dir: self.dir.clone(),
            detail: "no tail segment".to_owned(),
        })
    }

    /// Writes already-framed records at the tail offset.
    fn write_tail(&mut self, buf: &[u8]) -> Result<(), WalError> {
        let tail = self.tail()?;
        tail.file
            .write_all_at(buf, self.tail_off)
            .map_err(|e| WalError::io("write", &tail.path, e))?;
        self.tail_off += buf.len() as u64;
        Ok(())
    }

    fn sync_tail(&self) -> Result<(), WalError> {
        let tail = self.tail()?;
        let start = std::time::Instant::now();
        tail.file
            .sync_data()
            .map_err(|e| WalError::io("fdatasync", &tail.path, e))?;
        let took = start.elapsed();
        if took > std::time::Duration::from_secs(1) {
            tracing::warn!(?took, path = %tail.path.display(), "slow WAL fdatasync");
        }
        Ok(())
    }

    /// Closes the full tail segment and starts the next one. The new file
    /// is prepared under a temporary name (crc, metadata and hard-state
    /// header records, synced) and only then renamed into place, so a crash
    /// never leaves a named segment without its header.
    fn cut(&mut self) -> Result<(), WalError> {
        let (seq, old_path) = {
            let tail = self.tail()?;
            tail.file
                .set_len(self.tail_off)
                .map_err(|e| WalError::io("truncate", &tail.path, e))?;
            (tail.seq, tail.path.clone())
        };
        self.sync_tail()?;

        let tmp = self.dir.join(SEGMENT_TMP_NAME);
        match fs::remove_file(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(WalError::io("remove", &tmp, e)),
        }
        let file = open_locked(&tmp, true)?.ok_or_else(|| WalError::Locked(tmp.clone()))?;
        preallocate(&file, self.segment_size).map_err(|e| WalError::io("preallocate", &tmp, e))?;

        let mut buf = Vec::new();
        let mut crc = append_record(&mut buf, self.crc, CRC_TYPE, None)?;
        crc = append_record(&mut buf, crc, METADATA_TYPE, Some(&self.metadata))?;
        if !is_empty_hard_state(&self.state) {
            let b = encode_pb(&self.state, "hard state")?;
            crc = append_record(&mut buf, crc, STATE_TYPE, Some(&b))?;
        }
        file.write_all_at(&buf, 0)
            .map_err(|e| WalError::io("write", &tmp, e))?;
        file.sync_data()
            .map_err(|e| WalError::io("fdatasync", &tmp, e))?;

        let index = self.enti.saturating_add(1);
        let next_seq = seq.saturating_add(1);
        let path = self.dir.join(wal_name(next_seq, index));
        fs::rename(&tmp, &path).map_err(|e| WalError::io("rename segment to", &path, e))?;
        fsync_dir(&self.dir)?;

        self.segments.push(Segment {
            path: path.clone(),
            seq: next_seq,
            index,
            file,
        });
        self.tail_off = buf.len() as u64;
        self.crc = crc;
        tracing::info!(path = %path.display(), previous = %old_path.display(), "created a new WAL segment");
        Ok(())
    }
}

/// Picks the segments to replay when starting at `index`: the last segment
/// whose first index is <= `index`, and every later one (which must have
/// consecutive sequence numbers).
fn select_segments(dir: &Path, index: u64) -> Result<Vec<SegmentName>, WalError> {
    let names = read_wal_names(dir)?;
    if names.is_empty() {
        return Err(WalError::FileNotFound {
            dir: dir.to_path_buf(),
            detail: "no *.wal files".to_owned(),
        });
    }
    let Some(start) = names.iter().rposition(|n| n.index <= index) else {
        return Err(WalError::FileNotFound {
            dir: dir.to_path_buf(),
            detail: format!("no segment covers index {index}"),
        });
    };
    let selected = names[start..].to_vec();
    for w in selected.windows(2) {
        if w[1].seq != w[0].seq.wrapping_add(1) {
            return Err(WalError::FileNotFound {
                dir: dir.to_path_buf(),
                detail: format!(
                    "segment sequence jumps from {} to {} (missing segment)",
                    w[0].name, w[1].name
                ),
            });
        }
    }
    Ok(selected)
}

/// Clears whatever follows the last valid record in the tail segment and
/// keeps its blocks allocated, so new records are appended onto zeros.
fn zero_to_end(seg: &Segment, off: u64) -> Result<(), WalError> {
    let len = seg
        .file
        .metadata()
        .map_err(|e| WalError::io("stat", &seg.path, e))?
        .len();
    if len > off {
        seg.file
            .set_len(off)
            .map_err(|e| WalError::io("truncate", &seg.path, e))?;
        preallocate(&seg.file, len).map_err(|e| WalError::io("preallocate", &seg.path, e))?;
    }
    Ok(())
}

/// Cuts a torn record (and anything after it) off the tail segment, keeping
/// a `<name>.broken` copy of the original for inspection.
fn repair_tail(seg: &Segment, offset: u64, reason: &str) -> Result<(), WalError> {
    let mut broken = seg.path.as_os_str().to_os_string();
    broken.push(".broken");
    let broken = PathBuf::from(broken);
    tracing::warn!(
        path = %seg.path.display(),
        offset,
        reason,
        backup = %broken.display(),
        "WAL ends with a partially written record; truncating at the last valid record"
    );
    fs::copy(&seg.path, &broken).map_err(|e| WalError::io("back up to", &broken, e))?;
    zero_to_end(seg, offset)?;
    seg.file
        .sync_all()
        .map_err(|e| WalError::io("fsync", &seg.path, e))?;
    Ok(())
}
