//! The shard's periodic work: held messages retried or expired, session
//! queues sampled, ported-out numbers written, settled messages handed to
//! the history store, the daily digest, the disk check. (Scheduled sends and webhook retries are on the timer wheel:
//! `crate::deadlines`.)

use std::rc::Rc;
use std::time::Duration;

use super::routing::route;
use super::Shard;
use crate::rt;
use crate::unix_ms;

/// How often held and scheduled messages are looked at.
pub const TICK: Duration = Duration::from_millis(50);

/// The held queue is looked at every this many ticks (200 ms): each held
/// message is retried on its own backoff (`core::held`), the longest-waiting
/// at once after a sender came up or the catalog changed...
const HELD_RETRY_EVERY: u64 = 4;

/// ...at most this many per round, so a long outage does not turn every
/// round into a storm of routing work...
const HELD_RETRY_BATCH: usize = 50_000;

/// ...routed this many at a time, the shard's other tasks running between
/// slices (a round of 50,000 in one step held accepts for ≈ 50 ms).
const HELD_ROUTE_SLICE: usize = 2_048;

/// Most messages one tick ends for their validity (the rest wait for the
/// next tick, 50 ms later), so a mass expiry never stalls the shard.
const EXPIRE_BATCH: usize = 20_000;

/// Most messages turned cold per tick (`core::lifecycle::store::cold`):
/// 80,000 a second, above what a shard accepts, in slices of a few ms.
const COOL_BATCH: usize = 4_000;

/// The free-space check runs every this many ticks (30 s).
const DISK_CHECK_EVERY: u64 = 600;

/// Shard 0 checks free space against `wal.min-free` every this many ticks
/// (1 s).
const STORAGE_CHECK_EVERY: u64 = 20;

/// Below this share of free space the operator is alerted...
const DISK_ALERT_FREE: f64 = 0.05;

/// ...and alerted again only after it went back above this.
const DISK_REARM_FREE: f64 = 0.10;

/// Raises `disk_nearly_full` once when the data directory's file system runs
/// low; returns whether the alert is (still) raised.
fn check_disk(shard: &Shard, alerted: bool) -> bool {
    let dir = &shard.shared.config.data_dir;
    let Some(free) = rt::free_space_fraction(dir) else {
        return alerted;
    };
    if !alerted && free < DISK_ALERT_FREE {
        let detail = serde_json::json!({"data_dir": dir.display().to_string(), "free_percent": (free * 1000.0).round() / 10.0});
        shard
            .alerts
            .raise(crate::alerts::AlertEvent::DiskNearlyFull, detail);
        return true;
    }
    alerted && free < DISK_REARM_FREE
}

/// The shard's periodic work: retry held messages, expire them after the
/// hold timeout, sample sender queues, write ported-out numbers, the daily
/// digest and the disk check. (Scheduled sends and webhook retries are on
/// the timer wheel: [`crate::deadlines`].)
pub async fn tick_loop(shard: Rc<Shard>) {
    let mut ticks: u64 = 0;
    let mut seen_epoch = u64::MAX;
    let digest_at = shard.shared.config.digest_at_second;
    let mut next_digest = crate::digest::next_digest_ms(unix_ms(), digest_at);
    let mut disk_alerted = false;
    loop {
        rt::sleep(TICK).await;
        if shard.shared.is_draining() {
            return;
        }
        shard.senders.sample(&shard);
        shard.senders.flush_receipts(&shard, unix_ms());
        crate::shard::ported::flush(&shard);
        super::archive::archive(&shard);
        let now = unix_ms();
        if now >= next_digest {
            rt::spawn(crate::digest::run(shard.clone(), next_digest));
            next_digest = crate::digest::next_digest_ms(now, digest_at);
        }
        if shard.id == 0 && ticks.is_multiple_of(STORAGE_CHECK_EVERY) {
            shard.shared.check_storage();
        }
        if shard.id == 0 && ticks.is_multiple_of(DISK_CHECK_EVERY) {
            disk_alerted = check_disk(&shard, disk_alerted);
        }
        shard.feed(|c, now, fx| {
            c.lifecycle.expire_due(now, EXPIRE_BATCH, fx);
            c.dedup.expire((now / 1000) as u32);
            c.lifecycle.store.cool(now, COOL_BATCH);
        });
        let hold_ms = shard.shared.config.hold_timeout.as_millis() as i64;
        let mut retry = Vec::new();
        ticks += 1;
        if ticks.is_multiple_of(HELD_RETRY_EVERY) {
            let epoch = shard.shared.sender_epoch();
            let wake = epoch != seen_epoch;
            seen_epoch = epoch;
            let batch = HELD_RETRY_BATCH;
            shard.feed(|c, now, fx| {
                retry = c.lifecycle.expire_held(now, hold_ms, batch, wake, fx);
            });
            shard.metrics.held_retried(retry.len() as u64);
        }
        // Held again if still unroutable, with the time it started
        // waiting (the lifecycle keeps it).
        for slice in retry.chunks(HELD_ROUTE_SLICE) {
            route(&shard, slice.to_vec()).await;
            rt::yield_if_needed().await;
        }
    }
}
