//! The answers of the endpoints that return a response or an error response
//! ([`Answer`]): 404 for a missing row, the answer to a DELETE, 400 and
//! catalog errors, and the admin JSON body reader.

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use mcmp_engine::catalog::CatalogError;
use serde::de::DeserializeOwned;

use crate::http::{self, Body};

/// Largest admin request body (PNX loads will get their own limit).
const ADMIN_BODY_LIMIT: u64 = 1 << 20;

/// An admin answer: a response or an error response.
pub(crate) type Answer = Result<Response<Body>, Response<Body>>;

/// 404 `not_found` for a missing row of kind `what`.
pub(crate) fn not_found(what: &str) -> Response<Body> {
    http::error(
        StatusCode::NOT_FOUND,
        "not_found",
        &format!("no such {what}"),
    )
}

/// The answer to a DELETE: 204 if the row was there, else 404.
pub(crate) fn deleted_or_404(deleted: bool, what: &str) -> Answer {
    if deleted {
        Ok(http::empty(StatusCode::NO_CONTENT))
    } else {
        Err(not_found(what))
    }
}

pub(crate) fn bad_request(msg: &str) -> Response<Body> {
    http::error(StatusCode::BAD_REQUEST, "invalid_request", msg)
}

pub(crate) fn store_error(e: CatalogError) -> Response<Body> {
    if let CatalogError::Store(mcmp_storage::Error::SharedUnavailable(why)) = &e {
        tracing::warn!("admin change refused: the cluster's catalog is unavailable: {why}");
        return http::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "cluster_unavailable",
            "the redis cluster the nodes share does not answer; nothing was changed",
        );
    }
    tracing::error!("catalog: {e}");
    http::error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "catalog_error",
        &e.to_string(),
    )
}

/// Reads a JSON body into `T` (unknown fields rejected); an empty body is `{}`.
pub(crate) async fn body<T: DeserializeOwned>(req: Request<Incoming>) -> Result<T, Response<Body>> {
    let bytes = http::read_body(req, ADMIN_BODY_LIMIT).await?;
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        &bytes
    };
    serde_json::from_slice(bytes).map_err(|e| {
        let code = if e.to_string().starts_with("unknown field") {
            "unknown_field"
        } else {
            "invalid_request"
        };
        http::error(StatusCode::BAD_REQUEST, code, &e.to_string())
    })
}
