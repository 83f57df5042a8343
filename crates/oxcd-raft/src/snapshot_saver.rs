//! Writing snapshot-point files off the raft thread.
//!
//! A snapshot point writes a `.snap` file (create, write, fsync, rename, directory fsync) and
//! then purges old WAL segments and snapshot files. On the raft thread that took 1.6–5.5 ms
//! under load, every 10,000 entries, on every member at about the same index: a stall of every
//! commit in the cluster. The saver thread does the file work and frees the entries compacted
//! out of the in-memory log; the raft thread writes the WAL snapshot record (which must follow
//! the durable `.snap` file) and releases the segments before it.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use raft::eraftpb::{Entry, Snapshot, SnapshotMetadata};

enum Job {
    Save(SnapshotMetadata),
    Purge,
    /// Entries compacted out of the in-memory log, freed here rather than on the raft thread.
    Free(VecDeque<Entry>),
}

/// A `.snap` file the saver made durable, or why it could not.
pub(crate) struct Saved {
    pub meta: SnapshotMetadata,
    pub result: Result<(), String>,
    pub took: Duration,
}

pub(crate) struct SnapshotSaver {
    jobs: Option<Sender<Job>>,
    done: Receiver<Saved>,
    thread: Option<JoinHandle<()>>,
}

impl SnapshotSaver {
    /// `None` when the thread cannot start: the raft thread then writes the files itself.
    pub(crate) fn start(
        snap_dir: PathBuf,
        wal_dir: PathBuf,
        keep_wal_files: usize,
        keep_snap_files: usize,
    ) -> Option<SnapshotSaver> {
        let (jobs, job_rx) = channel::<Job>();
        let (done_tx, done) = channel();
        let thread = std::thread::Builder::new()
            .name("snap-save".into())
            .spawn(move || {
                let snapshotter = oxcd_wal::Snapshotter::new(&snap_dir);
                for job in job_rx {
                    match job {
                        Job::Save(meta) => {
                            let started = Instant::now();
                            let result = snapshotter
                                .save(&snapshot_point(&meta))
                                .map_err(|e| format!("failed to save the snapshot file: {e}"));
                            let saved = Saved {
                                meta,
                                result,
                                took: started.elapsed(),
                            };
                            if done_tx.send(saved).is_err() {
                                return;
                            }
                        }
                        Job::Free(entries) => drop(entries),
                        Job::Purge => {
                            purge_old_files(&wal_dir, &snapshotter, keep_wal_files, keep_snap_files)
                        }
                    }
                }
            })
            .ok()?;
        Some(SnapshotSaver {
            jobs: Some(jobs),
            done,
            thread: Some(thread),
        })
    }

    /// Queues the `.snap` file of `meta`; false when the saver has stopped.
    pub(crate) fn save(&self, meta: SnapshotMetadata) -> bool {
        self.jobs
            .as_ref()
            .is_some_and(|j| j.send(Job::Save(meta)).is_ok())
    }

    pub(crate) fn free(&self, entries: VecDeque<Entry>) {
        if let Some(j) = &self.jobs {
            let _ = j.send(Job::Free(entries));
        }
    }

    pub(crate) fn purge(&self) {
        if let Some(j) = &self.jobs {
            let _ = j.send(Job::Purge);
        }
    }

    /// The next file made durable since the last call, if any.
    pub(crate) fn try_saved(&self) -> Option<Saved> {
        self.done.try_recv().ok()
    }
}

/// The raft snapshot a snapshot point's `.snap` file holds: only its metadata.
pub(crate) fn snapshot_point(meta: &SnapshotMetadata) -> Snapshot {
    let mut snap = Snapshot::default();
    snap.set_metadata(meta.clone());
    snap
}

/// Deletes the WAL segments and `.snap` files beyond those kept; failures are only logged (the
/// next snapshot point tries again).
pub(crate) fn purge_old_files(
    wal_dir: &Path,
    snapshotter: &oxcd_wal::Snapshotter,
    keep_wal_files: usize,
    keep_snap_files: usize,
) {
    if let Err(e) = oxcd_wal::Wal::purge(wal_dir, keep_wal_files) {
        tracing::warn!(error = %e, "failed to purge old WAL files");
    }
    if let Err(e) = snapshotter.purge(keep_snap_files) {
        tracing::warn!(error = %e, "failed to purge old snapshot files");
    }
}

impl Drop for SnapshotSaver {
    fn drop(&mut self) {
        // Closing the queue ends the thread once it has finished what was queued.
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_in_order_reports_each_file_and_purges_to_the_kept_count() {
        let dir = tempfile::tempdir().unwrap();
        let (snap_dir, wal_dir) = (dir.path().join("snap"), dir.path().join("wal"));
        std::fs::create_dir_all(&wal_dir).unwrap();
        let saver = SnapshotSaver::start(snap_dir.clone(), wal_dir, 5, 2).unwrap();
        for index in [10, 20, 30] {
            let meta = SnapshotMetadata {
                index,
                term: 2,
                ..Default::default()
            };
            assert!(saver.save(meta));
        }
        let mut saved = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while saved.len() < 3 {
            assert!(Instant::now() < deadline, "the saver did not report");
            match saver.try_saved() {
                Some(s) => {
                    assert!(s.result.is_ok());
                    saved.push(s.meta.index);
                }
                None => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        assert_eq!(saved, [10, 20, 30]);
        saver.purge();
        drop(saver); // waits for the queued purge
        let mut names: Vec<String> = std::fs::read_dir(&snap_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "0000000000000002-0000000000000014.snap",
                "0000000000000002-000000000000001e.snap"
            ]
        );
    }
}
