//! Unit tests that need crate-internal knobs (small segment sizes).

#![allow(clippy::field_reassign_with_default)] // raft-rs messages are built field by field

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use raft_proto::eraftpb::{Entry, HardState};

use crate::fileutil::read_wal_names;
use crate::{Wal, WalError, WalSnapshot};

fn entry(index: u64, term: u64, data: &[u8]) -> Entry {
    let mut e = Entry::default();
    e.index = index;
    e.term = term;
    e.data = data.to_vec().into();
    e
}

fn hs(term: u64, vote: u64, commit: u64) -> HardState {
    let mut h = HardState::default();
    h.term = term;
    h.vote = vote;
    h.commit = commit;
    h
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    read_wal_names(dir)
        .unwrap()
        .into_iter()
        .map(|n| dir.join(n.name))
        .collect()
}

fn indexes(es: &[Entry]) -> Vec<(u64, u64)> {
    es.iter().map(|e| (e.index, e.term)).collect()
}

/// End offset of the last record in a segment (first zero length word).
fn records_end(path: &Path) -> u64 {
    let d = fs::read(path).unwrap();
    let mut off = 0usize;
    while off + 8 <= d.len() {
        let w = u64::from_le_bytes(d[off..off + 8].try_into().unwrap());
        if w == 0 {
            break;
        }
        let (len, pad) = crate::record::decode_frame_len(w);
        off += 8 + (len + pad) as usize;
    }
    off as u64
}

/// Offsets of every record's length word in a segment.
fn record_offsets(path: &Path) -> Vec<u64> {
    let d = fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut off = 0usize;
    while off + 8 <= d.len() {
        let w = u64::from_le_bytes(d[off..off + 8].try_into().unwrap());
        if w == 0 {
            break;
        }
        out.push(off as u64);
        let (len, pad) = crate::record::decode_frame_len(w);
        off += 8 + (len + pad) as usize;
    }
    out
}

#[test]
fn create_layout_matches_etcd() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("wal");
    let w = Wal::create(&dir, b"meta").unwrap();
    assert!(Wal::exists(&dir));
    assert!(!t.path().join("wal.tmp").exists());
    let segs = segments(&dir);
    assert_eq!(segs.len(), 1);
    assert!(segs[0].ends_with("0000000000000000-0000000000000000.wal"));
    assert_eq!(
        fs::metadata(&segs[0]).unwrap().len(),
        crate::SEGMENT_SIZE_BYTES
    );
    // crc record, metadata record, snapshot record.
    assert_eq!(record_offsets(&segs[0]).len(), 3);
    drop(w);
    assert!(matches!(
        Wal::create(&dir, b"meta"),
        Err(WalError::AlreadyExists(_))
    ));
}

#[test]
fn round_trip() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("wal");
    let mut w = Wal::create(&dir, b"meta").unwrap();
    w.save(Some(&hs(1, 1, 0)), &[entry(1, 1, b"a"), entry(2, 1, b"bb")])
        .unwrap();
    w.save(Some(&hs(1, 1, 2)), &[]).unwrap();
    w.save(None, &[entry(3, 1, b"ccc")]).unwrap();
    assert_eq!(w.last_index(), 3);
    drop(w);

    let (mut w, c) = Wal::open(&dir, WalSnapshot::default()).unwrap();
    assert_eq!(c.metadata, b"meta");
    assert_eq!(c.hard_state, hs(1, 1, 2));
    assert_eq!(indexes(&c.entries), vec![(1, 1), (2, 1), (3, 1)]);
    assert_eq!(c.entries[2].data.as_ref(), b"ccc");
    assert_eq!(w.last_index(), 3);

    // Appending after reopen continues the CRC chain correctly.
    w.save(Some(&hs(2, 1, 3)), &[entry(4, 2, b"d")]).unwrap();
    drop(w);
    let (_w, c) = Wal::open(&dir, WalSnapshot::default()).unwrap();
    assert_eq!(c.hard_state, hs(2, 1, 3));
    assert_eq!(indexes(&c.entries), vec![(1, 1), (2, 1), (3, 1), (4, 2)]);
}

#[test]
fn empty_save_writes_nothing() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("wal");
    let mut w = Wal::create(&dir, b"m").unwrap();
    let seg = segments(&dir)[0].clone();
    let before = records_end(&seg);
    w.save(None, &[]).unwrap();
    w.save(Some(&HardState::default()), &[]).unwrap();
    assert_eq!(records_end(&seg), before);
}

#[test]
fn second_open_is_locked_out() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("wal");
    let w = Wal::create(&dir, b"m").unwrap();
    assert!(matches!(
        Wal::open(&dir, WalSnapshot::default()),
        Err(WalError::Locked(_))
    ));
    drop(w);
    Wal::open(&dir, WalSnapshot::default()).unwrap();
}

#[test]
fn truncation_overwrites_tail() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("wal");
    let mut w = Wal::create(&dir, b"m").unwrap();
    w.save(
        Some(&hs(1, 1, 1)),
        &[
            entry(1, 1, b"1"),
            entry(2, 1, b"2"),
            entry(3, 1, b"3"),
            entry(4, 1, b"4"),
        ],
    )
    .unwrap();
    // A new leader overwrites entries 3.. with a different term.
    w.save(
        Some(&hs(2, 2, 2)),
        &[entry(3, 2, b"x"), entry(4, 2, b"y"), entry(5, 2, b"z")],
    )
    .unwrap();
    // And again, shorter.
    w.save(Some(&hs(3, 3, 2)), &[entry(4, 3, b"q")]).unwrap();
    drop(w);
    let (w, c) = Wal::open(&dir, WalSnapshot::default()).unwrap();
    assert_eq!(indexes(&c.entries), vec![(1, 1), (2, 1), (3, 2), (4, 3)]);
    assert_eq!(c.entries[3].data.as_ref(), b"q");
    assert_eq!(w.last_index(), 4);
}

#[test]
fn entry_gap_is_an_error() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("wal");
    let mut w = Wal::create(&dir, b"m").unwrap();
    w.save(None, &[entry(1, 1, b"1"), entry(3, 1, b"3")])
        .unwrap();
    drop(w);
    let err = Wal::open(&dir, WalSnapshot::default()).unwrap_err();
    assert!(
        matches!(
            err,
            WalError::EntryGap {
                index: 3,
                last: 1,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn segment_cut() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("wal");
    let seg_size = 4096;
    let mut w = Wal::create_with_segment_size(&dir, b"meta", seg_size).unwrap();
    let payload = vec![7u8; 700];
    for i in 1..=40u64 {
        w.save(Some(&hs(1, 1, i - 1)), &[entry(i, 1, &payload)])
            .unwrap();
    }
    let segs = segments(&dir);
    assert!(
        segs.len() >= 5,
        "expected several segments, got {}",
        segs.len()
    );
    // Closed segments are truncated to their records; names are consecutive
    // and carry the next entry index.
    let names = read_wal_names(&dir).unwrap();
    for (i, n) in names.iter().enumerate() {
        assert_eq!(n.seq, i as u64);
    }
    for s in &segs[..segs.len() - 1] {
        let len = fs::metadata(s).unwrap().len();
        assert_eq!(len, records_end(s));
        assert!(len >= seg_size);
    }
    assert!(!dir.join("0.tmp").exists());
    drop(w);

    let (mut w, c) = Wal::open_with_segment_size(&dir, WalSnapshot::default(), seg_size).unwrap();
    assert_eq!(c.entries.len(), 40);
    assert_eq!(c.metadata, b"meta");
    assert_eq!(c.hard_state, hs(1, 1, 39));
    for (i, e) in c.entries.iter().enumerate() {
        assert_eq!(e.index, i as u64 + 1);
    }
    // Keep appending across further cuts after reopen.
    for i in 41..=60u64 {
        w.save(Some(&hs(1, 1, i - 1)), &[entry(i, 1, &payload)])
            .unwrap();
    }
    drop(w);
    let (_w, c) = Wal::open_with_segment_size(&dir, WalSnapshot::default(), seg_size).unwrap();
    assert_eq!(c.entries.len(), 60);

    // Replaying from a snapshot in the middle only touches later segments.
    let names = read_wal_names(&dir).unwrap();
    let mid = &names[names.len() / 2];
    drop(_w);
    let mut w = Wal::open_with_segment_size(&dir, WalSnapshot::default(), seg_size)
        .unwrap()
        .0;
    w.save_snapshot(WalSnapshot { index: 60, term: 1 }).unwrap();
    drop(w);
    let (_w, c) =
        Wal::open_with_segment_size(&dir, WalSnapshot { index: 60, term: 1 }, seg_size).unwrap();
    assert!(c.entries.is_empty());
    assert_eq!(c.hard_state, hs(1, 1, 59));
    assert!(mid.index <= 60);
}

#[test]
fn headers_of_new_segment_carry_state() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("wal");
    let seg_size = 2048;
    let mut w = Wal::create_with_segment_size(&dir, b"meta", seg_size).unwrap();
    let payload = vec![1u8; 3000];
    w.save(Some(&hs(5, 1, 1)), &[entry(1, 5, &payload)])
        .unwrap();
    w.save_snapshot(WalSnapshot { index: 1, term: 5 }).unwrap();
    drop(w);
    let names = read_wal_names(&dir).unwrap();
    assert_eq!(names.len(), 2);
    assert_eq!(names[1].index, 2);
    // Start from the snapshot: only the second segment is read, and it must
    // reproduce metadata and hard state on its own.
    let (_w, c) =
        Wal::open_with_segment_size(&dir, WalSnapshot { index: 1, term: 5 }, seg_size).unwrap();
    assert_eq!(c.metadata, b"meta");
    assert_eq!(c.hard_state, hs(5, 1, 1));
    assert!(c.entries.is_empty());
}

#[test]
fn open_from_snapshot() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("wal");
    let mut w = Wal::create(&dir, b"m").unwrap();
    let es: Vec<Entry> = (1..=10).map(|i| entry(i, 1, b"e")).collect();
    w.save(Some(&hs(1, 1, 10)), &es).unwrap();
    w.save_snapshot(WalSnapshot { index: 5, term: 1 }).unwrap();
    w.save(Some(&hs(1, 1, 11)), &[entry(11, 1, b"e")]).unwrap();
    drop(w);

    let (_w, c) = Wal::open(&dir, WalSnapshot { index: 5, term: 1 }).unwrap();
    assert_eq!(
        c.entries.iter().map(|e| e.index).collect::<Vec<_>>(),
        vec![6, 7, 8, 9, 10, 11]
    );
    assert_eq!(c.hard_state, hs(1, 1, 11));
    drop(_w);

    let err = Wal::open(&dir, WalSnapshot { index: 7, term: 1 }).unwrap_err();
    assert!(matches!(
        err,
        WalError::SnapshotNotFound { index: 7, term: 1 }
    ));
    assert!(err.to_string().contains("snapshot not found"));
    let err = Wal::open(&dir, WalSnapshot { index: 5, term: 2 }).unwrap_err();
    assert!(matches!(err, WalError::SnapshotMismatch { .. }), "{err}");

    assert_eq!(
        Wal::valid_snapshot_entries(&dir).unwrap(),
        vec![WalSnapshot::default(), WalSnapshot { index: 5, term: 1 }]
    );
}

/// Writes three entries, then returns (dir, segment, offset of last record).
fn wal_with_last_record(t: &tempfile::TempDir, payload: usize) -> (PathBuf, PathBuf, u64) {
    let dir = t.path().join("wal");
    let mut w = Wal::create(&dir, b"m").unwrap();
    w.save(
        Some(&hs(1, 1, 1)),
        &[entry(1, 1, b"one"), entry(2, 1, b"two")],
    )
    .unwrap();
    w.save(None, &[entry(3, 1, &vec![9u8; payload])]).unwrap();
    drop(w);
    let seg = segments(&dir)[0].clone();
    let last = *record_offsets(&seg).last().unwrap();
    (dir, seg, last)
}

#[test]
fn torn_tail_truncated_mid_record() {
    let t = tempfile::tempdir().unwrap();
    let (dir, seg, last) = wal_with_last_record(&t, 100);
    let f = OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(last + 8 + 20).unwrap();
    drop(f);

    let (mut w, c) = Wal::open(&dir, WalSnapshot::default()).unwrap();
    assert_eq!(indexes(&c.entries), vec![(1, 1), (2, 1)]);
    assert_eq!(c.hard_state, hs(1, 1, 1));
    let mut broken = seg.as_os_str().to_os_string();
    broken.push(".broken");
    assert!(PathBuf::from(broken).exists());
    // The log is writable again and the repair is durable.
    w.save(None, &[entry(3, 1, b"again")]).unwrap();
    drop(w);
    let (_w, c) = Wal::open(&dir, WalSnapshot::default()).unwrap();
    assert_eq!(indexes(&c.entries), vec![(1, 1), (2, 1), (3, 1)]);
}

#[test]
fn torn_tail_partial_length_word() {
    let t = tempfile::tempdir().unwrap();
    let (dir, seg, last) = wal_with_last_record(&t, 10);
    let f = OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(last + 3).unwrap();
    drop(f);
    let (_w, c) = Wal::open(&dir, WalSnapshot::default()).unwrap();
    assert_eq!(indexes(&c.entries), vec![(1, 1), (2, 1)]);
}

#[test]
fn torn_tail_zeroed_sectors() {
    // The last record spans several sectors; the crash persisted its first
    // sector but not the rest, which still reads as preallocated zeros.
    let t = tempfile::tempdir().unwrap();
    let (dir, seg, last) = wal_with_last_record(&t, 2000);
    let f = OpenOptions::new().write(true).open(&seg).unwrap();
    let from = (last / 512 + 1) * 512;
    f.write_all_at(&vec![0u8; 4096], from).unwrap();
    drop(f);
    let (_w, c) = Wal::open(&dir, WalSnapshot::default()).unwrap();
    assert_eq!(indexes(&c.entries), vec![(1, 1), (2, 1)]);
}

#[test]
fn crc_corruption_in_middle_is_fatal() {
    let t = tempfile::tempdir().unwrap();
    let (dir, seg, _) = wal_with_last_record(&t, 10);
    let offs = record_offsets(&seg);
    // Record 3 is entry 1; flip a byte inside its payload.
    let target = offs[3] + 8 + 10;
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&seg)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, target).unwrap();
    b[0] ^= 0x55;
    f.write_all_at(&b, target).unwrap();
    drop(f);
    let err = Wal::open(&dir, WalSnapshot::default()).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, WalError::CrcMismatch { offset, .. } | WalError::Corrupt { offset, .. } if offset == offs[3]),
        "{msg}"
    );
    assert!(
        msg.contains("0000000000000000-0000000000000000.wal"),
        "{msg}"
    );
    assert!(msg.contains(&format!("offset {}", offs[3])), "{msg}");
    // Nothing was truncated.
    assert!(records_end(&seg) > offs[3]);
}

#[test]
fn corruption_in_earlier_segment_is_fatal_even_if_zeroed() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("wal");
    let seg_size = 2048;
    let mut w = Wal::create_with_segment_size(&dir, b"m", seg_size).unwrap();
    for i in 1..=6u64 {
        w.save(None, &[entry(i, 1, &vec![3u8; 1500])]).unwrap();
    }
    drop(w);
    let segs = segments(&dir);
    assert!(segs.len() > 2);
    let first = &segs[0];
    let offs = record_offsets(first);
    // Zero a sector inside entry 1's payload in a non-final segment.
    let f = OpenOptions::new().write(true).open(first).unwrap();
    f.write_all_at(&[0u8; 512], 1024).unwrap();
    drop(f);
    let err = Wal::open_with_segment_size(&dir, WalSnapshot::default(), seg_size).unwrap_err();
    assert!(
        matches!(&err, WalError::CrcMismatch { path, offset, .. } | WalError::Corrupt { path, offset, .. } if path == first && *offset == offs[3]),
        "{err}"
    );

    // A segment cut short in the middle of the chain is also fatal.
    let t2 = tempfile::tempdir().unwrap();
    let dir2 = t2.path().join("wal");
    let mut w = Wal::create_with_segment_size(&dir2, b"m", seg_size).unwrap();
    for i in 1..=6u64 {
        w.save(None, &[entry(i, 1, &vec![3u8; 1500])]).unwrap();
    }
    drop(w);
    let segs = segments(&dir2);
    let f = OpenOptions::new().write(true).open(&segs[1]).unwrap();
    let len = f.metadata().unwrap().len();
    f.set_len(len - 100).unwrap();
    drop(f);
    let err = Wal::open_with_segment_size(&dir2, WalSnapshot::default(), seg_size).unwrap_err();
    assert!(
        matches!(&err, WalError::Corrupt { path, .. } if *path == segs[1]),
        "{err}"
    );
}

#[test]
fn missing_middle_segment_is_fatal() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("wal");
    let seg_size = 2048;
    let mut w = Wal::create_with_segment_size(&dir, b"m", seg_size).unwrap();
    for i in 1..=6u64 {
        w.save(None, &[entry(i, 1, &vec![3u8; 1500])]).unwrap();
    }
    drop(w);
    let segs = segments(&dir);
    fs::remove_file(&segs[1]).unwrap();
    let err = Wal::open_with_segment_size(&dir, WalSnapshot::default(), seg_size).unwrap_err();
    assert!(matches!(err, WalError::FileNotFound { .. }), "{err}");
}

#[test]
fn metadata_conflict_is_fatal() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("wal");
    let mut w = Wal::create_with_segment_size(&dir, b"aaaa", 1024).unwrap();
    w.save(None, &[entry(1, 1, &[5u8; 1200])]).unwrap();
    w.save(None, &[entry(2, 1, b"x")]).unwrap();
    drop(w);
    // Rewrite the second segment's metadata record with different bytes of
    // the same length, then fix up the CRC chain so only metadata differs.
    let segs = segments(&dir);
    assert_eq!(segs.len(), 2);
    let d = fs::read(&segs[1]).unwrap();
    let pos = d.windows(4).position(|w| w == b"aaaa").unwrap();
    let mut d2 = d.clone();
    d2[pos..pos + 4].copy_from_slice(b"bbbb");
    fs::write(&segs[1], &d2).unwrap();
    let err = Wal::open(&dir, WalSnapshot::default()).unwrap_err();
    // The CRC chain catches it first; either way it must be fatal.
    assert!(
        matches!(
            err,
            WalError::CrcMismatch { .. } | WalError::MetadataConflict { .. }
        ),
        "{err}"
    );
}

#[test]
fn release_and_purge() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("wal");
    // Every save overflows the segment, so segment k (k >= 1) starts at
    // entry k + 1 and holds exactly that entry.
    let seg_size = 1024;
    let mut w = Wal::create_with_segment_size(&dir, b"m", seg_size).unwrap();
    for i in 1..=10u64 {
        w.save(Some(&hs(1, 1, i)), &[entry(i, 1, &vec![3u8; 1500])])
            .unwrap();
    }
    let names = read_wal_names(&dir).unwrap();
    assert_eq!(names.len(), 11);
    assert_eq!(names[7].index, 8);
    // Everything is locked: nothing can be purged.
    assert!(Wal::purge(&dir, 2).unwrap().is_empty());

    w.save_snapshot(WalSnapshot { index: 8, term: 1 }).unwrap();
    w.release_lock_to(8).unwrap();
    // The segment starting at 8 and the one before it stay locked.
    let removed = Wal::purge(&dir, 2).unwrap();
    let removed_names: Vec<String> = removed
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
        .collect();
    let expected: Vec<String> = names[..6].iter().map(|n| n.name.clone()).collect();
    assert_eq!(removed_names, expected);
    assert_eq!(read_wal_names(&dir).unwrap().len(), 5);
    drop(w);

    // The log still opens from the snapshot.
    let (mut w, c) =
        Wal::open_with_segment_size(&dir, WalSnapshot { index: 8, term: 1 }, seg_size).unwrap();
    assert_eq!(
        c.entries.iter().map(|e| e.index).collect::<Vec<_>>(),
        vec![9, 10]
    );
    assert_eq!(c.hard_state, hs(1, 1, 10));

    // keep_files bounds the purge even when more segments are released.
    w.release_lock_to(100).unwrap();
    let removed = Wal::purge(&dir, 2).unwrap();
    assert_eq!(removed.len(), 3);
    assert_eq!(read_wal_names(&dir).unwrap().len(), 2);
    drop(w);
    // Opening from the start no longer works: the first segments are gone.
    assert!(matches!(
        Wal::open_with_segment_size(&dir, WalSnapshot::default(), seg_size),
        Err(WalError::FileNotFound { .. })
    ));
}

#[test]
fn oversized_record_is_rejected_without_damage() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("wal");
    let mut w = Wal::create(&dir, b"m").unwrap();
    w.save(None, &[entry(1, 1, b"ok")]).unwrap();
    let big = vec![0u8; 11 * 1024 * 1024];
    let err = w.save(None, &[entry(2, 1, &big)]).unwrap_err();
    assert!(matches!(err, WalError::RecordTooLarge { .. }));
    w.save(None, &[entry(2, 1, b"fine")]).unwrap();
    drop(w);
    let (_w, c) = Wal::open(&dir, WalSnapshot::default()).unwrap();
    assert_eq!(indexes(&c.entries), vec![(1, 1), (2, 1)]);
}

#[test]
fn garbage_never_panics() {
    // Random-ish bytes after a valid header must produce an error or a
    // repair, never a panic.
    let t = tempfile::tempdir().unwrap();
    let mut seed = 0x1234_5678_9abc_def0u64;
    for round in 0..200 {
        let dir = t.path().join(format!("wal{round}"));
        let mut w = Wal::create_with_segment_size(&dir, b"m", 4096).unwrap();
        w.save(Some(&hs(1, 1, 1)), &[entry(1, 1, b"x")]).unwrap();
        drop(w);
        let seg = segments(&dir)[0].clone();
        let end = records_end(&seg);
        let mut junk = vec![0u8; 64];
        for b in junk.iter_mut() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            *b = seed as u8;
        }
        let at = end - (seed % end.min(40));
        let f = OpenOptions::new().write(true).open(&seg).unwrap();
        f.write_all_at(&junk, at).unwrap();
        drop(f);
        let _ = Wal::open(&dir, WalSnapshot::default());
        fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn handles_are_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Wal>();
    assert_send::<crate::Snapshotter>();
    assert_send::<WalError>();
}
