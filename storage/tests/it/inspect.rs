//! The read-only `inspect` walk used by `mcmp wal inspect DIR`.

use mcmp_storage::{inspect, Error};

use crate::common::{copy_fixture, open, payload};

#[test]
fn inspect_lists_every_record_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _, _) = open(dir.path(), 1024);
    for i in 1..=20 {
        wal.append(3, &payload(i, 91)).unwrap();
    }
    wal.flush_blocking().unwrap();
    let mut rows = Vec::new();
    let report = inspect(dir.path(), |info, p| {
        assert_eq!(p.len() as u32, info.len);
        rows.push((
            info.segment.to_string(),
            info.offset,
            info.lsn,
            info.kind,
            info.len,
        ));
    })
    .unwrap();
    assert_eq!((report.records, report.next_lsn), (20, 21));
    // 100-byte frames: 9 per 1 KiB segment after the 32-byte header.
    assert_eq!(
        rows[0],
        ("00000000000000000001.wal".to_string(), 32, 1, 3, 91)
    );
    assert_eq!(rows[1].1, 132);
    assert_eq!(
        rows[9],
        ("00000000000000000010.wal".to_string(), 32, 10, 3, 91)
    );
    assert_eq!(report.segments, 3);
}

#[test]
fn inspect_stops_at_corruption_with_file_and_offset() {
    let dir = copy_fixture("mid_log");
    let mut seen = 0;
    let err = inspect(dir.path(), |_, _| seen += 1).err().unwrap();
    assert!(matches!(err, Error::Corrupt { offset: 722, .. }), "{err}");
    assert!(
        err.to_string()
            .contains("00000000000000000001.wal at offset 722"),
        "{err}"
    );
    assert_eq!(seen, 10);
}

#[test]
fn inspect_reports_a_torn_tail_without_fixing_it() {
    let dir = copy_fixture("torn_tail");
    let before = std::fs::read(dir.path().join("00000000000000000030.wal")).unwrap();
    let report = inspect(dir.path(), |_, _| {}).unwrap();
    assert_eq!((report.records, report.truncated_tail_bytes), (40, 29));
    let after = std::fs::read(dir.path().join("00000000000000000030.wal")).unwrap();
    assert_eq!(before, after, "inspect never writes");
}
