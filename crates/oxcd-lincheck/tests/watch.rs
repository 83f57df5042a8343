mod common;

use common::ReferenceBuilder;
use oxcd_lincheck::{check_reference, check_watch, Anomaly, Event, EventKind, WatchLog};

/// revisions: 2 put a/1, 3 put b/1, 4 put a/1 again, 5 txn(delete a/1, put a/2), 6 put b/1,
/// 7 delete b/1, 8 put a/1.
fn reference() -> Vec<Event> {
    let mut b = ReferenceBuilder::new();
    b.put("a/1", "x1")
        .put("b/1", "y1")
        .put("a/1", "x2")
        .txn(&[("a/1", None), ("a/2", Some("z1"))])
        .put("b/1", "y2")
        .delete("b/1")
        .put("a/1", "x3");
    b.events.clone()
}

/// What a correct watch on `prefix` from `start` (with prev_kv) receives.
fn watch(prefix: &str, start: i64) -> WatchLog {
    let events = reference()
        .into_iter()
        .filter(|e| e.key.starts_with(prefix) && e.revision >= start)
        .collect();
    WatchLog {
        watcher: 7,
        prefix: prefix.into(),
        start_revision: start,
        prev_kv: true,
        events,
    }
}

fn without_prev_kv(mut log: WatchLog) -> WatchLog {
    log.prev_kv = false;
    for event in &mut log.events {
        event.prev_value = None;
    }
    log
}

#[test]
fn consistent_reference_has_no_anomalies() {
    assert_eq!(check_reference(&reference()), vec![]);
}

#[test]
fn reference_inconsistencies_are_found() {
    let mut bad = reference();
    bad[2].version = 5; // third event: second put of a/1, version 2
    bad[3].mod_revision = 9;
    bad.swap(5, 6);
    bad.push(Event {
        revision: 9,
        key: "gone".into(),
        kind: EventKind::Delete,
        value: None,
        create_revision: 0,
        mod_revision: 9,
        version: 0,
        prev_value: None,
    });
    let mut anomalies = check_reference(&bad);
    anomalies.sort_by_key(|a| a.to_string());
    let text: Vec<String> = anomalies.iter().map(ToString::to_string).collect();
    assert!(
        anomalies
            .iter()
            .any(|a| matches!(a, Anomaly::ReferenceOutOfOrder { .. })),
        "{text:?}"
    );
    assert!(
        anomalies
            .iter()
            .any(|a| matches!(a, Anomaly::ReferenceDeleteOfAbsentKey { key, .. } if key == "gone")),
        "{text:?}"
    );
    assert!(
        text.iter().any(|t| t.contains("version is 5, expected 2")),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|t| t.contains("mod_revision is 9, expected 5")),
        "{text:?}"
    );
}

#[test]
fn reference_with_a_key_twice_in_one_revision_is_flagged() {
    let mut b = ReferenceBuilder::new();
    b.txn(&[("k", Some("1")), ("k", Some("2"))]);
    let anomalies = check_reference(&b.events);
    assert!(
        anomalies.contains(&Anomaly::ReferenceDuplicateEvent {
            revision: 2,
            key: "k".into()
        }),
        "{anomalies:?}"
    );
}

#[test]
fn reference_with_wrong_prev_value_is_flagged() {
    let mut bad = reference();
    bad[2].prev_value = Some("nope".into());
    let anomalies = check_reference(&bad);
    assert_eq!(anomalies.len(), 1, "{anomalies:?}");
    assert!(anomalies[0].to_string().contains("prev_value"));
}

#[test]
fn complete_watches_have_no_anomalies() {
    let reference = reference();
    for (prefix, start) in [
        ("", 1),
        ("", 4),
        ("a/", 2),
        ("a/", 5),
        ("b/", 3),
        ("a/1", 8),
    ] {
        let log = watch(prefix, start);
        assert_eq!(
            check_watch(&reference, &log),
            vec![],
            "{prefix:?} from {start}"
        );
        let log = without_prev_kv(log);
        assert_eq!(
            check_watch(&reference, &log),
            vec![],
            "{prefix:?} from {start}"
        );
    }
}

#[test]
fn watcher_that_stopped_early_is_fine() {
    let mut log = watch("", 1);
    log.events.truncate(3);
    assert_eq!(check_watch(&reference(), &log), vec![]);
    log.events.clear();
    assert_eq!(check_watch(&reference(), &log), vec![]);
}

#[test]
fn gaps_are_found_and_grouped() {
    let mut log = watch("", 1);
    // Events 2..=4 are revisions 4, 5 (a/1 delete), 5 (a/2 put).
    log.events.drain(2..5);
    let anomalies = check_watch(&reference(), &log);
    assert_eq!(
        anomalies,
        vec![Anomaly::WatchGap {
            watcher: 7,
            first_revision: 4,
            last_revision: 5,
            first_key: "a/1".into(),
            missing: 3,
        }]
    );
    assert_eq!(
        anomalies[0].to_string(),
        "watcher 7 missed 3 event(s) in revisions 4..=5, the first on key \"a/1\""
    );
}

#[test]
fn gap_at_the_start_is_found() {
    let mut log = watch("b/", 3);
    log.events.remove(0);
    let anomalies = check_watch(&reference(), &log);
    assert!(
        matches!(
            anomalies.as_slice(),
            [Anomaly::WatchGap {
                first_revision: 3,
                missing: 1,
                ..
            }]
        ),
        "{anomalies:?}"
    );
}

#[test]
fn duplicates_are_found() {
    let mut log = watch("a/", 1);
    let again = log.events[1].clone();
    log.events.insert(2, again);
    let anomalies = check_watch(&reference(), &log);
    assert_eq!(
        anomalies,
        vec![Anomaly::WatchDuplicate {
            watcher: 7,
            revision: 4,
            key: "a/1".into()
        }]
    );
}

#[test]
fn reordering_is_found() {
    let mut log = watch("", 1);
    log.events.swap(1, 2);
    let anomalies = check_watch(&reference(), &log);
    assert_eq!(
        anomalies,
        vec![Anomaly::WatchOutOfOrder {
            watcher: 7,
            revision: 3,
            key: "b/1".into(),
            after_revision: 4,
            after_key: "a/1".into(),
        }]
    );
    // Within one revision too.
    let mut log = watch("", 1);
    log.events.swap(3, 4);
    let anomalies = check_watch(&reference(), &log);
    assert!(
        matches!(
            anomalies.as_slice(),
            [Anomaly::WatchOutOfOrder { revision: 5, .. }]
        ),
        "{anomalies:?}"
    );
}

#[test]
fn wrong_prev_kv_is_found() {
    let mut log = watch("", 1);
    log.events[2].prev_value = None; // was x1
    log.events[5].prev_value = Some("x1".into()); // b/1 put: was y1
    let anomalies = check_watch(&reference(), &log);
    assert_eq!(
        anomalies,
        vec![
            Anomaly::WatchWrongPrevKv {
                watcher: 7,
                revision: 4,
                key: "a/1".into(),
                expected: Some("x1".into()),
                actual: None,
            },
            Anomaly::WatchWrongPrevKv {
                watcher: 7,
                revision: 6,
                key: "b/1".into(),
                expected: Some("y1".into()),
                actual: Some("x1".into()),
            },
        ]
    );
    // Not checked when prev_kv was not asked for.
    log.prev_kv = false;
    assert_eq!(check_watch(&reference(), &log), vec![]);
}

#[test]
fn changed_event_content_is_found() {
    let mut log = watch("", 1);
    log.events[0].value = Some("other".into());
    log.events[2].version = 1;
    log.events[3].kind = EventKind::Put;
    let anomalies = check_watch(&reference(), &log);
    let fields: Vec<&str> = anomalies
        .iter()
        .map(|a| match a {
            Anomaly::WatchEventMismatch { field, .. } => field.as_str(),
            other => panic!("unexpected {other}"),
        })
        .collect();
    assert_eq!(fields, vec!["value", "version", "kind"]);
}

#[test]
fn events_that_do_not_belong_are_found() {
    let reference = reference();
    let mut log = watch("a/", 4);
    let outside_prefix = reference[1].clone(); // b/1 at 3
    let before_start = reference[0].clone(); // a/1 at 2
    let mut invented = reference[2].clone();
    invented.revision = 42;
    log.events.push(outside_prefix);
    log.events.push(before_start);
    log.events.push(invented);
    let reasons: Vec<String> = check_watch(&reference, &log)
        .into_iter()
        .map(|a| match a {
            Anomaly::WatchUnexpectedEvent { reason, .. } => reason,
            other => panic!("unexpected {other}"),
        })
        .collect();
    assert_eq!(
        reasons,
        vec![
            "outside the watched prefix",
            "before the watch's start revision",
            "that is not in the store's history"
        ]
    );
}

#[test]
fn start_revision_zero_starts_at_the_first_event() {
    let mut log = watch("", 4);
    log.start_revision = 0;
    assert_eq!(check_watch(&reference(), &log), vec![]);
}
