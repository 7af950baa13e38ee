//! Pacing of one session: the TPS token bucket and the reconnect jitter.
//! Shard-local (owned by the session task).

use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The per-session TPS cap. `config.tps` is for the whole sender, so each of
/// its `binds` sessions gets `tps / binds`. The burst is a tenth of a
/// second's worth (at least one), so no 1 s window sees much more than the
/// rate. Shard-local.
pub(super) struct TokenBucket {
    /// Tokens per second; 0 = no cap.
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub(super) fn new(tps: u32, binds: u32, now: Instant) -> TokenBucket {
        let rate = f64::from(tps) / f64::from(binds.max(1));
        let burst = (rate / 10.0).max(1.0);
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    pub(super) fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
    }

    pub(super) fn ready(&self) -> bool {
        self.rate == 0.0 || self.tokens >= 1.0
    }

    pub(super) fn take(&mut self, n: usize) {
        if self.rate > 0.0 {
            self.tokens -= n as f64;
        }
    }

    pub(super) fn next_token(&self, now: Instant) -> Option<Instant> {
        if self.ready() {
            return None;
        }
        Some(now + Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
    }
}

/// Up to a quarter of `delay`, derived from the clock, the session name and
/// the attempt number (no RNG crate), so binds of one sender that fail
/// together do not reconnect in lockstep.
pub(super) fn jitter(delay: Duration, name: &str, attempt: u64) -> Duration {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut hasher);
    attempt.hash(&mut hasher);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    nanos.hash(&mut hasher);
    let quarter = (delay.as_millis() / 4) as u64;
    Duration::from_millis(hasher.finish() % (quarter + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_divides_tps_by_binds_and_refills() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(100, 2, start); // 50/s, burst 5
        for _ in 0..5 {
            assert!(bucket.ready());
            bucket.take(1);
        }
        assert!(!bucket.ready());
        let next = bucket.next_token(start).expect("waits");
        assert_eq!(next - start, Duration::from_millis(20));
        bucket.refill(start + Duration::from_millis(20));
        assert!(bucket.ready());
        let unlimited = TokenBucket::new(0, 1, start);
        assert!(unlimited.ready() && unlimited.next_token(start).is_none());
    }

    #[test]
    fn jitter_stays_within_a_quarter() {
        for attempt in 0..50 {
            assert!(
                jitter(Duration::from_millis(400), "G_S_KT01", attempt)
                    <= Duration::from_millis(100)
            );
        }
    }
}
