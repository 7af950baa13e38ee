//! Any node answers for any message (SPEC §5.8): a read or cancel of a
//! message another node accepted is sent to that node (its id names it)
//! with the caller's credentials, and its answer is passed back as it is.
//! Tokens and console sessions are signed with the key the nodes share,
//! so the owner checks them as it would its own. A forwarded request is
//! marked and never forwarded again.

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use mcmp_engine::model::MessageId;
use mcmp_engine::{ForwardError, FORWARDED};

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
    relay(api, node, (req.method().clone(), path), req).await
}

/// `GET /v1/messages/{id}` of the message another node holds under a
/// `src_msg_id` this node does not know, asked of that node.
pub(crate) async fn by_id(
    api: &ShardApi,
    req: &Request<Incoming>,
    id: MessageId,
) -> Response<Body> {
    let path = format!("/v1/messages/{id}");
    relay(api, id.node(), (Method::GET, &path), req).await
}

async fn relay(
    api: &ShardApi,
    node: u8,
    request: (Method, &str),
    req: &Request<Incoming>,
) -> Response<Body> {
    let headers = PASSED
        .iter()
        .filter_map(|name| {
            let value = req.headers().get(*name)?.to_str().ok()?;
            Some((name.to_string(), value.to_string()))
        })
        .collect();
    match api.shard.forward(node, request, headers).await {
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
