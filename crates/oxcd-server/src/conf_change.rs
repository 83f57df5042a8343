//! Configuration-change entries in etcd's encoding.
//!
//! etcd's `raftpb.ConfChange` numbers its types AddNode 0, RemoveNode 1, UpdateNode 2,
//! AddLearnerNode 3; raft-rs's `eraftpb` numbers AddLearnerNode 2 and has no UpdateNode. The log
//! keeps etcd's numbering (so the WAL stays etcd's format), and this module translates at the
//! boundary to raft-rs, which never needs to hear about UpdateNode.

use bytes::Bytes;
use oxcd_raft::eraftpb;

#[derive(Clone, PartialEq, prost::Message)]
pub struct ConfChange {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(int32, tag = "2")]
    pub change_type: i32,
    #[prost(uint64, tag = "3")]
    pub node_id: u64,
    #[prost(bytes = "bytes", tag = "4")]
    pub context: Bytes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    Add,
    Remove,
    Update,
    AddLearner,
}

impl ConfChange {
    pub fn kind(&self) -> Option<ChangeType> {
        match self.change_type {
            0 => Some(ChangeType::Add),
            1 => Some(ChangeType::Remove),
            2 => Some(ChangeType::Update),
            3 => Some(ChangeType::AddLearner),
            _ => None,
        }
    }

    pub fn new(kind: ChangeType, node_id: u64, context: Bytes) -> Self {
        let change_type = match kind {
            ChangeType::Add => 0,
            ChangeType::Remove => 1,
            ChangeType::Update => 2,
            ChangeType::AddLearner => 3,
        };
        ConfChange {
            id: 0,
            change_type,
            node_id,
            context,
        }
    }

    /// The same change for raft-rs, or None when raft's view of the cluster does not change.
    pub fn to_raft(&self) -> Option<eraftpb::ConfChange> {
        let kind = match self.kind()? {
            ChangeType::Add => eraftpb::ConfChangeType::AddNode,
            ChangeType::Remove => eraftpb::ConfChangeType::RemoveNode,
            ChangeType::AddLearner => eraftpb::ConfChangeType::AddLearnerNode,
            ChangeType::Update => return None,
        };
        let mut cc = eraftpb::ConfChange::default();
        cc.set_change_type(kind);
        cc.node_id = self.node_id;
        cc.id = self.id;
        Some(cc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn etcd_numbering_survives_a_round_trip_and_maps_to_raft_rs() {
        let cc = ConfChange::new(ChangeType::AddLearner, 7, Bytes::from_static(b"{}"));
        let back = ConfChange::decode(cc.encode_to_vec().as_slice()).unwrap();
        assert_eq!(back.change_type, 3);
        assert_eq!(
            back.to_raft().unwrap().get_change_type(),
            eraftpb::ConfChangeType::AddLearnerNode
        );
        assert!(ConfChange::new(ChangeType::Update, 7, Bytes::new())
            .to_raft()
            .is_none());
    }
}
