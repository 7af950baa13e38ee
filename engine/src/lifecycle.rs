//! The end of a message's life, on its owning shard: the report of every
//! final state (sent once the final state is durable, retried on the
//! schedule, resumed after a restart), fallback messages for failed RCS/KKO
//! messages, and cancel.

use std::rc::Rc;

use crate::mesh::call::ask_all;

use crate::core::lifecycle::cancel::CancelDecision;
use crate::core::lifecycle::report::ReportState;
use crate::deadlines::Due;
use crate::mesh::msg::{MeshMsg, SessionMsg};
use crate::model::{MessageId, Status};
use crate::report;
use crate::shard::Shard;

/// What a cancel found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// It was scheduled or queued and is now canceled.
    Canceled,
    /// It was already submitted or final.
    NotCancelable(Status),
    /// No such message for this customer.
    NotFound,
}

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
