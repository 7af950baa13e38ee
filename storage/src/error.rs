//! Errors of the storage crate.
//!
//! Every I/O error names the operation and the path; corruption names the
//! segment file and the byte offset so an operator can find it with
//! `mcmp wal inspect` and decide whether to start with `--repair-wal`.

use std::io;
use std::path::PathBuf;

/// Result of storage operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors of the WAL and the catalog.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system call failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// The operation, e.g. `"fdatasync"` or `"open segment"`.
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A record or header in the middle of the log does not verify.
    ///
    /// A torn tail of the last segment is not corruption (it is truncated at
    /// start-up); this is damage followed by valid data, or damage in an
    /// earlier segment.
    #[error(
        "WAL corrupt in {} at offset {offset}: {reason} \
         (start with --repair-wal to truncate the log there and drop what follows)",
        path.display()
    )]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the first bad byte in that file.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A previous fdatasync or write failed: the WAL refuses all further work.
    ///
    /// After a failed fsync the kernel may have dropped dirty pages, so a retry
    /// that succeeds proves nothing (fail-stop, like fjall and PostgreSQL).
    #[error("WAL poisoned by an earlier failed fsync or write; restart the shard")]
    Poisoned,
    /// The disk is full (ENOSPC) while writing or creating a segment.
    ///
    /// The records of the failed flush were discarded; the WAL stays usable.
    #[error("storage full (ENOSPC)")]
    StorageFull,
    /// A segment file does not start with the WAL magic.
    #[error("{} is not an MCMP WAL segment (bad magic)", path.display())]
    BadMagic {
        /// The file.
        path: PathBuf,
    },
    /// A segment file has a format version this build cannot read.
    #[error("{}: unsupported WAL format version {version}", path.display())]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found.
        version: u16,
    },
    /// A record is larger than fits in one segment.
    #[error("WAL record of {len} bytes exceeds the maximum of {max} bytes")]
    RecordTooLarge {
        /// Payload length asked for.
        len: usize,
        /// Largest payload a segment can hold.
        max: u64,
    },
    /// The WAL options are unusable (e.g. a segment size too small).
    #[error("invalid WAL options: {0}")]
    InvalidOptions(String),
    /// [`crate::Wal::complete_flush`] was called with no job outstanding.
    #[error("complete_flush called without an outstanding flush job")]
    NoJobOutstanding,
    /// The catalog store failed.
    #[error("catalog: {0}")]
    Catalog(String),
    /// The store several nodes share (their Redis Cluster) did not answer;
    /// nothing was changed.
    #[error("the shared catalog is unavailable: {0}")]
    SharedUnavailable(String),
}

impl Error {
    /// Builds an [`Error::Io`], mapping ENOSPC to [`Error::StorageFull`].
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        if is_enospc(&source) {
            return Error::StorageFull;
        }
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// True if `err` is "no space left on device".
pub(crate) fn is_enospc(err: &io::Error) -> bool {
    err.raw_os_error() == Some(libc::ENOSPC)
}
