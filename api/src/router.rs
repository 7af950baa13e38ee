//! The router: method + path → endpoint, and the metrics label of a
//! request. Paths are matched segment by segment; an unknown path is 404 and
//! a known path with another method 405. `/v1/...` is for an authenticated
//! customer (bearer access token), `/admin/v1/...` for the admin token.

use hyper::body::Incoming;
use hyper::header::AUTHORIZATION;
use hyper::{Method, Request, Response, StatusCode};
use mcmp_engine::catalog::table;
use mcmp_engine::HttpRoute;

use crate::auth::{self, Claims};
use crate::context::ShardApi;
use crate::endpoints::admin::messages as admin_messages;
use crate::endpoints::admin::{
    access, alerts, audit, blocked, clients, customers, delete_row, events, export, operators,
    origin_codes, pnx, routes, senders, spam, webhooks,
};
use crate::endpoints::console::{self, Asset};
use crate::endpoints::{agents, files, internal, messages, ops, provider, reports, token};
use crate::forward;
use crate::http::answer::Answer;
use crate::http::{self, Body};
use crate::time::now_ms;

/// Answers one request.
pub(crate) async fn route(api: &ShardApi, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    if let Some(node) = forward::elsewhere(api, &req, &segments) {
        return forward::to(api, &req, node).await;
    }
    match segments.as_slice() {
        ["healthz"] => ops::healthz(),
        ["readyz"] => ops::readyz(api),
        ["oauth", "token"] if req.method() == Method::POST => token::token(api, req).await,
        ["oauth", "token"] => http::method_not_allowed(),
        ["v1", rest @ ..] => customer(api, req, rest).await,
        ["admin", "v1", rest @ ..] => admin(api, req, rest).await,
        ["metrics"] if req.method() == Method::GET => ops::metrics(api).await,
        ["openapi.json"] if req.method() == Method::GET => ops::openapi(),
        ["console"] if req.method() == Method::GET => console::serve(&req, Asset::Page),
        ["console", "app.js"] if req.method() == Method::GET => console::serve(&req, Asset::Script),
        ["console", "style.css"] if req.method() == Method::GET => {
            console::serve(&req, Asset::Style)
        }
        ["internal", "v1", "receipts"] if req.method() == Method::POST => {
            internal::receipts(api, req).await
        }
        ["provider", "v1", "reports", sender] if req.method() == Method::POST => {
            let sender = sender.to_string();
            provider::provider_report(api, &sender, req).await
        }
        _ => http::not_found(),
    }
}

/// The metrics label of a request (a small fixed set).
pub(crate) fn metrics_route(method: &Method, path: &str) -> HttpRoute {
    let p = path.trim_matches('/');
    if p == "v1/messages" && method == Method::POST {
        HttpRoute::MessagesPost
    } else if p.starts_with("v1/messages") {
        HttpRoute::MessagesGet
    } else if p.starts_with("v1/reports") {
        HttpRoute::Reports
    } else if p == "oauth/token" {
        HttpRoute::Token
    } else if p.starts_with("admin/") {
        HttpRoute::Admin
    } else if p.starts_with("provider/") {
        HttpRoute::Provider
    } else if matches!(p, "healthz" | "readyz" | "metrics" | "openapi.json") {
        HttpRoute::Ops
    } else {
        HttpRoute::Other
    }
}

/// Routes `/v1/...` after authenticating the bearer token.
async fn customer(api: &ShardApi, req: Request<Incoming>, rest: &[&str]) -> Response<Body> {
    let claims = match authenticate(api, &req) {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    match (req.method().clone(), rest) {
        (Method::POST, ["messages"]) => messages::post_messages(api, &claims, req).await,
        (Method::GET, ["messages"]) => {
            let params = http::parse_query(req.uri().query());
            if http::query_param(&params, "src_msg_id").is_some() {
                messages::get_by_src_msg_id(api, &claims, &req).await
            } else {
                reports::history(api, &claims.grp, (&params, &req)).await
            }
        }
        (Method::GET, ["messages", id]) => messages::get_message(api, &claims, id).await,
        (Method::DELETE, ["messages", id]) => messages::cancel(api, &claims, id).await,
        (_, ["messages"] | ["messages", _]) => http::method_not_allowed(),
        (Method::GET, ["reports"]) => {
            let params = http::parse_query(req.uri().query());
            reports::poll(api, &claims, (&params, &req)).await
        }
        (Method::POST, ["reports", "lookup"]) => reports::lookup(api, &claims, req).await,
        (_, ["reports"] | ["reports", "lookup"]) => http::method_not_allowed(),
        (Method::POST, ["files"]) => files::post_file(api, &claims, req).await,
        (Method::GET, ["files", id]) => files::get_file(api, &claims, id).await,
        (_, ["files"] | ["files", _]) => http::method_not_allowed(),
        (Method::POST, ["agents", "heartbeat"]) => agents::agent_heartbeat(api, &claims, req).await,
        _ => http::not_found(),
    }
}

/// Checks the bearer token and that its client still exists.
fn authenticate(api: &ShardApi, req: &Request<Incoming>) -> Result<Claims, Response<Body>> {
    let unauthorized = |msg: &str| http::error(StatusCode::UNAUTHORIZED, "unauthorized", msg);
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let token = auth::bearer_token(header).ok_or_else(|| unauthorized("missing bearer token"))?;
    let claims = auth::verify_token_cached(&api.state.jwt_key, token, now_ms() / 1000)
        .map_err(|e| unauthorized(&format!("invalid access token: {e:?}")))?;
    let snapshot = api.shard.snapshot();
    let known = snapshot
        .clients
        .get(&claims.sub)
        .is_some_and(|c| c.group_code == claims.grp);
    if !known {
        return Err(unauthorized("the client of this token no longer exists"));
    }
    Ok(claims)
}

/// Routes `/admin/v1/...`: logging in and out first, then, for the admin
/// token or an operator's session allowed to make the request (SPEC §5.7),
/// the tables; a change that succeeds goes to the audit log.
async fn admin(api: &ShardApi, req: Request<Incoming>, rest: &[&str]) -> Response<Body> {
    let method = req.method().clone();
    match (method.clone(), rest) {
        (Method::POST, ["session"]) => return operators::login(api, req).await,
        (Method::DELETE, ["session"]) => return operators::logout(api, &req),
        _ => {}
    }
    let who = match access::authenticate(api, &req) {
        Ok(who) => who,
        Err(resp) => return resp,
    };
    let owned: Vec<String> = rest.iter().map(|s| http::percent_decode(s)).collect();
    let parts: Vec<&str> = owned.iter().map(String::as_str).collect();
    if let Err(resp) = access::authorize(api, &who, &req, &parts) {
        return resp;
    }
    match (method.clone(), parts.as_slice()) {
        (Method::GET, ["session"]) => return operators::whoami(api, &who),
        (Method::GET, ["events"]) => return events::events(api),
        (_, ["events"]) => return http::method_not_allowed(),
        (_, ["session"]) => return http::method_not_allowed(),
        _ => {}
    }
    let before = audit::before(api, &method, &parts).await;
    let resp = admin_customer_table(api, method.clone(), &parts, req)
        .await
        .unwrap_or_else(|e| e);
    audit::record(api, &who, &method, &parts, before, resp).await
}

/// `/admin/v1/`: customers, spam keywords and result codes; any other path
/// goes on to [`admin_routing_table`].
async fn admin_customer_table(
    api: &ShardApi,
    method: Method,
    parts: &[&str],
    req: Request<Incoming>,
) -> Answer {
    match (method, parts) {
        (Method::GET, ["customers"]) => customers::list_customers(api).await,
        (Method::PUT, ["customers", g]) => customers::put_customer(api, g, req).await,
        (Method::GET, ["customers", g]) => customers::get_customer(api, g).await,
        (Method::DELETE, ["customers", g]) => customers::delete_customer(api, g).await,
        (Method::PUT, ["customers", g, "services"]) => customers::put_services(api, g, req).await,
        (method, ["customers", _, "clients", ..]) => admin_clients(api, method, parts, req).await,
        (Method::PUT, ["customers", g, "bill-codes", b]) => {
            customers::put_bill_code(api, g, b, req).await
        }
        (Method::DELETE, ["customers", g, "bill-codes", b]) => {
            delete_row(api, g, table::BILL_CODES, b).await
        }
        (Method::PUT, ["customers", g, "caller-ids", n]) => {
            customers::put_caller_id(api, g, n).await
        }
        (Method::DELETE, ["customers", g, "caller-ids", n]) => {
            delete_row(api, g, table::CALLER_IDS, n).await
        }
        (Method::PUT, ["customers", g, "opt-outs", n]) => customers::put_opt_out(api, g, n).await,
        (Method::DELETE, ["customers", g, "opt-outs", n]) => {
            delete_row(api, g, table::OPT_OUTS, n).await
        }
        (Method::PUT, ["customers", g, "origin-codes", c]) => {
            origin_codes::put_origin_code(api, g, c).await
        }
        (Method::DELETE, ["customers", g, "origin-codes", c]) => {
            delete_row(api, g, table::ORIGIN_CODES, c).await
        }
        (Method::GET, ["customers", g, "origin-codes"]) => {
            origin_codes::list_origin_codes(api, g).await
        }
        (Method::POST, ["customers", g, "balance"]) => customers::add_balance(api, g, req).await,
        (Method::GET, ["spam-keywords"]) => spam::list_spam_keywords(api).await,
        (Method::PUT, ["spam-keywords", k]) => spam::put_spam_keyword(api, k).await,
        (Method::DELETE, ["spam-keywords", k]) => spam::delete_spam_keyword(api, k).await,
        (_, ["spam-keywords", ..]) => Err(http::method_not_allowed()),
        (_, ["customers", ..]) => Err(http::method_not_allowed()),
        (Method::PUT, ["operators", n]) => operators::put_operator(api, n, req).await,
        (Method::GET, ["operators"]) => operators::list_operators(api),
        (Method::DELETE, ["operators", n]) => operators::delete_operator(api, n).await,
        (_, ["operators", ..]) => Err(http::method_not_allowed()),
        (Method::GET, ["result-codes"]) => Ok(http::json(
            StatusCode::OK,
            &mcmp_engine::code_tables::json(),
        )),
        (method, parts) => admin_routing_table(api, method, parts, req).await,
    }
}

/// `/admin/v1/customers/{g}/clients…`: a customer's API clients and their
/// webhook signing secrets.
async fn admin_clients(
    api: &ShardApi,
    method: Method,
    parts: &[&str],
    req: Request<Incoming>,
) -> Answer {
    match (method, parts) {
        (Method::POST, ["customers", g, "clients"]) => clients::create_client(api, g, req).await,
        (Method::GET, ["customers", g, "clients"]) => clients::list_clients(api, g).await,
        (Method::PATCH, ["customers", g, "clients", c]) => {
            clients::patch_client(api, g, c, req).await
        }
        (Method::DELETE, ["customers", g, "clients", c]) => clients::delete_client(api, g, c).await,
        (Method::POST, ["customers", g, "clients", c, "signing-secrets"]) => {
            clients::rotate_signing_secret(api, g, c).await
        }
        _ => Err(http::method_not_allowed()),
    }
}

/// `/admin/v1/`: senders, routes, PNX, webhooks, stats, blocked messages,
/// agents, message search, the audit log and the recent alerts; any other
/// path is 404.
async fn admin_routing_table(
    api: &ShardApi,
    method: Method,
    parts: &[&str],
    req: Request<Incoming>,
) -> Answer {
    match (method, parts) {
        (Method::GET, ["senders"]) => senders::list_senders(api),
        (Method::PUT, ["senders", n]) => senders::put_sender(api, n, req).await,
        (Method::GET, ["senders", n]) => senders::get_sender(api, n),
        (Method::PATCH, ["senders", n]) => senders::patch_sender(api, n, req).await,
        (Method::DELETE, ["senders", n]) => senders::delete_sender(api, n).await,
        (Method::POST, ["senders", n, "queue", "move"]) => senders::move_queue(api, n, req).await,
        (_, ["senders", ..]) => Err(http::method_not_allowed()),
        (Method::GET, ["routes"]) => routes::list_routes(api),
        (Method::PUT, ["routes", g, c]) => routes::put_route(api, g, c, req).await,
        (Method::GET, ["routes", g, c]) => routes::get_route(api, g, c),
        (Method::DELETE, ["routes", g, c]) => routes::delete_route(api, g, c).await,
        (_, ["routes", ..]) => Err(http::method_not_allowed()),
        (Method::POST, ["pnx"]) => pnx::load_pnx(api, req).await,
        (Method::GET, ["pnx", n]) => pnx::get_pnx(api, n),
        (_, ["pnx", ..]) => Err(http::method_not_allowed()),
        (Method::GET, ["webhooks"]) => webhooks::list(api).await,
        (Method::POST, ["webhooks", c, "redrive"]) => webhooks::redrive(api, c).await,
        (_, ["webhooks", ..]) => Err(http::method_not_allowed()),
        (Method::GET, ["stats"]) => ops::stats(api).await,
        (Method::GET, ["blocked"]) => {
            let params = http::parse_query(req.uri().query());
            blocked::list(api, &params).await
        }
        (_, ["blocked"]) => Err(http::method_not_allowed()),
        (Method::GET, ["export"]) => {
            let params = http::parse_query(req.uri().query());
            export::list(api, &params).await
        }
        (_, ["export"]) => Err(http::method_not_allowed()),
        (Method::GET, ["agents"]) => agents::agents(api).await,
        (Method::GET, ["messages"]) => {
            let params = http::parse_query(req.uri().query());
            Ok(admin_messages::search(api, (&params, &req)).await)
        }
        (Method::GET, ["messages", id]) => Ok(admin_messages::get(api, id).await),
        (_, ["messages", ..]) => Err(http::method_not_allowed()),
        (Method::GET, ["audit"]) => {
            let params = http::parse_query(req.uri().query());
            audit::list(api, &params).await
        }
        (_, ["audit"]) => Err(http::method_not_allowed()),
        (Method::GET, ["alerts"]) => {
            let params = http::parse_query(req.uri().query());
            alerts::list(api, &params).await
        }
        (_, ["alerts"]) => Err(http::method_not_allowed()),
        _ => Err(http::not_found()),
    }
}

#[cfg(test)]
#[path = "router_tests.rs"]
mod tests;
