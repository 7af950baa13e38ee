//! Message search for operators (SPEC §5.7, the console's message screen):
//! `GET /admin/v1/messages/{id}` (any customer's message, with its
//! timeline) and `GET /admin/v1/messages?customer=G&…` (by `src_msg_id`,
//! or the customer's history by time, status, channel and recipient, the
//! same query and cursor as the customer's `GET /v1/messages`).

use hyper::{Response, StatusCode};
use mcmp_engine::model::MessageId;
use serde_json::{json, Value};

use crate::context::ShardApi;
use crate::endpoints::messages::message_json;
use crate::endpoints::reports;
use crate::http::{self, Body};

fn with_owner(v: &mcmp_engine::core::lifecycle::store::MessageView) -> Value {
    let mut out = message_json(v);
    out["group_code"] = Value::from(v.group_code.clone());
    out["client_id"] = Value::from(v.client_id.clone());
    out
}

/// `GET /messages/{id}`.
pub(crate) async fn get(api: &ShardApi, id: &str) -> Response<Body> {
    let view = match MessageId::parse(id) {
        Some(id) => api.shard.view_any(id).await,
        None => None,
    };
    match view {
        Some(v) => http::json(StatusCode::OK, &with_owner(&v)),
        None => http::error(StatusCode::NOT_FOUND, "not_found", "no such message"),
    }
}

/// `GET /messages?customer=G[&src_msg_id=…|&since&until&status&channel&to&after&limit]`.
pub(crate) async fn search(api: &ShardApi, params: &[(String, String)]) -> Response<Body> {
    let Some(group) = http::query_param(params, "customer").filter(|g| !g.is_empty()) else {
        return http::error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "customer is required (or GET /admin/v1/messages/{id})",
        );
    };
    match http::query_param(params, "src_msg_id").filter(|s| !s.is_empty()) {
        Some(src) => {
            let found = api.shard.find_by_src_msg_id(group, src).await;
            let list: Vec<Value> = found.iter().map(with_owner).collect();
            http::json(StatusCode::OK, &json!({"messages": list, "next": null}))
        }
        None => reports::history(api, group, params).await,
    }
}
