//! One watcher's stream against the reference history.

use std::collections::HashMap;

use super::{values_before, Event, WatchLog};
use crate::anomaly::Anomaly;

/// Checks that `log` is exactly the part of `reference` it should be: every reference event
/// under the prefix from the start revision up to the last revision the watcher received, each
/// once, in order, with the same content, and with the right prev_kv when it was asked for.
/// Events after the last received one are not missing: the watcher may have stopped there.
pub fn check_watch(reference: &[Event], log: &WatchLog) -> Vec<Anomaly> {
    let mut anomalies = Vec::new();
    let position: HashMap<(i64, &str), usize> = reference
        .iter()
        .enumerate()
        .rev() // so that the first of any duplicates wins
        .map(|(i, event)| ((event.revision, event.key.as_str()), i))
        .collect();
    let prior = values_before(reference);
    let start = match log.start_revision {
        r if r > 0 => r,
        _ => log.events.first().map_or(i64::MAX, |e| e.revision),
    };
    let unexpected = |event: &Event, reason: &str| Anomaly::WatchUnexpectedEvent {
        watcher: log.watcher,
        revision: event.revision,
        key: event.key.clone(),
        reason: reason.to_owned(),
    };

    let mut received = vec![false; reference.len()];
    let mut furthest: Option<usize> = None;
    for event in &log.events {
        let Some(&i) = position.get(&(event.revision, event.key.as_str())) else {
            anomalies.push(unexpected(event, "that is not in the store's history"));
            continue;
        };
        if !event.key.starts_with(&log.prefix) {
            anomalies.push(unexpected(event, "outside the watched prefix"));
            continue;
        }
        if event.revision < start {
            anomalies.push(unexpected(event, "before the watch's start revision"));
            continue;
        }
        if received[i] {
            anomalies.push(Anomaly::WatchDuplicate {
                watcher: log.watcher,
                revision: event.revision,
                key: event.key.clone(),
            });
            continue;
        }
        received[i] = true;
        match furthest {
            Some(f) if f > i => anomalies.push(Anomaly::WatchOutOfOrder {
                watcher: log.watcher,
                revision: event.revision,
                key: event.key.clone(),
                after_revision: reference[f].revision,
                after_key: reference[f].key.clone(),
            }),
            _ => furthest = Some(i),
        }
        compare_content(log.watcher, &reference[i], event, &mut anomalies);
        if log.prev_kv && event.prev_value.as_deref() != prior[i] {
            anomalies.push(Anomaly::WatchWrongPrevKv {
                watcher: log.watcher,
                revision: event.revision,
                key: event.key.clone(),
                expected: prior[i].map(str::to_owned),
                actual: event.prev_value.clone(),
            });
        }
    }
    if let Some(last) = furthest {
        find_gaps(
            reference,
            log,
            start,
            reference[last].revision,
            &received,
            &mut anomalies,
        );
    }
    anomalies
}

fn compare_content(watcher: u32, expected: &Event, actual: &Event, anomalies: &mut Vec<Anomaly>) {
    let mut field = |name: &str, want: String, got: String| {
        if want != got {
            anomalies.push(Anomaly::WatchEventMismatch {
                watcher,
                revision: actual.revision,
                key: actual.key.clone(),
                field: name.to_owned(),
                expected: want,
                actual: got,
            });
        }
    };
    field(
        "kind",
        format!("{:?}", expected.kind),
        format!("{:?}", actual.kind),
    );
    field(
        "value",
        format!("{:?}", expected.value),
        format!("{:?}", actual.value),
    );
    field(
        "create_revision",
        expected.create_revision.to_string(),
        actual.create_revision.to_string(),
    );
    field(
        "mod_revision",
        expected.mod_revision.to_string(),
        actual.mod_revision.to_string(),
    );
    field(
        "version",
        expected.version.to_string(),
        actual.version.to_string(),
    );
}

/// Reports each run of consecutive expected-but-missing events once, so that a watcher that
/// lost a long stretch yields one anomaly, not thousands.
fn find_gaps(
    reference: &[Event],
    log: &WatchLog,
    start: i64,
    last: i64,
    received: &[bool],
    anomalies: &mut Vec<Anomaly>,
) {
    let mut run: Option<(usize, usize, usize)> = None; // (first, last, count)
    let mut close = |run: &mut Option<(usize, usize, usize)>| {
        if let Some((first, last, missing)) = run.take() {
            anomalies.push(Anomaly::WatchGap {
                watcher: log.watcher,
                first_revision: reference[first].revision,
                last_revision: reference[last].revision,
                first_key: reference[first].key.clone(),
                missing,
            });
        }
    };
    for (i, event) in reference.iter().enumerate() {
        let expected =
            event.key.starts_with(&log.prefix) && (start..=last).contains(&event.revision);
        if !expected {
            continue;
        }
        if received[i] {
            close(&mut run);
        } else {
            run = Some(match run {
                Some((first, _, missing)) => (first, i, missing + 1),
                None => (i, i, 1),
            });
        }
    }
    close(&mut run);
}
