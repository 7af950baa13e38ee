//! The files' own IO thread. Every read, write, fsync and delete of a
//! media file runs here, never on a shard's core and never in the shard's
//! blocking pool (one thread, which the WAL's group commits use: a 1 MiB
//! write and its fsync must not delay them). Shards hand it jobs through one
//! bounded queue and await the answer on a oneshot; a full queue answers
//! [`Busy`] at once.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, SyncSender, TrySendError};

use futures_channel::oneshot;

/// Jobs the queue holds (all shards together). Uploads are small and
/// rare next to messages; 256 waiting writes of up to 1 MiB are a few
/// seconds of a disk's work.
pub const QUEUE: usize = 256;

/// The queue was full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

type Job = Box<dyn FnOnce() + Send>;

/// The thread and its queue (`Send + Sync`).
pub struct Disk {
    jobs: SyncSender<Job>,
}

impl Disk {
    /// Starts the thread; it ends when the `Disk` is dropped.
    pub fn start() -> io::Result<Disk> {
        let (jobs, rx) = mpsc::sync_channel::<Job>(QUEUE);
        std::thread::Builder::new()
            .name("mcmp-files".into())
            .spawn(move || {
                for job in rx {
                    job();
                }
            })?;
        Ok(Disk { jobs })
    }

    /// Runs `f` on the thread and awaits its answer.
    pub async fn run<R, F>(&self, f: F) -> Result<R, Busy>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        match self.jobs.try_send(job) {
            Ok(()) => rx.await.map_err(|_| Busy),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => Err(Busy),
        }
    }
}

/// Writes `bytes` to `path` crash-safe: a temporary file, fsync, rename
/// over `path`. The caller fsyncs the directory ([`sync_dir`]).
pub fn write_durable(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = tmp_path(path);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| at("create", &tmp, e))?;
    f.write_all(bytes).map_err(|e| at("write", &tmp, e))?;
    f.sync_all().map_err(|e| at("fsync", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| at("rename", path, e))
}

/// Fsyncs a directory, so the names created or removed in it are durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| at("fsync", dir, e))
}

/// The temporary name of `path` while it is written.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

/// An IO error that names the operation and the path.
pub fn at(op: &str, path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{op} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_durable_write_replaces_the_file_and_leaves_no_tmp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.meta");
        write_durable(&path, b"one").expect("write");
        write_durable(&path, b"two").expect("write");
        sync_dir(dir.path()).expect("sync");
        assert_eq!(fs::read(&path).expect("read"), b"two");
        assert!(!tmp_path(&path).exists());
    }
}
