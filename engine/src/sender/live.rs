//! The live state of a sender, shared by every shard (`Send + Sync`, atomics
//! only, no lock): which shards have a bound session, how much work is
//! queued and in flight, and the counters `GET /admin/v1/senders` shows.
//!
//! Each counter is written by the shard that does the work and read by any
//! shard's routing; a slightly stale read only shifts load a little.
//!
//! Health from the error rate: submissions that fail in a way worth trying
//! elsewhere (provider errors, throttling, timeouts; not a carrier's final
//! refusal) are counted against those the carrier took, in windows of
//! [`HEALTH_WINDOW_MS`]. When at least [`HEALTH_MIN_ERRORS`] failed and they
//! are at least half of the window's outcomes, the sender is sidelined for
//! [`SIDELINE_MS`]: routing skips it as if it were down, then it is tried
//! again with a fresh window.

use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, AtomicU8, Ordering};

use super::rate::RateRing;
use crate::core::receipts::{hex_value, shape, IdEvidence, IdShape, DECIMAL_AFTER};

/// Live state of one sender. Created once per sender name and kept across
/// catalog snapshots (so counters survive configuration changes).
#[derive(Debug)]
pub struct SenderLive {
    up_per_shard: Vec<AtomicU32>,
    queued_per_shard: Vec<AtomicI64>,
    /// When the oldest message queued on each shard was queued (unix ms;
    /// 0: none).
    oldest_per_shard: Vec<AtomicI64>,
    /// Submissions the carrier took, by second.
    taken_rate: RateRing,
    /// Submissions that failed (final or worth retrying), by second.
    failed_rate: RateRing,
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
    /// Start of the current health window (unix ms).
    window_start_ms: AtomicI64,
    /// Outcomes in the current window: taken by the carrier...
    window_ok: AtomicU32,
    /// ...and failed, worth retrying elsewhere.
    window_errors: AtomicU32,
    /// Routing skips the sender until then (unix ms; 0 = never sidelined).
    sidelined_until_ms: AtomicI64,
    /// Times the error rate sidelined it.
    pub sidelined: AtomicU64,
    /// What its message ids have shown ([`IdEvidence`]): a letter at
    /// submit (bit 0), a letter in a receipt (bit 1)...
    id_letters: AtomicU8,
    /// ...and ids of digits only, at submit and in receipts (counted up to
    /// [`DECIMAL_AFTER`])...
    id_digits: [AtomicU8; 2],
    /// ...and the largest id of hex digits on each side, read in hex.
    id_max: [AtomicU64; 2],
}

/// A sender's recent activity (SPEC §5.7, the console's senders screen):
/// rates over the last [`RATE_SECONDS`](super::rate::RATE_SECONDS) whole
/// seconds, all shards together.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SenderActivity {
    /// Submissions the carrier took, per second.
    pub submitted_per_second: f64,
    /// Submissions that failed (refused, or worth retrying elsewhere).
    pub failed_per_second: f64,
    /// Failed over tried (0 when nothing was tried).
    pub error_rate: f64,
    /// How long the oldest message queued at the sender has waited; none
    /// when nothing is queued.
    pub oldest_queued_age_ms: Option<i64>,
}

/// Length of an error-rate window.
pub const HEALTH_WINDOW_MS: i64 = 10_000;
/// Failures a window needs before the rate can sideline a sender.
pub const HEALTH_MIN_ERRORS: u32 = 5;
/// How long a sender with too many errors stays out of routing.
pub const SIDELINE_MS: i64 = 10_000;

impl SenderLive {
    /// Fresh state for `shards` shards.
    pub fn new(shards: usize) -> SenderLive {
        SenderLive {
            up_per_shard: (0..shards).map(|_| AtomicU32::new(0)).collect(),
            queued_per_shard: (0..shards).map(|_| AtomicI64::new(0)).collect(),
            oldest_per_shard: (0..shards).map(|_| AtomicI64::new(0)).collect(),
            taken_rate: RateRing::default(),
            failed_rate: RateRing::default(),
            pushed: AtomicU64::new(0),
            resolved: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            receipts: AtomicU64::new(0),
            downs: AtomicU64::new(0),
            last_heartbeat_ms: AtomicI64::new(0),
            window_start_ms: AtomicI64::new(0),
            window_ok: AtomicU32::new(0),
            window_errors: AtomicU32::new(0),
            sidelined_until_ms: AtomicI64::new(0),
            sidelined: AtomicU64::new(0),
            id_letters: AtomicU8::new(0),
            id_digits: [AtomicU8::new(0), AtomicU8::new(0)],
            id_max: [AtomicU64::new(0), AtomicU64::new(0)],
        }
    }

    /// Notes the shape of a message id seen in a `submit_sm_resp` or (with
    /// `receipt`) in a receipt, for the `auto` receipt-id format.
    pub fn saw_id(&self, receipt: bool, id: &str) {
        let side = usize::from(receipt);
        if let Some(value) = hex_value(id) {
            let max = &self.id_max[side];
            if max.load(Ordering::Relaxed) < value {
                max.fetch_max(value, Ordering::Relaxed);
            }
        }
        match shape(id) {
            IdShape::HexLetters => {
                let bit = 1 << side;
                if self.id_letters.load(Ordering::Relaxed) & bit == 0 {
                    self.id_letters.fetch_or(bit, Ordering::Relaxed);
                }
            }
            IdShape::Digits => {
                let count = &self.id_digits[side];
                if count.load(Ordering::Relaxed) < DECIMAL_AFTER {
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
            IdShape::Other => {}
        }
    }

    /// What the sender's message ids have shown so far.
    pub fn id_evidence(&self) -> IdEvidence {
        let letters = self.id_letters.load(Ordering::Relaxed);
        let digits = |side: usize| {
            self.id_digits[side]
                .load(Ordering::Relaxed)
                .min(DECIMAL_AFTER)
        };
        IdEvidence {
            submit_letters: letters & 1 != 0,
            submit_digits: digits(0),
            submit_max: self.id_max[0].load(Ordering::Relaxed),
            receipt_letters: letters & 2 != 0,
            receipt_digits: digits(1),
            receipt_max: self.id_max[1].load(Ordering::Relaxed),
        }
    }

    /// Counts a submission's outcome at `now_ms`: `ok` when the carrier took
    /// it, else a failure worth retrying elsewhere. Returns true when this
    /// outcome sidelined the sender.
    pub fn record_outcome(&self, ok: bool, now_ms: i64) -> bool {
        let start = self.window_start_ms.load(Ordering::Relaxed);
        if now_ms - start >= HEALTH_WINDOW_MS
            && self
                .window_start_ms
                .compare_exchange(start, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.window_ok.store(0, Ordering::Relaxed);
            self.window_errors.store(0, Ordering::Relaxed);
        }
        if ok {
            self.window_ok.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let errors = self.window_errors.fetch_add(1, Ordering::Relaxed) + 1;
        let taken = self.window_ok.load(Ordering::Relaxed);
        if errors < HEALTH_MIN_ERRORS || errors < taken || !self.healthy(now_ms) {
            return false;
        }
        self.sidelined_until_ms
            .store(now_ms + SIDELINE_MS, Ordering::Relaxed);
        // The sender comes back with a clean slate.
        self.window_start_ms
            .store(now_ms + SIDELINE_MS, Ordering::Relaxed);
        self.window_ok.store(0, Ordering::Relaxed);
        self.window_errors.store(0, Ordering::Relaxed);
        self.sidelined.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Whether routing may use the sender at `now_ms` (not sidelined by its
    /// error rate).
    pub fn healthy(&self, now_ms: i64) -> bool {
        self.sidelined_until_ms.load(Ordering::Relaxed) <= now_ms
    }

    /// [`Self::healthy`] now; reads the clock only while sidelined.
    pub fn healthy_now(&self) -> bool {
        let until = self.sidelined_until_ms.load(Ordering::Relaxed);
        if until == 0 {
            return true;
        }
        if until > crate::unix_ms() {
            return false;
        }
        let _ = self.sidelined_until_ms.compare_exchange(
            until,
            0,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        true
    }

    /// Until when the sender is sidelined, if it is at `now_ms`.
    pub fn sidelined_until(&self, now_ms: i64) -> Option<i64> {
        let until = self.sidelined_until_ms.load(Ordering::Relaxed);
        (until > now_ms).then_some(until)
    }

    /// The current window's outcomes: (taken, failed).
    pub fn window_outcomes(&self) -> (u32, u32) {
        (
            self.window_ok.load(Ordering::Relaxed),
            self.window_errors.load(Ordering::Relaxed),
        )
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

    /// Sets the queue length sampled on `shard`, and when its oldest
    /// message was queued.
    pub fn set_queued(&self, shard: usize, queued: usize, oldest_ms: Option<i64>) {
        if let Some(q) = self.queued_per_shard.get(shard) {
            q.store(queued as i64, Ordering::Relaxed);
        }
        if let Some(o) = self.oldest_per_shard.get(shard) {
            o.store(oldest_ms.unwrap_or(0), Ordering::Relaxed);
        }
    }

    /// When the oldest message queued on any shard was queued (unix ms).
    pub fn oldest_queued_ms(&self) -> Option<i64> {
        self.oldest_per_shard
            .iter()
            .map(|o| o.load(Ordering::Relaxed))
            .filter(|at| *at > 0)
            .min()
    }

    /// Counts a submission at `now_ms`: taken by the carrier or failed.
    pub fn count_submission(&self, taken: bool, now_ms: i64) {
        match taken {
            true => self.taken_rate.add(now_ms),
            false => self.failed_rate.add(now_ms),
        }
    }

    /// Its recent activity at `now_ms`, as the console shows it.
    pub fn activity(&self, now_ms: i64) -> SenderActivity {
        let taken = self.taken_rate.per_second(now_ms);
        let failed = self.failed_rate.per_second(now_ms);
        let tried = taken + failed;
        SenderActivity {
            submitted_per_second: taken,
            failed_per_second: failed,
            error_rate: if tried > 0.0 { failed / tried } else { 0.0 },
            oldest_queued_age_ms: self.oldest_queued_ms().map(|at| (now_ms - at).max(0)),
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

    /// `n` handed messages left the sender unsent (moved, canceled).
    pub fn resolved_n(&self, n: u64) {
        self.resolved.fetch_add(n, Ordering::Relaxed);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sender_failing_half_its_submissions_is_sidelined_then_returns() {
        let live = SenderLive::new(1);
        let t0 = 1_000_000;
        // 4 failures are not enough, whatever the share.
        for _ in 0..HEALTH_MIN_ERRORS - 1 {
            assert!(!live.record_outcome(false, t0));
        }
        assert!(live.healthy(t0));
        // The 5th, with no more successes than failures, sidelines it once.
        for _ in 0..HEALTH_MIN_ERRORS {
            live.record_outcome(true, t0);
        }
        assert!(live.record_outcome(false, t0 + 1));
        assert!(!live.healthy(t0 + 1));
        assert!(!live.record_outcome(false, t0 + 2), "already sidelined");
        assert_eq!(live.sidelined_until(t0 + 2), Some(t0 + 1 + SIDELINE_MS));
        assert!(live.healthy(t0 + 1 + SIDELINE_MS));
        assert_eq!(live.sidelined.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn failures_among_more_successes_or_in_old_windows_do_not_sideline() {
        let live = SenderLive::new(1);
        let t0 = 1_000_000;
        for _ in 0..30 {
            live.record_outcome(true, t0);
        }
        for _ in 0..29 {
            assert!(!live.record_outcome(false, t0));
        }
        assert!(live.healthy(t0));
        // A new window forgets the old outcomes.
        let t1 = t0 + HEALTH_WINDOW_MS;
        for _ in 0..HEALTH_MIN_ERRORS - 1 {
            assert!(!live.record_outcome(false, t1));
        }
        assert_eq!(live.window_outcomes(), (0, HEALTH_MIN_ERRORS - 1));
        assert!(live.healthy(t1));
    }

    /// A hex counter from 1, its receipts out of order: the receipt `10`
    /// (the 16th message) comes after the submits up to `1e` and the
    /// receipts `1` to `9`, before the receipt `a`. It waits (its readings
    /// differ and the relation is not known), and reads as `10` once `a`
    /// showed the receipts are hex; it never reads as `a`.
    #[test]
    fn a_hex_counters_receipt_before_its_first_letter_waits() {
        use crate::core::receipts::ReceiptIdFormat;
        let live = SenderLive::new(1);
        for n in 1..=0x1e {
            live.saw_id(false, &format!("{n:x}"));
        }
        for n in 1..=9 {
            live.saw_id(true, &n.to_string());
        }
        live.saw_id(true, "10");
        let auto = ReceiptIdFormat::Auto;
        let before = live.id_evidence();
        assert!(auto.undecided("10", before), "{before:?}");
        live.saw_id(true, "a");
        let after = live.id_evidence();
        assert!(!auto.undecided("10", after), "{after:?}");
        assert_eq!(auto.receipt_id("10", after.relation()), "10");
    }
}
