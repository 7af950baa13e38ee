//! Outgoing HTTP/1.1 of one shard: a small keep-alive client for provider
//! submits (`http` senders) and report webhooks. hyper-util's pooled client
//! needs `Send` and does not fit a thread-per-core runtime (DESIGN §2), so
//! [`HttpClient`] keeps its own pool of `hyper::client::conn::http1`
//! connections per `host:port`, each driven by a task on the shard, over the
//! runtime facade's TCP ([`rt::connect`]). `https://` URLs speak TLS
//! ([`rt::ClientTls`]: the public web roots plus `[tls] extra-ca`, ALPN
//! `http/1.1`); the pool keys connections by scheme, host and port.
//! Shard-local: the client, its pool and its connections never leave the
//! shard that created them.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderName, HeaderValue, CONNECTION, CONTENT_TYPE, HOST};
use hyper::{Method, Request};

use crate::rt;

mod policy;
#[cfg(test)]
pub(crate) mod tests;

pub use policy::{is_public, UrlPolicy};

/// Idle keep-alive connections kept per `host:port`. Enough to absorb a
/// burst's tail without reconnecting; more would only hold sockets (and the
/// peer's worker slots) that a steady load does not need.
pub const MAX_IDLE_PER_HOST: usize = 8;
/// Open connections per `host:port` (idle and busy). A provider or a webhook
/// endpoint sees at most this many connections per shard; a request beyond
/// it waits (within its timeout) for one to come free.
pub const MAX_CONNS_PER_HOST: usize = 32;
/// Largest response body read. Provider answers and webhook replies are a
/// few hundred bytes; a bigger one is a misbehaving peer.
pub const MAX_RESPONSE_BODY: usize = 1 << 20;
/// An idle connection older than this is dropped rather than reused. It is
/// below the shortest common server keep-alive timeout (Apache's 5 s): a
/// request sent on a connection the peer is just closing fails.
const IDLE_TIMEOUT: Duration = Duration::from_secs(4);
/// Socket read size of the hyper adapter.
const READ_CHUNK: usize = 16 * 1024;

/// A response: status and (capped) body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// HTTP status code (any: a 500 is a response, not an error).
    pub status: u16,
    /// The whole body, at most [`MAX_RESPONSE_BODY`] bytes.
    pub body: Bytes,
}

/// Why a request got no response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The URL is not a usable `http(s)://host[:port][/path]` URL.
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    /// A header name or value is not valid HTTP.
    #[error("invalid header: {0}")]
    InvalidHeader(String),
    /// Resolving, connecting, the TLS or the HTTP handshake failed.
    #[error("connect failed: {0}")]
    Connect(String),
    /// The whole request (connect, send, read) took longer than its timeout.
    #[error("timed out")]
    Timeout,
    /// The connection failed while sending or reading.
    #[error("I/O error: {0}")]
    Io(String),
    /// The response body is over [`MAX_RESPONSE_BODY`].
    #[error("response body over {MAX_RESPONSE_BODY} bytes")]
    TooLarge,
}

/// A parsed `http://` or `https://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// `https`: TLS on the connection.
    tls: bool,
    /// `host[:port]` as written (the `Host` header).
    authority: String,
    /// Host without IPv6 brackets.
    host: String,
    port: u16,
    /// Path and query, `/` when empty.
    path: String,
}

impl Target {
    fn pool_key(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!(
            "{scheme}://{}:{}",
            self.host.to_ascii_lowercase(),
            self.port
        )
    }
}

/// Checks that `url` is one `HttpClient` can post to.
pub fn check_url(url: &str) -> Result<(), HttpError> {
    parse_url(url).map(|_| ())
}

pub(crate) fn parse_url(url: &str) -> Result<Target, HttpError> {
    let bad = |why: &str| HttpError::InvalidUrl(format!("{url:?}: {why}"));
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let (tls, rest) = if lower.starts_with("https://") {
        (true, &url[8..])
    } else if lower.starts_with("http://") {
        (false, &url[7..])
    } else {
        return Err(bad("expected http(s)://host[:port][/path]"));
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.is_empty() || authority.contains('@') {
        return Err(bad("missing host, or user info in the URL"));
    }
    let default_port = if tls { 443 } else { 80 };
    let (host, port) =
        split_host_port(authority, default_port).ok_or_else(|| bad("bad host or port"))?;
    let tail = tail.split('#').next().unwrap_or("");
    let path = match tail.strip_prefix('?') {
        Some(_) => format!("/{tail}"),
        None if tail.is_empty() => "/".to_string(),
        None => tail.to_string(),
    };
    Ok(Target {
        tls,
        authority: authority.to_string(),
        host,
        port,
        path,
    })
}

fn split_host_port(authority: &str, default_port: u16) -> Option<(String, u16)> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) => p.parse().ok().filter(|&p| p != 0)?,
        None => default_port,
    };
    (!host.is_empty()).then(|| (host.to_string(), port))
}

/// The shard's HTTP client: keep-alive connections pooled per scheme,
/// host and port. Shard-local; share it with `Rc`.
pub struct HttpClient {
    hosts: RefCell<HashMap<String, Rc<HostPool>>>,
    /// What `https://` connections trust and present (this shard's copy).
    tls: rt::ClientTls,
    /// Where it may post (report webhooks: SPEC §5.5).
    policy: UrlPolicy,
}

impl HttpClient {
    /// A client whose `https://` connections trust the public web roots only.
    pub fn new() -> HttpClient {
        // NOTE: no file is read without CA files, so this cannot fail.
        let tls = rt::ClientTls::build(&rt::ClientTlsSpec {
            http: true,
            ..Default::default()
        });
        HttpClient::with_tls(tls.unwrap_or_else(unreachable_tls))
    }

    /// The same client held to `policy` (a fresh pool).
    pub fn with_policy(self, policy: UrlPolicy) -> HttpClient {
        HttpClient { policy, ..self }
    }

    fn connect(&self, timeout: Duration) -> Connect<'_> {
        Connect {
            tls: &self.tls,
            policy: self.policy,
            timeout,
        }
    }

    /// A client with this TLS configuration (see [`rt::ClientTlsSpec::http`]);
    /// it takes a copy for this shard.
    pub fn with_tls(tls: rt::ClientTls) -> HttpClient {
        HttpClient {
            hosts: RefCell::default(),
            tls: tls.for_shard(),
            policy: UrlPolicy::ANY,
        }
    }

    /// POSTs `body` as JSON to `url` with extra `headers` (a
    /// `Content-Type: application/json` is added unless given). The whole
    /// exchange — waiting for a connection, connecting, sending and reading
    /// the body — is bounded by `timeout`. Any status is a response.
    pub async fn post_json(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: Bytes,
        timeout: Duration,
    ) -> Result<HttpResponse, HttpError> {
        self.request(Method::POST, url, headers, body, timeout)
            .await
    }

    /// [`HttpClient::post_json`] with another method.
    pub async fn request(
        &self,
        method: Method,
        url: &str,
        headers: &[(String, String)],
        body: Bytes,
        timeout: Duration,
    ) -> Result<HttpResponse, HttpError> {
        let target = parse_url(url)?;
        if !target.tls && !self.policy.allow_http {
            return Err(HttpError::InvalidUrl(format!(
                "{url:?}: only https:// is allowed (reports.allow-http is off)"
            )));
        }
        let request = build_request(method, &target, headers, body)?;
        let pool = self.pool(&target);
        let how = self.connect(timeout);
        rt::timeout(timeout, send(&pool, &target, &how, request))
            .await
            .unwrap_or(Err(HttpError::Timeout))
    }

    /// Opens a connection to `url`'s host (nothing is sent) and keeps it as
    /// an idle connection: a cheap check that a provider is reachable again.
    pub async fn probe(&self, url: &str, timeout: Duration) -> Result<(), HttpError> {
        let target = parse_url(url)?;
        let pool = self.pool(&target);
        let probe = async {
            match poll_fn(|cx| pool.poll_checkout(cx)).await {
                Checkout::Reuse(conn) => pool.checkin(conn),
                Checkout::New(slot) => {
                    pool.checkin(open(&target, &self.connect(timeout), slot).await?)
                }
            }
            Ok(())
        };
        rt::timeout(timeout, probe)
            .await
            .unwrap_or(Err(HttpError::Timeout))
    }

    /// Open connections to `host:port` (idle and busy), for tests and metrics.
    pub fn open_connections(&self, url: &str) -> usize {
        parse_url(url)
            .ok()
            .and_then(|t| self.hosts.borrow().get(&t.pool_key()).map(|p| p.open.get()))
            .unwrap_or(0)
    }

    fn pool(&self, target: &Target) -> Rc<HostPool> {
        self.hosts
            .borrow_mut()
            .entry(target.pool_key())
            .or_default()
            .clone()
    }
}

fn build_request(
    method: Method,
    target: &Target,
    headers: &[(String, String)],
    body: Bytes,
) -> Result<Request<Full<Bytes>>, HttpError> {
    let mut request = Request::builder()
        .method(method)
        .uri(target.path.as_str())
        .body(Full::new(body))
        .map_err(|e| HttpError::InvalidUrl(e.to_string()))?;
    let map = request.headers_mut();
    let host = HeaderValue::from_str(&target.authority)
        .map_err(|e| HttpError::InvalidUrl(e.to_string()))?;
    map.insert(HOST, host);
    for (name, value) in headers {
        let bad = |e: &dyn std::fmt::Display| HttpError::InvalidHeader(format!("{name}: {e}"));
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| bad(&e))?;
        let value = HeaderValue::from_str(value).map_err(|e| bad(&e))?;
        map.append(name, value);
    }
    if !map.contains_key(CONTENT_TYPE) {
        map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    Ok(request)
}

/// Sends on an idle connection when there is one (a connection the peer
/// closed meanwhile is skipped, and a request it never took is moved to the
/// next), else on a new connection.
async fn send(
    pool: &Rc<HostPool>,
    target: &Target,
    how: &Connect<'_>,
    mut request: Request<Full<Bytes>>,
) -> Result<HttpResponse, HttpError> {
    loop {
        match poll_fn(|cx| pool.poll_checkout(cx)).await {
            Checkout::Reuse(mut conn) => {
                if conn.sender.ready().await.is_err() {
                    continue;
                }
                match conn.sender.try_send_request(request).await {
                    Ok(response) => return finish(pool, conn, response).await,
                    Err(mut e) => match e.take_message() {
                        Some(unsent) => request = unsent,
                        None => return Err(HttpError::Io(e.into_error().to_string())),
                    },
                }
            }
            Checkout::New(slot) => {
                let mut conn = open(target, how, slot).await?;
                let response = conn
                    .sender
                    .send_request(request)
                    .await
                    .map_err(|e| HttpError::Io(e.to_string()))?;
                return finish(pool, conn, response).await;
            }
        }
    }
}

/// Reads the body (capped) and gives the connection back for reuse unless
/// the server is closing it.
async fn finish(
    pool: &HostPool,
    conn: PooledConn,
    response: hyper::Response<hyper::body::Incoming>,
) -> Result<HttpResponse, HttpError> {
    let closing = response
        .headers()
        .get(CONNECTION)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
    let status = response.status().as_u16();
    let mut incoming = response.into_body();
    let mut body = BytesMut::new();
    while let Some(frame) = incoming.frame().await {
        let frame = frame.map_err(|e| HttpError::Io(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            if body.len() + data.len() > MAX_RESPONSE_BODY {
                return Err(HttpError::TooLarge);
            }
            body.extend_from_slice(&data);
        }
    }
    if !closing {
        pool.checkin(conn);
    }
    Ok(HttpResponse {
        status,
        body: body.freeze(),
    })
}

/// Resolves, connects, starts TLS for `https` and hands the socket to hyper;
/// the connection's driver runs as its own task on the shard until the
/// connection closes.
/// How a new connection is made.
struct Connect<'a> {
    tls: &'a rt::ClientTls,
    policy: UrlPolicy,
    timeout: Duration,
}

async fn open(target: &Target, how: &Connect<'_>, slot: Slot) -> Result<PooledConn, HttpError> {
    let (tls, timeout) = (how.tls, how.timeout);
    let connect_err = |e: &dyn std::fmt::Display| {
        HttpError::Connect(format!("{}:{}: {e}", target.host, target.port))
    };
    let addr = match target.host.parse::<IpAddr>() {
        Ok(ip) => SocketAddr::new(ip, target.port),
        Err(_) => rt::resolve(&target.host, target.port)
            .await
            .map_err(|e| connect_err(&e))?,
    };
    // NOTE: checked on the address connected to, not only when the URL was
    // registered, so a name that later resolves elsewhere is caught too.
    if !how.policy.allow_private && !is_public(addr.ip()) {
        return Err(connect_err(&format!(
            "{} is a loopback, private or link-local address (reports.allow-private is off)",
            addr.ip()
        )));
    }
    let mut tcp = rt::connect(addr, timeout)
        .await
        .map_err(|e| connect_err(&e))?;
    if target.tls {
        tcp = tcp
            .start_tls(tls, &target.host)
            .await
            .map_err(|e| connect_err(&format!("TLS: {e}")))?;
    }
    let (sender, driver) = hyper::client::conn::http1::handshake(HyperTcp(tcp))
        .await
        .map_err(|e| connect_err(&e))?;
    rt::spawn(async move {
        if let Err(e) = driver.await {
            tracing::debug!(error = %e, "outgoing HTTP connection ended with an error");
        }
    });
    Ok(PooledConn {
        sender,
        _slot: slot,
    })
}

impl Default for HttpClient {
    fn default() -> Self {
        HttpClient::new()
    }
}

#[cold]
#[allow(clippy::panic)]
fn unreachable_tls(e: rt::TlsError) -> rt::ClientTls {
    panic!("a TLS configuration without files cannot fail: {e}")
}

/// The connections of one scheme, host and port. Shard-local.
#[derive(Default)]
struct HostPool {
    idle: RefCell<Vec<IdleConn>>,
    /// Open connections, idle and busy (counted by [`Slot`]s).
    open: Cell<usize>,
    /// Requests waiting for a connection at the cap; all are woken when a
    /// connection comes back or closes, and the first to poll takes it.
    waiters: RefCell<Vec<Waker>>,
}

struct IdleConn {
    conn: PooledConn,
    since: Instant,
}

/// A hyper connection with its place in the pool's count.
struct PooledConn {
    sender: SendRequest<Full<Bytes>>,
    _slot: Slot,
}

/// One counted connection of a pool; dropping it frees the place.
struct Slot(Rc<HostPool>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.set(self.0.open.get().saturating_sub(1));
        self.0.wake_waiters();
    }
}

enum Checkout {
    Reuse(PooledConn),
    New(Slot),
}

impl HostPool {
    fn poll_checkout(self: &Rc<Self>, cx: &mut Context<'_>) -> Poll<Checkout> {
        loop {
            let next = self.idle.borrow_mut().pop();
            let Some(idle) = next else { break };
            if idle.since.elapsed() < IDLE_TIMEOUT && !idle.conn.sender.is_closed() {
                return Poll::Ready(Checkout::Reuse(idle.conn));
            }
        }
        if self.open.get() < MAX_CONNS_PER_HOST {
            self.open.set(self.open.get() + 1);
            return Poll::Ready(Checkout::New(Slot(self.clone())));
        }
        let mut waiters = self.waiters.borrow_mut();
        if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
            waiters.push(cx.waker().clone());
        }
        Poll::Pending
    }

    fn checkin(&self, conn: PooledConn) {
        let mut idle = self.idle.borrow_mut();
        if idle.len() < MAX_IDLE_PER_HOST && !conn.sender.is_closed() {
            idle.push(IdleConn {
                conn,
                since: Instant::now(),
            });
        } else {
            drop(idle);
            drop(conn);
        }
        self.wake_waiters();
    }

    fn wake_waiters(&self) {
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for w in waiters {
            w.wake();
        }
    }
}

/// hyper's `Read`/`Write` over the facade's [`rt::TcpConn`].
struct HyperTcp(rt::TcpConn);

impl hyper::rt::Read for HyperTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        // NOTE: hyper's cursor hands out uninitialised memory; read into a
        // staging buffer and copy, as the server side does (DESIGN §11).
        let mut staging = [0u8; READ_CHUNK];
        let want = buf.remaining().min(READ_CHUNK);
        let stream = Pin::new(&mut self.get_mut().0);
        match futures_lite::AsyncRead::poll_read(stream, cx, &mut staging[..want]) {
            Poll::Ready(Ok(n)) => {
                buf.put_slice(&staging[..n]);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl hyper::rt::Write for HyperTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        futures_lite::AsyncWrite::poll_write(Pin::new(&mut self.get_mut().0), cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        futures_lite::AsyncWrite::poll_flush(Pin::new(&mut self.get_mut().0), cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        futures_lite::AsyncWrite::poll_close(Pin::new(&mut self.get_mut().0), cx)
    }
}
