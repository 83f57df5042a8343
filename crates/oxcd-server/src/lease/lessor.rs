//! The lessor's state: the leases, the keys attached to each, and (on the leader only) their
//! deadlines and checkpoint schedule.
//!
//! Two kinds of callers:
//!
//! * the applier, in log order, inside its backend batch: grant, revoke (the attached keys are
//!   deleted in the batch's open request, so they share one revision and reach watchers as
//!   ordinary delete events), checkpoint, and attach/detach through [`LeaseTracker`] while KV
//!   requests run. Every change to a lease record is written to the `lease` aux table of the
//!   same batch, so it commits atomically with the consistent index.
//! * the leader's side, in wall-clock time: promote/demote, renew, time-to-live, the expired
//!   leases to revoke and the checkpoints to propose. Deadlines are never part of the replicated
//!   state; only the remaining TTL recorded by checkpoints is.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use oxcd_mvcc::{KeySpan, KvStore, LeaseHooks, RangeOptions, WriteBatch};
use oxcd_proto::etcdserverpb::LeaseCheckpoint;
use oxcd_proto::leasepb;
use parking_lot::Mutex;
use prost::Message as _;
use tokio::sync::watch;

/// The largest TTL a lease may be granted with (etcd's limit, in seconds).
pub const MAX_LEASE_TTL: i64 = 9_000_000_000;
/// The aux table holding one `leasepb.Lease` per lease, keyed by the big-endian ID.
pub const LEASE_TABLE: &str = "lease";
/// etcd's default interval between two checkpoints of a lease's remaining TTL.
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(300);
/// How many expired leases the leader may revoke per second.
pub const REVOKE_RATE: usize = 1000;
/// At most this many checkpoints go into one raft entry.
pub const MAX_CHECKPOINT_BATCH: usize = 1000;
/// Keys read per step when the key index is rebuilt from the store.
const RECOVER_PAGE: usize = 10_000;

/// Lease errors, with the messages etcd sends to clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    #[error("etcdserver: requested lease not found")]
    NotFound,
    #[error("etcdserver: lease already exists")]
    Exists,
    #[error("etcdserver: too large lease TTL")]
    TtlTooLarge,
    /// This member's lessor does not manage deadlines (it is not the leader, or not yet).
    #[error("not a primary lessor")]
    NotPrimary,
    /// The backend failed while applying: the member must stop.
    #[error("etcdserver: storage failure: {0}")]
    Storage(String),
}

impl LeaseError {
    /// The gRPC status code etcd uses for this error.
    pub fn code(&self) -> tonic::Code {
        match self {
            LeaseError::NotFound => tonic::Code::NotFound,
            LeaseError::Exists => tonic::Code::FailedPrecondition,
            LeaseError::TtlTooLarge => tonic::Code::OutOfRange,
            LeaseError::NotPrimary => tonic::Code::Unavailable,
            LeaseError::Storage(_) => tonic::Code::Internal,
        }
    }
}

fn storage(e: impl std::fmt::Display) -> LeaseError {
    LeaseError::Storage(e.to_string())
}

/// Tuning of the lessor.
#[derive(Clone, Debug)]
pub struct LessorConfig {
    /// Shorter requested TTLs are raised to this (seconds).
    pub min_ttl: i64,
    /// What a newly promoted leader adds to every deadline: the election timeout, so that
    /// clients have time to find the new leader and renew.
    pub promote_extend: Duration,
    /// How often the leader records a lease's remaining TTL through raft (`None`: never).
    pub checkpoint_interval: Option<Duration>,
    /// An expired lease whose revocation did not go through is retried after this long.
    pub expired_retry: Duration,
}

impl Default for LessorConfig {
    fn default() -> Self {
        LessorConfig {
            min_ttl: 2,
            promote_extend: Duration::from_secs(1),
            checkpoint_interval: Some(DEFAULT_CHECKPOINT_INTERVAL),
            expired_retry: Duration::from_secs(3),
        }
    }
}

impl LessorConfig {
    /// etcd's rules: the minimum TTL is one and a half election timeouts, rounded up to whole
    /// seconds (in election ticks, as etcd counts them); expired leases are retried after the
    /// request timeout. `OXCD_LEASE_CHECKPOINT_INTERVAL_MS` overrides the checkpoint interval
    /// (0 turns checkpoints off).
    pub fn from_config(cfg: &oxcd_bootstrap::Config) -> Self {
        let tick_ms = cfg.heartbeat_interval_ms.max(1);
        let election_ticks = (cfg.election_timeout_ms / tick_ms).max(2);
        let min_ttl_ms = (3 * election_ticks / 2) * tick_ms;
        let checkpoint_interval = match std::env::var("OXCD_LEASE_CHECKPOINT_INTERVAL_MS")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            Some(0) => None,
            Some(ms) => Some(Duration::from_millis(ms)),
            None => Some(DEFAULT_CHECKPOINT_INTERVAL),
        };
        LessorConfig {
            min_ttl: min_ttl_ms.div_ceil(1000).max(1) as i64,
            promote_extend: Duration::from_millis(cfg.election_timeout_ms),
            checkpoint_interval,
            expired_retry: Duration::from_millis(5000 + 2 * cfg.election_timeout_ms),
        }
    }
}

struct Lease {
    /// The granted TTL (after the minimum was applied), seconds.
    ttl: i64,
    /// The last checkpointed remaining TTL, seconds; 0: none, the full TTL applies.
    remaining_ttl: i64,
    /// When the lease expires; `None` while this member is not the primary.
    expiry: Option<Instant>,
    /// When its next checkpoint is due (primary only): the one valid entry of the schedule,
    /// so a lease never has more than one checkpoint pending.
    next_checkpoint: Option<Instant>,
    /// The keys attached to the lease, in key order (the order a revoke deletes them in).
    keys: BTreeSet<Bytes>,
}

impl Lease {
    /// The TTL a fresh deadline starts from.
    fn effective_ttl(&self) -> i64 {
        if self.remaining_ttl > 0 {
            self.remaining_ttl
        } else {
            self.ttl
        }
    }

    fn record(&self, id: i64) -> Vec<u8> {
        leasepb::Lease {
            id,
            ttl: self.ttl,
            remaining_ttl: self.remaining_ttl,
        }
        .encode_to_vec()
    }
}

#[derive(Default)]
struct State {
    leases: HashMap<i64, Lease>,
    primary: bool,
    /// Deadlines by time; entries made stale by a renewal stay until they surface.
    expiries: BinaryHeap<Reverse<(Instant, i64)>>,
    /// When each lease's next checkpoint is due.
    checkpoints: BinaryHeap<Reverse<(Instant, i64)>>,
}

/// What a time-to-live request learns about a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseInfo {
    /// The granted TTL, seconds.
    pub granted_ttl: i64,
    /// Whole seconds left (negative or zero once expired).
    pub remaining: i64,
    /// The attached keys, in key order.
    pub keys: Vec<Bytes>,
}

/// The result of a successful renewal on the primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Renewed {
    /// The TTL the lease now has again.
    pub ttl: i64,
    /// The lease carried a checkpointed remaining TTL: a checkpoint clearing it must be
    /// proposed, or a later leader would start it from the stale value.
    pub clear_checkpoint: bool,
}

pub(crate) enum RenewAttempt {
    Done(Result<Renewed, LeaseError>),
    /// The lease expired and awaits its revocation.
    Expired,
}

/// The lessor. See the module documentation.
pub struct Lessor {
    cfg: LessorConfig,
    state: Mutex<State>,
    /// Bumped whenever a lease is revoked or the lessor is demoted: wakes renewals waiting
    /// on an expired lease.
    changes: watch::Sender<u64>,
    /// Renewed leases whose checkpointed remaining TTL must be cleared through raft (proposed
    /// by the lease loop, so a renewal never waits for raft).
    clears: Mutex<Vec<i64>>,
    /// Wakes the lease loop when `clears` got something.
    pub(crate) wake: tokio::sync::Notify,
    /// Forwarding to the leader (set once the peer client exists).
    pub(crate) forward: std::sync::OnceLock<super::forward::Forwarder>,
}

impl Lessor {
    pub fn new(cfg: LessorConfig) -> Lessor {
        Lessor {
            cfg,
            state: Mutex::new(State::default()),
            changes: watch::channel(0).0,
            clears: Mutex::new(Vec::new()),
            wake: tokio::sync::Notify::new(),
            forward: std::sync::OnceLock::new(),
        }
    }

    pub fn config(&self) -> &LessorConfig {
        &self.cfg
    }

    /// Loads the leases from the store's `lease` table and re-attaches every current key that
    /// names one. Used at start and after the store was replaced by a leader's snapshot.
    pub fn recover(&self, store: &KvStore) -> Result<(), String> {
        let view = store.read().map_err(|e| e.to_string())?;
        let mut leases = HashMap::new();
        for (key, value) in view.scan_aux(LEASE_TABLE).map_err(|e| e.to_string())? {
            let rec = leasepb::Lease::decode(value.as_slice())
                .map_err(|e| format!("bad lease record {}: {e}", hex::encode(&key)))?;
            leases.insert(
                rec.id,
                Lease {
                    ttl: rec.ttl.max(self.cfg.min_ttl),
                    remaining_ttl: rec.remaining_ttl,
                    expiry: None,
                    next_checkpoint: None,
                    keys: BTreeSet::new(),
                },
            );
        }
        // Page through the current keys; only the leased ones are kept.
        let mut from: Vec<u8> = Vec::new();
        loop {
            let page = view
                .range(
                    KeySpan::FromKey(&from),
                    RangeOptions {
                        limit: RECOVER_PAGE,
                        ..RangeOptions::default()
                    },
                )
                .map_err(|e| e.to_string())?;
            let full = page.kvs.len() == RECOVER_PAGE;
            for kv in &page.kvs {
                if kv.lease == 0 {
                    continue;
                }
                match leases.get_mut(&kv.lease) {
                    Some(l) => {
                        l.keys.insert(Bytes::copy_from_slice(&kv.key));
                    }
                    None => tracing::warn!(
                        key = %String::from_utf8_lossy(&kv.key),
                        lease = %format!("{:016x}", kv.lease),
                        "key names a lease that does not exist"
                    ),
                }
            }
            match page.kvs.last() {
                Some(last) if full => {
                    from = last.key.to_vec();
                    from.push(0);
                }
                _ => break,
            }
        }
        let mut st = self.state.lock();
        let primary = st.primary;
        *st = State {
            leases,
            primary,
            ..State::default()
        };
        if primary {
            self.refresh_all(&mut st, Instant::now(), Duration::ZERO);
        }
        drop(st);
        self.changes.send_modify(|n| *n += 1);
        Ok(())
    }

    // ---- applied through raft ----

    /// Grants lease `id` with `ttl` seconds; returns the TTL granted (at least the minimum).
    pub fn grant(&self, batch: &mut WriteBatch, id: i64, ttl: i64) -> Result<i64, LeaseError> {
        self.grant_at(batch, id, ttl, Instant::now())
    }

    pub(crate) fn grant_at(
        &self,
        batch: &mut WriteBatch,
        id: i64,
        ttl: i64,
        now: Instant,
    ) -> Result<i64, LeaseError> {
        if id == 0 {
            return Err(LeaseError::NotFound);
        }
        if ttl > MAX_LEASE_TTL {
            return Err(LeaseError::TtlTooLarge);
        }
        let mut st = self.state.lock();
        if st.leases.contains_key(&id) {
            return Err(LeaseError::Exists);
        }
        let mut lease = Lease {
            ttl: ttl.max(self.cfg.min_ttl),
            remaining_ttl: 0,
            expiry: None,
            next_checkpoint: None,
            keys: BTreeSet::new(),
        };
        batch
            .put_aux(LEASE_TABLE, &id.to_be_bytes(), &lease.record(id))
            .map_err(storage)?;
        let granted = lease.ttl;
        if st.primary {
            let at = now + Duration::from_secs(granted as u64);
            lease.expiry = Some(at);
            st.expiries.push(Reverse((at, id)));
        }
        st.leases.insert(id, lease);
        if st.primary {
            self.schedule_checkpoint(&mut st, id, now);
        }
        Ok(granted)
    }

    /// Revokes lease `id`, deleting its keys in the batch's open request (one revision).
    pub fn revoke(&self, batch: &mut WriteBatch, id: i64) -> Result<(), LeaseError> {
        let keys: Vec<Bytes> = {
            let st = self.state.lock();
            let lease = st.leases.get(&id).ok_or(LeaseError::NotFound)?;
            lease.keys.iter().cloned().collect()
        };
        for key in &keys {
            batch.delete_range(KeySpan::Single(key)).map_err(storage)?;
        }
        batch
            .delete_aux(LEASE_TABLE, &id.to_be_bytes())
            .map_err(storage)?;
        self.state.lock().leases.remove(&id);
        self.changes.send_modify(|n| *n += 1);
        Ok(())
    }

    /// Records the remaining TTLs the leader checkpointed. Unknown leases are skipped.
    pub fn checkpoint(
        &self,
        batch: &mut WriteBatch,
        checkpoints: &[LeaseCheckpoint],
    ) -> Result<(), LeaseError> {
        self.checkpoint_at(batch, checkpoints, Instant::now())
    }

    pub(crate) fn checkpoint_at(
        &self,
        batch: &mut WriteBatch,
        checkpoints: &[LeaseCheckpoint],
        now: Instant,
    ) -> Result<(), LeaseError> {
        let mut st = self.state.lock();
        for cp in checkpoints {
            let Some(lease) = st.leases.get_mut(&cp.id) else {
                continue;
            };
            lease.remaining_ttl = cp.remaining_ttl;
            let record = lease.record(cp.id);
            batch
                .put_aux(LEASE_TABLE, &cp.id.to_be_bytes(), &record)
                .map_err(storage)?;
            if st.primary {
                self.schedule_checkpoint(&mut st, cp.id, now);
            }
        }
        Ok(())
    }

    /// Attach/detach for the KV requests of one apply step.
    pub fn tracker(&self) -> LeaseTracker<'_> {
        LeaseTracker { lessor: self }
    }

    // ---- the primary (leader) side ----

    pub fn is_primary(&self) -> bool {
        self.state.lock().primary
    }

    /// Makes this lessor the primary if `still_leader` holds (checked under the lessor's lock,
    /// so a demotion racing with this call is never lost): every lease gets a fresh deadline
    /// from its remaining TTL plus the configured extension.
    pub fn promote_if(&self, still_leader: impl FnOnce() -> bool) {
        self.promote_at_if(Instant::now(), still_leader)
    }

    pub(crate) fn promote_at_if(&self, now: Instant, still_leader: impl FnOnce() -> bool) {
        let mut st = self.state.lock();
        if st.primary || !still_leader() {
            return;
        }
        st.primary = true;
        self.refresh_all(&mut st, now, self.cfg.promote_extend);
        tracing::info!(leases = st.leases.len(), "lessor promoted to primary");
    }

    /// Stops managing deadlines: every lease lives forever until this member leads again.
    pub fn demote(&self) {
        let mut st = self.state.lock();
        if !st.primary {
            return;
        }
        st.primary = false;
        for lease in st.leases.values_mut() {
            lease.expiry = None;
            lease.next_checkpoint = None;
        }
        st.expiries.clear();
        st.checkpoints.clear();
        drop(st);
        self.changes.send_modify(|n| *n += 1);
    }

    /// Fresh deadlines for every lease; piled-up expiries are spread so that at most three
    /// quarters of the revoke rate fall into any one second.
    fn refresh_all(&self, st: &mut State, now: Instant, extend: Duration) {
        st.expiries.clear();
        st.checkpoints.clear();
        let mut order: Vec<(Instant, i64)> = Vec::with_capacity(st.leases.len());
        for (id, lease) in st.leases.iter_mut() {
            let at = now + extend + Duration::from_secs(lease.effective_ttl().max(0) as u64);
            lease.expiry = Some(at);
            lease.next_checkpoint = None;
            order.push((at, *id));
        }
        order.sort();
        let per_second = (3 * REVOKE_RATE / 4).max(1);
        if order.len() > per_second {
            // The i-th expiry in time order may not come before the first expiry plus
            // i / per_second seconds.
            let first = order[0].0;
            for (i, (at, id)) in order.iter_mut().enumerate() {
                let earliest = first + Duration::from_secs_f64(i as f64 / per_second as f64);
                if *at < earliest {
                    *at = earliest;
                    if let Some(lease) = st.leases.get_mut(id) {
                        lease.expiry = Some(earliest);
                    }
                }
            }
        }
        for (at, id) in order {
            st.expiries.push(Reverse((at, id)));
            self.schedule_checkpoint(st, id, now);
        }
    }

    /// Schedules the next checkpoint of lease `id` one interval from `now` if its TTL (as
    /// last checkpointed) is longer than the interval; replaces a pending one.
    fn schedule_checkpoint(&self, st: &mut State, id: i64, now: Instant) {
        let Some(interval) = self.cfg.checkpoint_interval else {
            return;
        };
        let Some(lease) = st.leases.get_mut(&id) else {
            return;
        };
        if lease.effective_ttl() as f64 > interval.as_secs_f64() {
            let at = now + interval;
            lease.next_checkpoint = Some(at);
            st.checkpoints.push(Reverse((at, id)));
        } else {
            lease.next_checkpoint = None;
        }
    }

    /// One renewal attempt (primary only).
    pub(crate) fn try_renew_at(&self, id: i64, now: Instant) -> RenewAttempt {
        let mut st = self.state.lock();
        if !st.primary {
            return RenewAttempt::Done(Err(LeaseError::NotPrimary));
        }
        let Some(lease) = st.leases.get_mut(&id) else {
            return RenewAttempt::Done(Err(LeaseError::NotFound));
        };
        if lease.expiry.is_some_and(|at| at <= now) {
            return RenewAttempt::Expired;
        }
        let at = now + Duration::from_secs(lease.ttl as u64);
        lease.expiry = Some(at);
        let renewed = Renewed {
            ttl: lease.ttl,
            clear_checkpoint: self.cfg.checkpoint_interval.is_some() && lease.remaining_ttl > 0,
        };
        st.expiries.push(Reverse((at, id)));
        RenewAttempt::Done(Ok(renewed))
    }

    /// Renews lease `id` on the primary. A lease that already expired cannot be renewed: the
    /// call waits (at most `wait`) until it is revoked (not found) or this lessor is demoted
    /// (not primary).
    pub async fn renew(&self, id: i64, wait: Duration) -> Result<Renewed, LeaseError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let mut changes = self.changes.subscribe();
            match self.try_renew_at(id, Instant::now()) {
                RenewAttempt::Done(r) => {
                    if matches!(
                        r,
                        Ok(Renewed {
                            clear_checkpoint: true,
                            ..
                        })
                    ) {
                        self.clears.lock().push(id);
                        self.wake.notify_one();
                    }
                    return r;
                }
                RenewAttempt::Expired => {
                    if tokio::time::timeout_at(deadline, changes.changed())
                        .await
                        .is_err()
                    {
                        return Err(LeaseError::NotPrimary);
                    }
                }
            }
        }
    }

    /// The checkpoints (remaining TTL 0) that clear what renewed leases had recorded.
    pub fn take_clears(&self) -> Vec<LeaseCheckpoint> {
        let mut ids = std::mem::take(&mut *self.clears.lock());
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter()
            .map(|id| LeaseCheckpoint {
                id,
                remaining_ttl: 0,
            })
            .collect()
    }

    /// The lease's TTLs and keys. Off the primary, the remaining time is the TTL a deadline
    /// would start from.
    pub fn lookup(&self, id: i64) -> Option<LeaseInfo> {
        self.lookup_at(id, Instant::now())
    }

    pub(crate) fn lookup_at(&self, id: i64, now: Instant) -> Option<LeaseInfo> {
        let st = self.state.lock();
        let lease = st.leases.get(&id)?;
        let remaining = match lease.expiry {
            Some(at) if at >= now => (at - now).as_secs() as i64,
            Some(at) => -((now - at).as_secs() as i64),
            None => lease.effective_ttl(),
        };
        Some(LeaseInfo {
            granted_ttl: lease.ttl,
            remaining,
            keys: lease.keys.iter().cloned().collect(),
        })
    }

    /// Every lease ID, soonest expiry first.
    pub fn leases(&self) -> Vec<i64> {
        let st = self.state.lock();
        let mut all: Vec<(Option<Instant>, i64)> =
            st.leases.iter().map(|(id, l)| (l.expiry, *id)).collect();
        // `None` (no deadline) sorts last.
        all.sort_by(|a, b| match (a.0, b.0) {
            (Some(x), Some(y)) => x.cmp(&y).then(a.1.cmp(&b.1)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.1.cmp(&b.1),
        });
        all.into_iter().map(|(_, id)| id).collect()
    }

    /// How many leases exist.
    pub fn len(&self) -> usize {
        self.state.lock().leases.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Up to `limit` leases past their deadline, to be revoked through raft. Each is offered
    /// again after the retry interval if it is still there.
    pub fn expired(&self, limit: usize) -> Vec<i64> {
        self.expired_at(Instant::now(), limit)
    }

    pub(crate) fn expired_at(&self, now: Instant, limit: usize) -> Vec<i64> {
        let mut st = self.state.lock();
        let mut out = Vec::new();
        if !st.primary {
            return out;
        }
        while out.len() < limit {
            let Some(Reverse((at, id))) = st.expiries.peek().copied() else {
                break;
            };
            if at > now {
                break;
            }
            st.expiries.pop();
            let Some(lease) = st.leases.get(&id) else {
                continue;
            };
            match lease.expiry {
                // A renewal moved the deadline: this entry is stale.
                Some(expiry) if expiry > at => continue,
                Some(_) => {}
                None => continue,
            }
            out.push(id);
            st.expiries
                .push(Reverse((now + self.cfg.expired_retry, id)));
        }
        out
    }

    /// Up to `limit` checkpoints that are due: leases whose remaining TTL dropped below their
    /// TTL since they were granted or last checkpointed.
    pub fn due_checkpoints(&self, limit: usize) -> Vec<LeaseCheckpoint> {
        self.due_checkpoints_at(Instant::now(), limit)
    }

    pub(crate) fn due_checkpoints_at(&self, now: Instant, limit: usize) -> Vec<LeaseCheckpoint> {
        let mut st = self.state.lock();
        let mut out = Vec::new();
        if !st.primary {
            return out;
        }
        while out.len() < limit {
            let Some(Reverse((at, id))) = st.checkpoints.peek().copied() else {
                break;
            };
            if at > now {
                break;
            }
            st.checkpoints.pop();
            let Some(lease) = st.leases.get_mut(&id) else {
                continue;
            };
            if lease.next_checkpoint != Some(at) {
                // Replaced by a later schedule.
                continue;
            }
            lease.next_checkpoint = None;
            let Some(expiry) = lease.expiry else {
                continue;
            };
            if expiry <= now {
                continue;
            }
            let remaining = (expiry - now).as_secs_f64().ceil() as i64;
            if remaining >= lease.ttl {
                // Just renewed: nothing to record now, but keep the lease on the schedule.
                self.schedule_checkpoint(&mut st, id, now);
                continue;
            }
            out.push(LeaseCheckpoint {
                id,
                remaining_ttl: remaining,
            });
        }
        out
    }
}

/// Implements the KV layer's lease hooks on the lessor: existence checks and the key index.
pub struct LeaseTracker<'a> {
    lessor: &'a Lessor,
}

impl LeaseHooks for LeaseTracker<'_> {
    fn lease_exists(&self, id: i64) -> bool {
        self.lessor.state.lock().leases.contains_key(&id)
    }

    fn attach(&mut self, id: i64, key: &[u8]) {
        if let Some(lease) = self.lessor.state.lock().leases.get_mut(&id) {
            lease.keys.insert(Bytes::copy_from_slice(key));
        }
    }

    fn detach(&mut self, id: i64, key: &[u8]) {
        if let Some(lease) = self.lessor.state.lock().leases.get_mut(&id) {
            lease.keys.remove(key);
        }
    }
}
