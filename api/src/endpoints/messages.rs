//! The customer's messages (SPEC §2.2): `POST /v1/messages`,
//! `GET /v1/messages/{id}`, `GET /v1/messages?src_msg_id=` and
//! `DELETE /v1/messages/{id}`.

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use mcmp_engine::codes::ResultCode;
use mcmp_engine::core::accept::{Origin, Verdict};
use mcmp_engine::core::lifecycle::cancel::CancelOutcome;
use mcmp_engine::core::lifecycle::store::MessageView;
use mcmp_engine::model::{MessageId, MessageRequest};
use mcmp_engine::{AcceptError, WalError};
use serde::Serialize;
use serde_json::{json, Value};

use crate::auth::Claims;
use crate::context::ShardApi;
use crate::http::{self, Body};
use crate::schema;
use crate::time::{format_rfc3339, now_ms};

#[derive(Serialize)]
struct ResultRow {
    src_msg_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_id: Option<String>,
    status: &'static str,
    code: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

pub(crate) async fn post_messages(
    api: &ShardApi,
    claims: &Claims,
    req: Request<Incoming>,
) -> Response<Body> {
    let params = http::parse_query(req.uri().query());
    let dry_run = matches!(http::query_param(&params, "dry_run"), Some("true" | "1"));
    if api.state.engine.is_draining() {
        return http::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "draining",
            "the server is shutting down",
        );
    }
    let body = match http::read_body(req, api.state.config.server.max_body).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let (src_ids, items) = match requests(&body) {
        Ok(parsed) => parsed,
        Err(resp) => return resp,
    };
    let items = match api.shard.resolve_files(&claims.grp, items).await {
        Ok(items) => items,
        Err(e) => return http::error(StatusCode::SERVICE_UNAVAILABLE, e.code(), &e.to_string()),
    };
    let origin = Origin {
        group_code: &claims.grp,
        client_id: &claims.sub,
    };
    let verdicts = match api.shard.accept(origin, items, dry_run).await {
        Ok(v) => v,
        Err(e) => return unavailable(e),
    };
    let results: Vec<ResultRow> = src_ids
        .into_iter()
        .zip(verdicts)
        .map(|(s, v)| result_row(s, v))
        .collect();
    // SPEC §5.3: a request whose every message hit a rate or backlog limit
    // is 429, to be tried again in a second (the TPS window).
    let limited = [ResultCode::TpsExceeded, ResultCode::BacklogFull].map(ResultCode::as_u16);
    if !results.is_empty() && results.iter().all(|r| limited.contains(&r.code)) {
        let mut resp = http::json(
            StatusCode::TOO_MANY_REQUESTS,
            &json!({ "results": results }),
        );
        let one_second = hyper::header::HeaderValue::from_static("1");
        resp.headers_mut()
            .insert(hyper::header::RETRY_AFTER, one_second);
        return resp;
    }
    http::json(StatusCode::OK, &json!({ "results": results }))
}

/// The request's messages, validated: each one's `src_msg_id`, and the
/// request or its schema rejection.
/// A request's messages on their way to accept.
type Items = Vec<Result<MessageRequest, Verdict>>;

fn requests(body: &[u8]) -> Result<(Vec<String>, Items), Response<Body>> {
    let parsed = match schema::parse_messages(body, now_ms()) {
        Ok(p) => p,
        Err(e) => return Err(http::error(StatusCode::BAD_REQUEST, e.code(), &e.message())),
    };
    let mut src_ids = Vec::with_capacity(parsed.len());
    let items = parsed
        .into_iter()
        .map(|item| match item {
            Ok(req) => {
                src_ids.push(req.src_msg_id.clone());
                Ok(req)
            }
            Err(rej) => {
                src_ids.push(rej.src_msg_id);
                Err(Verdict::Rejected {
                    code: rej.code,
                    reason: rej.reason,
                    original: None,
                })
            }
        })
        .collect();
    Ok((src_ids, items))
}

fn result_row(src_msg_id: String, verdict: Verdict) -> ResultRow {
    match verdict {
        Verdict::Accepted { id, status } => ResultRow {
            src_msg_id,
            message_id: id.map(|i| i.to_string()),
            status: status.as_str(),
            code: ResultCode::Accepted.as_u16(),
            reason: None,
        },
        Verdict::Rejected {
            code,
            reason,
            original,
        } => ResultRow {
            src_msg_id,
            message_id: original.map(|i| i.to_string()),
            status: "rejected",
            code: code.as_u16(),
            reason: Some(reason),
        },
    }
}

fn unavailable(e: AcceptError) -> Response<Body> {
    let (code, msg) =
        match e {
            AcceptError::Wal(WalError::StorageFull) => {
                ("storage_full", "the disk is full; nothing was accepted")
            }
            AcceptError::StorageLow => (
                "storage_full",
                "free space on the data disk is below wal.min-free; nothing was accepted",
            ),
            AcceptError::HistoryBehind => return retry_shortly(
                "history_behind",
                "settled messages wait for the history store; nothing was accepted, retry shortly",
            ),
            AcceptError::ClusterUnavailable => {
                return retry_shortly(
                    "cluster_unavailable",
                    "the redis cluster the nodes share does not answer, so src_msg_id cannot be \
                 checked across nodes; nothing was accepted, retry shortly",
                )
            }
            AcceptError::Wal(WalError::Poisoned) => (
                "wal_poisoned",
                "the write-ahead log failed; this shard stopped accepting",
            ),
            _ => ("unavailable", "the server is shutting down"),
        };
    http::error(StatusCode::SERVICE_UNAVAILABLE, code, msg)
}

/// 503 with `Retry-After: 1`.
fn retry_shortly(code: &str, message: &str) -> Response<Body> {
    let mut resp = http::error(StatusCode::SERVICE_UNAVAILABLE, code, message);
    let one_second = hyper::header::HeaderValue::from_static("1");
    resp.headers_mut()
        .insert(hyper::header::RETRY_AFTER, one_second);
    resp
}

pub(crate) async fn get_message(api: &ShardApi, claims: &Claims, id: &str) -> Response<Body> {
    let view = match MessageId::parse(id) {
        Some(id) => api.shard.view(id, &claims.grp).await,
        None => None,
    };
    match view {
        Some(v) => http::json(StatusCode::OK, &message_json(&v)),
        None => http::error(StatusCode::NOT_FOUND, "not_found", "no such message"),
    }
}

pub(crate) async fn get_by_src_msg_id(
    api: &ShardApi,
    claims: &Claims,
    req: &Request<Incoming>,
) -> Response<Body> {
    let params = http::parse_query(req.uri().query());
    let Some(src) = http::query_param(&params, "src_msg_id") else {
        return http::error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "src_msg_id is required",
        );
    };
    if let Some(v) = api.shard.find_by_src_msg_id(&claims.grp, src).await {
        return http::json(StatusCode::OK, &message_json(&v));
    }
    // Several nodes: another node's message, within the dedup window.
    let forwarded = req.headers().contains_key(mcmp_engine::FORWARDED);
    if api.shard.clustered() && !forwarded {
        let holder = api.shard.src_holder(&claims.grp, src).await;
        if let Some(id) = holder.filter(|id| id.node() != api.shard.node_id()) {
            return crate::forward::by_id(api, req, id).await;
        }
    }
    http::error(StatusCode::NOT_FOUND, "not_found", "no such message")
}

/// `DELETE /v1/messages/{id}`: cancel while scheduled or queued.
pub(crate) async fn cancel(api: &ShardApi, claims: &Claims, id: &str) -> Response<Body> {
    let Some(id) = MessageId::parse(id).filter(|i| api.shard.owns(*i)) else {
        return http::error(StatusCode::NOT_FOUND, "not_found", "no such message");
    };
    match api.shard.cancel(id, &claims.grp).await {
        CancelOutcome::Canceled => http::json(StatusCode::OK, &json!({"status": "canceled"})),
        CancelOutcome::NotCancelable(status) => http::error(
            StatusCode::CONFLICT,
            "not_cancelable",
            &format!(
                "the message is {} and can no longer be canceled",
                status.as_str()
            ),
        ),
        CancelOutcome::NotFound => {
            http::error(StatusCode::NOT_FOUND, "not_found", "no such message")
        }
    }
}

/// One entry of a message's `events`: a state change, or a receipt that
/// came after the message expired (`"status": "late_receipt"`, with what
/// the carrier said in `delivered` and `code`; SPEC §5.1).
fn event_json(e: &mcmp_engine::core::lifecycle::store::Event) -> Value {
    let at = format_rfc3339(e.at_ms);
    match e.late_receipt {
        false => json!({"at": at, "status": e.status.as_str(), "code": e.code}),
        true => json!({
            "at": at,
            "status": "late_receipt",
            "code": e.code,
            "delivered": e.status == mcmp_engine::model::Status::Delivered,
        }),
    }
}

/// The SPEC's message object (`GET /v1/messages/{id}`, history).
pub(crate) fn message_json(v: &MessageView) -> Value {
    let events: Vec<Value> = v.events.iter().map(event_json).collect();
    json!({
        "message_id": v.id.to_string(),
        "src_msg_id": v.src_msg_id,
        "channel": v.channel.as_str(),
        "priority": v.class.as_str(),
        "to": v.to,
        "status": v.status.as_str(),
        "code": v.code,
        "carrier": v.carrier,
        "sender": v.sender,
        "created_at": format_rfc3339(v.created_at_ms),
        "updated_at": format_rfc3339(v.updated_at_ms),
        "fallback_message_id": v.fallback_message_id.map(|i| i.to_string()),
        "fallback_of": v.fallback_of.map(|i| i.to_string()),
        "origin_code": v.origin_code,
        "events": events,
    })
}
