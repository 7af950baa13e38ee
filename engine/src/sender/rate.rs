//! A per-second rate over the last [`RATE_SECONDS`] whole seconds, counted
//! from every shard without a lock: one atomic slot per second, the
//! second's stamp in its high 32 bits and its count in the low 32. A slot
//! still stamped with an older second is restarted by the first count of
//! its new second.

use std::sync::atomic::{AtomicU64, Ordering};

/// Whole seconds a rate is averaged over.
pub const RATE_SECONDS: usize = 10;

/// Counts by second, for [`RateRing::per_second`].
#[derive(Debug, Default)]
pub struct RateRing {
    slots: [AtomicU64; RATE_SECONDS],
}

fn second(now_ms: i64) -> u64 {
    (now_ms.max(0) / 1000) as u64 & 0xFFFF_FFFF
}

impl RateRing {
    /// Counts one event at `now_ms`.
    pub fn add(&self, now_ms: i64) {
        let sec = second(now_ms);
        let slot = &self.slots[sec as usize % RATE_SECONDS];
        let mut cur = slot.load(Ordering::Relaxed);
        loop {
            let next = match cur >> 32 == sec {
                true => cur.saturating_add(1),
                false => sec << 32 | 1,
            };
            match slot.compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return,
                Err(seen) => cur = seen,
            }
        }
    }

    /// Events per second over the [`RATE_SECONDS`] whole seconds before
    /// the one `now_ms` is in.
    pub fn per_second(&self, now_ms: i64) -> f64 {
        let now = second(now_ms);
        let total: u64 = self
            .slots
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .filter(|v| {
                let age = now.wrapping_sub(v >> 32);
                (1..=RATE_SECONDS as u64).contains(&age)
            })
            .map(|v| v & 0xFFFF_FFFF)
            .sum();
        total as f64 / RATE_SECONDS as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_whole_seconds_behind_now_and_forgets_older_ones() {
        let ring = RateRing::default();
        let t0 = 1_700_000_000_000;
        for i in 0..50 {
            ring.add(t0 + i * 20); // 50 events in the first second
        }
        for i in 0..30 {
            ring.add(t0 + 1_000 + i * 30); // 30 in the next
        }
        // The second still running does not count yet.
        assert_eq!(ring.per_second(t0 + 1_500), 5.0);
        assert_eq!(ring.per_second(t0 + 2_000), 8.0);
        // Ten seconds on, the first second has left the window...
        assert_eq!(ring.per_second(t0 + 11_000), 3.0);
        // ...and its slot restarts when its second comes round again.
        ring.add(t0 + 10_000);
        assert_eq!(ring.per_second(t0 + 11_000), 3.1);
        assert_eq!(ring.per_second(t0 + 60_000), 0.0);
    }
}
