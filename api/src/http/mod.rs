//! HTTP plumbing shared by every endpoint: the response body type, JSON and
//! error answers (SPEC §2: `{"error":{"code","message"}}`), bounded body
//! reading and query-string parsing; [`answer`] holds the `Result` answers
//! and the admin JSON body reader.

pub(crate) mod answer;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use serde::Serialize;

/// Every response body: whole (almost every answer), or a stream of
/// server-sent events ([`Body::events`]).
pub(crate) struct Body(Inner);

enum Inner {
    Whole(Full<Bytes>),
    Events(futures_channel::mpsc::Receiver<Bytes>),
}

impl Body {
    /// A whole body.
    pub(crate) fn new(bytes: Bytes) -> Body {
        Body(Inner::Whole(Full::new(bytes)))
    }

    /// A body that sends what arrives on `rx` until its sender is gone.
    pub(crate) fn events(rx: futures_channel::mpsc::Receiver<Bytes>) -> Body {
        Body(Inner::Events(rx))
    }
}

impl Default for Body {
    fn default() -> Body {
        Body::new(Bytes::new())
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        use futures_lite::Stream;
        match &mut self.get_mut().0 {
            Inner::Whole(full) => std::pin::Pin::new(full).poll_frame(cx),
            Inner::Events(rx) => std::pin::Pin::new(rx)
                .poll_next(cx)
                .map(|b| b.map(|b| Ok(hyper::body::Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Inner::Whole(full) => full.is_end_stream(),
            Inner::Events(_) => false,
        }
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match &self.0 {
            Inner::Whole(full) => full.size_hint(),
            Inner::Events(_) => hyper::body::SizeHint::default(),
        }
    }
}

/// A JSON answer.
pub(crate) fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(bytes) => with_type(status, bytes, "application/json"),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            &e.to_string(),
        ),
    }
}

/// An error answer with the SPEC's body.
pub(crate) fn error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    with_type(status, body.to_string().into_bytes(), "application/json")
}

/// A static JSON document (sent as it is).
pub(crate) fn static_json(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut r = Response::new(Body::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// An empty answer.
pub(crate) fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(Body::default());
    *r.status_mut() = status;
    r
}

fn with_type(status: StatusCode, bytes: Vec<u8>, content_type: &'static str) -> Response<Body> {
    let mut r = Response::new(Body::new(Bytes::from(bytes)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// 404 for an unknown path.
pub(crate) fn not_found() -> Response<Body> {
    error(StatusCode::NOT_FOUND, "not_found", "no such resource")
}

/// 405 for a known path with the wrong method.
pub(crate) fn method_not_allowed() -> Response<Body> {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this resource",
    )
}

/// Reads the whole body, refusing more than `limit` bytes with a 413 answer.
pub(crate) async fn read_body(req: Request<Incoming>, limit: u64) -> Result<Bytes, Response<Body>> {
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            &format!("request body is larger than {limit} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let limited = Limited::new(req.into_body(), limit as usize);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_large())
        }
        Err(e) => Err(error(
            StatusCode::BAD_REQUEST,
            "bad_body",
            &format!("reading body: {e}"),
        )),
    }
}

/// Decodes `application/x-www-form-urlencoded` / query strings.
pub(crate) fn parse_query(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Percent-decoding with `+` as space; invalid escapes are kept literally.
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// The value of a query parameter.
pub(crate) fn query_param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let q = parse_query(Some("a=1&src_msg_id=order%2D1+x&flag&bad=%zz"));
        assert_eq!(query_param(&q, "a"), Some("1"));
        assert_eq!(query_param(&q, "src_msg_id"), Some("order-1 x"));
        assert_eq!(query_param(&q, "flag"), Some(""));
        assert_eq!(query_param(&q, "bad"), Some("%zz"));
        assert_eq!(percent_decode("%41%4"), "A%4");
    }
}
