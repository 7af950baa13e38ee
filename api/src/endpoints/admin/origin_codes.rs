//! Admin: a reseller's origin codes (SPEC §5.11), the businesses it sends
//! for. `PUT`/`DELETE /customers/{g}/origin-codes/{code}`, `GET
//! /customers/{g}/origin-codes`. Stored in the catalog like caller IDs, so
//! they apply on every shard at once and survive restart.

use hyper::StatusCode;
use mcmp_engine::catalog::{self, table, Customer};
use mcmp_engine::model::is_valid_origin_code;
use serde_json::{json, Value};

use super::{no_customer, put_child};
use crate::context::ShardApi;
use crate::http;
use crate::http::answer::{bad_request, store_error, Answer};

pub(crate) async fn put_origin_code(api: &ShardApi, g: &str, code: &str) -> Answer {
    if !is_valid_origin_code(code) {
        return Err(bad_request("an origin code is 1-20 of [0-9A-Za-z-]"));
    }
    put_child(api, g, table::ORIGIN_CODES, code, Value::Null).await
}

pub(crate) async fn list_origin_codes(api: &ShardApi, g: &str) -> Answer {
    let g2 = g.to_string();
    let found = api
        .shard
        .catalog_read(move |s| {
            if catalog::get::<Customer>(s, table::CUSTOMERS, &g2)?.is_none() {
                return Ok(None);
            }
            let rows: Vec<(String, ())> =
                catalog::scan_prefix(s, table::ORIGIN_CODES, &format!("{g2}/"))?;
            Ok(Some(rows))
        })
        .await
        .map_err(store_error)?;
    let Some(rows) = found else {
        return Err(no_customer(g));
    };
    let codes: Vec<&str> = rows
        .iter()
        .filter_map(|(k, ())| k.split_once('/').map(|(_, c)| c))
        .collect();
    Ok(http::json(
        StatusCode::OK,
        &json!({ "group_code": g, "origin_codes": codes }),
    ))
}
