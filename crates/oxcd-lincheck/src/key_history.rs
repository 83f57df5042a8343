//! Turns the operations on one key into what the search needs: time intervals and model
//! steps over interned values.

use std::collections::HashMap;

use crate::history::{Input, Operation, Output};
use crate::model::{self, State, Step, ValueId};
use crate::wgl::{Interval, Model};

pub(crate) struct KeyHistory<'h> {
    pub(crate) key: &'h str,
    /// The source operation of each step.
    pub(crate) ops: Vec<&'h Operation>,
    pub(crate) steps: Vec<Step>,
    pub(crate) intervals: Vec<Interval>,
    /// Interned value strings, indexed by [`ValueId`].
    pub(crate) values: Vec<&'h str>,
    /// Per value: the answered, successful CAS that expects it, if any. While the key holds
    /// such a value, that CAS must be the next write: any other would replace a value that
    /// nothing can bring back (values are unique), and the CAS could never succeed.
    consumer: Vec<Option<usize>>,
    /// Per value: whether any request reads it or expects it.
    referenced: Vec<bool>,
    /// Per value: whether an answered CAS expecting it failed.
    expected_by_failed_cas: Vec<bool>,
}

impl<'h> KeyHistory<'h> {
    pub(crate) fn new(key: &'h str, ops: impl IntoIterator<Item = &'h Operation>) -> Self {
        let mut interner = Interner::default();
        let mut history = KeyHistory {
            key,
            ops: Vec::new(),
            steps: Vec::new(),
            intervals: Vec::new(),
            values: Vec::new(),
            consumer: Vec::new(),
            referenced: Vec::new(),
            expected_by_failed_cas: Vec::new(),
        };
        for op in ops {
            let Some(step) = to_step(op, &mut interner) else {
                continue;
            };
            // An unanswered request may still be applied later, whatever the client's clock
            // said when it gave up.
            let ret = match op.output {
                Output::Unknown => None,
                _ => op.return_ns,
            };
            history.ops.push(op);
            history.steps.push(step);
            history.intervals.push(Interval {
                call: op.call_ns,
                ret,
            });
        }
        history.values = interner.into_values();
        history.settle_observed_unknown_writes();
        history.index_value_uses();
        history
    }

    fn index_value_uses(&mut self) {
        self.consumer = vec![None; self.values.len()];
        self.referenced = vec![false; self.values.len()];
        self.expected_by_failed_cas = vec![false; self.values.len()];
        for step in &self.steps {
            match *step {
                Step::Get {
                    value: Some(value), ..
                }
                | Step::Cas {
                    expect: Some(value),
                    ..
                }
                | Step::UnknownCas {
                    expect: Some(value),
                    ..
                } => self.referenced[value as usize] = true,
                _ => {}
            }
            if let Step::Cas {
                expect: Some(value),
                succeeded: false,
                ..
            } = *step
            {
                self.expected_by_failed_cas[value as usize] = true;
            }
        }
        for (op, (step, interval)) in self.steps.iter().zip(&self.intervals).enumerate() {
            if let (
                Step::Cas {
                    expect: Some(value),
                    succeeded: true,
                    ..
                },
                Some(_),
            ) = (step, interval.ret)
            {
                // Two would make the history illegal anyway; keeping the first is enough.
                self.consumer[*value as usize].get_or_insert(op);
            }
        }
    }

    /// An unknown write whose (unique) value some answered request saw took effect before that
    /// request returned, and when the request was a read, at the mod_revision the read
    /// reported. Such a write becomes an ordinary one with that revision and that return time.
    /// Otherwise it would stay pending to the end of the history with an unconstrained
    /// revision, and the search would try it at every wrong place in a wide window.
    fn settle_observed_unknown_writes(&mut self) {
        let mut writers = vec![0usize; self.values.len()];
        // Per value: the earliest return of a request that saw it, and the revision reported
        // by the earliest-returning read of it.
        let mut first_seen: Vec<Option<u64>> = vec![None; self.values.len()];
        let mut read_at: Vec<Option<(u64, i64)>> = vec![None; self.values.len()];
        for (step, interval) in self.steps.iter().zip(&self.intervals) {
            if let Some(value) = written_value(step) {
                writers[value as usize] += 1;
            }
            let (Some(value), Some(ret)) = (observed_value(step), interval.ret) else {
                continue;
            };
            let seen = &mut first_seen[value as usize];
            *seen = Some(seen.map_or(ret, |s| s.min(ret)));
            if let Step::Get {
                mod_revision: Some(revision),
                ..
            } = *step
            {
                let read = &mut read_at[value as usize];
                if read.is_none_or(|(earliest, _)| ret < earliest) {
                    *read = Some((ret, revision));
                }
            }
        }
        for (step, interval) in self.steps.iter_mut().zip(&mut self.intervals) {
            let value = match *step {
                Step::UnknownPut { value } | Step::UnknownCas { value, .. } => value,
                _ => continue,
            };
            // With two writers of one value either could be the one that was seen.
            if writers[value as usize] != 1 {
                continue;
            }
            if let Some(seen) = first_seen[value as usize] {
                interval.ret = Some(seen.max(interval.call));
            }
            // Were two reads to disagree on the revision, the other one fails in the model.
            if let Some((_, revision)) = read_at[value as usize] {
                *step = match *step {
                    Step::UnknownCas { expect, value } => Step::Cas {
                        expect,
                        value,
                        succeeded: true,
                        revision,
                    },
                    _ => Step::Put { value, revision },
                };
            }
        }
    }
}

impl KeyHistory<'_> {
    /// An unknown write of a value nobody reads or expects, over a present value `v`, can
    /// matter to later requests only by making a CAS that expected `v` fail. Where no CAS
    /// expecting `v` failed, the search is better off leaving the write out: that keeps every
    /// option linearizing it would (the write's own revision only ever constrains more), and
    /// it saves exploring each such write at every dead end.
    fn is_pointless(&self, state: &State, step: &Step) -> bool {
        let (Step::UnknownPut { value } | Step::UnknownCas { value, .. }) = *step else {
            return false;
        };
        let Some(current) = state.value else {
            return false;
        };
        !self.referenced[value as usize] && !self.expected_by_failed_cas[current as usize]
    }
}

impl Model for KeyHistory<'_> {
    type State = State;

    fn step(&self, state: &State, op: usize) -> Option<State> {
        let step = &self.steps[op];
        let consumer = state.value.and_then(|value| self.consumer[value as usize]);
        if consumer.is_some_and(|consumer| consumer != op) && model::changes_value(step) {
            return None;
        }
        if self.is_pointless(state, step) {
            return None;
        }
        model::apply(*state, step)
    }

    fn progress(&self, state: &State) -> i64 {
        state.progress()
    }

    fn last_chance(&self, op: usize) -> i64 {
        model::last_chance(&self.steps[op])
    }

    fn is_inferred(&self, op: usize) -> bool {
        matches!(
            self.steps[op],
            Step::UnknownPut { .. } | Step::UnknownDelete | Step::UnknownCas { .. }
        )
    }
}

fn written_value(step: &Step) -> Option<ValueId> {
    match *step {
        Step::Put { value, .. }
        | Step::Cas { value, .. }
        | Step::UnknownPut { value }
        | Step::UnknownCas { value, .. } => Some(value),
        _ => None,
    }
}

/// A value that must have been the key's current value when the step took effect.
fn observed_value(step: &Step) -> Option<ValueId> {
    match *step {
        Step::Get { value, .. } => value,
        Step::Cas {
            expect,
            succeeded: true,
            ..
        } => expect,
        _ => None,
    }
}

/// `None` for operations that constrain nothing: reads with no answer.
fn to_step<'h>(op: &'h Operation, interner: &mut Interner<'h>) -> Option<Step> {
    let step = match (&op.input, &op.output) {
        (Input::Get { .. }, Output::Unknown) => return None,
        (
            Input::Get { .. },
            Output::Get {
                value,
                mod_revision,
            },
        ) => Step::Get {
            value: value.as_deref().map(|v| interner.id(v)),
            mod_revision: *mod_revision,
        },
        (Input::Put { value, .. }, Output::Put { revision }) => Step::Put {
            value: interner.id(value),
            revision: *revision,
        },
        (Input::Put { value, .. }, Output::Unknown) => Step::UnknownPut {
            value: interner.id(value),
        },
        (Input::Delete { .. }, Output::Delete { deleted, revision }) => Step::Delete {
            deleted: *deleted,
            revision: *revision,
        },
        (Input::Delete { .. }, Output::Unknown) => Step::UnknownDelete,
        (
            Input::CompareAndSet { expect, value, .. },
            Output::CompareAndSet {
                succeeded,
                revision,
            },
        ) => Step::Cas {
            expect: expect.as_deref().map(|v| interner.id(v)),
            value: interner.id(value),
            succeeded: *succeeded,
            revision: *revision,
        },
        (Input::CompareAndSet { expect, value, .. }, Output::Unknown) => Step::UnknownCas {
            expect: expect.as_deref().map(|v| interner.id(v)),
            value: interner.id(value),
        },
        _ => Step::Malformed,
    };
    Some(step)
}

#[derive(Default)]
struct Interner<'h> {
    ids: HashMap<&'h str, ValueId>,
    values: Vec<&'h str>,
}

impl<'h> Interner<'h> {
    fn id(&mut self, value: &'h str) -> ValueId {
        *self.ids.entry(value).or_insert_with(|| {
            self.values.push(value);
            // A key would need four billion distinct values to overflow this.
            (self.values.len() - 1) as ValueId
        })
    }

    fn into_values(self) -> Vec<&'h str> {
        self.values
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(call: u64, ret: Option<u64>, input: Input, output: Output) -> Operation {
        Operation {
            client: 0,
            call_ns: call,
            return_ns: ret,
            input,
            output,
        }
    }

    #[test]
    fn drops_unanswered_reads_and_settles_seen_unknown_writes() {
        let ops = [
            op(
                0,
                None,
                Input::Put {
                    key: "k".into(),
                    value: "a".into(),
                },
                Output::Unknown,
            ),
            op(1, None, Input::Get { key: "k".into() }, Output::Unknown),
            op(
                5,
                Some(9),
                Input::Get { key: "k".into() },
                Output::Get {
                    value: Some("a".into()),
                    mod_revision: Some(2),
                },
            ),
            op(
                6,
                Some(7),
                Input::Put {
                    key: "k".into(),
                    value: "b".into(),
                },
                Output::Unknown,
            ),
        ];
        let history = KeyHistory::new("k", &ops);
        assert_eq!(history.steps.len(), 3);
        assert_eq!(history.values, vec!["a", "b"]);
        assert_eq!(history.intervals[0].ret, Some(9), "seen by the read");
        assert_eq!(
            history.steps[0],
            Step::Put {
                value: 0,
                revision: 2
            }
        );
        assert_eq!(
            history.intervals[2].ret, None,
            "unknown output ignores return_ns"
        );
    }

    #[test]
    fn mismatched_output_is_malformed() {
        let ops = [op(
            0,
            Some(1),
            Input::Delete { key: "k".into() },
            Output::Put { revision: 2 },
        )];
        assert_eq!(KeyHistory::new("k", &ops).steps, vec![Step::Malformed]);
    }
}
