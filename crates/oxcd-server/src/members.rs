//! Runtime reconfiguration: MemberAdd, MemberRemove, MemberUpdate and MemberPromote.
//!
//! Each change is proposed as an `EntryConfChange` in etcd's encoding and its result comes back
//! from the applier, which checks it against the membership at the point it commits (so two
//! racing changes cannot both pass). Before proposing, a change that would leave fewer working
//! voters than a quorum is refused (`--strict-reconfig-check`): "working" means this member plus
//! the peers whose streams are up now, so a member can be added while another is down as long
//! as the cluster keeps a working quorum (where etcd 3.4 refuses; etcd issue #10499).

use bytes::Bytes;
use prost::Message as _;

use crate::conf_change::{ChangeType, ConfChange};
use crate::errors::ServerError;
use crate::kv_ops::ApplyOutcome;
use crate::membership::{id_hex, Member};
use crate::server::EtcdServer;

/// What a change does to the set of voters, for the quorum check.
enum VoterChange {
    Add,
    Remove(u64),
}

impl EtcdServer {
    /// Adds a member (a voter, or a learner). Its ID is derived like etcd's runtime adds: from
    /// its peer URLs and the current time.
    pub async fn member_add(
        &self,
        peer_urls: Vec<String>,
        is_learner: bool,
    ) -> Result<(Member, Vec<Member>), ServerError> {
        let peer_urls = normalize_urls(&peer_urls)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let id = oxcd_bootstrap::ids::member_id_from_strings(&peer_urls, "", Some(now));
        let member = Member {
            id,
            peer_urls,
            is_learner,
            ..Default::default()
        };
        if !is_learner {
            self.check_quorum_after(VoterChange::Add)?;
        }
        let kind = if is_learner {
            ChangeType::AddLearner
        } else {
            ChangeType::Add
        };
        let context =
            serde_json::to_vec(&member).map_err(|e| ServerError::Internal(e.to_string()))?;
        self.configure(kind, id, context).await?;
        Ok((member, self.members()))
    }

    pub async fn member_remove(&self, id: u64) -> Result<Vec<Member>, ServerError> {
        let is_voter = self
            .cluster
            .read()
            .member(id)
            .is_some_and(|m| !m.is_learner);
        if is_voter {
            self.check_quorum_after(VoterChange::Remove(id))?;
        }
        self.configure(ChangeType::Remove, id, Vec::new()).await?;
        Ok(self.members())
    }

    pub async fn member_update(
        &self,
        id: u64,
        peer_urls: Vec<String>,
    ) -> Result<Vec<Member>, ServerError> {
        let peer_urls = normalize_urls(&peer_urls)?;
        let member = Member {
            id,
            peer_urls,
            ..Default::default()
        };
        let context =
            serde_json::to_vec(&member).map_err(|e| ServerError::Internal(e.to_string()))?;
        self.configure(ChangeType::Update, id, context).await?;
        Ok(self.members())
    }

    /// Promotes a learner to a voter, only once it has caught up with the leader's log.
    pub async fn member_promote(&self, id: u64) -> Result<Vec<Member>, ServerError> {
        if !self.raft.status.is_leader() {
            return self.forward_promote(id).await;
        }
        let member = self
            .cluster
            .read()
            .member(id)
            .cloned()
            .ok_or(ServerError::MemberNotFound)?;
        if !member.is_learner {
            return Err(ServerError::MemberNotLearner);
        }
        if !self.learner_in_sync(id).await {
            return Err(ServerError::LearnerNotReady);
        }
        self.check_quorum_after(VoterChange::Add)?;
        let mut context =
            serde_json::to_value(&member).map_err(|e| ServerError::Internal(e.to_string()))?;
        if let Some(obj) = context.as_object_mut() {
            obj.insert("isPromote".into(), serde_json::Value::Bool(true));
        }
        let context =
            serde_json::to_vec(&context).map_err(|e| ServerError::Internal(e.to_string()))?;
        self.configure(ChangeType::Add, id, context).await?;
        Ok(self.members())
    }

    /// Followers cannot judge a learner's progress: the leader does the promotion, over the
    /// peer port as etcd does (`POST /members/promote/<decimal id>`).
    async fn forward_promote(&self, id: u64) -> Result<Vec<Member>, ServerError> {
        let leader = self.raft.status.leader();
        if leader == 0 {
            return Err(ServerError::NoLeader);
        }
        let (status, body) = self
            .transport
            .post_text(leader, &format!("/members/promote/{id}"))
            .await
            .map_err(|_| ServerError::Timeout)?;
        if status.is_success() {
            return Ok(self.members());
        }
        let text = body.trim();
        Err([
            ServerError::LearnerNotReady,
            ServerError::MemberNotLearner,
            ServerError::MemberNotFound,
            ServerError::NotEnoughStarted,
        ]
        .into_iter()
        .find(|e| e.to_string() == text)
        .unwrap_or_else(|| {
            ServerError::Internal(text.trim_start_matches("etcdserver: ").to_string())
        }))
    }

    /// A learner is in sync once its log has reached 90% of the leader's commit index, like
    /// etcd; only the leader can tell, so a follower asks it.
    async fn learner_in_sync(&self, id: u64) -> bool {
        match self.raft.progress(id).await {
            Ok(Some(matched)) => {
                let committed = self.raft.status.committed();
                matched as f64 >= committed as f64 * 0.9
            }
            _ => false,
        }
    }

    /// Refuses a change that would leave fewer reachable voters than the new quorum.
    fn check_quorum_after(&self, change: VoterChange) -> Result<(), ServerError> {
        if !self.limits.strict_reconfig_check {
            return Ok(());
        }
        let cluster = self.cluster.read();
        let voters: Vec<u64> = cluster
            .members
            .values()
            .filter(|m| !m.is_learner)
            .map(|m| m.id)
            .collect();
        let reachable = |id: &u64| *id == self.id || self.transport.is_active(*id);
        let (total, up) = match change {
            VoterChange::Add => (
                voters.len() + 1,
                voters.iter().filter(|id| reachable(id)).count(),
            ),
            VoterChange::Remove(gone) => (
                voters.len().saturating_sub(1),
                voters
                    .iter()
                    .filter(|id| **id != gone && reachable(id))
                    .count(),
            ),
        };
        // Growing a one-member cluster always passes (etcd allows it too: it is how a cluster
        // restored from one member gets its peers back), though quorum waits for the new one.
        let growing_single = total == 2 && voters.len() == 1;
        if up < total / 2 + 1 && !growing_single {
            return Err(ServerError::NotEnoughStarted);
        }
        Ok(())
    }

    /// Proposes a configuration change and waits for the applier's verdict on it.
    async fn configure(
        &self,
        kind: ChangeType,
        node_id: u64,
        context: Vec<u8>,
    ) -> Result<(), ServerError> {
        let id = self.next_request_id();
        let mut cc = ConfChange::new(kind, node_id, Bytes::from(context));
        cc.id = id;
        let rx = self.wait.register(id);
        if let Err(e) = self.raft.try_send(oxcd_raft::Command::ProposeConfChange {
            id,
            data: cc.encode_to_vec(),
        }) {
            self.wait.cancel(id);
            return Err(match e {
                oxcd_raft::RaftError::Busy => ServerError::TooManyRequests,
                _ => ServerError::Stopped,
            });
        }
        match tokio::time::timeout(self.limits.request_timeout, rx).await {
            Ok(Ok(ApplyOutcome::ConfChange(result))) => result,
            Ok(Ok(ApplyOutcome::Dropped)) => Err(ServerError::NoLeader),
            Ok(Ok(_)) => Err(ServerError::Internal("unexpected apply result".into())),
            Ok(Err(_)) => Err(ServerError::Stopped),
            Err(_) => {
                self.wait.cancel(id);
                tracing::warn!(member = %id_hex(node_id), "configuration change timed out");
                Err(ServerError::Timeout)
            }
        }
    }
}

/// Peer URLs as etcd stores them: parsed, without a trailing slash, sorted.
fn normalize_urls(urls: &[String]) -> Result<Vec<String>, ServerError> {
    let mut out = Vec::with_capacity(urls.len());
    for u in urls {
        let parsed = url::Url::parse(u.trim()).map_err(|_| ServerError::MemberBadUrls)?;
        let ok_scheme = matches!(parsed.scheme(), "http" | "https" | "unix" | "unixs");
        if !ok_scheme || parsed.host_str().is_none() || parsed.port().is_none() {
            return Err(ServerError::MemberBadUrls);
        }
        if !(parsed.path().is_empty() || parsed.path() == "/") {
            return Err(ServerError::MemberBadUrls);
        }
        out.push(parsed.as_str().trim_end_matches('/').to_string());
    }
    if out.is_empty() {
        return Err(ServerError::MemberBadUrls);
    }
    out.sort();
    Ok(out)
}

/// `--experimental-auto-promote-learners`: while this member leads, promote every learner that
/// has caught up (the same test as a manual promotion), one at a time.
pub async fn auto_promote_learners(server: std::sync::Arc<EtcdServer>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tick.tick().await;
        if !server.raft.status.is_leader() {
            continue;
        }
        let learners: Vec<u64> = server
            .cluster
            .read()
            .members
            .values()
            .filter(|m| m.is_learner)
            .map(|m| m.id)
            .collect();
        for id in learners {
            if !server.learner_in_sync(id).await {
                continue;
            }
            match server.member_promote(id).await {
                Ok(_) => tracing::info!("promoted learner {} to a voting member", id_hex(id)),
                Err(e) => {
                    tracing::debug!(member = %id_hex(id), error = %e, "automatic promotion deferred")
                }
            }
        }
    }
}
