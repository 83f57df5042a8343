//! Checks what a fault-injection run recorded against an etcd-compatible cluster: whether the
//! clients' KV history is linearizable, whether watchers saw exactly the store's history, and
//! whether acknowledged writes survived.
//!
//! # The checks
//!
//! * [`check_operations`]: linearizability of the recorded [`Operation`]s, per key, under the
//!   model below. Returns a [`CheckOutcome`] with a failure report (the longest partial
//!   linearization found and the operations that could not come next).
//! * [`check_revision_order`]: the cross-key part of linearizability the per-key check cannot
//!   see: etcd's revision is one counter for all keys, so it must follow real time.
//! * [`check_reference`]: internal consistency of the reference event history (the store's
//!   full history, read at the end by one watch from revision 1 on a settled cluster).
//! * [`check_watch`]: one watcher's [`WatchLog`] against the reference: no gaps, duplicates,
//!   reordering, altered events or wrong prev_kv.
//! * [`check_durability`]: no acknowledged write missing from the reference, no write in it
//!   that no client sent.
//! * [`resolve_unknown_writes`]: optional; settles unanswered writes from the reference, which
//!   makes [`check_operations`] much faster on runs where faults left many of them.
//!
//! Findings other than linearizability come back as [`Anomaly`] values, each with a one-line
//! [`Display`](std::fmt::Display). [`write_history_json`] saves a history for a bug report.
//!
//! # Assumptions about the history
//!
//! Every request touches one key; values written to a key are unique (the checker relies on it
//! to tell writes apart); times come from one clock; failed reads are not recorded; a write
//! whose outcome the client did not learn is recorded with [`Output::Unknown`] and no return
//! time, and may or may not have taken effect, at any time after it was sent.
//!
//! # The model of a key
//!
//! The state is the key's value and what is known of its mod_revision ([`ModRevision`]). A get
//! must return the value and its mod_revision; a put, a delete that deleted the key and a
//! successful CAS need a revision above the key's last change and become its mod_revision; a
//! delete of an absent key and a failed CAS change nothing, and their header revision must be
//! at least the key's last change. A write with an unknown outcome is either left out (it
//! never took effect) or applied with a revision known only to lie in a range: above the
//! previous change, and no higher than the header revision of any later request that saw the
//! key unchanged. A later read of the key pins it down.
//!
//! # The search
//!
//! Existing crates were considered and none fits: `todc-utils` has a Wing & Gong checker but
//! gives only a yes/no verdict, with no time limit, no operations that never return and no
//! report; `lincheck` runs in-process data structures under loom rather than checking recorded
//! histories; porcupine, the reference implementation, is Go. So this crate has its own.
//!
//! It is porcupine's algorithm: Wing & Gong's search with Lowe's just-in-time linearization,
//! memoizing (linearized set, state) pairs, on each key separately (P-compositionality, keys
//! searched in parallel). Unanswered operations never have to be linearized. Plain WGL is
//! exponential in the number of concurrent operations, which with tens of clients on one key
//! is far too slow, so the search adds reductions that each only skip configurations that
//! provably lead nowhere (see the `wgl` and `key_history` modules):
//!
//! * a step that leaves the state unchanged (a read, mostly) is taken at once, without
//!   branching, since it commutes with everything pending;
//! * a step past the last revision at which some pending answered operation could still be
//!   legal is not taken;
//! * answered operations are tried before inferred ones, and those before unanswered ones;
//! * an unanswered write whose value a read saw is settled to that read's revision;
//! * while the key holds a value that an answered, successful CAS expects, that CAS is the
//!   only write that may come next;
//! * unanswered writes that could not make any difference are not tried.
//!
//! The test suite checks the result against a brute-force checker written directly from the
//! specification on thousands of small random histories, linearizable and not.

mod acked;
mod anomaly;
mod durability;
mod history;
mod key_history;
mod linearizability;
mod model;
mod resolve;
mod revision_order;
mod watch;
mod wgl;

pub use anomaly::Anomaly;
pub use durability::check_durability;
pub use history::{read_history_json, write_history_json, Input, Operation, Output};
pub use linearizability::{check_operations, CheckOutcome, KeyState};
pub use model::ModRevision;
pub use resolve::resolve_unknown_writes;
pub use revision_order::check_revision_order;
pub use watch::{check_reference, check_watch, Event, EventKind, WatchLog};
