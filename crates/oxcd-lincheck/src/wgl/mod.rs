//! The Wing & Gong search with Lowe's just-in-time linearization and memoization, as in
//! porcupine: walk the pending calls in time order, linearize one the model accepts, and
//! backtrack when a return is reached whose call has not been linearized yet.
//!
//! Two reductions on top keep histories with many concurrent clients per key tractable; both
//! only skip configurations that provably have no linearization:
//!
//! * Operations that leave the state unchanged (reads, mostly) commute with everything, so
//!   one that is legal now is linearized at once and no alternative is tried in its place.
//! * [`Model::progress`] never decreases and every operation has a [`Model::last_chance`]
//!   beyond which it can never be linearized; a step that passes the last chance of an
//!   operation that must still be linearized is a dead end and is not taken.

mod bitset;
mod list;
mod memo;
mod multiset;

use std::hash::Hash;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bitset::OpSet;
pub(crate) use list::Interval;
use list::{EventList, Node};
use memo::Memo;
use multiset::MultiSet;

/// The sequential specification the search linearizes against.
pub(crate) trait Model {
    type State: Clone + Eq + Hash;

    /// The state after `op`, or `None` if `op`'s recorded output is impossible in `state`.
    ///
    /// May also refuse an operation that never returned where it would change nothing:
    /// leaving it out keeps every option that linearizing it would.
    fn step(&self, state: &Self::State, op: usize) -> Option<Self::State>;

    /// A measure that no step ever decreases.
    fn progress(&self, state: &Self::State) -> i64;

    /// The largest progress of a state in which `op` can still be legal (`i64::MAX`: any).
    fn last_chance(&self, op: usize) -> i64;

    /// True for an operation whose output is a guess (it returned, but what it did was
    /// inferred rather than answered). Such operations are tried after the others.
    fn is_inferred(&self, op: usize) -> bool;
}

/// When to give up: at the deadline, or when another thread has already found a violation and
/// the answer for this key no longer matters.
pub(crate) struct Limits<'a> {
    pub(crate) deadline: Instant,
    pub(crate) cancel: &'a AtomicBool,
}

impl Limits<'_> {
    fn stop_reason(&self) -> Option<Stopped> {
        if self.cancel.load(Ordering::Relaxed) {
            Some(Stopped::Cancelled)
        } else if Instant::now() >= self.deadline {
            Some(Stopped::Deadline)
        } else {
            None
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Stopped {
    Deadline,
    Cancelled,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Linearizable,
    /// No linearization exists. `longest` is the longest partial linearization the search
    /// found, as operation indices in linearization order.
    Illegal {
        longest: Vec<usize>,
    },
    Stopped(Stopped),
}

/// Reading the clock on every step would dominate small steps.
const STEPS_BETWEEN_LIMIT_CHECKS: u32 = 1024;

/// Which candidates a scan of the pending calls considers. At each configuration the scans run
/// in this order, each over all pending calls.
///
/// The order of candidates does not change the answer, but it matters for speed: operations
/// whose effect is a guess (an unanswered write) can be placed almost anywhere, and tried
/// early they would open, at every step, a subtree that fails only much later.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pass {
    /// Only steps that leave the state unchanged; the first one found is forced.
    Neutral,
    /// Operations that returned with a known output.
    Answered,
    /// Operations that must have taken effect but whose output is inferred.
    Inferred,
    /// Operations that never returned.
    Unreturned,
}

impl Pass {
    fn next(self) -> Option<Pass> {
        match self {
            Pass::Neutral => Some(Pass::Answered),
            Pass::Answered => Some(Pass::Inferred),
            Pass::Inferred => Some(Pass::Unreturned),
            Pass::Unreturned => None,
        }
    }
}

struct Frame<S> {
    call_node: usize,
    op: usize,
    /// The pass that chose this op, to resume after it on backtracking. `Neutral`: the op was
    /// forced and the configuration below it has no alternatives to resume.
    pass: Pass,
    state_before: S,
}

/// Decides whether the operations, pending over `intervals`, have a linearization under
/// `model`, starting from `initial`.
///
/// Operations with no return time never have to be linearized: once every operation that did
/// return is linearized the search succeeds, because leaving the rest out means they never
/// took effect, which is always a possible outcome of an unanswered request.
pub(crate) fn search<M: Model>(
    intervals: &[Interval],
    model: &M,
    initial: M::State,
    limits: &Limits,
) -> Verdict {
    let mut list = EventList::new(intervals);
    let must_linearize = |op: usize| intervals[op].ret.is_some();
    let mut unreturned = (0..intervals.len())
        .filter(|&op| must_linearize(op))
        .count();
    // The last chances of the operations that are not linearized but must be.
    let mut deadlines: MultiSet = (0..intervals.len())
        .filter(|&op| must_linearize(op))
        .map(|op| model.last_chance(op))
        .filter(|&last| last != i64::MAX)
        .collect();
    let deadline_of = |op: usize| {
        let last = model.last_chance(op);
        (must_linearize(op) && last != i64::MAX).then_some(last)
    };
    let mut linearized = OpSet::new(intervals.len());
    let mut memo = Memo::new();
    let mut stack: Vec<Frame<M::State>> = Vec::new();
    let mut longest = Longest::default();
    let mut state = initial;
    let mut node = list.first();
    let mut pass = Pass::Neutral;
    let mut steps_until_check = STEPS_BETWEEN_LIMIT_CHECKS;

    while unreturned > 0 {
        steps_until_check -= 1;
        if steps_until_check == 0 {
            steps_until_check = STEPS_BETWEEN_LIMIT_CHECKS;
            if let Some(reason) = limits.stop_reason() {
                return Verdict::Stopped(reason);
            }
        }
        let mut dead_end = false;
        match list.node(node) {
            Node::Call { op, has_return } => {
                let eligible = match pass {
                    Pass::Neutral => true,
                    Pass::Answered => has_return && !model.is_inferred(op),
                    Pass::Inferred => has_return && model.is_inferred(op),
                    Pass::Unreturned => !has_return,
                };
                let next_state = eligible.then(|| model.step(&state, op)).flatten();
                match next_state {
                    Some(next_state) if pass != Pass::Neutral || next_state == state => {
                        if let Some(last) = deadline_of(op) {
                            deadlines.remove(last);
                        }
                        let progress = model.progress(&next_state);
                        let hopeless = deadlines.min().is_some_and(|last| last < progress);
                        linearized.insert(op);
                        if !hopeless && memo.insert(&linearized, &next_state) {
                            stack.push(Frame {
                                call_node: node,
                                op,
                                pass,
                                state_before: std::mem::replace(&mut state, next_state),
                            });
                            list.lift(node);
                            if has_return {
                                unreturned -= 1;
                            }
                            node = list.first();
                            pass = Pass::Neutral;
                            continue;
                        }
                        linearized.remove(op);
                        if let Some(last) = deadline_of(op) {
                            deadlines.insert(last);
                        }
                        if hopeless {
                            // The step itself was legal; the report is clearer for showing it
                            // and then what it dooms.
                            longest.observe_with(&stack, op);
                        }
                        // A neutral step's configuration was explored before and failed, and
                        // every linearization from here could have started with it.
                        dead_end = pass == Pass::Neutral;
                    }
                    _ => {}
                }
                if !dead_end {
                    node = list.next(node);
                    continue;
                }
            }
            Node::Return | Node::End => {
                if let Some(next_pass) = pass.next() {
                    node = list.first();
                    pass = next_pass;
                    continue;
                }
                // A return whose call is still pending: that call had to be linearized
                // before this point and no candidate allows it.
            }
        }

        // Undo the most recent choice and resume with the candidate after it; a forced choice
        // has no alternatives, so undo the one before it too.
        loop {
            longest.observe(&stack);
            let Some(frame) = stack.pop() else {
                return Verdict::Illegal {
                    longest: longest.ops,
                };
            };
            longest.popped_to(stack.len());
            linearized.remove(frame.op);
            state = frame.state_before;
            list.unlift(frame.call_node);
            if must_linearize(frame.op) {
                unreturned += 1;
            }
            if let Some(last) = deadline_of(frame.op) {
                deadlines.insert(last);
            }
            if frame.pass != Pass::Neutral {
                node = list.next(frame.call_node);
                pass = frame.pass;
                break;
            }
        }
    }
    Verdict::Linearizable
}

/// The longest partial linearization seen, for the failure report. Kept incrementally because
/// copying the whole stack at every new maximum would be quadratic on long histories.
#[derive(Default)]
struct Longest {
    ops: Vec<usize>,
    /// `ops[..shared]` equals the current stack's ops: those frames were not popped since the
    /// last copy.
    shared: usize,
}

impl Longest {
    /// Called just before a pop, i.e. at every local maximum of the stack depth.
    fn observe<S>(&mut self, stack: &[Frame<S>]) {
        if stack.len() > self.ops.len() {
            self.ops.truncate(self.shared);
            self.ops
                .extend(stack[self.shared..].iter().map(|frame| frame.op));
            self.shared = stack.len();
        }
    }

    /// Like [`observe`](Self::observe) for the stack with `op` pushed on top.
    fn observe_with<S>(&mut self, stack: &[Frame<S>], op: usize) {
        if stack.len() + 1 > self.ops.len() {
            self.ops.truncate(self.shared);
            self.ops
                .extend(stack[self.shared..].iter().map(|frame| frame.op));
            self.ops.push(op);
            self.shared = stack.len();
        }
    }

    fn popped_to(&mut self, depth: usize) {
        self.shared = self.shared.min(depth);
    }
}

#[cfg(test)]
mod tests;
