use super::*;
use std::time::Duration;

/// A register of u32 starting at 0; each op is (call, return, is_write, value).
struct Register<'a>(&'a [(u64, Option<u64>, bool, u32)]);

impl Model for Register<'_> {
    type State = u32;

    fn step(&self, &state: &u32, op: usize) -> Option<u32> {
        let (_, _, is_write, value) = self.0[op];
        match is_write {
            true => Some(value),
            false => (state == value).then_some(state),
        }
    }

    fn progress(&self, _: &u32) -> i64 {
        0
    }

    fn last_chance(&self, _: usize) -> i64 {
        i64::MAX
    }

    fn is_inferred(&self, _: usize) -> bool {
        false
    }
}

fn limits(cancel: &AtomicBool) -> Limits<'_> {
    Limits {
        deadline: Instant::now() + Duration::from_secs(10),
        cancel,
    }
}

fn run(ops: &[(u64, Option<u64>, bool, u32)]) -> Verdict {
    let intervals: Vec<Interval> = ops
        .iter()
        .map(|&(call, ret, _, _)| Interval { call, ret })
        .collect();
    let cancel = AtomicBool::new(false);
    search(&intervals, &Register(ops), 0, &limits(&cancel))
}

#[test]
fn accepts_concurrent_read_of_new_value() {
    // write(1) overlaps a read that sees 1, and a later read sees 1.
    let verdict = run(&[
        (0, Some(10), true, 1),
        (2, Some(5), false, 1),
        (11, Some(12), false, 1),
    ]);
    assert_eq!(verdict, Verdict::Linearizable);
}

#[test]
fn forced_reads_do_not_hide_the_right_order() {
    // The read of the old value is legal at once and forced first; the write and the read of
    // the new value must still follow.
    let verdict = run(&[
        (0, Some(10), true, 1),
        (1, Some(20), false, 0),
        (2, Some(5), false, 1),
    ]);
    assert_eq!(verdict, Verdict::Linearizable);
}

#[test]
fn rejects_stale_read_and_reports_longest_prefix() {
    // write(1) returns, then a read sees 0.
    let verdict = run(&[(0, Some(10), true, 1), (11, Some(12), false, 0)]);
    assert_eq!(verdict, Verdict::Illegal { longest: vec![0] });
}

#[test]
fn unreturned_ops_may_be_left_out_or_linearized() {
    // A write that never returned: a later read of 0 or of 2 are both fine.
    for seen in [0, 2] {
        let verdict = run(&[(0, None, true, 2), (5, Some(6), false, seen)]);
        assert_eq!(verdict, Verdict::Linearizable, "read of {seen}");
    }
    let verdict = run(&[(0, None, true, 2), (5, Some(6), false, 3)]);
    assert!(matches!(verdict, Verdict::Illegal { .. }));
}

/// Writes must go in increasing order of their value, and each op may come last.
struct Increasing(Vec<u32>);

impl Model for Increasing {
    type State = u32;

    fn step(&self, &state: &u32, op: usize) -> Option<u32> {
        (self.0[op] > state).then_some(self.0[op])
    }

    fn progress(&self, &state: &u32) -> i64 {
        i64::from(state)
    }

    fn last_chance(&self, op: usize) -> i64 {
        i64::from(self.0[op]) - 1
    }

    fn is_inferred(&self, _: usize) -> bool {
        false
    }
}

#[test]
fn last_chance_prunes_hopeless_orders() {
    // 300 concurrent writes listed in decreasing order: without pruning the search would try
    // every decreasing prefix before finding the one order that works.
    let n = 300u32;
    let values: Vec<u32> = (1..=n).rev().collect();
    let intervals: Vec<Interval> = (0..n)
        .map(|i| Interval {
            call: u64::from(i),
            ret: Some(1000),
        })
        .collect();
    let cancel = AtomicBool::new(false);
    let verdict = search(&intervals, &Increasing(values), 0, &limits(&cancel));
    assert_eq!(verdict, Verdict::Linearizable);
}

#[test]
fn stops_when_cancelled() {
    let intervals: Vec<Interval> = (0..5000)
        .map(|i| Interval {
            call: 0,
            ret: Some(1000 + i),
        })
        .collect();
    let ops: Vec<(u64, Option<u64>, bool, u32)> = (0..5000).map(|_| (0, None, false, 7)).collect();
    let cancel = AtomicBool::new(true);
    // More candidates than steps between limit checks, so the search sees the flag before it
    // can finish.
    let verdict = search(&intervals, &Register(&ops), 0, &limits(&cancel));
    assert_eq!(verdict, Verdict::Stopped(Stopped::Cancelled));
}
