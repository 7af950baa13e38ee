//! Flush jobs: the blocking half of the WAL, run off the shard's executor.
//!
//! A [`FlushJob`] owns the bytes taken from the WAL buffer and `Arc`s of the
//! files they go to, so it is `Send + 'static` and can run on a blocking
//! thread pool while the shard keeps appending. Its [`FlushOutcome`] goes
//! back to [`super::Wal::complete_flush`] on the shard.
//!
//! Architecture Invariant: a segment is fdatasync'ed before any byte is
//! written to the next one, so after a crash only the last segment can have a
//! torn tail, and damage in an earlier segment is always real corruption.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use super::format::{encode_header, SEGMENT_HEADER_LEN};
use crate::error::is_enospc;
use crate::fs::{FileSystem, SegmentFile};

/// Size of the zero block used to pre-write segments.
const ZERO_BLOCK: usize = 1 << 20;

/// Bytes for one segment, possibly one that must be created first.
pub(crate) struct JobChunk {
    pub first_lsn: u64,
    pub path: PathBuf,
    /// `None`: create the segment (zero-filled to `capacity`) before writing.
    pub file: Option<Arc<dyn SegmentFile>>,
    /// With `file` `None`: the spare to turn into the segment instead.
    pub spare: Option<Arc<dyn SegmentFile>>,
    pub capacity: u64,
    pub offset: u64,
    pub bytes: Vec<u8>,
}

/// The blocking part of a group commit: pwrites, segment creation, fdatasync.
///
/// Made by [`super::Wal::flush_job`] or [`super::Wal::sync_job`]; run it with
/// [`FlushJob::run`] on any thread, then hand the outcome back to the WAL.
pub struct FlushJob {
    pub(crate) fs: Arc<dyn FileSystem>,
    pub(crate) dir: PathBuf,
    pub(crate) chunks: Vec<JobChunk>,
    /// Files to fdatasync that no chunk writes to (sync-only jobs).
    pub(crate) sync_files: Vec<(PathBuf, Arc<dyn SegmentFile>)>,
    pub(crate) sync: bool,
    pub(crate) target_lsn: u64,
}

/// What a failed job was doing.
#[derive(Debug)]
pub(crate) struct Failure {
    pub op: &'static str,
    pub path: PathBuf,
    pub error: io::Error,
    /// An fdatasync failed: the WAL must poison itself.
    pub sync: bool,
}

impl Failure {
    /// ENOSPC on a write or on segment creation: recoverable by discarding.
    pub fn is_storage_full(&self) -> bool {
        !self.sync && is_enospc(&self.error)
    }
}

/// The result of [`FlushJob::run`], to pass to [`super::Wal::complete_flush`].
pub struct FlushOutcome {
    pub(crate) result: Result<(), Failure>,
    pub(crate) created: Vec<(u64, Arc<dyn SegmentFile>)>,
    pub(crate) written: Vec<(u64, PathBuf, Arc<dyn SegmentFile>)>,
    pub(crate) target_lsn: u64,
}

impl FlushOutcome {
    /// True if every write and sync of the job succeeded.
    pub fn is_ok(&self) -> bool {
        self.result.is_ok()
    }

    /// The highest LSN the job covered.
    pub fn target_lsn(&self) -> u64 {
        self.target_lsn
    }
}

impl FlushJob {
    /// The highest LSN this job writes or syncs.
    pub fn target_lsn(&self) -> u64 {
        self.target_lsn
    }

    /// Bytes of records this job writes.
    pub fn bytes(&self) -> usize {
        self.chunks.iter().map(|c| c.bytes.len()).sum()
    }

    /// Does the I/O. Blocking: call it on a blocking thread, not on a shard.
    pub fn run(self) -> FlushOutcome {
        let mut outcome = FlushOutcome {
            result: Ok(()),
            created: Vec::new(),
            written: Vec::new(),
            target_lsn: self.target_lsn,
        };
        outcome.result = self.execute(&mut outcome);
        if let Err(failure) = &outcome.result {
            if !failure.sync {
                self.undo(&mut outcome);
            }
        }
        outcome
    }

    fn execute(&self, out: &mut FlushOutcome) -> Result<(), Failure> {
        for chunk in &self.chunks {
            if let Some((_, prev_path, prev)) = out.written.last() {
                if prev_path != &chunk.path {
                    // The invariant above: the previous segment is durable first.
                    sync(prev.as_ref(), prev_path)?;
                }
            }
            let file = match &chunk.file {
                Some(file) => Arc::clone(file),
                None => {
                    let file = match &chunk.spare {
                        Some(spare) => {
                            super::spare::adopt(self.fs.as_ref(), &self.dir, spare, chunk)?
                        }
                        None => create_segment(self.fs.as_ref(), &self.dir, chunk)?,
                    };
                    out.created.push((chunk.first_lsn, Arc::clone(&file)));
                    file
                }
            };
            file.write_at(&chunk.bytes, chunk.offset)
                .map_err(|error| failure("write segment", &chunk.path, error))?;
            out.written
                .push((chunk.first_lsn, chunk.path.clone(), file));
        }
        if self.sync {
            if let Some((_, path, file)) = out.written.last() {
                sync(file.as_ref(), path)?;
            }
            for (path, file) in &self.sync_files {
                sync(file.as_ref(), path)?;
            }
        }
        Ok(())
    }

    /// After a write failure (not a sync failure), best effort: zero what this
    /// job wrote and delete the segments it created, so records that were
    /// never acknowledged cannot come back at the next start-up.
    fn undo(&self, out: &mut FlushOutcome) {
        for ((_, _, file), chunk) in out.written.iter().zip(&self.chunks) {
            let _ = file.write_at(&vec![0; chunk.bytes.len()], chunk.offset);
        }
        for (first_lsn, _) in out.created.drain(..) {
            if let Some(chunk) = self.chunks.iter().find(|c| c.first_lsn == first_lsn) {
                let _ = self.fs.remove(&chunk.path);
            }
        }
        let _ = self.fs.sync_dir(&self.dir);
        out.written.clear();
    }
}

fn failure(op: &'static str, path: &std::path::Path, error: io::Error) -> Failure {
    Failure {
        op,
        path: path.to_path_buf(),
        error,
        sync: false,
    }
}

fn sync(file: &dyn SegmentFile, path: &std::path::Path) -> Result<(), Failure> {
    file.sync_data().map_err(|error| Failure {
        op: "fdatasync",
        path: path.to_path_buf(),
        error,
        sync: true,
    })
}

/// Creates a segment, writes its header and zeros up to its capacity, and
/// makes both the file and its directory entry durable.
///
/// NOTE: segments are pre-written rather than `fallocate`d: fdatasync on a
/// pre-written file is about twice as fast on this machine (DESIGN §11).
pub(crate) fn create_segment(
    fs: &dyn FileSystem,
    dir: &std::path::Path,
    chunk: &JobChunk,
) -> Result<Arc<dyn SegmentFile>, Failure> {
    let path = &chunk.path;
    let file: Arc<dyn SegmentFile> = Arc::from(
        fs.create(path)
            .map_err(|e| failure("create segment", path, e))?,
    );
    let written = zero_fill(file.as_ref(), chunk.first_lsn, chunk.capacity);
    if let Err(error) = written {
        let _ = fs.remove(path);
        return Err(failure("zero-fill segment", path, error));
    }
    sync(file.as_ref(), path)?;
    fs.sync_dir(dir).map_err(|error| Failure {
        op: "fsync dir",
        path: dir.to_path_buf(),
        error,
        sync: true,
    })?;
    Ok(file)
}

pub(crate) fn zero_fill(file: &dyn SegmentFile, first_lsn: u64, capacity: u64) -> io::Result<()> {
    let mut block = vec![0u8; ZERO_BLOCK.min(capacity as usize)];
    block[..SEGMENT_HEADER_LEN as usize].copy_from_slice(&encode_header(first_lsn));
    let mut offset = 0;
    while offset < capacity {
        let n = block.len().min((capacity - offset) as usize);
        file.write_at(&block[..n], offset)?;
        if offset == 0 {
            block[..SEGMENT_HEADER_LEN as usize].fill(0);
        }
        offset += n as u64;
    }
    Ok(())
}

/// Overwrites `from..to` of a file with zeros (used by recovery).
pub(crate) fn zero_range(file: &dyn SegmentFile, from: u64, to: u64) -> io::Result<()> {
    let block = vec![0u8; ZERO_BLOCK.min((to - from) as usize)];
    let mut offset = from;
    while offset < to {
        let n = block.len().min((to - offset) as usize);
        file.write_at(&block[..n], offset)?;
        offset += n as u64;
    }
    Ok(())
}
