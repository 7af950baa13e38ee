//! The invariants a simulated run must keep (see the module above).

use std::collections::BTreeMap;

use super::{replay, Sim};
use crate::core::lifecycle::store::LocalMessages;
use crate::mesh::owner;
use crate::model::Status;

impl Sim {
    pub(super) fn check_replay(&self, s: usize) {
        let rebuilt = replay(&self.shards[s].wal);
        let live = &self.shards[s].core.lifecycle.store;
        // Live messages first, then cold ones: compared in id order.
        let in_order = |store: &LocalMessages| {
            let mut all: Vec<_> = store.iter().map(|m| (m.id, format!("{m:?}"))).collect();
            all.sort();
            all
        };
        let (a, b) = (in_order(live), in_order(&rebuilt));
        assert_eq!(a, b, "seed {}: replaying shard {s}'s WAL", self.seed);
    }

    pub(super) fn check(&self) {
        let seed = self.seed;
        let mut finals = 0;
        let mut stuck = 0;
        let mut charges: BTreeMap<String, i64> = BTreeMap::new();
        for (s, shard) in self.shards.iter().enumerate() {
            self.check_replay(s);
            for m in shard.core.lifecycle.store.iter() {
                // Written out here rather than through `net_charge`, so a
                // wrong refund rule fails: the price stays unless the message
                // failed without ever being submitted.
                let submitted = m.events.iter().any(|e| e.status == Status::Submitted);
                let refunded = m.status == Status::Failed && !submitted;
                let net = if refunded { 0 } else { m.price };
                *charges.entry(m.group_code.to_string()).or_insert(0) += net;
                let final_events = m.events.iter().filter(|e| e.status.is_final()).count();
                if m.status.is_final() {
                    finals += 1;
                    assert_eq!(final_events, 1, "seed {seed}: {m:?}");
                    assert!(!m.report.pending(), "seed {seed}: report pending: {m:?}");
                    let sent = self
                        .counts
                        .delivered_reports
                        .get(&m.id)
                        .copied()
                        .unwrap_or(0);
                    assert!(
                        m.report.abandoned || sent >= 1,
                        "seed {seed}: report never delivered: {m:?}"
                    );
                    if self.counts.crashes == 0 {
                        assert!(
                            sent <= 1,
                            "seed {seed}: report delivered {sent} times: {m:?}"
                        );
                    }
                } else {
                    assert_eq!(m.status, Status::Submitted, "seed {seed}: left {m:?}");
                    assert_eq!(final_events, 0, "seed {seed}: {m:?}");
                    stuck += 1;
                }
            }
        }
        assert_eq!(
            finals + stuck,
            self.counts.accepted,
            "seed {seed}: messages"
        );
        if self.counts.crashes == 0 {
            assert_eq!(
                stuck, self.counts.lost_receipts,
                "seed {seed}: only lost receipts stay"
            );
        }
        let n = self.n();
        for (group, net) in charges {
            let held = self.shards[owner::customer(&group, n)]
                .core
                .quota
                .net(&group);
            assert_eq!(held, net, "seed {seed}: {group}'s charges (refunds)");
        }
    }
}
