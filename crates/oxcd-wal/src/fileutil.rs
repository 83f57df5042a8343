//! Thin wrappers over the file-system primitives the WAL needs: segment
//! naming, advisory locks, preallocation and directory fsync.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use crate::WalError;

/// Formats a segment name: `%016x-%016x.wal` of (sequence, first index).
pub(crate) fn wal_name(seq: u64, index: u64) -> String {
    format!("{seq:016x}-{index:016x}.wal")
}

/// Parses a segment name produced by [`wal_name`]; anything else is `None`.
pub(crate) fn parse_wal_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(".wal")?;
    let (seq, index) = stem.split_once('-')?;
    Some((parse_hex16(seq)?, parse_hex16(index)?))
}

/// Parses exactly 16 hex digits (no sign, no prefix).
fn parse_hex16(s: &str) -> Option<u64> {
    if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

/// One segment file found on disk.
#[derive(Debug, Clone)]
pub(crate) struct SegmentName {
    /// File name inside the WAL directory.
    pub name: String,
    /// Sequence number (first half of the name).
    pub seq: u64,
    /// Raft index of the first entry the segment may contain.
    pub index: u64,
}

/// Lists the segments in `dir`, sorted by name (equivalently by sequence).
/// Unknown files are ignored with a warning, except leftover `*.tmp` files.
pub(crate) fn read_wal_names(dir: &Path) -> Result<Vec<SegmentName>, WalError> {
    let rd = fs::read_dir(dir).map_err(|e| WalError::io("read directory", dir, e))?;
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| WalError::io("read directory", dir, e))?;
        let name = ent.file_name();
        let Some(name) = name.to_str() else {
            tracing::warn!(dir = %dir.display(), file = ?ent.file_name(), "ignored file in WAL directory");
            continue;
        };
        match parse_wal_name(name) {
            Some((seq, index)) => out.push(SegmentName {
                name: name.to_owned(),
                seq,
                index,
            }),
            None => {
                if !name.ends_with(".tmp") {
                    tracing::warn!(dir = %dir.display(), file = name, "ignored file in WAL directory");
                }
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Opens `path` read-write and takes an exclusive, non-blocking advisory lock
/// on it. `Ok(None)` means someone else holds the lock.
pub(crate) fn open_locked(path: &Path, create: bool) -> Result<Option<File>, WalError> {
    use std::os::unix::fs::OpenOptionsExt;
    // 0600 like etcd: the log holds every key and value of the cluster.
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| WalError::io("open", path, e))?;
    match try_lock(&file) {
        Ok(true) => Ok(Some(file)),
        Ok(false) => Ok(None),
        Err(e) => Err(WalError::io("lock", path, e)),
    }
}

/// Takes an exclusive lock on the whole file. Uses open-file-description
/// locks on Linux (what etcd uses, so the two exclude each other), falling
/// back to `flock` where those are unsupported. Both kinds belong to the
/// open file, so a second `open` in the same process also conflicts.
fn try_lock(file: &File) -> io::Result<bool> {
    use std::os::unix::io::AsRawFd;
    let fd = file.as_raw_fd();
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `flock` is a plain C struct for which all-zero is valid.
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = libc::F_WRLCK as libc::c_short;
        fl.l_whence = libc::SEEK_SET as libc::c_short;
        fl.l_start = 0;
        fl.l_len = 0;
        // SAFETY: fd is a valid open descriptor owned by `file`; `fl` lives
        // for the duration of the call.
        let r = unsafe { libc::fcntl(fd, libc::F_OFD_SETLK, &mut fl as *mut libc::flock) };
        if r == 0 {
            return Ok(true);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EACCES) => return Ok(false),
            Some(libc::EINVAL) => {} // kernel without OFD locks: use flock
            _ => return Err(err),
        }
    }
    // SAFETY: fd is a valid open descriptor owned by `file`.
    let r = unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(err)
    }
}

/// Ensures `file` has at least `size` bytes allocated and is at least that
/// long, so later appends do not have to allocate blocks (and the unwritten
/// tail reads back as zeros, which the reader treats as end of log).
pub(crate) fn preallocate(file: &File, size: u64) -> io::Result<()> {
    if size == 0 {
        return Ok(());
    }
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::io::AsRawFd;
        let Ok(len) = libc::off_t::try_from(size) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "preallocation size too large",
            ));
        };
        // SAFETY: valid fd owned by `file`; mode 0 only allocates/extends.
        let r = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) };
        if r == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EOPNOTSUPP) | Some(libc::EINTR) => {}
            _ => return Err(err),
        }
    }
    if file.metadata()?.len() < size {
        file.set_len(size)?;
    }
    Ok(())
}

/// fsyncs a directory so renames and creations inside it are durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<(), WalError> {
    let f = File::open(dir).map_err(|e| WalError::io("open directory", dir, e))?;
    f.sync_all()
        .map_err(|e| WalError::io("fsync directory", dir, e))
}

/// The parent of `dir`, or `.` for a bare relative name.
pub(crate) fn parent_dir(dir: &Path) -> PathBuf {
    match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Reads until `buf` is full or EOF; returns the number of bytes read.
pub(crate) fn read_full(r: &mut impl io::Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_roundtrip() {
        let n = wal_name(3, 0x1a);
        assert_eq!(n, "0000000000000003-000000000000001a.wal");
        assert_eq!(parse_wal_name(&n), Some((3, 0x1a)));
        assert_eq!(parse_wal_name("0.tmp"), None);
        assert_eq!(
            parse_wal_name("+000000000000003-000000000000001a.wal"),
            None
        );
        assert_eq!(
            parse_wal_name("0000000000000003-000000000000001a.wal.broken"),
            None
        );
    }

    #[test]
    fn lock_excludes_second_open() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.wal");
        let a = open_locked(&p, true).unwrap();
        assert!(a.is_some());
        assert!(open_locked(&p, false).unwrap().is_none());
        drop(a);
        assert!(open_locked(&p, false).unwrap().is_some());
    }
}
