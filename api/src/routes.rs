//! The router: method + path → handler. Paths are matched segment by
//! segment; an unknown path is 404 and a known path with another method 405.

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use crate::http::{self, Body};
use crate::server::ShardApi;
use crate::{admin, customer};

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
        _ => http::not_found(),
    }
}

fn readyz(api: &ShardApi) -> Response<Body> {
    if api.state.is_ready() && !api.shard.wal.is_poisoned() {
        http::json(StatusCode::OK, &serde_json::json!({"status": "ready"}))
    } else {
        let why = if api.state.engine.is_draining() {
            "draining"
        } else if api.shard.wal.is_poisoned() {
            "wal_poisoned"
        } else {
            "starting"
        };
        http::error(StatusCode::SERVICE_UNAVAILABLE, why, "not ready")
    }
}
