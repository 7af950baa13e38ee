//! Reports, the driver's side: each report leaves the durability gate once
//! its final state is durable and goes to the shard that owns its client's
//! endpoint (or is abandoned when the client has none; polling still finds
//! it). Also cancel's fan-out to the session queues.

use std::rc::Rc;

use super::Shard;
use crate::core::lifecycle::cancel::{CancelDecision, CancelOutcome};
use crate::core::lifecycle::report::ReportState;
use crate::mesh::call::ask_all;
use crate::mesh::msg::{MeshMsg, SessionMsg};
use crate::model::{MessageId, Status};
use crate::report;

/// Sends each report once its final state is durable (one task per shard).
pub async fn dispatch_loop(shard: Rc<Shard>) {
    loop {
        shard.wal.acked_moved().await;
        let ready = shard.reports.borrow_mut().ready(shard.wal.acked_lsn());
        for id in ready {
            send_report(&shard, id);
        }
    }
}

/// Hands a pending report to its endpoint's shard (or gives up when the
/// client has no endpoint: the report stays available by polling).
pub fn send_report(shard: &Shard, id: MessageId) {
    let snapshot = shard.snapshot();
    let messages = shard.messages();
    let Some(m) = messages
        .get(id)
        .filter(|m| m.status.is_final() && m.report.pending())
    else {
        return;
    };
    let has_endpoint = snapshot
        .clients
        .get(&*m.client_id)
        .is_some_and(|c| c.report_uri.is_some());
    if has_endpoint {
        report::dispatch(shard, m);
    } else {
        let mut state = m.report;
        drop(messages);
        state.abandoned = true;
        record(shard, id, state);
    }
}

fn record(shard: &Shard, id: MessageId, state: ReportState) {
    shard.feed(|core, _, fx| core.lifecycle.record_report(id, state, fx));
}

/// Cancels a message this shard owns, if still scheduled or queued: the
/// core decides; a message in a session queue is first taken out of it
/// (on whichever shard the session runs).
pub async fn cancel(shard: &Rc<Shard>, id: MessageId, group_code: &str) -> CancelOutcome {
    let mut unqueued = None;
    loop {
        let mut decision = CancelDecision::NotFound;
        shard.feed(|c, now, fx| decision = c.lifecycle.cancel(now, id, group_code, unqueued, fx));
        return match decision {
            CancelDecision::Canceled => CancelOutcome::Canceled,
            CancelDecision::NotCancelable(status) => CancelOutcome::NotCancelable(status),
            CancelDecision::NotFound => CancelOutcome::NotFound,
            CancelDecision::NeedsUnqueue(sender) if unqueued.is_none() => {
                unqueued = Some(unqueue_anywhere(shard, &sender, id).await);
                continue;
            }
            CancelDecision::NeedsUnqueue(_) => CancelOutcome::NotCancelable(Status::Queued),
        };
    }
}

/// Asks every shard to take the message out of `sender`'s session queues.
async fn unqueue_anywhere(shard: &Rc<Shard>, sender: &str, id: MessageId) -> bool {
    ask_all(shard, |reply| {
        MeshMsg::Session(SessionMsg::Unqueue {
            sender: sender.to_string(),
            id,
            reply,
        })
    })
    .await
    .into_iter()
    .any(|unqueued| unqueued == Ok(true))
}
