//! The admin API (SPEC §2.3), `/admin/v1/...`, and the helpers its files
//! share. Every write goes to the catalog store off-core and the new
//! snapshot is installed on every shard before the answer, so a change
//! applies everywhere at once and survives restart.

pub(crate) mod access;
pub(crate) mod alerts;
pub(crate) mod audit;
pub(crate) mod blocked;
pub(crate) mod clients;
pub(crate) mod customers;
pub(crate) mod events;
pub(crate) mod export;
pub(crate) mod messages;
pub(crate) mod operators;
pub(crate) mod origin_codes;
pub(crate) mod pnx;
pub(crate) mod routes;
pub(crate) mod senders;
pub(crate) mod spam;
pub(crate) mod webhooks;

use hyper::{Response, StatusCode};
use mcmp_engine::catalog::{self, table, CatalogError, Client};
use mcmp_storage::Catalog;
use serde_json::{json, Value};

use crate::context::ShardApi;
use crate::http::answer::{deleted_or_404, store_error, Answer};
use crate::http::{self, Body};

fn no_customer(g: &str) -> Response<Body> {
    http::error(
        StatusCode::NOT_FOUND,
        "not_found",
        &format!("no customer {g}"),
    )
}

/// Checks a group code: 1–32 of `[A-Za-z0-9_-]`, or `*` (the default customer).
fn valid_group_code(g: &str) -> bool {
    g == "*"
        || (!g.is_empty()
            && g.len() <= 32
            && g.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
}

/// Creates or replaces the row `key` of `table`: 201 if it was new, else 200.
async fn put_row<T: serde::Serialize + Send + 'static>(
    api: &ShardApi,
    table: &'static str,
    key: String,
    row: T,
) -> Result<StatusCode, Response<Body>> {
    let created = api
        .shard
        .catalog_write(move |s| {
            let created = s.get(table, &key)?.is_none();
            catalog::put(s, table, &key, &row)?;
            Ok(created)
        })
        .await
        .map_err(store_error)?;
    Ok(if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    })
}

fn customer_exists(store: &dyn Catalog, g: &str) -> Result<bool, CatalogError> {
    Ok(store.get(table::CUSTOMERS, g)?.is_some())
}

/// A customer's clients, without secrets, from the local snapshot.
fn client_rows(api: &ShardApi, g: &str) -> Vec<Value> {
    let snapshot = api.shard.snapshot();
    let mut rows: Vec<&Client> = snapshot
        .clients
        .values()
        .filter(|c| c.group_code == g)
        .collect();
    rows.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    rows.into_iter()
        .map(|c| json!({"client_id": c.client_id, "report_uri": c.report_uri, "created_at": crate::time::format_rfc3339(c.created_at_ms)}))
        .collect()
}

/// Writes one row that belongs to customer `g` (404 if there is no such
/// customer), through the catalog so every shard sees it.
async fn put_for_customer<T: serde::Serialize + Send + 'static>(
    api: &ShardApi,
    g: &str,
    t: &'static str,
    key: String,
    row: T,
) -> Result<(), Response<Body>> {
    let g2 = g.to_string();
    let found = api
        .shard
        .catalog_write(move |s| {
            if !customer_exists(s, &g2)? {
                return Ok(false);
            }
            catalog::put(s, t, &key, &row)?;
            Ok(true)
        })
        .await
        .map_err(store_error)?;
    if found {
        Ok(())
    } else {
        Err(no_customer(g))
    }
}

/// Writes a row keyed `group/child` of an existing customer.
async fn put_child(api: &ShardApi, g: &str, t: &'static str, child: &str, value: Value) -> Answer {
    let key = format!("{g}/{child}");
    put_for_customer(api, g, t, key, value.clone()).await?;
    let mut out = json!({"group_code": g});
    if t == table::CALLER_IDS || t == table::OPT_OUTS {
        out["number"] = Value::from(child);
    } else if t == table::ORIGIN_CODES {
        out["origin_code"] = Value::from(child);
    } else if let Value::Object(m) = value {
        out.as_object_mut()
            .into_iter()
            .for_each(|o| o.extend(m.clone()));
    }
    Ok(http::json(StatusCode::OK, &out))
}

pub(crate) async fn delete_row(api: &ShardApi, g: &str, t: &'static str, child: &str) -> Answer {
    let key = format!("{g}/{child}");
    let deleted = api
        .shard
        .catalog_write(move |s| Ok(s.delete(t, &key)?))
        .await
        .map_err(store_error)?;
    deleted_or_404(deleted, "row")
}
