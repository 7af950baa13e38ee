//! The file layer under the WAL, behind a trait so tests can inject faults.
//!
//! [`StdFileSystem`] is the real thing (positioned `pwrite`/`pread` and
//! `fdatasync` through `std`). [`FaultyFileSystem`] wraps it with switches that
//! make fsync fail with EIO or writes fail with ENOSPC, so the fail-stop and
//! disk-full paths of the WAL (and of the engine above it) can be tested
//! without a broken disk. Handles are `Send + Sync` because a flush job runs on
//! a blocking thread pool while the shard that owns the WAL keeps appending.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Creates, opens and removes segment files.
pub trait FileSystem: Send + Sync + 'static {
    /// Creates a new file for reading and writing, truncating any leftover.
    fn create(&self, path: &Path) -> io::Result<Box<dyn SegmentFile>>;
    /// Opens an existing file for reading and writing.
    fn open(&self, path: &Path) -> io::Result<Box<dyn SegmentFile>>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Renames a file (atomically, within one directory).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes the directory entries of `dir` durable (fsync on the directory).
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// One open segment file with positioned I/O.
pub trait SegmentFile: Send + Sync {
    /// Writes all of `buf` at `offset`, looping on short writes.
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Makes the written data durable (`fdatasync`).
    fn sync_data(&self) -> io::Result<()>;
    /// Truncates or extends the file.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// The current file length.
    fn len(&self) -> io::Result<u64>;
    /// True if the file is empty.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
}

/// The real file system, through `std::fs`.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdFileSystem;

struct StdFile(File);

impl FileSystem for StdFileSystem {
    fn create(&self, path: &Path) -> io::Result<Box<dyn SegmentFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(Box::new(StdFile(file)))
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn SegmentFile>> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Box::new(StdFile(file)))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

impl SegmentFile for StdFile {
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.0.read_at(buf, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
}

/// Fault switches shared by a [`FaultyFileSystem`] and every file it opened.
#[derive(Debug)]
pub struct Faults {
    sync_calls: AtomicU64,
    fail_sync_from: AtomicU64,
    enospc: AtomicBool,
}

impl Faults {
    /// Lets `n` more `sync_data` calls succeed, then fails every later one
    /// with EIO (counting from now).
    pub fn fail_sync_after(&self, n: u64) {
        let now = self.sync_calls.load(Ordering::SeqCst);
        self.fail_sync_from
            .store(now.saturating_add(n), Ordering::SeqCst);
    }

    /// Makes `sync_data` succeed again.
    pub fn heal_sync(&self) {
        self.fail_sync_from.store(u64::MAX, Ordering::SeqCst);
    }

    /// While `on`, `write_at` and `create` fail with ENOSPC.
    pub fn enospc(&self, on: bool) {
        self.enospc.store(on, Ordering::SeqCst);
    }

    /// How many `sync_data` calls were made so far (failed ones included).
    pub fn sync_calls(&self) -> u64 {
        self.sync_calls.load(Ordering::SeqCst)
    }

    fn check_enospc(&self) -> io::Result<()> {
        if self.enospc.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        Ok(())
    }
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            sync_calls: AtomicU64::new(0),
            fail_sync_from: AtomicU64::new(u64::MAX),
            enospc: AtomicBool::new(false),
        }
    }
}

/// [`StdFileSystem`] with switchable faults, for tests of the WAL and engine.
///
/// ```
/// use mcmp_storage::fs::FaultyFileSystem;
/// let fs = FaultyFileSystem::new();
/// fs.faults().fail_sync_after(0); // the next fdatasync returns EIO
/// ```
#[derive(Debug, Default, Clone)]
pub struct FaultyFileSystem {
    faults: Arc<Faults>,
}

impl FaultyFileSystem {
    /// A file system without faults switched on.
    pub fn new() -> Self {
        Self::default()
    }

    /// The switches, shared with every file opened through this value.
    pub fn faults(&self) -> Arc<Faults> {
        Arc::clone(&self.faults)
    }
}

struct FaultyFile {
    inner: Box<dyn SegmentFile>,
    faults: Arc<Faults>,
}

impl FileSystem for FaultyFileSystem {
    fn create(&self, path: &Path) -> io::Result<Box<dyn SegmentFile>> {
        self.faults.check_enospc()?;
        let inner = StdFileSystem.create(path)?;
        Ok(Box::new(FaultyFile {
            inner,
            faults: self.faults(),
        }))
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn SegmentFile>> {
        let inner = StdFileSystem.open(path)?;
        Ok(Box::new(FaultyFile {
            inner,
            faults: self.faults(),
        }))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        StdFileSystem.remove(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        StdFileSystem.rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        StdFileSystem.sync_dir(dir)
    }
}

impl SegmentFile for FaultyFile {
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.faults.check_enospc()?;
        self.inner.write_at(buf, offset)
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        let n = self.faults.sync_calls.fetch_add(1, Ordering::SeqCst);
        if n >= self.faults.fail_sync_from.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        self.inner.sync_data()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }

    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
}

/// Reads exactly `buf.len()` bytes at `offset` (short reads are looped).
pub(crate) fn read_exact_at(file: &dyn SegmentFile, buf: &mut [u8], offset: u64) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let n = file.read_at(&mut buf[done..], offset + done as u64)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "segment file shorter than expected",
            ));
        }
        done += n;
    }
    Ok(())
}
