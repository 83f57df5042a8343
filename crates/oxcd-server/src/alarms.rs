//! Cluster alarms (NOSPACE, CORRUPT): raised and disarmed through raft, kept in the backend
//! with the consistent index, and consulted before and while applying writes.
//!
//! NOSPACE is raised by the member that notices its backend passing `--quota-backend-bytes`;
//! while it is active the cluster refuses writes that grow the store (Put, Txn with a put,
//! LeaseGrant) with etcd's "database space exceeded", and serves reads, deletes and compaction
//! so an operator can make room and disarm it.

use std::collections::BTreeSet;

use oxcd_mvcc::{KvStore, WriteBatch};
use oxcd_proto::etcdserverpb::alarm_request::AlarmAction;
use oxcd_proto::etcdserverpb::request_op::Request as Op;
use oxcd_proto::etcdserverpb::{
    AlarmMember, AlarmRequest, AlarmType, InternalRaftRequest, TxnRequest,
};
use parking_lot::RwLock;

const TABLE: &str = "alarm";

#[derive(Default)]
pub struct Alarms {
    active: RwLock<BTreeSet<(u64, i32)>>,
}

fn key(member: u64, alarm: i32) -> String {
    format!("{member:016x}:{alarm}")
}

impl Alarms {
    pub fn load(store: &KvStore) -> Result<Alarms, String> {
        let alarms = Alarms::default();
        alarms.reload(store)?;
        Ok(alarms)
    }

    /// Re-reads the alarms after the store was replaced by a snapshot.
    pub fn reload(&self, store: &KvStore) -> Result<(), String> {
        let view = store.read().map_err(|e| e.to_string())?;
        let mut set = BTreeSet::new();
        for (k, _) in view.scan_aux(TABLE).map_err(|e| e.to_string())? {
            let text = String::from_utf8_lossy(&k).into_owned();
            if let Some((m, a)) = text.split_once(':') {
                if let (Ok(m), Ok(a)) = (u64::from_str_radix(m, 16), a.parse::<i32>()) {
                    set.insert((m, a));
                }
            }
        }
        *self.active.write() = set;
        Ok(())
    }

    pub fn list(&self) -> Vec<AlarmMember> {
        self.active
            .read()
            .iter()
            .map(|(m, a)| AlarmMember {
                member_id: *m,
                alarm: *a,
            })
            .collect()
    }

    pub fn any(&self) -> bool {
        !self.active.read().is_empty()
    }

    pub fn has(&self, alarm: AlarmType) -> bool {
        self.active.read().iter().any(|(_, a)| *a == alarm as i32)
    }

    /// Applies a committed alarm request; returns the alarms it concerns, like etcd.
    pub fn apply(
        &self,
        batch: &mut WriteBatch,
        req: &AlarmRequest,
    ) -> Result<Vec<AlarmMember>, String> {
        let member = AlarmMember {
            member_id: req.member_id,
            alarm: req.alarm,
        };
        match AlarmAction::try_from(req.action).unwrap_or(AlarmAction::Get) {
            AlarmAction::Get => Ok(self.list()),
            AlarmAction::Activate => {
                if req.alarm == AlarmType::None as i32 {
                    return Ok(Vec::new());
                }
                batch
                    .put_aux(TABLE, key(req.member_id, req.alarm).as_bytes(), b"")
                    .map_err(|e| e.to_string())?;
                if self.active.write().insert((req.member_id, req.alarm)) {
                    tracing::warn!(
                        "alarm {} raised by peer {:x}",
                        alarm_name(req.alarm),
                        req.member_id
                    );
                }
                Ok(vec![member])
            }
            AlarmAction::Deactivate => {
                let targets: Vec<(u64, i32)> = self
                    .active
                    .read()
                    .iter()
                    .copied()
                    .filter(|(m, a)| {
                        (req.member_id == 0 || *m == req.member_id)
                            && (req.alarm == AlarmType::None as i32 || *a == req.alarm)
                    })
                    .collect();
                let mut out = Vec::new();
                for (m, a) in targets {
                    batch
                        .delete_aux(TABLE, key(m, a).as_bytes())
                        .map_err(|e| e.to_string())?;
                    self.active.write().remove(&(m, a));
                    tracing::warn!("alarm {} disarmed for peer {m:x}", alarm_name(a));
                    out.push(AlarmMember {
                        member_id: m,
                        alarm: a,
                    });
                }
                Ok(out)
            }
        }
    }

    /// Whether `req` is a write the NOSPACE alarm refuses.
    pub fn refuses(&self, req: &InternalRaftRequest) -> bool {
        self.has(AlarmType::Nospace)
            && (req.put.is_some()
                || req.lease_grant.is_some()
                || req.txn.as_ref().is_some_and(txn_puts))
    }

    /// etcd's text for the alarms in Status' `errors`.
    pub fn status_errors(&self) -> Vec<String> {
        self.list()
            .iter()
            .map(|a| format!("memberID:{} alarm:{} ", a.member_id, alarm_name(a.alarm)))
            .collect()
    }
}

fn txn_puts(t: &TxnRequest) -> bool {
    t.success
        .iter()
        .chain(t.failure.iter())
        .any(|op| match &op.request {
            Some(Op::RequestPut(_)) => true,
            Some(Op::RequestTxn(inner)) => txn_puts(inner),
            _ => false,
        })
}

pub fn alarm_name(alarm: i32) -> &'static str {
    match AlarmType::try_from(alarm) {
        Ok(AlarmType::Nospace) => "NOSPACE",
        Ok(AlarmType::Corrupt) => "CORRUPT",
        _ => "NONE",
    }
}
