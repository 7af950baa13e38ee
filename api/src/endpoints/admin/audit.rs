//! The audit log (SPEC §5.7): every change made through the admin API (or
//! the console, which uses it) that succeeded, with who made it, when, the
//! request, and the resource before and after, secrets masked. Kept in the
//! catalog store (durable, survives restarts; not in the shards' snapshot)
//! under `at_ms/seq` keys; `GET /admin/v1/audit?after=&limit=` pages it in
//! order.

use std::sync::atomic::{AtomicU64, Ordering};

use http_body_util::BodyExt;
use hyper::{Method, Response, StatusCode};
use mcmp_engine::catalog::{self, table};
use serde_json::{json, Value};

use super::access::Who;
use super::{customers, routes, senders};
use crate::context::ShardApi;
use crate::http::answer::{bad_request, store_error, Answer};
use crate::http::{self, Body};
use crate::time::{format_rfc3339, now_ms};

/// Most entries one page holds.
const MAX_PAGE: usize = 1000;

/// Tie-break of entries made in the same millisecond.
static SEQ: AtomicU64 = AtomicU64::new(0);

/// `value` with every secret replaced by `"***"`: the value of any key
/// naming a secret, password, token, API key or authorization.
pub(crate) fn mask(value: Value) -> Value {
    match value {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let key = k.to_ascii_lowercase();
                    let secret = [
                        "secret",
                        "password",
                        "token",
                        "authorization",
                        "api_key",
                        "apikey",
                    ]
                    .iter()
                    .any(|s| key.contains(s));
                    match (secret, v) {
                        (true, Value::Null) => (k, Value::Null),
                        (true, _) => (k, Value::from("***")),
                        (false, v) => (k, mask(v)),
                    }
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(mask).collect()),
        v => v,
    }
}

/// The JSON of an answer, and the answer rebuilt (its body read once).
async fn json_of(resp: Response<Body>) -> (Option<Value>, Response<Body>) {
    let (parts, body) = resp.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let value = serde_json::from_slice(&bytes).ok();
    (value, Response::from_parts(parts, Body::new(bytes)))
}

/// What the resource a change names looks like now (customers, senders,
/// routes and operators; `None` for the rest or when it does not exist).
pub(crate) async fn before(api: &ShardApi, method: &Method, parts: &[&str]) -> Option<Value> {
    if method == Method::GET || method == Method::HEAD {
        return None;
    }
    let answer = match parts {
        ["customers", g, ..] => customers::get_customer(api, g).await,
        ["senders", n, ..] => senders::get_sender(api, n),
        ["routes", g, c] => routes::get_route(api, g, c),
        ["operators", n] => {
            let snapshot = api.shard.snapshot();
            let o = snapshot.operators.get(*n)?;
            return Some(json!({"name": o.name, "role": o.role.as_str()}));
        }
        _ => return None,
    };
    let resp = answer.ok().filter(|r| r.status() == StatusCode::OK)?;
    json_of(resp).await.0.map(mask)
}

/// Records a change that succeeded and hands its answer back.
pub(crate) async fn record(
    api: &ShardApi,
    who: &Who,
    method: &Method,
    parts: &[&str],
    before: Option<Value>,
    resp: Response<Body>,
) -> Response<Body> {
    let change = method != Method::GET && method != Method::HEAD;
    if !change || !resp.status().is_success() {
        return resp;
    }
    let (after, resp) = json_of(resp).await;
    let at_ms = now_ms();
    let seq = SEQ.fetch_add(1, Ordering::Relaxed) % 1_000_000;
    let id = format!("{at_ms:014}-{seq:06}");
    let entry = json!({
        "id": id,
        "at": format_rfc3339(at_ms),
        "operator": who.name(),
        "role": who.role().as_str(),
        "method": method.as_str(),
        "path": format!("/admin/v1/{}", parts.join("/")),
        "status": resp.status().as_u16(),
        "before": before,
        "after": after.map(mask),
    });
    let written = api
        .shard
        .catalog_read(move |s| catalog::put(s, table::AUDIT, &id, &entry))
        .await;
    if let Err(e) = written {
        tracing::error!("audit log: {e}");
    }
    resp
}

/// `GET /audit?after=&limit=`: entries after the id `after`, oldest first,
/// at most `limit` (default and most 1,000), and the id to page on.
pub(crate) async fn list(api: &ShardApi, params: &[(String, String)]) -> Answer {
    let after = http::query_param(params, "after").unwrap_or("").to_string();
    let limit = match http::query_param(params, "limit") {
        None | Some("") => MAX_PAGE,
        Some(n) => match n.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => return Err(bad_request("limit must be 1 to 1000")),
        },
    };
    // One more than the page: whether there is a next one.
    let page: Vec<(String, Value)> = api
        .shard
        .catalog_read(move |s| catalog::scan_after(s, table::AUDIT, &after, limit + 1))
        .await
        .map_err(store_error)?;
    let next = match page.len() > limit {
        true => page.get(limit - 1).map(|(k, _)| k.clone()),
        false => None,
    };
    let entries: Vec<Value> = page.into_iter().take(limit).map(|(_, v)| v).collect();
    Ok(http::json(
        StatusCode::OK,
        &json!({ "entries": entries, "next": next }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_at_any_depth() {
        let v = json!({"client_id": "c1", "client_secret": "s3cret", "nested": [{"password": "p", "x": 1}],
                       "admin_token": null, "report_uri": "http://x"});
        assert_eq!(
            mask(v),
            json!({"client_id": "c1", "client_secret": "***", "nested": [{"password": "***", "x": 1}],
                   "admin_token": null, "report_uri": "http://x"})
        );
    }
}
