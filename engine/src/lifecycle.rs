//! The end of a message's life, on its owning shard: the report of every
//! final state (sent once the final state is durable, retried on the
//! schedule, resumed after a restart), fallback messages for failed RCS/KKO
//! messages, and cancel.

use std::rc::Rc;

use crate::mesh::call::ask_all;

use crate::codec::{AcceptedRecord, LinkRecord, Record};
use crate::codes::ResultCode;
use crate::core::lifecycle::report::ReportState;
use crate::deadlines::Due;
use crate::mesh::msg::{MeshMsg, SessionMsg};
use crate::model::{Channel, MessageId, Status};
use crate::report;
use crate::shard::Shard;
use crate::{pipeline, unix_ms};

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

/// Creates the next message of a failed RCS/KKO message's fallback chain.
pub fn maybe_fallback(shard: &Shard, id: MessageId) {
    let (rec, link) = {
        let messages = shard.messages();
        let Some(m) = messages.get(id) else { return };
        if !matches!(m.request.channel, Channel::Rcs | Channel::Kko)
            || m.fallback_message_id.is_some()
        {
            return;
        }
        let Some(step) = m.request.fallback.first() else {
            return;
        };
        let mut request = m.request.clone();
        request.channel = step.channel;
        request.text = step.text.clone();
        request.subject = step.subject.clone();
        request.template_code = step.template_code.clone();
        request.fallback = m.request.fallback[1..].to_vec();
        request.src_msg_id = format!(
            "{}#fallback{}",
            m.request.src_msg_id,
            fallback_depth(m.request.fallback.len())
        );
        request.send_at = None;
        request.attachments = Vec::new();
        request.parts = 1;
        let new_id = shard.next_message_id();
        let rec = AcceptedRecord {
            id: new_id,
            group_code: m.group_code.to_string(),
            client_id: m.client_id.to_string(),
            created_at_ms: unix_ms(),
            status: Status::Accepted,
            price: 0,
            fallback_of: Some(id),
            request,
        };
        (
            rec,
            LinkRecord {
                id,
                fallback_message_id: new_id,
            },
        )
    };
    let new_id = rec.id;
    let records = [Record::Accepted(rec.clone()), Record::Link(link.clone())];
    if let Err(e) = shard.wal.append_background(&records) {
        tracing::error!(%id, "fallback not created: {e}");
        return;
    }
    {
        let mut messages = shard.messages_mut();
        messages.apply_accepted(rec);
        messages.apply_link(&link);
    }
    tracing::debug!(%id, fallback = %new_id, "fallback message created");
    shard.send_to(
        shard.id,
        MeshMsg::Owner(crate::core::lifecycle::events::OwnerEvent::Route { id: new_id }),
    );
}

/// A short suffix that stays unique along one chain.
fn fallback_depth(remaining: usize) -> usize {
    10 - remaining.min(9)
}

/// Cancels a message this shard owns, if still scheduled or queued.
pub async fn cancel(shard: &Rc<Shard>, id: MessageId, group_code: &str) -> CancelOutcome {
    let found = {
        let messages = shard.messages();
        messages
            .get(id)
            .filter(|m| &*m.group_code == group_code)
            .map(|m| (m.status, m.sender.clone()))
    };
    let Some((status, sender)) = found else {
        return CancelOutcome::NotFound;
    };
    let cancelable = match status {
        Status::Accepted | Status::Scheduled => true,
        Status::Queued if shard.core.borrow().lifecycle.held.contains(id) => true,
        Status::Queued => match sender {
            Some(sender) => unqueue_anywhere(shard, &sender, id).await,
            None => false,
        },
        _ => false,
    };
    // The state may have moved while the session queues were asked.
    let now_status = shard.messages().get(id).map(|m| m.status);
    if !cancelable || now_status.is_none_or(|s| s.is_final() || s == Status::Submitted) {
        return CancelOutcome::NotCancelable(now_status.unwrap_or(status));
    }
    shard.core.borrow_mut().lifecycle.held.remove(id);
    pipeline::change_state(
        shard,
        id,
        Status::Canceled,
        ResultCode::Canceled.as_u16(),
        None,
        None,
        None,
    );
    CancelOutcome::Canceled
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
