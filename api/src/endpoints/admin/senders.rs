//! Admin: senders with their live state, and queue moves (SPEC §2.3).

use std::sync::atomic::Ordering;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use mcmp_engine::catalog::{self, table, SenderEntry};
use mcmp_engine::routing::rule::CARRIER_KEYS;
use mcmp_engine::sender::host::SenderHost;
use mcmp_engine::sender::{SenderConfig, Transport};
use serde::Deserialize;
use serde_json::{json, Value};

use super::put_row;
use crate::context::ShardApi;
use crate::http;
use crate::http::answer::{bad_request, body, deleted_or_404, not_found, store_error, Answer};
use crate::time::format_rfc3339;

/// Largest number of binds a sender may ask for.
const MAX_BINDS: u32 = 64;

/// Checks an `http` transport: its URLs and profile.
fn validate_http(h: &mcmp_engine::sender::HttpConfig) -> Result<(), String> {
    let is_url = |u: &str| mcmp_engine::check_url(u).is_ok() && u.parse::<hyper::Uri>().is_ok();
    if !is_url(&h.url) {
        return Err("http: url must be an http:// or https:// URL".into());
    }
    if h.file_url.as_deref().is_some_and(|u| !is_url(u)) {
        return Err("http: file_url must be an http:// or https:// URL".into());
    }
    if !["kko", "rcs", "mms", "push"].contains(&h.profile.as_str()) {
        return Err("http: profile must be kko, rcs, mms or push".into());
    }
    h.check_tls()
}

/// Checks a sender configuration; the error says what to fix.
fn validate_sender(c: &SenderConfig) -> Result<(), String> {
    if c.group.trim().is_empty() {
        return Err("group must not be empty".into());
    }
    if c.channels.is_empty() {
        return Err("channels must list at least one channel".into());
    }
    if let Some(bad) = c
        .carriers
        .iter()
        .find(|k| !CARRIER_KEYS.contains(&k.as_str()))
    {
        return Err(format!(
            "unknown carrier {bad:?}; expected SKT, KT, LGT, INTL or *"
        ));
    }
    if c.carriers.is_empty() {
        return Err("carriers must list at least one carrier (or \"*\")".into());
    }
    if c.nat_cd.is_empty() || c.nat_cd.len() > 3 || !c.nat_cd.bytes().all(|b| b.is_ascii_digit()) {
        return Err("nat_cd must be a 1-3 digit country code".into());
    }
    match &c.transport {
        Transport::Smpp(s) => {
            if s.host.is_empty() || s.port == 0 {
                return Err("smpp: host and port are required".into());
            }
            if s.binds == 0 || s.binds > MAX_BINDS {
                return Err(format!("smpp: binds must be 1-{MAX_BINDS}"));
            }
            if s.window == 0 || s.response_timeout_ms == 0 || s.enquire_link_secs == 0 {
                return Err(
                    "smpp: window, response_timeout_ms and enquire_link_secs must be > 0".into(),
                );
            }
            s.check_tls()?;
        }
        Transport::Http(h) => validate_http(h)?,
        Transport::Smtp(s) => {
            if s.host.is_empty() || s.port == 0 || !s.from.contains('@') {
                return Err("smtp: host, port and a from address are required".into());
            }
        }
        Transport::Sim(s) => {
            if !(0.0..=1.0).contains(&s.success_rate) {
                return Err("sim: success_rate must be between 0.0 and 1.0".into());
            }
        }
    }
    Ok(())
}

fn parse_sender(name: &str, v: Value) -> Result<SenderConfig, hyper::Response<http::Body>> {
    let mut c: SenderConfig = serde_json::from_value(v).map_err(|e| {
        let code = if e.to_string().contains("unknown field") {
            "unknown_field"
        } else {
            "invalid_request"
        };
        http::error(StatusCode::BAD_REQUEST, code, &e.to_string())
    })?;
    c.name = name.to_string();
    validate_sender(&c).map_err(|m| bad_request(&m))?;
    Ok(c)
}

/// A sender's TLS files load (read on the blocking pool), so a wrong path
/// is a 400 now rather than a session that never comes up.
async fn check_tls_files(
    api: &ShardApi,
    c: &SenderConfig,
) -> Result<(), hyper::Response<http::Body>> {
    let extra_ca = api.state.config.tls.extra_ca.as_deref();
    let (kind, spec) = match &c.transport {
        Transport::Smpp(s) => ("smpp", s.tls_spec(extra_ca)),
        Transport::Http(h) => ("http", h.tls_spec(extra_ca)),
        _ => return Ok(()),
    };
    let Some(spec) = spec else {
        return Ok(());
    };
    mcmp_engine::rt::blocking(move || mcmp_engine::rt::ClientTls::build(&spec).map(|_| ()))
        .await
        .map_err(|e| bad_request(&format!("{kind}: {e}")))
}

/// `PUT /senders/{name}`.
pub(crate) async fn put_sender(api: &ShardApi, name: &str, req: Request<Incoming>) -> Answer {
    if name.is_empty() || name.len() > 64 || name.contains('/') {
        return Err(bad_request(
            "sender name must be 1-64 characters without '/'",
        ));
    }
    let v: Value = body(req).await?;
    let config = parse_sender(name, v)?;
    check_tls_files(api, &config).await?;
    let status = put_row(api, table::SENDERS, config.name.clone(), config.clone()).await?;
    Ok(http::json(status, &config))
}

/// `PATCH /senders/{name}`: the given fields replace the stored ones.
pub(crate) async fn patch_sender(api: &ShardApi, name: &str, req: Request<Incoming>) -> Answer {
    let patch: serde_json::Map<String, Value> = body(req).await?;
    let snapshot = api.shard.snapshot();
    let entry = snapshot
        .senders
        .get(name)
        .ok_or_else(|| not_found("sender"))?;
    let mut v = serde_json::to_value(&entry.config).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.extend(patch);
    }
    let config = parse_sender(name, v)?;
    check_tls_files(api, &config).await?;
    let row = config.clone();
    api.shard
        .catalog_write(move |s| catalog::put(s, table::SENDERS, &row.name, &row))
        .await
        .map_err(store_error)?;
    Ok(http::json(StatusCode::OK, &config))
}

/// A sender's configuration plus live state.
fn sender_json(e: &SenderEntry, shards: usize) -> Value {
    let live = &e.live;
    let heartbeat = live.last_heartbeat_ms.load(Ordering::Relaxed);
    let sidelined_until = live.sidelined_until(mcmp_engine::unix_ms());
    let (window_ok, window_errors) = live.window_outcomes();
    // SPEC §5.5: no secret in an admin answer after creation (passwords,
    // header tokens).
    let mut v = super::audit::mask(serde_json::to_value(&e.config).unwrap_or(Value::Null));
    v["state"] = json!({
        "connected": live.connected() > 0,
        "sessions_up": live.connected(),
        "sessions": SenderHost::total_sessions(&e.config.name, &e.config.transport, shards),
        "queued": live.queued(),
        "in_flight": live.in_flight(),
        "sent": live.sent.load(Ordering::Relaxed),
        "failed": live.failed.load(Ordering::Relaxed),
        "receipts": live.receipts.load(Ordering::Relaxed),
        "downs": live.downs.load(Ordering::Relaxed),
        "last_heartbeat": (heartbeat > 0).then(|| format_rfc3339(heartbeat)),
        "healthy": sidelined_until.is_none(),
        "sidelined_until": sidelined_until.map(format_rfc3339),
        "sidelined": live.sidelined.load(Ordering::Relaxed),
        "recent_submitted": window_ok,
        "recent_errors": window_errors,
    });
    if let (Value::Object(state), Ok(Value::Object(activity))) = (
        &mut v["state"],
        serde_json::to_value(live.activity(mcmp_engine::unix_ms())),
    ) {
        state.extend(activity);
    }
    v
}

/// `GET /senders`.
pub(crate) fn list_senders(api: &ShardApi) -> Answer {
    let snapshot = api.shard.snapshot();
    let shards = api.shard.shards();
    let senders: Vec<Value> = snapshot
        .senders
        .values()
        .map(|e| sender_json(e, shards))
        .collect();
    Ok(http::json(StatusCode::OK, &json!({ "senders": senders })))
}

/// `GET /senders/{name}`.
pub(crate) fn get_sender(api: &ShardApi, name: &str) -> Answer {
    let snapshot = api.shard.snapshot();
    let e = snapshot
        .senders
        .get(name)
        .ok_or_else(|| not_found("sender"))?;
    Ok(http::json(
        StatusCode::OK,
        &sender_json(e, api.shard.shards()),
    ))
}

/// `DELETE /senders/{name}`: its sessions stop and their queues go back to
/// routing, which moves them to the group's other senders.
pub(crate) async fn delete_sender(api: &ShardApi, name: &str) -> Answer {
    let n = name.to_string();
    let deleted = api
        .shard
        .catalog_write(move |s| Ok(s.delete(table::SENDERS, &n)?))
        .await
        .map_err(store_error)?;
    deleted_or_404(deleted, "sender")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MoveBody {
    to: Option<String>,
}

/// `POST /senders/{name}/queue/move` `{"to": "OTHER"}`.
pub(crate) async fn move_queue(api: &ShardApi, name: &str, req: Request<Incoming>) -> Answer {
    let b: MoveBody = body(req).await?;
    let snapshot = api.shard.snapshot();
    if !snapshot.senders.contains_key(name) {
        return Err(not_found("sender"));
    }
    if let Some(to) = &b.to {
        if to == name || !snapshot.senders.contains_key(to) {
            return Err(bad_request("\"to\" must name another existing sender"));
        }
    }
    let moved = api.shard.drain_sender(name, b.to.as_deref()).await;
    Ok(http::json(
        StatusCode::OK,
        &json!({"from": name, "to": b.to, "moved": moved}),
    ))
}
