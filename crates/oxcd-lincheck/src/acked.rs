//! Revisions clients were answered with, by return time: the store's revision can only grow,
//! so anything sent after an answer happens at that revision or later.

use crate::history::{Input, Operation, Output};

pub(crate) struct AckedRevisions<'h> {
    /// (return time, running maximum revision up to here, the op that set that maximum),
    /// sorted by return time.
    by_return: Vec<(u64, i64, &'h Operation)>,
}

impl<'h> AckedRevisions<'h> {
    pub(crate) fn new(history: &'h [Operation]) -> Self {
        let mut acked: Vec<(u64, i64, &Operation)> = history
            .iter()
            .filter_map(|op| Some((op.return_ns?, store_revision_at_least(op)?, op)))
            .collect();
        acked.sort_by_key(|&(ret, _, _)| ret);
        let mut best: Option<(i64, &Operation)> = None;
        for entry in &mut acked {
            match best {
                Some((revision, op)) if revision >= entry.1 => {
                    entry.1 = revision;
                    entry.2 = op;
                }
                _ => best = Some((entry.1, entry.2)),
            }
        }
        AckedRevisions { by_return: acked }
    }

    /// The highest revision answered strictly before `time`, and the op answered with it.
    pub(crate) fn max_before(&self, time: u64) -> Option<(i64, &'h Operation)> {
        let answered = self.by_return.partition_point(|&(ret, _, _)| ret < time);
        let &(_, revision, op) = self.by_return.get(answered.checked_sub(1)?)?;
        Some((revision, op))
    }
}

/// A lower bound on the store's revision when `op` was answered: the header revision of a
/// write, or the mod_revision a read saw.
pub(crate) fn store_revision_at_least(op: &Operation) -> Option<i64> {
    match (&op.input, &op.output) {
        (Input::Get { .. }, Output::Get { mod_revision, .. }) => *mod_revision,
        (Input::Put { .. }, Output::Put { revision })
        | (Input::Delete { .. }, Output::Delete { revision, .. })
        | (Input::CompareAndSet { .. }, Output::CompareAndSet { revision, .. }) => Some(*revision),
        _ => None,
    }
}

/// The revision `op` created, if it changed the store and the client knows it did.
pub(crate) fn created_revision(op: &Operation) -> Option<i64> {
    match (&op.input, &op.output) {
        (Input::Put { .. }, Output::Put { revision })
        | (
            Input::Delete { .. },
            Output::Delete {
                deleted: 1,
                revision,
            },
        )
        | (
            Input::CompareAndSet { .. },
            Output::CompareAndSet {
                succeeded: true,
                revision,
            },
        ) => Some(*revision),
        _ => None,
    }
}
