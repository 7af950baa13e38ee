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
use mcmp_engine::model::{Cursor, MessageId};
use mcmp_engine::Row;
use mcmp_engine::{ForwardError, FORWARDED};
use serde_json::{json, Value};

use crate::context::ShardApi;
use crate::endpoints::reports::row_json;
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

/// A page of this node's `rows` as `key`. With `[cluster]` it is merged
/// with the same page asked of every other node (each answers its own
/// rows with their cursors, as `_cursor`): the first `limit` of them all
/// in cursor order, and the cursor after them, which every node continues
/// from. A node that does not answer adds nothing, and is logged.
pub(crate) async fn page(
    api: &ShardApi,
    req: &Request<Incoming>,
    rows: Vec<Row>,
    (limit, key): (usize, &str),
) -> Response<Body> {
    let mut all: Vec<(Cursor, Value)> = rows.into_iter().map(|r| (r.cursor, row_json(r))).collect();
    if req.headers().contains_key(FORWARDED) {
        let items: Vec<Value> = all.into_iter().map(|(c, v)| with_cursor(c, v)).collect();
        return http::json(StatusCode::OK, &json!({ key: items }));
    }
    if api.shard.clustered() {
        all.extend(others_page(api, req, key).await);
        all.sort_by_key(|(c, _)| *c);
        all.truncate(limit);
    }
    let next = match all.len() == limit {
        true => all.last().map(|(c, _)| c.encode()),
        false => None,
    };
    let items: Vec<Value> = all.into_iter().map(|(_, v)| v).collect();
    http::json(StatusCode::OK, &json!({ key: items, "next": next }))
}

fn with_cursor(cursor: Cursor, mut item: Value) -> Value {
    if let Some(o) = item.as_object_mut() {
        o.insert("_cursor".into(), cursor.encode().into());
    }
    item
}

/// The same page (`req`'s path and query) asked of every other node.
async fn others_page(api: &ShardApi, req: &Request<Incoming>, key: &str) -> Vec<(Cursor, Value)> {
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let me = api.shard.node_id();
    let nodes: Vec<u8> = api
        .shard
        .snapshot()
        .nodes
        .keys()
        .copied()
        .filter(|n| *n != me)
        .collect();
    let mut out = Vec::new();
    for node in nodes {
        let request = (Method::GET, path, Bytes::new());
        match api
            .shard
            .forward(node, request, passed(req.headers()))
            .await
        {
            Ok(a) if a.status == 200 => {
                let v: Value = serde_json::from_slice(&a.body).unwrap_or(Value::Null);
                for mut item in v[key].as_array().cloned().unwrap_or_default() {
                    let cursor = item.as_object_mut().and_then(|o| o.remove("_cursor"));
                    if let Some(c) = cursor
                        .as_ref()
                        .and_then(Value::as_str)
                        .and_then(Cursor::parse)
                    {
                        out.push((c, item));
                    }
                }
            }
            other => tracing::warn!(node, "a page of another node was not read: {other:?}"),
        }
    }
    out
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
