//! Snapshot file handling.

#![allow(clippy::field_reassign_with_default)] // raft-rs messages are built field by field

use std::fs;
use std::path::Path;

use oxcd_wal::{Snapshotter, WalSnapshot};
use raft_proto::eraftpb::{ConfState, Snapshot, SnapshotMetadata};

fn snap(term: u64, index: u64, data: &[u8]) -> Snapshot {
    let mut cs = ConfState::default();
    cs.voters = vec![1, 2, 3];
    let mut m = SnapshotMetadata::default();
    m.term = term;
    m.index = index;
    m.set_conf_state(cs);
    let mut s = Snapshot::default();
    s.set_metadata(m);
    s.data = data.to_vec().into();
    s
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn save_and_load_newest() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("snap");
    let s = Snapshotter::new(&dir);
    assert!(
        s.load_newest().unwrap().is_none(),
        "missing dir means no snapshot"
    );

    s.save(&snap(1, 5, b"five")).unwrap();
    s.save(&snap(2, 20, b"twenty")).unwrap();
    s.save(&snap(1, 10, b"ten")).unwrap();
    // The empty snapshot is not written.
    s.save(&Snapshot::default()).unwrap();
    assert_eq!(
        names(&dir),
        vec![
            "0000000000000001-0000000000000005.snap",
            "0000000000000001-000000000000000a.snap",
            "0000000000000002-0000000000000014.snap",
        ]
    );
    let newest = s.load_newest().unwrap().unwrap();
    assert_eq!(newest, snap(2, 20, b"twenty"));

    let only_old = [WalSnapshot { index: 10, term: 1 }];
    let avail = s.load_newest_available(&only_old).unwrap().unwrap();
    assert_eq!(avail.get_metadata().index, 10);
    assert!(s
        .load_newest_available(&[WalSnapshot { index: 99, term: 9 }])
        .unwrap()
        .is_none());
}

#[test]
fn corrupt_snapshot_is_skipped_and_renamed() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().to_path_buf();
    let s = Snapshotter::new(&dir);
    s.save(&snap(1, 5, b"good")).unwrap();
    s.save(&snap(1, 9, b"will be damaged")).unwrap();
    fs::write(dir.join("0000000000000001-000000000000000c.snap"), b"").unwrap();

    let newest = dir.join("0000000000000001-0000000000000009.snap");
    let mut b = fs::read(&newest).unwrap();
    let last = b.len() - 1;
    b[last] ^= 0xff;
    fs::write(&newest, &b).unwrap();

    let got = s.load_newest().unwrap().unwrap();
    assert_eq!(got.get_metadata().index, 5);
    assert_eq!(
        names(&dir),
        vec![
            "0000000000000001-0000000000000005.snap",
            "0000000000000001-0000000000000009.snap.broken",
            "0000000000000001-000000000000000c.snap.broken",
        ]
    );
}

#[test]
fn purge_keeps_newest() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().to_path_buf();
    let s = Snapshotter::new(&dir);
    for i in 1..=7u64 {
        s.save(&snap(1, i * 10, b"x")).unwrap();
    }
    fs::write(dir.join("db"), b"backend").unwrap();
    fs::write(
        dir.join("0000000000000001-0000000000000050.snap.tmp"),
        b"half",
    )
    .unwrap();
    s.purge(5).unwrap();
    let left = names(&dir);
    assert_eq!(left.len(), 6, "{left:?}");
    assert!(left.contains(&"db".to_owned()));
    assert!(!left.contains(&"0000000000000001-000000000000000a.snap".to_owned()));
    assert!(!left.contains(&"0000000000000001-0000000000000014.snap".to_owned()));
    assert_eq!(s.load_newest().unwrap().unwrap().get_metadata().index, 70);
    s.purge(0).unwrap();
    assert_eq!(names(&dir), vec!["db"]);
}
