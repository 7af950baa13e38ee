//! The admin API (SPEC §2.3) for customers, services, clients, bill codes
//! and caller IDs. Every write goes to the catalog store off-core and the
//! new snapshot is installed on every shard before the answer, so a change
//! applies everywhere at once and survives restart.

use std::collections::BTreeMap;

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use mcmp_engine::catalog::{
    self, table, BillCode, CatalogError, ChannelService, Client, Customer, Services,
};
use mcmp_engine::model::Channel;
use mcmp_storage::Catalog;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth;
use crate::context::ShardApi;
use crate::http::answer::{bad_request, body, deleted_or_404, store_error, Answer};
use crate::http::{self, Body};
use crate::time::now_ms;

/// Length of a generated client secret, in random bytes.
const SECRET_BYTES: usize = 24;

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
pub(crate) async fn put_row<T: serde::Serialize + Send + 'static>(
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomerBody {
    name: String,
    #[serde(default)]
    vas: bool,
    #[serde(default)]
    prepaid: bool,
    #[serde(default)]
    balance: i64,
}

pub(crate) async fn put_customer(api: &ShardApi, g: &str, req: Request<Incoming>) -> Answer {
    if !valid_group_code(g) {
        return Err(bad_request(
            "group_code must be 1-32 letters, digits, '_' or '-'",
        ));
    }
    let b: CustomerBody = body(req).await?;
    // The balance given is the balance from now on: remember the charges so
    // far, which the available balance is counted from.
    let charges_offset = api.shard.net_charges(g).await;
    let customer = Customer {
        group_code: g.to_string(),
        name: b.name,
        vas: b.vas,
        prepaid: b.prepaid,
        balance: b.balance,
        charges_offset,
    };
    let status = put_row(api, table::CUSTOMERS, g.to_string(), customer.clone()).await?;
    Ok(http::json(
        status,
        &customer_json(&customer, charges_offset),
    ))
}

pub(crate) async fn list_customers(api: &ShardApi) -> Answer {
    let rows: Vec<(String, Customer)> = api
        .shard
        .catalog_read(|s| catalog::scan_prefix(s, table::CUSTOMERS, ""))
        .await
        .map_err(store_error)?;
    let mut customers = Vec::with_capacity(rows.len());
    for (_, c) in rows {
        let net = api.shard.net_charges(&c.group_code).await;
        customers.push(customer_json(&c, net));
    }
    Ok(http::json(
        StatusCode::OK,
        &json!({ "customers": customers }),
    ))
}

pub(crate) async fn get_customer(api: &ShardApi, g: &str) -> Answer {
    let g2 = g.to_string();
    let found = api
        .shard
        .catalog_read(move |s| {
            let Some(c) = catalog::get::<Customer>(s, table::CUSTOMERS, &g2)? else {
                return Ok(None);
            };
            let services = catalog::get::<Services>(s, table::SERVICES, &g2)?.unwrap_or_default();
            let prefix = format!("{g2}/");
            let bills: Vec<(String, BillCode)> =
                catalog::scan_prefix(s, table::BILL_CODES, &prefix)?;
            let callers: Vec<(String, ())> = catalog::scan_prefix(s, table::CALLER_IDS, &prefix)?;
            Ok(Some((c, services, bills, callers)))
        })
        .await
        .map_err(store_error)?;
    let Some((c, services, bills, callers)) = found else {
        return Err(no_customer(g));
    };
    let clients = client_rows(api, g);
    let net = api.shard.net_charges(g).await;
    let mut v = customer_json(&c, net);
    v["services"] = serde_json::to_value(&services.channels).unwrap_or(Value::Null);
    v["bill_codes"] = bills
        .into_iter()
        .map(|(_, b)| json!({"bill_code": b.bill_code, "ad": b.ad}))
        .collect();
    v["caller_ids"] = callers
        .into_iter()
        .filter_map(|(k, ())| k.split_once('/').map(|(_, n)| Value::from(n)))
        .collect();
    v["clients"] = Value::Array(clients);
    Ok(http::json(StatusCode::OK, &v))
}

pub(crate) async fn delete_customer(api: &ShardApi, g: &str) -> Answer {
    let g2 = g.to_string();
    let deleted = api
        .shard
        .catalog_write(move |s| {
            if !s.delete(table::CUSTOMERS, &g2)? {
                return Ok(false);
            }
            s.delete(table::SERVICES, &g2)?;
            let prefix = format!("{g2}/");
            for t in [table::BILL_CODES, table::CALLER_IDS] {
                for (k, _) in s.scan_prefix(t, &prefix)? {
                    s.delete(t, &k)?;
                }
            }
            for (id, c) in catalog::scan_prefix::<Client>(s, table::CLIENTS, "")? {
                if c.group_code == g2 {
                    s.delete(table::CLIENTS, &id)?;
                }
            }
            Ok(true)
        })
        .await
        .map_err(store_error)?;
    if deleted {
        Ok(http::empty(StatusCode::NO_CONTENT))
    } else {
        Err(no_customer(g))
    }
}

/// A customer as the admin API shows it: `balance` is what is available now.
fn customer_json(c: &Customer, net_charges: i64) -> Value {
    json!({
        "group_code": c.group_code,
        "name": c.name,
        "vas": c.vas,
        "prepaid": c.prepaid,
        "balance": c.balance - (net_charges - c.charges_offset),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BalanceBody {
    delta: i64,
}

/// `POST /customers/{g}/balance` `{"delta": n}`: top-up (or negative adjustment).
pub(crate) async fn add_balance(api: &ShardApi, g: &str, req: Request<Incoming>) -> Answer {
    let b: BalanceBody = body(req).await?;
    let g2 = g.to_string();
    let updated = api
        .shard
        .catalog_write(move |s| {
            let Some(mut c) = catalog::get::<Customer>(s, table::CUSTOMERS, &g2)? else {
                return Ok(None);
            };
            c.balance = c.balance.saturating_add(b.delta);
            catalog::put(s, table::CUSTOMERS, &g2, &c)?;
            Ok(Some(c))
        })
        .await
        .map_err(store_error)?;
    let c = updated.ok_or_else(|| no_customer(g))?;
    let net = api.shard.net_charges(g).await;
    Ok(http::json(StatusCode::OK, &customer_json(&c, net)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServicesBody {
    channels: BTreeMap<String, ServiceBody>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceBody {
    enabled: bool,
    #[serde(default)]
    tps: u32,
}

pub(crate) async fn put_services(api: &ShardApi, g: &str, req: Request<Incoming>) -> Answer {
    let b: ServicesBody = body(req).await?;
    let mut services = Services::default();
    for (name, s) in b.channels {
        let channel = Channel::parse(&name).ok_or_else(|| {
            bad_request(&format!(
                "unknown channel {name:?}; expected one of SMS, LMS, MMS, RCS, KKO, EMAIL, PUSH"
            ))
        })?;
        services.channels.insert(
            channel,
            ChannelService {
                enabled: s.enabled,
                tps: s.tps,
            },
        );
    }
    put_for_customer(api, g, table::SERVICES, g.to_string(), services.clone()).await?;
    Ok(http::json(
        StatusCode::OK,
        &json!({"group_code": g, "channels": services.channels}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientBody {
    #[serde(default)]
    report_uri: Option<String>,
}

fn check_report_uri(uri: &Option<String>) -> Result<(), Response<Body>> {
    match uri {
        Some(u)
            if !(u.starts_with("http://") || u.starts_with("https://"))
                || u.parse::<hyper::Uri>().is_err() =>
        {
            Err(bad_request("report_uri must be an http:// or https:// URL"))
        }
        _ => Ok(()),
    }
}

pub(crate) async fn create_client(api: &ShardApi, g: &str, req: Request<Incoming>) -> Answer {
    let b: ClientBody = body(req).await?;
    check_report_uri(&b.report_uri)?;
    let random = |n| {
        auth::random_token(n).map_err(|e| {
            http::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                &format!("no randomness: {e}"),
            )
        })
    };
    let client = Client {
        client_id: format!("c_{}", random(12)?),
        group_code: g.to_string(),
        secret: random(SECRET_BYTES)?,
        report_uri: b.report_uri,
        created_at_ms: now_ms(),
    };
    put_for_customer(
        api,
        g,
        table::CLIENTS,
        client.client_id.clone(),
        client.clone(),
    )
    .await?;
    Ok(http::json(
        StatusCode::CREATED,
        &json!({"client_id": client.client_id, "client_secret": client.secret, "report_uri": client.report_uri}),
    ))
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

pub(crate) async fn list_clients(api: &ShardApi, g: &str) -> Answer {
    let snapshot = api.shard.snapshot();
    let known = snapshot.customers.get(g).and_then(|c| c.customer.as_ref());
    if known.is_none() {
        return Err(no_customer(g));
    }
    Ok(http::json(
        StatusCode::OK,
        &json!({"clients": client_rows(api, g)}),
    ))
}

pub(crate) async fn patch_client(
    api: &ShardApi,
    g: &str,
    c: &str,
    req: Request<Incoming>,
) -> Answer {
    let b: ClientBody = body(req).await?;
    check_report_uri(&b.report_uri)?;
    let (g2, c2) = (g.to_string(), c.to_string());
    let updated = api
        .shard
        .catalog_write(move |s| {
            let Some(mut row) = catalog::get::<Client>(s, table::CLIENTS, &c2)? else {
                return Ok(None);
            };
            if row.group_code != g2 {
                return Ok(None);
            }
            row.report_uri = b.report_uri;
            catalog::put(s, table::CLIENTS, &c2, &row)?;
            Ok(Some(row))
        })
        .await
        .map_err(store_error)?;
    match updated {
        Some(row) => Ok(http::json(
            StatusCode::OK,
            &json!({"client_id": row.client_id, "report_uri": row.report_uri}),
        )),
        None => Err(http::error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such client",
        )),
    }
}

pub(crate) async fn delete_client(api: &ShardApi, g: &str, c: &str) -> Answer {
    let (g2, c2) = (g.to_string(), c.to_string());
    let deleted = api
        .shard
        .catalog_write(move |s| {
            let owned = catalog::get::<Client>(s, table::CLIENTS, &c2)?
                .is_some_and(|row| row.group_code == g2);
            Ok(owned && s.delete(table::CLIENTS, &c2)?)
        })
        .await
        .map_err(store_error)?;
    deleted_or_404(deleted, "client")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BillCodeBody {
    #[serde(default)]
    ad: bool,
}

pub(crate) async fn put_bill_code(
    api: &ShardApi,
    g: &str,
    b: &str,
    req: Request<Incoming>,
) -> Answer {
    let body: BillCodeBody = body(req).await?;
    if b.is_empty() || b.len() > 64 {
        return Err(bad_request("bill_code must be 1-64 characters"));
    }
    let row = BillCode {
        bill_code: b.to_string(),
        ad: body.ad,
    };
    put_child(
        api,
        g,
        table::BILL_CODES,
        b,
        serde_json::to_value(&row).unwrap_or(Value::Null),
    )
    .await
}

pub(crate) async fn put_caller_id(api: &ShardApi, g: &str, n: &str) -> Answer {
    let valid = (4..=15).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit());
    if !valid {
        return Err(bad_request("a caller ID is 4-15 digits"));
    }
    put_child(api, g, table::CALLER_IDS, n, Value::Null).await
}

pub(crate) async fn put_opt_out(api: &ShardApi, g: &str, n: &str) -> Answer {
    let number = n.replace('-', "");
    if !(4..=15).contains(&number.len()) || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad_request("an opt-out number is 4-15 digits"));
    }
    put_child(api, g, table::OPT_OUTS, &number, Value::Null).await
}

pub(crate) async fn list_spam_keywords(api: &ShardApi) -> Answer {
    let rows = api
        .shard
        .catalog_read(|s| Ok(s.scan(table::SPAM_KEYWORDS)?))
        .await
        .map_err(store_error)?;
    let keywords: Vec<String> = rows.into_iter().map(|(k, _)| k).collect();
    Ok(http::json(StatusCode::OK, &json!({ "keywords": keywords })))
}

pub(crate) async fn put_spam_keyword(api: &ShardApi, k: &str) -> Answer {
    if k.trim().is_empty() || k.chars().count() > 100 {
        return Err(bad_request("a spam keyword is 1-100 characters"));
    }
    let (key, catalog) = (k.to_string(), api.shard.catalog());
    api.shard
        .catalog_write(move |s| {
            s.put(table::SPAM_KEYWORDS, &key, b"null")?;
            catalog.invalidate_spam();
            Ok(())
        })
        .await
        .map_err(store_error)?;
    Ok(http::json(StatusCode::OK, &json!({ "keyword": k })))
}

pub(crate) async fn delete_spam_keyword(api: &ShardApi, k: &str) -> Answer {
    let (key, catalog) = (k.to_string(), api.shard.catalog());
    let deleted = api
        .shard
        .catalog_write(move |s| {
            let deleted = s.delete(table::SPAM_KEYWORDS, &key)?;
            catalog.invalidate_spam();
            Ok(deleted)
        })
        .await
        .map_err(store_error)?;
    deleted_or_404(deleted, "keyword")
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
