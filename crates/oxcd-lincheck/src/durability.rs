//! The client history against the store's final event history: nothing acknowledged may be
//! missing from it, and nothing may be in it that no client asked for.

use std::collections::{HashMap, HashSet};

use crate::acked::{created_revision, AckedRevisions};
use crate::anomaly::Anomaly;
use crate::history::{Input, Operation};
use crate::watch::{Event, EventKind};

/// Checks `history` against `reference`, the complete event history of the store:
///
/// * every acknowledged put, successful CAS and delete with `deleted == 1` is in the reference
///   at its acknowledged revision, with its value (else [`Anomaly::LostWrite`]);
/// * every put in the reference wrote a value some client sent to that key, at most once, at
///   a revision above every revision answered before the first such request was sent (else
///   [`Anomaly::PhantomWrite`], [`Anomaly::DuplicateWrite`],
///   [`Anomaly::WriteBeforeInvocation`]); every delete is of a key some client deleted (else
///   [`Anomaly::PhantomDelete`]).
///
/// Writes with an unknown outcome may or may not appear. Relies on unique written values per
/// key, and on clients not retrying writes behind the recorder's back (a retry that applies
/// twice is reported as a duplicate).
pub fn check_durability(reference: &[Event], history: &[Operation]) -> Vec<Anomaly> {
    let mut anomalies = Vec::new();
    find_lost_writes(reference, history, &mut anomalies);
    find_phantom_writes(reference, history, &mut anomalies);
    anomalies
}

fn find_lost_writes(reference: &[Event], history: &[Operation], anomalies: &mut Vec<Anomaly>) {
    let at: HashMap<(&str, i64), &Event> = reference
        .iter()
        .rev() // so that the first of any duplicates wins
        .map(|event| ((event.key.as_str(), event.revision), event))
        .collect();
    for op in history.iter().filter(|op| op.return_ns.is_some()) {
        let Some(revision) = created_revision(op) else {
            continue;
        };
        let key = op.input.key();
        let expected_value = op.input.written_value();
        let found = at.get(&(key, revision));
        let present = match (found, expected_value) {
            (Some(event), Some(value)) => {
                event.kind == EventKind::Put && event.value.as_deref() == Some(value)
            }
            (Some(event), None) => event.kind == EventKind::Delete,
            (None, _) => false,
        };
        if !present {
            anomalies.push(Anomaly::LostWrite {
                client: op.client,
                key: key.to_owned(),
                value: expected_value.map(str::to_owned),
                revision,
                found: match found {
                    None => "no event for the key at that revision".to_owned(),
                    Some(event) => match event.kind {
                        EventKind::Put => format!("a put of {:?} there", event.value),
                        EventKind::Delete => "a delete there".to_owned(),
                    },
                },
            });
        }
    }
}

fn find_phantom_writes(reference: &[Event], history: &[Operation], anomalies: &mut Vec<Anomaly>) {
    // For each (key, value) sent by any write, the earliest send: the value cannot have been
    // applied before it.
    let mut first_sent: HashMap<(&str, &str), u64> = HashMap::new();
    let mut deleted_keys: HashSet<&str> = HashSet::new();
    for op in history {
        match &op.input {
            Input::Put { key, value } | Input::CompareAndSet { key, value, .. } => {
                let sent = first_sent
                    .entry((key.as_str(), value.as_str()))
                    .or_insert(op.call_ns);
                *sent = (*sent).min(op.call_ns);
            }
            Input::Delete { key } => {
                deleted_keys.insert(key.as_str());
            }
            Input::Get { .. } => {}
        }
    }
    let acked = AckedRevisions::new(history);
    let mut applied: HashMap<(&str, &str), Vec<i64>> = HashMap::new();
    for event in reference {
        let key = event.key.as_str();
        match (event.kind, event.value.as_deref()) {
            (EventKind::Delete, _) => {
                if !deleted_keys.contains(key) {
                    anomalies.push(Anomaly::PhantomDelete {
                        revision: event.revision,
                        key: key.to_owned(),
                    });
                }
            }
            (EventKind::Put, value) => {
                let sent = value.and_then(|value| first_sent.get(&(key, value)));
                let (Some(value), Some(&sent)) = (value, sent) else {
                    anomalies.push(Anomaly::PhantomWrite {
                        revision: event.revision,
                        key: key.to_owned(),
                        value: value.map(str::to_owned),
                    });
                    continue;
                };
                applied
                    .entry((key, value))
                    .or_default()
                    .push(event.revision);
                if let Some((before, _)) = acked.max_before(sent) {
                    if event.revision <= before {
                        anomalies.push(Anomaly::WriteBeforeInvocation {
                            revision: event.revision,
                            key: key.to_owned(),
                            value: value.to_owned(),
                            acknowledged_before: before,
                        });
                    }
                }
            }
        }
    }
    let mut duplicates: Vec<_> = applied
        .into_iter()
        .filter(|(_, revisions)| revisions.len() > 1)
        .collect();
    duplicates.sort();
    anomalies.extend(duplicates.into_iter().map(|((key, value), revisions)| {
        Anomaly::DuplicateWrite {
            key: key.to_owned(),
            value: value.to_owned(),
            revisions,
        }
    }));
}
