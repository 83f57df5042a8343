mod common;

use std::time::Duration;

use common::*;
use oxcd_lincheck::{check_operations, CheckOutcome, Input, ModRevision, Operation, Output};

fn check(history: &[Operation]) -> CheckOutcome {
    check_operations(history, Duration::from_secs(10))
}

fn assert_ok(history: &[Operation]) {
    let outcome = check(history);
    assert!(outcome.is_ok(), "expected linearizable, got: {outcome}");
}

/// Asserts the history is illegal on `key` and returns the reported unlinearizable ops.
fn assert_illegal(history: &[Operation], key: &str) -> Vec<Operation> {
    match check(history) {
        CheckOutcome::Illegal {
            key: bad,
            unlinearizable,
            ..
        } => {
            assert_eq!(bad, key);
            unlinearizable
        }
        other => panic!("expected illegal on {key:?}, got: {other}"),
    }
}

#[test]
fn empty_history_is_linearizable() {
    assert_ok(&[]);
}

#[test]
fn sequential_history_is_linearizable() {
    assert_ok(&[
        get(0, 0, 1, "k", None, None),
        put(0, 2, 3, "k", "a", 2),
        get(0, 4, 5, "k", Some("a"), Some(2)),
        cas(0, 6, 7, "k", Some("a"), "b", true, 3),
        cas(0, 8, 9, "k", Some("a"), "c", false, 3),
        delete(0, 10, 11, "k", 1, 4),
        get(0, 12, 13, "k", None, None),
        delete(0, 14, 15, "k", 0, 4),
        cas(0, 16, 17, "k", None, "d", true, 5),
        get(0, 18, 19, "k", Some("d"), Some(5)),
    ]);
}

#[test]
fn concurrent_overlapping_history_is_linearizable() {
    assert_ok(&[
        put(1, 0, 10, "k", "a", 2),
        // Overlaps the put and sees the old state...
        get(2, 1, 3, "k", None, None),
        // ...or the new one.
        get(3, 2, 9, "k", Some("a"), Some(2)),
        put(1, 11, 30, "k", "b", 4),
        put(2, 12, 25, "k", "c", 3),
        // Between the two concurrent puts, ordered by their revisions.
        get(3, 13, 20, "k", Some("c"), Some(3)),
        get(4, 31, 32, "k", Some("b"), Some(4)),
    ]);
}

#[test]
fn equal_timestamps_count_as_concurrent() {
    // The get is called at the instant the put returns, so it may see either state.
    assert_ok(&[put(1, 0, 10, "k", "a", 2), get(2, 10, 12, "k", None, None)]);
}

#[test]
fn new_value_then_old_value_is_illegal() {
    let stuck = assert_illegal(
        &[
            put(1, 0, 100, "k", "a", 2),
            get(2, 10, 20, "k", Some("a"), Some(2)),
            get(3, 30, 40, "k", None, None),
        ],
        "k",
    );
    assert!(stuck.iter().any(|op| op.client == 3), "{stuck:?}");
}

#[test]
fn stale_read_after_acknowledged_write_is_illegal() {
    let history = [
        put(1, 0, 1, "k", "a", 2),
        put(1, 2, 3, "k", "b", 3),
        get(2, 4, 5, "k", Some("a"), Some(2)),
    ];
    let stale = history[2].clone();
    match check(&history) {
        CheckOutcome::Illegal {
            key,
            longest_linearization,
            state_after_longest,
            unlinearizable,
        } => {
            assert_eq!(key, "k");
            assert_eq!(longest_linearization, history[..2].to_vec());
            assert_eq!(state_after_longest.value.as_deref(), Some("b"));
            assert_eq!(state_after_longest.mod_revision, ModRevision::Exact(3));
            assert_eq!(unlinearizable, vec![stale]);
        }
        other => panic!("expected illegal, got {other}"),
    }
}

#[test]
fn lost_acknowledged_write_is_illegal() {
    assert_illegal(
        &[put(1, 0, 1, "k", "a", 2), get(2, 2, 3, "k", None, None)],
        "k",
    );
}

#[test]
fn cas_succeeding_twice_from_the_same_value_is_illegal() {
    let base = [put(0, 0, 1, "k", "a", 2)];
    let one_wins = [
        cas(1, 4, 6, "k", Some("a"), "b", true, 3),
        cas(2, 5, 7, "k", Some("a"), "c", false, 3),
    ];
    assert_ok(&[&base[..], &one_wins].concat());
    let both_win = [
        cas(1, 4, 6, "k", Some("a"), "b", true, 3),
        cas(2, 5, 7, "k", Some("a"), "c", true, 4),
    ];
    assert_illegal(&[&base[..], &both_win].concat(), "k");
}

#[test]
fn failed_cas_must_really_fail() {
    assert_illegal(
        &[
            put(0, 0, 1, "k", "a", 2),
            cas(1, 2, 3, "k", Some("a"), "b", false, 2),
        ],
        "k",
    );
}

#[test]
fn revision_going_backwards_is_illegal() {
    assert_illegal(&[put(1, 0, 1, "k", "a", 5), put(1, 2, 3, "k", "b", 4)], "k");
    // A read must report the revision of the write it sees.
    assert_illegal(
        &[
            put(1, 0, 1, "k", "a", 5),
            get(1, 2, 3, "k", Some("a"), Some(6)),
        ],
        "k",
    );
    // A delete's header revision cannot be below the key's last write either.
    assert_illegal(
        &[
            put(1, 0, 1, "k", "a", 5),
            delete(1, 2, 3, "k", 1, 6),
            delete(1, 4, 5, "k", 0, 3),
        ],
        "k",
    );
}

#[test]
fn read_of_a_value_never_written_is_illegal() {
    assert_illegal(&[get(1, 0, 1, "k", Some("ghost"), Some(2))], "k");
}

#[test]
fn delete_of_an_absent_key_must_delete_nothing() {
    assert_illegal(&[delete(1, 0, 1, "k", 1, 2)], "k");
    assert_ok(&[delete(1, 0, 1, "k", 0, 1)]);
}

#[test]
fn unknown_write_that_took_effect() {
    assert_ok(&[
        put(1, 0, 1, "k", "a", 2),
        put_unknown(2, 2, "k", "b"),
        get(3, 50, 51, "k", Some("b"), Some(7)),
        put(3, 52, 53, "k", "c", 8),
    ]);
    // Taking effect long after the client gave up.
    assert_ok(&[
        put_unknown(2, 0, "k", "b"),
        get(3, 10, 11, "k", None, None),
        get(3, 1000, 1001, "k", Some("b"), Some(9)),
    ]);
}

#[test]
fn unknown_write_that_did_not_take_effect() {
    assert_ok(&[
        put(1, 0, 1, "k", "a", 2),
        put_unknown(2, 2, "k", "b"),
        cas_unknown(2, 3, "k", Some("a"), "c"),
        delete_unknown(3, 4, "k"),
        get(3, 50, 51, "k", Some("a"), Some(2)),
    ]);
}

#[test]
fn unread_unknown_write_can_explain_a_failed_cas() {
    // Nobody ever read "b", but the CAS expecting "a" failed, so "b" must have been written.
    let history = |cas_succeeded, revision| {
        vec![
            put(1, 0, 1, "k", "a", 2),
            put_unknown(2, 2, "k", "b"),
            cas(3, 10, 11, "k", Some("a"), "c", cas_succeeded, revision),
        ]
    };
    assert_ok(&history(false, 3));
    assert_ok(&history(true, 3));
    // But not with a header revision that predates any write of "b".
    assert_illegal(&history(false, 2), "k");
}

#[test]
fn unknown_delete_that_took_effect() {
    assert_ok(&[
        put(1, 0, 1, "k", "a", 2),
        delete_unknown(2, 2, "k"),
        get(3, 50, 51, "k", None, None),
        put(3, 52, 53, "k", "b", 4),
    ]);
}

#[test]
fn unknown_write_gets_a_revision_above_the_last_one() {
    assert_illegal(
        &[
            put(1, 0, 1, "k", "a", 5),
            put_unknown(2, 2, "k", "b"),
            get(3, 50, 51, "k", Some("b"), Some(5)),
        ],
        "k",
    );
}

#[test]
fn later_failed_cas_caps_an_unknown_writes_revision() {
    // The CAS failed, so b was already there, with a revision no higher than its header's 3;
    // a read then saying b has revision 4 contradicts that.
    let history = |seen| {
        vec![
            put(1, 0, 1, "k", "a", 2),
            put_unknown(2, 2, "k", "b"),
            cas(3, 10, 11, "k", Some("a"), "c", false, 3),
            get(3, 12, 13, "k", Some("b"), Some(seen)),
        ]
    };
    assert_ok(&history(3));
    assert_illegal(&history(4), "k");
}

#[test]
fn seen_unknown_write_cannot_be_undone() {
    // b was seen, so it took effect before that read returned; a later read of a is stale.
    assert_illegal(
        &[
            put(1, 0, 1, "k", "a", 2),
            put_unknown(2, 2, "k", "b"),
            get(3, 10, 11, "k", Some("b"), Some(3)),
            get(3, 12, 13, "k", Some("a"), Some(2)),
        ],
        "k",
    );
}

#[test]
fn unknown_cas_took_effect_only_if_its_expectation_held() {
    assert_ok(&[
        put(1, 0, 1, "k", "a", 2),
        cas_unknown(2, 2, "k", Some("a"), "b"),
        get(3, 10, 11, "k", Some("b"), Some(3)),
    ]);
    assert_illegal(
        &[
            put(1, 0, 1, "k", "a", 2),
            cas_unknown(2, 2, "k", Some("x"), "b"),
            get(3, 10, 11, "k", Some("b"), Some(3)),
        ],
        "k",
    );
}

#[test]
fn unknown_output_overrides_a_return_time() {
    // The client recorded when it gave up, but the write may be applied later still.
    let mut late = put_unknown(2, 2, "k", "b");
    late.return_ns = Some(3);
    assert_ok(&[
        put(1, 0, 1, "k", "a", 2),
        late,
        get(3, 5, 6, "k", Some("a"), Some(2)),
        get(3, 7, 8, "k", Some("b"), Some(3)),
    ]);
}

#[test]
fn unanswered_reads_are_ignored() {
    let lost_read = Operation {
        client: 1,
        call_ns: 0,
        return_ns: None,
        input: Input::Get { key: "k".into() },
        output: Output::Unknown,
    };
    assert_ok(&[lost_read]);
}

#[test]
fn mismatched_output_is_illegal() {
    let bad = Operation {
        client: 1,
        call_ns: 0,
        return_ns: Some(1),
        input: Input::Put {
            key: "k".into(),
            value: "a".into(),
        },
        output: Output::Delete {
            deleted: 0,
            revision: 1,
        },
    };
    assert_illegal(&[bad], "k");
}

#[test]
fn keys_are_checked_independently_and_the_bad_one_is_named() {
    assert_illegal(
        &[
            put(1, 0, 1, "good", "a", 2),
            put(1, 2, 3, "bad", "b", 3),
            get(2, 4, 5, "good", Some("a"), Some(2)),
            get(2, 6, 7, "bad", None, None),
        ],
        "bad",
    );
}

#[test]
fn times_out_on_a_hopeless_search() {
    // 120 unanswered puts and deletes, then a read of a value nobody wrote: before giving
    // up, the search must try every alternating choice of them as the ones that took effect.
    let mut history: Vec<Operation> = (0..120)
        .map(|i| match i % 2 {
            0 => put_unknown(i, u64::from(i), "k", &format!("v{i}")),
            _ => delete_unknown(i, u64::from(i), "k"),
        })
        .collect();
    history.push(get(0, 2000, 2001, "k", Some("ghost"), Some(1000)));
    let started = std::time::Instant::now();
    let outcome = check_operations(&history, Duration::from_millis(200));
    assert_eq!(outcome, CheckOutcome::Timeout { key: "k".into() });
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn pruned_orders_are_still_explained() {
    // 200 concurrent puts, then a read older than all of them: the search sees at once that
    // any put dooms the read, and reports the first put as the step after which it is stuck.
    let mut history: Vec<Operation> = (0..200)
        .map(|i| {
            put(
                i,
                u64::from(i),
                1000,
                "k",
                &format!("v{i}"),
                i64::from(i) + 2,
            )
        })
        .collect();
    history.push(get(0, 2000, 2001, "k", None, None));
    match check(&history) {
        CheckOutcome::Illegal {
            longest_linearization,
            unlinearizable,
            ..
        } => {
            assert!(!longest_linearization.is_empty());
            assert!(!unlinearizable.is_empty());
        }
        other => panic!("expected illegal, got {other}"),
    }
}

#[test]
fn report_is_readable() {
    let outcome = check(&[put(1, 0, 1, "k", "a", 2), get(2, 2, 3, "k", None, None)]);
    let text = outcome.to_string();
    assert!(text.contains("key \"k\" is not linearizable"), "{text}");
    assert!(
        text.contains("client 2 [2, 3] get(\"k\") -> None"),
        "{text}"
    );
}
