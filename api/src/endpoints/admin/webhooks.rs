//! Admin: the customers' webhooks and their dead letters (SPEC §5.5):
//! `GET /admin/v1/webhooks` lists, per client, whether its endpoint is
//! failing, the reports waiting for it, the abandoned ones and the next
//! attempt; `POST /admin/v1/webhooks/{client_id}/redrive` sends the
//! abandoned reports again on a fresh schedule.

use hyper::StatusCode;
use serde_json::{json, Value};

use crate::context::ShardApi;
use crate::http;
use crate::http::answer::{not_found, Answer};
use crate::time::format_rfc3339;

/// `GET /webhooks`: every client with an endpoint or undelivered reports.
pub(crate) async fn list(api: &ShardApi) -> Answer {
    let snapshot = api.shard.snapshot();
    let mut rows = api.shard.webhooks().await;
    for client in snapshot.clients.values().filter(|c| c.report_uri.is_some()) {
        if !rows.iter().any(|r| r.client_id == client.client_id) {
            rows.push(mcmp_engine::WebhookRow::new(client.client_id.clone()));
        }
    }
    rows.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    let list: Vec<Value> = rows
        .iter()
        .map(|r| {
            let client = snapshot.clients.get(&r.client_id);
            json!({
                "client_id": r.client_id,
                "group_code": client.map(|c| c.group_code.as_str()),
                "report_uri": client.and_then(|c| c.report_uri.as_deref()),
                "failing": r.failures_in_a_row > 0,
                "failures_in_a_row": r.failures_in_a_row,
                "backlog": r.queued + r.reports.retrying,
                "queued": r.queued,
                "retrying": r.reports.retrying,
                "abandoned": r.reports.abandoned,
                "next_attempt": r.reports.next_attempt_ms.map(format_rfc3339),
            })
        })
        .collect();
    Ok(http::json(StatusCode::OK, &json!({ "webhooks": list })))
}

/// `POST /webhooks/{client_id}/redrive`.
pub(crate) async fn redrive(api: &ShardApi, client_id: &str) -> Answer {
    if !api.shard.snapshot().clients.contains_key(client_id) {
        return Err(not_found("client"));
    }
    let n = api.shard.redrive(client_id).await;
    Ok(http::json(
        StatusCode::OK,
        &json!({"client_id": client_id, "redriven": n}),
    ))
}
