//! The history: settled messages on disk for the retention period (SPEC
//! §5.4, DESIGN §3 "Bounded state").
//!
//! Shards never call the store. Each one hands its settled messages, in
//! numbered hand-overs, and its blocked messages and late receipts to the
//! **index thread** through one bounded queue ([`History::offer`], which
//! never blocks: a full queue hands the batch back and the shard offers it
//! again on a later tick); the thread writes
//! them and publishes, per shard, the last hand-over applied
//! ([`History::applied`]), after which the shard lets those messages leave
//! memory. A message is therefore always in its shard's memory, in the
//! store, or both, so a read that looks in memory first and in the store
//! second never misses it. The index thread also drops the partitions past
//! the retention.
//!
//! Reads go to the **reader thread** through a second bounded queue and come
//! back on a oneshot channel; the shard's task awaits them without blocking
//! its core (a full queue makes the reader wait a millisecond and try
//! again).
//!
//! The store is derived: the WAL stays the source of truth, and after a
//! crash the replayed messages are handed over again (a message written
//! twice keeps one copy).

mod legacy;
pub mod store;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use futures_channel::oneshot;

use crate::codec::{BlockedRecord, LateReceiptRecord};
use crate::core::lifecycle::store::{Redriven, SettledMessage};
use store::Store;

/// Hand-overs the index thread's queue holds (all shards together).
const FEED_BOUND: usize = 64;

/// Reads the reader thread's queue holds.
const READ_BOUND: usize = 1024;

/// How often the index thread looks for partitions past the retention.
const DROP_EVERY: Duration = Duration::from_secs(5);

/// What the index thread's queue carries.
pub enum Feed {
    /// One shard's batch of settled messages.
    HandOver {
        /// The shard handing over.
        shard: usize,
        /// Its number, published once applied ([`History::applied`]).
        ticket: u64,
        /// The messages.
        messages: Vec<SettledMessage>,
    },
    /// Receipts that came after their (archived) messages expired.
    LateReceipts(Vec<LateReceiptRecord>),
    /// Messages rejected at accept by a policy check.
    Blocked(Vec<BlockedRecord>),
    /// Abandoned reports sent again: no longer dead letters.
    Redriven(Vec<Redriven>),
    /// Make everything applied so far durable, then answer.
    Persist(oneshot::Sender<bool>),
}

type Read = Box<dyn FnOnce(&Store) + Send>;

/// The history: its store, its two threads and their queues (`Sync`).
pub struct History {
    store: Arc<Store>,
    feed: Option<SyncSender<Feed>>,
    reads: Option<SyncSender<Read>>,
    applied: Arc<Vec<AtomicU64>>,
    threads: Vec<JoinHandle<()>>,
}

/// Why the history store could not be opened.
pub type OpenError = store::Error;

impl History {
    /// Opens the store in `dir` for `shards` shards and starts its threads.
    pub fn open(dir: &Path, shards: usize, retention: Duration) -> Result<History, OpenError> {
        let retention_ms = retention.as_millis().min(i64::MAX as u128) as i64;
        let applied: Arc<Vec<AtomicU64>> =
            Arc::new((0..shards).map(|_| AtomicU64::new(0)).collect());
        let (feed, feed_rx) = mpsc::sync_channel(FEED_BOUND);
        let (reads, reads_rx) = mpsc::sync_channel::<Read>(READ_BOUND);
        // The index thread opens the store at a lower priority, so the
        // store's own flush and compaction threads, which it starts, run
        // there too: under load the shards get the cores first.
        let (opened_tx, opened) = mpsc::sync_channel(1);
        let index = {
            let (dir, applied) = (dir.to_path_buf(), applied.clone());
            std::thread::Builder::new()
                .name("mcmp-history-index".into())
                .spawn(move || {
                    crate::rt::lower_this_threads_priority();
                    let store = match Store::open(&dir, retention_ms) {
                        Ok(s) => Arc::new(s),
                        Err(e) => {
                            let _ = opened_tx.send(Err(e));
                            return;
                        }
                    };
                    if opened_tx.send(Ok(store.clone())).is_ok() {
                        index_loop(&store, &applied, &feed_rx);
                    }
                })
                .map_err(io_error)?
        };
        let store = opened
            .recv()
            .map_err(|_| io_error(std::io::Error::other("the history thread died")))??;
        let reader = {
            let store = store.clone();
            std::thread::Builder::new()
                .name("mcmp-history-read".into())
                .spawn(move || {
                    while let Ok(read) = reads_rx.recv() {
                        read(&store);
                    }
                })
        };
        let threads = vec![index, reader.map_err(io_error)?];
        Ok(History {
            store,
            feed: Some(feed),
            reads: Some(reads),
            applied,
            threads,
        })
    }

    /// Offers `feed` to the index thread without waiting; gives it back
    /// when the queue is full (or closed), for a later tick.
    pub fn offer(&self, feed: Feed) -> Result<(), Feed> {
        let Some(tx) = &self.feed else {
            return Err(feed);
        };
        tx.try_send(feed).map_err(|e| match e {
            TrySendError::Full(f) | TrySendError::Disconnected(f) => f,
        })
    }

    /// Makes durable everything the store applied, including every
    /// hand-over offered before this call (the queue is in order); `false`
    /// if the store failed or is closed.
    pub async fn persist(&self) -> bool {
        let Some(feed) = &self.feed else {
            return false;
        };
        let (tx, rx) = oneshot::channel();
        send_waiting(feed, Feed::Persist(tx)).await && rx.await.unwrap_or(false)
    }

    /// The last hand-over of `shard` the store has applied.
    pub fn applied(&self, shard: usize) -> u64 {
        self.applied
            .get(shard)
            .map_or(0, |a| a.load(Ordering::Acquire))
    }

    /// Bytes the store takes on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.store.disk_bytes()
    }

    /// Runs `read` on the reader thread and awaits its answer; `None` if
    /// the store failed (logged) or is closed.
    pub async fn read<T, F>(&self, read: F) -> Option<T>
    where
        F: FnOnce(&Store) -> Result<T, store::Error> + Send + 'static,
        T: Send + 'static,
    {
        let reads = self.reads.as_ref()?;
        let (tx, rx) = oneshot::channel();
        let job: Read = Box::new(move |store: &Store| {
            let _ = tx.send(read(store));
        });
        if !send_waiting(reads, job).await {
            return None;
        }
        match rx.await {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "history store read failed");
                None
            }
            Err(_) => None,
        }
    }
}

impl Drop for History {
    /// Closes the queues and waits for both threads (the index thread
    /// applies what was queued first).
    fn drop(&mut self) {
        self.feed.take();
        self.reads.take();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Sends `item` on a thread's queue, waiting a millisecond at a time while
/// it is full (the shard's task waits, its core does not); `false` once the
/// queue is closed.
async fn send_waiting<T>(tx: &SyncSender<T>, mut item: T) -> bool {
    loop {
        match tx.try_send(item) {
            Ok(()) => return true,
            Err(TrySendError::Full(back)) => {
                item = back;
                crate::rt::sleep(Duration::from_millis(1)).await;
            }
            Err(TrySendError::Disconnected(_)) => return false,
        }
    }
}

fn io_error(e: std::io::Error) -> OpenError {
    OpenError::from(e)
}

/// Applies hand-overs as they come (several at once when they queue up)
/// and drops expired partitions, until every shard's sender is gone.
fn index_loop(store: &Store, applied: &[AtomicU64], feed: &Receiver<Feed>) {
    let mut last_drop = std::time::Instant::now();
    loop {
        let first = match feed.recv_timeout(DROP_EVERY) {
            Ok(f) => Some(f),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let mut batch: Vec<Feed> = first.into_iter().collect();
        while batch.len() < FEED_BOUND {
            match feed.try_recv() {
                Ok(f) => batch.push(f),
                Err(_) => break,
            }
        }
        let now = crate::unix_ms();
        if let Err(e) = apply(store, applied, batch, now) {
            // Fail-stop: nothing more is acknowledged, so the shards keep
            // their settled messages in memory (the WAL has them all; the
            // next start hands them over again).
            tracing::error!(error = %e, "history store write failed: the history stops; settled messages stay in memory");
            return;
        }
        if last_drop.elapsed() >= DROP_EVERY {
            last_drop = std::time::Instant::now();
            match store.drop_expired(now) {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    partitions = n,
                    "history: dropped partitions past the retention"
                ),
                Err(e) => {
                    tracing::error!(error = %e, "history: dropping expired partitions failed")
                }
            }
        }
    }
}

/// Writes one batch, then publishes the hand-overs it applied.
fn apply(
    store: &Store,
    applied: &[AtomicU64],
    batch: Vec<Feed>,
    now: i64,
) -> Result<(), store::Error> {
    let mut tickets = Vec::new();
    let mut messages = Vec::new();
    let mut late = Vec::new();
    let mut blocked = Vec::new();
    let mut redriven = Vec::new();
    let mut persist = Vec::new();
    for f in batch {
        match f {
            Feed::HandOver {
                shard,
                ticket,
                messages: m,
            } => {
                tickets.push((shard, ticket));
                messages.extend(m);
            }
            Feed::LateReceipts(r) => late.extend(r),
            Feed::Blocked(b) => blocked.extend(b),
            Feed::Redriven(r) => redriven.extend(r),
            Feed::Persist(reply) => persist.push(reply),
        }
    }
    if !blocked.is_empty() {
        store.put_blocked(&blocked, now)?;
    }
    if !messages.is_empty() {
        store.put(&messages, now)?;
    }
    if !redriven.is_empty() {
        store.forget_dead_letters(&redriven)?;
    }
    for (shard, ticket) in tickets {
        if let Some(a) = applied.get(shard) {
            a.fetch_max(ticket, Ordering::Release);
        }
    }
    for rec in late {
        store.add_late_receipt(&rec, now)?;
    }
    if !persist.is_empty() {
        let done = store.persist();
        if let Err(e) = &done {
            tracing::error!(error = %e, "history store: persisting failed");
        }
        for reply in persist {
            let _ = reply.send(done.is_ok());
        }
    }
    Ok(())
}
