//! Group commit on one shard: many appenders, one flusher.
//!
//! Appenders add records to the shard's [`mcmp_storage::Wal`] buffer and wait
//! for their LSN to become durable. One flusher task per shard takes whatever
//! is buffered, runs the write + fdatasync on the blocking pool (the core never
//! blocks) and wakes every waiter the sync covered. While one flush is in
//! flight, new records accumulate and the next flush covers all of them: the
//! busier the shard, the bigger the groups. An idle shard flushes at once
//! for a waiter. Records nobody waits for (background state changes:
//! routed, submitted, delivered) do not start a flush of their own: the
//! next waiter's flush covers them, or, when none comes, one within
//! [`BACKGROUND_FLUSH`]. A message's later steps cost no fdatasync each.
//!
//! Failure is fail-stop: a failed fsync poisons the WAL and every waiter, now
//! and later, gets [`WalError::Poisoned`]. A full disk fails only the records
//! that could not be written ([`WalError::StorageFull`]).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use futures_channel::oneshot;
use mcmp_storage::{Durability, Wal};

use crate::codec::Record;
use crate::notify::LocalNotify;
use crate::rt;

/// Why a record is not durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WalError {
    /// A previous fsync failed; the shard no longer accepts writes.
    #[error("the write-ahead log is poisoned by a failed fsync")]
    Poisoned,
    /// The disk is full.
    #[error("storage full")]
    StorageFull,
    /// The shard is shutting down.
    #[error("shutting down")]
    Closed,
}

impl From<mcmp_storage::Error> for WalError {
    fn from(e: mcmp_storage::Error) -> Self {
        match e {
            mcmp_storage::Error::StorageFull => WalError::StorageFull,
            _ => WalError::Poisoned,
        }
    }
}

type Waiter = (u64, oneshot::Sender<Result<(), WalError>>);

/// How long records nobody waits for may stay buffered before a flush of
/// their own (reports wait for their message's final record: at most this
/// much later at low load; under load a waiter's flush comes first).
pub const BACKGROUND_FLUSH: Duration = Duration::from_millis(2);

/// The shard's WAL with its group-commit flusher. Owned by one shard.
pub struct LocalWal {
    wal: RefCell<Wal>,
    waiters: RefCell<VecDeque<Waiter>>,
    kick: LocalNotify,
    /// Records nobody waits for were appended.
    background: LocalNotify,
    poisoned: Cell<bool>,
    sync_interval: Option<Duration>,
    appended: Cell<u64>,
    /// The LSN of the last record appended.
    last_lsn: Cell<u64>,
    metrics: Rc<crate::metrics::LocalMetrics>,
    alerts: Rc<crate::alerts::Alerts>,
    acked: Cell<u64>,
    acked_notify: LocalNotify,
}

impl LocalWal {
    /// Wraps an opened WAL and starts its flusher (and, in `interval`
    /// durability, its periodic sync) on the current shard.
    pub fn start(
        wal: Wal,
        durability: Durability,
        sync_interval: Duration,
        metrics: Rc<crate::metrics::LocalMetrics>,
        alerts: Rc<crate::alerts::Alerts>,
    ) -> Rc<LocalWal> {
        // Everything recovered is durable.
        let (durable, last) = (wal.durable_lsn(), wal.last_appended_lsn());
        let this = Rc::new(LocalWal {
            poisoned: Cell::new(wal.is_poisoned()),
            wal: RefCell::new(wal),
            waiters: RefCell::new(VecDeque::new()),
            kick: LocalNotify::default(),
            background: LocalNotify::default(),
            sync_interval: matches!(durability, Durability::Interval).then_some(sync_interval),
            appended: Cell::new(0),
            last_lsn: Cell::new(last),
            metrics,
            alerts,
            acked: Cell::new(durable),
            acked_notify: LocalNotify::default(),
        });
        rt::spawn(this.clone().flusher());
        if let Some(every) = this.sync_interval {
            rt::spawn(this.clone().interval_syncer(every));
        }
        this
    }

    /// Bytes the log takes on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.wal.borrow().disk_bytes()
    }

    /// Whether the WAL refuses writes after a failed fsync.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.get()
    }

    /// Records appended since start (a metric).
    pub fn appended(&self) -> u64 {
        self.appended.get()
    }

    /// Waits until every record up to `lsn` is durable.
    pub async fn durable(&self, lsn: u64) -> Result<(), WalError> {
        if self.poisoned.get() {
            return Err(WalError::Poisoned);
        }
        if lsn <= self.acked.get() {
            return Ok(());
        }
        let (tx, rx) = oneshot::channel();
        {
            let mut waiters = self.waiters.borrow_mut();
            let at = waiters.partition_point(|(l, _)| *l <= lsn);
            waiters.insert(at, (lsn, tx));
        }
        self.kick.notify();
        rx.await.unwrap_or(Err(WalError::Closed))
    }

    /// The segments, oldest first: first LSN and file.
    pub fn segments(&self) -> Vec<(u64, std::path::PathBuf)> {
        self.wal.borrow().segments()
    }

    /// The LSN of the last record appended (0 before the first).
    pub fn last_appended(&self) -> u64 {
        self.wal.borrow().last_appended_lsn()
    }

    /// Takes the segments wholly below `lsn` out of the log (never the one
    /// taking appends) and deletes them off the core.
    pub async fn retire_before(&self, lsn: u64) -> Result<usize, mcmp_storage::Error> {
        let (dir, paths) = {
            let mut wal = self.wal.borrow_mut();
            (wal.dir().to_path_buf(), wal.detach_segments_before(lsn))
        };
        let n = paths.len();
        // Off the blocking pool, which the group commits use.
        let remove = move || mcmp_storage::wal::remove_files(&dir, &paths);
        rt::on_own_thread("mcmp-retire", remove)
            .await
            .unwrap_or_else(|| {
                Err(mcmp_storage::Error::Io {
                    op: "start a thread",
                    path: std::path::PathBuf::new(),
                    source: std::io::Error::other("no thread"),
                })
            })?;
        Ok(n)
    }

    /// Appends records without waiting for them to be durable (state changes
    /// whose loss on a crash only repeats work: the previous state is
    /// recovered and acted on again). The next group commit covers them.
    pub fn append_background(&self, records: &[Record]) -> Result<u64, WalError> {
        self.append_all(records.iter())
    }

    /// [`LocalWal::append_background`] over any sequence of records; returns
    /// the LSN of the last one (0 when there was none).
    pub fn append_all<'a>(
        &self,
        records: impl Iterator<Item = &'a Record>,
    ) -> Result<u64, WalError> {
        let mut records = records.peekable();
        // Nothing to write is no error, even on a poisoned log (a step of
        // the core that changed nothing, such as an idle tick).
        if records.peek().is_none() {
            return Ok(0);
        }
        if self.poisoned.get() {
            return Err(WalError::Poisoned);
        }
        let mut last = 0;
        let mut count = 0;
        {
            let mut wal = self.wal.borrow_mut();
            for r in records {
                let (kind, payload) = r.encode();
                last = wal.append(kind, &payload)?;
                count += 1;
            }
        }
        if count == 0 {
            return Ok(0);
        }
        self.appended.set(self.appended.get() + count);
        if last > 0 {
            self.last_lsn.set(last);
        }
        // No kick: the flusher finds them within BACKGROUND_FLUSH.
        self.background.notify();
        Ok(last)
    }

    /// Records appended and not yet acknowledged as durable.
    pub fn unsynced(&self) -> u64 {
        self.last_lsn.get().saturating_sub(self.acked.get())
    }

    /// The highest LSN acknowledged as durable (per the durability mode).
    pub fn acked_lsn(&self) -> u64 {
        self.acked.get()
    }

    /// Waits until the acknowledged LSN may have moved (one waiter).
    pub async fn acked_moved(&self) {
        self.acked_notify.notified().await
    }

    async fn flusher(self: Rc<Self>) {
        loop {
            // Records nobody waits for are flushed a little later, with
            // whatever a waiter brings meanwhile.
            let urgent = futures_lite::future::or(
                async {
                    self.kick.notified().await;
                    true
                },
                async {
                    self.background.notified().await;
                    false
                },
            )
            .await;
            if !urgent {
                self.kick.sleep_unless_notified(BACKGROUND_FLUSH).await;
            }
            while self.flush_once().await {
                self.prepare_spare();
            }
        }
    }

    /// Starts writing the next segment ahead of the roll when the WAL asks
    /// for it (storage `wal::spare`), so a roll does not stall the group
    /// commit that crosses it.
    fn prepare_spare(self: &Rc<Self>) {
        let Some(job) = self.wal.borrow_mut().spare_job() else {
            return;
        };
        let this = self.clone();
        rt::spawn(async move {
            let outcome = rt::on_own_thread("mcmp-wal-spare", move || job.run())
                .await
                .unwrap_or_else(|| {
                    mcmp_storage::wal::SpareOutcome::failed(std::io::Error::other(
                        "could not start a thread",
                    ))
                });
            this.wal.borrow_mut().complete_spare(outcome);
        });
    }

    /// Runs one flush if anything is buffered; returns whether it did.
    async fn flush_once(&self) -> bool {
        let job = match self.wal.borrow_mut().flush_job() {
            Ok(Some(job)) => job,
            Ok(None) => return false,
            Err(e) => {
                self.fail_waiters(e.into(), u64::MAX);
                return false;
            }
        };
        let bytes = job.bytes() as u64;
        let started = std::time::Instant::now();
        let outcome = rt::blocking(move || job.run()).await;
        let took = started.elapsed();
        let result = self.wal.borrow_mut().complete_flush(outcome);
        if result.is_ok() {
            self.metrics.wal_fsync(took);
            self.metrics.wal_append(bytes);
        }
        match result {
            Ok(durable) => self.release_waiters(durable),
            Err(e) => {
                let err = WalError::from(e);
                if err == WalError::Poisoned {
                    self.poisoned.set(true);
                    tracing::error!(
                        "fsync failed: the WAL is poisoned and this shard stops accepting"
                    );
                    self.alerts.raise(
                        crate::alerts::AlertEvent::WalPoisoned,
                        serde_json::json!({"during": "append"}),
                    );
                }
                // Every waiter not yet released belongs to the failed job or
                // to records buffered behind it; none of them is durable.
                self.fail_waiters(err, u64::MAX);
            }
        }
        true
    }

    fn release_waiters(&self, durable: u64) {
        if durable > self.acked.get() {
            self.acked.set(durable);
            self.acked_notify.notify();
        }
        let mut waiters = self.waiters.borrow_mut();
        while waiters.front().is_some_and(|(lsn, _)| *lsn <= durable) {
            if let Some((_, tx)) = waiters.pop_front() {
                let _ = tx.send(Ok(()));
            }
        }
    }

    fn fail_waiters(&self, err: WalError, up_to: u64) {
        let mut waiters = self.waiters.borrow_mut();
        while waiters.front().is_some_and(|(lsn, _)| *lsn <= up_to) {
            if let Some((_, tx)) = waiters.pop_front() {
                let _ = tx.send(Err(err));
            }
        }
    }

    async fn interval_syncer(self: Rc<Self>, every: Duration) {
        loop {
            rt::sleep(every).await;
            let job = self.wal.borrow_mut().sync_job();
            if let Some(job) = job {
                let outcome = rt::blocking(move || job.run()).await;
                if self.wal.borrow_mut().complete_flush(outcome).is_err() {
                    self.poisoned.set(true);
                    tracing::error!("periodic fsync failed: the WAL is poisoned");
                    self.alerts.raise(
                        crate::alerts::AlertEvent::WalPoisoned,
                        serde_json::json!({"during": "periodic sync"}),
                    );
                }
            }
        }
    }

    /// Writes and syncs everything buffered (shutdown).
    pub async fn close(&self) {
        while self.flush_once().await {}
        let job = self.wal.borrow_mut().sync_job();
        if let Some(job) = job {
            let outcome = rt::blocking(move || job.run()).await;
            let _ = self.wal.borrow_mut().complete_flush(outcome);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use mcmp_storage::fs::StdFileSystem;
    use mcmp_storage::WalOptions;

    use super::*;
    use crate::codec::LinkRecord;
    use crate::model::MessageId;

    fn link(n: u64) -> Record {
        Record::Link(LinkRecord {
            id: MessageId(n),
            fallback_message_id: MessageId(n + 1),
        })
    }

    /// A waiter's flush covers the records appended before it with nobody
    /// waiting; a record nobody waits for becomes durable on its own.
    #[test]
    fn records_nobody_waits_for_are_flushed_with_a_waiters_or_on_their_own() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        let done = rt::run_shards(1, move |_| {
            let path = path.clone();
            async move {
                let opts = WalOptions {
                    durability: Durability::Fsync,
                    ..WalOptions::default()
                };
                let (wal, _) =
                    Wal::open(&path, Arc::new(StdFileSystem), opts, |_, _, _| {}).expect("open");
                let http = Rc::new(crate::http_client::HttpClient::new());
                let alerts = crate::alerts::Alerts::new(0, None, Default::default(), http);
                let metrics = Rc::new(crate::metrics::LocalMetrics::new());
                let wal = LocalWal::start(
                    wal,
                    Durability::Fsync,
                    Duration::from_secs(1),
                    metrics,
                    Rc::new(alerts),
                );
                wal.append_background(&[link(1)]).expect("append");
                let second = wal.append_background(&[link(3)]).expect("append");
                wal.durable(second).await.expect("durable");
                assert!(wal.acked_lsn() >= second);
                let third = wal.append_background(&[link(5)]).expect("append");
                let on_its_own = async {
                    while wal.acked_lsn() < third {
                        wal.acked_moved().await;
                    }
                };
                rt::timeout(Duration::from_secs(10), on_its_own)
                    .await
                    .is_some()
            }
        })
        .expect("executor");
        assert_eq!(done, vec![true]);
    }
}
