//! After recovery, every message resumes where it was: waiting for a
//! route (held, the tick routes it), for its PNX write, for its receipt
//! (its carrier id indexed again), or for its report (sent, or its retry
//! back on the timer wheel).

use std::rc::Rc;

use super::reports::send_report;
use super::routing::hold;
use super::Shard;
use crate::core::receipts::ReceiptKey;
use crate::deadlines::Due;
use crate::mesh::msg::{MeshMsg, ReceiptMsg};
use crate::mesh::owner;
use crate::model::Status;
use crate::unix_ms;

/// After recovery: resume every non-final message where it was.
pub fn resume(shard: &Rc<Shard>) {
    let mut to_route = Vec::new();
    let mut receipts = Vec::new();
    let mut ported = Vec::new();
    {
        let messages = shard.messages();
        let snapshot = shard.snapshot();
        let now = unix_ms();
        for m in messages.iter() {
            if crate::core::lifecycle::ported::awaits_pnx(&m) {
                // The PNX write may not have happened before the restart.
                ported.push((m.request.to().to_string(), m.id));
                continue;
            }
            match m.status {
                Status::Scheduled => match m.request.send_at() {
                    Some(at) if at > now => shard.deadlines.at(at, Due::Send(m.id)),
                    _ => to_route.push(m.id),
                },
                Status::Accepted | Status::Queued => to_route.push(m.id),
                Status::Submitted => {
                    if let (Some(sender), Some(cid)) = (&m.sender, &m.carrier_msg_id) {
                        let format = snapshot
                            .senders
                            .get(&**sender)
                            .map(|e| e.config.transport.receipt_ids());
                        let id = format.unwrap_or_default().submit_id(cid);
                        receipts.push((ReceiptKey::new(sender, &id), m.id));
                    }
                }
                _ => {}
            }
        }
    }
    for (key, id) in receipts {
        shard.send_to(
            owner::receipt(key, shard.shards()),
            MeshMsg::Receipt(ReceiptMsg::Index { key, id }),
        );
    }
    for (number, id) in ported {
        crate::shard::ported::enqueue(shard, number, id);
    }
    // Held messages wait for sessions to bind; the tick retries them.
    for id in to_route {
        hold(shard, id);
    }
}

/// After recovery: every pending report continues at the attempt it was on.
pub fn resume_reports(shard: &Shard) {
    let mut now_ids = Vec::new();
    {
        let messages = shard.messages();
        for m in messages
            .iter()
            .filter(|m| m.status.is_final() && m.report.pending())
        {
            if m.report.failures == 0 {
                now_ids.push(m.id);
            } else {
                shard
                    .deadlines
                    .at(m.report.next_due_ms, Due::ReportRetry(m.id));
            }
        }
    }
    for id in now_ids {
        send_report(shard, id);
    }
}
