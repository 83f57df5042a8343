//! Raft snapshot files (`member/snap/*.snap`).

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use prost::Message as _;
use protobuf::Message as _;
use raft_proto::eraftpb::Snapshot;

use crate::fileutil::fsync_dir;
use crate::record::SnapFile;
use crate::{WalError, WalSnapshot};

const SNAP_SUFFIX: &str = ".snap";

/// Reads and writes raft snapshot files in one directory. Each file is named
/// `%016x-%016x.snap` (term, index) and holds a snappb.Snapshot envelope
/// whose `data` is the marshalled raft Snapshot and `crc` its CRC-32C.
#[derive(Debug, Clone)]
pub struct Snapshotter {
    dir: PathBuf,
}

impl Snapshotter {
    /// Creates a snapshotter for `dir` (created lazily on first save).
    pub fn new(dir: &Path) -> Self {
        Snapshotter {
            dir: dir.to_path_buf(),
        }
    }

    /// The directory the snapshot files live in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Durably writes `snap` (ignored when its metadata index is 0, i.e. the
    /// empty snapshot). Written to a temporary name, fsynced and renamed, so
    /// a crash never leaves a truncated `.snap` behind.
    pub fn save(&self, snap: &Snapshot) -> Result<(), WalError> {
        let meta = snap.get_metadata();
        if meta.index == 0 {
            return Ok(());
        }
        let name = format!("{:016x}-{:016x}{SNAP_SUFFIX}", meta.term, meta.index);
        let data = snap.write_to_bytes().map_err(|source| WalError::Encode {
            what: "snapshot",
            source,
        })?;
        let body = SnapFile {
            crc: crc32c::crc32c(&data),
            data: Some(data),
        }
        .encode_to_vec();

        fs::create_dir_all(&self.dir)
            .map_err(|e| WalError::io("create directory", &self.dir, e))?;
        let path = self.dir.join(&name);
        let tmp = self.dir.join(format!("{name}.tmp"));
        let written = (|| {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o666)
                .open(&tmp)
                .map_err(|e| WalError::io("create", &tmp, e))?;
            f.write_all(&body)
                .map_err(|e| WalError::io("write", &tmp, e))?;
            f.sync_all().map_err(|e| WalError::io("fsync", &tmp, e))?;
            fs::rename(&tmp, &path).map_err(|e| WalError::io("rename snapshot to", &path, e))?;
            fsync_dir(&self.dir)
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written
    }

    /// Loads the newest readable snapshot. Unreadable or corrupt files are
    /// renamed to `<name>.broken` and skipped, falling back to older ones.
    /// `Ok(None)` when there is no usable snapshot (or no directory).
    pub fn load_newest(&self) -> Result<Option<Snapshot>, WalError> {
        self.load_matching(|_| true)
    }

    /// Like [`Snapshotter::load_newest`], but only accepts a snapshot whose
    /// (index, term) appears in `wal_snaps` (see
    /// [`crate::Wal::valid_snapshot_entries`]), so the WAL can be replayed
    /// from it even if a newer `.snap` was written without its WAL marker.
    pub fn load_newest_available(
        &self,
        wal_snaps: &[WalSnapshot],
    ) -> Result<Option<Snapshot>, WalError> {
        self.load_matching(|s| {
            let m = s.get_metadata();
            wal_snaps
                .iter()
                .any(|w| w.index == m.index && w.term == m.term)
        })
    }

    fn load_matching(
        &self,
        accept: impl Fn(&Snapshot) -> bool,
    ) -> Result<Option<Snapshot>, WalError> {
        let mut names = self.snap_names()?;
        names.reverse();
        for name in names {
            let path = self.dir.join(&name);
            match read_snap(&path) {
                Ok(s) if accept(&s) => return Ok(Some(s)),
                Ok(_) => {}
                Err(reason) => {
                    let mut broken = path.as_os_str().to_os_string();
                    broken.push(".broken");
                    let broken = PathBuf::from(broken);
                    tracing::warn!(path = %path.display(), %reason, "cannot read snapshot file; renaming it to .broken");
                    if let Err(e) = fs::rename(&path, &broken) {
                        tracing::warn!(path = %path.display(), error = %e, "cannot rename broken snapshot file");
                    }
                }
            }
        }
        Ok(None)
    }

    /// Deletes the oldest `.snap` files so that at most `keep` remain
    /// (etcd keeps 5 by default), plus temporaries left by interrupted saves.
    pub fn purge(&self, keep: usize) -> Result<(), WalError> {
        self.remove_leftover_temporaries()?;
        let names = self.snap_names()?;
        let excess = names.len().saturating_sub(keep);
        for name in names.iter().take(excess) {
            let path = self.dir.join(name);
            fs::remove_file(&path).map_err(|e| WalError::io("remove", &path, e))?;
            tracing::info!(path = %path.display(), "purged snapshot file");
        }
        Ok(())
    }

    fn remove_leftover_temporaries(&self) -> Result<(), WalError> {
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(WalError::io("read directory", &self.dir, e)),
        };
        for ent in rd {
            let ent = ent.map_err(|e| WalError::io("read directory", &self.dir, e))?;
            let is_tmp = ent
                .file_name()
                .to_str()
                .is_some_and(|n| n.ends_with(".snap.tmp"));
            if is_tmp {
                let path = ent.path();
                fs::remove_file(&path).map_err(|e| WalError::io("remove", &path, e))?;
            }
        }
        Ok(())
    }

    /// `*.snap` file names, oldest first (names sort by term, then index).
    fn snap_names(&self) -> Result<Vec<String>, WalError> {
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(WalError::io("read directory", &self.dir, e)),
        };
        let mut names = Vec::new();
        for ent in rd {
            let ent = ent.map_err(|e| WalError::io("read directory", &self.dir, e))?;
            if let Some(n) = ent.file_name().to_str() {
                if n.ends_with(SNAP_SUFFIX) {
                    names.push(n.to_owned());
                }
            }
        }
        names.sort();
        Ok(names)
    }
}

/// Reads and verifies one snapshot file; the error is a description for logs.
fn read_snap(path: &Path) -> Result<Snapshot, String> {
    let b = fs::read(path).map_err(|e| format!("read failed: {e}"))?;
    if b.is_empty() {
        return Err("empty file".to_owned());
    }
    let env = SnapFile::decode(b.as_slice()).map_err(|e| format!("undecodable envelope: {e}"))?;
    let data = env.data.unwrap_or_default();
    if data.is_empty() || env.crc == 0 {
        return Err("empty snapshot data".to_owned());
    }
    let crc = crc32c::crc32c(&data);
    if crc != env.crc {
        return Err(format!(
            "crc mismatch (stored {:#010x}, computed {crc:#010x})",
            env.crc
        ));
    }
    Snapshot::parse_from_bytes(&data).map_err(|e| format!("undecodable raft snapshot: {e}"))
}
