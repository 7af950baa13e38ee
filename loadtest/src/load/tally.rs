//! What a run counts: messages by outcome and request latencies in an HDR
//! histogram (microseconds, 3 significant digits, 1 µs to 60 s).
//!
//! Each worker records into its own [`Tally`] behind an uncontended mutex;
//! once a second the progress task swaps every worker's tally for an empty
//! one and merges them ([`Tally::merge`]) into that second's point and into
//! the run's total, so the total is exactly the sum of the seconds.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

/// The largest latency recorded; longer ones are clamped to it.
pub const MAX_LATENCY_US: u64 = 60_000_000;

/// Counters and latencies of a stretch of a run.
#[derive(Debug, Clone)]
pub struct Tally {
    /// HTTP requests completed (answered or failed).
    pub requests: u64,
    /// Messages in those requests.
    pub sent: u64,
    /// Messages answered `accepted`.
    pub accepted: u64,
    /// Messages answered `rejected`, by result code.
    pub rejected: BTreeMap<u32, u64>,
    /// Messages in requests that got no per-message answer.
    pub error_messages: u64,
    /// Failed requests, by kind (`http 503`, `connect`, `timeout`, …).
    pub errors: BTreeMap<String, u64>,
    /// Request latency in µs, from the due time in open loop.
    pub latency: Histogram<u64>,
}

impl Default for Tally {
    fn default() -> Self {
        Tally::new()
    }
}

impl Tally {
    /// An empty tally.
    pub fn new() -> Tally {
        Tally {
            requests: 0,
            sent: 0,
            accepted: 0,
            rejected: BTreeMap::new(),
            error_messages: 0,
            errors: BTreeMap::new(),
            latency: new_histogram(),
        }
    }

    /// Records one request's latency.
    pub fn record_latency(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(MAX_LATENCY_US);
        self.latency.saturating_record(us.clamp(1, MAX_LATENCY_US));
    }

    /// Records a request that failed as a whole (its `messages` count as errors).
    pub fn record_error(&mut self, kind: &str, messages: u64) {
        self.requests += 1;
        self.sent += messages;
        self.error_messages += messages;
        *self.errors.entry(kind.to_owned()).or_default() += 1;
    }

    /// Rejected messages, all codes.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }

    /// Failed requests, all kinds.
    pub fn errors_total(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Tally) {
        self.requests += other.requests;
        self.sent += other.sent;
        self.accepted += other.accepted;
        for (code, n) in &other.rejected {
            *self.rejected.entry(*code).or_default() += n;
        }
        self.error_messages += other.error_messages;
        for (kind, n) in &other.errors {
            *self.errors.entry(kind.clone()).or_default() += n;
        }
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = self.latency.add(&other.latency);
    }

    /// The latency at `quantile` in milliseconds (0 when nothing was recorded).
    pub fn quantile_ms(&self, quantile: f64) -> f64 {
        if self.latency.is_empty() {
            return 0.0;
        }
        self.latency.value_at_quantile(quantile) as f64 / 1000.0
    }
}

/// A latency histogram with the bounds every tally uses.
pub fn new_histogram() -> Histogram<u64> {
    // NOTE: the bounds are constants and valid, so this cannot fail; fall
    // back to an auto-resizing histogram rather than unwrap.
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
        .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!("3 sigfig is valid")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_adds_counts_and_latencies() {
        let mut a = Tally::new();
        a.requests = 2;
        a.sent = 2;
        a.accepted = 1;
        a.rejected.insert(3007, 1);
        a.record_latency(Duration::from_millis(1));
        a.record_latency(Duration::from_millis(3));
        let mut b = Tally::new();
        b.record_error("http 503", 10);
        b.record_latency(Duration::from_millis(100));
        let mut total = Tally::new();
        total.merge(&a);
        total.merge(&b);
        assert_eq!(total.requests, 3);
        assert_eq!(total.sent, 12);
        assert_eq!(
            total.sent,
            total.accepted + total.rejected_total() + total.error_messages
        );
        assert_eq!(total.errors_total(), 1);
        assert_eq!(total.latency.len(), 3);
        assert!((total.quantile_ms(0.5) - 3.0).abs() < 0.01);
        assert!((total.quantile_ms(1.0) - 100.0).abs() < 0.1);
    }

    #[test]
    fn latencies_are_clamped_not_lost() {
        let mut t = Tally::new();
        t.record_latency(Duration::ZERO);
        t.record_latency(Duration::from_secs(3600));
        assert_eq!(t.latency.len(), 2);
        assert_eq!(t.latency.min(), 1);
        assert!(t.latency.max() >= MAX_LATENCY_US);
    }
}
