//! `GET /console` (SPEC §5.7): the operator console, static HTML, one ES
//! module and a style sheet built into the binary (`api/console/`), each
//! with a strong `ETag` (`If-None-Match` gets 304). The page is public; it
//! logs in through `POST /admin/v1/session` and speaks only the admin API.

use std::sync::OnceLock;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use hyper::{Request, Response, StatusCode};
use sha2::{Digest, Sha256};

use crate::http::Body;

/// A file of the console.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Asset {
    /// `/console`.
    Page,
    /// `/console/app.js`.
    Script,
    /// `/console/style.css`.
    Style,
}

impl Asset {
    fn text(self) -> &'static str {
        match self {
            Asset::Page => include_str!("../../console/index.html"),
            Asset::Script => include_str!("../../console/app.js"),
            Asset::Style => include_str!("../../console/style.css"),
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Asset::Page => "text/html; charset=utf-8",
            Asset::Script => "text/javascript; charset=utf-8",
            Asset::Style => "text/css; charset=utf-8",
        }
    }

    fn etag(self) -> &'static str {
        static TAGS: OnceLock<[String; 3]> = OnceLock::new();
        let tags = TAGS.get_or_init(|| {
            [Asset::Page, Asset::Script, Asset::Style].map(|a| {
                let digest = Sha256::digest(a.text().as_bytes());
                format!("\"{}\"", mcmp_engine::codec::hex(&digest[..12]))
            })
        });
        &tags[self as usize]
    }
}

/// Serves `asset` (304 when the client has it).
pub(crate) fn serve(req: &Request<Incoming>, asset: Asset) -> Response<Body> {
    let etag = asset.etag();
    let fresh = req
        .headers()
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut resp = match fresh {
        true => {
            let mut r = Response::new(Body::default());
            *r.status_mut() = StatusCode::NOT_MODIFIED;
            r
        }
        false => Response::new(Body::new(Bytes::from_static(asset.text().as_bytes()))),
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(ETAG, v);
    }
    h.insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type()));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}
