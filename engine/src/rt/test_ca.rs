//! Test certificates: a CA made in the test (rcgen, ECDSA P-256) and a
//! server certificate it signed for `localhost` and `127.0.0.1`, as PEM
//! files, plus a rustls server configuration for in-test TLS peers.

use std::path::PathBuf;
use std::sync::Arc;

use futures_rustls::pki_types::pem::PemObject as _;
use futures_rustls::pki_types::{CertificateDer, PrivateKeyDer};
use futures_rustls::rustls::{self, ServerConfig};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};

/// A CA and a server certificate, as PEM files in a temp dir.
pub(crate) struct TestCa {
    _dir: tempfile::TempDir,
    /// The CA certificate.
    pub ca: PathBuf,
    /// The server certificate.
    pub cert: PathBuf,
    /// Its key.
    pub key: PathBuf,
}

impl TestCa {
    pub(crate) fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().expect("CA key");
        let ca = params.self_signed(&ca_key).expect("CA");
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let leaf = CertificateParams::new(names).expect("leaf params");
        let key = KeyPair::generate().expect("key");
        let cert = leaf.signed_by(&key, &ca, &ca_key).expect("leaf");
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |file: &str, pem: String| {
            let path = dir.path().join(file);
            std::fs::write(&path, pem).expect("write PEM");
            path
        };
        TestCa {
            ca: write("ca.pem", ca.pem()),
            cert: write("cert.pem", cert.pem()),
            key: write("key.pem", key.serialize_pem()),
            _dir: dir,
        }
    }

    /// A rustls server configuration with the server certificate.
    pub(crate) fn server_config(&self) -> Arc<ServerConfig> {
        let chain = CertificateDer::pem_file_iter(&self.cert)
            .expect("cert")
            .collect::<Result<Vec<_>, _>>()
            .expect("certs");
        let key = PrivateKeyDer::from_pem_file(&self.key).expect("key");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server config");
        Arc::new(config)
    }
}
