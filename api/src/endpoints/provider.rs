//! `POST /provider/v1/reports/{sender}`: the final results an HTTP provider
//! calls back with, for the senders of the `http` transport.

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

use crate::context::ShardApi;
use crate::http::{self, Body};

/// Largest provider callback body.
const PROVIDER_BODY_LIMIT: u64 = 4 << 20;

/// `POST /provider/v1/reports/{sender}`: final results from an HTTP provider.
pub(crate) async fn provider_report(
    api: &ShardApi,
    sender: &str,
    req: Request<Incoming>,
) -> Response<Body> {
    let snapshot = api.shard.snapshot();
    let is_http = snapshot
        .senders
        .get(sender)
        .is_some_and(|e| matches!(e.config.transport, mcmp_engine::sender::Transport::Http(_)));
    if !is_http {
        return http::error(StatusCode::NOT_FOUND, "not_found", "no such http sender");
    }
    let body = match http::read_body(req, PROVIDER_BODY_LIMIT).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let results = match mcmp_engine::sender::http::parse_provider_report(&body) {
        Ok(r) => r,
        Err(why) => return http::error(StatusCode::BAD_REQUEST, "invalid_request", &why),
    };
    for r in &results {
        if let mcmp_engine::sender::SessionEvent::Receipt {
            carrier_id,
            delivered,
            code,
            detail,
        } = mcmp_engine::sender::http::result_to_receipt(r)
        {
            api.shard
                .provider_receipt(sender, &carrier_id, delivered, code, detail);
        }
    }
    http::json(
        StatusCode::OK,
        &serde_json::json!({"accepted": results.len()}),
    )
}
