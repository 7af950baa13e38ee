//! Operations endpoints: `GET /healthz`, `GET /readyz`, `GET /metrics` and
//! `GET /admin/v1/stats` (live counters, SPEC §2.3).
//!
//! The numbers of the stats come from the engine: message counts from every
//! shard over the mesh ([`mcmp_engine::ShardHandle::stats`]), sender counters
//! from the senders' live state in the catalog snapshot.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use hyper::{Response, StatusCode};
use serde_json::{json, Value};

use crate::context::ShardApi;
use crate::http::answer::Answer;
use crate::http::{self, Body};

/// `GET /healthz`: the process answers.
pub(crate) fn healthz() -> Response<Body> {
    http::json(StatusCode::OK, &serde_json::json!({"status": "ok"}))
}

/// The OpenAPI 3.1 description of every route (SPEC §5.9), the repository's
/// `docs/openapi.json` built into the binary.
pub(crate) const OPENAPI: &str = include_str!("../../../docs/openapi.json");

/// `GET /openapi.json`.
pub(crate) fn openapi() -> Response<Body> {
    http::static_json(StatusCode::OK, OPENAPI)
}

/// `GET /readyz`: 200 once recovered and listening, 503 while starting,
/// draining or with a poisoned WAL.
pub(crate) fn readyz(api: &ShardApi) -> Response<Body> {
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

/// `GET /metrics`: every shard's metrics merged, Prometheus text format.
pub(crate) async fn metrics(api: &ShardApi) -> Response<Body> {
    let text = api.shard.render_metrics().await;
    let mut r = Response::new(Body::new(bytes::Bytes::from(text)));
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

/// `GET /admin/v1/stats`.
pub(crate) async fn stats(api: &ShardApi) -> Answer {
    let counts = api.shard.stats().await;
    let snapshot = api.shard.snapshot();
    let senders: BTreeMap<&String, Value> = snapshot
        .senders
        .iter()
        .map(|(name, e)| {
            let live = &e.live;
            let row = json!({
                "sent": live.sent.load(Ordering::Relaxed),
                "failed": live.failed.load(Ordering::Relaxed),
                "queued": live.queued().max(0),
                "in_flight": live.in_flight(),
                "connected": live.connected(),
            });
            (name, row)
        })
        .collect();
    Ok(http::json(
        StatusCode::OK,
        &json!({
            "messages": {
                "by_status": counts.by_status,
                "by_channel": counts.by_channel,
                "by_customer": counts.by_customer,
            },
            "senders": senders,
            "held": counts.held,
            "live_messages": counts.live,
            "wal_bytes": counts.wal_bytes,
            "memory_messages": counts.memory,
            "history_bytes": counts.history_bytes,
            "checkpoint_age_seconds": counts.checkpoint_age_secs(crate::time::now_ms()),
            "shards": api.shard.shards(),
        }),
    ))
}
