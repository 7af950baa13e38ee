//! Admin: the final messages of a period for billing and analytics (SPEC
//! §5.4), `GET /admin/v1/export?since=&until=&customer=&after=&limit=`,
//! in (final time, id) order, one page at a time; `mcmp export` pages
//! through it and writes JSON lines or CSV.

use mcmp_engine::core::lifecycle::store::SettledMessage;
use mcmp_engine::Query;
use serde_json::{json, Value};

use crate::context::ShardApi;
use crate::endpoints::reports::{cursor_param, limit_param, page, time_param};
use crate::http;
use crate::http::answer::Answer;
use crate::time::{format_rfc3339, now_ms};

/// `GET /export`.
pub(crate) async fn list(api: &ShardApi, params: &[(String, String)]) -> Answer {
    let retention = api.state.config.reports.retention.as_millis() as i64;
    let since = time_param(params, "since", now_ms() - retention)?;
    let until = time_param(params, "until", now_ms())?;
    let group = http::query_param(params, "customer")
        .filter(|c| !c.is_empty())
        .map(str::to_string);
    let (limit, after) = (limit_param(params)?, cursor_param(params)?);
    let q = Query::Export {
        group,
        since,
        until,
        after,
        limit,
    };
    Ok(page(api.shard.query(q).await, limit, "messages"))
}

/// One export row (the fields of [`crate::export::COLUMNS`]).
pub(crate) fn export_json(m: &SettledMessage) -> Value {
    let v = &m.view;
    json!({
        "message_id": v.id.to_string(),
        "src_msg_id": v.src_msg_id,
        "group_code": v.group_code,
        "client_id": v.client_id,
        "channel": v.channel.as_str(),
        "class": v.class.as_str(),
        "carrier": v.carrier,
        "sender": v.sender,
        "status": v.status.as_str(),
        "code": v.code,
        "parts": v.parts,
        "price": m.price,
        "accepted_at": format_rfc3339(v.created_at_ms),
        "done_at": format_rfc3339(v.updated_at_ms),
        "origin_code": v.origin_code,
    })
}
