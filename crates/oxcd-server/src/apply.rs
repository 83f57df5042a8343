//! The applier: the only code that changes the state machine. It runs on its own thread, takes
//! committed entries in log order, applies a whole batch in one backend transaction together
//! with the consistent index (so a crash never skips or repeats an entry), then wakes the
//! proposers waiting for those entries.
//!
//! Entries at or below the backend's consistent index were applied before a restart; their
//! key-value effects are skipped, but configuration changes still go to raft, whose view of the
//! cluster is rebuilt from the log on every start.

use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant};

use oxcd_proto::etcdserverpb::{InternalRaftRequest, Request as V2Request};
use oxcd_proto::mvccpb::Event;
use oxcd_raft::eraftpb::{ConfState, Entry, EntryType, Snapshot, SnapshotMetadata};
use oxcd_raft::{Command, RaftHandle};
use parking_lot::RwLock;
use prost::Message as _;
use tokio::sync::{oneshot, watch};

use crate::conf_change::{ChangeType, ConfChange};
use crate::errors::ServerError;
use crate::kv_ops::{self, ApplyOutcome};
use crate::membership::{id_hex, Attributes, Cluster, Member};
use crate::store_handle::StoreHandle;
use crate::wait::WaitMap;

/// How often backend flushes are made durable: with the flusher's 250 ms overlays, every
/// flush. Between two durable commits the WAL holds everything, so this bounds how much is
/// replayed after a crash, and also how much a durable commit sends to the disk at once:
/// every WAL fdatasync on the same disk waits behind it. At 1 s the commits sent 1 s of pages
/// at once and WAL syncs took 20–60 ms during them (put p99 34–40 ms, p99.9 54–108 ms on the
/// benchmark); at 250 ms with paced write-back, p99 24–29 ms and p99.9 30–38 ms, at the same
/// CPU per put (the flusher copies each page once per flush either way).
pub(crate) const DURABLE_COMMIT_INTERVAL: Duration = Duration::from_millis(250);

/// When the next durable backend commit is due. Members that share a machine (or a disk)
/// would otherwise all flush at the same moment: they apply the same entries at the same time
/// and snapshot points fall at the same index everywhere, so three flushes' CPU and write-back
/// hit the cluster at once, and every member's WAL syncs slow down together. So each member
/// takes its own slot within the interval, by its rank among the member IDs, and snapshot
/// points wait for the next slot instead of forcing a commit.
#[derive(Clone, Copy, Debug)]
pub struct DurableSchedule {
    epoch: Instant,
    next: Instant,
}

impl DurableSchedule {
    pub fn new(now: Instant) -> DurableSchedule {
        DurableSchedule {
            epoch: now,
            next: now + DURABLE_COMMIT_INTERVAL,
        }
    }

    pub fn is_due(&self, now: Instant) -> bool {
        now >= self.next
    }

    /// Moves to this member's first slot after `now`: `rank` of `members` (its place among
    /// the member IDs in order).
    pub fn advance(&mut self, now: Instant, rank: usize, members: usize) {
        let interval = DURABLE_COMMIT_INTERVAL.as_nanos();
        let members = members.max(1) as u128;
        let phase = interval * (rank as u128 % members) / members;
        let since = now.saturating_duration_since(self.epoch).as_nanos();
        // The first slot (epoch + phase + k * interval) later than now.
        let k = (since + interval).saturating_sub(phase) / interval;
        let at = (k * interval + phase).min(u64::MAX as u128) as u64;
        self.next = self.epoch + Duration::from_nanos(at);
        if self.next <= now {
            self.next = now + DURABLE_COMMIT_INTERVAL;
        }
    }

    /// How long until the next slot (zero if it is due).
    pub fn wait(&self, now: Instant) -> Duration {
        self.next.saturating_duration_since(now)
    }
}

/// Applied entries between two snapshot points at most, whatever `--snapshot-count` says: raft
/// keeps every entry since the last point (plus 5,000 for slow followers) in memory.
pub const MAX_ENTRIES_BETWEEN_SNAPSHOT_POINTS: u64 = 10_000;

pub enum ApplyJob {
    Entries {
        snapshot: Option<Snapshot>,
        entries: Vec<Entry>,
    },
    /// Rewrites the backend file without free pages. Done here, between batches, because the
    /// applier is the only writer: nothing can change while the copy is made.
    Defragment {
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// Pins the store as applied so far, with the raft metadata that describes exactly that
    /// state, for a follower that needs a snapshot. Raft's own last snapshot point can be older
    /// than the store, and its configuration can lack a member added since (which would then
    /// refuse the snapshot), so, as etcd does, the follower gets the applied state instead.
    PinSnapshot {
        reply: oneshot::Sender<Result<(SnapshotMetadata, oxcd_mvcc::StoreSnapshot), String>>,
    },
}

/// Where the changes of each applied batch go, in revision order, after the batch committed:
/// the watch hub.
pub trait EventSink: Send + Sync + 'static {
    /// `events` were committed; `revision` is the store's revision after them.
    fn publish(&self, revision: i64, events: Vec<Event>);
    /// The whole store was replaced by a snapshot from the leader: anything a watcher knew may
    /// be stale, so it must catch up from the store.
    fn store_replaced(&self, revision: i64);
}

/// A sink that drops events, for members without watchers.
#[allow(dead_code)]
pub struct NoEvents;

impl EventSink for NoEvents {
    fn publish(&self, _revision: i64, _events: Vec<Event>) {}
    fn store_replaced(&self, _revision: i64) {}
}

/// What the applier needs from the rest of the server when membership changes.
pub trait MembershipHooks: Send + Sync + 'static {
    fn member_added(&self, id: u64);
    fn member_removed(&self, id: u64);
    /// This member was removed from the cluster: it must stop.
    fn local_removed(&self);
    fn cluster_version_set(&self, version: &str);
}

pub struct Applier {
    pub store: StoreHandle,
    pub cluster: Arc<RwLock<Cluster>>,
    pub wait: Arc<WaitMap<ApplyOutcome>>,
    pub raft: RaftHandle,
    pub applied_tx: watch::Sender<u64>,
    pub snapshot_count: u64,
    pub snap_dir: std::path::PathBuf,
    pub hooks: Arc<dyn MembershipHooks>,
    pub events: Arc<dyn EventSink>,
    /// Leases: lease requests, attach/detach of keys, promotion of the leader's lessor.
    pub lessor: Arc<crate::lease::Lessor>,
    pub alarms: Arc<crate::alarms::Alarms>,
    pub conf_state: ConfState,
    pub applied_index: u64,
    pub applied_term: u64,
    pub last_snapshot_index: u64,
    pub durable_schedule: DurableSchedule,
    /// A snapshot point waiting for the backend to be durable at its index.
    pub pending_snapshot_point: Option<SnapshotMetadata>,
}

impl Applier {
    pub fn run(mut self, rx: Receiver<ApplyJob>) {
        // A job taken from the queue while merging that could not be merged; it goes next.
        let mut held: Option<ApplyJob> = None;
        loop {
            let job = match held.take() {
                Some(job) => job,
                None => match rx.recv_timeout(
                    self.durable_schedule
                        .wait(Instant::now())
                        .max(Duration::from_millis(1)),
                ) {
                    Ok(job) => job,
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                        self.flush_if_due();
                        self.snapshot_point_if_durable();
                        continue;
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                },
            };
            let (snapshot, entries) = match job {
                ApplyJob::Entries { snapshot, entries } => {
                    (snapshot, merge_queued(entries, &rx, &mut held))
                }
                ApplyJob::Defragment { reply } => {
                    let _ = reply.send(self.defragment());
                    continue;
                }
                ApplyJob::PinSnapshot { reply } => {
                    let _ = reply.send(self.pin_snapshot());
                    continue;
                }
            };
            let result = (|| {
                if let Some(snap) = snapshot {
                    self.install_snapshot(&snap)?;
                }
                if !entries.is_empty() {
                    self.apply_entries(entries)?;
                }
                Ok::<(), String>(())
            })();
            if let Err(e) = result {
                tracing::error!(error = %e, "failed to apply committed entries");
                eprintln!("etcd: failed to apply committed entries: {e}");
                std::process::exit(1);
            }
        }
    }

    fn flush_if_due(&mut self) {
        let now = Instant::now();
        if !self.durable_schedule.is_due(now) {
            return;
        }
        self.store.get().persist_soon();
        self.advance_durable_schedule(now);
        self.plan_snapshot_point();
    }

    /// Called when a durable commit of everything applied so far has been requested: if a
    /// snapshot point is due, it is taken at the applied index once that commit is durable
    /// (raft may drop its log up to the point only behind a durable backend).
    fn plan_snapshot_point(&mut self) {
        if self.pending_snapshot_point.is_none()
            && self.applied_index.saturating_sub(self.last_snapshot_index) >= self.snapshot_count
        {
            self.pending_snapshot_point = Some(self.applied_metadata());
        }
    }

    fn advance_durable_schedule(&mut self, now: Instant) {
        let (rank, members) = {
            let cluster = self.cluster.read();
            let local = cluster.local_id;
            let rank = cluster.members.keys().filter(|&&id| id < local).count();
            (rank, cluster.members.len())
        };
        self.durable_schedule.advance(now, rank, members);
    }

    fn apply_entries(&mut self, entries: Vec<Entry>) -> Result<(), String> {
        let store = self.store.get();
        let consistent = store.consistent_index();
        let mut batch = store.write().map_err(|e| e.to_string())?;
        let mut outcomes: Vec<(u64, ApplyOutcome)> = Vec::new();
        let mut events: Vec<Event> = Vec::new();
        let mut conf_changes: Vec<(u64, ConfChange)> = Vec::new();
        let mut last = (self.applied_index, self.applied_term);
        for entry in &entries {
            let skip_kv = entry.index <= consistent;
            match entry.get_entry_type() {
                EntryType::EntryNormal => {
                    if !skip_kv && !entry.data.is_empty() {
                        self.apply_normal(&mut batch, entry, &mut outcomes, &mut events)?;
                    } else if entry.data.is_empty() {
                        // A new leader's first entry: once it is applied, so is everything
                        // from earlier terms, and the leader's lessor takes over deadlines.
                        let status = &self.raft.status;
                        self.lessor
                            .promote_if(|| status.is_leader() && status.term() == entry.term);
                    }
                }
                EntryType::EntryConfChange => {
                    let cc = ConfChange::decode(entry.data.as_ref())
                        .map_err(|e| format!("bad conf change at index {}: {e}", entry.index))?;
                    // A change the membership rules refuse is committed but changes nothing,
                    // neither the member list nor raft's configuration (etcd does the same).
                    let valid = if skip_kv {
                        true
                    } else {
                        let res = self.apply_membership(&mut batch, &cc)?;
                        let valid = res.is_ok();
                        if cc.id != 0 {
                            outcomes.push((cc.id, ApplyOutcome::ConfChange(res)));
                        }
                        valid
                    };
                    if valid {
                        conf_changes.push((entry.index, cc));
                    }
                }
                EntryType::EntryConfChangeV2 => {
                    tracing::warn!(
                        index = entry.index,
                        "ignoring a joint-consensus configuration change"
                    );
                }
            }
            last = (entry.index, entry.term);
        }
        if last.0 > consistent {
            batch.set_consistent_index(last.0, last.1);
        }
        // A compaction frees space: commit it durably so the space quota sees it at once (an
        // operator disarming NOSPACE right after compacting must not trip it again).
        let compacted = outcomes
            .iter()
            .any(|(_, o)| matches!(o, ApplyOutcome::Compaction(_)));
        // Otherwise durability is the flusher's business: the applier never waits for a sync.
        // A due snapshot point waits for the next scheduled durable commit (see DurableSchedule).
        let now = Instant::now();
        let durable_requested = if compacted {
            batch.commit(true).map_err(|e| e.to_string())?;
            true
        } else if self.durable_schedule.is_due(now) {
            batch.commit_and_persist_soon().map_err(|e| e.to_string())?;
            self.advance_durable_schedule(now);
            true
        } else {
            batch.commit(false).map_err(|e| e.to_string())?;
            false
        };
        if !events.is_empty() {
            self.events.publish(store.current_revision(), events);
        }
        // Raft's own view changes only after the membership it describes is committed.
        for (index, cc) in conf_changes {
            self.apply_conf_change_to_raft(index, cc)?;
        }
        self.applied_index = last.0;
        self.applied_term = last.1;
        self.applied_tx.send_replace(last.0);
        for (id, outcome) in outcomes {
            self.wait.trigger(id, outcome);
        }
        if durable_requested {
            self.plan_snapshot_point();
        }
        self.snapshot_point_if_durable();
        Ok(())
    }

    fn apply_normal(
        &mut self,
        batch: &mut oxcd_mvcc::WriteBatch,
        entry: &Entry,
        outcomes: &mut Vec<(u64, ApplyOutcome)>,
        events: &mut Vec<Event>,
    ) -> Result<(), String> {
        if let Ok(req) = InternalRaftRequest::decode(entry.data.as_ref()) {
            let id = req.header.as_ref().map(|h| h.id).unwrap_or(req.id);
            let outcome = if let Some(alarm) = req.alarm.as_ref() {
                ApplyOutcome::Alarm(self.alarms.apply(batch, alarm)?)
            } else if self.alarms.refuses(&req) {
                ApplyOutcome::Refused(ServerError::NoSpace)
            } else {
                kv_ops::apply_internal(batch, req, events, &self.lessor)?
            };
            outcomes.push((id, outcome));
            return Ok(());
        }
        match V2Request::decode(entry.data.as_ref()) {
            Ok(req) => {
                self.apply_v2(batch, &req)?;
                outcomes.push((req.id, ApplyOutcome::V2));
            }
            Err(e) => {
                tracing::warn!(index = entry.index, error = %e, "skipping an undecodable entry")
            }
        }
        Ok(())
    }

    /// The v2 requests etcd 3.4 still proposes: member attributes and the cluster version.
    fn apply_v2(
        &mut self,
        batch: &mut oxcd_mvcc::WriteBatch,
        req: &V2Request,
    ) -> Result<(), String> {
        if req.method != "PUT" {
            return Ok(());
        }
        let path = req.path.as_str();
        if let Some(rest) = path.strip_prefix("/0/members/") {
            if let Some(idhex) = rest.strip_suffix("/attributes") {
                let Some(id) = crate::membership::parse_id_hex(idhex) else {
                    return Ok(());
                };
                let attrs: Attributes = serde_json::from_str(&req.val).unwrap_or_default();
                let mut cluster = self.cluster.write();
                cluster.set_attributes(id, attrs);
                if let Some(m) = cluster.member(id) {
                    crate::persist::save_member(batch, m)?;
                }
            }
        } else if path == "/0/version" {
            let version = req.val.clone();
            self.cluster.write().version = Some(version.clone());
            crate::persist::save_cluster_version(batch, &version)?;
            self.hooks.cluster_version_set(&version);
        }
        Ok(())
    }

    /// Applies a configuration change to the member list, after checking it against the
    /// current membership. The inner error is the change's own refusal; the outer one a
    /// backend failure.
    fn apply_membership(
        &mut self,
        batch: &mut oxcd_mvcc::WriteBatch,
        cc: &ConfChange,
    ) -> Result<Result<(), ServerError>, String> {
        let id = cc.node_id;
        let Some(kind) = cc.kind() else {
            tracing::warn!(
                change_type = cc.change_type,
                "ignoring an unknown configuration change"
            );
            return Ok(Ok(()));
        };
        let change = if cc.context.is_empty() {
            ChangeContext::default()
        } else {
            serde_json::from_slice::<ChangeContext>(&cc.context)
                .map_err(|e| format!("bad member in conf change: {e}"))?
        };
        let mut cluster = self.cluster.write();
        if let Err(refused) = validate_change(&cluster, id, kind, &change) {
            tracing::warn!(member = %id_hex(id), error = %refused, "refused a configuration change");
            return Ok(Err(refused));
        }
        match kind {
            ChangeType::Add | ChangeType::AddLearner => {
                let member = match cluster.member(id) {
                    // A promotion: the learner becomes a voter, nothing else changes.
                    Some(existing) => Member {
                        is_learner: false,
                        ..existing.clone()
                    },
                    None => Member {
                        id,
                        is_learner: kind == ChangeType::AddLearner,
                        ..change.member
                    },
                };
                crate::persist::save_member(batch, &member)?;
                tracing::info!(
                    "added member {} {:?} to cluster {}",
                    id_hex(id),
                    member.peer_urls,
                    id_hex(cluster.cluster_id)
                );
                cluster.add(member);
            }
            ChangeType::Remove => {
                cluster.remove(id);
                crate::persist::remove_member(batch, id)?;
                tracing::info!(
                    "removed member {} from cluster {}",
                    id_hex(id),
                    id_hex(cluster.cluster_id)
                );
            }
            ChangeType::Update => {
                if let Some(m) = cluster.members.get_mut(&id) {
                    m.peer_urls = change.member.peer_urls;
                    let m = m.clone();
                    crate::persist::save_member(batch, &m)?;
                    tracing::info!(
                        "updated member {} {:?} in cluster {}",
                        id_hex(id),
                        m.peer_urls,
                        id_hex(cluster.cluster_id)
                    );
                }
            }
        }
        Ok(Ok(()))
    }

    fn apply_conf_change_to_raft(&mut self, index: u64, cc: ConfChange) -> Result<(), String> {
        let Some(kind) = cc.kind() else {
            return Ok(());
        };
        let id = cc.node_id;
        if let Some(raft_cc) = cc.to_raft() {
            let (tx, rx) = oneshot::channel();
            self.raft
                .send_blocking(Command::ApplyConfChange {
                    cc: raft_cc,
                    reply: tx,
                })
                .map_err(|e| e.to_string())?;
            match rx.blocking_recv() {
                Ok(Ok(cs)) => self.conf_state = cs,
                Ok(Err(e)) => {
                    tracing::warn!(index, error = %e, "raft refused a configuration change")
                }
                Err(_) => return Err("raft node stopped".into()),
            }
        }
        let local = self.cluster.read().local_id;
        match kind {
            ChangeType::Add | ChangeType::AddLearner => {
                if id != local {
                    self.hooks.member_added(id);
                }
            }
            ChangeType::Remove => {
                if id == local {
                    self.hooks.local_removed();
                } else {
                    self.hooks.member_removed(id);
                }
            }
            ChangeType::Update => {}
        }
        Ok(())
    }

    fn applied_metadata(&self) -> SnapshotMetadata {
        SnapshotMetadata {
            index: self.applied_index,
            term: self.applied_term,
            conf_state: Some(self.conf_state.clone()).into(),
            ..Default::default()
        }
    }

    fn pin_snapshot(&self) -> Result<(SnapshotMetadata, oxcd_mvcc::StoreSnapshot), String> {
        let pinned = self.store.get().snapshot().map_err(|e| e.to_string())?;
        Ok((self.applied_metadata(), pinned))
    }

    /// Once the backend is durable at the pending snapshot point: lets raft compact its log up
    /// to there.
    fn snapshot_point_if_durable(&mut self) {
        let Some(meta) = &self.pending_snapshot_point else {
            return;
        };
        if self.store.get().durable_consistent_index() < meta.index {
            return;
        }
        let index = meta.index;
        let meta = meta.clone();
        if self.raft.try_send(Command::SnapshotPoint { meta }).is_ok() {
            self.last_snapshot_index = index;
            self.pending_snapshot_point = None;
        }
    }

    /// Copies the store into a fresh file (a copy holds no free pages) and swaps it in. Readers
    /// that still hold the old store finish on the old file.
    fn defragment(&mut self) -> Result<(), String> {
        let store = self.store.get();
        let before = store.size_bytes();
        let tmp = store.path().with_extension("defrag");
        store.export_to(&tmp).map_err(|e| e.to_string())?;
        drop(store);
        self.store.replace_from(&tmp)?;
        tracing::info!(
            before,
            after = self.store.get().size_bytes(),
            "finished defragmenting the backend"
        );
        Ok(())
    }

    /// Replaces the whole state machine with the database the leader sent along with `snap`.
    fn install_snapshot(&mut self, snap: &Snapshot) -> Result<(), String> {
        let meta = snap.get_metadata();
        let file = self.snap_dir.join(format!("{:016x}.snap.db", meta.index));
        tracing::info!(index = meta.index, "applying snapshot database");
        self.store.replace_from(&file)?;
        self.alarms.reload(&self.store.get())?;
        self.events
            .store_replaced(self.store.get().current_revision());
        self.lessor.recover(&self.store.get())?;
        let restored = crate::persist::load_cluster(&self.store.get())?;
        {
            let mut cluster = self.cluster.write();
            let before: Vec<u64> = cluster.peer_ids().collect();
            cluster.members = restored.members;
            cluster.removed = restored.removed;
            if restored.version.is_some() {
                cluster.version = restored.version;
            }
            let after: Vec<u64> = cluster.peer_ids().collect();
            drop(cluster);
            for id in &before {
                if !after.contains(id) {
                    self.hooks.member_removed(*id);
                }
            }
            for id in &after {
                if !before.contains(id) {
                    self.hooks.member_added(*id);
                }
            }
        }
        self.conf_state = meta.get_conf_state().clone();
        self.applied_index = meta.index;
        self.applied_term = meta.term;
        self.last_snapshot_index = meta.index;
        self.pending_snapshot_point = None;
        self.applied_tx.send_replace(meta.index);
        tracing::info!(index = meta.index, member = %id_hex(self.cluster.read().local_id), "applied snapshot");
        Ok(())
    }
}

/// Appends the entries of the jobs already queued behind `entries` (up to
/// [`MAX_MERGED_ENTRIES`]), so that they are applied in one backend transaction. Each
/// transaction copies every B-tree page it touches, and puts to random keys touch a page each:
/// the more puts share a transaction, the more share their pages. Only jobs that are already
/// waiting are merged, so an idle member applies as soon as before. The first job that is not
/// plain entries stops the merge and is kept in `held`, to run next, in order.
fn merge_queued(
    mut entries: Vec<Entry>,
    rx: &Receiver<ApplyJob>,
    held: &mut Option<ApplyJob>,
) -> Vec<Entry> {
    while entries.len() < MAX_MERGED_ENTRIES {
        match rx.try_recv() {
            Ok(ApplyJob::Entries {
                snapshot: None,
                entries: more,
            }) => entries.extend(more),
            Ok(other) => {
                *held = Some(other);
                break;
            }
            Err(_) => break,
        }
    }
    entries
}

/// Entries merged into one backend transaction at most.
const MAX_MERGED_ENTRIES: usize = 4096;

/// The JSON context of a configuration change: the member, plus etcd's promotion marker.
#[derive(Default, serde::Deserialize)]
struct ChangeContext {
    #[serde(flatten)]
    member: Member,
    #[serde(rename = "isPromote", default)]
    is_promote: bool,
}

/// etcd's membership rules for a committed change, checked against the current member list.
fn validate_change(
    cluster: &Cluster,
    id: u64,
    kind: ChangeType,
    change: &ChangeContext,
) -> Result<(), ServerError> {
    if cluster.is_removed(id) {
        return Err(ServerError::MemberNotFound);
    }
    let url_taken = |urls: &[String]| {
        cluster
            .members
            .values()
            .filter(|m| m.id != id)
            .any(|m| m.peer_urls.iter().any(|u| urls.contains(u)))
    };
    match kind {
        ChangeType::Add | ChangeType::AddLearner if change.is_promote => match cluster.member(id) {
            None => Err(ServerError::MemberNotFound),
            Some(m) if !m.is_learner => Err(ServerError::MemberNotLearner),
            Some(_) => Ok(()),
        },
        ChangeType::Add | ChangeType::AddLearner => {
            if cluster.member(id).is_some() {
                return Err(ServerError::MemberExist);
            }
            if url_taken(&change.member.peer_urls) {
                return Err(ServerError::PeerUrlExist);
            }
            let learners = cluster.members.values().filter(|m| m.is_learner).count();
            if kind == ChangeType::AddLearner && learners >= MAX_LEARNERS {
                return Err(ServerError::TooManyLearners);
            }
            Ok(())
        }
        ChangeType::Remove => cluster
            .member(id)
            .map(|_| ())
            .ok_or(ServerError::MemberNotFound),
        ChangeType::Update => {
            if cluster.member(id).is_none() {
                return Err(ServerError::MemberNotFound);
            }
            if url_taken(&change.member.peer_urls) {
                return Err(ServerError::PeerUrlExist);
            }
            Ok(())
        }
    }
}

/// etcd 3.4 allows one learner at a time.
pub const MAX_LEARNERS: usize = 1;

#[cfg(test)]
mod tests {
    use super::*;

    /// Where `s`'s next commit falls within the interval, measured from its epoch.
    fn slot(s: &DurableSchedule) -> Duration {
        let since = s.next.duration_since(s.epoch).as_nanos();
        Duration::from_nanos((since % DURABLE_COMMIT_INTERVAL.as_nanos()) as u64)
    }

    #[test]
    fn members_that_start_together_commit_at_different_times() {
        let epoch = Instant::now();
        let third = DURABLE_COMMIT_INTERVAL / 3;
        for late in [0, 1, 7, 83, 249, 250, 251, 1_000, 60_007] {
            let now = epoch + Duration::from_millis(late);
            let mut slots = Vec::new();
            for rank in 0..3 {
                let mut s = DurableSchedule::new(epoch);
                s.advance(now, rank, 3);
                assert!(s.next > now, "rank {rank} at +{late} ms: due in the past");
                assert!(s.wait(now) <= DURABLE_COMMIT_INTERVAL);
                slots.push(slot(&s));
            }
            assert_eq!(
                slots,
                vec![Duration::ZERO, third, third * 2],
                "at +{late} ms"
            );
        }
    }

    #[test]
    fn a_schedule_keeps_its_slot_from_one_commit_to_the_next() {
        let epoch = Instant::now();
        let mut s = DurableSchedule::new(epoch);
        assert!(!s.is_due(epoch));
        assert!(s.is_due(epoch + DURABLE_COMMIT_INTERVAL));
        let mut now = epoch;
        for _ in 0..10 {
            now = s.next + Duration::from_millis(3); // the commit runs a little late
            s.advance(now, 1, 2);
            assert_eq!(slot(&s), DURABLE_COMMIT_INTERVAL / 2);
            assert!(s.wait(now) <= DURABLE_COMMIT_INTERVAL);
        }
        // A single member, or a rank left over from a larger membership, still gets a slot.
        s.advance(now, 5, 1);
        assert_eq!(slot(&s), Duration::ZERO);
        assert!(s.next > now);
    }
}
