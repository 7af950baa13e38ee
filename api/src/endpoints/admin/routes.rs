//! Admin: route rules, one per customer and channel (SPEC §2.3).

use std::collections::BTreeMap;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use mcmp_engine::catalog::{self, table};
use mcmp_engine::model::Channel;
use mcmp_engine::routing::rule::{GroupRatio, RouteRule, CARRIER_KEYS};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::context::ShardApi;
use crate::http;
use crate::http::answer::{bad_request, body, deleted_or_404, not_found, store_error, Answer};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteBody {
    carriers: BTreeMap<String, Vec<GroupRatio>>,
    #[serde(default)]
    remark: Option<String>,
}

/// `PUT /routes/{group_code}/{channel}`.
pub(crate) async fn put_route(api: &ShardApi, g: &str, ch: &str, req: Request<Incoming>) -> Answer {
    let channel =
        Channel::parse(ch).ok_or_else(|| bad_request(&format!("unknown channel {ch:?}")))?;
    let b: RouteBody = body(req).await?;
    if let Some(bad) = b
        .carriers
        .keys()
        .find(|k| !CARRIER_KEYS.contains(&k.as_str()))
    {
        return Err(bad_request(&format!(
            "unknown carrier key {bad:?}; expected SKT, KT, LGT, INTL or *"
        )));
    }
    if b.carriers
        .values()
        .flatten()
        .any(|g| g.sender_group.trim().is_empty())
    {
        return Err(bad_request("sender_group must not be empty"));
    }
    let snapshot = api.shard.snapshot();
    let warnings: Vec<String> = b
        .carriers
        .values()
        .flatten()
        .filter(|gr| {
            !snapshot
                .senders
                .values()
                .any(|e| e.config.group == gr.sender_group)
        })
        .map(|gr| format!("sender group {:?} has no sender yet", gr.sender_group))
        .collect();
    let rule = RouteRule {
        route_id: RouteRule::id(g, channel),
        group_code: g.to_string(),
        channel,
        carriers: b.carriers,
        remark: b.remark,
    };
    let row = rule.clone();
    let key = format!("{g}/{channel}");
    api.shard
        .catalog_write(move |s| catalog::put(s, table::ROUTES, &key, &row))
        .await
        .map_err(store_error)?;
    let mut v = serde_json::to_value(&rule).unwrap_or(Value::Null);
    if !warnings.is_empty() {
        v["warnings"] = json!(warnings);
    }
    Ok(http::json(StatusCode::OK, &v))
}

/// `GET /routes`.
pub(crate) fn list_routes(api: &ShardApi) -> Answer {
    let snapshot = api.shard.snapshot();
    let mut routes: Vec<&RouteRule> = snapshot.routes.values().collect();
    routes.sort_by(|a, b| a.route_id.cmp(&b.route_id));
    Ok(http::json(StatusCode::OK, &json!({ "routes": routes })))
}

/// `GET /routes/{group_code}/{channel}`.
pub(crate) fn get_route(api: &ShardApi, g: &str, ch: &str) -> Answer {
    let channel =
        Channel::parse(ch).ok_or_else(|| bad_request(&format!("unknown channel {ch:?}")))?;
    let snapshot = api.shard.snapshot();
    let rule = snapshot
        .routes
        .get(&(g.to_string(), channel))
        .ok_or_else(|| not_found("route"))?;
    Ok(http::json(StatusCode::OK, rule))
}

/// `DELETE /routes/{group_code}/{channel}`.
pub(crate) async fn delete_route(api: &ShardApi, g: &str, ch: &str) -> Answer {
    let channel =
        Channel::parse(ch).ok_or_else(|| bad_request(&format!("unknown channel {ch:?}")))?;
    let key = format!("{g}/{channel}");
    let deleted = api
        .shard
        .catalog_write(move |s| Ok(s.delete(table::ROUTES, &key)?))
        .await
        .map_err(store_error)?;
    deleted_or_404(deleted, "route")
}
