//! Admin: the alerts raised lately (the console's overview), `GET
//! /admin/v1/alerts?limit=`: newest first, each as the alert webhook sends
//! it (`event`, `at`, `detail` with the shard). Each shard remembers its
//! last [`mcmp_engine::RECENT_ALERTS`]; the log keeps every one.

use hyper::StatusCode;
use serde_json::{json, Value};

use crate::context::ShardApi;
use crate::http;
use crate::http::answer::{bad_request, Answer};
use crate::time::format_rfc3339;

/// Alerts listed when no `limit` is given.
const DEFAULT_LIMIT: usize = 50;

/// `GET /alerts?limit=`: at most `limit` (default 50, 1 to 1,000).
pub(crate) async fn list(api: &ShardApi, params: &[(String, String)]) -> Answer {
    let limit = match http::query_param(params, "limit") {
        None | Some("") => DEFAULT_LIMIT,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => return Err(bad_request("limit must be 1 to 1000")),
        },
    };
    let alerts: Vec<Value> = api
        .shard
        .recent_alerts(limit)
        .await
        .into_iter()
        .map(|a| json!({"event": a.event.as_str(), "at": format_rfc3339(a.at_ms), "detail": a.detail}))
        .collect();
    Ok(http::json(StatusCode::OK, &json!({ "alerts": alerts })))
}
