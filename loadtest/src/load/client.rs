//! The HTTP side of a run: one keep-alive HTTP/1.1 connection per worker
//! ([`Conn`], reconnected after any failure) and the OAuth token every
//! request carries ([`Auth`], refreshed before it expires).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

use crate::http::MAX_BODY;
use crate::shutdown::Shutdown;

/// How long one request may take before it counts as a `timeout` error.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// A token is refreshed when this fraction of its lifetime has passed.
const REFRESH_AT: f64 = 0.8;

/// `http://host:port` or `https://host:port` split into its authority
/// (`host:port`).
pub fn authority(target: &str) -> anyhow::Result<String> {
    let (rest, port) = match target.strip_prefix("https://") {
        Some(rest) => (rest, 443),
        None => (
            target
                .strip_prefix("http://")
                .with_context(|| format!("--target must be http(s)://host:port, got {target:?}"))?,
            80,
        ),
    };
    let host = rest.trim_end_matches('/');
    anyhow::ensure!(
        !host.is_empty() && !host.contains('/'),
        "--target must be http(s)://host:port without a path, got {target:?}"
    );
    Ok(if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:{port}")
    })
}

/// TLS toward one authority: its connector and the name its certificate
/// must carry.
struct TargetTls {
    authority: String,
    connector: tokio_rustls::TlsConnector,
    name: tokio_rustls::rustls::pki_types::ServerName<'static>,
}

// NOTE: one target per process (a run, an e2e), so the TLS choice is made
// once, when the flags are read; connections to anything else (the
// in-process baseline) stay plain.
static TARGET_TLS: std::sync::OnceLock<TargetTls> = std::sync::OnceLock::new();

/// For an `https://` target, every [`Conn`] to it speaks TLS, trusting
/// `ca` (PEM) beside nothing else. No-op for `http://`.
pub fn use_tls(target: &str, ca: Option<&std::path::Path>) -> anyhow::Result<()> {
    if !target.starts_with("https://") {
        return Ok(());
    }
    let ca = ca.context("an https:// target needs --tls-ca (the PEM of its CA)")?;
    let authority = authority(target)?;
    let host = authority
        .rsplit_once(':')
        .map_or(authority.as_str(), |(h, _)| h);
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from(
        host.trim_matches(['[', ']']).to_owned(),
    )
    .context("target host")?;
    let connector = crate::tls::connector(ca)?;
    let _ = TARGET_TLS.set(TargetTls {
        authority,
        connector,
        name,
    });
    Ok(())
}

fn target_tls(authority: &str) -> Option<&'static TargetTls> {
    TARGET_TLS.get().filter(|t| t.authority == authority)
}

/// One keep-alive connection to the target, opened on first use.
#[derive(Debug)]
pub struct Conn {
    authority: String,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    /// A connection to `authority`, not yet opened.
    pub fn new(authority: &str) -> Conn {
        Conn {
            authority: authority.to_owned(),
            sender: None,
        }
    }

    async fn open(&mut self) -> anyhow::Result<&mut SendRequest<Full<Bytes>>> {
        if self.sender.as_ref().is_some_and(SendRequest::is_closed) {
            self.sender = None;
        }
        if self.sender.is_some() {
            return self.sender.as_mut().context("connection");
        }
        let stream = TcpStream::connect(self.authority.as_str())
            .await
            .context("connect")?;
        let _ = stream.set_nodelay(true);
        let sender = match target_tls(&self.authority) {
            None => handshake(stream).await?,
            Some(tls) => {
                let stream = tls.connector.connect(tls.name.clone(), stream).await;
                handshake(stream.context("TLS handshake")?).await?
            }
        };
        Ok(self.sender.insert(sender))
    }

    /// One exchange; on any failure the connection is dropped so the next
    /// call reconnects.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let result =
            tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(method, path, headers, body))
                .await
                .unwrap_or_else(|_| Err(anyhow::anyhow!("timeout")));
        if result.is_err() {
            self.sender = None;
        }
        result
    }

    async fn exchange(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let authority = self.authority.clone();
        let sender = self.open().await?;
        sender.ready().await.context("connection closed")?;
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, authority);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = sender
            .send_request(req.body(Full::new(body))?)
            .await
            .context("request")?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!("reading the answer: {e}"))?
            .to_bytes();
        Ok((status, body))
    }
}

/// The HTTP/1.1 handshake on `io`, its connection driven by a task.
async fn handshake<S>(io: S) -> anyhow::Result<SendRequest<Full<Bytes>>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .context("connect")?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Client credentials and the current bearer token (`None` = no auth, as
/// against `baseline`).
#[derive(Debug, Clone)]
pub struct Auth {
    token: Option<Arc<RwLock<Arc<str>>>>,
}

impl Auth {
    /// No `Authorization` header.
    pub fn none() -> Auth {
        Auth { token: None }
    }

    /// Gets a token from `/oauth/token` and starts a task that refreshes it
    /// at [`REFRESH_AT`] of its lifetime until `shutdown`.
    pub async fn client_credentials(
        authority: &str,
        client_id: &str,
        client_secret: &str,
        shutdown: Shutdown,
    ) -> anyhow::Result<Auth> {
        let mut conn = Conn::new(authority);
        let (token, lifetime) = fetch_token(&mut conn, client_id, client_secret).await?;
        let cell = Arc::new(RwLock::new(token));
        let (id, secret, shared) = (client_id.to_owned(), client_secret.to_owned(), cell.clone());
        tokio::spawn(async move {
            let mut wait = lifetime.mul_f64(REFRESH_AT);
            loop {
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = shutdown.wait() => return,
                }
                match fetch_token(&mut conn, &id, &secret).await {
                    Ok((token, lifetime)) => {
                        *shared.write().unwrap_or_else(|p| p.into_inner()) = token;
                        wait = lifetime.mul_f64(REFRESH_AT);
                    }
                    Err(e) => {
                        eprintln!("token refresh failed ({e:#}); retrying in 1 s");
                        wait = Duration::from_secs(1);
                    }
                }
            }
        });
        Ok(Auth { token: Some(cell) })
    }

    /// The `Authorization` header value, if any.
    pub fn header(&self) -> Option<String> {
        let cell = self.token.as_ref()?;
        let token = cell.read().unwrap_or_else(|p| p.into_inner()).clone();
        Some(format!("Bearer {token}"))
    }
}

async fn fetch_token(
    conn: &mut Conn,
    client_id: &str,
    client_secret: &str,
) -> anyhow::Result<(Arc<str>, Duration)> {
    let body = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        form_escape(client_id),
        form_escape(client_secret)
    );
    let (status, answer) = conn
        .send(
            Method::POST,
            "/oauth/token",
            &[("content-type", "application/x-www-form-urlencoded")],
            Bytes::from(body),
        )
        .await
        .context("POST /oauth/token")?;
    anyhow::ensure!(
        status == StatusCode::OK,
        "POST /oauth/token answered {status}: {}",
        String::from_utf8_lossy(&answer)
    );
    let v: Value = serde_json::from_slice(&answer).context("token answer is not JSON")?;
    let token = v["access_token"]
        .as_str()
        .context("no access_token in the token answer")?;
    let lifetime = v["expires_in"].as_u64().unwrap_or(3600).max(2);
    Ok((Arc::from(token), Duration::from_secs(lifetime)))
}

/// Percent-encodes everything but unreserved characters.
fn form_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_form_values() {
        assert_eq!(
            authority("http://127.0.0.1:8080").expect("ok"),
            "127.0.0.1:8080"
        );
        assert_eq!(authority("http://h/").expect("ok"), "h:80");
        assert_eq!(authority("https://h").expect("ok"), "h:443");
        assert!(authority("ftp://h").is_err());
        assert!(authority("http://h/v1").is_err());
        assert_eq!(form_escape("a b+c/é"), "a%20b%2Bc%2F%C3%A9");
    }
}
