//! `POST /oauth/token` (SPEC §2.2): client credentials → access token.

use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use serde_json::json;

use crate::auth::{self, Claims};
use crate::context::ShardApi;
use crate::http::{self, Body};
use crate::time::now_ms;

/// Lifetime of an access token.
const TOKEN_TTL_SECS: i64 = 3600;

/// Largest `POST /oauth/token` body; credentials are tiny.
const TOKEN_BODY_LIMIT: u64 = 16 * 1024;

/// `POST /oauth/token`: client credentials → JWT.
pub(crate) async fn token(api: &ShardApi, req: Request<Incoming>) -> Response<Body> {
    let header = |name| {
        req.headers()
            .get(name)
            .and_then(|v: &hyper::header::HeaderValue| v.to_str().ok())
            .map(str::to_string)
    };
    let (content_type, authorization) = (header(CONTENT_TYPE), header(AUTHORIZATION));
    let body = match http::read_body(req, TOKEN_BODY_LIMIT).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let (client_id, secret) =
        match auth::parse_token_request(content_type.as_deref(), authorization.as_deref(), &body) {
            Ok(creds) => creds,
            Err(auth::TokenRequestError::UnsupportedGrantType) => {
                return http::error(
                    StatusCode::BAD_REQUEST,
                    "unsupported_grant_type",
                    "grant_type must be client_credentials",
                )
            }
            Err(e) => {
                return http::error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    &format!("{e:?}"),
                )
            }
        };
    let snapshot = api.shard.snapshot();
    let client = snapshot
        .clients
        .get(&client_id)
        .filter(|c| c.secret_hash.matches(&secret));
    let Some(client) = client else {
        return http::error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "unknown client or wrong secret",
        );
    };
    let now = now_ms() / 1000;
    let claims = Claims {
        sub: client.client_id.clone(),
        grp: client.group_code.clone(),
        iat: now,
        exp: now + TOKEN_TTL_SECS,
    };
    let token = auth::issue_token(&api.state.jwt_key, &claims);
    http::json(
        StatusCode::OK,
        &json!({"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_TTL_SECS}),
    )
}
