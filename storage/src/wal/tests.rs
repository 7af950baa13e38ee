//! Unit tests of the WAL's in-memory bookkeeping.

use super::*;
use crate::fs::StdFileSystem;

fn open(dir: &Path, segment_size: u64) -> Wal {
    let opts = WalOptions {
        segment_size,
        ..WalOptions::default()
    };
    Wal::open(dir, Arc::new(StdFileSystem), opts, |_, _, _| {})
        .unwrap()
        .0
}

#[test]
fn one_job_outstanding_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = open(dir.path(), 4096);
    wal.append(1, b"a").unwrap();
    let job = wal.flush_job().unwrap().unwrap();
    wal.append(1, b"b").unwrap();
    assert!(wal.flush_job().unwrap().is_none());
    assert_eq!(wal.complete_flush(job.run()).unwrap(), 1);
    assert_eq!(wal.flush_blocking().unwrap(), 2);
    assert!(wal.flush_job().unwrap().is_none(), "nothing pending");
}

#[test]
fn pending_bytes_and_lsns() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = open(dir.path(), 4096);
    assert_eq!(wal.last_appended_lsn(), 0);
    assert_eq!(wal.append(7, &[0; 10]).unwrap(), 1);
    assert_eq!(wal.pending_bytes(), 19);
    assert_eq!(wal.durable_lsn(), 0);
    wal.flush_blocking().unwrap();
    assert_eq!(wal.pending_bytes(), 0);
    assert_eq!(wal.durable_lsn(), 1);
}

#[test]
fn rejects_records_larger_than_a_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = open(dir.path(), 4096);
    let max = wal.max_payload() as usize;
    assert!(matches!(
        wal.append(1, &vec![0; max + 1]),
        Err(Error::RecordTooLarge { .. })
    ));
    assert_eq!(wal.append(1, &vec![1; max]).unwrap(), 1);
    assert_eq!(wal.append(1, &vec![2; max]).unwrap(), 2);
    assert_eq!(wal.flush_blocking().unwrap(), 2);
    assert_eq!(wal.segments.len(), 2);
}

#[test]
fn rejects_tiny_segments() {
    let dir = tempfile::tempdir().unwrap();
    let opts = WalOptions {
        segment_size: 100,
        ..WalOptions::default()
    };
    let res = Wal::open(dir.path(), Arc::new(StdFileSystem), opts, |_, _, _| {});
    assert!(matches!(res, Err(Error::InvalidOptions(_))));
}

#[test]
fn interval_mode_syncs_on_sync_job() {
    let dir = tempfile::tempdir().unwrap();
    let opts = WalOptions {
        segment_size: 4096,
        durability: Durability::Interval,
        ..WalOptions::default()
    };
    let (mut wal, _) = Wal::open(dir.path(), Arc::new(StdFileSystem), opts, |_, _, _| {}).unwrap();
    wal.append(1, b"x").unwrap();
    let job = wal.flush_job().unwrap().unwrap();
    assert_eq!(
        wal.complete_flush(job.run()).unwrap(),
        1,
        "acknowledged after the write"
    );
    assert_eq!(wal.durable_lsn(), 0);
    let sync = wal.sync_job().unwrap();
    wal.complete_flush(sync.run()).unwrap();
    assert_eq!(wal.durable_lsn(), 1);
    assert!(wal.sync_job().is_none());
}

#[test]
fn flush_jobs_run_on_another_thread() {
    fn send_static<T: Send + 'static>(_: &T) {}
    let dir = tempfile::tempdir().unwrap();
    let mut wal = open(dir.path(), 4096);
    for i in 0..100u32 {
        wal.append(2, &i.to_le_bytes()).unwrap();
    }
    let job = wal.flush_job().unwrap().unwrap();
    send_static(&job);
    assert_eq!(job.target_lsn(), 100);
    let outcome = std::thread::spawn(move || job.run()).join().unwrap();
    send_static(&outcome);
    assert!(outcome.is_ok());
    assert_eq!(wal.complete_flush(outcome).unwrap(), 100);
    // A second outcome with no job outstanding is refused.
    wal.append(2, b"x").unwrap();
    let job = wal.flush_job().unwrap().unwrap();
    let first = job.run();
    wal.complete_flush(first).unwrap();
    wal.append(2, b"y").unwrap();
    let other_dir = tempfile::tempdir().unwrap();
    let mut other = open(other_dir.path(), 4096);
    other.append(1, b"z").unwrap();
    let stray = other.flush_job().unwrap().unwrap().run();
    assert!(matches!(
        wal.complete_flush(stray),
        Err(Error::NoJobOutstanding)
    ));
}

/// A segment file named for LSN 0 (never written: the first LSN is 1) used
/// to make `open` compute `next_lsn - 1` on 0 and panic. Found by the
/// `wal_segment` fuzz target (an empty `00000000000000000000.wal`). Such a
/// file is not a segment; it is ignored like any other stray file.
#[test]
fn segment_named_lsn_zero_is_not_a_segment() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(segment_file_name(0)), b"").unwrap();
    let mut wal = open(dir.path(), 4096);
    assert_eq!(wal.append(1, b"a").unwrap(), 1);
    assert_eq!(wal.flush_blocking().unwrap(), 1);
}

/// A valid segment whose first LSN is near `u64::MAX` used to overflow the
/// LSN arithmetic of recovery. First LSNs above `MAX_FIRST_LSN` are not
/// segment names.
#[test]
fn segment_near_u64_max_is_not_a_segment() {
    for first in [u64::MAX, format::MAX_FIRST_LSN + 1] {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = format::encode_header(first).to_vec();
        encode_record(&mut bytes, record_seed(first), 1, b"x");
        encode_record(&mut bytes, record_seed(first), 1, b"y");
        std::fs::write(dir.path().join(segment_file_name(first)), bytes).unwrap();
        let mut seen = 0;
        let opts = WalOptions {
            segment_size: 4096,
            ..WalOptions::default()
        };
        let (mut wal, report) = Wal::open(dir.path(), Arc::new(StdFileSystem), opts, |_, _, _| {
            seen += 1
        })
        .unwrap();
        assert_eq!((seen, report.next_lsn), (0, 1));
        assert_eq!(wal.append(1, b"a").unwrap(), 1);
    }
}

/// Appends `n` records of `len` bytes (payload byte = lsn % 251) and flushes.
fn append_flushed(wal: &mut Wal, n: usize, len: usize) {
    for _ in 0..n {
        let lsn = wal.last_appended_lsn() + 1;
        wal.append(3, &vec![(lsn % 251) as u8; len]).unwrap();
    }
    wal.flush_blocking().unwrap();
}

#[test]
fn the_spare_is_written_at_half_full_and_becomes_the_next_segment() {
    let dir = tempfile::tempdir().unwrap();
    let spare_path = dir.path().join(SPARE_FILE_NAME);
    let mut wal = open(dir.path(), 4096);
    append_flushed(&mut wal, 10, 100); // ~1.2 KiB of 4 KiB
    assert!(wal.spare_job().is_none(), "not before half full");
    append_flushed(&mut wal, 10, 100); // ~2.4 KiB
    let job = wal.spare_job().expect("half full: a spare job");
    assert!(wal.spare_job().is_none(), "one job at a time");
    wal.complete_spare(job.run());
    assert!(wal.spare_job().is_none(), "the spare is ready");
    assert_eq!(std::fs::metadata(&spare_path).unwrap().len(), 4096);
    // Cross the roll: the spare is renamed into the second segment.
    append_flushed(&mut wal, 30, 100);
    assert!(!spare_path.exists());
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names
        .iter()
        .all(|n| format::parse_segment_file_name(n).is_some()));
    drop(wal);
    // Every record comes back, in order, from both segments.
    let mut seen = Vec::new();
    let opts = WalOptions {
        segment_size: 4096,
        ..WalOptions::default()
    };
    let (wal, report) = Wal::open(dir.path(), Arc::new(StdFileSystem), opts, |lsn, _, p| {
        assert_eq!(p, vec![(lsn % 251) as u8; 100].as_slice());
        seen.push(lsn);
    })
    .unwrap();
    assert_eq!(seen, (1..=50).collect::<Vec<u64>>());
    assert_eq!(report.next_lsn, 51);
    assert_eq!(wal.segments.len(), 2);
}

#[test]
fn a_leftover_spare_is_removed_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let spare_path = dir.path().join(SPARE_FILE_NAME);
    {
        let mut wal = open(dir.path(), 4096);
        append_flushed(&mut wal, 25, 100);
        let job = wal.spare_job().expect("a spare job");
        wal.complete_spare(job.run());
    }
    assert!(spare_path.exists());
    let wal = open(dir.path(), 4096);
    assert!(!spare_path.exists());
    assert_eq!(wal.last_appended_lsn(), 25);
}

#[test]
fn a_failed_spare_is_not_retried_in_the_same_segment_and_the_roll_still_works() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = open(dir.path(), 4096);
    append_flushed(&mut wal, 25, 100);
    let _job = wal.spare_job().expect("a spare job");
    wal.complete_spare(SpareOutcome::failed(std::io::Error::other("disk full")));
    assert!(wal.spare_job().is_none(), "not again in this segment");
    append_flushed(&mut wal, 25, 100); // rolls, creating the segment inline
    assert_eq!(wal.segments.len(), 2);
    assert_eq!(wal.durable_lsn(), 50);
}
