//! The cluster under test: one server process per member, each in its own namespace.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use oxcd_proto::etcdserverpb::cluster_client::ClusterClient;
use oxcd_proto::etcdserverpb::kv_client::KvClient;
use oxcd_proto::etcdserverpb::maintenance_client::MaintenanceClient;
use oxcd_proto::etcdserverpb::{
    HashKvRequest, MemberAddRequest, MemberListRequest, MemberRemoveRequest, MoveLeaderRequest,
    RangeRequest, StatusRequest,
};
use tonic::transport::{Channel, Endpoint};

use crate::netns::{self, member_ip, Network, HOST_IP};
use crate::proxy::proxy_port;

const TOKEN: &str = "oxcd-fault";
/// Enough room for the first WAL segment (64 MB, preallocated) and a small database, so the
/// disk fills soon after the load starts.
pub const SMALL_DISK_MB: u64 = 80;

pub fn client_url(member: usize) -> String {
    format!("http://{}:2379", member_ip(member))
}

pub fn peer_url(member: usize) -> String {
    format!("http://{HOST_IP}:{}", proxy_port(member))
}

pub fn name(member: usize) -> String {
    format!("m{member}")
}

/// The store revision member `m` answers a range with (`serializable`: from its own state,
/// without asking the leader).
pub async fn revision_of(m: usize, serializable: bool) -> Result<i64> {
    let mut kv = KvClient::new(channel(m)?);
    let r = kv
        .range(RangeRequest {
            key: b"\0".to_vec().into(),
            serializable,
            count_only: true,
            ..Default::default()
        })
        .await?
        .into_inner();
    r.header
        .map(|h| h.revision)
        .ok_or_else(|| anyhow!("a range answer without a header"))
}

/// A gRPC channel to one member that connects lazily and gives up quickly, so a dead member
/// costs a client one short failure rather than a hang.
pub fn channel(member: usize) -> Result<Channel> {
    Ok(Endpoint::from_shared(client_url(member))?
        .connect_timeout(Duration::from_millis(500))
        .timeout(Duration::from_secs(3))
        .connect_lazy())
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MemberState {
    Running,
    Paused,
    Stopped,
    /// Removed from the cluster; its data is gone.
    Removed,
}

pub struct Cluster {
    pub net: Network,
    bin: PathBuf,
    work: PathBuf,
    procs: Vec<Option<Child>>,
    pub states: Vec<MemberState>,
    /// Members whose data dir is a small tmpfs.
    small_disk: Vec<bool>,
    extra_flags: Vec<String>,
}

impl Cluster {
    pub fn new(
        net: Network,
        bin: &Path,
        work: &Path,
        small_disk: Option<usize>,
        extra_flags: Vec<String>,
    ) -> Result<Cluster> {
        let n = net.members();
        fs::create_dir_all(work)?;
        let mut small = vec![false; n];
        if let Some(m) = small_disk {
            small[m] = true;
        }
        Ok(Cluster {
            net,
            bin: bin.to_path_buf(),
            work: work.to_path_buf(),
            procs: (0..n).map(|_| None).collect(),
            states: vec![MemberState::Stopped; n],
            small_disk: small,
            extra_flags,
        })
    }

    pub fn members(&self) -> usize {
        self.states.len()
    }

    pub fn data_dir(&self, m: usize) -> PathBuf {
        self.work.join(name(m))
    }

    fn initial_cluster(&self, members: impl Iterator<Item = usize>) -> String {
        members
            .map(|m| format!("{}={}", name(m), peer_url(m)))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Starts every member for a new cluster.
    pub fn start_all(&mut self) -> Result<()> {
        for m in 0..self.members() {
            let dir = self.data_dir(m);
            fs::create_dir_all(&dir)?;
            if self.small_disk[m] {
                let size = format!("size={SMALL_DISK_MB}m");
                netns::run(
                    "mount",
                    &["-t", "tmpfs", "-o", &size, "tmpfs", &dir.to_string_lossy()],
                )?;
            }
            let all = self.initial_cluster(0..self.members());
            self.spawn(m, &all, "new")?;
        }
        Ok(())
    }

    fn spawn(&mut self, m: usize, initial_cluster: &str, state: &str) -> Result<()> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.work.join(format!("{}.log", name(m))))?;
        let ip = member_ip(m);
        let bin = self.bin.to_string_lossy().into_owned();
        let mut cmd = self.net.command_in(m, &bin);
        cmd.args(["--name", &name(m)])
            .arg("--data-dir")
            .arg(self.data_dir(m))
            .args(["--listen-peer-urls", &format!("http://{ip}:2380")])
            .args(["--initial-advertise-peer-urls", &peer_url(m)])
            .args(["--listen-client-urls", &client_url(m)])
            .args(["--advertise-client-urls", &client_url(m)])
            .args(["--initial-cluster", initial_cluster])
            .args(["--initial-cluster-token", TOKEN])
            .args(["--initial-cluster-state", state])
            .args(&self.extra_flags)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = cmd.spawn().context("starting a member")?;
        self.procs[m] = Some(child);
        self.states[m] = MemberState::Running;
        Ok(())
    }

    fn pid(&self, m: usize) -> Option<i32> {
        self.procs[m].as_ref().map(|c| c.id() as i32)
    }

    pub fn kill(&mut self, m: usize) {
        if self.states[m] == MemberState::Paused {
            self.signal(m, libc::SIGCONT);
        }
        if let Some(mut child) = self.procs[m].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if self.states[m] != MemberState::Removed {
            self.states[m] = MemberState::Stopped;
        }
    }

    /// Restarts a stopped member from its data dir (its flags are ignored then, as in etcd).
    pub fn restart(&mut self, m: usize) -> Result<()> {
        if self.states[m] != MemberState::Stopped {
            return Ok(());
        }
        let all = self.initial_cluster(0..self.members());
        self.spawn(m, &all, "new")
    }

    fn signal(&self, m: usize, sig: i32) {
        if let Some(pid) = self.pid(m) {
            // SAFETY: plain kill(2) on a child we started; no memory is involved.
            unsafe {
                libc::kill(pid, sig);
            }
        }
    }

    pub fn pause(&mut self, m: usize) {
        if self.states[m] == MemberState::Running {
            self.signal(m, libc::SIGSTOP);
            self.states[m] = MemberState::Paused;
        }
    }

    pub fn resume(&mut self, m: usize) {
        if self.states[m] == MemberState::Paused {
            self.signal(m, libc::SIGCONT);
            self.states[m] = MemberState::Running;
        }
    }

    /// Notices members that exited by themselves (a removed member stops; a full disk may stop
    /// one), so healing restarts them.
    pub fn reap(&mut self) -> Vec<(usize, String)> {
        let mut exited = Vec::new();
        for m in 0..self.members() {
            if let Some(child) = self.procs[m].as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    exited.push((m, status.to_string()));
                    self.procs[m] = None;
                    if self.states[m] != MemberState::Removed {
                        self.states[m] = MemberState::Stopped;
                    }
                }
            }
        }
        exited
    }

    pub fn running(&self) -> Vec<usize> {
        (0..self.members())
            .filter(|&m| self.states[m] == MemberState::Running)
            .collect()
    }

    pub fn grow_disk(&self, m: usize) -> Result<()> {
        if self.small_disk[m] {
            let dir = self.data_dir(m);
            netns::run("mount", &["-o", "remount,size=4g", &dir.to_string_lossy()])?;
        }
        Ok(())
    }

    /// Brings every member back: resumes, restarts and re-adds, and gives full disks room.
    pub async fn heal(&mut self) -> Result<()> {
        self.reap();
        for m in 0..self.members() {
            self.grow_disk(m)?;
            match self.states[m] {
                MemberState::Paused => self.resume(m),
                MemberState::Stopped => self.restart(m)?,
                MemberState::Removed => self.add_back(m).await?,
                MemberState::Running => {}
            }
        }
        Ok(())
    }

    /// The member ID each member reports, by asking it.
    pub async fn member_id(&self, m: usize) -> Result<u64> {
        let mut c = MaintenanceClient::new(channel(m)?);
        let s = c.status(StatusRequest {}).await?.into_inner();
        s.header
            .map(|h| h.member_id)
            .ok_or_else(|| anyhow!("status without header"))
    }

    /// The member the running members say is leader, if any.
    pub async fn leader(&self) -> Option<usize> {
        // Each answer names its own member ID and the leader's, so one round finds the leader.
        let mut ids = Vec::new();
        let mut leader_id = 0;
        for m in self.running() {
            let Ok(ch) = channel(m) else { continue };
            let mut c = MaintenanceClient::new(ch);
            let Ok(Ok(s)) =
                tokio::time::timeout(Duration::from_secs(1), c.status(StatusRequest {})).await
            else {
                continue;
            };
            let s = s.into_inner();
            if let Some(h) = s.header {
                ids.push((m, h.member_id));
            }
            if leader_id == 0 {
                leader_id = s.leader;
            }
        }
        ids.into_iter()
            .find(|&(_, id)| id == leader_id)
            .map(|(m, _)| m)
    }

    /// Asks leader `from` to hand leadership to `to`.
    pub async fn move_leader(&self, from: usize, to: usize) -> Result<()> {
        let target_id = self.member_id(to).await?;
        let mut c = MaintenanceClient::new(channel(from)?);
        c.move_leader(MoveLeaderRequest { target_id }).await?;
        Ok(())
    }

    /// Removes member `m` through another running member and stops it.
    pub async fn remove(&mut self, m: usize) -> Result<()> {
        let id = self.member_id(m).await?;
        let Some(via) = self.running().into_iter().find(|&o| o != m) else {
            bail!("no other member to remove {m} through");
        };
        let mut c = ClusterClient::new(channel(via)?);
        c.member_remove(MemberRemoveRequest { id }).await?;
        self.kill(m);
        self.states[m] = MemberState::Removed;
        Ok(())
    }

    /// Adds a removed member back with an empty data dir, joining the running cluster.
    pub async fn add_back(&mut self, m: usize) -> Result<()> {
        let Some(via) = self.running().into_iter().next() else {
            bail!("no running member to add {m} through");
        };
        let mut c = ClusterClient::new(channel(via)?);
        let resp = c
            .member_add(MemberAddRequest {
                peer_ur_ls: vec![peer_url(m)],
                is_learner: false,
            })
            .await?
            .into_inner();
        let listed = c
            .member_list(MemberListRequest {})
            .await
            .map(|r| r.into_inner().members)
            .unwrap_or(resp.members);
        let initial = listed
            .iter()
            .filter_map(|mem| {
                let url = mem.peer_ur_ls.first()?;
                let idx = (0..self.members()).find(|&i| &peer_url(i) == url)?;
                Some(format!("{}={}", name(idx), url))
            })
            .collect::<Vec<_>>()
            .join(",");
        let dir = self.data_dir(m);
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        self.states[m] = MemberState::Stopped;
        self.spawn(m, &initial, "existing")
    }

    /// Waits until every member has applied `revision` and then compares their KV hashes.
    pub async fn hashes_at(&self, revision: i64, deadline: Duration) -> Result<Vec<u32>> {
        let start = tokio::time::Instant::now();
        let mut hashes = Vec::new();
        for m in 0..self.members() {
            loop {
                if start.elapsed() > deadline {
                    bail!("member {} did not reach revision {revision}", name(m));
                }
                if matches!(revision_of(m, true).await, Ok(r) if r >= revision) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let mut mc = MaintenanceClient::new(channel(m)?);
            let h = mc.hash_kv(HashKvRequest { revision }).await?.into_inner();
            hashes.push(h.hash);
        }
        Ok(hashes)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for m in 0..self.members() {
            self.kill(m);
            if self.small_disk[m] {
                let _ = netns::run("umount", &[&self.data_dir(m).to_string_lossy()]);
            }
        }
    }
}
