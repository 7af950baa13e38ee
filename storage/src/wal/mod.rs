//! The per-shard write-ahead log: buffered appends, group-commit flush jobs,
//! recovery and retention.
//!
//! The format is documented in [`mod@format`]; recovery rules in [`recovery`];
//! the blocking I/O half in [`job`].

pub mod format;
pub mod job;
pub mod recovery;
pub mod spare;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use format::{
    encode_record, framed_len, record_seed, segment_file_name, RECORD_HEADER_LEN,
    SEGMENT_HEADER_LEN,
};
use job::{create_segment, zero_range, Failure, JobChunk};
pub use job::{FlushJob, FlushOutcome};
use recovery::{scan_dir, Action, KeptSegment};
pub use recovery::{RecordInfo, RecoveryMode, RecoveryReport};
pub use spare::{SpareJob, SpareOutcome, SPARE_FILE_NAME};

use crate::error::{Error, Result};
use crate::fs::{read_exact_at, FileSystem, SegmentFile};

/// Default segment size: 64 MiB.
pub const DEFAULT_SEGMENT_SIZE: u64 = 64 << 20;
/// Smallest accepted segment size (tests use a few KiB).
pub const MIN_SEGMENT_SIZE: u64 = 1024;

/// When appended records count as durable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// Every flush job ends with fdatasync; acknowledge after it. The default.
    #[default]
    Fsync,
    /// Flush jobs write without syncing; the engine runs [`Wal::sync_job`] on
    /// a timer. Acknowledge after the write.
    Interval,
    /// Never sync (benchmarks only). Acknowledge after the write.
    None,
}

/// Options of one shard's WAL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalOptions {
    /// Size of each segment file, pre-written with zeros at creation.
    /// Default [`DEFAULT_SEGMENT_SIZE`]; it bounds the largest record.
    pub segment_size: u64,
    /// When records count as durable. Default [`Durability::Fsync`].
    pub durability: Durability,
    /// How start-up treats mid-log corruption. Default [`RecoveryMode::Strict`].
    pub recovery: RecoveryMode,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_size: DEFAULT_SEGMENT_SIZE,
            durability: Durability::Fsync,
            recovery: RecoveryMode::Strict,
        }
    }
}

/// One segment file, existing or planned (to be created by the next job).
struct Segment {
    first_lsn: u64,
    path: PathBuf,
    capacity: u64,
    seed: u32,
    /// `None` until the flush job that creates it completes.
    file: Option<Arc<dyn SegmentFile>>,
    /// For a planned segment: the spare the job turns into it.
    spare: Option<Arc<dyn SegmentFile>>,
}

/// Buffered bytes for one segment.
struct Chunk {
    first_lsn: u64,
    offset: u64,
    bytes: Vec<u8>,
}

/// Where the first byte of a flush job goes, to roll back on ENOSPC.
#[derive(Clone, Copy)]
struct Position {
    segment: u64,
    offset: u64,
    lsn: u64,
}

enum InFlight {
    Write { start: Position },
    Sync,
}

/// The write-ahead log of one shard.
///
/// On disk (details and constants in [`mod@format`]; all little-endian):
///
/// ```text
/// dir/{first_lsn:020}.wal  segment, pre-written with zeros to segment_size
/// dir/next.wal.spare        the next segment, pre-written ahead of the roll
///                           (no records; deleted at start-up; see [`mod@spare`])
/// header = { magic b"MCMPWAL\0" | u16 version=1 | u16 0 | u32 crc32c | u64 first_lsn | u64 0 }
/// record = { u32 len | u32 crc32c(seed(first_lsn), kind ++ payload) | u8 kind | payload }
/// ```
///
/// Owned by its shard and used only from the shard's thread; the blocking
/// I/O runs in [`FlushJob`]s, which the shard hands to a blocking pool. At
/// most one job is outstanding, so jobs complete in LSN order.
pub struct Wal {
    dir: PathBuf,
    fs: Arc<dyn FileSystem>,
    opts: WalOptions,
    /// In LSN order; the last one takes appends (it may be planned).
    segments: Vec<Segment>,
    /// Offset in the last segment where the next record goes.
    write_pos: u64,
    next_lsn: u64,
    pending: Vec<Chunk>,
    pending_bytes: usize,
    pending_start: Option<Position>,
    written_lsn: u64,
    durable_lsn: u64,
    /// Interval mode: files written since the last sync.
    unsynced: Vec<(u64, PathBuf, Arc<dyn SegmentFile>)>,
    in_flight: Option<InFlight>,
    poisoned: bool,
    /// The next segment, written ahead ([`mod@spare`]).
    spare: Option<Arc<dyn SegmentFile>>,
    /// A [`SpareJob`] is out.
    spare_out: bool,
    /// The segment during which a spare job failed: no new try before the
    /// next one (a full disk would otherwise be written to at every flush).
    spare_failed_in: Option<u64>,
}

impl Wal {
    /// Opens or creates `dir`, replays every record in LSN order into
    /// `visit(lsn, kind, payload)`, truncates a torn tail of the last segment
    /// and positions for appending. Blocking (start-up only).
    pub fn open(
        dir: &Path,
        fs: Arc<dyn FileSystem>,
        opts: WalOptions,
        mut visit: impl FnMut(u64, u8, &[u8]),
    ) -> Result<(Wal, RecoveryReport)> {
        if opts.segment_size < MIN_SEGMENT_SIZE || opts.segment_size > u64::from(u32::MAX) {
            return Err(Error::InvalidOptions(format!(
                "segment_size {} must be between {MIN_SEGMENT_SIZE} and {}",
                opts.segment_size,
                u32::MAX
            )));
        }
        if opts.durability == Durability::None {
            tracing::warn!(dir = %dir.display(),
                "WAL durability is `none`: nothing is ever synced, a crash loses data (benchmarks only)");
        }
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create dir", dir, e))?;
        let read = |path: &Path| {
            let file = fs.open(path)?;
            let mut buf = vec![0; file.len()? as usize];
            read_exact_at(file.as_ref(), &mut buf, 0)?;
            Ok(buf)
        };
        let scan = scan_dir(dir, opts.recovery, read, |info, payload| {
            visit(info.lsn, info.kind, payload)
        })?;
        apply_actions(fs.as_ref(), dir, &scan.actions)?;
        // A spare left by a previous run holds no records; a fresh one is
        // written when the active segment fills.
        let spare_path = dir.join(SPARE_FILE_NAME);
        if spare_path.exists() {
            fs.remove(&spare_path)
                .map_err(|e| Error::io("remove spare segment", &spare_path, e))?;
        }
        let report = scan.report;
        let mut wal = Wal {
            dir: dir.to_path_buf(),
            fs,
            opts,
            segments: Vec::new(),
            write_pos: SEGMENT_HEADER_LEN,
            next_lsn: report.next_lsn,
            pending: Vec::new(),
            pending_bytes: 0,
            pending_start: None,
            written_lsn: report.next_lsn - 1,
            durable_lsn: report.next_lsn - 1,
            unsynced: Vec::new(),
            in_flight: None,
            poisoned: false,
            spare: None,
            spare_out: false,
            spare_failed_in: None,
        };
        wal.install_segments(scan.kept)?;
        Ok((wal, report))
    }

    fn install_segments(&mut self, kept: Vec<KeptSegment>) -> Result<()> {
        for k in &kept {
            self.segments.push(Segment {
                first_lsn: k.first_lsn,
                path: k.path.clone(),
                capacity: k.len,
                seed: record_seed(k.first_lsn),
                file: None,
                spare: None,
            });
        }
        match (kept.last(), self.segments.last_mut()) {
            (Some(k), Some(last)) => {
                let file = self
                    .fs
                    .open(&last.path)
                    .map_err(|e| Error::io("open segment", &last.path, e))?;
                last.file = Some(Arc::from(file));
                self.write_pos = k.end;
            }
            _ => {
                let segment = self.plan_segment(self.next_lsn);
                let chunk = JobChunk {
                    first_lsn: segment.first_lsn,
                    path: segment.path.clone(),
                    file: None,
                    spare: None,
                    capacity: segment.capacity,
                    offset: 0,
                    bytes: Vec::new(),
                };
                let file =
                    create_segment(self.fs.as_ref(), &self.dir, &chunk).map_err(failure_error)?;
                self.segments.push(Segment {
                    file: Some(file),
                    ..segment
                });
            }
        }
        Ok(())
    }

    fn plan_segment(&self, first_lsn: u64) -> Segment {
        Segment {
            first_lsn,
            path: self.dir.join(segment_file_name(first_lsn)),
            capacity: self.opts.segment_size,
            seed: record_seed(first_lsn),
            file: None,
            spare: None,
        }
    }

    /// A job writing the next segment ahead of the roll, when the active
    /// segment is at least half full and there is no spare yet. Run it on a
    /// thread of its own and give the outcome to [`Wal::complete_spare`].
    pub fn spare_job(&mut self) -> Option<SpareJob> {
        let tail = self.segments.last()?;
        let half_full = self.write_pos >= tail.capacity / 2;
        if self.poisoned
            || self.spare.is_some()
            || self.spare_out
            || !half_full
            || self.spare_failed_in == Some(tail.first_lsn)
        {
            return None;
        }
        self.spare_out = true;
        Some(SpareJob {
            fs: Arc::clone(&self.fs),
            path: self.dir.join(SPARE_FILE_NAME),
            capacity: self.opts.segment_size,
        })
    }

    /// Takes back a finished [`SpareJob`]. A failure is only logged: the
    /// roll then creates the segment itself (and reports a full disk then).
    pub fn complete_spare(&mut self, done: SpareOutcome) {
        self.spare_out = false;
        match done.result {
            Ok(file) if !self.poisoned => self.spare = Some(file),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e,
                    "could not write the spare WAL segment; the next roll creates it inline");
                self.spare_failed_in = self.segments.last().map(|s| s.first_lsn);
            }
        }
    }

    /// The largest payload a record may have.
    pub fn max_payload(&self) -> u64 {
        self.opts.segment_size - SEGMENT_HEADER_LEN - RECORD_HEADER_LEN
    }

    /// Buffers one record in memory and returns its LSN. Cheap: no I/O.
    ///
    /// The buffer is bounded by the caller, which starts a flush job when
    /// [`Wal::pending_bytes`] grows (the engine at 128 KiB).
    pub fn append(&mut self, kind: u8, payload: &[u8]) -> Result<u64> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        if payload.len() as u64 > self.max_payload() {
            return Err(Error::RecordTooLarge {
                len: payload.len(),
                max: self.max_payload(),
            });
        }
        let framed = framed_len(payload.len());
        let fits = self
            .segments
            .last()
            .is_some_and(|tail| self.write_pos + framed <= tail.capacity);
        if !fits {
            // A record never spans segments: roll first (into the spare,
            // if one is ready).
            let mut segment = self.plan_segment(self.next_lsn);
            segment.spare = self.spare.take();
            self.segments.push(segment);
            self.write_pos = SEGMENT_HEADER_LEN;
        }
        let Some(tail) = self.segments.last() else {
            unreachable!("a segment was just pushed");
        };
        let position = Position {
            segment: tail.first_lsn,
            offset: self.write_pos,
            lsn: self.next_lsn,
        };
        self.pending_start.get_or_insert(position);
        let chunk = match self.pending.last_mut() {
            Some(chunk) if chunk.first_lsn == tail.first_lsn => chunk,
            _ => {
                self.pending.push(Chunk {
                    first_lsn: tail.first_lsn,
                    offset: self.write_pos,
                    bytes: Vec::new(),
                });
                let Some(chunk) = self.pending.last_mut() else {
                    unreachable!("a chunk was just pushed");
                };
                chunk
            }
        };
        encode_record(&mut chunk.bytes, tail.seed, kind, payload);
        let lsn = self.next_lsn;
        self.next_lsn += 1;
        self.write_pos += framed;
        self.pending_bytes += framed as usize;
        Ok(lsn)
    }

    /// Bytes the log takes on disk: its segments (each pre-written to its
    /// full size) and the spare.
    pub fn disk_bytes(&self) -> u64 {
        let spare = self.spare.as_ref().map_or(0, |_| self.opts.segment_size);
        self.segments.iter().map(|s| s.capacity).sum::<u64>() + spare
    }

    /// Bytes buffered and not yet handed to a flush job.
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// The LSN of the last appended record (0 if none ever was).
    pub fn last_appended_lsn(&self) -> u64 {
        self.next_lsn - 1
    }

    /// The highest LSN covered by a successful fdatasync.
    pub fn durable_lsn(&self) -> u64 {
        self.durable_lsn
    }

    /// The highest LSN written to the files (durable or not).
    pub fn written_lsn(&self) -> u64 {
        self.written_lsn
    }

    /// The highest LSN that may be acknowledged under the configured
    /// durability: synced for `Fsync`, written for `Interval` and `None`.
    pub fn ack_lsn(&self) -> u64 {
        match self.opts.durability {
            Durability::Fsync => self.durable_lsn,
            Durability::Interval | Durability::None => self.written_lsn,
        }
    }

    /// True once a sync or write failed: every later call returns
    /// [`Error::Poisoned`].
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// The WAL directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes the buffered records as a job to run on a blocking thread.
    ///
    /// `Ok(None)` if nothing is pending or a job is already outstanding (at
    /// most one at a time). The job may create the next segment.
    pub fn flush_job(&mut self) -> Result<Option<FlushJob>> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        if self.in_flight.is_some() || self.pending.is_empty() {
            return Ok(None);
        }
        let mut chunks = Vec::with_capacity(self.pending.len());
        for chunk in self.pending.drain(..) {
            let Some(segment) = self
                .segments
                .iter()
                .find(|s| s.first_lsn == chunk.first_lsn)
            else {
                unreachable!("pending bytes always belong to a known segment");
            };
            chunks.push(JobChunk {
                first_lsn: segment.first_lsn,
                path: segment.path.clone(),
                file: segment.file.clone(),
                spare: segment.spare.clone(),
                capacity: segment.capacity,
                offset: chunk.offset,
                bytes: chunk.bytes,
            });
        }
        self.pending_bytes = 0;
        let Some(start) = self.pending_start.take() else {
            unreachable!("pending bytes have a start position");
        };
        self.in_flight = Some(InFlight::Write { start });
        Ok(Some(FlushJob {
            fs: Arc::clone(&self.fs),
            dir: self.dir.clone(),
            chunks,
            sync_files: Vec::new(),
            sync: self.opts.durability == Durability::Fsync,
            target_lsn: self.next_lsn - 1,
        }))
    }

    /// Interval mode: a job that only fdatasyncs what was written since the
    /// last sync. `None` if there is nothing to sync or a job is outstanding.
    pub fn sync_job(&mut self) -> Option<FlushJob> {
        if self.poisoned || self.in_flight.is_some() || self.written_lsn == self.durable_lsn {
            return None;
        }
        self.in_flight = Some(InFlight::Sync);
        let sync_files = self
            .unsynced
            .iter()
            .map(|(_, p, f)| (p.clone(), Arc::clone(f)))
            .collect();
        Some(FlushJob {
            fs: Arc::clone(&self.fs),
            dir: self.dir.clone(),
            chunks: Vec::new(),
            sync_files,
            sync: true,
            target_lsn: self.written_lsn,
        })
    }

    /// Takes back a finished job and returns [`Wal::ack_lsn`].
    ///
    /// - A failed fdatasync (or a write error other than ENOSPC) poisons the
    ///   WAL for good; the fsync is never retried. The first call returns the
    ///   I/O error, later ones [`Error::Poisoned`].
    /// - ENOSPC returns [`Error::StorageFull`] and discards every record not
    ///   yet written (those of the job and any appended since it was taken:
    ///   none was acknowledged); their LSNs are reused by later appends.
    pub fn complete_flush(&mut self, done: FlushOutcome) -> Result<u64> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        let Some(in_flight) = self.in_flight.take() else {
            return Err(Error::NoJobOutstanding);
        };
        for (first_lsn, file) in done.created {
            if let Some(segment) = self.segments.iter_mut().find(|s| s.first_lsn == first_lsn) {
                segment.file = Some(file);
                segment.spare = None;
            }
        }
        match (done.result, in_flight) {
            (Ok(()), InFlight::Sync) => {
                self.durable_lsn = done.target_lsn;
                self.unsynced.clear();
            }
            (Ok(()), InFlight::Write { .. }) => {
                self.written_lsn = done.target_lsn;
                if self.opts.durability == Durability::Fsync {
                    self.durable_lsn = done.target_lsn;
                } else {
                    self.remember_unsynced(done.written);
                }
            }
            (Err(failure), InFlight::Write { start }) if failure.is_storage_full() => {
                self.discard_from(start);
                return Err(Error::StorageFull);
            }
            (Err(failure), _) => {
                self.poisoned = true;
                tracing::error!(op = failure.op, path = %failure.path.display(), error = %failure.error,
                    "WAL poisoned: the shard must stop accepting writes");
                return Err(failure_error(failure));
            }
        }
        Ok(self.ack_lsn())
    }

    fn remember_unsynced(&mut self, written: Vec<(u64, PathBuf, Arc<dyn SegmentFile>)>) {
        for entry in written {
            if !self.unsynced.iter().any(|(lsn, _, _)| *lsn == entry.0) {
                self.unsynced.push(entry);
            }
        }
    }

    /// Forgets every record from `start` on (after ENOSPC).
    fn discard_from(&mut self, start: Position) {
        tracing::warn!(
            lsn = start.lsn,
            "storage full: discarding unacknowledged WAL records"
        );
        self.segments.retain(|s| s.first_lsn <= start.segment);
        self.write_pos = start.offset;
        self.next_lsn = start.lsn;
        self.pending.clear();
        self.pending_bytes = 0;
        self.pending_start = None;
    }

    /// Runs a flush (and in Interval mode a sync) on the calling thread and
    /// returns [`Wal::ack_lsn`]. For tests, tools, benches and shutdown.
    pub fn flush_blocking(&mut self) -> Result<u64> {
        if let Some(job) = self.flush_job()? {
            self.complete_flush(job.run())?;
        }
        if self.opts.durability == Durability::Interval {
            if let Some(job) = self.sync_job() {
                self.complete_flush(job.run())?;
            }
        }
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        Ok(self.ack_lsn())
    }

    /// The segments, oldest first: the LSN of each one's first record and
    /// its file.
    pub fn segments(&self) -> Vec<(u64, PathBuf)> {
        self.segments
            .iter()
            .map(|s| (s.first_lsn, s.path.clone()))
            .collect()
    }

    /// Retention without blocking: takes out of the log the whole segments
    /// whose records all have LSNs below `lsn` (never the one taking
    /// appends) and returns their paths, for the caller to delete with
    /// [`remove_files`] off its core. Segments left on disk by a crash in
    /// between are replayed (and skipped by their LSNs) at the next start.
    pub fn detach_segments_before(&mut self, lsn: u64) -> Vec<PathBuf> {
        let mut out = Vec::new();
        while let [first, second, ..] = self.segments.as_slice() {
            let done = second.first_lsn <= lsn && second.first_lsn <= self.written_lsn + 1;
            if !done || second.file.is_none() {
                break;
            }
            out.push(first.path.clone());
            self.segments.remove(0);
        }
        out
    }

    /// Retention: deletes whole segments whose records all have LSNs below
    /// `lsn`, never the segment taking appends. Returns how many went.
    /// Blocking (unlink + directory fsync); the engine calls it rarely.
    pub fn remove_segments_before(&mut self, lsn: u64) -> Result<usize> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        let paths = self.detach_segments_before(lsn);
        for path in &paths {
            self.fs
                .remove(path)
                .map_err(|e| Error::io("remove segment", path, e))?;
        }
        if !paths.is_empty() {
            self.fs
                .sync_dir(&self.dir)
                .map_err(|e| Error::io("fsync dir", &self.dir, e))?;
        }
        Ok(paths.len())
    }
}

/// Deletes detached segment files ([`Wal::detach_segments_before`]) and
/// fsyncs their directory. Blocking.
pub fn remove_files(dir: &Path, paths: &[PathBuf]) -> Result<()> {
    for path in paths {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove segment", path, e)),
        }
    }
    if !paths.is_empty() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io("fsync dir", dir, e))?;
    }
    Ok(())
}

fn failure_error(failure: Failure) -> Error {
    if failure.is_storage_full() {
        return Error::StorageFull;
    }
    Error::Io {
        op: failure.op,
        path: failure.path,
        source: failure.error,
    }
}

fn apply_actions(fs: &dyn FileSystem, dir: &Path, actions: &[Action]) -> Result<()> {
    let mut removed = false;
    for action in actions {
        match action {
            Action::Remove(path) => {
                fs.remove(path)
                    .map_err(|e| Error::io("remove segment", path, e))?;
                removed = true;
            }
            Action::Zero { path, from, to } => {
                let file = fs
                    .open(path)
                    .map_err(|e| Error::io("open segment", path, e))?;
                zero_range(file.as_ref(), *from, *to)
                    .map_err(|e| Error::io("zero tail", path, e))?;
                file.sync_data()
                    .map_err(|e| Error::io("fdatasync", path, e))?;
            }
        }
    }
    if removed {
        fs.sync_dir(dir)
            .map_err(|e| Error::io("fsync dir", dir, e))?;
    }
    Ok(())
}

/// Reads a WAL directory without changing it, for `mcmp wal inspect DIR`:
/// calls `visit` for every record and stops with [`Error::Corrupt`] (file and
/// offset) at mid-log corruption. A torn tail is reported in
/// [`RecoveryReport::truncated_tail_bytes`], not fixed.
pub fn inspect(dir: &Path, visit: impl FnMut(&RecordInfo<'_>, &[u8])) -> Result<RecoveryReport> {
    let scan = scan_dir(dir, RecoveryMode::Strict, |p| std::fs::read(p), visit)?;
    Ok(scan.report)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
