//! TLS for the simulators (`--tls`): a CA generated at start (rcgen, ECDSA
//! P-256), a server certificate it signs for the loopback names and the
//! listen address, and a client certificate for mutual TLS, all written as
//! PEM files so the product under test can be pointed at them (`[tls]
//! extra-ca`, a sender's `ca`, `client-cert`, `client-key`). The CA's path
//! is printed as `tls-ca <path>` before the ready lines. rustls on the
//! `ring` provider, through tokio-rustls.

use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
pub use tokio_rustls::TlsAcceptor;

/// The TLS flags every simulator takes.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsArgs {
    /// Serve TLS with a certificate (for localhost, 127.0.0.1, ::1 and the
    /// listen address) from a CA generated at start; `tls-ca <path>` is
    /// printed before the ready lines.
    #[arg(long)]
    pub tls: bool,
    /// Where `--tls` writes `ca.pem`, `cert.pem`, `key.pem`, `client.pem`
    /// and `client-key.pem` (default: a new directory in the temp dir,
    /// left for the caller).
    #[arg(long)]
    pub tls_dir: Option<PathBuf>,
    /// With `--tls`: require a client certificate from the generated CA
    /// (mutual TLS; `client.pem` is one).
    #[arg(long)]
    pub tls_client_auth: bool,
}

/// ALPN of the HTTP simulators.
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// The acceptor `--tls` asks for (`None` without it); `alpn` lists the
/// protocols offered (empty for SMPP).
pub fn acceptor(
    args: &TlsArgs,
    listen: IpAddr,
    alpn: &[&[u8]],
) -> anyhow::Result<Option<TlsAcceptor>> {
    if !args.tls {
        return Ok(None);
    }
    let (acceptor, ca, temp) = make(args, listen, alpn)?;
    // The CA's path is announced to whoever started this simulator, who
    // may read it after we are gone: the directory stays (the test
    // harnesses remove it).
    let _ = temp.map(tempfile::TempDir::keep);
    announce_ca(&ca);
    Ok(Some(acceptor))
}

/// [`acceptor`] without the `tls-ca` line: the acceptor, the CA's path,
/// and (without `--tls-dir`) the temporary directory it is in, removed
/// when dropped.
pub fn make(
    args: &TlsArgs,
    listen: IpAddr,
    alpn: &[&[u8]],
) -> anyhow::Result<(TlsAcceptor, PathBuf, Option<tempfile::TempDir>)> {
    let (dir, temp) = match &args.tls_dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            (d.clone(), None)
        }
        None => {
            let temp = tempfile::Builder::new()
                .prefix("mcmp-loadtest-tls-")
                .tempdir()?;
            (temp.path().to_path_buf(), Some(temp))
        }
    };
    let made = generate(&dir, listen)?;
    let mut config = server_config(&made, args.tls_client_auth)?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok((
        TlsAcceptor::from(Arc::new(config)),
        dir.join("ca.pem"),
        temp,
    ))
}

/// Prints `tls-ca <path>` and flushes it (stdout is a pipe under tests).
fn announce_ca(path: &Path) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "tls-ca {}", path.display());
    let _ = out.flush();
}

/// What [`generate`] made, in memory.
struct Made {
    ca: CertificateDer<'static>,
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

/// A CA, a server and a client certificate, written into `dir`.
fn generate(dir: &Path, listen: IpAddr) -> anyhow::Result<Made> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "mcmp-loadtest CA");
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate()?;
    let ca = params.self_signed(&ca_key)?;
    let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    if !listen.is_unspecified() && !names.contains(&listen.to_string()) {
        names.push(listen.to_string());
    }
    let (cert, key) = leaf(&ca, &ca_key, names, ExtendedKeyUsagePurpose::ServerAuth)?;
    let client = vec!["mcmp-loadtest client".to_string()];
    let (client, client_key) = leaf(&ca, &ca_key, client, ExtendedKeyUsagePurpose::ClientAuth)?;
    let write = |file: &str, pem: String| {
        let path = dir.join(file);
        std::fs::write(&path, pem).with_context(|| format!("writing {}", path.display()))
    };
    write("ca.pem", ca.pem())?;
    write("cert.pem", cert.pem())?;
    write("key.pem", key.serialize_pem())?;
    write("client.pem", client.pem())?;
    write("client-key.pem", client_key.serialize_pem())?;
    Ok(Made {
        ca: ca.der().clone(),
        cert: cert.der().clone(),
        key: PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
    })
}

/// A certificate for `names` signed by the CA, with its key.
fn leaf(
    ca: &Certificate,
    ca_key: &KeyPair,
    names: Vec<String>,
    usage: ExtendedKeyUsagePurpose,
) -> anyhow::Result<(Certificate, KeyPair)> {
    let mut params = CertificateParams::new(names.clone())?;
    params
        .distinguished_name
        .push(DnType::CommonName, names.join(" "));
    params.extended_key_usages = vec![usage];
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, ca, ca_key)?;
    Ok((cert, key))
}

/// A client connector trusting the CA certificates of `ca` (PEM), ALPN
/// `http/1.1`.
pub fn connector(ca: &Path) -> anyhow::Result<tokio_rustls::TlsConnector> {
    use tokio_rustls::rustls::pki_types::pem::PemObject as _;
    let mut roots = RootCertStore::empty();
    for cert in
        CertificateDer::pem_file_iter(ca).with_context(|| format!("reading {}", ca.display()))?
    {
        roots.add(cert.with_context(|| format!("reading {}", ca.display()))?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

fn server_config(made: &Made, client_auth: bool) -> anyhow::Result<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = if client_auth {
        let mut roots = RootCertStore::empty();
        roots.add(made.ca.clone())?;
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build()?;
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    Ok(builder.with_single_cert(vec![made.cert.clone()], made.key.clone_key())?)
}
