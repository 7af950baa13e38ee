//! `[tls]` and `[server.tls]` (SPEC §5.6): the PEM files of the HTTPS
//! listener and the operator CA trusted by outgoing connections. Paths are
//! relative to the working directory. The files are read and checked by
//! [`Config::validate`](super::Config::validate), so `mcmp check-config`
//! finds a wrong path or a key that does not match its certificate.

use std::path::PathBuf;

use mcmp_engine::rt::tls::CertFiles;
use mcmp_engine::rt::{ClientTls, ClientTlsSpec, SharedServerTls};
use serde::{Deserialize, Serialize};

use super::{invalid, Config, ConfigError};

/// `[tls]`: outgoing TLS (webhooks, providers, alerts).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct TlsConfig {
    /// A PEM file of CA certificates trusted beside the public web roots
    /// (an operator's own CA). Default: unset (public roots only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_ca: Option<PathBuf>,
}

/// `[server.tls]`: serve the API over HTTPS. Both keys are required when the
/// section is present; the files are read again on SIGHUP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServerTlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of the leaf certificate.
    pub key: PathBuf,
}

impl ServerTlsConfig {
    /// The files as the runtime's [`CertFiles`].
    pub fn files(&self) -> CertFiles {
        CertFiles {
            cert: self.cert.clone(),
            key: self.key.clone(),
        }
    }
}

impl Config {
    /// What outgoing `https://` trusts: public roots plus `[tls] extra-ca`.
    pub fn outgoing_tls(&self) -> Result<ClientTls, ConfigError> {
        let spec = ClientTlsSpec {
            extra_ca: self.tls.extra_ca.iter().cloned().collect(),
            identity: None,
            http: true,
        };
        ClientTls::build(&spec).map_err(|e| invalid("tls.extra-ca", e.to_string()))
    }

    /// Reads `[server.tls]` (if set) into the listener's configuration.
    pub fn server_tls(&self) -> Result<Option<std::sync::Arc<SharedServerTls>>, ConfigError> {
        self.server
            .tls
            .as_ref()
            .map(|t| SharedServerTls::load(t.files()))
            .transpose()
            .map_err(|e| invalid("server.tls", e.to_string()))
    }

    /// Both TLS sections load.
    pub(super) fn validate_tls(&self) -> Result<(), ConfigError> {
        self.outgoing_tls()?;
        self.server_tls()?;
        Ok(())
    }
}
