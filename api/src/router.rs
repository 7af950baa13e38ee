//! The router: method + path → handler. Paths are matched segment by
//! segment; an unknown path is 404 and a known path with another method 405.

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use mcmp_engine::HttpRoute;

use crate::context::ShardApi;
use crate::endpoints::admin::customers as admin;
use crate::endpoints::messages as customer;
use crate::http::{self, Body};

/// Answers one request.
pub async fn route(api: &ShardApi, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["healthz"] => http::json(StatusCode::OK, &serde_json::json!({"status": "ok"})),
        ["readyz"] => readyz(api),
        ["oauth", "token"] if req.method() == Method::POST => customer::token(api, req).await,
        ["oauth", "token"] => http::method_not_allowed(),
        ["v1", rest @ ..] => customer::route(api, req, rest).await,
        ["admin", "v1", rest @ ..] => admin::route(api, req, rest).await,
        ["metrics"] if req.method() == Method::GET => metrics(api).await,
        ["provider", "v1", "reports", sender] if req.method() == Method::POST => {
            let sender = sender.to_string();
            provider_report(api, &sender, req).await
        }
        _ => http::not_found(),
    }
}

/// The metrics label of a request (a small fixed set).
pub fn metrics_route(method: &Method, path: &str) -> HttpRoute {
    let p = path.trim_matches('/');
    if p == "v1/messages" && method == Method::POST {
        HttpRoute::MessagesPost
    } else if p.starts_with("v1/messages") {
        HttpRoute::MessagesGet
    } else if p.starts_with("v1/reports") {
        HttpRoute::Reports
    } else if p == "oauth/token" {
        HttpRoute::Token
    } else if p.starts_with("admin/") {
        HttpRoute::Admin
    } else if p.starts_with("provider/") {
        HttpRoute::Provider
    } else if matches!(p, "healthz" | "readyz" | "metrics") {
        HttpRoute::Ops
    } else {
        HttpRoute::Other
    }
}

/// `GET /metrics`: every shard's metrics merged, Prometheus text format.
async fn metrics(api: &ShardApi) -> Response<Body> {
    let text = api.shard.render_metrics().await;
    let mut r = Response::new(Body::new(bytes::Bytes::from(text)));
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

/// Largest provider callback body.
const PROVIDER_BODY_LIMIT: u64 = 4 << 20;

/// `POST /provider/v1/reports/{sender}`: final results from an HTTP provider.
async fn provider_report(api: &ShardApi, sender: &str, req: Request<Incoming>) -> Response<Body> {
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

fn readyz(api: &ShardApi) -> Response<Body> {
    if api.state.is_ready() && !api.shard.wal_poisoned() {
        http::json(StatusCode::OK, &serde_json::json!({"status": "ready"}))
    } else {
        let why = if api.state.engine.is_draining() {
            "draining"
        } else if api.shard.wal_poisoned() {
            "wal_poisoned"
        } else {
            "starting"
        };
        http::error(StatusCode::SERVICE_UNAVAILABLE, why, "not ready")
    }
}
