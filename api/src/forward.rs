//! Any node answers for any message (SPEC §5.8): a read or cancel of a
//! message another node accepted is sent to that node (its id names it)
//! with the caller's credentials, and its answer is passed back as it is.
//! Tokens and console sessions are signed with the key the nodes share,
//! so the owner checks them as it would its own. A forwarded request is
//! marked and never forwarded again.

use std::collections::BTreeMap;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use mcmp_engine::model::MessageId;
use mcmp_engine::{ForwardError, FORWARDED};
use serde_json::{json, Value};

use crate::context::ShardApi;
use crate::http::{self, Body};

/// The headers passed on to the owner.
const PASSED: [&str; 3] = ["authorization", "cookie", "x-csrf-token"];

/// The node that owns the message `segments` name, when it is another
/// node's and the request was not forwarded to this one already.
pub(crate) fn elsewhere(api: &ShardApi, req: &Request<Incoming>, segments: &[&str]) -> Option<u8> {
    if !api.shard.clustered() || req.headers().contains_key(FORWARDED) {
        return None;
    }
    let id = match (req.method(), segments) {
        (&Method::GET | &Method::DELETE, ["v1", "messages", id]) => id,
        (&Method::GET, ["admin", "v1", "messages", id]) => id,
        _ => return None,
    };
    let node = MessageId::parse(id)?.node();
    (node != api.shard.node_id()).then_some(node)
}

/// Sends the request to `node` and answers with what it answered.
pub(crate) async fn to(api: &ShardApi, req: &Request<Incoming>, node: u8) -> Response<Body> {
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let request = (req.method().clone(), path, Bytes::new());
    relay(api, node, request, req.headers()).await
}

/// `GET /v1/messages/{id}` of the message another node holds under a
/// `src_msg_id` this node does not know, asked of that node.
pub(crate) async fn by_id(
    api: &ShardApi,
    req: &Request<Incoming>,
    id: MessageId,
) -> Response<Body> {
    let path = format!("/v1/messages/{id}");
    relay(
        api,
        id.node(),
        (Method::GET, &path, Bytes::new()),
        req.headers(),
    )
    .await
}

/// The reports of `ids` (other nodes' messages) for `POST
/// /v1/reports/lookup`, asked of each owner: what they answered, merged
/// (a node that does not answer adds nothing, and is logged).
pub(crate) async fn lookup(api: &ShardApi, headers: &HeaderMap, ids: Vec<MessageId>) -> Vec<Value> {
    let mut by_node: BTreeMap<u8, Vec<String>> = BTreeMap::new();
    for id in ids {
        by_node.entry(id.node()).or_default().push(id.to_string());
    }
    let mut reports = Vec::new();
    for (node, ids) in by_node {
        let body = Bytes::from(json!({ "message_ids": ids }).to_string());
        let request = (Method::POST, "/v1/reports/lookup", body);
        match api.shard.forward(node, request, passed(headers)).await {
            Ok(a) if a.status == 200 => {
                let v: Value = serde_json::from_slice(&a.body).unwrap_or(Value::Null);
                reports.extend(v["reports"].as_array().cloned().unwrap_or_default());
            }
            other => tracing::warn!(node, "a lookup of another node's reports failed: {other:?}"),
        }
    }
    reports
}

/// The caller's credentials, to pass on.
fn passed(headers: &HeaderMap) -> Vec<(String, String)> {
    PASSED
        .iter()
        .filter_map(|name| {
            let value = headers.get(*name)?.to_str().ok()?;
            Some((name.to_string(), value.to_string()))
        })
        .collect()
}

async fn relay(
    api: &ShardApi,
    node: u8,
    request: (Method, &str, Bytes),
    headers: &HeaderMap,
) -> Response<Body> {
    match api.shard.forward(node, request, passed(headers)).await {
        Ok(answer) => {
            let mut r = Response::new(Body::new(Bytes::from(answer.body.to_vec())));
            *r.status_mut() =
                StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r
        }
        Err(ForwardError::UnknownNode(_)) => {
            http::error(StatusCode::NOT_FOUND, "not_found", "no such message")
        }
        Err(e @ ForwardError::NoAnswer(..)) => {
            tracing::warn!("a read forwarded to its owner failed: {e}");
            http::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "owner_unavailable",
                &format!("the node that owns this message does not answer: {e}"),
            )
        }
    }
}
