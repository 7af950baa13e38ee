//! Fuzzes WAL recovery ([`mcmp_storage::Wal::open`]) on arbitrary segment
//! files: the real start-up path (header check, record scan, torn-tail and
//! mid-log corruption rules, the repair plan and its application), on files
//! in a fresh temporary directory.
//!
//! Input layout: byte 0 is a control byte, byte 1 a split position, the rest
//! the segment bytes.
//!
//! - bit 0: recompute the header checksum(s), so the fuzzer gets past them;
//! - bit 1: recompute record checksums along the chain of `len` fields, so
//!   it reaches the replay and the end-of-log classification;
//! - bit 2: split the bytes into two segment files, at byte 1 / 256 of their
//!   length (multi-segment rules: LSN continuity, damage in a non-last
//!   segment, dropping later segments in repair mode).
//!
//! Each segment file is named after the `first_lsn` field of its own header
//! (bytes 16..24), so headers and names can agree. The directory is opened
//! once in strict and once in repair mode (each on a fresh copy). Errors are
//! fine; panics are not. When an open succeeds, the directory it leaves must
//! be clean: a second, strict open replays exactly the same records and has
//! nothing to repair or truncate.
//!
//! The file layer is the real one except that `fdatasync` and the directory
//! fsync are no-ops (durability is not what is tested here, speed is needed).
#![no_main]

use std::io;
use std::path::Path;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use mcmp_engine::codec::Record;
use mcmp_storage::fs::{FileSystem, SegmentFile, StdFileSystem};
use mcmp_storage::wal::format::{
    record_crc, record_seed, segment_file_name, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN,
};
use mcmp_storage::wal::MIN_SEGMENT_SIZE;
use mcmp_storage::{RecoveryMode, Wal, WalOptions};

const FIX_HEADER_CRC: u8 = 1;
const FIX_RECORD_CRCS: u8 = 2;
const TWO_SEGMENTS: u8 = 4;

fuzz_target!(|data: &[u8]| {
    let [control, split, rest @ ..] = data else {
        return;
    };
    let mut segments = if control & TWO_SEGMENTS != 0 {
        let at = rest.len() * usize::from(*split) / 256;
        let (a, b) = rest.split_at(at);
        vec![a.to_vec(), b.to_vec()]
    } else {
        vec![rest.to_vec()]
    };
    for segment in &mut segments {
        if control & FIX_HEADER_CRC != 0 {
            fix_header_crc(segment);
        }
        if control & FIX_RECORD_CRCS != 0 {
            fix_record_crcs(segment);
        }
    }
    for mode in [RecoveryMode::Strict, RecoveryMode::Repair] {
        recover(&segments, mode);
    }
});

/// Writes the segments into a fresh directory and opens the WAL there.
fn recover(segments: &[Vec<u8>], mode: RecoveryMode) {
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    for segment in segments {
        let name = segment_file_name(header_lsn(segment));
        if std::fs::write(dir.path().join(name), segment).is_err() {
            return;
        }
    }
    let opts = WalOptions {
        segment_size: MIN_SEGMENT_SIZE,
        recovery: mode,
        ..WalOptions::default()
    };
    let mut first = Vec::new();
    let opened = Wal::open(dir.path(), fs(), opts, |lsn, kind, payload| {
        // What the engine does with every replayed record.
        let _ = Record::decode(kind, payload);
        first.push((lsn, kind, payload.to_vec()));
    });
    let Ok((wal, report)) = opened else {
        return;
    };
    check_replay(&first, report.next_lsn);
    drop(wal);
    reopen_is_clean(dir.path(), &first);
}

/// LSNs are consecutive and the next LSN follows the last replayed one.
fn check_replay(records: &[(u64, u8, Vec<u8>)], next_lsn: u64) {
    for pair in records.windows(2) {
        assert!(
            pair[0].0.checked_add(1) == Some(pair[1].0),
            "replayed LSN {} after {}",
            pair[1].0,
            pair[0].0
        );
    }
    if let Some(last) = records.last() {
        assert!(
            last.0.checked_add(1) == Some(next_lsn),
            "next LSN {next_lsn} after replaying up to {}",
            last.0
        );
    }
}

/// After a successful open, a strict open of the same directory replays the
/// same records and repairs nothing.
fn reopen_is_clean(dir: &Path, first: &[(u64, u8, Vec<u8>)]) {
    let opts = WalOptions {
        segment_size: MIN_SEGMENT_SIZE,
        recovery: RecoveryMode::Strict,
        ..WalOptions::default()
    };
    let mut second = Vec::new();
    let reopened = Wal::open(dir, fs(), opts, |lsn, kind, payload| {
        second.push((lsn, kind, payload.to_vec()));
    });
    match reopened {
        Ok((_, report)) => {
            assert!(second == first, "a second open replays other records");
            assert!(
                report.repaired.is_none() && report.truncated_tail_bytes == 0,
                "a second open still repairs: {report:?}"
            );
        }
        Err(e) => panic!("recovery left a directory that does not open: {e}"),
    }
}

/// The `first_lsn` header field (zero-padded when the bytes are short).
fn header_lsn(segment: &[u8]) -> u64 {
    let mut lsn = [0u8; 8];
    for (dst, src) in lsn.iter_mut().zip(segment.iter().skip(16)) {
        *dst = *src;
    }
    u64::from_le_bytes(lsn)
}

/// Recomputes the header checksum as `format.rs` defines it: crc32c of
/// bytes 0..12 followed by bytes 16..32.
fn fix_header_crc(segment: &mut [u8]) {
    if let Some(header) = segment.get_mut(..SEGMENT_HEADER_LEN as usize) {
        let crc = crc32c::crc32c_append(crc32c::crc32c(&header[0..12]), &header[16..32]);
        header[12..16].copy_from_slice(&crc.to_le_bytes());
    }
}

/// Recomputes the checksum of each record along the `len` chain, stopping at
/// a zero record header or one that runs past the end.
fn fix_record_crcs(segment: &mut [u8]) {
    let seed = record_seed(header_lsn(segment));
    let header = RECORD_HEADER_LEN as usize;
    let mut pos = SEGMENT_HEADER_LEN as usize;
    while let Some(rec) = segment.get(pos..pos + header) {
        if rec.iter().all(|&b| b == 0) {
            return;
        }
        let len = u32::from_le_bytes([rec[0], rec[1], rec[2], rec[3]]) as usize;
        let kind = rec[8];
        let Some(payload) = segment.get(pos + header..pos + header + len) else {
            return;
        };
        let crc = record_crc(seed, kind, payload);
        segment[pos + 4..pos + 8].copy_from_slice(&crc.to_le_bytes());
        pos += header + len;
    }
}

/// The real file system with the fsyncs turned into no-ops.
fn fs() -> Arc<dyn FileSystem> {
    Arc::new(NoSync)
}

struct NoSync;

struct NoSyncFile(Box<dyn SegmentFile>);

impl FileSystem for NoSync {
    fn create(&self, path: &Path) -> io::Result<Box<dyn SegmentFile>> {
        Ok(Box::new(NoSyncFile(StdFileSystem.create(path)?)))
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn SegmentFile>> {
        Ok(Box::new(NoSyncFile(StdFileSystem.open(path)?)))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        StdFileSystem.remove(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        StdFileSystem.rename(from, to)
    }

    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }
}

impl SegmentFile for NoSyncFile {
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_at(buf, offset)
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.0.read_at(buf, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn len(&self) -> io::Result<u64> {
        self.0.len()
    }
}
