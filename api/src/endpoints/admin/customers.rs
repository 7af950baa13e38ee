//! Admin: customers (SPEC §2.3) with their balance, services, bill codes,
//! caller IDs and opt-outs (origin codes: `origin_codes.rs`).

use std::collections::BTreeMap;

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use mcmp_engine::catalog::{self, table, BillCode, ChannelService, Client, Customer, Services};
use mcmp_engine::model::Channel;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{client_rows, no_customer, put_child, put_for_customer, put_row, valid_group_code};
use crate::context::ShardApi;
use crate::http::answer::{bad_request, body, store_error, Answer};
use crate::http::{self, Body};

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
    let charges_offset = net_charges(api, g).await?;
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
        let net = shown_charges(api, &c).await?;
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
    let net = shown_charges(api, &c).await?;
    let mut v = customer_json(&c, net);
    v["services"] = serde_json::to_value(&services.channels).unwrap_or(Value::Null);
    v["bill_codes"] = bills
        .into_iter()
        .map(|(_, b)| json!({"bill_code": b.bill_code, "ad": b.ad, "class": b.class.as_str()}))
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
            for t in [
                table::BILL_CODES,
                table::CALLER_IDS,
                table::OPT_OUTS,
                table::ORIGIN_CODES,
            ] {
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

/// The customer's net prepaid charges; 503 `cluster_unavailable` while
/// the charges the nodes share cannot be read (a balance shown or set
/// without them would be wrong).
async fn net_charges(api: &ShardApi, g: &str) -> Result<i64, Response<Body>> {
    api.shard.net_charges(g).await.ok_or_else(|| {
        http::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "cluster_unavailable",
            "the redis cluster the nodes share does not answer; the balance cannot be read",
        )
    })
}

/// The net charges a customer's shown balance counts: a prepaid one's
/// ([`net_charges`]); another's balance is shown as set.
async fn shown_charges(api: &ShardApi, c: &Customer) -> Result<i64, Response<Body>> {
    match c.prepaid {
        true => net_charges(api, &c.group_code).await,
        false => Ok(c.charges_offset),
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
    let net = shown_charges(api, &c).await?;
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
    #[serde(default)]
    max_backlog: u32,
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
                max_backlog: s.max_backlog,
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
struct BillCodeBody {
    #[serde(default)]
    ad: bool,
    #[serde(default)]
    class: Option<String>,
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
    let class = match body.class.as_deref() {
        None => mcmp_engine::model::Class::default(),
        Some(c) => mcmp_engine::model::Class::parse(c)
            .ok_or_else(|| bad_request("class must be otp, realtime, bulk or ad"))?,
    };
    let row = BillCode {
        bill_code: b.to_string(),
        ad: body.ad,
        class,
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
