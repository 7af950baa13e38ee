//! Helpers shared by the test modules.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mcmp_storage::fs::{FileSystem, StdFileSystem};
use mcmp_storage::{RecoveryMode, RecoveryReport, Result, Wal, WalOptions};

/// A replayed record: (lsn, kind, payload).
pub type Rec = (u64, u8, Vec<u8>);

/// Opens a WAL and collects what recovery replayed.
pub fn open_with(
    dir: &Path,
    fs: Arc<dyn FileSystem>,
    segment_size: u64,
    recovery: RecoveryMode,
) -> Result<(Wal, RecoveryReport, Vec<Rec>)> {
    let opts = WalOptions {
        segment_size,
        recovery,
        ..WalOptions::default()
    };
    let mut seen = Vec::new();
    let (wal, report) = Wal::open(dir, fs, opts, |lsn, kind, p| {
        seen.push((lsn, kind, p.to_vec()))
    })?;
    Ok((wal, report, seen))
}

/// Opens a WAL on the real file system in strict mode.
pub fn open(dir: &Path, segment_size: u64) -> (Wal, RecoveryReport, Vec<Rec>) {
    open_with(
        dir,
        Arc::new(StdFileSystem),
        segment_size,
        RecoveryMode::Strict,
    )
    .unwrap()
}

/// The deterministic payload of the i-th test record (`len` bytes).
pub fn payload(i: u64, len: usize) -> Vec<u8> {
    let tag = format!("record-{i:06}|");
    tag.bytes().cycle().take(len).collect()
}

/// The directory of a checked-in fixture.
pub fn fixture_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Copies a fixture into a fresh temporary directory and returns it.
pub fn copy_fixture(name: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture_dir(name)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), tmp.path().join(entry.file_name())).unwrap();
    }
    tmp
}

/// Names of the `.wal` files in `dir`, sorted.
pub fn segment_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".wal"))
        .collect();
    names.sort();
    names
}
