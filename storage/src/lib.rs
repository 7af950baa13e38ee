//! Storage of MCMP: the per-shard write-ahead log and the catalog.
//!
//! # The WAL
//!
//! Every shard owns one [`Wal`], a directory of pre-zeroed segment files
//! named by the LSN of their first record. Everything the engine knows is
//! rebuilt from it at start-up; indexes and checkpoints are only caches.
//!
//! The WAL is synchronous and runtime-free, split along the line between
//! cheap and blocking work so that the shard's executor never blocks:
//!
//! - [`Wal::append`] frames a record into an in-memory buffer and returns its
//!   LSN (no I/O).
//! - [`Wal::flush_job`] takes the buffer as a [`FlushJob`], which is `Send`:
//!   the engine runs [`FlushJob::run`] (pwrite + fdatasync, creating the next
//!   segment if needed) on a blocking thread pool, while the shard keeps
//!   appending. One fdatasync covers every record of the job: group commit.
//! - [`Wal::complete_flush`] takes the [`FlushOutcome`] back on the shard and
//!   returns the LSN up to which records may be acknowledged.
//!
//! A failed fsync poisons the WAL for good ([`Error::Poisoned`]); a full disk
//! ([`Error::StorageFull`]) discards the unacknowledged records and leaves the
//! WAL usable. Corruption in the middle of the log stops start-up with the
//! file and offset unless [`RecoveryMode::Repair`] is chosen. File I/O goes
//! through the [`fs::FileSystem`] trait so tests can inject faults.
//!
//! ```
//! use std::sync::Arc;
//! use mcmp_storage::{fs::StdFileSystem, Wal, WalOptions};
//!
//! # fn main() -> mcmp_storage::Result<()> {
//! let dir = tempfile::tempdir().expect("tempdir");
//! let opts = WalOptions { segment_size: 64 * 1024, ..WalOptions::default() };
//! let (mut wal, _) = Wal::open(dir.path(), Arc::new(StdFileSystem), opts, |_, _, _| {})?;
//! let lsn = wal.append(1, b"message accepted")?;
//! if let Some(job) = wal.flush_job()? {
//!     let outcome = job.run(); // on a blocking thread in the engine
//!     assert!(wal.complete_flush(outcome)? >= lsn);
//! }
//! drop(wal);
//!
//! let mut seen = Vec::new();
//! let (_, report) = Wal::open(dir.path(), Arc::new(StdFileSystem), opts, |lsn, kind, payload| {
//!     seen.push((lsn, kind, payload.to_vec()))
//! })?;
//! assert_eq!(seen, vec![(1, 1, b"message accepted".to_vec())]);
//! assert_eq!(report.next_lsn, 2);
//! # Ok(())
//! # }
//! ```
//!
//! # The catalog
//!
//! [`Catalog`] stores small, rarely written data (customers, routes,
//! senders) by table and key; [`SledCatalog`] implements it on sled.

pub mod catalog;
pub mod checkpoint;
pub mod error;
pub mod fs;
pub mod wal;

pub use catalog::{Catalog, SledCatalog};
pub use error::{Error, Result};
pub use wal::{
    inspect, Durability, FlushJob, FlushOutcome, RecordInfo, RecoveryMode, RecoveryReport, Wal,
    WalOptions,
};
