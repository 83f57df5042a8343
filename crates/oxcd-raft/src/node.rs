//! The raft thread: owns the `RawNode`, the WAL and the in-memory log, and runs raft-rs's Ready
//! loop in the order its documentation prescribes.
//!
//! Everything else talks to it through a bounded command queue. Proposals that queue up while
//! the thread is busy (usually in fdatasync) are drained together and handed to raft as one
//! `MsgPropose`, so a burst of writes costs one WAL sync: this is the group commit. Committed
//! entries go to the applier on another thread; this thread never waits for the state machine
//! except through the bounded apply queue, which is the backpressure.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use raft::eraftpb::{
    ConfChange, ConfState, Entry, EntryType, HardState, Message, MessageType, Snapshot,
    SnapshotMetadata,
};
use raft::{RawNode, ReadState, SnapshotStatus, StateRole};
use tokio::sync::oneshot;

use crate::log_store::LogStore;
use crate::snapshot_saver::{purge_old_files, snapshot_point, SnapshotSaver};
use crate::RaftError;

/// How many commands the raft thread takes per loop turn before it processes a Ready.
const MAX_COMMANDS_PER_TURN: usize = 4096;
/// WAL segments and snapshot files kept after a purge.
const KEEP_WAL_FILES: usize = 5;
const KEEP_SNAP_FILES: usize = 5;

pub struct NodeSettings {
    pub id: u64,
    pub election_tick: usize,
    pub heartbeat_tick: usize,
    pub tick_interval: Duration,
    pub pre_vote: bool,
    /// The index up to which entries have been handed to the state machine before; raft will
    /// deliver committed entries after it again.
    pub applied: u64,
    pub wal_dir: PathBuf,
    pub snap_dir: PathBuf,
}

/// What the raft thread hands to the rest of the server. Implementations must not block for
/// long, except `committed`, whose blocking throttles raft when the applier falls behind.
pub trait NodeEvents: Send + 'static {
    /// Messages to peers. Losing some is fine: raft retries.
    fn send(&mut self, msgs: Vec<Message>);
    /// Committed entries, in order, optionally preceded by a snapshot to install first.
    fn committed(&mut self, snapshot: Option<Snapshot>, entries: Vec<Entry>);
    fn read_states(&mut self, states: Vec<ReadState>);
    fn leader_changed(&mut self, leader: u64, term: u64, role: StateRole);
    /// Proposals raft refused (no leader, or leadership in transfer).
    fn proposals_dropped(&mut self, ids: Vec<u64>);
    /// The node cannot go on (WAL write failed): the process must stop.
    fn fatal(&mut self, err: String);
}

pub enum Command {
    Propose {
        id: u64,
        data: Vec<u8>,
    },
    /// A configuration change already encoded (etcd's `raftpb.ConfChange` numbering); the
    /// entry is appended as `EntryConfChange`.
    ProposeConfChange {
        id: u64,
        data: Vec<u8>,
    },
    ReadIndex {
        ctx: Vec<u8>,
    },
    Step(Message),
    /// Applies a committed configuration change to raft's view of the cluster.
    ApplyConfChange {
        cc: ConfChange,
        reply: oneshot::Sender<Result<ConfState, RaftError>>,
    },
    /// The state machine is durable up to `meta.index`: take a snapshot point there, compact the
    /// in-memory log and release WAL segments.
    SnapshotPoint {
        meta: SnapshotMetadata,
    },
    ReportUnreachable(u64),
    ReportSnapshot {
        to: u64,
        failed: bool,
    },
    TransferLeader(u64),
    /// The replication progress (matched index) of a member, known only on the leader.
    Progress {
        id: u64,
        reply: oneshot::Sender<Option<u64>>,
    },
    Stop,
}

/// Lock-free view of the raft state for status endpoints and request routing.
#[derive(Default)]
pub struct NodeStatus {
    pub leader: AtomicU64,
    pub term: AtomicU64,
    pub committed: AtomicU64,
    pub last_index: AtomicU64,
    /// 1 while this member is the leader.
    pub is_leader: AtomicU64,
}

impl NodeStatus {
    pub fn leader(&self) -> u64 {
        self.leader.load(Ordering::Acquire)
    }
    pub fn term(&self) -> u64 {
        self.term.load(Ordering::Acquire)
    }
    pub fn committed(&self) -> u64 {
        self.committed.load(Ordering::Acquire)
    }
    pub fn last_index(&self) -> u64 {
        self.last_index.load(Ordering::Acquire)
    }
    pub fn is_leader(&self) -> bool {
        self.is_leader.load(Ordering::Acquire) == 1
    }
}

/// The sending side of the raft thread's queue.
#[derive(Clone)]
pub struct RaftHandle {
    tx: SyncSender<Command>,
    pub status: Arc<NodeStatus>,
}

impl RaftHandle {
    /// Queues a command without blocking. A full queue means the node is overloaded.
    pub fn try_send(&self, cmd: Command) -> Result<(), RaftError> {
        match self.tx.try_send(cmd) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(RaftError::Busy),
            Err(TrySendError::Disconnected(_)) => Err(RaftError::Stopped),
        }
    }

    /// The matched log index of member `id`, when this member leads; `None` otherwise.
    pub async fn progress(&self, id: u64) -> Result<Option<u64>, RaftError> {
        let (reply, rx) = oneshot::channel();
        self.try_send(Command::Progress { id, reply })?;
        rx.await.map_err(|_| RaftError::Stopped)
    }

    /// Queues a command, waiting for room; only for threads that may block.
    pub fn send_blocking(&self, cmd: Command) -> Result<(), RaftError> {
        self.tx.send(cmd).map_err(|_| RaftError::Stopped)
    }
}

pub struct RaftNode<E: NodeEvents> {
    raw: RawNode<LogStore>,
    wal: oxcd_wal::Wal,
    snapshotter: oxcd_wal::Snapshotter,
    settings: NodeSettings,
    events: E,
    status: Arc<NodeStatus>,
    rx: Receiver<Command>,
    last_hard_state: HardState,
    /// Writes snapshot-point files off this thread (`None`: this thread writes them).
    saver: Option<SnapshotSaver>,
}

impl<E: NodeEvents> RaftNode<E> {
    /// Builds the node and starts its thread.
    pub fn spawn(
        settings: NodeSettings,
        log: LogStore,
        wal: oxcd_wal::Wal,
        events: E,
        queue_capacity: usize,
    ) -> Result<(RaftHandle, std::thread::JoinHandle<()>), RaftError> {
        let config = raft::Config {
            id: settings.id,
            election_tick: settings.election_tick,
            heartbeat_tick: settings.heartbeat_tick,
            applied: settings.applied,
            max_size_per_msg: 1024 * 1024,
            max_inflight_msgs: 512,
            check_quorum: true,
            pre_vote: settings.pre_vote,
            ..Default::default()
        };
        config
            .validate()
            .map_err(|e| RaftError::Config(e.to_string()))?;
        let last_hard_state = log.hard_state().clone();
        let logger = crate::slog_bridge::logger();
        let raw =
            RawNode::new(&config, log, &logger).map_err(|e| RaftError::Config(e.to_string()))?;
        let (tx, rx) = std::sync::mpsc::sync_channel(queue_capacity);
        let status = Arc::new(NodeStatus::default());
        let snapshotter = oxcd_wal::Snapshotter::new(&settings.snap_dir);
        let saver = SnapshotSaver::start(
            settings.snap_dir.clone(),
            settings.wal_dir.clone(),
            KEEP_WAL_FILES,
            KEEP_SNAP_FILES,
        );
        let node = RaftNode {
            raw,
            wal,
            snapshotter,
            settings,
            events,
            status: status.clone(),
            rx,
            last_hard_state,
            saver,
        };
        node.publish_status();
        let thread = std::thread::Builder::new()
            .name("raft".into())
            .spawn(move || node.run())
            .map_err(|e| RaftError::Config(e.to_string()))?;
        Ok((RaftHandle { tx, status }, thread))
    }

    fn run(mut self) {
        let tick = self.settings.tick_interval;
        let mut next_tick = Instant::now() + tick;
        loop {
            let now = Instant::now();
            let wait = next_tick.saturating_duration_since(now);
            let mut proposals: Vec<(u64, Vec<u8>)> = Vec::new();
            match self.rx.recv_timeout(wait) {
                Ok(cmd) => {
                    if !self.handle(cmd, &mut proposals) {
                        return;
                    }
                    for _ in 0..MAX_COMMANDS_PER_TURN {
                        match self.rx.try_recv() {
                            Ok(cmd) => {
                                if !self.handle(cmd, &mut proposals) {
                                    return;
                                }
                            }
                            Err(_) => break,
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if let Err(e) = self.finish_saved_snapshots() {
                tracing::warn!(error = %e, "failed to record a snapshot point");
            }
            self.propose_batch(proposals);
            if Instant::now() >= next_tick {
                self.raw.tick();
                next_tick += tick;
                if next_tick < Instant::now() {
                    next_tick = Instant::now() + tick;
                }
            }
            if self.raw.has_ready() {
                if let Err(e) = self.on_ready() {
                    self.events.fatal(e);
                    return;
                }
            }
            self.publish_status();
        }
    }

    /// Returns false when the node must stop.
    fn handle(&mut self, cmd: Command, proposals: &mut Vec<(u64, Vec<u8>)>) -> bool {
        match cmd {
            Command::Propose { id, data } => proposals.push((id, data)),
            Command::ProposeConfChange { id, data } => {
                let entry = Entry {
                    entry_type: EntryType::EntryConfChange,
                    data: data.into(),
                    ..Default::default()
                };
                let mut m = Message::default();
                m.set_msg_type(MessageType::MsgPropose);
                m.from = self.settings.id;
                m.set_entries(vec![entry].into());
                if self.raw.step(m).is_err() {
                    self.events.proposals_dropped(vec![id]);
                }
            }
            Command::ReadIndex { ctx } => self.raw.read_index(ctx),
            Command::Step(m) => {
                // raft-rs trusts a snapshot's term: one without a term "matches" any index
                // past the log's end, and fast-forwarding the commit there panics.
                if m.get_msg_type() == MessageType::MsgSnapshot {
                    let meta = m.get_snapshot().get_metadata();
                    if meta.index > 0 && meta.term == 0 {
                        tracing::warn!(
                            from = m.from,
                            index = meta.index,
                            "ignoring a snapshot without a term"
                        );
                        return true;
                    }
                }
                // Messages from unknown or removed peers are expected during reconfiguration.
                if let Err(e) = self.raw.step(m) {
                    tracing::debug!(error = %e, "raft step ignored a message");
                }
            }
            Command::ApplyConfChange { cc, reply } => {
                let res = self
                    .raw
                    .apply_conf_change(&cc)
                    .map_err(|e| RaftError::from_raft(&e));
                if let Ok(cs) = &res {
                    self.raw.mut_store().set_conf_state(cs.clone());
                }
                let _ = reply.send(res);
            }
            Command::SnapshotPoint { meta } => {
                if let Err(e) = self.take_snapshot_point(meta) {
                    tracing::warn!(error = %e, "failed to record a snapshot point");
                }
            }
            Command::ReportUnreachable(id) => self.raw.report_unreachable(id),
            Command::ReportSnapshot { to, failed } => {
                let status = if failed {
                    SnapshotStatus::Failure
                } else {
                    SnapshotStatus::Finish
                };
                self.raw.report_snapshot(to, status);
            }
            Command::TransferLeader(to) => self.raw.transfer_leader(to),
            Command::Progress { id, reply } => {
                let matched = if self.raw.raft.state == StateRole::Leader {
                    self.raw.raft.prs().get(id).map(|p| p.matched)
                } else {
                    None
                };
                let _ = reply.send(matched);
            }
            Command::Stop => return false,
        }
        true
    }

    /// Hands all queued proposals to raft as one message, so they share one append and one sync.
    fn propose_batch(&mut self, proposals: Vec<(u64, Vec<u8>)>) {
        if proposals.is_empty() {
            return;
        }
        let mut ids = Vec::with_capacity(proposals.len());
        let mut entries = Vec::with_capacity(proposals.len());
        for (id, data) in proposals {
            ids.push(id);
            entries.push(Entry {
                data: data.into(),
                ..Default::default()
            });
        }
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgPropose);
        m.from = self.settings.id;
        m.set_entries(entries.into());
        if self.raw.step(m).is_err() {
            self.events.proposals_dropped(ids);
        }
    }

    fn on_ready(&mut self) -> Result<(), String> {
        let mut rd = self.raw.ready();
        // The applier reads the status when it applies what this Ready hands over (a new
        // leader's first entry promotes its lessor only if the term matches), so the status
        // must be current before anything leaves this thread.
        self.publish_status();
        if let Some(ss) = rd.ss() {
            let term = self.raw.raft.term;
            self.status.leader.store(ss.leader_id, Ordering::Release);
            self.status.is_leader.store(
                u64::from(ss.raft_state == StateRole::Leader),
                Ordering::Release,
            );
            self.events
                .leader_changed(ss.leader_id, term, ss.raft_state);
        }
        if !rd.messages().is_empty() {
            self.events.send(rd.take_messages());
        }
        let snapshot = if rd.snapshot().get_metadata().index > 0 {
            let snap = rd.snapshot().clone();
            self.persist_snapshot(&snap)?;
            self.raw.mut_store().apply_snapshot(&snap);
            Some(snap)
        } else {
            None
        };
        let committed = rd.take_committed_entries();
        if snapshot.is_some() || !committed.is_empty() {
            self.events.committed(snapshot, committed);
        }
        if !rd.read_states().is_empty() {
            self.events.read_states(rd.take_read_states());
        }
        let entries = rd.take_entries();
        let hs = rd.hs().cloned();
        self.persist(hs.as_ref(), &entries)?;
        if !entries.is_empty() {
            self.raw
                .mut_store()
                .append(&entries)
                .map_err(|e| format!("raft log append failed: {e}"))?;
        }
        if let Some(hs) = hs {
            self.raw.mut_store().set_hard_state(hs);
        }
        if !rd.persisted_messages().is_empty() {
            self.events.send(rd.take_persisted_messages());
        }
        let mut light = self.raw.advance(rd);
        if let Some(commit) = light.commit_index() {
            let mut hs = self.raw.store().hard_state().clone();
            hs.commit = commit;
            self.raw.mut_store().set_hard_state(hs);
        }
        if !light.messages().is_empty() {
            self.events.send(light.take_messages());
        }
        let committed = light.take_committed_entries();
        if !committed.is_empty() {
            self.publish_status();
            self.events.committed(None, committed);
        }
        self.raw.advance_apply();
        Ok(())
    }

    /// Writes entries and the hard state with a single fdatasync. A hard state whose only change
    /// is the commit index is written without a sync: commit can be recovered from the quorum.
    fn persist(&mut self, hs: Option<&HardState>, entries: &[Entry]) -> Result<(), String> {
        let vote_changed = hs.is_some_and(|h| {
            h.term != self.last_hard_state.term || h.vote != self.last_hard_state.vote
        });
        if entries.is_empty() && !vote_changed {
            if let Some(h) = hs.filter(|h| h.commit > self.last_hard_state.commit) {
                self.wal
                    .save_commit(h)
                    .map_err(|e| format!("failed to write the WAL: {e}"))?;
                self.last_hard_state = h.clone();
            }
            return Ok(());
        }
        let hs_to_write = hs.cloned().unwrap_or_else(|| {
            let mut h = self.raw.store().hard_state().clone();
            h.commit = h.commit.max(self.last_hard_state.commit);
            h
        });
        self.wal
            .save(Some(&hs_to_write), entries)
            .map_err(|e| format!("failed to write the WAL: {e}"))?;
        self.last_hard_state = hs_to_write;
        Ok(())
    }

    fn persist_snapshot(&mut self, snap: &Snapshot) -> Result<(), String> {
        let meta = snap.get_metadata();
        self.snapshotter
            .save(snap)
            .map_err(|e| format!("failed to save the snapshot file: {e}"))?;
        self.wal
            .save_snapshot(oxcd_wal::WalSnapshot {
                index: meta.index,
                term: meta.term,
            })
            .map_err(|e| format!("failed to write the WAL snapshot record: {e}"))?;
        Ok(())
    }

    fn take_snapshot_point(&mut self, meta: SnapshotMetadata) -> Result<(), String> {
        if meta.index <= self.raw.store().first_index().saturating_sub(1) {
            return Ok(());
        }
        if let Some(saver) = &self.saver {
            if saver.save(meta.clone()) {
                return Ok(());
            }
            self.saver = None;
        }
        let started = Instant::now();
        self.persist_snapshot(&snapshot_point(&meta))?;
        self.finish_snapshot_point(meta, started, Duration::ZERO)
    }

    /// Records the snapshot points whose `.snap` files the saver has made durable: the WAL
    /// snapshot record after the file, as when both are written here.
    fn finish_saved_snapshots(&mut self) -> Result<(), String> {
        while let Some(saved) = self.saver.as_ref().and_then(|s| s.try_saved()) {
            saved.result?;
            // A snapshot from the leader may have moved the log past it meanwhile.
            if saved.meta.index <= self.raw.store().first_index().saturating_sub(1) {
                continue;
            }
            let started = Instant::now();
            self.wal
                .save_snapshot(oxcd_wal::WalSnapshot {
                    index: saved.meta.index,
                    term: saved.meta.term,
                })
                .map_err(|e| format!("failed to write the WAL snapshot record: {e}"))?;
            self.finish_snapshot_point(saved.meta, started, saved.took)?;
        }
        Ok(())
    }

    /// Compacts the in-memory log to a durable snapshot point and lets old files go. `started`:
    /// when this thread began on it; `off_thread`: what the saver spent on the file.
    fn finish_snapshot_point(
        &mut self,
        meta: SnapshotMetadata,
        started: Instant,
        off_thread: Duration,
    ) -> Result<(), String> {
        let index = meta.index;
        let compacted = self.raw.mut_store().set_snapshot_point(meta);
        self.wal
            .release_lock_to(index)
            .map_err(|e| format!("failed to release WAL segments: {e}"))?;
        match &self.saver {
            Some(saver) => {
                saver.free(compacted);
                saver.purge();
            }
            None => purge_old_files(
                &self.settings.wal_dir,
                &self.snapshotter,
                KEEP_WAL_FILES,
                KEEP_SNAP_FILES,
            ),
        }
        let raft_thread = started.elapsed();
        tracing::info!(index, ?raft_thread, ?off_thread, "saved snapshot");
        Ok(())
    }

    fn publish_status(&self) {
        let store = self.raw.store();
        self.status
            .term
            .store(self.raw.raft.term, Ordering::Release);
        self.status
            .committed
            .store(self.raw.raft.raft_log.committed, Ordering::Release);
        self.status
            .last_index
            .store(store.last_index(), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Mutex, OnceLock};

    use super::*;

    /// Records, for each committed empty entry (a new leader's first), its term and the term
    /// the published status showed when the entry was handed over.
    struct TermProbe {
        status: Arc<OnceLock<Arc<NodeStatus>>>,
        seen: Arc<Mutex<Vec<(u64, u64, bool)>>>,
    }

    impl NodeEvents for TermProbe {
        fn send(&mut self, _msgs: Vec<Message>) {}
        fn committed(&mut self, _snapshot: Option<Snapshot>, entries: Vec<Entry>) {
            let Some(status) = self.status.get() else {
                return;
            };
            for e in entries.iter().filter(|e| e.data.is_empty()) {
                if let Ok(mut seen) = self.seen.lock() {
                    seen.push((e.term, status.term(), status.is_leader()));
                }
            }
        }
        fn read_states(&mut self, _states: Vec<ReadState>) {}
        fn leader_changed(&mut self, _leader: u64, _term: u64, _role: StateRole) {}
        fn proposals_dropped(&mut self, _ids: Vec<u64>) {}
        fn fatal(&mut self, _err: String) {}
    }

    #[test]
    fn status_shows_the_new_term_before_its_first_entry_is_handed_over() {
        let dir = tempfile::tempdir().expect("tempdir");
        let wal_dir = dir.path().join("wal");
        let wal = oxcd_wal::Wal::create(&wal_dir, b"").expect("wal");
        let mut log = LogStore::default();
        log.set_conf_state(ConfState {
            voters: vec![1],
            ..Default::default()
        });
        let status = Arc::new(OnceLock::new());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let probe = TermProbe {
            status: status.clone(),
            seen: seen.clone(),
        };
        let settings = NodeSettings {
            id: 1,
            election_tick: 10,
            heartbeat_tick: 1,
            tick_interval: Duration::from_millis(10),
            pre_vote: true,
            applied: 0,
            wal_dir,
            snap_dir: dir.path().join("snap"),
        };
        let (handle, thread) = RaftNode::spawn(settings, log, wal, probe, 64).expect("spawn");
        let _ = status.set(handle.status.clone());
        let deadline = Instant::now() + Duration::from_secs(10);
        while seen.lock().expect("lock").is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        handle.send_blocking(Command::Stop).expect("stop");
        thread.join().expect("join");
        let seen = seen.lock().expect("lock").clone();
        let (entry_term, status_term, leader) = *seen.first().expect("the node never led");
        assert_eq!(status_term, entry_term, "status lagged the new term");
        assert!(leader, "status did not show the leader");
    }

    #[test]
    fn a_snapshot_without_a_term_is_ignored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let wal_dir = dir.path().join("wal");
        let wal = oxcd_wal::Wal::create(&wal_dir, b"").expect("wal");
        let mut log = LogStore::default();
        let conf_state = ConfState {
            voters: vec![1, 2],
            ..Default::default()
        };
        log.set_conf_state(conf_state.clone());
        let probe = TermProbe {
            status: Arc::new(OnceLock::new()),
            seen: Arc::new(Mutex::new(Vec::new())),
        };
        let settings = NodeSettings {
            id: 1,
            election_tick: 10,
            heartbeat_tick: 1,
            tick_interval: Duration::from_millis(10),
            pre_vote: true,
            applied: 0,
            wal_dir,
            snap_dir: dir.path().join("snap"),
        };
        let (handle, thread) = RaftNode::spawn(settings, log, wal, probe, 64).expect("spawn");
        let mut snapshot = Snapshot::default();
        let meta = snapshot.mut_metadata();
        meta.index = 100;
        meta.term = 0;
        meta.set_conf_state(conf_state);
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgSnapshot);
        m.from = 2;
        m.to = 1;
        m.term = 5;
        m.set_snapshot(snapshot);
        handle.send_blocking(Command::Step(m)).expect("step");
        // The raft thread is still there to take the next command.
        handle.send_blocking(Command::Stop).expect("stop");
        thread.join().expect("the raft thread panicked");
    }
}
