//! Admin: a customer's API clients (SPEC §2.3): created with a generated
//! secret, listed without it, their report URI changed, deleted.

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use mcmp_engine::catalog::{self, table, Client};
use serde::Deserialize;
use serde_json::json;

use super::{client_rows, no_customer, put_for_customer};
use crate::auth;
use crate::context::ShardApi;
use crate::http::answer::{bad_request, body, deleted_or_404, store_error, Answer};
use crate::http::{self, Body};
use crate::time::now_ms;

/// Length of a generated client secret, in random bytes.
const SECRET_BYTES: usize = 24;

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
