//! Reports (SPEC §1 "Lifecycle and reports", "Report delivery"; DESIGN §6).
//!
//! Every final state (delivered, failed, canceled, rejected after accept)
//! produces exactly one report, identified by `R<message_id>`. The report is
//! derived from the message's final state record; its delivery state
//! (failures so far, next due time, done) is a WAL record of the message's
//! owning shard, so a restart resumes each report at the attempt it was on.
//!
//! Delivery: the owning shard hands a report, once its final state is
//! durable, to the shard that owns the client's endpoint (hash of
//! `client_id`). That shard batches per endpoint (≤ 1,000 reports, ≤ 1 MiB,
//! ≤ [`BATCH_DELAY`] of waiting), signs the body with the client secret and
//! POSTs it; each endpoint has its own queue and sender task, so an endpoint
//! that is down holds only its own reports. The outcome goes back to the
//! owning shard, which records it and, after a failure, schedules the next
//! attempt `(n² − n + 1) × reports.retry-unit` later (n = 1…max-attempts);
//! after the last one the report is only available by polling.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::core::class_queue::ClassQueue;
use crate::core::lifecycle::events::OwnerEvent;
use crate::core::lifecycle::report::ReportId;
use crate::core::lifecycle::store::{class_of, MessageView, StoredMessage};
use crate::http_client::HttpError;
use crate::io::webhook::Posted;
use crate::mesh::msg::MeshMsg;
use crate::metrics::WebhookFailure;
use crate::model::MessageId;
use crate::rt;
use crate::shard::Shard;
use crate::time::{format_rfc3339, Rfc3339};

/// Longest a report waits for companions before its batch goes out.
pub const BATCH_DELAY: Duration = Duration::from_millis(10);

/// Most reports in one webhook request (SPEC).
pub const MAX_BATCH_REPORTS: usize = 1_000;

/// Largest webhook body (SPEC).
pub const MAX_BATCH_BYTES: usize = 1 << 20;

/// The report of a final message (SPEC §2.2 shape).
pub fn report_json(m: &MessageView) -> Value {
    serde_json::to_value(Report::of_view(m)).unwrap_or_default()
}

/// The same report's bytes, read from the stored message in place (one per
/// final message: no copy of the message, no map of fields).
pub fn report_body(m: &StoredMessage) -> Vec<u8> {
    serde_json::to_vec(&Report::of_stored(m)).unwrap_or_default()
}

/// A report's fields, borrowed; declared in key order so that it
/// serializes as the map it replaced did.
#[derive(Serialize)]
struct Report<'a> {
    accepted_at: Stamp,
    carrier: Option<&'a str>,
    channel: &'static str,
    client_id: &'a str,
    code: u16,
    done_at: Stamp,
    fallback_message_id: Option<Shown<MessageId>>,
    message_id: Shown<MessageId>,
    origin_code: Option<&'a str>,
    priority: &'static str,
    report_id: Shown<ReportId>,
    sender: Option<&'a str>,
    src_msg_id: &'a str,
    status: &'static str,
    to: &'a str,
}

impl<'a> Report<'a> {
    fn of_view(m: &'a MessageView) -> Report<'a> {
        Report {
            accepted_at: Stamp(m.created_at_ms),
            carrier: m.carrier.as_deref(),
            channel: m.channel.as_str(),
            client_id: &m.client_id,
            code: m.code,
            done_at: Stamp(m.updated_at_ms),
            fallback_message_id: m.fallback_message_id.map(Shown),
            message_id: Shown(m.id),
            origin_code: m.origin_code.as_deref(),
            priority: m.class.as_str(),
            report_id: Shown(ReportId(m.id)),
            sender: m.sender.as_deref(),
            src_msg_id: &m.src_msg_id,
            status: m.status.as_str(),
            to: &m.to,
        }
    }

    fn of_stored(m: &'a StoredMessage) -> Report<'a> {
        Report {
            accepted_at: Stamp(m.created_at_ms),
            carrier: m.carrier.as_deref(),
            channel: m.request.channel.as_str(),
            client_id: &m.client_id,
            code: m.code,
            done_at: Stamp(m.updated_at_ms),
            fallback_message_id: m.links.forward().map(Shown),
            message_id: Shown(m.id),
            origin_code: m.request.origin_code(),
            priority: class_of(&m.request).as_str(),
            report_id: Shown(ReportId(m.id)),
            sender: m.sender.as_deref(),
            src_msg_id: m.request.src_msg_id(),
            status: m.status.as_str(),
            to: m.request.to(),
        }
    }
}

/// Unix ms written as RFC 3339.
struct Stamp(i64);

impl Serialize for Stamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match Rfc3339::of(self.0) {
            Some(stamp) => s.serialize_str(stamp.as_str()),
            None => s.serialize_str(&format_rfc3339(self.0)),
        }
    }
}

/// A value written as its `Display` text (a message id in hex, a report
/// id), straight into the JSON string.
struct Shown<T>(T);

impl<T: std::fmt::Display> Serialize for Shown<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// A report on its way to its endpoint's shard.
#[derive(Debug, Clone)]
pub struct ReportItem {
    /// The message.
    pub id: MessageId,
    /// Its client (whose endpoint and secret apply).
    pub client_id: String,
    /// The report, serialized.
    pub body: Vec<u8>,
    /// Its message's class: endpoint queues serve `otp` first (SPEC §5.2).
    pub class: crate::model::Class,
}

/// The endpoints this shard owns. Shard-local.
#[derive(Default)]
pub struct Endpoints {
    map: RefCell<HashMap<String, Rc<Endpoint>>>,
    pending: Cell<usize>,
}

struct Endpoint {
    client_id: String,
    queue: RefCell<ClassQueue<ReportItem>>,
    running: Cell<bool>,
    /// Failed requests in a row (an alert goes out when it reaches
    /// [`FAILING_AFTER`], once per outage).
    failures_in_a_row: Cell<u32>,
}

/// Failed webhook requests in a row after which the operator is alerted.
pub const FAILING_AFTER: u32 = 3;

impl Endpoints {
    /// Reports waiting at this shard's endpoints.
    pub fn queued(&self) -> usize {
        self.pending.get()
    }
}

/// Queues reports at their endpoints (this shard owns them) and starts the
/// endpoints' sender tasks.
pub fn enqueue(shard: &Rc<Shard>, items: Vec<ReportItem>) {
    for item in items {
        let ep = shard
            .endpoints
            .map
            .borrow_mut()
            .entry(item.client_id.clone())
            .or_insert_with(|| {
                Rc::new(Endpoint {
                    client_id: item.client_id.clone(),
                    queue: RefCell::default(),
                    running: Cell::new(false),
                    failures_in_a_row: Cell::new(0),
                })
            })
            .clone();
        if ep.queue.borrow().len() >= shard.shared.config.endpoint_queue {
            let held_back = OwnerEvent::ReportHeldBack { id: item.id };
            shard.to_owner(item.id, held_back);
            continue;
        }
        ep.queue.borrow_mut().push(item.class, item);
        shard
            .endpoints
            .pending
            .set(shard.endpoints.pending.get() + 1);
        if !ep.running.replace(true) {
            rt::spawn(run_endpoint(shard.clone(), ep));
        }
    }
}

/// Sends an endpoint's queue in batches until it is empty.
async fn run_endpoint(shard: Rc<Shard>, ep: Rc<Endpoint>) {
    loop {
        if ep.queue.borrow().len() < MAX_BATCH_REPORTS {
            rt::sleep(BATCH_DELAY).await;
        }
        let batch = take_batch(&ep);
        if batch.is_empty() {
            ep.running.set(false);
            return;
        }
        shard
            .endpoints
            .pending
            .set(shard.endpoints.pending.get().saturating_sub(batch.len()));
        let outcome = post_batch(&shard, &ep.client_id, &batch).await;
        shard.metrics.webhook(outcome);
        let delivered = outcome.is_ok();
        let in_a_row = if delivered {
            0
        } else {
            ep.failures_in_a_row.get() + 1
        };
        ep.failures_in_a_row.set(in_a_row);
        if in_a_row == FAILING_AFTER {
            let detail = serde_json::json!({"client_id": ep.client_id, "failed_requests_in_a_row": in_a_row});
            shard
                .alerts
                .raise(crate::alerts::AlertEvent::WebhookFailing, detail);
        }
        for item in batch {
            shard.to_owner(
                item.id,
                OwnerEvent::ReportOutcome {
                    id: item.id,
                    delivered,
                },
            );
        }
    }
}

fn take_batch(ep: &Endpoint) -> Vec<ReportItem> {
    let mut queue = ep.queue.borrow_mut();
    let mut batch = Vec::new();
    let mut bytes = 16;
    while let Some(next) = queue.peek() {
        if batch.len() >= MAX_BATCH_REPORTS
            || (bytes + next.body.len() + 1 > MAX_BATCH_BYTES && !batch.is_empty())
        {
            break;
        }
        bytes += next.body.len() + 1;
        if let Some(item) = queue.pop() {
            batch.push(item);
        }
    }
    batch
}

/// Builds `{"reports":[…]}` from serialized reports.
pub fn batch_body(items: &[ReportItem]) -> Vec<u8> {
    let mut body = Vec::with_capacity(16 + items.iter().map(|i| i.body.len() + 1).sum::<usize>());
    body.extend_from_slice(b"{\"reports\":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&item.body);
    }
    body.extend_from_slice(b"]}");
    body
}

/// POSTs one signed batch; `Ok` on a 2xx within the webhook timeout.
async fn post_batch(
    shard: &Shard,
    client_id: &str,
    batch: &[ReportItem],
) -> Result<(), WebhookFailure> {
    let snapshot = shard.snapshot();
    let client = snapshot.clients.get(client_id);
    let Some(uri) = client.and_then(|c| c.report_uri.as_deref()) else {
        return Err(WebhookFailure::NoEndpoint);
    };
    let client = client.ok_or(WebhookFailure::NoEndpoint)?;
    let body = batch_body(batch);
    let config = &shard.shared.config;
    let signing = crate::io::webhook::Signing {
        legacy_key: &client.secret_key,
        keys: client.signing_keys(crate::unix_ms(), config.secret_overlap.as_millis() as i64),
    };
    let ids: Vec<String> = batch.iter().map(|r| r.id.to_string()).collect();
    let id = crate::io::webhook::webhook_id(ids.iter().map(String::as_str));
    let timeout = config.webhook_timeout;
    match crate::io::webhook::post_signed(&shard.webhooks, uri, &signing, &id, body, timeout).await
    {
        Posted::Accepted => Ok(()),
        Posted::Refused(status) => {
            tracing::debug!(client_id, status, "webhook refused");
            Err(WebhookFailure::Status)
        }
        Posted::Failed(e) => {
            tracing::debug!(client_id, "webhook failed: {e}");
            Err(match e {
                HttpError::Timeout => WebhookFailure::Timeout,
                HttpError::Connect(_) => WebhookFailure::Connect,
                HttpError::Io(_) | HttpError::TooLarge => WebhookFailure::Io,
                HttpError::InvalidUrl(_) | HttpError::InvalidHeader(_) => {
                    WebhookFailure::NoEndpoint
                }
            })
        }
    }
}

/// One shard's part of `GET /admin/v1/webhooks`.
#[derive(Debug, Default)]
pub struct WebhookShard {
    /// Undelivered reports of this shard's messages, per client.
    pub clients:
        std::collections::BTreeMap<String, crate::core::lifecycle::dead_letters::ClientReports>,
    /// The endpoints this shard owns: client → (queued, failed requests in a row).
    pub endpoints: Vec<(String, usize, u32)>,
    /// The dead letters still in this shard's memory (some may be in the
    /// history store already).
    pub dead: Vec<crate::core::lifecycle::store::Redriven>,
}

impl Endpoints {
    /// (client, reports queued, failed requests in a row) per endpoint.
    pub fn states(&self) -> Vec<(String, usize, u32)> {
        self.map
            .borrow()
            .values()
            .map(|e| {
                (
                    e.client_id.clone(),
                    e.queue.borrow().len(),
                    e.failures_in_a_row.get(),
                )
            })
            .collect()
    }
}

/// Hands a report to the shard that owns its endpoint.
pub fn dispatch(shard: &Shard, m: &StoredMessage) {
    let item = ReportItem {
        id: m.id,
        client_id: m.client_id.to_string(),
        body: report_body(m),
        class: class_of(&m.request),
    };
    let owner = crate::mesh::owner::endpoint(&item.client_id, shard.shards());
    shard.send_to(owner, MeshMsg::Report(vec![item]));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The report as the map of SPEC §2.2 built it before it was written
    /// in place.
    fn report_as_a_map(m: &MessageView) -> Value {
        serde_json::json!({
            "report_id": format!("R{}", m.id),
            "message_id": m.id.to_string(),
            "src_msg_id": m.src_msg_id,
            "client_id": m.client_id,
            "channel": m.channel.as_str(),
            "priority": m.class.as_str(),
            "to": m.to,
            "status": m.status.as_str(),
            "code": m.code,
            "carrier": m.carrier,
            "sender": m.sender,
            "accepted_at": format_rfc3339(m.created_at_ms),
            "done_at": format_rfc3339(m.updated_at_ms),
            "fallback_message_id": m.fallback_message_id.map(|i| i.to_string()),
            "origin_code": m.origin_code,
        })
    }

    #[test]
    fn a_report_has_the_bytes_of_the_map_it_was() {
        use crate::core::lifecycle::store::fixture::message;
        for full in [false, true] {
            let m = message(7, full);
            let view = MessageView::of(&m);
            let map = serde_json::to_vec(&report_as_a_map(&view)).expect("json");
            assert_eq!(report_body(&m), map, "full: {full}");
            assert_eq!(report_json(&view), report_as_a_map(&view));
        }
    }

    #[test]
    fn batch_body_joins_reports() {
        let item = |b: &str| ReportItem {
            id: MessageId(1),
            client_id: "c".into(),
            body: b.as_bytes().to_vec(),
            class: crate::model::Class::Realtime,
        };
        assert_eq!(
            batch_body(&[item("{\"a\":1}"), item("{\"b\":2}")]),
            b"{\"reports\":[{\"a\":1},{\"b\":2}]}"
        );
    }
}
