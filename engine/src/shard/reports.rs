//! Reports, the driver's side: each report leaves the durability gate once
//! its final state is durable and goes to the shard that owns its client's
//! endpoint (or is abandoned when the client has none; polling still finds
//! it). Also cancel's fan-out to the session queues.

use std::rc::Rc;

use super::Shard;
use crate::codec::RevivedRecord;
use crate::core::lifecycle::cancel::{CancelDecision, CancelOutcome};
use crate::core::lifecycle::dead_letters::{revived, ClientReports};
use crate::core::lifecycle::report::ReportState;
use crate::core::lifecycle::store::Redriven;
use crate::mesh::call::ask_all;
use crate::mesh::msg::{MeshMsg, MessagesMsg, SessionMsg};
use crate::model::{MessageId, Status};
use crate::report;
use crate::report::WebhookShard;
use std::collections::BTreeMap;

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
        report::dispatch(shard, &m);
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

/// This shard's part of `GET /admin/v1/webhooks`.
pub fn webhooks_local(shard: &Shard) -> WebhookShard {
    WebhookShard {
        clients: shard.core.borrow().lifecycle.client_reports(),
        endpoints: shard.endpoints.states(),
        dead: shard.core.borrow().lifecycle.dead_letters(),
    }
}

/// Every shard's part, merged per client.
pub async fn webhooks(shard: &Rc<Shard>) -> Vec<WebhookRow> {
    let parts = ask_all(shard, |reply| {
        MeshMsg::Messages(MessagesMsg::Webhooks { reply })
    })
    .await;
    let mut parts: Vec<WebhookShard> = parts.into_iter().flatten().collect();
    let dead: Vec<Redriven> = parts.iter_mut().flat_map(|p| p.dead.drain(..)).collect();
    let now = crate::unix_ms();
    let read = move |s: &crate::history::store::Store| s.dead_letter_counts(now, &dead);
    let abandoned = shard.shared.history.read(read).await.unwrap_or_default();
    let mut rows: BTreeMap<String, WebhookRow> = BTreeMap::new();
    for (client, n) in abandoned {
        let row = rows
            .entry(client.clone())
            .or_insert_with(|| WebhookRow::new(client));
        row.reports.abandoned += n;
    }
    for part in parts {
        for (client, counts) in part.clients {
            let row = rows
                .entry(client.clone())
                .or_insert_with(|| WebhookRow::new(client));
            row.reports.merge(counts);
        }
        for (client, queued, failures) in part.endpoints {
            let row = rows
                .entry(client.clone())
                .or_insert_with(|| WebhookRow::new(client));
            row.queued += queued as u64;
            row.failures_in_a_row = row.failures_in_a_row.max(failures);
        }
    }
    rows.into_values().collect()
}

/// One client's webhook, as `GET /admin/v1/webhooks` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRow {
    /// The client.
    pub client_id: String,
    /// Its undelivered reports.
    pub reports: ClientReports,
    /// Reports queued at its endpoint now.
    pub queued: u64,
    /// Failed requests in a row at its endpoint.
    pub failures_in_a_row: u32,
}

impl WebhookRow {
    /// A client with nothing undelivered and an idle endpoint.
    pub fn new(client_id: String) -> WebhookRow {
        WebhookRow {
            client_id,
            reports: ClientReports::default(),
            queued: 0,
            failures_in_a_row: 0,
        }
    }
}

/// Gives this shard's abandoned reports of `client_id` a fresh schedule
/// (those in memory, and `archived`, read from the history store) and
/// sends them; how many.
pub fn redrive_local(shard: &Shard, client_id: &str, archived: Vec<RevivedRecord>) -> usize {
    let mut ids = Vec::new();
    shard.feed(|c, _, fx| ids = c.lifecycle.redrive(client_id, archived, fx));
    for id in &ids {
        send_report(shard, *id);
    }
    ids.len()
}

/// Most dead letters one redrive brings back from the history store (the
/// answer says how many; the operator asks again for more).
pub const REDRIVE_MAX: usize = 100_000;

/// Sends `client_id`'s abandoned reports again, on every shard: those
/// still in memory and up to [`REDRIVE_MAX`] from the history store.
pub async fn redrive(shard: &Rc<Shard>, client_id: &str) -> usize {
    let now = crate::unix_ms();
    let client = client_id.to_string();
    let read = move |s: &crate::history::store::Store| s.dead_letters(&client, REDRIVE_MAX, now);
    let dead = shard.shared.history.read(read).await.unwrap_or_default();
    let mut by_shard: Vec<Vec<RevivedRecord>> = vec![Vec::new(); shard.shards()];
    for m in dead {
        if let Some(list) = by_shard.get_mut(m.view.id.shard()) {
            list.push(revived(m));
        }
    }
    let mut by_shard = by_shard.into_iter();
    ask_all(shard, |reply| {
        MeshMsg::Messages(MessagesMsg::Redrive {
            client_id: client_id.to_string(),
            archived: by_shard.next().unwrap_or_default(),
            reply,
        })
    })
    .await
    .into_iter()
    .map(|n| n.unwrap_or(0))
    .sum()
}
