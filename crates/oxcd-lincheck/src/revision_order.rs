//! The one part of linearizability that the per-key check cannot see: etcd's revision is a
//! single counter across all keys, so it must respect real time across keys too.

use crate::acked::{created_revision, store_revision_at_least, AckedRevisions};
use crate::anomaly::Anomaly;
use crate::history::{Input, Operation};

/// Checks that no write carries a revision below one that any client was answered with (on
/// any key) before the write was sent; a write that changed the store needs a strictly higher
/// one. Reads carry no header revision in [`Operation`], so only their mod_revision counts, as
/// a lower bound on the revision at the time they were answered.
pub fn check_revision_order(history: &[Operation]) -> Vec<Anomaly> {
    let acked = AckedRevisions::new(history);
    let mut anomalies = Vec::new();
    for op in history {
        if matches!(op.input, Input::Get { .. }) || op.return_ns.is_none() {
            continue;
        }
        let Some(revision) = store_revision_at_least(op) else {
            continue;
        };
        let Some((before, earlier)) = acked.max_before(op.call_ns) else {
            continue;
        };
        let changed_store = created_revision(op).is_some();
        if revision < before || (changed_store && revision == before) {
            anomalies.push(Anomaly::RevisionWentBackwards {
                earlier: Box::new(earlier.clone()),
                later: Box::new(op.clone()),
            });
        }
    }
    anomalies
}
