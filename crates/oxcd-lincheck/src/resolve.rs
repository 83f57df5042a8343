//! Settling unknown outcomes from the store's final history, which makes the linearizability
//! search cheaper when faults left many writes unanswered.

use std::collections::HashMap;

use crate::history::{Input, Operation, Output};
use crate::watch::{Event, EventKind};

/// Returns `history` with the outcome of unanswered puts and CASes filled in from `reference`,
/// the store's complete event history: a write whose (unique) value the reference puts exactly
/// once took effect at that revision (its return time stays unknown); a write whose value the
/// reference never puts did not take effect and is dropped. Unanswered deletes carry no value
/// to recognise them by and are kept as they are.
///
/// Such a write otherwise stays a candidate for the rest of its key's history, multiplying
/// the search's work. The price is trusting the reference: run [`check_durability`] and
/// [`check_reference`] on it too, since a write missing from a wrong reference would be
/// dropped here rather than reported by [`check_operations`].
///
/// [`check_durability`]: crate::check_durability
/// [`check_reference`]: crate::check_reference
/// [`check_operations`]: crate::check_operations
pub fn resolve_unknown_writes(history: &[Operation], reference: &[Event]) -> Vec<Operation> {
    let mut put_at: HashMap<(&str, &str), Option<i64>> = HashMap::new();
    for event in reference.iter().filter(|e| e.kind == EventKind::Put) {
        let Some(value) = event.value.as_deref() else {
            continue;
        };
        put_at
            .entry((event.key.as_str(), value))
            .and_modify(|revision| *revision = None) // applied twice: ambiguous
            .or_insert(Some(event.revision));
    }
    history
        .iter()
        .filter_map(|op| {
            if op.output != Output::Unknown {
                return Some(op.clone());
            }
            let Some(value) = op.input.written_value() else {
                return Some(op.clone());
            };
            let output = match put_at.get(&(op.input.key(), value)) {
                None => return None,
                Some(None) => return Some(op.clone()),
                Some(&Some(revision)) => match op.input {
                    Input::CompareAndSet { .. } => Output::CompareAndSet {
                        succeeded: true,
                        revision,
                    },
                    _ => Output::Put { revision },
                },
            };
            Some(Operation {
                return_ns: None,
                output,
                ..op.clone()
            })
        })
        .collect()
}
