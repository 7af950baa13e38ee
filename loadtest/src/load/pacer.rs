//! The open-loop pacer: slot `i` of a run is due at `start + i × interval`,
//! whatever happened to the slots before it.
//!
//! Workers take slots in order from one shared counter. A worker that takes
//! a slot whose time has passed (every connection was busy) sends at once,
//! and its latency is measured from the slot's due time, not from the late
//! send: that is the coordinated-omission correction. A load generator that
//! waits for a slow answer before sending the next request would otherwise
//! silently send less and measure only the fast requests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Hands out send slots at a fixed rate (requests per second).
#[derive(Debug)]
pub struct Pacer {
    start: Instant,
    /// Nanoseconds between two slots; 0 = closed loop (no pacing).
    interval_ns: u64,
    next: AtomicU64,
}

/// One slot: its index and when it is due.
#[derive(Debug, Clone, Copy)]
pub struct Slot {
    /// Index of the slot, from 0.
    pub index: u64,
    /// When the request should be sent.
    pub due: Instant,
}

impl Pacer {
    /// A pacer of `requests_per_sec` starting at `start`; 0.0 means closed
    /// loop (every slot is due at once).
    pub fn new(start: Instant, requests_per_sec: f64) -> Pacer {
        let interval_ns = if requests_per_sec > 0.0 {
            (1e9 / requests_per_sec).round().max(1.0) as u64
        } else {
            0
        };
        Pacer {
            start,
            interval_ns,
            next: AtomicU64::new(0),
        }
    }

    /// True when the pacer paces (open loop).
    pub fn open_loop(&self) -> bool {
        self.interval_ns > 0
    }

    /// The due time of slot `index`.
    pub fn due(&self, index: u64) -> Instant {
        let offset = u128::from(index) * u128::from(self.interval_ns);
        self.start + Duration::from_nanos(u64::try_from(offset).unwrap_or(u64::MAX))
    }

    /// Takes the next slot, or `None` when it would be due at or after
    /// `end` (the run is over). In closed loop the slot is due now.
    pub fn take(&self, end: Instant) -> Option<Slot> {
        let index = self.next.fetch_add(1, Ordering::Relaxed);
        let due = if self.open_loop() {
            self.due(index)
        } else {
            Instant::now()
        };
        (due < end).then_some(Slot { index, due })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_loop_slots_are_evenly_spaced_from_start() {
        let start = Instant::now();
        let pacer = Pacer::new(start, 100.0);
        assert!(pacer.open_loop());
        let end = start + Duration::from_secs(1);
        let slots: Vec<Slot> = std::iter::from_fn(|| pacer.take(end)).collect();
        assert_eq!(slots.len(), 100, "100/s for 1 s");
        for (i, s) in slots.iter().enumerate() {
            assert_eq!(s.index, i as u64);
            assert_eq!(s.due - start, Duration::from_millis(10 * i as u64));
        }
        assert!(pacer.take(end).is_none(), "stays over");
    }

    #[test]
    fn closed_loop_slots_are_due_now() {
        let start = Instant::now();
        let pacer = Pacer::new(start, 0.0);
        assert!(!pacer.open_loop());
        let far = start + Duration::from_secs(3600);
        let s = pacer.take(far).expect("a slot");
        assert!(s.due >= start);
        assert!(pacer.take(start).is_none(), "past the end");
    }

    #[test]
    fn fractional_rates_keep_their_average() {
        let start = Instant::now();
        let pacer = Pacer::new(start, 3.0);
        assert_eq!(pacer.due(3) - start, Duration::from_nanos(3 * 333_333_333));
    }
}

/// The latency to record for a request: from its due time in open loop
/// (coordinated-omission correction), from the actual send in closed loop.
pub fn latency(open_loop: bool, due: Instant, sent: Instant, done: Instant) -> Duration {
    let from = if open_loop { due.min(sent) } else { sent };
    done.saturating_duration_since(from)
}

#[cfg(test)]
mod omission_tests {
    use super::*;
    use crate::load::tally::Tally;

    /// One connection, a slot every 1 ms, each answer takes 0.1 ms except
    /// the first, which stalls 100 ms. The ~110 slots due during the stall
    /// and its draining wait behind it: corrected, about 11 % of the requests
    /// are slow; measured from the late send, only one is.
    fn simulate(open_loop: bool) -> Tally {
        let start = Instant::now();
        let pacer = Pacer::new(start, 1000.0);
        let end = start + Duration::from_secs(1);
        let mut free_at = start;
        let mut tally = Tally::new();
        while let Some(slot) = pacer.take(end) {
            let sent = slot.due.max(free_at);
            let service = if slot.index == 0 {
                Duration::from_millis(100)
            } else {
                Duration::from_micros(100)
            };
            let done = sent + service;
            free_at = done;
            tally.record_latency(latency(open_loop, slot.due, sent, done));
        }
        tally
    }

    #[test]
    fn a_stall_shows_in_corrected_percentiles_only() {
        let corrected = simulate(true);
        let naive = simulate(false);
        assert_eq!(corrected.latency.len(), 1000);
        assert!(corrected.quantile_ms(0.99) > 10.0, "queued slots are slow");
        assert!(corrected.quantile_ms(0.5) < 1.0, "after the stall drains");
        // Slot k of the stall waits about 100 − 0.9·k ms: p95 is near 55 ms.
        let p95 = corrected.quantile_ms(0.95);
        assert!((40.0..70.0).contains(&p95), "p95 {p95}");
        assert!(naive.quantile_ms(0.99) < 1.0, "the naive view hides it");
        assert!(naive.quantile_ms(1.0) >= 99.0, "except the stalled request");
    }
}
