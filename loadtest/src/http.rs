//! The HTTP plumbing the simulators share: a hyper 1.x HTTP/1.1 server loop
//! over a tokio listener, JSON answers, and a one-shot JSON POST client.
//!
//! Each simulator is a function from a buffered [`Request`] to a
//! [`Response`]; bodies are read whole (bounded by [`MAX_BODY`]) because every
//! simulated endpoint takes a small JSON document.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

use crate::shutdown::Shutdown;
use crate::tls::TlsAcceptor;

/// The largest request body read. Reports batches are at most 1 MiB (SPEC §1
/// Report delivery) and MMS sends carry up to 800 KB of base64, so 4 MiB
/// leaves room without letting one peer exhaust memory.
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// How long the client waits for a whole exchange before giving up.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// A request with its body read.
#[derive(Debug)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The path, without the query.
    pub path: String,
    /// The headers.
    pub headers: hyper::HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

/// The response type every handler returns.
pub type Response = hyper::Response<Full<Bytes>>;

/// A JSON response with `status`.
pub fn json(status: StatusCode, value: &serde_json::Value) -> Response {
    let mut resp = hyper::Response::new(Full::new(Bytes::from(value.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// A JSON error `{"error": msg}` with `status`.
pub fn error(status: StatusCode, msg: &str) -> Response {
    json(status, &serde_json::json!({ "error": msg }))
}

/// Serves `handler` on `listener` until `shutdown` fires. Connections in
/// flight are abandoned at shutdown: a simulator has nothing to drain.
pub async fn serve<H, F>(listener: TcpListener, shutdown: Shutdown, handler: H)
where
    H: Fn(Request) -> F + Send + Sync + 'static,
    F: Future<Output = Response> + Send + 'static,
{
    serve_tls(listener, None, shutdown, handler).await;
}

/// [`serve`], over TLS when `tls` is set (a failed handshake only ends its
/// connection).
pub async fn serve_tls<H, F>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shutdown: Shutdown,
    handler: H,
) where
    H: Fn(Request) -> F + Send + Sync + 'static,
    F: Future<Output = Response> + Send + 'static,
{
    let handler = Arc::new(handler);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = shutdown.wait() => return,
        };
        let Ok((stream, _)) = accepted else {
            // EMFILE and friends: back off briefly instead of spinning.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let handler = handler.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(req, &*handler).await) }
            });
            let http = hyper::server::conn::http1::Builder::new();
            let _ = match tls {
                None => http.serve_connection(TokioIo::new(stream), service).await,
                Some(tls) => match tls.accept(stream).await {
                    Ok(s) => http.serve_connection(TokioIo::new(s), service).await,
                    Err(_) => return,
                },
            };
        });
    }
}

async fn handle<H, F>(req: hyper::Request<Incoming>, handler: &H) -> Response
where
    H: Fn(Request) -> F,
    F: Future<Output = Response>,
{
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return error(StatusCode::PAYLOAD_TOO_LARGE, "body too large or cut"),
    };
    handler(Request {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        headers: parts.headers,
        body,
    })
    .await
}

/// POSTs `body` as JSON to `url` (plain `http://host:port/path` only) and
/// returns the status and the response body.
pub async fn post_json(url: &str, body: Bytes) -> anyhow::Result<(StatusCode, Bytes)> {
    let (addr, path) = split_http_url(url)?;
    let exchange = async {
        let stream = TcpStream::connect(addr.as_str())
            .await
            .with_context(|| format!("connect to {addr}"))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let req = hyper::Request::post(path)
            .header(hyper::header::HOST, addr.as_str())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))?;
        let resp = sender.send_request(req).await?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!("reading response from {url}: {e}"))?
            .to_bytes();
        anyhow::Ok((status, body))
    };
    tokio::time::timeout(CLIENT_TIMEOUT, exchange)
        .await
        .with_context(|| format!("POST {url} timed out"))?
}

/// Splits `http://host:port/path` into (`host:port`, `/path`).
fn split_http_url(url: &str) -> anyhow::Result<(String, String)> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("only http:// URLs are supported, got {url:?}"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let authority = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    Ok((authority, path.to_owned()))
}

/// Binds `addr`, returning the listener and the address actually bound (so
/// `127.0.0.1:0` reports the real port).
pub async fn bind(addr: SocketAddr) -> anyhow::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("bind {addr}"))?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split() {
        let (a, p) = split_http_url("http://127.0.0.1:9000/provider/v1/reports/X").expect("ok");
        assert_eq!(
            (a.as_str(), p.as_str()),
            ("127.0.0.1:9000", "/provider/v1/reports/X")
        );
        let (a, p) = split_http_url("http://example").expect("ok");
        assert_eq!((a.as_str(), p.as_str()), ("example:80", "/"));
        assert!(split_http_url("https://x/").is_err());
    }
}
