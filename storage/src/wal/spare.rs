//! The spare segment: the next segment, written ahead of the roll.
//!
//! Creating a segment means pre-writing it with zeros to its full size and
//! fdatasyncing it (about 60–100 ms for 64 MiB on the development disk). If
//! that happened inside the flush job that rolls, every append waiting on
//! that group commit would wait for it too. So once the active segment is
//! half full, a [`SpareJob`] writes a zero-filled file named
//! [`SPARE_FILE_NAME`] off the flush path; at the roll the flush job only
//! writes the real header into it, fdatasyncs, renames it to its segment
//! name and fsyncs the directory. Without a spare (a fresh start, a failed
//! spare job) the roll creates the segment itself, as before.
//!
//! On disk the spare holds no records and a placeholder header (first LSN
//! 0, which no segment has), so a crash at any point leaves either a file
//! the next start-up deletes ([`SPARE_FILE_NAME`] is not a segment name) or
//! a renamed segment with a valid header and no records.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::format::encode_header;
use super::job::{zero_fill, Failure, JobChunk};
use crate::fs::{FileSystem, SegmentFile};

/// The spare's file name in the WAL directory (not a segment name).
pub const SPARE_FILE_NAME: &str = "next.wal.spare";

/// Writes the spare segment. Made by [`super::Wal::spare_job`]; run it on a
/// thread of its own (it is long, and must not queue ahead of flush jobs),
/// then hand the outcome to [`super::Wal::complete_spare`].
pub struct SpareJob {
    pub(crate) fs: Arc<dyn FileSystem>,
    pub(crate) path: PathBuf,
    pub(crate) capacity: u64,
}

/// A finished [`SpareJob`].
pub struct SpareOutcome {
    pub(crate) result: io::Result<Arc<dyn SegmentFile>>,
}

impl SpareOutcome {
    /// The outcome of a job that could not be run at all.
    pub fn failed(error: io::Error) -> SpareOutcome {
        SpareOutcome { result: Err(error) }
    }
}

impl SpareJob {
    /// Creates, zero-fills and fdatasyncs the spare; removes it on failure.
    pub fn run(self) -> SpareOutcome {
        let result = self.write();
        if result.is_err() {
            let _ = self.fs.remove(&self.path);
        }
        SpareOutcome { result }
    }

    fn write(&self) -> io::Result<Arc<dyn SegmentFile>> {
        let file: Arc<dyn SegmentFile> = Arc::from(self.fs.create(&self.path)?);
        zero_fill(file.as_ref(), 0, self.capacity)?;
        file.sync_data()?;
        Ok(file)
    }
}

/// Turns the spare into the segment of `chunk`: its header, durable, then
/// its name, durable. Runs inside the flush job that rolls.
pub(crate) fn adopt(
    fs: &dyn FileSystem,
    dir: &Path,
    spare: &Arc<dyn SegmentFile>,
    chunk: &JobChunk,
) -> Result<Arc<dyn SegmentFile>, Failure> {
    let fail = |op: &'static str, path: &Path, error: io::Error, sync: bool| Failure {
        op,
        path: path.to_path_buf(),
        error,
        sync,
    };
    let spare_path = dir.join(SPARE_FILE_NAME);
    spare
        .write_at(&encode_header(chunk.first_lsn), 0)
        .map_err(|e| fail("write segment header", &spare_path, e, false))?;
    spare
        .sync_data()
        .map_err(|e| fail("fdatasync", &spare_path, e, true))?;
    fs.rename(&spare_path, &chunk.path)
        .map_err(|e| fail("rename spare segment", &chunk.path, e, false))?;
    fs.sync_dir(dir)
        .map_err(|e| fail("fsync dir", dir, e, true))?;
    Ok(Arc::clone(spare))
}
