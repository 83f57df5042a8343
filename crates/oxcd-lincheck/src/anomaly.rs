//! Everything the watch, durability and revision-order checks can find wrong.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::history::Operation;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Anomaly {
    /// The reference event at `index` has a lower revision than the one before it.
    ReferenceOutOfOrder {
        index: usize,
        revision: i64,
        previous_revision: i64,
    },
    /// The reference has two events for one key at one revision.
    ReferenceDuplicateEvent { revision: i64, key: String },
    /// A field of a reference event disagrees with the key's earlier events.
    ReferenceInconsistent {
        revision: i64,
        key: String,
        field: String,
        expected: String,
        actual: String,
    },
    /// The reference deletes a key that did not exist at that point.
    ReferenceDeleteOfAbsentKey { revision: i64, key: String },

    /// The watcher received the same event twice.
    WatchDuplicate {
        watcher: u32,
        revision: i64,
        key: String,
    },
    /// The watcher received an event after one that comes later in the store's history.
    WatchOutOfOrder {
        watcher: u32,
        revision: i64,
        key: String,
        after_revision: i64,
        after_key: String,
    },
    /// The watcher missed `missing` consecutive events it should have received, the first at
    /// `first_revision` on `first_key`.
    WatchGap {
        watcher: u32,
        first_revision: i64,
        last_revision: i64,
        first_key: String,
        missing: usize,
    },
    /// The watcher received an event it should not have (`reason` says why).
    WatchUnexpectedEvent {
        watcher: u32,
        revision: i64,
        key: String,
        reason: String,
    },
    /// A received event differs from the reference event in `field`.
    WatchEventMismatch {
        watcher: u32,
        revision: i64,
        key: String,
        field: String,
        expected: String,
        actual: String,
    },
    /// The prev_kv of a received event is not the key's value before the event.
    WatchWrongPrevKv {
        watcher: u32,
        revision: i64,
        key: String,
        expected: Option<String>,
        actual: Option<String>,
    },

    /// An acknowledged write is not in the reference at its acknowledged revision. `value` is
    /// `None` for deletes; `found` says what the reference has there instead.
    LostWrite {
        client: u32,
        key: String,
        value: Option<String>,
        revision: i64,
        found: String,
    },
    /// The reference has a put of a value no client ever tried to write to that key.
    PhantomWrite {
        revision: i64,
        key: String,
        value: Option<String>,
    },
    /// The reference has a delete of a key no client ever tried to delete.
    PhantomDelete { revision: i64, key: String },
    /// One written value was applied more than once.
    DuplicateWrite {
        key: String,
        value: String,
        revisions: Vec<i64>,
    },
    /// The reference applies a write at a revision no later than one a client had already
    /// been answered with before the write was even sent.
    WriteBeforeInvocation {
        revision: i64,
        key: String,
        value: String,
        acknowledged_before: i64,
    },
    /// `later` was sent after `earlier` returned, yet carries a smaller revision (or an equal
    /// one although it changed the store).
    RevisionWentBackwards {
        earlier: Box<Operation>,
        later: Box<Operation>,
    },
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Anomaly::*;
        match self {
            ReferenceOutOfOrder {
                index,
                revision,
                previous_revision,
            } => write!(
                f,
                "reference event #{index} has revision {revision}, below the previous event's {previous_revision}"
            ),
            ReferenceDuplicateEvent { revision, key } => {
                write!(f, "reference has two events for key {key:?} at revision {revision}")
            }
            ReferenceInconsistent {
                revision,
                key,
                field,
                expected,
                actual,
            } => write!(
                f,
                "reference event at revision {revision} on key {key:?}: {field} is {actual}, expected {expected}"
            ),
            ReferenceDeleteOfAbsentKey { revision, key } => write!(
                f,
                "reference deletes key {key:?} at revision {revision} although it did not exist"
            ),
            WatchDuplicate {
                watcher,
                revision,
                key,
            } => write!(
                f,
                "watcher {watcher} received the event at revision {revision} on key {key:?} twice"
            ),
            WatchOutOfOrder {
                watcher,
                revision,
                key,
                after_revision,
                after_key,
            } => write!(
                f,
                "watcher {watcher} received revision {revision} on key {key:?} after revision {after_revision} on key {after_key:?}"
            ),
            WatchGap {
                watcher,
                first_revision,
                last_revision,
                first_key,
                missing,
            } => write!(
                f,
                "watcher {watcher} missed {missing} event(s) in revisions {first_revision}..={last_revision}, the first on key {first_key:?}"
            ),
            WatchUnexpectedEvent {
                watcher,
                revision,
                key,
                reason,
            } => write!(
                f,
                "watcher {watcher} received an event at revision {revision} on key {key:?} {reason}"
            ),
            WatchEventMismatch {
                watcher,
                revision,
                key,
                field,
                expected,
                actual,
            } => write!(
                f,
                "watcher {watcher}'s event at revision {revision} on key {key:?}: {field} is {actual}, expected {expected}"
            ),
            WatchWrongPrevKv {
                watcher,
                revision,
                key,
                expected,
                actual,
            } => write!(
                f,
                "watcher {watcher}'s event at revision {revision} on key {key:?}: prev_kv value is {actual:?}, expected {expected:?}"
            ),
            LostWrite {
                client,
                key,
                value: Some(value),
                revision,
                found,
            } => write!(
                f,
                "lost write: client {client}'s put of {value:?} to {key:?} was acknowledged at revision {revision}, but the reference has {found}"
            ),
            LostWrite {
                client,
                key,
                value: None,
                revision,
                found,
            } => write!(
                f,
                "lost write: client {client}'s delete of {key:?} was acknowledged at revision {revision}, but the reference has {found}"
            ),
            PhantomWrite {
                revision,
                key,
                value,
            } => write!(
                f,
                "phantom write: the reference puts {value:?} to {key:?} at revision {revision}, which no client wrote"
            ),
            PhantomDelete { revision, key } => write!(
                f,
                "phantom delete: the reference deletes {key:?} at revision {revision}, which no client deleted"
            ),
            DuplicateWrite {
                key,
                value,
                revisions,
            } => write!(
                f,
                "duplicate write: {value:?} was put to {key:?} at revisions {revisions:?}"
            ),
            WriteBeforeInvocation {
                revision,
                key,
                value,
                acknowledged_before,
            } => write!(
                f,
                "the put of {value:?} to {key:?} got revision {revision}, yet revision {acknowledged_before} had been acknowledged before it was sent"
            ),
            RevisionWentBackwards { earlier, later } => write!(
                f,
                "revision went backwards: {later} was sent after {earlier} returned"
            ),
        }
    }
}
