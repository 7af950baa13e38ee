//! Recovery against checked-in damaged WAL directories (`tests/fixtures/`).
//!
//! The fixtures are made by [`generate_fixtures`] (ignored; run it with
//! `cargo test -p mcmp-storage --test it -- --ignored generate_fixtures` only
//! when the format changes) and committed. Every fixture uses 2 KiB segments
//! and 60-byte payloads `payload(lsn, 60)` of kind `lsn % 4`, so 29 records
//! fit in a segment (32 + 29 × 69 = 2033 bytes).

use std::path::Path;
use std::sync::Arc;

use mcmp_storage::fs::StdFileSystem;
use mcmp_storage::{inspect, Error, RecoveryMode, Wal, WalOptions};

use crate::common::{copy_fixture, fixture_dir, open_with, payload, segment_names, Rec};

const SEGMENT: u64 = 2048;
const PAYLOAD: usize = 60;
const FRAMED: u64 = 9 + PAYLOAD as u64;
const PER_SEGMENT: u64 = 29;

fn open_fixture(
    dir: &Path,
    mode: RecoveryMode,
) -> mcmp_storage::Result<(Wal, mcmp_storage::RecoveryReport, Vec<Rec>)> {
    open_with(dir, Arc::new(StdFileSystem), SEGMENT, mode)
}

fn assert_records(seen: &[Rec], n: u64) {
    assert_eq!(seen.len() as u64, n);
    for (idx, (lsn, kind, p)) in seen.iter().enumerate() {
        let i = idx as u64 + 1;
        assert_eq!((*lsn, *kind), (i, (i % 4) as u8));
        assert_eq!(*p, payload(i, PAYLOAD));
    }
}

/// Offset of the record with `lsn` in the segment that starts at `first`.
fn offset_of(lsn: u64, first: u64) -> u64 {
    32 + (lsn - first) * FRAMED
}

/// After recovery: appending works and everything survives another reopen.
fn append_and_reopen(dir: &Path, mut wal: Wal, records: u64) {
    for i in records + 1..=records + 40 {
        assert_eq!(wal.append((i % 4) as u8, &payload(i, PAYLOAD)).unwrap(), i);
    }
    wal.flush_blocking().unwrap();
    drop(wal);
    let (_, report, seen) = open_fixture(dir, RecoveryMode::Strict).unwrap();
    assert_eq!(report.truncated_tail_bytes, 0);
    assert_records(&seen, records + 40);
}

#[test]
fn torn_tail_is_truncated() {
    let dir = copy_fixture("torn_tail");
    let (wal, report, seen) = open_fixture(dir.path(), RecoveryMode::Strict).unwrap();
    assert_records(&seen, 40);
    assert_eq!(report.truncated_tail_bytes, 9 + 20);
    assert_eq!(report.next_lsn, 41);
    assert!(report.repaired.is_none());
    // The garbage was overwritten with zeros: the segment is clean again.
    let bytes = std::fs::read(dir.path().join("00000000000000000030.wal")).unwrap();
    assert!(bytes[offset_of(41, 30) as usize..].iter().all(|&b| b == 0));
    append_and_reopen(dir.path(), wal, 40);
}

#[test]
fn zero_padded_tail_ends_the_log() {
    let dir = copy_fixture("zero_tail");
    let (wal, report, seen) = open_fixture(dir.path(), RecoveryMode::Strict).unwrap();
    assert_records(&seen, 40);
    assert_eq!((report.truncated_tail_bytes, report.next_lsn), (0, 41));
    append_and_reopen(dir.path(), wal, 40);
}

#[test]
fn mid_log_corruption_strict_names_file_and_offset() {
    let dir = copy_fixture("mid_log");
    let err = open_fixture(dir.path(), RecoveryMode::Strict)
        .err()
        .unwrap();
    let Error::Corrupt { path, offset, .. } = &err else {
        panic!("{err}")
    };
    assert!(path.ends_with("00000000000000000001.wal"));
    assert_eq!(*offset, offset_of(11, 1));
    let message = err.to_string();
    assert!(message.contains("00000000000000000001.wal"), "{message}");
    assert!(
        message.contains(&format!("offset {}", offset_of(11, 1))),
        "{message}"
    );
    assert!(message.contains("--repair-wal"), "{message}");
}

#[test]
fn mid_log_corruption_repair_truncates_and_reports() {
    let dir = copy_fixture("mid_log");
    let (wal, report, seen) = open_fixture(dir.path(), RecoveryMode::Repair).unwrap();
    assert_records(&seen, 10);
    assert_eq!((report.next_lsn, report.segments), (11, 1));
    let repaired = report.repaired.unwrap();
    assert!(repaired.contains("00000000000000000001.wal"), "{repaired}");
    assert!(repaired.contains("2 later segment"), "{repaired}");
    assert_eq!(segment_names(dir.path()), vec!["00000000000000000001.wal"]);
    append_and_reopen(dir.path(), wal, 10);
}

#[test]
fn damage_followed_by_valid_records_in_last_segment_is_not_a_torn_tail() {
    let dir = copy_fixture("mid_log_last");
    let err = open_fixture(dir.path(), RecoveryMode::Strict)
        .err()
        .unwrap();
    let Error::Corrupt {
        path,
        offset,
        reason,
    } = &err
    else {
        panic!("{err}")
    };
    assert!(path.ends_with("00000000000000000030.wal"));
    assert_eq!(*offset, offset_of(32, 30));
    assert!(reason.contains("valid record follows"), "{reason}");
    let (wal, report, seen) = open_fixture(dir.path(), RecoveryMode::Repair).unwrap();
    assert_records(&seen, 31);
    assert!(report.repaired.is_some());
    append_and_reopen(dir.path(), wal, 31);
}

#[test]
fn bad_magic_is_a_clear_error() {
    let dir = copy_fixture("bad_magic");
    let err = open_fixture(dir.path(), RecoveryMode::Repair)
        .err()
        .unwrap();
    assert!(matches!(err, Error::BadMagic { .. }), "{err}");
    assert!(
        err.to_string().contains("00000000000000000001.wal"),
        "{err}"
    );
}

#[test]
fn unsupported_version_is_a_clear_error() {
    let dir = copy_fixture("bad_version");
    let err = open_fixture(dir.path(), RecoveryMode::Repair)
        .err()
        .unwrap();
    assert!(
        matches!(err, Error::UnsupportedVersion { version: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("version 2"), "{err}");
}

/// Writes `n` standard fixture records into a fresh `dir`.
fn write_records(dir: &Path, n: u64) {
    let _ = std::fs::remove_dir_all(dir);
    let opts = WalOptions {
        segment_size: SEGMENT,
        ..WalOptions::default()
    };
    let (mut wal, _) = Wal::open(dir, Arc::new(StdFileSystem), opts, |_, _, _| {}).unwrap();
    for i in 1..=n {
        wal.append((i % 4) as u8, &payload(i, PAYLOAD)).unwrap();
    }
    wal.flush_blocking().unwrap();
    let mut count = 0;
    inspect(dir, |_, _| count += 1).unwrap();
    assert_eq!(count, n);
}

fn patch(path: &Path, offset: u64, bytes: &[u8]) {
    let mut data = std::fs::read(path).unwrap();
    data[offset as usize..offset as usize + bytes.len()].copy_from_slice(bytes);
    std::fs::write(path, data).unwrap();
}

#[test]
#[ignore = "writes the checked-in fixtures; run only when the format changes"]
fn generate_fixtures() {
    let seg = |name: &str, first: u64| fixture_dir(name).join(format!("{first:020}.wal"));
    assert_eq!(PER_SEGMENT, (SEGMENT - 32) / FRAMED);

    // A record whose write was cut short: a header and 20 of 60 payload bytes.
    write_records(&fixture_dir("torn_tail"), 40);
    let mut torn = Vec::new();
    torn.extend_from_slice(&60u32.to_le_bytes());
    torn.extend_from_slice(&0xDEAD_BEEFu32.to_le_bytes());
    torn.push(1);
    torn.extend_from_slice(&payload(41, 20));
    patch(&seg("torn_tail", 30), offset_of(41, 30), &torn);

    // The last segment ends in a zero-padded block (as glommio's sync leaves it).
    write_records(&fixture_dir("zero_tail"), 40);
    let end = offset_of(41, 30);
    let data = std::fs::read(seg("zero_tail", 30)).unwrap();
    std::fs::write(
        seg("zero_tail", 30),
        &data[..end.next_multiple_of(512) as usize],
    )
    .unwrap();

    // One flipped payload byte in the first of three segments.
    write_records(&fixture_dir("mid_log"), 70);
    patch(&seg("mid_log", 1), offset_of(11, 1) + 9 + 5, b"X");

    // One flipped byte in the last segment, valid records after it.
    write_records(&fixture_dir("mid_log_last"), 40);
    patch(&seg("mid_log_last", 30), offset_of(32, 30) + 9 + 5, b"X");

    write_records(&fixture_dir("bad_magic"), 5);
    patch(&seg("bad_magic", 1), 0, b"NOTAWAL!");

    write_records(&fixture_dir("bad_version"), 5);
    patch(&seg("bad_version", 1), 8, &2u16.to_le_bytes());
}
