//! The live state of a sender, shared by every shard (`Send + Sync`, atomics
//! only, no lock): which shards have a bound session, how much work is
//! queued and in flight, and the counters `GET /admin/v1/senders` shows.
//!
//! Each counter is written by the shard that does the work and read by any
//! shard's routing; a slightly stale read only shifts load a little.

use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};

/// Live state of one sender. Created once per sender name and kept across
/// catalog snapshots (so counters survive configuration changes).
#[derive(Debug)]
pub struct SenderLive {
    up_per_shard: Vec<AtomicU32>,
    queued_per_shard: Vec<AtomicI64>,
    pushed: AtomicU64,
    resolved: AtomicU64,
    /// Messages the carrier took.
    pub sent: AtomicU64,
    /// Messages the carrier refused or that failed on the way.
    pub failed: AtomicU64,
    /// Receipts received.
    pub receipts: AtomicU64,
    /// Times a session went down.
    pub downs: AtomicU64,
    /// Last sign of life from any session (unix ms).
    pub last_heartbeat_ms: AtomicI64,
}

impl SenderLive {
    /// Fresh state for `shards` shards.
    pub fn new(shards: usize) -> SenderLive {
        SenderLive {
            up_per_shard: (0..shards).map(|_| AtomicU32::new(0)).collect(),
            queued_per_shard: (0..shards).map(|_| AtomicI64::new(0)).collect(),
            pushed: AtomicU64::new(0),
            resolved: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            receipts: AtomicU64::new(0),
            downs: AtomicU64::new(0),
            last_heartbeat_ms: AtomicI64::new(0),
        }
    }

    /// A session on `shard` came up (`up = true`) or went down.
    pub fn session_changed(&self, shard: usize, up: bool) {
        if let Some(c) = self.up_per_shard.get(shard) {
            if up {
                c.fetch_add(1, Ordering::Relaxed);
            } else {
                let _ = c.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1));
                self.downs.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Bound sessions in total.
    pub fn connected(&self) -> u32 {
        self.up_per_shard
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    /// Whether `shard` has a bound session.
    pub fn up_on(&self, shard: usize) -> bool {
        self.up_per_shard
            .get(shard)
            .is_some_and(|c| c.load(Ordering::Relaxed) > 0)
    }

    /// A shard with a bound session, preferring `preferred`, then rotating by `spread`.
    pub fn shard_for(&self, preferred: usize, spread: usize) -> Option<usize> {
        if self.up_on(preferred) {
            return Some(preferred);
        }
        let n = self.up_per_shard.len();
        (0..n).map(|i| (spread + i) % n).find(|&s| self.up_on(s))
    }

    /// Sets the queue length sampled on `shard`.
    pub fn set_queued(&self, shard: usize, queued: usize) {
        if let Some(q) = self.queued_per_shard.get(shard) {
            q.store(queued as i64, Ordering::Relaxed);
        }
    }

    /// Queued messages over all shards.
    pub fn queued(&self) -> i64 {
        self.queued_per_shard
            .iter()
            .map(|q| q.load(Ordering::Relaxed))
            .sum()
    }

    /// A message was handed to a session.
    pub fn pushed(&self) {
        self.pushed.fetch_add(1, Ordering::Relaxed);
    }

    /// A handed message was submitted or failed.
    pub fn resolved(&self) {
        self.resolved.fetch_add(1, Ordering::Relaxed);
    }

    /// Handed over but not yet answered by the carrier (nor still queued).
    pub fn in_flight(&self) -> i64 {
        let pushed = self.pushed.load(Ordering::Relaxed) as i64;
        let resolved = self.resolved.load(Ordering::Relaxed) as i64;
        (pushed - resolved - self.queued()).max(0)
    }

    /// Work waiting at this sender (the "least queued work" of SPEC §1).
    pub fn load(&self) -> i64 {
        let pushed = self.pushed.load(Ordering::Relaxed) as i64;
        pushed - self.resolved.load(Ordering::Relaxed) as i64
    }
}
