//! Admin: a customer's API clients (SPEC §2.3): created with a generated
//! secret, listed without it, their report URI changed, deleted.

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use mcmp_engine::catalog::{self, table, Client, SigningSecret, SIGNING_SECRET_PREFIX};
use serde::Deserialize;
use serde_json::json;

use super::{client_rows, no_customer, put_for_customer};
use crate::auth;
use crate::context::ShardApi;
use crate::http::answer::{bad_request, body, deleted_or_404, store_error, Answer};
use crate::http::{self, Body};
use crate::time::now_ms;
use mcmp_engine::rt;
use mcmp_engine::secrets::HmacKey;

/// Length of a generated client secret, in random bytes.
const SECRET_BYTES: usize = 24;
/// Length of a webhook signing key, in random bytes (SPEC §5.5).
const SIGNING_KEY_BYTES: usize = 32;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientBody {
    #[serde(default)]
    report_uri: Option<String>,
}

/// A `report_uri` follows the policy (SPEC §5.5): an `http://` or
/// `https://` URL; `https://` unless `reports.allow-http`; none of the
/// addresses its host resolves to (on the blocking pool) loopback, private
/// or link-local unless `reports.allow-private`.
async fn check_report_uri(api: &ShardApi, uri: &Option<String>) -> Result<(), Response<Body>> {
    let Some(u) = uri else { return Ok(()) };
    let parsed = u.parse::<hyper::Uri>().ok();
    let scheme = parsed.as_ref().and_then(|p| p.scheme_str());
    let host = parsed.as_ref().and_then(|p| p.host());
    let (Some(scheme @ ("http" | "https")), Some(host)) = (scheme, host) else {
        return Err(bad_request("report_uri must be an http:// or https:// URL"));
    };
    let policy = &api.state.config.reports;
    if scheme == "http" && !policy.allow_http {
        return Err(bad_request(
            "report_uri must be https:// (reports.allow-http is off)",
        ));
    }
    if policy.allow_private {
        return Ok(());
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = parsed.as_ref().and_then(|p| p.port_u16()).unwrap_or(443);
    let addrs = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => vec![ip],
        // NOTE: a name that does not resolve now is taken: delivery checks
        // the address it connects to, every time.
        Err(_) => rt::resolve_all(host, port)
            .await
            .map(|a| a.iter().map(|s| s.ip()).collect())
            .unwrap_or_default(),
    };
    match addrs.into_iter().find(|ip| !mcmp_engine::is_public(*ip)) {
        Some(ip) => Err(bad_request(&format!(
            "report_uri {host} is {ip}, a loopback, private or link-local address (reports.allow-private is off)"
        ))),
        None => Ok(()),
    }
}

pub(crate) async fn create_client(api: &ShardApi, g: &str, req: Request<Incoming>) -> Answer {
    let b: ClientBody = body(req).await?;
    check_report_uri(api, &b.report_uri).await?;
    let random = |n| {
        auth::random_token(n).map_err(|e| {
            http::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                &format!("no randomness: {e}"),
            )
        })
    };
    let (signing_text, signing) = new_signing_secret()?;
    let secret = random(SECRET_BYTES)?;
    let mut client = Client::new(
        format!("c_{}", random(12)?),
        g.to_string(),
        &secret,
        now_ms(),
    );
    client.report_uri = b.report_uri;
    client.signing_secrets = vec![signing];
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
        &json!({"client_id": client.client_id, "client_secret": secret,
                "signing_secret": signing_text, "report_uri": client.report_uri}),
    ))
}

/// A new `whsec_` signing secret (32 random bytes), made now: its text,
/// shown once, and what is kept of it.
fn new_signing_secret() -> Result<(String, SigningSecret), Response<Body>> {
    use base64::Engine as _;
    let mut key = [0u8; SIGNING_KEY_BYTES];
    getrandom::getrandom(&mut key).map_err(|e| {
        http::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            &format!("no randomness: {e}"),
        )
    })?;
    let encoded = base64::engine::general_purpose::STANDARD.encode(key);
    let secret = SigningSecret {
        key: HmacKey::new(&key),
        created_at_ms: now_ms(),
    };
    Ok((format!("{SIGNING_SECRET_PREFIX}{encoded}"), secret))
}

/// `POST /customers/{g}/clients/{c}/signing-secrets`: a new signing secret
/// signs at once; the one before also signs for `reports.secret-overlap`.
pub(crate) async fn rotate_signing_secret(api: &ShardApi, g: &str, c: &str) -> Answer {
    let (text, secret) = new_signing_secret()?;
    let overlap = api.state.config.reports.secret_overlap;
    let overlap_ms = overlap.as_millis() as i64;
    let (g2, c2, new) = (g.to_string(), c.to_string(), secret.clone());
    let rotated = api
        .shard
        .catalog_write(move |s| {
            let Some(mut row) = catalog::get::<Client>(s, table::CLIENTS, &c2)? else {
                return Ok(false);
            };
            if row.group_code != g2 {
                return Ok(false);
            }
            row.rotate(new, overlap_ms);
            catalog::put(s, table::CLIENTS, &c2, &row)?;
            Ok(true)
        })
        .await
        .map_err(store_error)?;
    if !rotated {
        return Err(http::error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such client",
        ));
    }
    let until = crate::time::format_rfc3339(secret.created_at_ms + overlap_ms);
    Ok(http::json(
        StatusCode::CREATED,
        &json!({"client_id": c, "signing_secret": text, "previous_valid_until": until}),
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
    check_report_uri(api, &b.report_uri).await?;
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
