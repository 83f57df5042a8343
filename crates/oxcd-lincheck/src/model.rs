//! The sequential specification of one etcd key: a register that also carries the revision of
//! its last write.
//!
//! Values are interned to small ids per key so that model states are `Copy` and cheap to hash
//! in the memo.

use serde::{Deserialize, Serialize};

pub(crate) type ValueId = u32;

/// What is known of the revision of the key's last change (put or delete; 0 = never written).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ModRevision {
    Exact(i64),
    /// The last change was a write whose outcome the client never learned, so its revision is
    /// only known to lie in `min..=max`: above the change before it, and no higher than the
    /// header revision of any request that came after it without changing the key
    /// (`i64::MAX`: no such request).
    Between {
        min: i64,
        max: i64,
    },
}

impl ModRevision {
    /// The smallest revision the last change can have had.
    fn floor(self) -> i64 {
        match self {
            ModRevision::Exact(r) | ModRevision::Between { min: r, .. } => r,
        }
    }

    /// A read reported `seen` as the key's mod_revision; returns what is known afterwards.
    fn observe(self, seen: i64) -> Option<ModRevision> {
        match self {
            ModRevision::Exact(r) => (seen == r).then_some(self),
            ModRevision::Between { min, max } => (min..=max)
                .contains(&seen)
                .then_some(ModRevision::Exact(seen)),
        }
    }

    /// A request that changed nothing was answered with header revision `header`, which
    /// includes the key's last change.
    fn bounded_by(self, header: i64) -> Option<ModRevision> {
        match self {
            ModRevision::Exact(r) => (r <= header).then_some(self),
            // Keeping the upper bound matters: a read that later pins the revision above it
            // proves that the unknown write happened after this request, not before.
            ModRevision::Between { min, max } => (min <= header).then_some(ModRevision::Between {
                min,
                max: max.min(header),
            }),
        }
    }

    /// After a write whose revision is unknown: only the bound from below carries over.
    fn bumped(self) -> ModRevision {
        ModRevision::Between {
            min: self.floor() + 1,
            max: i64::MAX,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct State {
    pub(crate) value: Option<ValueId>,
    pub(crate) revision: ModRevision,
}

impl State {
    pub(crate) const INITIAL: State = State {
        value: None,
        revision: ModRevision::Exact(0),
    };

    /// Never decreases from one state to the next: every write raises the revision, reads
    /// only pin it down from a lower bound.
    pub(crate) fn progress(&self) -> i64 {
        self.revision.floor()
    }
}

/// One operation as a model transition: the input and the output it must produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    Get {
        value: Option<ValueId>,
        mod_revision: Option<i64>,
    },
    Put {
        value: ValueId,
        revision: i64,
    },
    Delete {
        deleted: i64,
        revision: i64,
    },
    Cas {
        expect: Option<ValueId>,
        value: ValueId,
        succeeded: bool,
        revision: i64,
    },
    /// Writes whose outcome is unknown. Leaving one out of the linearization is the "never took
    /// effect" case; linearizing it applies its effect with a revision that is only bounded
    /// from below, which a later read of the key pins down.
    UnknownPut {
        value: ValueId,
    },
    UnknownDelete,
    UnknownCas {
        expect: Option<ValueId>,
        value: ValueId,
    },
    /// Output variant does not match the input: no state can explain it.
    Malformed,
}

/// A request that found the key as it is and left it so, answered with header revision
/// `header`.
fn unchanged_up_to(state: State, header: i64) -> Option<State> {
    state
        .revision
        .bounded_by(header)
        .map(|revision| State { revision, ..state })
}

/// Whether `step`, where legal, can replace the key's current value.
pub(crate) fn changes_value(step: &Step) -> bool {
    matches!(
        step,
        Step::Put { .. }
            | Step::Delete { deleted: 1, .. }
            | Step::Cas {
                succeeded: true,
                ..
            }
            | Step::UnknownPut { .. }
            | Step::UnknownDelete
            | Step::UnknownCas { .. }
    )
}

/// The largest [`State::progress`] at which `step` can still be legal.
pub(crate) fn last_chance(step: &Step) -> i64 {
    match *step {
        Step::Get {
            value: Some(_),
            mod_revision: Some(seen),
        } => seen,
        Step::Put { revision, .. }
        | Step::Delete {
            deleted: 1,
            revision,
        }
        | Step::Cas {
            succeeded: true,
            revision,
            ..
        } => revision - 1,
        Step::Delete {
            deleted: 0,
            revision,
        }
        | Step::Cas {
            succeeded: false,
            revision,
            ..
        } => revision,
        _ => i64::MAX,
    }
}

/// The state after `step`, or `None` when `step`'s output is impossible in `state`.
///
/// Header revisions of requests that change nothing (delete of an absent key, failed CAS) are
/// only required to be at least the key's last change: the store revision includes it, and
/// any tighter bound would need other keys' writes (see `check_revision_order`).
pub(crate) fn apply(state: State, step: &Step) -> Option<State> {
    let floor = state.revision.floor();
    let written = |value, revision| State {
        value: Some(value),
        revision,
    };
    match *step {
        Step::Get {
            value,
            mod_revision,
        } => {
            if value != state.value {
                return None;
            }
            match (value, mod_revision) {
                (None, _) => Some(state),
                (Some(_), None) => None,
                (Some(_), Some(seen)) => state
                    .revision
                    .observe(seen)
                    .map(|revision| State { revision, ..state }),
            }
        }
        Step::Put { value, revision } => {
            (revision > floor).then_some(written(value, ModRevision::Exact(revision)))
        }
        Step::Delete { deleted, revision } => match (state.value, deleted) {
            (Some(_), 1) if revision > floor => Some(State {
                value: None,
                revision: ModRevision::Exact(revision),
            }),
            (None, 0) => unchanged_up_to(state, revision),
            _ => None,
        },
        Step::Cas {
            expect,
            value,
            succeeded,
            revision,
        } => match (state.value == expect, succeeded) {
            (true, true) if revision > floor => Some(written(value, ModRevision::Exact(revision))),
            (false, false) => unchanged_up_to(state, revision),
            _ => None,
        },
        Step::UnknownPut { value } => Some(written(value, state.revision.bumped())),
        // Where an unknown write would change nothing, refuse it: the search may leave it out
        // instead, which keeps strictly more options open (see `wgl::search`) and saves
        // exploring a copy of the same subtree.
        Step::UnknownDelete => state.value.map(|_| State {
            value: None,
            revision: state.revision.bumped(),
        }),
        Step::UnknownCas { expect, value } => {
            (state.value == expect).then(|| written(value, state.revision.bumped()))
        }
        Step::Malformed => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ModRevision::{Between, Exact};

    fn state(value: Option<ValueId>, revision: ModRevision) -> State {
        State { value, revision }
    }

    #[test]
    fn put_needs_a_newer_revision() {
        let s = state(Some(1), Exact(5));
        assert_eq!(
            apply(
                s,
                &Step::Put {
                    value: 2,
                    revision: 6
                }
            ),
            Some(state(Some(2), Exact(6)))
        );
        assert_eq!(
            apply(
                s,
                &Step::Put {
                    value: 2,
                    revision: 5
                }
            ),
            None
        );
    }

    #[test]
    fn get_matches_value_and_revision() {
        let s = state(Some(1), Exact(5));
        let get = |value, mod_revision| Step::Get {
            value,
            mod_revision,
        };
        assert_eq!(apply(s, &get(Some(1), Some(5))), Some(s));
        assert_eq!(apply(s, &get(Some(1), Some(4))), None);
        assert_eq!(apply(s, &get(Some(2), Some(5))), None);
        assert_eq!(apply(s, &get(None, None)), None);
        assert_eq!(
            apply(State::INITIAL, &get(None, None)),
            Some(State::INITIAL)
        );
    }

    #[test]
    fn unknown_write_revision_is_pinned_by_a_read() {
        let s = apply(state(Some(1), Exact(5)), &Step::UnknownPut { value: 2 }).unwrap();
        assert_eq!(
            s,
            state(
                Some(2),
                Between {
                    min: 6,
                    max: i64::MAX
                }
            )
        );
        let get = |rev| Step::Get {
            value: Some(2),
            mod_revision: Some(rev),
        };
        assert_eq!(apply(s, &get(5)), None);
        assert_eq!(apply(s, &get(9)), Some(state(Some(2), Exact(9))));
        // A put after it needs a revision above the unknown write's, which is at least 6.
        let put = |revision| Step::Put { value: 3, revision };
        assert_eq!(apply(s, &put(7)), Some(state(Some(3), Exact(7))));
        assert_eq!(apply(s, &put(6)), None);
    }

    #[test]
    fn later_no_op_caps_an_unknown_revision() {
        let s = apply(state(Some(1), Exact(2)), &Step::UnknownPut { value: 2 }).unwrap();
        let failed_cas = Step::Cas {
            expect: Some(1),
            value: 3,
            succeeded: false,
            revision: 3,
        };
        let s = apply(s, &failed_cas).unwrap();
        assert_eq!(s, state(Some(2), Between { min: 3, max: 3 }));
        let get = |rev| Step::Get {
            value: Some(2),
            mod_revision: Some(rev),
        };
        assert_eq!(apply(s, &get(4)), None);
        assert_eq!(apply(s, &get(3)), Some(state(Some(2), Exact(3))));
    }

    #[test]
    fn progress_never_decreases_and_last_chance_is_tight() {
        let steps = [
            Step::Get {
                value: Some(1),
                mod_revision: Some(5),
            },
            Step::Put {
                value: 2,
                revision: 7,
            },
            Step::Delete {
                deleted: 1,
                revision: 8,
            },
            Step::Delete {
                deleted: 0,
                revision: 9,
            },
            Step::Cas {
                expect: None,
                value: 3,
                succeeded: true,
                revision: 10,
            },
            Step::Cas {
                expect: None,
                value: 4,
                succeeded: false,
                revision: 10,
            },
            Step::UnknownPut { value: 5 },
            Step::UnknownDelete,
        ];
        let states = [
            State::INITIAL,
            state(Some(1), Exact(5)),
            state(None, Exact(6)),
            state(
                Some(1),
                Between {
                    min: 4,
                    max: i64::MAX,
                },
            ),
            state(Some(3), Exact(10)),
        ];
        for s in states {
            for step in &steps {
                if let Some(next) = apply(s, step) {
                    assert!(next.progress() >= s.progress(), "{s:?} {step:?}");
                    assert!(s.progress() <= last_chance(step), "{s:?} {step:?}");
                }
            }
        }
    }

    #[test]
    fn delete_reports_whether_the_key_existed() {
        let present = state(Some(1), Exact(5));
        let absent = state(None, Exact(7));
        let delete = |deleted, revision| Step::Delete { deleted, revision };
        assert_eq!(apply(present, &delete(1, 6)), Some(state(None, Exact(6))));
        assert_eq!(apply(present, &delete(0, 6)), None);
        assert_eq!(apply(present, &delete(1, 5)), None);
        assert_eq!(apply(absent, &delete(0, 9)), Some(absent));
        assert_eq!(
            apply(absent, &delete(0, 6)),
            None,
            "header revision went backwards"
        );
        assert_eq!(apply(absent, &delete(1, 9)), None);
    }

    #[test]
    fn cas_succeeds_exactly_when_expectation_holds() {
        let s = state(Some(1), Exact(5));
        let cas = |expect, succeeded, revision| Step::Cas {
            expect,
            value: 2,
            succeeded,
            revision,
        };
        assert_eq!(
            apply(s, &cas(Some(1), true, 6)),
            Some(state(Some(2), Exact(6)))
        );
        assert_eq!(apply(s, &cas(Some(1), false, 6)), None);
        assert_eq!(apply(s, &cas(None, true, 6)), None);
        assert_eq!(apply(s, &cas(None, false, 5)), Some(s));
        assert_eq!(
            apply(
                State::INITIAL,
                &Step::UnknownCas {
                    expect: Some(1),
                    value: 2
                }
            ),
            None,
            "a no-op is left out rather than linearized"
        );
    }
}
