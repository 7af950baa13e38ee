//! Agents (SPEC §1 Agents, §2.2, §2.3): `GET /admin/v1/agents` and the
//! customer's `POST /v1/agents/heartbeat`.
//!
//! Agents come from the shards that own them
//! ([`mcmp_engine::ShardHandle::agents`], in memory: after a restart agents
//! reappear with their next heartbeat).

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use mcmp_engine::{AgentView, Heartbeat};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Claims;
use crate::config::LOST_AFTER_INTERVALS;
use crate::context::ShardApi;
use crate::http::answer::{self, Answer};
use crate::http::{self, Body};
use crate::time::{format_rfc3339, now_ms};

/// Longest `agent_id` and `version`.
const MAX_AGENT_FIELD: usize = 64;

/// `GET /admin/v1/agents`.
pub(crate) async fn agents(api: &ShardApi) -> Answer {
    let interval = api.state.config.agents.heartbeat_interval;
    let lost_after_ms = (interval * LOST_AFTER_INTERVALS).as_millis() as i64;
    let now = now_ms();
    let rows: Vec<Value> = api
        .shard
        .agents()
        .await
        .iter()
        .map(|a| agent_json(a, now - a.last.at_ms > lost_after_ms))
        .collect();
    Ok(http::json(StatusCode::OK, &json!({ "agents": rows })))
}

fn agent_json(a: &AgentView, lost: bool) -> Value {
    let h = &a.last;
    json!({
        "agent_id": h.agent_id,
        "group_code": h.group_code,
        "client_id": h.client_id,
        "version": h.version,
        "last_heartbeat": format_rfc3339(h.at_ms),
        "sent": h.sent,
        "reports_received": h.reports_received,
        "sent_per_min": round2(a.sent_per_min),
        "reports_per_min": round2(a.reports_per_min),
        "lost": lost,
    })
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The body of `POST /v1/agents/heartbeat`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeartbeatBody {
    agent_id: String,
    version: String,
    sent: u64,
    reports_received: u64,
}

/// `POST /v1/agents/heartbeat` → 204.
pub(crate) async fn agent_heartbeat(
    api: &ShardApi,
    claims: &Claims,
    req: Request<Incoming>,
) -> Response<Body> {
    let b: HeartbeatBody = match answer::body(req).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    if let Err(msg) = check_agent_fields(&b) {
        return http::error(StatusCode::BAD_REQUEST, "invalid_request", msg);
    }
    let heartbeat = Heartbeat {
        agent_id: b.agent_id,
        group_code: claims.grp.clone(),
        client_id: claims.sub.clone(),
        version: b.version,
        sent: b.sent,
        reports_received: b.reports_received,
        at_ms: now_ms(),
    };
    if api.shard.heartbeat(heartbeat).await {
        http::empty(StatusCode::NO_CONTENT)
    } else {
        http::error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_agents",
            "the agent table is full; new agents are refused until restart",
        )
    }
}

fn check_agent_fields(b: &HeartbeatBody) -> Result<(), &'static str> {
    let printable = |s: &str| s.chars().all(|c| !c.is_control());
    if b.agent_id.trim().is_empty() || b.agent_id.len() > MAX_AGENT_FIELD || !printable(&b.agent_id)
    {
        return Err("agent_id must be 1-64 printable characters");
    }
    if b.version.len() > MAX_AGENT_FIELD || !printable(&b.version) {
        return Err("version must be at most 64 printable characters");
    }
    Ok(())
}
