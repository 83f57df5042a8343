//! What a data directory holds (facts §3.1, §3.2).

use std::path::Path;

use crate::config::Config;
use crate::error::ConfigError;
use crate::Diag;

/// What the data directory says the process was before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataDirKind {
    /// Missing or without `member/` and `proxy/`.
    Empty,
    /// Has `member/`.
    Member,
    /// Has `proxy/`.
    Proxy,
}

/// Classifies `dir` by its top-level entries. Other entries give warnings; `member` and
/// `proxy` together are an error.
pub fn classify_data_dir(dir: &Path) -> Result<(DataDirKind, Vec<Diag>), ConfigError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok((DataDirKind::Empty, Vec::new()))
        }
        Err(_) => return Err(ConfigError::DataDirList(dir.display().to_string())),
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let (mut member, mut proxy) = (false, false);
    let mut diags = Vec::new();
    for n in names {
        match n.as_str() {
            "member" => member = true,
            "proxy" => proxy = true,
            _ => diags.push(Diag::log(
                'W',
                "etcdmain",
                format!(
                    "found invalid file/dir {n} under data dir {} (Ignore this if you are upgrading etcd)",
                    dir.display()
                ),
            )),
        }
    }
    let kind = match (member, proxy) {
        (true, true) => return Err(ConfigError::InvalidDataDir),
        (true, false) => DataDirKind::Member,
        (false, true) => DataDirKind::Proxy,
        (false, false) => DataDirKind::Empty,
    };
    Ok((kind, diags))
}

/// True when `dir` holds at least one `*.wal` file.
pub fn has_wal_files(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|rd| {
        rd.filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().ends_with(".wal"))
    })
}

/// A member is initialized when its WAL directory (`--wal-dir` or `<data-dir>/member/wal`)
/// holds a `*.wal` file; then the `--initial-cluster*` and discovery settings are not used.
pub fn member_initialized(cfg: &Config) -> bool {
    has_wal_files(&cfg.wal_dir_path())
}
