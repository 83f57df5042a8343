//! The cluster's membership as the applied log defines it: members, removed IDs, cluster version.
//!
//! JSON shapes match etcd's, because they travel on the wire (conf-change contexts, the peer
//! `/members` endpoint, attribute publishes) and later sit in etcd-compatible data dirs.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Member {
    pub id: u64,
    #[serde(rename = "peerURLs", default)]
    pub peer_urls: Vec<String>,
    #[serde(rename = "isLearner", default, skip_serializing_if = "is_false")]
    pub is_learner: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(rename = "clientURLs", default, skip_serializing_if = "Vec::is_empty")]
    pub client_urls: Vec<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The attributes a member publishes about itself through raft on every start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Attributes {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(rename = "clientURLs", default, skip_serializing_if = "Vec::is_empty")]
    pub client_urls: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Cluster {
    pub cluster_id: u64,
    pub local_id: u64,
    pub members: BTreeMap<u64, Member>,
    pub removed: BTreeSet<u64>,
    /// "3.4.0" once the leader has decided it.
    pub version: Option<String>,
}

impl Cluster {
    pub fn member(&self, id: u64) -> Option<&Member> {
        self.members.get(&id)
    }

    pub fn local(&self) -> Option<&Member> {
        self.members.get(&self.local_id)
    }

    pub fn peer_ids(&self) -> impl Iterator<Item = u64> + '_ {
        let local = self.local_id;
        self.members.keys().copied().filter(move |id| *id != local)
    }

    pub fn is_removed(&self, id: u64) -> bool {
        self.removed.contains(&id)
    }

    pub fn add(&mut self, m: Member) {
        self.removed.remove(&m.id);
        self.members.insert(m.id, m);
    }

    pub fn remove(&mut self, id: u64) {
        self.members.remove(&id);
        self.removed.insert(id);
    }

    pub fn set_attributes(&mut self, id: u64, attrs: Attributes) {
        if let Some(m) = self.members.get_mut(&id) {
            m.name = attrs.name;
            m.client_urls = attrs.client_urls;
        }
    }

    /// The `/members` answer: every member, as etcd's peer endpoint writes it.
    pub fn members_json(&self) -> String {
        let list: Vec<&Member> = self.members.values().collect();
        serde_json::to_string(&list).unwrap_or_else(|_| "[]".into())
    }
}

/// etcd writes IDs in text as lowercase hex without zero padding.
pub fn id_hex(id: u64) -> String {
    format!("{id:x}")
}

pub fn parse_id_hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_json_matches_etcd_field_order_and_omissions() {
        let m = Member {
            id: 139303845698915804,
            peer_urls: vec!["http://127.0.0.10:2380".into()],
            name: "infra0".into(),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"id":139303845698915804,"peerURLs":["http://127.0.0.10:2380"],"name":"infra0"}"#
        );
        let added = Member {
            id: 1,
            peer_urls: vec!["http://a:1".into()],
            is_learner: true,
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&added).unwrap(),
            r#"{"id":1,"peerURLs":["http://a:1"],"isLearner":true}"#
        );
    }

    #[test]
    fn ids_are_unpadded_hex() {
        assert_eq!(id_hex(0x01eee81c0ebacddc), "1eee81c0ebacddc");
        assert_eq!(parse_id_hex("1eee81c0ebacddc"), Some(0x01eee81c0ebacddc));
        assert_eq!(parse_id_hex("zz"), None);
    }
}
