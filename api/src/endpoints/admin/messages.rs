//! Message search for operators (SPEC §5.7, the console's message screen):
//! `GET /admin/v1/messages/{id}` (any customer's message, with its
//! timeline) and `GET /admin/v1/messages?customer=G&…` (by `src_msg_id`,
//! or the customer's history by time, status, channel and recipient, the
//! same query and cursor as the customer's `GET /v1/messages`).

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use mcmp_engine::core::lifecycle::report::ReportState;
use mcmp_engine::core::lifecycle::store::MessageView;
use mcmp_engine::model::MessageId;
use serde_json::{json, Value};

use crate::context::ShardApi;
use crate::endpoints::messages::message_json;
use crate::endpoints::reports;
use crate::http::{self, Body};

fn with_owner(v: &MessageView) -> Value {
    let mut out = message_json(v);
    out["group_code"] = Value::from(v.group_code.clone());
    out["client_id"] = Value::from(v.client_id.clone());
    out
}

/// Where the message's report stands, for its timeline: `none` (the
/// message is not final yet), `pending` (not yet tried), `retrying`,
/// `delivered` or `abandoned`, with the failed attempts and the next one.
fn report_json(v: &MessageView, r: &ReportState) -> Value {
    let state = match (v.status.is_final(), r.done, r.abandoned, r.failures) {
        (false, ..) => "none",
        (_, true, _, _) => "delivered",
        (_, _, true, _) => "abandoned",
        (_, _, _, 0) => "pending",
        _ => "retrying",
    };
    let next = (state == "retrying").then(|| crate::time::format_rfc3339(r.next_due_ms));
    json!({"state": state, "failed_attempts": r.failures, "next_attempt": next})
}

/// `GET /messages/{id}`: the message, its owner and its report.
pub(crate) async fn get(api: &ShardApi, id: &str) -> Response<Body> {
    let found = match MessageId::parse(id) {
        Some(id) => api.shard.view_any(id).await,
        None => None,
    };
    match found {
        Some((v, report)) => {
            let mut out = with_owner(&v);
            out["report"] = report_json(&v, &report);
            http::json(StatusCode::OK, &out)
        }
        None => http::error(StatusCode::NOT_FOUND, "not_found", "no such message"),
    }
}

/// `GET /messages?customer=G[&src_msg_id=…|&since&until&status&channel&to&after&limit]`.
pub(crate) async fn search(
    api: &ShardApi,
    (params, req): (&[(String, String)], &Request<Incoming>),
) -> Response<Body> {
    let Some(group) = http::query_param(params, "customer").filter(|g| !g.is_empty()) else {
        return http::error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "customer is required (or GET /admin/v1/messages/{id})",
        );
    };
    match http::query_param(params, "src_msg_id").filter(|s| !s.is_empty()) {
        Some(src) => {
            let found = api.shard.find_by_src_msg_id(group, src).await;
            let list: Vec<Value> = found.iter().map(with_owner).collect();
            http::json(StatusCode::OK, &json!({"messages": list, "next": null}))
        }
        None => reports::history(api, group, (params, req)).await,
    }
}
