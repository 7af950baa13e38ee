//! Who calls the admin API and what it may do (SPEC §5.7): the admin token
//! (scripts; everything), or an operator's session cookie, whose role
//! decides, and whose changes must carry the session's CSRF token.

use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, COOKIE};
use hyper::{Method, Request, Response, StatusCode};
use mcmp_engine::catalog::Role;

use crate::auth::{self, session};
use crate::context::ShardApi;
use crate::http::{self, Body};
use crate::time::now_ms;

/// The caller of an admin request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Who {
    /// The admin bearer token.
    Token,
    /// A logged-in operator.
    Operator {
        /// Its name.
        name: String,
        /// Its role now (a change applies to its open sessions).
        role: Role,
        /// The session's cookie value.
        cookie: String,
    },
}

impl Who {
    /// The name the audit log shows.
    pub(crate) fn name(&self) -> &str {
        match self {
            Who::Token => "admin-token",
            Who::Operator { name, .. } => name,
        }
    }

    /// What it may do.
    pub(crate) fn role(&self) -> Role {
        match self {
            Who::Token => Role::Admin,
            Who::Operator { role, .. } => *role,
        }
    }
}

fn unauthorized(msg: &str) -> Response<Body> {
    http::error(StatusCode::UNAUTHORIZED, "unauthorized", msg)
}

/// The caller: the admin token, or a valid session of an operator that
/// still exists; 401 otherwise.
pub(crate) fn authenticate(api: &ShardApi, req: &Request<Incoming>) -> Result<Who, Response<Body>> {
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    if let Some(token) = auth::bearer_token(header(AUTHORIZATION)) {
        let ok = api.state.admin_token.matches(token);
        return match ok {
            true => Ok(Who::Token),
            false => Err(unauthorized("admin token required")),
        };
    }
    let Some(cookie) = header(COOKIE).and_then(session::cookie_value) else {
        return Err(unauthorized("admin token or operator session required"));
    };
    let now = now_ms() / 1000;
    let (name, nonce, _) = session::verify(&api.state.jwt_key, cookie, now)
        .ok_or_else(|| unauthorized("the session is invalid or expired"))?;
    if api.state.sessions.revoked(&nonce) {
        return Err(unauthorized("the session was logged out"));
    }
    let role = api
        .shard
        .snapshot()
        .operators
        .get(&name)
        .map(|o| o.role)
        .ok_or_else(|| unauthorized("the operator of this session no longer exists"))?;
    Ok(Who::Operator {
        name,
        role,
        cookie: cookie.to_string(),
    })
}

/// Whether `role` may make `method` on the admin path `parts`: every role
/// reads; an operator also changes senders (and their queues), routes and
/// redrives; an admin changes everything.
pub(crate) fn allowed(role: Role, method: &Method, parts: &[&str]) -> bool {
    if method == Method::GET || method == Method::HEAD {
        return true;
    }
    match role {
        Role::Admin => true,
        Role::Operator => matches!(parts.first(), Some(&("senders" | "routes" | "webhooks"))),
        Role::Viewer => false,
    }
}

/// 403 unless `who` may make this request; a session's change must carry
/// its CSRF token in `X-CSRF-Token`.
pub(crate) fn authorize(
    api: &ShardApi,
    who: &Who,
    req: &Request<Incoming>,
    parts: &[&str],
) -> Result<(), Response<Body>> {
    let method = req.method();
    if let Who::Operator { cookie, .. } = who {
        let change = method != Method::GET && method != Method::HEAD;
        let sent = req
            .headers()
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let want = session::csrf_token(&api.state.jwt_key, cookie);
        if change && !auth::constant_time_eq(sent.as_bytes(), want.as_bytes()) {
            return Err(http::error(
                StatusCode::FORBIDDEN,
                "csrf",
                "a change from a session needs its X-CSRF-Token",
            ));
        }
    }
    match allowed(who.role(), method, parts) {
        true => Ok(()),
        false => Err(http::error(
            StatusCode::FORBIDDEN,
            "forbidden",
            &format!("the {} role may not do this", who.role().as_str()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_read_everything_and_change_what_they_own() {
        let put = Method::PUT;
        for parts in [
            &["customers", "G"][..],
            &["operators", "x"],
            &["senders", "S"],
        ] {
            assert!(allowed(Role::Viewer, &Method::GET, parts));
            assert!(!allowed(Role::Viewer, &put, parts));
            assert!(allowed(Role::Admin, &put, parts));
        }
        assert!(allowed(Role::Operator, &put, &["senders", "S"]));
        assert!(allowed(
            Role::Operator,
            &Method::POST,
            &["senders", "S", "queue", "move"]
        ));
        assert!(allowed(Role::Operator, &put, &["routes", "G", "SMS"]));
        assert!(allowed(
            Role::Operator,
            &Method::POST,
            &["webhooks", "c", "redrive"]
        ));
        assert!(!allowed(Role::Operator, &put, &["customers", "G"]));
        assert!(!allowed(Role::Operator, &put, &["operators", "x"]));
        assert!(!allowed(Role::Operator, &put, &["spam-keywords", "k"]));
    }
}
