//! Append, flush, reopen; segment rolls; retention; directory oddities.

use std::sync::Arc;

use mcmp_storage::fs::StdFileSystem;
use mcmp_storage::{Error, RecoveryMode};

use crate::common::{open, open_with, payload, segment_names};

#[test]
fn append_flush_reopen_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, report, seen) = open(dir.path(), 64 * 1024);
    assert_eq!(
        (report.records, report.next_lsn, report.segments),
        (0, 1, 0)
    );
    assert!(seen.is_empty());
    for i in 1..=100 {
        assert_eq!(
            wal.append((i % 5) as u8, &payload(i, i as usize)).unwrap(),
            i
        );
    }
    assert_eq!(wal.flush_blocking().unwrap(), 100);
    drop(wal);

    let (mut wal, report, seen) = open(dir.path(), 64 * 1024);
    assert_eq!((report.records, report.next_lsn), (100, 101));
    for (i, (lsn, kind, p)) in seen.iter().enumerate() {
        let i = i as u64 + 1;
        assert_eq!(
            (*lsn, *kind, p.clone()),
            (i, (i % 5) as u8, payload(i, i as usize))
        );
    }
    assert_eq!(
        wal.append(9, b"after reopen").unwrap(),
        101,
        "LSNs continue"
    );
    wal.flush_blocking().unwrap();
    drop(wal);
    let (_, report, seen) = open(dir.path(), 64 * 1024);
    assert_eq!(report.records, 101);
    assert_eq!(seen.last().unwrap(), &(101, 9, b"after reopen".to_vec()));
}

#[test]
fn unflushed_records_are_not_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _, _) = open(dir.path(), 4096);
    wal.append(1, b"durable").unwrap();
    wal.flush_blocking().unwrap();
    wal.append(1, b"never flushed").unwrap();
    drop(wal);
    let (_, report, seen) = open(dir.path(), 4096);
    assert_eq!(report.records, 1);
    assert_eq!(seen, vec![(1, 1, b"durable".to_vec())]);
}

#[test]
fn segment_roll_and_reopen_in_a_loop() {
    const SEGMENT: u64 = 64 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let mut next = 1u64;
    for round in 0..20 {
        let (mut wal, report, seen) = open(dir.path(), SEGMENT);
        assert_eq!(report.records, next - 1, "round {round}");
        assert_eq!(report.truncated_tail_bytes, 0);
        for (idx, (lsn, kind, p)) in seen.iter().enumerate() {
            let i = idx as u64 + 1;
            assert_eq!(*lsn, i);
            assert_eq!(*kind, (i % 7) as u8);
            assert_eq!(*p, payload(i, (i * 37 % 400) as usize));
        }
        for k in 0..600 {
            let i = next;
            assert_eq!(
                wal.append((i % 7) as u8, &payload(i, (i * 37 % 400) as usize))
                    .unwrap(),
                i
            );
            next += 1;
            if k % 50 == 49 {
                wal.flush_blocking().unwrap();
            }
        }
        assert_eq!(wal.flush_blocking().unwrap(), next - 1);
    }
    let names = segment_names(dir.path());
    assert!(
        names.len() > 20,
        "records rolled over many segments: {names:?}"
    );
    for name in &names {
        let len = std::fs::metadata(dir.path().join(name)).unwrap().len();
        assert_eq!(len, SEGMENT, "{name} is pre-written to the segment size");
    }
}

#[test]
fn retention_removes_whole_old_segments_only() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _, _) = open(dir.path(), 4096);
    for i in 1..=300 {
        wal.append(1, &payload(i, 100)).unwrap();
    }
    wal.flush_blocking().unwrap();
    let before = segment_names(dir.path());
    assert!(before.len() >= 3);
    // Segment 2 starts at LSN 38 (37 records of 109 bytes per 4 KiB segment).
    assert_eq!(before[1], "00000000000000000038.wal");
    assert_eq!(wal.remove_segments_before(37).unwrap(), 0);
    assert_eq!(wal.remove_segments_before(38).unwrap(), 1);
    assert_eq!(
        wal.remove_segments_before(u64::MAX).unwrap(),
        before.len() - 2
    );
    assert_eq!(
        segment_names(dir.path()),
        vec![before.last().unwrap().clone()],
        "active kept"
    );
    drop(wal);
    let (mut wal, report, seen) = open(dir.path(), 4096);
    assert_eq!(report.next_lsn, 301);
    assert_eq!(seen.last().unwrap().0, 300);
    assert_eq!(wal.append(1, b"x").unwrap(), 301);
}

#[test]
fn ignores_files_that_are_not_segments() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("README.txt"), b"notes").unwrap();
    std::fs::write(dir.path().join("1.wal"), b"not a segment name").unwrap();
    let (mut wal, report, _) = open(dir.path(), 4096);
    assert_eq!(report.next_lsn, 1);
    wal.append(1, b"x").unwrap();
    wal.flush_blocking().unwrap();
    assert_eq!(
        segment_names(dir.path()),
        vec!["00000000000000000001.wal", "1.wal"]
    );
}

#[test]
fn torn_segment_creation_is_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _, _) = open(dir.path(), 4096);
    for i in 1..=5 {
        wal.append(1, &payload(i, 50)).unwrap();
    }
    wal.flush_blocking().unwrap();
    drop(wal);
    // A crash while creating segment 6: the file exists, its header never landed.
    std::fs::write(dir.path().join("00000000000000000006.wal"), vec![0u8; 1000]).unwrap();
    let (mut wal, report, _) = open(dir.path(), 4096);
    assert_eq!(
        (report.records, report.segments, report.next_lsn),
        (5, 1, 6)
    );
    assert_eq!(segment_names(dir.path()), vec!["00000000000000000001.wal"]);
    assert_eq!(wal.append(1, b"six").unwrap(), 6);
    wal.flush_blocking().unwrap();
}

#[test]
fn damaged_header_of_a_last_segment_with_records_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _, _) = open(dir.path(), 4096);
    for i in 1..=5 {
        wal.append(1, &payload(i, 50)).unwrap();
    }
    wal.flush_blocking().unwrap();
    drop(wal);
    let path = dir.path().join("00000000000000000001.wal");
    let mut data = std::fs::read(&path).unwrap();
    data[..32].fill(0);
    std::fs::write(&path, data).unwrap();
    let err = open_with(
        dir.path(),
        Arc::new(StdFileSystem),
        4096,
        RecoveryMode::Strict,
    )
    .err()
    .unwrap();
    assert!(matches!(err, Error::Corrupt { offset: 0, .. }), "{err}");
    assert!(
        path.exists(),
        "a segment holding records is never deleted as torn"
    );
}

#[test]
fn missing_middle_segment_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _, _) = open(dir.path(), 4096);
    for i in 1..=120 {
        wal.append(1, &payload(i, 100)).unwrap();
    }
    wal.flush_blocking().unwrap();
    drop(wal);
    std::fs::remove_file(dir.path().join("00000000000000000038.wal")).unwrap();
    let err = open_with(
        dir.path(),
        Arc::new(StdFileSystem),
        4096,
        RecoveryMode::Strict,
    )
    .err()
    .unwrap();
    let Error::Corrupt { path, offset, .. } = &err else {
        panic!("{err}")
    };
    assert!(path.ends_with("00000000000000000075.wal"), "{err}");
    assert_eq!(*offset, 0);
    let (_, report, _) = open_with(
        dir.path(),
        Arc::new(StdFileSystem),
        4096,
        RecoveryMode::Repair,
    )
    .unwrap();
    assert_eq!((report.records, report.next_lsn), (37, 38));
    assert!(report.repaired.is_some());
}
