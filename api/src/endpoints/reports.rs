//! The customer's reading endpoints beyond one message (SPEC §2.2): message
//! history, report polling and report lookup.

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use mcmp_engine::model::{Channel, MessageId, Status};
use mcmp_engine::{Cursor, Query, Row, RowItem, SETTLE_MS};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Claims;
use crate::context::ShardApi;
use crate::http::{self, Body};
use crate::time::{now_ms, parse_rfc3339};

/// Largest page.
const MAX_LIMIT: usize = 1_000;

/// Page size when `limit` is not given.
const DEFAULT_LIMIT: usize = 100;

/// Largest lookup request body.
const LOOKUP_BODY_LIMIT: u64 = 1 << 20;

pub(crate) fn bad(msg: &str) -> Response<Body> {
    http::error(StatusCode::BAD_REQUEST, "invalid_request", msg)
}

pub(crate) fn limit_param(params: &[(String, String)]) -> Result<usize, Response<Body>> {
    match http::query_param(params, "limit") {
        None | Some("") => Ok(DEFAULT_LIMIT),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(bad("limit must be 1-1000")),
        },
    }
}

pub(crate) fn cursor_param(params: &[(String, String)]) -> Result<Option<Cursor>, Response<Body>> {
    match http::query_param(params, "after") {
        None | Some("") => Ok(None),
        Some(v) => Cursor::parse(v)
            .map(Some)
            .ok_or_else(|| bad("after is not a cursor from a previous page")),
    }
}

pub(crate) fn page(rows: Vec<Row>, limit: usize, key: &str) -> Response<Body> {
    let next = if rows.len() == limit {
        rows.last().map(|r| r.cursor.encode())
    } else {
        None
    };
    let items: Vec<Value> = rows.into_iter().map(row_json).collect();
    http::json(StatusCode::OK, &json!({ key: items, "next": next }))
}

/// The RFC 3339 time parameter `name`, or `default` when absent.
pub(crate) fn time_param(
    params: &[(String, String)],
    name: &str,
    default: i64,
) -> Result<i64, Response<Body>> {
    match http::query_param(params, name) {
        None | Some("") => Ok(default),
        Some(v) => parse_rfc3339(v).ok_or_else(|| bad(&format!("{name} must be an RFC 3339 time"))),
    }
}

/// A message row as the SPEC's message object, a report row as it is.
pub(crate) fn row_json(row: Row) -> Value {
    match row.item {
        RowItem::Gone => Value::Null,
        RowItem::Message(v) => crate::endpoints::messages::message_json(&v),
        RowItem::Report(report) => report,
        RowItem::Settled(m) => crate::endpoints::admin::export::export_json(&m),
    }
}

/// `GET /v1/messages?since=&until=&status=&channel=&to=&after=&limit=`.
pub(crate) async fn history(
    api: &ShardApi,
    group: &str,
    (params, req): (&[(String, String)], &Request<Incoming>),
) -> Response<Body> {
    let time = |name: &str, default: i64| time_param(params, name, default);
    let retention = api.state.config.reports.retention.as_millis() as i64;
    let (since, until) = match (time("since", now_ms() - retention), time("until", i64::MAX)) {
        (Ok(s), Ok(u)) => (s, u),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let status = match http::query_param(params, "status") {
        None | Some("") => None,
        Some(s) => match Status::parse(s) {
            Some(s) => Some(s),
            None => return bad("unknown status"),
        },
    };
    let channel = match http::query_param(params, "channel") {
        None | Some("") => None,
        Some(c) => match Channel::parse(c) {
            Some(c) => Some(c),
            None => return bad("unknown channel"),
        },
    };
    let to = http::query_param(params, "to")
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    let (limit, after) = match (limit_param(params), cursor_param(params)) {
        (Ok(l), Ok(a)) => (l, a),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let q = Query::History {
        group: group.to_string(),
        since,
        until,
        status,
        channel,
        to,
        after,
        limit,
    };
    let rows = api.shard.query(q).await;
    crate::forward::page(api, req, rows, (limit, "messages")).await
}

/// `GET /v1/reports?after=&limit=`: the customer's reports in order.
pub(crate) async fn poll(
    api: &ShardApi,
    claims: &Claims,
    (params, req): (&[(String, String)], &Request<Incoming>),
) -> Response<Body> {
    let (limit, after) = match (limit_param(params), cursor_param(params)) {
        (Ok(l), Ok(a)) => (l, a),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let now = now_ms();
    let retention = api.state.config.reports.retention.as_millis() as i64;
    let q = Query::Reports {
        group: claims.grp.clone(),
        after,
        before: now - SETTLE_MS,
        not_before: now - retention,
        limit,
    };
    let rows = api.shard.query(q).await;
    crate::forward::page(api, req, rows, (limit, "reports")).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LookupBody {
    message_ids: Vec<String>,
}

/// `POST /v1/reports/lookup` `{"message_ids":[…]}`.
pub(crate) async fn lookup(
    api: &ShardApi,
    claims: &Claims,
    req: Request<Incoming>,
) -> Response<Body> {
    let headers = req.headers().clone();
    let body = match http::read_body(req, LOOKUP_BODY_LIMIT).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let parsed: LookupBody = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => {
            let code = if e.to_string().contains("unknown field") {
                "unknown_field"
            } else {
                "invalid_request"
            };
            return http::error(StatusCode::BAD_REQUEST, code, &e.to_string());
        }
    };
    if parsed.message_ids.len() > MAX_LIMIT {
        return bad("at most 1000 message_ids");
    }
    let ids = parsed
        .message_ids
        .iter()
        .filter_map(|s| MessageId::parse(s));
    // Several nodes: other nodes' messages are looked up by their nodes.
    let ask_others = api.shard.clustered() && !headers.contains_key(mcmp_engine::FORWARDED);
    let (ids, theirs): (Vec<MessageId>, Vec<MessageId>) =
        ids.partition(|id| !ask_others || id.node() == api.shard.node_id());
    let rows = api
        .shard
        .query(Query::Lookup {
            group: claims.grp.clone(),
            ids,
        })
        .await;
    let mut reports: Vec<Value> = rows.into_iter().map(row_json).collect();
    if !theirs.is_empty() {
        reports.extend(crate::forward::lookup(api, &headers, theirs).await);
    }
    http::json(StatusCode::OK, &json!({ "reports": reports }))
}
