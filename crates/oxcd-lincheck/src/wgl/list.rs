//! The history as a doubly linked list of call and return events in time order. Linearizing an
//! operation unlinks its two events ("lifting" in Lowe's terms) and backtracking relinks them;
//! because relinking happens in exactly the reverse order, each node still holds its old
//! neighbours and both are O(1) (Knuth's dancing links).

/// When one operation was pending. `ret == None`: the client never learned the outcome, so the
/// operation may be linearized at any point after `call`, or never.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Interval {
    pub(crate) call: u64,
    pub(crate) ret: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Node {
    Call {
        op: usize,
        has_return: bool,
    },
    Return,
    /// Past the last event.
    End,
}

const HEAD: usize = 0;

pub(crate) struct EventList {
    nodes: Vec<Node>,
    next: Vec<usize>,
    prev: Vec<usize>,
    /// For each call node, its return node (or 0 when the op never returns).
    return_of: Vec<usize>,
}

impl EventList {
    pub(crate) fn new(intervals: &[Interval]) -> Self {
        let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(intervals.len() * 2);
        for (op, interval) in intervals.iter().enumerate() {
            events.push((interval.call, false, op));
            if let Some(ret) = interval.ret {
                // A return stamped before its call (clock skew) would otherwise make the op
                // impossible to linearize.
                events.push((ret.max(interval.call), true, op));
            }
        }
        // At equal times calls sort before returns: the two ops are then treated as
        // concurrent, which can only accept more histories, never reject a correct one.
        events.sort_unstable();

        let len = events.len() + 2;
        let mut nodes = Vec::with_capacity(len);
        let mut return_of = vec![0; len];
        let mut call_node_of = vec![0; intervals.len()];
        nodes.push(Node::End);
        for (i, &(_, is_return, op)) in events.iter().enumerate() {
            let node = i + 1;
            if is_return {
                return_of[call_node_of[op]] = node;
                nodes.push(Node::Return);
            } else {
                call_node_of[op] = node;
                nodes.push(Node::Call {
                    op,
                    has_return: intervals[op].ret.is_some(),
                });
            }
        }
        nodes.push(Node::End);
        EventList {
            nodes,
            next: (1..=len).collect(),
            prev: (0..len).map(|i| i.saturating_sub(1)).collect(),
            return_of,
        }
    }

    pub(crate) fn first(&self) -> usize {
        self.next[HEAD]
    }

    pub(crate) fn next(&self, node: usize) -> usize {
        self.next[node]
    }

    pub(crate) fn node(&self, node: usize) -> Node {
        self.nodes[node]
    }

    /// Unlinks a call node and its return node.
    pub(crate) fn lift(&mut self, call: usize) {
        self.unlink(call);
        let ret = self.return_of[call];
        if ret != 0 {
            self.unlink(ret);
        }
    }

    /// Undoes the most recent [`lift`](Self::lift) still in effect, which must be of `call`.
    pub(crate) fn unlift(&mut self, call: usize) {
        let ret = self.return_of[call];
        if ret != 0 {
            self.relink(ret);
        }
        self.relink(call);
    }

    fn unlink(&mut self, node: usize) {
        let (prev, next) = (self.prev[node], self.next[node]);
        self.next[prev] = next;
        self.prev[next] = prev;
    }

    fn relink(&mut self, node: usize) {
        let (prev, next) = (self.prev[node], self.next[node]);
        self.next[prev] = node;
        self.prev[next] = node;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(list: &EventList) -> Vec<Node> {
        let mut out = Vec::new();
        let mut n = list.first();
        while list.node(n) != Node::End {
            out.push(list.node(n));
            n = list.next(n);
        }
        out
    }

    #[test]
    fn orders_events_and_lifts_reversibly() {
        let intervals = [
            Interval {
                call: 0,
                ret: Some(10),
            },
            Interval { call: 5, ret: None },
            Interval {
                call: 10,
                ret: Some(12),
            },
        ];
        let mut list = EventList::new(&intervals);
        let call = |op, has_return| Node::Call { op, has_return };
        let all = vec![
            call(0, true),
            call(1, false),
            call(2, true),
            Node::Return,
            Node::Return,
        ];
        assert_eq!(walk(&list), all);
        let first = list.first();
        list.lift(first);
        let second = list.first();
        list.lift(second);
        assert_eq!(walk(&list), vec![call(2, true), Node::Return]);
        list.unlift(second);
        list.unlift(first);
        assert_eq!(walk(&list), all);
    }
}
