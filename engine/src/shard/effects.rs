//! The effects runner: the one place that turns what the core decided
//! (`crate::core::Effect`) into IO. All the records of one step go to the
//! WAL in one background append; the report of a message made final in the
//! step waits at the durability gate for that append's last LSN.

use super::Shard;
use crate::core::lifecycle::events::OwnerEvent;
use crate::core::{Effect, Effects, ShardCore};
use crate::mesh::msg::{MeshMsg, QuotaMsg, ReceiptMsg};
use crate::mesh::owner;
use crate::unix_ms;

impl Shard {
    /// One synchronous step of the core at the current time: `step` gets
    /// the core and the effects buffer; the core is released before the
    /// effects are carried out.
    pub fn feed(&self, step: impl FnOnce(&mut ShardCore, i64, &mut Effects)) {
        let mut fx = self.fx.take();
        step(&mut self.core.borrow_mut(), unix_ms(), &mut fx);
        self.run_effects(&mut fx);
        self.fx.set(fx);
    }

    /// Carries out the effects of one step, in order, leaving `fx` empty.
    pub fn run_effects(&self, fx: &mut Effects) {
        let records = fx.as_slice().iter().filter_map(|e| match e {
            Effect::Log(record) => Some(record),
            _ => None,
        });
        let lsn = match self.wal.append_all(records) {
            Ok(lsn) => lsn,
            Err(e) => {
                tracing::error!("state change not logged: {e}");
                0
            }
        };
        for effect in fx.drain() {
            match effect {
                Effect::Log(_) => {}
                Effect::Refund { group, amount } => {
                    let to = owner::customer(&group, self.shards());
                    self.send_to(to, MeshMsg::Quota(QuotaMsg::Refund { group, amount }));
                }
                Effect::BacklogBack { group, channel } => {
                    self.adjust_backlog(&group, channel, -1);
                }
                Effect::Observe(seen) => {
                    self.metrics
                        .final_state(seen.channel, seen.status, seen.code);
                    let took = std::time::Duration::from_millis(seen.took_ms);
                    self.metrics.delivery(seen.channel, took);
                }
                Effect::Fallback(id) => self.feed(|c, now, fx| {
                    c.lifecycle.fallback(now, id, || self.next_message_id(), fx)
                }),
                Effect::ReportWhenDurable(id) => self.reports.borrow_mut().wait(lsn, id),
                Effect::IndexReceipt { key, id } => {
                    let to = owner::receipt(key, self.shards());
                    self.send_to(to, MeshMsg::Receipt(ReceiptMsg::Index { key, id }));
                }
                // NOTE: through this shard's own inbox (one batched hop), so
                // routing starts after the step, as the spawned route did.
                Effect::Route(id) => self.to_owner(id, OwnerEvent::Route { id }),
                Effect::PnxWrite { number, id } => crate::shard::ported::enqueue(self, number, id),
                Effect::Schedule { at_ms, due } => self.deadlines.at(at_ms, due),
                // Only `routing::route` routes, and asks the picks itself.
                Effect::AskPick(ask) => self.picks.borrow_mut().push(ask),
                Effect::HandOver {
                    dest,
                    sender,
                    outbound,
                } => super::routing::hand_over(self, dest, sender, *outbound),
            }
        }
    }
}
