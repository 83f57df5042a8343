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
    AddNode,
    RemoveNode,
    UpdateNode,
    AddLearnerNode,
}

impl ConfChange {
    pub fn kind(&self) -> Option<ChangeType> {
        match self.change_type {
            0 => Some(ChangeType::AddNode),
            1 => Some(ChangeType::RemoveNode),
            2 => Some(ChangeType::UpdateNode),
            3 => Some(ChangeType::AddLearnerNode),
            _ => None,
        }
    }

    pub fn new(kind: ChangeType, node_id: u64, context: Bytes) -> Self {
        let change_type = match kind {
            ChangeType::AddNode => 0,
            ChangeType::RemoveNode => 1,
            ChangeType::UpdateNode => 2,
            ChangeType::AddLearnerNode => 3,
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
            ChangeType::AddNode => eraftpb::ConfChangeType::AddNode,
            ChangeType::RemoveNode => eraftpb::ConfChangeType::RemoveNode,
            ChangeType::AddLearnerNode => eraftpb::ConfChangeType::AddLearnerNode,
            ChangeType::UpdateNode => return None,
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
        let cc = ConfChange::new(ChangeType::AddLearnerNode, 7, Bytes::from_static(b"{}"));
        let back = ConfChange::decode(cc.encode_to_vec().as_slice()).unwrap();
        assert_eq!(back.change_type, 3);
        assert_eq!(
            back.to_raft().unwrap().get_change_type(),
            eraftpb::ConfChangeType::AddLearnerNode
        );
        assert!(ConfChange::new(ChangeType::UpdateNode, 7, Bytes::new())
            .to_raft()
            .is_none());
    }
}
