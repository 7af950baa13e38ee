//! Fail-stop on fsync failure and recovery from a full disk, through
//! `FaultyFileSystem`.

use std::sync::Arc;

use mcmp_storage::fs::{FaultyFileSystem, StdFileSystem};
use mcmp_storage::{Durability, Error, RecoveryMode, Wal, WalOptions};

use crate::common::{open, open_with, payload, segment_names};

#[test]
fn fsync_failure_poisons_and_is_never_retried() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFileSystem::new();
    let faults = fs.faults();
    let (mut wal, _, _) = open_with(dir.path(), Arc::new(fs), 4096, RecoveryMode::Strict).unwrap();
    wal.append(1, b"acknowledged").unwrap();
    assert_eq!(wal.flush_blocking().unwrap(), 1);

    faults.fail_sync_after(0);
    wal.append(1, b"not acknowledged").unwrap();
    let err = wal.flush_blocking().unwrap_err();
    assert!(
        matches!(
            err,
            Error::Io {
                op: "fdatasync",
                ..
            }
        ),
        "{err}"
    );
    assert!(wal.is_poisoned());
    assert_eq!(wal.durable_lsn(), 1);
    let syncs = faults.sync_calls();

    assert!(matches!(wal.append(1, b"x"), Err(Error::Poisoned)));
    assert!(matches!(wal.flush_job(), Err(Error::Poisoned)));
    assert!(matches!(wal.flush_blocking(), Err(Error::Poisoned)));
    assert!(wal.sync_job().is_none());
    assert!(matches!(
        wal.remove_segments_before(u64::MAX),
        Err(Error::Poisoned)
    ));
    assert_eq!(
        faults.sync_calls(),
        syncs,
        "a failed fsync is never retried"
    );
    drop(wal);

    let (_, _, seen) = open(dir.path(), 4096);
    assert_eq!(seen[0], (1, 1, b"acknowledged".to_vec()));
}

#[test]
fn interval_sync_failure_poisons() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFileSystem::new();
    let faults = fs.faults();
    let opts = WalOptions {
        segment_size: 4096,
        durability: Durability::Interval,
        ..WalOptions::default()
    };
    let (mut wal, _) = Wal::open(dir.path(), Arc::new(fs), opts, |_, _, _| {}).unwrap();
    wal.append(1, b"x").unwrap();
    let job = wal.flush_job().unwrap().unwrap();
    assert_eq!(wal.complete_flush(job.run()).unwrap(), 1);
    faults.fail_sync_after(0);
    let sync = wal.sync_job().unwrap();
    let outcome = sync.run();
    assert!(!outcome.is_ok());
    assert!(wal.complete_flush(outcome).is_err());
    assert!(wal.is_poisoned());
    assert!(matches!(wal.append(1, b"y"), Err(Error::Poisoned)));
}

#[test]
fn enospc_discards_unacknowledged_records_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFileSystem::new();
    let faults = fs.faults();
    let (mut wal, _, _) = open_with(dir.path(), Arc::new(fs), 4096, RecoveryMode::Strict).unwrap();
    for i in 1..=5 {
        wal.append(1, &payload(i, 50)).unwrap();
    }
    assert_eq!(wal.flush_blocking().unwrap(), 5);

    faults.enospc(true);
    for i in 6..=8 {
        wal.append(2, b"discarded")
            .unwrap_or_else(|e| panic!("append {i}: {e}"));
    }
    assert!(matches!(wal.flush_blocking(), Err(Error::StorageFull)));
    assert!(!wal.is_poisoned());
    assert_eq!(wal.last_appended_lsn(), 5, "the discarded LSNs are reused");
    assert_eq!(wal.append(2, b"discarded again").unwrap(), 6);
    assert!(matches!(wal.flush_blocking(), Err(Error::StorageFull)));

    faults.enospc(false);
    for i in 6..=9 {
        assert_eq!(wal.append(1, &payload(i, 50)).unwrap(), i);
    }
    assert_eq!(wal.flush_blocking().unwrap(), 9);
    drop(wal);

    let (_, report, seen) = open(dir.path(), 4096);
    assert_eq!(report.records, 9);
    for (idx, (lsn, kind, p)) in seen.iter().enumerate() {
        let i = idx as u64 + 1;
        assert_eq!((*lsn, *kind, p.clone()), (i, 1, payload(i, 50)));
    }
}

#[test]
fn enospc_while_creating_a_segment() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFileSystem::new();
    let faults = fs.faults();
    let (mut wal, _, _) = open_with(dir.path(), Arc::new(fs), 1024, RecoveryMode::Strict).unwrap();
    // 100-byte frames: 9 fit in the first segment.
    for i in 1..=9 {
        wal.append(1, &payload(i, 91)).unwrap();
    }
    assert_eq!(wal.flush_blocking().unwrap(), 9);
    faults.enospc(true);
    wal.append(1, &payload(10, 91)).unwrap();
    assert!(matches!(wal.flush_blocking(), Err(Error::StorageFull)));
    assert_eq!(
        segment_names(dir.path()),
        vec!["00000000000000000001.wal"],
        "no half-made segment"
    );

    faults.enospc(false);
    for i in 10..=20 {
        assert_eq!(wal.append(1, &payload(i, 91)).unwrap(), i);
    }
    assert_eq!(wal.flush_blocking().unwrap(), 20);
    drop(wal);
    let (_, report, seen) = open_with(
        dir.path(),
        Arc::new(StdFileSystem),
        1024,
        RecoveryMode::Strict,
    )
    .unwrap();
    assert_eq!((report.records, report.segments), (20, 3));
    assert_eq!(seen[9], (10, 1, payload(10, 91)));
}

#[test]
fn enospc_on_a_job_that_spans_a_segment_roll() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyFileSystem::new();
    let faults = fs.faults();
    let (mut wal, _, _) = open_with(dir.path(), Arc::new(fs), 1024, RecoveryMode::Strict).unwrap();
    for i in 1..=5 {
        wal.append(1, &payload(i, 91)).unwrap();
    }
    wal.flush_blocking().unwrap();
    // Records 6..=12 span the roll into segment 10; the job fails.
    for i in 6..=12 {
        wal.append(1, &payload(i, 91)).unwrap();
    }
    let job = wal.flush_job().unwrap().unwrap();
    faults.enospc(true);
    assert!(matches!(
        wal.complete_flush(job.run()),
        Err(Error::StorageFull)
    ));
    faults.enospc(false);
    assert_eq!(wal.last_appended_lsn(), 5);
    drop(wal);
    let (_, report, _) = open(dir.path(), 1024);
    assert_eq!(report.records, 5, "nothing unacknowledged comes back");
}
