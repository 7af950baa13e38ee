//! Admin: the messages rejected at accept by a policy check (SPEC §5.4,
//! the seed's PTP block list): `GET /admin/v1/blocked?customer=&code=&since=&until=&after=&limit=`,
//! in (time, id) order, for the retention period.

use hyper::StatusCode;
use mcmp_engine::codec::BlockedRecord;
use mcmp_engine::{BlockedQuery, Cursor};
use serde_json::{json, Value};

use crate::context::ShardApi;
use crate::endpoints::reports::{bad, cursor_param, limit_param, time_param};
use crate::http;
use crate::http::answer::Answer;
use crate::time::{format_rfc3339, now_ms};

/// `GET /blocked`.
pub(crate) async fn list(api: &ShardApi, params: &[(String, String)]) -> Answer {
    let retention = api.state.config.reports.retention.as_millis() as i64;
    let since = time_param(params, "since", now_ms() - retention)?;
    let until = time_param(params, "until", i64::MAX)?;
    let code = match http::query_param(params, "code") {
        None | Some("") => None,
        Some(c) => Some(
            c.parse::<u16>()
                .map_err(|_| bad("code must be a result code"))?,
        ),
    };
    let customer = http::query_param(params, "customer")
        .filter(|c| !c.is_empty())
        .map(str::to_string);
    let (limit, after) = (limit_param(params)?, cursor_param(params)?);
    let q = BlockedQuery {
        customer,
        code,
        since,
        until,
        after,
        limit,
    };
    let rows = api.shard.blocked(q).await;
    let next = match rows.len() == limit {
        true => rows.last().map(|r| {
            Cursor {
                at_ms: r.at_ms,
                id: r.id,
            }
            .encode()
        }),
        false => None,
    };
    let list: Vec<Value> = rows.iter().map(blocked_json).collect();
    Ok(http::json(
        StatusCode::OK,
        &json!({ "blocked": list, "next": next }),
    ))
}

fn blocked_json(r: &BlockedRecord) -> Value {
    json!({
        "id": r.id.to_string(),
        "at": format_rfc3339(r.at_ms),
        "group_code": r.group_code,
        "client_id": r.client_id,
        "src_msg_id": r.src_msg_id,
        "channel": r.channel.as_str(),
        "to": r.to,
        "text_hash": r.text_hash,
        "excerpt": r.excerpt,
        "code": r.code,
        "reason": r.reason,
    })
}
