//! The current state machine. It is swapped whole when a snapshot from the leader is installed,
//! so readers take a cheap `Arc` of the store they started with and never see a mix.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use oxcd_mvcc::{KvStore, StoreOptions};
use parking_lot::RwLock;

#[derive(Clone)]
pub struct StoreHandle {
    current: Arc<RwLock<Arc<KvStore>>>,
    path: PathBuf,
    options: StoreOptions,
}

impl StoreHandle {
    /// `quota_bytes`: `--quota-backend-bytes` (see [`StoreOptions::quota_bytes`]).
    pub fn open(path: &Path, quota_bytes: u64) -> Result<Self, String> {
        let options = StoreOptions {
            quota_bytes,
            // The applier's durable commits (every 250 ms, at this member's own phase) hand the
            // overlays over; the age trigger is only a fallback, so it must not line the
            // members' flushes up again.
            flush_age: crate::apply::DURABLE_COMMIT_INTERVAL * 2,
            ..StoreOptions::default()
        };
        let store = KvStore::open(path, options.clone())
            .map_err(|e| format!("cannot open the backend database {}: {e}", path.display()))?;
        Ok(StoreHandle {
            current: Arc::new(RwLock::new(Arc::new(store))),
            path: path.to_path_buf(),
            options,
        })
    }

    pub fn get(&self) -> Arc<KvStore> {
        self.current.read().clone()
    }

    /// Moves a received snapshot database into place and opens it.
    pub fn replace_from(&self, file: &Path) -> Result<(), String> {
        std::fs::rename(file, &self.path).map_err(|e| {
            format!(
                "cannot move snapshot database {} into place: {e}",
                file.display()
            )
        })?;
        let store = KvStore::open(&self.path, self.options.clone())
            .map_err(|e| format!("cannot open the snapshot database: {e}"))?;
        *self.current.write() = Arc::new(store);
        Ok(())
    }
}
