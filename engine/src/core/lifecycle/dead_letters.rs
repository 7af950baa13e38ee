//! Reports that could not be delivered (SPEC §5.5): how each client's
//! reports stand on this shard, and the redrive of the abandoned ones.

use std::collections::BTreeMap;

use super::report::ReportState;
use super::Lifecycle;
use crate::core::Effects;
use crate::model::MessageId;

/// One client's undelivered reports on one shard (or, merged, on all).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientReports {
    /// Reports that failed at least once and wait for their next attempt.
    pub retrying: u64,
    /// Reports given up after the last attempt (served by polling only).
    pub abandoned: u64,
    /// The earliest next attempt of a retrying report (unix ms).
    pub next_attempt_ms: Option<i64>,
}

impl ClientReports {
    /// Adds another shard's counts.
    pub fn merge(&mut self, other: ClientReports) {
        self.retrying += other.retrying;
        self.abandoned += other.abandoned;
        self.next_attempt_ms = match (self.next_attempt_ms, other.next_attempt_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

impl Lifecycle {
    /// The undelivered reports of this shard's messages, per client.
    pub fn client_reports(&self) -> BTreeMap<String, ClientReports> {
        let mut out: BTreeMap<String, ClientReports> = BTreeMap::new();
        for m in self.store.iter().filter(|m| m.status.is_final()) {
            let r = m.report;
            let retrying = r.pending() && r.failures > 0;
            if !retrying && !r.abandoned {
                continue;
            }
            let row = out.entry(m.client_id.to_string()).or_default();
            if r.abandoned {
                row.abandoned += 1;
            } else {
                row.retrying += 1;
                let next = row
                    .next_attempt_ms
                    .map_or(r.next_due_ms, |n| n.min(r.next_due_ms));
                row.next_attempt_ms = Some(next);
            }
        }
        out
    }

    /// Gives `client_id`'s abandoned reports a fresh schedule (logged); the
    /// driver sends them now.
    pub fn redrive(&mut self, client_id: &str, fx: &mut Effects) -> Vec<MessageId> {
        let ids: Vec<MessageId> = self
            .store
            .iter()
            .filter(|m| m.report.abandoned && &*m.client_id == client_id)
            .map(|m| m.id)
            .collect();
        for id in &ids {
            self.record_report(*id, ReportState::default(), fx);
        }
        ids
    }
}
