//! TLS on the runtime's TCP streams (DESIGN §11): rustls through
//! `futures-rustls` on glommio sockets, with the `ring` crypto provider.
//!
//! [`MaybeTls`] is the one stream type every transport reads and writes:
//! plain TCP, or TCP with a TLS session on it (client or server side). The
//! HTTP listener, the outgoing HTTP pool, SMPP and SMTP all go through it, so
//! none of them names rustls.
//!
//! Configurations are built once from PEM files and then kept per shard:
//! rustls keeps its session caches behind a `Mutex` inside a config, so each
//! shard clones the shared config and gives the clone caches of its own
//! ([`ClientTls::for_shard`], [`LocalServerTls`]); no lock is shared by all
//! cores. The listener's certificate is re-read on SIGHUP
//! ([`SharedServerTls::reload`], on the signal thread) and each shard picks
//! the new one up at its next accepted connection.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures_lite::{AsyncRead, AsyncWrite};
use futures_rustls::pki_types::pem::PemObject as _;
use futures_rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use futures_rustls::rustls::client::Resumption;
use futures_rustls::rustls::server::ServerSessionMemoryCache;
use futures_rustls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};

/// TLS sessions a shard remembers for resumption, per client or server
/// config: enough for the endpoints one shard talks to at once.
const SESSION_CACHE: usize = 256;
/// The only application protocol spoken over HTTPS here (no HTTP/2).
const ALPN_HTTP1: &[u8] = b"http/1.1";

/// Why a TLS configuration could not be built. The message names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    #[error("{what} {}: {message}", path.display())]
    File {
        /// What the file should hold ("CA certificates", "private key", …).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the certificates or key (e.g. a key that does not
    /// match its certificate).
    #[error("{0}")]
    Config(String),
}

fn file_error(what: &'static str, path: &Path, message: impl ToString) -> TlsError {
    TlsError::File {
        what,
        path: path.to_owned(),
        message: message.to_string(),
    }
}

/// Reads every certificate of a PEM file (at least one).
pub fn load_certs(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(what, path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(what, path, e))?;
    if certs.is_empty() {
        return Err(file_error(
            what,
            path,
            "no CERTIFICATE block in the PEM file",
        ));
    }
    Ok(certs)
}

/// Reads the first private key (PKCS#8, PKCS#1 or SEC1) of a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| file_error("private key", path, e))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn config_error(e: rustls::Error) -> TlsError {
    TlsError::Config(e.to_string())
}

/// A certificate chain and its key, as PEM file paths (a client
/// certificate for mutual TLS, or the listener's certificate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
}

/// What an outgoing TLS connection trusts and presents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTlsSpec {
    /// CA files trusted beside the public web roots (`[tls] extra-ca`, a
    /// sender's `ca`).
    pub extra_ca: Vec<PathBuf>,
    /// A client certificate for mutual TLS.
    pub identity: Option<CertFiles>,
    /// Offer ALPN `http/1.1` (HTTPS); off for SMPP and SMTP.
    pub http: bool,
}

/// The configuration of outgoing TLS connections. Cheap to clone; built
/// off the shards (it reads files), then [`ClientTls::for_shard`] on each.
#[derive(Clone)]
pub struct ClientTls {
    config: Arc<ClientConfig>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientTls")
    }
}

impl ClientTls {
    /// Builds the configuration: public roots from `webpki-roots` plus the
    /// spec's CA files, its client certificate if any.
    pub fn build(spec: &ClientTlsSpec) -> Result<ClientTls, TlsError> {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for path in &spec.extra_ca {
            for cert in load_certs("CA certificates", path)? {
                roots
                    .add(cert)
                    .map_err(|e| file_error("CA certificates", path, e))?;
            }
        }
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(config_error)?
            .with_root_certificates(roots);
        let mut config = match &spec.identity {
            None => builder.with_no_client_auth(),
            Some(files) => {
                let chain = load_certs("client certificate", &files.cert)?;
                let key = load_key(&files.key)?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(config_error)?
            }
        };
        if spec.http {
            config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
        }
        Ok(ClientTls {
            config: Arc::new(config),
        })
    }

    /// A copy with session caches of its own, for one shard.
    pub fn for_shard(&self) -> ClientTls {
        let mut config = (*self.config).clone();
        config.resumption = Resumption::in_memory_sessions(SESSION_CACHE);
        ClientTls {
            config: Arc::new(config),
        }
    }

    /// Runs the client handshake on `stream` for `host` (a DNS name or an IP
    /// address, checked against the server's certificate).
    pub async fn connect<S>(&self, host: &str, stream: S) -> io::Result<MaybeTls<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let name = ServerName::try_from(host.to_owned()).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("TLS name {host:?}: {e}"),
            )
        })?;
        let tls = futures_rustls::TlsConnector::from(self.config.clone())
            .connect(name, stream)
            .await?;
        Ok(MaybeTls::tls(tls.into()))
    }
}

/// Builds a server configuration from a certificate chain and key.
fn server_config(files: &CertFiles) -> Result<ServerConfig, TlsError> {
    let chain = load_certs("certificate", &files.cert)?;
    let key = load_key(&files.key)?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(config_error)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(config_error)?;
    config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
    Ok(config)
}

/// The listener's TLS configuration, shared by every shard and replaced
/// whole on reload. Lives in the process (`Send + Sync`); shards read it
/// through their [`LocalServerTls`].
pub struct SharedServerTls {
    files: CertFiles,
    current: Mutex<Arc<ServerConfig>>,
    /// Bumped by every successful reload; shards compare it to theirs.
    generation: AtomicU64,
}

impl SharedServerTls {
    /// Reads the certificate and key once (at start-up).
    pub fn load(files: CertFiles) -> Result<Arc<SharedServerTls>, TlsError> {
        let config = server_config(&files)?;
        Ok(Arc::new(SharedServerTls {
            files,
            current: Mutex::new(Arc::new(config)),
            generation: AtomicU64::new(0),
        }))
    }

    /// Reads the files again; new connections get the new certificate. On
    /// an error the old certificate stays in use.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = Arc::new(server_config(&self.files)?);
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = config;
        self.generation.fetch_add(1, Ordering::Release);
        Ok(())
    }

    /// The files it reads.
    pub fn files(&self) -> &CertFiles {
        &self.files
    }
}

/// One shard's view of the listener's TLS configuration, with session
/// caches of its own. Shard-local.
pub struct LocalServerTls {
    shared: Arc<SharedServerTls>,
    seen: std::cell::Cell<u64>,
    acceptor: std::cell::RefCell<futures_rustls::TlsAcceptor>,
}

impl LocalServerTls {
    /// This shard's copy of the shared configuration.
    pub fn new(shared: Arc<SharedServerTls>) -> LocalServerTls {
        let generation = shared.generation.load(Ordering::Acquire);
        let acceptor = Self::local_copy(&shared);
        LocalServerTls {
            shared,
            seen: std::cell::Cell::new(generation),
            acceptor: std::cell::RefCell::new(acceptor),
        }
    }

    fn local_copy(shared: &SharedServerTls) -> futures_rustls::TlsAcceptor {
        let base = shared
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut config = (*base).clone();
        // NOTE: a session cache per shard: a client resuming on another
        // shard (the kernel spreads connections) does a full handshake.
        config.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE);
        futures_rustls::TlsAcceptor::from(Arc::new(config))
    }

    /// Runs the server handshake on `stream` with the current certificate.
    pub async fn accept<S>(&self, stream: S) -> io::Result<MaybeTls<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let generation = self.shared.generation.load(Ordering::Acquire);
        if generation != self.seen.get() {
            *self.acceptor.borrow_mut() = Self::local_copy(&self.shared);
            self.seen.set(generation);
        }
        let acceptor = self.acceptor.borrow().clone();
        let tls = acceptor.accept(stream).await?;
        Ok(MaybeTls::tls(tls.into()))
    }
}

/// A byte stream that is plain TCP or TLS over it; reads and writes through
/// the `futures_lite` `AsyncRead`/`AsyncWrite` traits either way.
pub struct MaybeTls<S>(Inner<S>);

enum Inner<S> {
    Plain(S),
    // NOTE: boxed: a TLS session is a few KiB, and most connections of a
    // plain deployment should not carry that size.
    Tls(Box<futures_rustls::TlsStream<S>>),
}

impl<S> MaybeTls<S> {
    /// A plain stream.
    pub fn plain(stream: S) -> MaybeTls<S> {
        MaybeTls(Inner::Plain(stream))
    }

    fn tls(stream: futures_rustls::TlsStream<S>) -> MaybeTls<S> {
        MaybeTls(Inner::Tls(Box::new(stream)))
    }

    /// Whether TLS is on.
    pub fn is_tls(&self) -> bool {
        matches!(self.0, Inner::Tls(_))
    }

    /// The plain stream back, if no TLS was started on it (to start it).
    pub fn into_plain(self) -> Result<S, MaybeTls<S>> {
        match self.0 {
            Inner::Plain(s) => Ok(s),
            tls => Err(MaybeTls(tls)),
        }
    }

    /// The TCP stream underneath.
    pub fn get_ref(&self) -> &S {
        match &self.0 {
            Inner::Plain(s) => s,
            Inner::Tls(t) => t.get_ref().0,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for MaybeTls<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().0 {
            Inner::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Inner::Tls(t) => Pin::new(t.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for MaybeTls<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().0 {
            Inner::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Inner::Tls(t) => Pin::new(t.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().0 {
            Inner::Plain(s) => Pin::new(s).poll_flush(cx),
            Inner::Tls(t) => Pin::new(t.as_mut()).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().0 {
            Inner::Plain(s) => Pin::new(s).poll_close(cx),
            Inner::Tls(t) => Pin::new(t.as_mut()).poll_close(cx),
        }
    }
}
