mod common;

use common::*;
use oxcd_lincheck::{
    check_durability, check_revision_order, resolve_unknown_writes, Anomaly, Event, Operation,
    Output,
};

/// A history and the reference it produced: revisions 2 put k=a, 3 cas k a->b, 4 delete k,
/// 5 put j=c (written by a request whose answer was lost).
fn scenario() -> (Vec<Operation>, Vec<Event>) {
    let history = vec![
        put(1, 0, 10, "k", "a", 2),
        cas(2, 11, 20, "k", Some("a"), "b", true, 3),
        cas(3, 12, 21, "k", Some("a"), "lost-race", false, 3),
        delete(1, 22, 30, "k", 1, 4),
        delete(1, 31, 32, "k", 0, 4),
        put_unknown(2, 33, "j", "c"),
        put_unknown(3, 34, "j", "never-applied"),
        get(1, 40, 41, "j", Some("c"), Some(5)),
    ];
    let mut reference = ReferenceBuilder::new();
    reference
        .put("k", "a")
        .put("k", "b")
        .delete("k")
        .put("j", "c");
    (history, reference.events.clone())
}

#[test]
fn consistent_history_and_reference_have_no_anomalies() {
    let (history, reference) = scenario();
    assert_eq!(check_durability(&reference, &history), vec![]);
    assert_eq!(check_revision_order(&history), vec![]);
}

#[test]
fn lost_writes_are_found() {
    let (history, mut reference) = scenario();
    reference.remove(1); // the successful cas
    reference.remove(1); // the delete
    let anomalies = check_durability(&reference, &history);
    assert_eq!(
        anomalies,
        vec![
            Anomaly::LostWrite {
                client: 2,
                key: "k".into(),
                value: Some("b".into()),
                revision: 3,
                found: "no event for the key at that revision".into(),
            },
            Anomaly::LostWrite {
                client: 1,
                key: "k".into(),
                value: None,
                revision: 4,
                found: "no event for the key at that revision".into(),
            },
        ]
    );
    assert_eq!(
        anomalies[0].to_string(),
        "lost write: client 2's put of \"b\" to \"k\" was acknowledged at revision 3, \
         but the reference has no event for the key at that revision"
    );
}

#[test]
fn write_at_another_value_is_lost() {
    let (history, mut reference) = scenario();
    reference[0].value = Some("a".into());
    reference[1].value = Some("a-overwritten".into());
    let anomalies = check_durability(&reference, &history);
    assert!(
        anomalies.iter().any(
            |a| matches!(a, Anomaly::LostWrite { revision: 3, found, .. }
            if found.contains("a-overwritten"))
        ),
        "{anomalies:?}"
    );
    assert!(
        anomalies
            .iter()
            .any(|a| matches!(a, Anomaly::PhantomWrite { revision: 3, .. })),
        "{anomalies:?}"
    );
}

#[test]
fn phantom_writes_are_found() {
    let (history, mut reference) = scenario();
    let mut b = ReferenceBuilder::new();
    b.put("k", "a")
        .put("k", "b")
        .delete("k")
        .put("j", "c")
        .put("k", "nobody")
        .delete("j");
    reference.extend(b.events[4..].iter().cloned());
    let mut reference_with_extra_delete = reference.clone();
    reference_with_extra_delete.push(Event {
        key: "zz".into(),
        ..reference[5].clone()
    });
    let anomalies = check_durability(&reference_with_extra_delete, &history);
    assert_eq!(
        anomalies,
        vec![
            Anomaly::PhantomWrite {
                revision: 6,
                key: "k".into(),
                value: Some("nobody".into()),
            },
            Anomaly::PhantomDelete {
                revision: 7,
                key: "j".into(),
            },
            Anomaly::PhantomDelete {
                revision: 7,
                key: "zz".into(),
            },
        ]
    );
}

#[test]
fn value_written_to_another_key_is_a_phantom() {
    let (history, mut reference) = scenario();
    reference[3].key = "k".into(); // "c" was sent to j, not to k
    let anomalies = check_durability(&reference, &history);
    assert!(
        anomalies.contains(&Anomaly::PhantomWrite {
            revision: 5,
            key: "k".into(),
            value: Some("c".into())
        }),
        "{anomalies:?}"
    );
}

#[test]
fn unknown_writes_may_or_may_not_appear() {
    let (history, mut reference) = scenario();
    reference.pop(); // "c" did not take effect after all
    let history: Vec<Operation> = history
        .into_iter()
        .filter(|op| op.client != 1 || op.call_ns != 40)
        .collect();
    assert_eq!(check_durability(&reference, &history), vec![]);
}

#[test]
fn duplicate_application_is_found() {
    let (history, mut reference) = scenario();
    let mut again = reference[3].clone();
    again.revision = 6;
    again.mod_revision = 6;
    again.version = 2;
    again.create_revision = 5;
    reference.push(again);
    assert_eq!(
        check_durability(&reference, &history),
        vec![Anomaly::DuplicateWrite {
            key: "j".into(),
            value: "c".into(),
            revisions: vec![5, 6],
        }]
    );
}

#[test]
fn write_applied_before_it_was_sent_is_found() {
    // "late" is sent after revision 3 was acknowledged but shows up at revision 2.
    let history = vec![put(1, 0, 10, "k", "a", 3), put_unknown(2, 20, "j", "late")];
    let mut reference = ReferenceBuilder::new();
    reference.put("j", "late").put("k", "a");
    assert_eq!(
        check_durability(&reference.events, &history),
        vec![Anomaly::WriteBeforeInvocation {
            revision: 2,
            key: "j".into(),
            value: "late".into(),
            acknowledged_before: 3,
        }]
    );
}

#[test]
fn revision_order_across_keys_is_checked() {
    let history = vec![
        put(1, 0, 10, "a", "1", 5),
        // Sent after revision 5 was acknowledged on another key, yet older.
        put(2, 20, 30, "b", "2", 4),
        // A failed CAS may report the same store revision, but not a lower one.
        cas(3, 40, 50, "c", Some("x"), "3", false, 5),
        delete(3, 60, 70, "c", 0, 3),
        // Concurrent with the first put: any order is fine.
        put(4, 5, 15, "d", "4", 2),
    ];
    let later: Vec<(u32, u64)> = check_revision_order(&history)
        .into_iter()
        .map(|a| match a {
            Anomaly::RevisionWentBackwards { later, .. } => (later.client, later.call_ns),
            other => panic!("unexpected {other}"),
        })
        .collect();
    assert_eq!(later, vec![(2, 20), (3, 60)]);
}

#[test]
fn reads_raise_the_revision_floor() {
    let history = vec![
        get(1, 0, 10, "a", Some("x"), Some(9)),
        put(2, 20, 30, "b", "2", 9),
    ];
    assert_eq!(check_revision_order(&history).len(), 1);
}

#[test]
fn unknown_writes_are_resolved_from_the_reference() {
    let (history, reference) = scenario();
    let resolved = resolve_unknown_writes(&history, &reference);
    assert_eq!(
        resolved.len(),
        history.len() - 1,
        "never-applied write dropped"
    );
    let c = resolved
        .iter()
        .find(|op| op.input.written_value() == Some("c"))
        .unwrap();
    assert_eq!(c.output, Output::Put { revision: 5 });
    assert_eq!(c.return_ns, None);
    assert!(resolved
        .iter()
        .all(|op| op.input.written_value() != Some("never-applied")));
}
