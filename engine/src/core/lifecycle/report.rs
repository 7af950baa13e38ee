//! Where a message's report stands, and the retry schedule: pure data that
//! lives with the message on its owning shard.

use std::time::Duration;

use bincode::{Decode, Encode};

use crate::model::MessageId;

/// Where a message's report stands. Lives with the message on its owning shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Encode, Decode)]
pub struct ReportState {
    /// Failed delivery attempts so far.
    pub failures: u8,
    /// When the next attempt is due (unix ms).
    pub next_due_ms: i64,
    /// Delivered to the endpoint (2xx).
    pub done: bool,
    /// No more attempts (retries exhausted, or the client has no endpoint).
    pub abandoned: bool,
}

impl ReportState {
    /// Whether the report still has to be pushed.
    pub fn pending(&self) -> bool {
        !self.done && !self.abandoned
    }

    /// Given up after failed attempts: a dead letter, listed and re-driven
    /// by the operator (SPEC §5.5).
    pub fn dead_letter(&self) -> bool {
        self.abandoned && self.failures > 0
    }
}

/// The wait before attempt `n` (n = 1 for the first retry):
/// `(n² − n + 1) × unit`, i.e. 1, 3, 7, 13, 21, 31, 43, 57, 73, 91 units.
pub fn retry_delay(n: u32, unit: Duration) -> Duration {
    let n = u64::from(n.max(1));
    unit.saturating_mul((n * n - n + 1) as u32)
}

/// The id of a message's report: `R` and the message's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportId(pub MessageId);

impl std::fmt::Display for ReportId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "R{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_schedule_follows_n_squared_minus_n_plus_one() {
        let unit = Duration::from_secs(60);
        let waits: Vec<u64> = (1..=10).map(|n| retry_delay(n, unit).as_secs()).collect();
        assert_eq!(
            waits,
            vec![60, 180, 420, 780, 1260, 1860, 2580, 3420, 4380, 5460]
        );
    }
}
