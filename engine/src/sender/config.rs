//! Sender configuration as the operator writes it
//! (`PUT /admin/v1/senders/{name}`, SPEC §1 "Senders"), stored in the catalog.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::core::receipts::ReceiptIdFormat;
use crate::model::Channel;
use crate::rt::tls::{CertFiles, ClientTlsSpec};

/// The operator's switch for a sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ability {
    /// In routing when healthy.
    #[default]
    Available,
    /// Out of routing, whatever its health.
    Unavailable,
}

/// One configured connection to a carrier or provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SenderConfig {
    /// Name, e.g. `G_S_KT01` (set from the URL).
    #[serde(default)]
    pub name: String,
    /// Sender group: the key route rules refer to.
    pub group: String,
    /// Channels it can carry.
    pub channels: Vec<Channel>,
    /// Carriers it reaches (`SKT`, `KT`, `LGT`, `INTL`, or `*`).
    pub carriers: Vec<String>,
    /// Country code it serves, default `82`.
    #[serde(default = "default_nat_cd")]
    pub nat_cd: String,
    /// Operator switch.
    #[serde(default)]
    pub ability: Ability,
    /// How it connects.
    pub transport: Transport,
    /// Free text.
    #[serde(default)]
    pub remark: Option<String>,
    /// With `[cluster]`: the nodes (`node-id`) that bind this sender and
    /// route to it, so a carrier sees only their binds; absent: every node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Vec<u8>>,
}

impl SenderConfig {
    /// Whether node `node` binds this sender.
    pub fn runs_on(&self, node: u8) -> bool {
        self.nodes.as_ref().is_none_or(|n| n.contains(&node))
    }
}

fn default_nat_cd() -> String {
    "82".into()
}

/// The transport of a sender, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Transport {
    /// SMPP 3.4 ESME client.
    Smpp(SmppConfig),
    /// JSON over HTTP to a provider.
    Http(HttpConfig),
    /// SMTP client.
    Smtp(SmtpConfig),
    /// In-process simulated carrier.
    Sim(SimConfig),
}

impl Transport {
    /// How a receipt's id is matched to the submit's: as the SMPP sender
    /// says; other transports give back the id they were given.
    pub fn receipt_ids(&self) -> ReceiptIdFormat {
        match self {
            Transport::Smpp(c) => c.receipt_id,
            _ => ReceiptIdFormat::Exact,
        }
    }
}

/// Data coding used when the text allows a choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SmppCoding {
    /// EUC-KR / KS X 1001 (the `smpp` module documents the data_coding value).
    #[default]
    EucKr,
    /// UCS-2 big-endian (data_coding 0x08).
    Ucs2,
    /// GSM 03.38 default alphabet (data_coding 0x00).
    Gsm7,
}

/// SMPP transport fields (defaults from SPEC).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmppConfig {
    /// SMSC host.
    pub host: String,
    /// SMSC port.
    pub port: u16,
    /// Bind system_id.
    pub system_id: String,
    /// Bind password.
    pub password: String,
    /// Bind system_type, default `""`.
    #[serde(default)]
    pub system_type: String,
    /// Number of binds (sessions), default 1.
    #[serde(default = "one")]
    pub binds: u32,
    /// Outstanding submit_sm per bind, default 64.
    #[serde(default = "default_window")]
    pub window: u32,
    /// Submits per second for the whole sender; 0 = no cap.
    #[serde(default)]
    pub tps: u32,
    /// enquire_link period, default 30 s.
    #[serde(default = "default_enquire")]
    pub enquire_link_secs: u32,
    /// Response timeout, default 10,000 ms.
    #[serde(default = "default_response_timeout")]
    pub response_timeout_ms: u32,
    /// Preferred coding, default `euc-kr`.
    #[serde(default)]
    pub default_coding: SmppCoding,
    /// How the carrier writes a message's id in `submit_sm_resp` and in its
    /// receipt, so the two are matched (`core::receipts`), default `auto`.
    #[serde(default, alias = "receipt-id")]
    pub receipt_id: ReceiptIdFormat,
    /// The tag of the optional parameter that carries a message's origin
    /// code (SPEC §5.11), default `0x1410`: a number, or a string in hex
    /// (`"0x1410"`) or decimal. Written `origin_code_tag` or
    /// `origin-code-tag`.
    #[serde(
        default = "default_origin_code_tag",
        alias = "origin-code-tag",
        deserialize_with = "tlv_tag"
    )]
    pub origin_code_tag: u16,
    /// SMPP over TLS (SPEC §5.6), default false: the server's certificate
    /// is verified against the public roots, `[tls] extra-ca` and `ca`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tls: bool,
    /// A PEM file of CA certificates trusted for this sender (with `tls`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    /// A PEM client certificate chain for mutual TLS (with `tls` and
    /// `client_key`). Written `client_cert` or `client-cert`.
    #[serde(
        default,
        alias = "client-cert",
        skip_serializing_if = "Option::is_none"
    )]
    pub client_cert: Option<String>,
    /// The PEM key of `client_cert`. Written `client_key` or `client-key`.
    #[serde(default, alias = "client-key", skip_serializing_if = "Option::is_none")]
    pub client_key: Option<String>,
}

impl SmppConfig {
    /// What its TLS trusts and presents, or `None` without `tls`;
    /// `extra_ca` is the server's `[tls] extra-ca`.
    pub fn tls_spec(&self, extra_ca: Option<&std::path::Path>) -> Option<ClientTlsSpec> {
        if !self.tls {
            return None;
        }
        let mut cas: Vec<PathBuf> = extra_ca.map(PathBuf::from).into_iter().collect();
        cas.extend(self.ca.iter().map(PathBuf::from));
        Some(ClientTlsSpec {
            extra_ca: cas,
            identity: identity(&self.client_cert, &self.client_key),
            http: false,
        })
    }

    /// The TLS keys are consistent: `ca` and the client certificate only
    /// with `tls`, the certificate and its key together.
    pub fn check_tls(&self) -> Result<(), String> {
        let files = self.ca.is_some() || self.client_cert.is_some() || self.client_key.is_some();
        if files && !self.tls {
            return Err("smpp: ca, client_cert and client_key need tls = true".into());
        }
        if self.client_cert.is_some() != self.client_key.is_some() {
            return Err("smpp: client_cert and client_key go together".into());
        }
        Ok(())
    }
}

/// The default tag of the origin-code optional parameter (SPEC §5.11), in
/// the SMPP range for network- and SMSC-specific parameters.
pub const DEFAULT_ORIGIN_CODE_TAG: u16 = 0x1410;

fn default_origin_code_tag() -> u16 {
    DEFAULT_ORIGIN_CODE_TAG
}

/// An SMPP optional-parameter tag: a number or a string (`"0x1410"`, `"5136"`).
fn tlv_tag<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    use serde::de::Error;
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Tag {
        Number(u16),
        Text(String),
    }
    match Tag::deserialize(d)? {
        Tag::Number(n) => Ok(n),
        Tag::Text(t) => {
            let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                Some(hex) => u16::from_str_radix(hex, 16),
                None => t.parse(),
            };
            parsed.map_err(|_| Error::custom(format!("`{t}` is not a tag of 0..=0xFFFF")))
        }
    }
}

/// HTTP provider transport fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Provider URL (`http://host:port/path`).
    pub url: String,
    /// Extra request headers.
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    /// Request timeout, default 5,000 ms.
    #[serde(default = "default_http_timeout")]
    pub timeout_ms: u32,
    /// How a message becomes the request body: `kko`, `rcs`, `mms`, `push`.
    pub profile: String,
    /// Where an `rcs` sender registers media files (SPEC §5.10); default:
    /// `/files` on the host of `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_url: Option<String>,
    /// A PEM file of CA certificates trusted for this provider beside the
    /// public roots and `[tls] extra-ca` (an `https://` URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    /// A PEM client certificate chain for mutual TLS (with `client_key`).
    /// Written `client_cert` or `client-cert`.
    #[serde(
        default,
        alias = "client-cert",
        skip_serializing_if = "Option::is_none"
    )]
    pub client_cert: Option<String>,
    /// The PEM key of `client_cert`. Written `client_key` or `client-key`.
    #[serde(default, alias = "client-key", skip_serializing_if = "Option::is_none")]
    pub client_key: Option<String>,
}

impl HttpConfig {
    /// Where media files are registered: `file_url`, else `/files` on the
    /// scheme, host and port of `url`.
    pub fn files_url(&self) -> String {
        if let Some(url) = &self.file_url {
            return url.clone();
        }
        let after_scheme = self.url.find("://").map_or(0, |i| i + 3);
        let end = self.url[after_scheme..]
            .find('/')
            .map_or(self.url.len(), |i| i + after_scheme);
        format!("{}/files", &self.url[..end])
    }

    /// A TLS configuration of its own when it sets `ca` or a client
    /// certificate (`None`: the shard's HTTP client serves it);
    /// `extra_ca` is the server's `[tls] extra-ca`.
    pub fn tls_spec(&self, extra_ca: Option<&std::path::Path>) -> Option<ClientTlsSpec> {
        if self.ca.is_none() && self.client_cert.is_none() {
            return None;
        }
        let mut cas: Vec<PathBuf> = extra_ca.map(PathBuf::from).into_iter().collect();
        cas.extend(self.ca.iter().map(PathBuf::from));
        Some(ClientTlsSpec {
            extra_ca: cas,
            identity: identity(&self.client_cert, &self.client_key),
            http: true,
        })
    }

    /// The TLS keys are consistent: only with an `https://` URL, the client
    /// certificate and its key together.
    pub fn check_tls(&self) -> Result<(), String> {
        let files = self.ca.is_some() || self.client_cert.is_some() || self.client_key.is_some();
        let https = self
            .url
            .get(..8)
            .is_some_and(|s| s.eq_ignore_ascii_case("https://"));
        if files && !https {
            return Err("http: ca, client_cert and client_key need an https:// url".into());
        }
        if self.client_cert.is_some() != self.client_key.is_some() {
            return Err("http: client_cert and client_key go together".into());
        }
        Ok(())
    }
}

/// A client certificate and its key, when both are set.
fn identity(cert: &Option<String>, key: &Option<String>) -> Option<CertFiles> {
    match (cert, key) {
        (Some(cert), Some(key)) => Some(CertFiles {
            cert: cert.into(),
            key: key.into(),
        }),
        _ => None,
    }
}

/// SMTP transport fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Relay host.
    pub host: String,
    /// Relay port.
    pub port: u16,
    /// AUTH user.
    #[serde(default)]
    pub username: Option<String>,
    /// AUTH password.
    #[serde(default)]
    pub password: Option<String>,
    /// STARTTLS (SPEC §5.6): `required`, `opportunistic` (the default)
    /// or `off`; `true`/`false` (the older form) read as required/off.
    #[serde(default, deserialize_with = "starttls_mode")]
    pub starttls: StartTls,
    /// TLS from the first byte (port 465), instead of STARTTLS. Written
    /// `implicit_tls` or `implicit-tls`; default false.
    #[serde(
        default,
        alias = "implicit-tls",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub implicit_tls: bool,
    /// Envelope sender.
    pub from: String,
}

/// When an `smtp` sender upgrades its connection with STARTTLS. TLS is
/// verified against the public roots and `[tls] extra-ca` either way; a
/// handshake that fails breaks the connection, it never falls back to
/// clear text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartTls {
    /// Only over TLS: a relay that does not offer STARTTLS gets nothing.
    Required,
    /// TLS when the relay offers STARTTLS, clear text when it does not.
    #[default]
    Opportunistic,
    /// Never (clear text, unless `implicit_tls`).
    Off,
}

/// `required` | `opportunistic` | `off`, or a bool (older rows).
fn starttls_mode<'de, D: serde::Deserializer<'de>>(d: D) -> Result<StartTls, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Mode {
        Flag(bool),
        Named(StartTls),
    }
    Ok(match Mode::deserialize(d)? {
        Mode::Flag(true) => StartTls::Required,
        Mode::Flag(false) => StartTls::Off,
        Mode::Named(m) => m,
    })
}

impl SmtpConfig {
    /// What its TLS trusts, or `None` when it never speaks TLS;
    /// `extra_ca` is the server's `[tls] extra-ca`.
    pub fn tls_spec(&self, extra_ca: Option<&std::path::Path>) -> Option<ClientTlsSpec> {
        (self.implicit_tls || self.starttls != StartTls::Off).then(|| ClientTlsSpec {
            extra_ca: extra_ca.map(PathBuf::from).into_iter().collect(),
            identity: None,
            http: false,
        })
    }
}

/// Simulated carrier fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimConfig {
    /// Submit latency, default 5 ms.
    #[serde(default = "default_sim_latency")]
    pub latency_ms: u32,
    /// Share of messages delivered, default 1.0.
    #[serde(default = "default_success")]
    pub success_rate: f64,
    /// Receipt delay after submit, default 10 ms.
    #[serde(default = "default_dlr_delay")]
    pub dlr_delay_ms: u32,
    /// Submits per second; 0 = no cap.
    #[serde(default)]
    pub tps: u32,
}

fn one() -> u32 {
    1
}
fn default_window() -> u32 {
    64
}
fn default_enquire() -> u32 {
    30
}
fn default_response_timeout() -> u32 {
    10_000
}
fn default_http_timeout() -> u32 {
    5_000
}
fn default_sim_latency() -> u32 {
    5
}
fn default_success() -> f64 {
    1.0
}
fn default_dlr_delay() -> u32 {
    10
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smpp(extra: &str) -> Result<SmppConfig, serde_json::Error> {
        let json = format!(r#"{{"host":"h","port":1,"system_id":"s","password":"p"{extra}}}"#);
        serde_json::from_str(&json)
    }

    /// SPEC §5.11: `origin-code-tag`, default 0x1410, as a number or a string.
    #[test]
    fn origin_code_tag_defaults_and_parses() {
        let tag = |extra: &str| smpp(extra).map(|c| c.origin_code_tag).ok();
        assert_eq!(tag(""), Some(0x1410));
        assert_eq!(tag(r#","origin_code_tag":5200"#), Some(5200));
        assert_eq!(tag(r#","origin-code-tag":"0x1520""#), Some(0x1520));
        assert_eq!(tag(r#","origin-code-tag":"5136""#), Some(0x1410));
        assert_eq!(tag(r#","origin-code-tag":"0x10000""#), None);
        assert_eq!(tag(r#","origin-code-tag":70000"#), None);
        assert_eq!(tag(r#","origin-code-tag":"tag""#), None);
    }
}
