//! Membership and cluster version in the backend, written in the same transaction as the
//! entries that changed them. Keys and JSON values follow etcd's `members`, `members_removed`
//! and `cluster` buckets.

use oxcd_mvcc::{KvStore, WriteBatch};

use crate::membership::{id_hex, parse_id_hex, Cluster, Member};

const MEMBERS: &str = "members";
const MEMBERS_REMOVED: &str = "members_removed";
const CLUSTER: &str = "cluster";
const CLUSTER_VERSION_KEY: &[u8] = b"clusterVersion";

pub fn save_member(batch: &mut WriteBatch, m: &Member) -> Result<(), String> {
    let value = serde_json::to_vec(m).map_err(|e| e.to_string())?;
    batch
        .put_aux(MEMBERS, id_hex(m.id).as_bytes(), &value)
        .map_err(|e| e.to_string())
}

pub fn remove_member(batch: &mut WriteBatch, id: u64) -> Result<(), String> {
    let key = id_hex(id);
    batch
        .delete_aux(MEMBERS, key.as_bytes())
        .map_err(|e| e.to_string())?;
    batch
        .put_aux(MEMBERS_REMOVED, key.as_bytes(), b"removed")
        .map_err(|e| e.to_string())
}

pub fn save_cluster_version(batch: &mut WriteBatch, version: &str) -> Result<(), String> {
    batch
        .put_aux(CLUSTER, CLUSTER_VERSION_KEY, version.as_bytes())
        .map_err(|e| e.to_string())
}

/// Membership as of the backend's consistent index.
pub fn load_cluster(store: &KvStore) -> Result<Cluster, String> {
    let view = store.read().map_err(|e| e.to_string())?;
    let mut cluster = Cluster::default();
    for (_, value) in view.scan_aux(MEMBERS).map_err(|e| e.to_string())? {
        let m: Member =
            serde_json::from_slice(&value).map_err(|e| format!("bad member record: {e}"))?;
        cluster.members.insert(m.id, m);
    }
    for (key, _) in view.scan_aux(MEMBERS_REMOVED).map_err(|e| e.to_string())? {
        if let Some(id) = std::str::from_utf8(&key).ok().and_then(parse_id_hex) {
            cluster.removed.insert(id);
        }
    }
    for (key, value) in view.scan_aux(CLUSTER).map_err(|e| e.to_string())? {
        if key.as_slice() == CLUSTER_VERSION_KEY {
            cluster.version = String::from_utf8(value).ok();
        }
    }
    Ok(cluster)
}
