//! Starting a member: restart from the WAL, or bootstrap a new cluster from `--initial-cluster`;
//! then wire raft, the applier, the peer transport and the server together.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use oxcd_bootstrap::Config;
use oxcd_proto::etcdserverpb::{Metadata, Request as V2Request};
use oxcd_raft::eraftpb::{ConfState, Entry, EntryType, HardState, Message, Snapshot};
use oxcd_raft::{LogStore, NodeEvents, NodeSettings, RaftNode, ReadState, StateRole};
use parking_lot::RwLock;
use prost::Message as _;
use tokio::sync::watch;

use crate::apply::{Applier, ApplyJob, MembershipHooks};
use crate::conf_change::{ChangeType, ConfChange};
use crate::kv_ops::ApplyOutcome;
use crate::membership::{id_hex, Attributes, Cluster, Member};
use crate::peer::handlers::PeerContext;
use crate::peer::{PeerTransport, TransportConfig};
use crate::read_index::{ReadIndexer, ReadStateHub};
use crate::server::{EtcdServer, Limits};
use crate::store_handle::StoreHandle;
use crate::tls_setup::TlsSetup;
use crate::transport_events::ServerTransportEvents;
use crate::wait::WaitMap;

/// Capacity of the raft thread's command queue.
const RAFT_QUEUE: usize = 65536;

/// A fatal startup error: printed as the guide shows it, then exit status 1.
#[derive(Debug)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub struct Started {
    pub server: Arc<EtcdServer>,
    pub peer_router: axum::Router,
}

struct Paths {
    wal: PathBuf,
    snap: PathBuf,
    db: PathBuf,
}

fn paths(cfg: &Config) -> Paths {
    let member = PathBuf::from(&cfg.data_dir).join("member");
    let snap = member.join("snap");
    Paths {
        wal: if cfg.wal_dir.is_empty() {
            member.join("wal")
        } else {
            PathBuf::from(&cfg.wal_dir)
        },
        db: snap.join("db"),
        snap,
    }
}

/// What the WAL and the backend say about this member when it starts.
struct Recovered {
    id: u64,
    cluster_id: u64,
    log: LogStore,
    wal: oxcd_wal::Wal,
    /// The index and term of the snapshot point the applier starts from.
    applied: u64,
    applied_term: u64,
    conf_state: ConfState,
    fresh: bool,
    /// Members of a running cluster this member is joining, dialled before the log tells
    /// this member about them.
    remotes: Vec<Member>,
}

/// What a member will do when it starts, decided before any listener is bound or file written,
/// so that a misconfigured member fails with the Clustering Guide's message first.
pub enum Plan {
    /// The WAL exists: the `--initial-cluster*` flags are ignored.
    Restart,
    /// A new member of a new cluster.
    New(oxcd_bootstrap::InitialCluster),
    /// A new member joining a running cluster (`--initial-cluster-state existing`).
    Join(oxcd_bootstrap::InitialCluster),
}

pub fn plan(cfg: &Config) -> Result<Plan, StartError> {
    if oxcd_wal::Wal::exists(&paths(cfg).wal) {
        return Ok(Plan::Restart);
    }
    let initial = oxcd_bootstrap::initial_cluster(cfg).map_err(|e| StartError(e.to_string()))?;
    if cfg.initial_cluster_state == oxcd_bootstrap::ClusterState::Existing {
        return Ok(Plan::Join(initial));
    }
    Ok(Plan::New(initial))
}

/// `--quota-backend-bytes`, defaulted.
fn quota_bytes(cfg: &Config) -> u64 {
    cfg.effective_quota_backend_bytes().max(0) as u64
}

pub async fn start(cfg: &Config, plan: Plan, tls: &TlsSetup) -> Result<Started, StartError> {
    let peer_tls = tls.peer_client_config()?;
    let p = paths(cfg);
    let quota = quota_bytes(cfg);
    // The backend is opened once: a restart needs its consistent index before reading the
    // WAL, and new members create it after their WAL (the store creates its directory).
    let (recovered, store) = match plan {
        Plan::Restart => {
            tracing::info!(
                "the server is already initialized as member before, starting as etcd member..."
            );
            let store = StoreHandle::open(&p.db, quota).map_err(StartError)?;
            let applied = store.get().consistent_index();
            (restart(&p, cfg.force_new_cluster, applied)?, store)
        }
        Plan::New(initial) => {
            let rec = bootstrap_new(cfg, &p, initial, peer_tls.clone()).await?;
            (rec, StoreHandle::open(&p.db, quota).map_err(StartError)?)
        }
        Plan::Join(initial) => {
            let rec = join_existing(cfg, &p, initial, peer_tls.clone()).await?;
            (rec, StoreHandle::open(&p.db, quota).map_err(StartError)?)
        }
    };
    let mut cluster = crate::persist::load_cluster(&store.get()).map_err(StartError)?;
    cluster.cluster_id = recovered.cluster_id;
    cluster.local_id = recovered.id;
    if let Some(v) = &cluster.version {
        log_cluster_version(v);
    }
    wire(cfg, p, recovered, store, cluster, peer_tls).await
}

/// `applied` is the backend's consistent index: those entries were committed, even if the
/// hard state in the WAL (whose commit-only updates are not synced) says less.
fn restart(p: &Paths, force_new_cluster: bool, applied: u64) -> Result<Recovered, StartError> {
    // A `.snap` file is made durable before its WAL marker is written: a kill between the two
    // leaves a newest file the WAL cannot replay from, so start from the newest one it can.
    let markers = oxcd_wal::Wal::valid_snapshot_entries(&p.wal)
        .map_err(|e| StartError(format!("failed to open the WAL: {e}")))?;
    let snapshotter = oxcd_wal::Snapshotter::new(&p.snap);
    let snap = snapshotter
        .load_newest_available(&markers)
        .map_err(|e| StartError(format!("failed to load the newest snapshot: {e}")))?;
    let (index, term) = snap
        .as_ref()
        .map(|s| (s.get_metadata().index, s.get_metadata().term))
        .unwrap_or((0, 0));
    let (mut wal, mut contents) =
        oxcd_wal::Wal::open(&p.wal, oxcd_wal::WalSnapshot { index, term })
            .map_err(|e| StartError(format!("failed to open the WAL: {e}")))?;
    let meta = Metadata::decode(contents.metadata.as_slice())
        .map_err(|e| StartError(format!("bad WAL metadata: {e}")))?;
    let mut log = LogStore::default();
    let mut conf_state = ConfState::default();
    if let Some(s) = &snap {
        log.restore_snapshot_point(s.get_metadata().clone());
        conf_state = s.get_metadata().get_conf_state().clone();
    }
    let last_in_wal = contents.entries.last().map(|e| e.index).unwrap_or(index);
    contents.hard_state.commit = contents.hard_state.commit.max(applied.min(last_in_wal));
    if force_new_cluster {
        force_single_member(&mut wal, &mut contents, &conf_state, meta.node_id)?;
    }
    // Bootstrap conf changes are in the log; raft's view is rebuilt by re-applying them, but
    // raft-rs needs the voters up front to start, so derive them from the log as well.
    let (voters, _) = members_in_log(&conf_state, &contents.entries);
    log.append(&contents.entries)
        .map_err(|e| StartError(format!("the WAL's entries do not follow its snapshot: {e}")))?;
    if conf_state.voters.is_empty() {
        conf_state.voters = voters;
        log.set_conf_state(conf_state.clone());
    }
    let mut hs = contents.hard_state.clone();
    hs.commit = hs.commit.min(log.last_index()).max(index);
    log.set_hard_state(hs.clone());
    tracing::info!(
        "restarting member {} in cluster {} at commit index {}",
        id_hex(meta.node_id),
        id_hex(meta.cluster_id),
        hs.commit
    );
    Ok(Recovered {
        id: meta.node_id,
        cluster_id: meta.cluster_id,
        log,
        wal,
        applied: index,
        applied_term: term,
        conf_state,
        fresh: false,
        remotes: Vec::new(),
    })
}

/// The voters and learners after the conf changes in `entries`, starting from `conf_state`.
fn members_in_log(conf_state: &ConfState, entries: &[Entry]) -> (Vec<u64>, Vec<u64>) {
    let mut voters: Vec<u64> = conf_state.voters.clone();
    let mut learners: Vec<u64> = conf_state.learners.clone();
    for e in entries {
        if e.get_entry_type() != EntryType::EntryConfChange {
            continue;
        }
        let Ok(cc) = ConfChange::decode(e.data.as_ref()) else {
            continue;
        };
        let id = cc.node_id;
        match cc.kind() {
            Some(ChangeType::Add) => {
                learners.retain(|v| *v != id);
                if !voters.contains(&id) {
                    voters.push(id);
                }
            }
            Some(ChangeType::AddLearner) if !learners.contains(&id) => learners.push(id),
            Some(ChangeType::Remove) => {
                voters.retain(|v| *v != id);
                learners.retain(|v| *v != id);
            }
            _ => {}
        }
    }
    (voters, learners)
}

/// `--force-new-cluster`: drop what was never committed and append committed removals of every
/// other member, so that this member alone forms the cluster (with all its data) on start.
fn force_single_member(
    wal: &mut oxcd_wal::Wal,
    contents: &mut oxcd_wal::WalContents,
    conf_state: &ConfState,
    local: u64,
) -> Result<(), StartError> {
    let commit = contents.hard_state.commit;
    contents.entries.retain(|e| e.index <= commit);
    let (voters, learners) = members_in_log(conf_state, &contents.entries);
    let mut next = contents
        .entries
        .last()
        .map(|e| e.index)
        .unwrap_or(commit)
        .max(commit)
        + 1;
    let term = contents.hard_state.term;
    let mut removals = Vec::new();
    for id in voters
        .iter()
        .chain(learners.iter())
        .filter(|id| **id != local)
    {
        let cc = ConfChange::new(ChangeType::Remove, *id, Bytes::new());
        let mut e = Entry::default();
        e.set_entry_type(EntryType::EntryConfChange);
        e.term = term;
        e.index = next;
        e.data = Bytes::from(cc.encode_to_vec());
        next += 1;
        removals.push(e);
    }
    if removals.is_empty() {
        return Ok(());
    }
    let mut hs = contents.hard_state.clone();
    hs.commit = next - 1;
    wal.save(Some(&hs), &removals)
        .map_err(|e| StartError(format!("cannot write to WAL directory: {e}")))?;
    tracing::warn!(
        "forcing a new cluster: removing {} other member(s) at index {}",
        removals.len(),
        hs.commit
    );
    contents.entries.extend(removals);
    contents.hard_state = hs;
    Ok(())
}

async fn bootstrap_new(
    cfg: &Config,
    p: &Paths,
    initial: oxcd_bootstrap::InitialCluster,
    peer_tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<Recovered, StartError> {
    let local = initial
        .members
        .iter()
        .find(|m| m.name == cfg.name)
        .ok_or_else(|| {
            StartError(format!(
                "{} not listed in the initial cluster config",
                cfg.name
            ))
        })?;
    let local_id = local.id;
    let cluster_id = initial.cluster_id;
    check_peers_before_bootstrap(&initial, local_id, cluster_id, peer_tls).await?;

    let mut wal = create_member_wal(p, local_id, cluster_id)?;
    let mut entries = Vec::new();
    let mut ids: Vec<u64> = Vec::new();
    for (i, m) in initial.members.iter().enumerate() {
        let member = Member {
            id: m.id,
            peer_urls: m.peer_urls.clone(),
            name: m.name.clone(),
            ..Default::default()
        };
        let context =
            Bytes::from(serde_json::to_vec(&member).map_err(|e| StartError(e.to_string()))?);
        let cc = ConfChange::new(ChangeType::Add, m.id, context);
        let mut e = Entry::default();
        e.set_entry_type(EntryType::EntryConfChange);
        e.term = 1;
        e.index = i as u64 + 1;
        e.data = Bytes::from(cc.encode_to_vec());
        entries.push(e);
        ids.push(m.id);
    }
    let hs = HardState {
        term: 1,
        commit: entries.len() as u64,
        ..Default::default()
    };
    wal.save(Some(&hs), &entries)
        .map_err(|e| StartError(format!("cannot write to WAL directory: {e}")))?;
    let mut log = LogStore::default();
    let conf_state = ConfState {
        voters: ids,
        ..Default::default()
    };
    log.set_conf_state(conf_state.clone());
    log.append(&entries)
        .map_err(|e| StartError(e.to_string()))?;
    log.set_hard_state(hs);
    tracing::info!(
        "starting member {} in cluster {}",
        id_hex(local_id),
        id_hex(cluster_id)
    );
    Ok(Recovered {
        id: local_id,
        cluster_id,
        log,
        wal,
        applied: 0,
        applied_term: 0,
        conf_state,
        fresh: true,
        remotes: Vec::new(),
    })
}

/// Joins a running cluster: learns its ID and members from a peer's `/members`, takes the ID
/// the cluster assigned to this member's peer URLs, and starts with an empty log; the leader
/// then sends the log or a snapshot.
async fn join_existing(
    cfg: &Config,
    p: &Paths,
    initial: oxcd_bootstrap::InitialCluster,
    peer_tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<Recovered, StartError> {
    let client = crate::peer_client::PeerClient::new(peer_tls, Duration::from_secs(10));
    let mut urls: Vec<&String> = initial
        .members
        .iter()
        .filter(|m| m.id != initial.local_id)
        .flat_map(|m| m.peer_urls.iter())
        .collect();
    urls.sort();
    let mut fetched = None;
    for url in urls {
        match client.members(url).await {
            Ok((cid, members)) if !members.is_empty() => {
                fetched = Some((cid, members));
                break;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("could not get cluster response from {url}: {e}"),
        }
    }
    let Some((cluster_id, existing)) = fetched else {
        return Err(StartError(
            "cannot fetch cluster info from peer urls: could not retrieve cluster information from the given URLs".into(),
        ));
    };
    if existing.len() != initial.members.len() {
        return Err(StartError(format!(
            "error validating peerURLs {}: member count is unequal",
            id_hex(cluster_id)
        )));
    }
    let sorted = |v: &[String]| {
        let mut v = v.to_vec();
        v.sort();
        v
    };
    let local_urls = initial
        .members
        .iter()
        .find(|m| m.id == initial.local_id)
        .map(|m| sorted(&m.peer_urls))
        .unwrap_or_default();
    let mut local_id = None;
    for m in &existing {
        let urls = sorted(&m.peer_urls);
        if !initial.members.iter().any(|l| sorted(&l.peer_urls) == urls) {
            return Err(StartError(format!(
                "error validating peerURLs {}: PeerURLs: no match found for existing member ({}, {:?})",
                id_hex(cluster_id),
                id_hex(m.id),
                m.peer_urls
            )));
        }
        if urls == local_urls {
            local_id = Some(m.id);
        }
    }
    let Some(local_id) = local_id else {
        return Err(StartError(format!(
            "member with peer URLs {local_urls:?} is not in cluster {}",
            id_hex(cluster_id)
        )));
    };
    let wal = create_member_wal(p, local_id, cluster_id)?;
    tracing::info!(
        "joining cluster {} as member {} ({})",
        id_hex(cluster_id),
        id_hex(local_id),
        cfg.name
    );
    Ok(Recovered {
        id: local_id,
        cluster_id,
        log: LogStore::default(),
        wal,
        applied: 0,
        applied_term: 0,
        conf_state: ConfState::default(),
        fresh: true,
        remotes: existing.into_iter().filter(|m| m.id != local_id).collect(),
    })
}

/// The member's directories and a new WAL whose metadata names this member and its cluster
/// (etcd's `etcdserverpb.Metadata`, read back on every restart).
fn create_member_wal(
    p: &Paths,
    local_id: u64,
    cluster_id: u64,
) -> Result<oxcd_wal::Wal, StartError> {
    std::fs::create_dir_all(&p.snap)
        .map_err(|e| StartError(format!("cannot write to member directory: {e}")))?;
    let metadata = Metadata {
        node_id: local_id,
        cluster_id,
    }
    .encode_to_vec();
    oxcd_wal::Wal::create(&p.wal, &metadata)
        .map_err(|e| StartError(format!("cannot write to WAL directory: {e}")))
}

/// Asks the other initial members who they are before creating anything: a running cluster
/// with another ID means this member was configured for a different cluster.
async fn check_peers_before_bootstrap(
    initial: &oxcd_bootstrap::InitialCluster,
    local_id: u64,
    cluster_id: u64,
    peer_tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<(), StartError> {
    let client = crate::peer_client::PeerClient::new(peer_tls, Duration::from_secs(1));
    for m in initial.members.iter().filter(|m| m.id != local_id) {
        for url in &m.peer_urls {
            let Ok((remote_cluster, members)) = client.members(url).await else {
                continue;
            };
            if remote_cluster != cluster_id {
                return Err(StartError(format!(
                    "conflicting cluster ID to the target cluster ({} != {}). Exiting.",
                    id_hex(cluster_id),
                    id_hex(remote_cluster)
                )));
            }
            if members
                .iter()
                .any(|p| p.id == local_id && !p.client_urls.is_empty())
            {
                return Err(StartError(format!(
                    "member {} has already been bootstrapped",
                    id_hex(local_id)
                )));
            }
            return Ok(());
        }
    }
    Ok(())
}

fn log_cluster_version(v: &str) {
    let short: String = v.split('.').take(2).collect::<Vec<_>>().join(".");
    tracing::info!("set the initial cluster version to {short}");
    tracing::info!("enabled capabilities for version {short}");
}

struct ServerEvents {
    transport: Arc<OnceLock<Arc<PeerTransport>>>,
    apply_tx: std::sync::mpsc::Sender<ApplyJob>,
    hub: Arc<ReadStateHub>,
    wait: Arc<WaitMap<ApplyOutcome>>,
    leader_tx: watch::Sender<(u64, bool)>,
    local_id: u64,
    seen_leader: Arc<AtomicBool>,
    lessor: Arc<crate::lease::Lessor>,
}

impl NodeEvents for ServerEvents {
    fn send(&mut self, msgs: Vec<Message>) {
        if let Some(t) = self.transport.get() {
            t.send(msgs);
        }
    }

    fn committed(&mut self, snapshot: Option<Snapshot>, entries: Vec<Entry>) {
        let _ = self.apply_tx.send(ApplyJob::Entries { snapshot, entries });
    }

    fn read_states(&mut self, states: Vec<ReadState>) {
        self.hub.deliver(states);
    }

    fn leader_changed(&mut self, leader: u64, term: u64, role: StateRole) {
        if leader != 0 {
            self.seen_leader.store(true, Ordering::Release);
            if role == StateRole::Leader {
                tracing::info!("{} became leader at term {term}", id_hex(self.local_id));
            }
            tracing::info!(
                "raft.node: {} elected leader {} at term {term}",
                id_hex(self.local_id),
                id_hex(leader)
            );
        } else {
            tracing::info!(
                "raft.node: {} lost leader at term {term}",
                id_hex(self.local_id)
            );
        }
        if role != StateRole::Leader {
            // Promotion waits for the applier (the leader's first entry); demotion is at once.
            self.lessor.demote();
        }
        let _ = self.leader_tx.send((leader, role == StateRole::Leader));
    }

    fn proposals_dropped(&mut self, ids: Vec<u64>) {
        for id in ids {
            self.wait.trigger(id, ApplyOutcome::Dropped);
        }
    }

    fn fatal(&mut self, err: String) {
        crate::fatal(&err);
    }
}

struct Hooks {
    transport: Arc<OnceLock<Arc<PeerTransport>>>,
}

impl MembershipHooks for Hooks {
    fn member_added(&self, id: u64) {
        if let Some(t) = self.transport.get() {
            t.add_peer(id);
        }
    }
    fn member_removed(&self, id: u64) {
        if let Some(t) = self.transport.get() {
            t.remove_peer(id);
        }
    }
    fn local_removed(&self) {
        crate::exit_removed();
    }
    fn cluster_version_set(&self, version: &str) {
        log_cluster_version(version);
    }
}

async fn wire(
    cfg: &Config,
    p: Paths,
    rec: Recovered,
    store: StoreHandle,
    cluster: Cluster,
    peer_tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<Started, StartError> {
    let id = rec.id;
    let cluster_id = rec.cluster_id;
    let peer_ids: Vec<u64> = cluster.peer_ids().collect();
    let cluster = Arc::new(RwLock::new(cluster));
    let wait: Arc<WaitMap<ApplyOutcome>> = Arc::new(WaitMap::default());
    let hub = Arc::new(ReadStateHub::default());
    let (applied_tx, applied_rx) = watch::channel(
        rec.applied.max(
            store
                .get()
                .consistent_index()
                .min(rec.log.hard_state().commit),
        ),
    );
    let (leader_tx, leader_rx) = watch::channel((0u64, false));
    let (apply_tx, apply_rx) = std::sync::mpsc::channel();
    let defrag_tx = apply_tx.clone();
    let snapshot_tx = apply_tx.clone();
    let transport_cell: Arc<OnceLock<Arc<PeerTransport>>> = Arc::new(OnceLock::new());
    let seen_leader = Arc::new(AtomicBool::new(false));
    let lessor = Arc::new(crate::lease::Lessor::new(
        crate::lease::LessorConfig::from_config(cfg),
    ));
    lessor.recover(&store.get()).map_err(StartError)?;
    let lease_http = crate::http_client::peer_http_client(
        peer_tls.clone(),
        Duration::from_millis(1000 + cfg.election_timeout_ms),
    );
    let _ = lessor
        .forward
        .set(crate::lease::forward::Forwarder::new(lease_http));
    let events = ServerEvents {
        transport: transport_cell.clone(),
        apply_tx,
        hub: hub.clone(),
        wait: wait.clone(),
        leader_tx,
        local_id: id,
        seen_leader: seen_leader.clone(),
        lessor: lessor.clone(),
    };
    let tick_ms = cfg.heartbeat_interval_ms.max(1);
    let settings = NodeSettings {
        id,
        election_tick: (cfg.election_timeout_ms / tick_ms).max(2) as usize,
        heartbeat_tick: 1,
        tick_interval: Duration::from_millis(tick_ms),
        pre_vote: true,
        applied: rec.applied,
        wal_dir: p.wal.clone(),
        snap_dir: p.snap.clone(),
    };
    let (raft, _thread) = RaftNode::spawn(settings, rec.log, rec.wal, events, RAFT_QUEUE)
        .map_err(|e| StartError(e.to_string()))?;

    let advertise_peer_urls: Vec<String> = cfg
        .initial_advertise_peer_urls
        .iter()
        .map(|u| u.as_str().trim_end_matches('/').to_string())
        .collect();
    let transport_events = Arc::new(ServerTransportEvents {
        fresh: rec.fresh,
        seen_leader,
        store: store.clone(),
        apply_tx: snapshot_tx,
    });
    let transport = PeerTransport::new(
        TransportConfig {
            local_id: id,
            cluster_id,
            advertise_peer_urls,
            dial_timeout: Duration::from_millis(1000 + cfg.election_timeout_ms),
            tls: peer_tls,
        },
        cluster.clone(),
        raft.clone(),
        transport_events,
        tokio::runtime::Handle::current(),
    );
    let _ = transport_cell.set(transport.clone());
    for remote in &rec.remotes {
        transport.add_remote(remote.id, remote.peer_urls.clone());
    }
    for peer in peer_ids {
        transport.add_peer(peer);
    }

    let watch =
        crate::watch::WatchHub::new(store.clone(), crate::watch::WatchConfig::from_config(cfg));
    let alarms = Arc::new(crate::alarms::Alarms::load(&store.get()).map_err(StartError)?);
    let applier = Applier {
        store: store.clone(),
        cluster: cluster.clone(),
        wait: wait.clone(),
        raft: raft.clone(),
        applied_tx,
        // A snapshot point here is cheap (a durable backend commit and a small .snap file; the
        // data is read from the backend when a follower needs it), and it is what lets raft
        // drop entries from memory: without the cap, memory grew with every entry written
        // since the last point (etcd's default --snapshot-count is 100,000 entries).
        snapshot_count: cfg
            .snapshot_count
            .clamp(1, crate::apply::MAX_ENTRIES_BETWEEN_SNAPSHOT_POINTS),
        snap_dir: p.snap.clone(),
        hooks: Arc::new(Hooks {
            transport: transport_cell.clone(),
        }),
        events: watch.clone(),
        lessor: lessor.clone(),
        alarms: alarms.clone(),
        conf_state: rec.conf_state,
        applied_index: rec.applied,
        // A snapshot pinned for a follower before this member applies anything carries this
        // term: a term of 0 matches any index past a follower's log and made it panic.
        applied_term: rec.applied_term,
        last_snapshot_index: rec.applied,
        durable_schedule: crate::apply::DurableSchedule::new(Instant::now()),
        pending_snapshot_point: None,
    };
    std::thread::Builder::new()
        .name("apply".into())
        .spawn(move || applier.run(apply_rx))
        .map_err(|e| StartError(e.to_string()))?;

    let request_timeout = Duration::from_millis(5000 + 2 * cfg.election_timeout_ms);
    let reads = ReadIndexer::start(raft.clone(), hub, applied_rx.clone(), request_timeout, id);
    let server = Arc::new(EtcdServer::new(
        id,
        cluster_id,
        cluster.clone(),
        raft,
        store,
        Limits {
            max_request_bytes: cfg.max_request_bytes as usize + 1024,
            max_txn_ops: cfg.max_txn_ops as usize,
            request_timeout,
            strict_reconfig_check: cfg.strict_reconfig_check,
            quota_backend_bytes: quota_bytes(cfg),
        },
        wait,
        reads,
        applied_rx,
        watch,
        lessor,
        transport.clone(),
        alarms,
        defrag_tx,
    ));

    let attrs = Attributes {
        name: cfg.name.clone(),
        client_urls: cfg
            .advertise_client_urls
            .iter()
            .map(|u| u.as_str().trim_end_matches('/').to_string())
            .collect(),
    };
    tokio::spawn(publish(server.clone(), attrs));
    tokio::spawn(decide_cluster_version(server.clone(), leader_rx));
    if cfg.experimental_auto_promote_learners {
        tokio::spawn(crate::members::auto_promote_learners(server.clone()));
    }
    tokio::spawn(crate::lease::run(server.clone()));

    let peer_router = crate::peer::handlers::router(PeerContext {
        transport,
        snap_dir: p.snap,
        server: server.clone(),
        leases: crate::lease::forward::LeasePeer {
            server: server.clone(),
        },
    });
    Ok(Started {
        server,
        peer_router,
    })
}

/// Publishes this member's name and client URLs through raft, retrying until it succeeds.
async fn publish(server: Arc<EtcdServer>, attrs: Attributes) {
    let val = serde_json::to_string(&attrs).unwrap_or_default();
    loop {
        let id = server.next_request_id();
        let req = V2Request {
            id,
            method: "PUT".into(),
            path: format!("/0/members/{}/attributes", id_hex(server.id)),
            val: val.clone(),
            ..Default::default()
        };
        match server.propose_bytes(id, req.encode_to_vec()).await {
            Ok(_) => {
                tracing::info!(
                    "published {{Name:{} ClientURLs:[{}]}} to cluster {}",
                    attrs.name,
                    attrs.client_urls.join(" "),
                    id_hex(server.cluster_id)
                );
                return;
            }
            Err(e) => {
                tracing::debug!(error = %e, "publish attributes failed, retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// The leader sets the cluster version once; every member running this binary speaks 3.4.
async fn decide_cluster_version(server: Arc<EtcdServer>, mut leader: watch::Receiver<(u64, bool)>) {
    loop {
        if leader.changed().await.is_err() {
            return;
        }
        let is_leader = leader.borrow().1;
        if !is_leader || server.cluster.read().version.is_some() {
            continue;
        }
        loop {
            if server.cluster.read().version.is_some() || !server.raft.status.is_leader() {
                break;
            }
            let id = server.next_request_id();
            let req = V2Request {
                id,
                method: "PUT".into(),
                path: "/0/version".into(),
                val: crate::peer::CLUSTER_VERSION.into(),
                ..Default::default()
            };
            if server.propose_bytes(id, req.encode_to_vec()).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
