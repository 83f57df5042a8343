//! Internal consistency of the reference event history, the ground truth the other checks
//! compare against: if it is wrong, their findings mean little.

use std::collections::{HashMap, HashSet};

use super::{Event, EventKind};
use crate::anomaly::Anomaly;

/// What the reference says about a live key so far.
struct Life<'r> {
    create_revision: i64,
    version: i64,
    value: &'r str,
}

/// Checks that `reference` is a possible event history of an etcd store: revisions never
/// decrease, no key changes twice in one revision, and every event's `mod_revision`,
/// `create_revision` and `version` (and `prev_value`, where present) follow from the key's
/// earlier events. Deletes must carry `create_revision` and `version` 0, as etcd's do.
pub fn check_reference(reference: &[Event]) -> Vec<Anomaly> {
    let mut anomalies = Vec::new();
    let mut live: HashMap<&str, Life> = HashMap::new();
    let mut previous_revision = i64::MIN;
    let mut keys_at_revision: HashSet<&str> = HashSet::new();
    for (index, event) in reference.iter().enumerate() {
        let key = event.key.as_str();
        if event.revision < previous_revision {
            anomalies.push(Anomaly::ReferenceOutOfOrder {
                index,
                revision: event.revision,
                previous_revision,
            });
        }
        if event.revision != previous_revision {
            keys_at_revision.clear();
            previous_revision = event.revision;
        }
        if !keys_at_revision.insert(key) {
            anomalies.push(Anomaly::ReferenceDuplicateEvent {
                revision: event.revision,
                key: key.to_owned(),
            });
        }
        let before = live
            .get(key)
            .map(|life| (life.create_revision, life.version, life.value));
        // The reference may or may not have been recorded with prev_kv; when it carries one it
        // must be right.
        if let Some(prev) = event.prev_value.as_deref() {
            let expected = before.map(|(_, _, value)| value);
            if expected != Some(prev) {
                anomalies.push(Anomaly::ReferenceInconsistent {
                    revision: event.revision,
                    key: key.to_owned(),
                    field: "prev_value".into(),
                    expected: format!("{expected:?}"),
                    actual: format!("{prev:?}"),
                });
            }
        }
        let mut check_field = |field: &str, expected: i64, actual: i64| {
            if expected != actual {
                anomalies.push(inconsistent(event, field, expected, actual));
            }
        };
        check_field("mod_revision", event.revision, event.mod_revision);
        match event.kind {
            EventKind::Put => {
                let (create_revision, version) = match before {
                    Some((create_revision, version, _)) => (create_revision, version + 1),
                    None => (event.revision, 1),
                };
                check_field("create_revision", create_revision, event.create_revision);
                check_field("version", version, event.version);
                // Continue from the expected numbers so that one bad event is reported once,
                // not again at every later event of the key.
                live.insert(
                    key,
                    Life {
                        create_revision,
                        version,
                        value: put_value(event),
                    },
                );
            }
            EventKind::Delete => {
                check_field("create_revision", 0, event.create_revision);
                check_field("version", 0, event.version);
                if live.remove(key).is_none() {
                    anomalies.push(Anomaly::ReferenceDeleteOfAbsentKey {
                        revision: event.revision,
                        key: key.to_owned(),
                    });
                }
            }
        }
    }
    anomalies
}

/// For each reference event, the value its key had just before it (`None`: absent), which is
/// what a watch with prev_kv must report.
pub(crate) fn values_before(reference: &[Event]) -> Vec<Option<&str>> {
    let mut current: HashMap<&str, &str> = HashMap::new();
    reference
        .iter()
        .map(|event| {
            let key = event.key.as_str();
            match event.kind {
                EventKind::Put => current.insert(key, put_value(event)),
                EventKind::Delete => current.remove(key),
            }
        })
        .collect()
}

/// etcd has no null values: a put recorded without one wrote the empty value.
fn put_value(event: &Event) -> &str {
    event.value.as_deref().unwrap_or("")
}

fn inconsistent(event: &Event, field: &str, expected: i64, actual: i64) -> Anomaly {
    Anomaly::ReferenceInconsistent {
        revision: event.revision,
        key: event.key.clone(),
        field: field.to_owned(),
        expected: expected.to_string(),
        actual: actual.to_string(),
    }
}
