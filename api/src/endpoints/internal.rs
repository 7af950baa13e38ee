//! The API the nodes of a cluster call on each other (SPEC §5.8): a
//! receipt another node's bind got (the carrier sent it there after the
//! submitting node's bind went down), offered to this node: 204 when it
//! was one of this node's carrier ids (its message ends with it), 404
//! `unknown_receipt` otherwise (nothing is kept). Signed
//! with the key the nodes share: `x-mcmp-node-signature` is the hex
//! HMAC-SHA256 of the body; anything else is 401. Without `[cluster]`
//! there is no such API (404).

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use mcmp_engine::NODE_SIGNATURE;
use serde::Deserialize;

use crate::auth::constant_time_eq;
use crate::context::ShardApi;
use crate::http::{self, Body};

/// A receipt from another node.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ForeignReceipt {
    /// The receipt key (sender and carrier id), 32 hex digits.
    key: String,
    delivered: bool,
    code: u16,
}

/// `POST /internal/v1/receipts`.
pub(crate) async fn receipts(api: &ShardApi, req: Request<Incoming>) -> Response<Body> {
    if !api.shard.clustered() {
        return http::not_found();
    }
    let signature = req
        .headers()
        .get(NODE_SIGNATURE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = match http::read_body(req, 4096).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let want = api.shard.node_signature(&body).unwrap_or_default();
    if want.is_empty() || !constant_time_eq(want.as_bytes(), signature.as_bytes()) {
        return http::error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "not signed by a node of this cluster",
        );
    }
    let parsed: Result<ForeignReceipt, _> = serde_json::from_slice(&body);
    let Some((r, key)) = parsed.ok().and_then(|r| {
        let key = u128::from_str_radix(&r.key, 16)
            .ok()
            .filter(|_| r.key.len() == 32)?;
        Some((r, key))
    }) else {
        return http::error(StatusCode::BAD_REQUEST, "invalid_request", "not a receipt");
    };
    match api.shard.receipt_from_node(key, r.delivered, r.code).await {
        true => http::empty(StatusCode::NO_CONTENT),
        false => http::error(
            StatusCode::NOT_FOUND,
            "unknown_receipt",
            "no message of this node has that carrier id",
        ),
    }
}
