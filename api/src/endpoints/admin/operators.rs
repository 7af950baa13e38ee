//! Console operators and their sessions (SPEC §5.7): `PUT`/`DELETE
//! /admin/v1/operators/{name}` `{"password","role"}` and `GET
//! /admin/v1/operators` (admins), `POST /admin/v1/session`
//! `{"name","password"}` (log in: the session cookie and `{"csrf_token"}`),
//! `GET /admin/v1/session` (who is logged in) and `DELETE
//! /admin/v1/session` (log out). Passwords are hashed and checked off-core.

use hyper::body::Incoming;
use hyper::header::{HeaderValue, COOKIE, RETRY_AFTER, SET_COOKIE};
use hyper::{Request, Response, StatusCode};
use mcmp_engine::catalog::{self, table, Operator, Role};
use mcmp_engine::rt;
use serde::Deserialize;
use serde_json::{json, Value};

use super::access::Who;
use crate::auth::session;
use crate::context::ShardApi;
use crate::http::answer::{bad_request, body, deleted_or_404, store_error, Answer};
use crate::http::{self, Body};
use crate::time::{format_rfc3339, now_ms};

/// Shortest password accepted.
const MIN_PASSWORD: usize = 8;

/// Longest password accepted (argon2 hashes whatever it is given).
const MAX_PASSWORD: usize = 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutOperator {
    password: Option<String>,
    role: Option<String>,
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b))
}

fn operator_json(o: &Operator) -> Value {
    json!({"name": o.name, "role": o.role.as_str(), "updated_at": format_rfc3339(o.updated_at_ms)})
}

/// `PUT /operators/{name}`: creates an operator (password and role
/// required) or changes its password and/or role.
pub(crate) async fn put_operator(api: &ShardApi, name: &str, req: Request<Incoming>) -> Answer {
    if !valid_name(name) {
        return Err(bad_request("an operator name is 1-64 of [A-Za-z0-9._-@]"));
    }
    let b: PutOperator = body(req).await?;
    let role = match b.role.as_deref() {
        None => None,
        Some(r) => Some(
            Role::parse(r).ok_or_else(|| bad_request("role must be viewer, operator or admin"))?,
        ),
    };
    if let Some(p) = &b.password {
        if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&p.chars().count()) {
            return Err(bad_request("a password is 8 to 1024 characters"));
        }
    }
    let existing = api.shard.snapshot().operators.get(name).cloned();
    let hash = match (b.password, &existing) {
        (Some(p), _) => rt::blocking(move || session::hash_password(&p))
            .await
            .map_err(|e| http::error(StatusCode::INTERNAL_SERVER_ERROR, "internal", &e))?,
        (None, Some(o)) => o.password_hash.clone(),
        (None, None) => return Err(bad_request("a new operator needs a password")),
    };
    let role = match (role, &existing) {
        (Some(r), _) => r,
        (None, Some(o)) => o.role,
        (None, None) => return Err(bad_request("a new operator needs a role")),
    };
    let op = Operator {
        name: name.to_string(),
        role,
        password_hash: hash,
        updated_at_ms: now_ms(),
    };
    let row = op.clone();
    api.shard
        .catalog_write(move |s| catalog::put(s, table::OPERATORS, &row.name, &row))
        .await
        .map_err(store_error)?;
    Ok(http::json(StatusCode::OK, &operator_json(&op)))
}

/// `GET /operators`: every operator, without its password.
pub(crate) fn list_operators(api: &ShardApi) -> Answer {
    let snapshot = api.shard.snapshot();
    let mut ops: Vec<&Operator> = snapshot.operators.values().collect();
    ops.sort_by(|a, b| a.name.cmp(&b.name));
    let list: Vec<Value> = ops.into_iter().map(operator_json).collect();
    Ok(http::json(StatusCode::OK, &json!({ "operators": list })))
}

/// `DELETE /operators/{name}`: its sessions end at once.
pub(crate) async fn delete_operator(api: &ShardApi, name: &str) -> Answer {
    let key = name.to_string();
    let deleted = api
        .shard
        .catalog_write(move |s| Ok(s.delete(table::OPERATORS, &key)?))
        .await
        .map_err(store_error)?;
    deleted_or_404(deleted, "operator")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    name: String,
    password: String,
}

/// `POST /session`: logs an operator in (at most five failed tries per
/// name a minute, then 429).
pub(crate) async fn login(api: &ShardApi, req: Request<Incoming>) -> Response<Body> {
    let b: Login = match body(req).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let sessions = &api.state.sessions;
    if !sessions.may_try(&b.name, now_ms()) {
        let mut resp = http::error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            "too many failed logins for this name; try again in a minute",
        );
        resp.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("60"));
        return resp;
    }
    let operator = api.shard.snapshot().operators.get(&b.name).cloned();
    // An unknown name costs the same hash as a known one.
    let hash = operator.as_ref().map(|o| o.password_hash.clone());
    let password = b.password;
    let ok = rt::blocking(move || match hash {
        Some(h) => session::verify_password(&password, &h),
        None => session::hash_password(&password).is_err(),
    })
    .await;
    let Some(op) = operator.filter(|_| ok) else {
        sessions.failed(&b.name, now_ms());
        return http::error(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "unknown operator or wrong password",
        );
    };
    sessions.succeeded(&op.name);
    let (cookie, csrf) = match session::issue(&api.state.jwt_key, &op.name, now_ms() / 1000) {
        Ok(c) => c,
        Err(e) => return http::error(StatusCode::INTERNAL_SERVER_ERROR, "internal", &e),
    };
    tracing::info!(operator = %op.name, role = op.role.as_str(), "operator logged in");
    let mut resp = http::json(
        StatusCode::OK,
        &json!({"name": op.name, "role": op.role.as_str(), "csrf_token": csrf}),
    );
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(&cookie)) {
        resp.headers_mut().insert(SET_COOKIE, v);
    }
    resp
}

/// `GET /session`: who is logged in, and the session's CSRF token.
pub(crate) fn whoami(api: &ShardApi, who: &Who) -> Response<Body> {
    let csrf = match who {
        Who::Operator { cookie, .. } => Some(session::csrf_token(&api.state.jwt_key, cookie)),
        Who::Token => None,
    };
    http::json(
        StatusCode::OK,
        &json!({"name": who.name(), "role": who.role().as_str(), "csrf_token": csrf}),
    )
}

/// `DELETE /session`: logs the session of the request's cookie out (its
/// cookie is removed and refused from now on).
pub(crate) fn logout(api: &ShardApi, req: &Request<Incoming>) -> Response<Body> {
    let now = now_ms() / 1000;
    let cookie = req
        .headers()
        .get(COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(session::cookie_value);
    if let Some((_, nonce, exp)) = cookie.and_then(|c| session::verify(&api.state.jwt_key, c, now))
    {
        api.state.sessions.revoke(&nonce, exp, now);
    }
    let mut resp = http::empty(StatusCode::NO_CONTENT);
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie("")) {
        resp.headers_mut().insert(SET_COOKIE, v);
    }
    resp
}
