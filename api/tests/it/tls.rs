//! TLS (SPEC §5.6) against real TLS peers on loopback: certificate
//! authorities made in the test (rcgen, ECDSA P-256), a webhook endpoint
//! served over HTTPS, the HTTPS listener reached with `curl --cacert`, a
//! certificate swapped on SIGHUP, SMPP over (mutual) TLS to the TLS SMSC
//! simulator.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use serde_json::{json, Value};

use crate::harness::{data_dir, sms, Server};
use crate::reports::customer;
use crate::routing::wait_status;
use crate::sims::Sim;
use crate::smpp::wait_connected;
use crate::webhook::{reports, Webhook};

/// A CA and one server certificate it signed for `localhost` and
/// `127.0.0.1`, as PEM files in a temp dir.
pub struct TestCa {
    _dir: tempfile::TempDir,
    /// The CA certificate (what a client trusts).
    pub ca: PathBuf,
    /// The server certificate (leaf only; the CA is the trust anchor).
    pub cert: PathBuf,
    /// The server certificate's key.
    pub key: PathBuf,
}

impl TestCa {
    /// A new CA named `name` and a server certificate signed by it.
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().expect("CA key");
        let ca = params.self_signed(&ca_key).expect("CA cert");
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let mut leaf = CertificateParams::new(names).expect("leaf params");
        leaf.distinguished_name
            .push(DnType::CommonName, format!("{name} server"));
        let key = KeyPair::generate().expect("leaf key");
        let cert = leaf.signed_by(&key, &ca, &ca_key).expect("leaf cert");
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
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain = CertificateDer::pem_file_iter(&self.cert)
            .expect("cert file")
            .collect::<Result<Vec<_>, _>>()
            .expect("certs");
        let key = PrivateKeyDer::from_pem_file(&self.key).expect("key");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server config");
        Arc::new(config)
    }
}

/// Writes a config file into `dir`.
fn config_file(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("mcmp.toml");
    std::fs::write(&path, text).expect("config");
    path
}

fn with_config(dir: &Path, text: &str) -> Server {
    let config = config_file(dir, text);
    Server::start_with(dir, &["--config", config.to_str().expect("utf-8 path")])
}

#[test]
fn a_webhook_reaches_an_https_endpoint_trusted_through_extra_ca() {
    let ca = TestCa::new("MCMP test CA");
    let hook = Webhook::start_tls(ca.server_config());
    let dir = data_dir();
    let text = format!("[tls]\nextra-ca = {:?}\n", ca.ca);
    let server = with_config(dir.path(), &text);
    let (token, secret) = customer(&server, "T1", &hook.url(), 1);
    let ids = crate::harness::send_accepted(&server, &token, vec![sms("tls-1"), sms("tls-2")]);
    let hits = hook.wait("2 reports over HTTPS", |h| reports(h).len() >= 2);
    let got: Vec<String> = reports(&hits)
        .iter()
        .map(|(r, _)| r["message_id"].as_str().expect("id").to_string())
        .collect();
    for id in &ids {
        assert!(got.contains(id), "{id} not in {got:?}");
    }
    for h in &hits {
        let expected = format!(
            "sha256={}",
            mcmp_api::auth::hmac_sha256_hex(secret.as_bytes(), &h.raw)
        );
        assert_eq!(h.signature, expected);
    }
    assert!(hook.tls_failures().is_empty(), "{:?}", hook.tls_failures());
}

#[test]
fn a_webhook_to_an_endpoint_of_an_untrusted_ca_is_refused() {
    let trusted = TestCa::new("MCMP trusted CA");
    let other = TestCa::new("MCMP other CA");
    let hook = Webhook::start_tls(other.server_config());
    let dir = data_dir();
    let text = format!(
        "[tls]\nextra-ca = {:?}\n[reports]\nretry-unit = \"1s\"\n",
        trusted.ca
    );
    let server = with_config(dir.path(), &text);
    let (token, _) = customer(&server, "T2", &hook.url(), 1);
    crate::harness::send_accepted(&server, &token, vec![sms("tls-x")]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while hook.tls_failures().is_empty() {
        assert!(Instant::now() < deadline, "no TLS handshake was attempted");
        std::thread::sleep(Duration::from_millis(20));
    }
    // NOTE: futures-rustls drops the connection without sending its
    // `unknown_ca` alert, so the endpoint sees the handshake end early.
    assert!(
        hook.hits().is_empty(),
        "a report crossed an untrusted TLS link"
    );
    // The endpoint counts as failing and its report waits for a retry.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, hooks) = server.admin("GET", "/webhooks", None);
        let rows = hooks["webhooks"].as_array().cloned().unwrap_or_default();
        let row = rows.iter().find(|r| r["report_uri"] == json!(hook.url()));
        if row.is_some_and(|r| r["failures_in_a_row"].as_u64() >= Some(1) && r["backlog"] == 1) {
            break;
        }
        assert!(Instant::now() < deadline, "endpoint not failing: {hooks}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `curl --cacert ca https://127.0.0.1:port{path}`: the status, or `None`
/// when curl failed (e.g. the certificate did not verify).
fn curl(ca: &Path, addr: std::net::SocketAddr, path: &str, token: Option<&str>) -> Option<u16> {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "20",
    ])
    .arg("--cacert")
    .arg(ca)
    .arg(format!("https://{addr}{path}"));
    if let Some(t) = token {
        cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    let out = cmd.output().expect("curl runs (Debian package curl)");
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn install(from: &TestCa, cert: &Path, key: &Path) {
    // Written beside and renamed, as an operator's tooling would.
    for (src, dst) in [(&from.cert, cert), (&from.key, key)] {
        let tmp = dst.with_extension("new");
        std::fs::copy(src, &tmp).expect("copy PEM");
        std::fs::rename(&tmp, dst).expect("rename PEM");
    }
}

#[test]
fn the_https_listener_answers_curl_and_a_new_connection_sees_the_certificate_swapped_on_sighup() {
    let first = TestCa::new("MCMP first CA");
    let second = TestCa::new("MCMP second CA");
    let dir = data_dir();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    install(&first, &cert, &key);
    let text = format!("[server.tls]\ncert = {cert:?}\nkey = {key:?}\n");
    let server = with_config(dir.path(), &text);
    assert_eq!(curl(&first.ca, server.addr, "/healthz", None), Some(200));
    let admin = Some(crate::harness::ADMIN);
    assert_eq!(
        curl(&first.ca, server.addr, "/admin/v1/stats", admin),
        Some(200)
    );
    assert_eq!(curl(&second.ca, server.addr, "/healthz", None), None);

    install(&second, &cert, &key);
    let hup = Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(hup.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while curl(&second.ca, server.addr, "/healthz", None) != Some(200) {
        assert!(
            Instant::now() < deadline,
            "the new certificate never served"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Every shard took it: no new connection gets the old one any more.
    for _ in 0..8 {
        assert_eq!(curl(&first.ca, server.addr, "/healthz", None), None);
        assert_eq!(curl(&second.ca, server.addr, "/healthz", None), Some(200));
    }
}

/// An SMPP sender over TLS to `smsc`, trusting `ca`, with `extra` keys.
fn tls_smpp_sender(server: &Server, name: &str, smsc: &Sim, extra: Value) -> (u16, Value) {
    let addr = smsc.addr("smsc");
    let mut transport = json!({"type": "smpp", "host": addr.ip().to_string(), "port": addr.port(),
        "system_id": name, "password": "pw", "enquire_link_secs": 5,
        "response_timeout_ms": 30000, "tls": true});
    if let (Value::Object(t), Value::Object(e)) = (&mut transport, extra) {
        t.extend(e);
    }
    let body = json!({"group": name, "channels": ["SMS", "LMS"], "carriers": ["*"],
        "transport": transport});
    server.admin("PUT", &format!("/senders/{name}"), Some(body))
}

#[test]
fn smpp_over_mutual_tls_to_the_tls_smsc_delivers_and_an_unknown_client_is_refused() {
    let smsc = Sim::smsc(&["--tls", "--tls-client-auth", "--dlr-delay-ms", "5"]);
    let ca = smsc.tls_ca.clone().expect("the smsc printed its CA");
    let files = ca.parent().expect("tls dir").to_path_buf();
    let dir = data_dir();
    let server = Server::start(dir.path());
    let token = server.register_customer("S1");
    let identity = json!({"ca": ca, "client_cert": files.join("client.pem"),
        "client-key": files.join("client-key.pem")});
    let (s, v) = tls_smpp_sender(&server, "G_S_TLS01", &smsc, identity);
    assert_eq!(s, 201, "{v}");
    let rule = json!({"carriers": {"*": [{"sender_group": "G_S_TLS01", "ratio": 1}]}});
    assert_eq!(server.admin("PUT", "/routes/S1/SMS", Some(rule)).0, 200);
    wait_connected(&server, "G_S_TLS01");
    let ids = crate::harness::send_accepted(
        &server,
        &token,
        (0..20).map(|i| sms(&format!("tls-smpp-{i}"))).collect(),
    );
    for id in &ids {
        let m = wait_status(&server, &token, id, |s| s == "delivered");
        assert_eq!(m["sender"], "G_S_TLS01", "{m}");
    }
    assert!(smsc.get("control", "/stats")["submits"].as_u64() >= Some(20));

    // Without a client certificate the SMSC refuses the handshake: the
    // sender never binds.
    let (s, v) = tls_smpp_sender(&server, "G_S_TLS02", &smsc, json!({"ca": ca}));
    assert_eq!(s, 201, "{v}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while smsc.get("control", "/stats")["tls_failures"].as_u64() < Some(1) {
        assert!(Instant::now() < deadline, "no refused handshake");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (_, v) = server.admin("GET", "/senders/G_S_TLS02", None);
    assert_eq!(v["state"]["connected"], false, "{v}");
}

#[test]
fn smpp_tls_settings_are_checked_when_the_sender_is_written() {
    let smsc = Sim::smsc(&[]);
    let dir = data_dir();
    let server = Server::start(dir.path());
    let cases = [
        (json!({"tls": false, "ca": "/etc/hosts"}), "need tls"),
        (json!({"client_cert": "/x.pem"}), "go together"),
        (json!({"ca": "/nonexistent/ca.pem"}), "/nonexistent/ca.pem"),
    ];
    for (extra, needle) in cases {
        let (s, v) = tls_smpp_sender(&server, "G_S_BAD01", &smsc, extra);
        assert_eq!(s, 400, "{v}");
        assert!(v.to_string().contains(needle), "{needle}: {v}");
    }
}

#[test]
fn kko_through_a_provider_over_mutual_tls_is_delivered_and_a_sender_without_its_certificate_is_refused(
) {
    let provider =
        crate::transports::provider(&["--tls", "--tls-client-auth", "--report-delay-ms", "5"]);
    let ca = provider
        .tls_ca
        .clone()
        .expect("the provider printed its CA");
    let files = ca.parent().expect("tls dir").to_path_buf();
    let dir = data_dir();
    let server = Server::start(dir.path());
    let token = server.register_customer("P1");
    let enable = json!({"channels": {"KKO": {"enabled": true, "tps": 0}}});
    assert_eq!(
        server
            .admin("PUT", "/customers/P1/services", Some(enable))
            .0,
        200
    );
    let url = format!("https://{}/send", provider.addr("provider"));
    let sender = |name: &str, extra: Value| {
        let mut transport =
            json!({"type": "http", "url": url, "profile": "kko", "timeout_ms": 2000});
        if let (Value::Object(t), Value::Object(e)) = (&mut transport, extra) {
            t.extend(e);
        }
        let body =
            json!({"group": name, "channels": ["KKO"], "carriers": ["*"], "transport": transport});
        server.admin("PUT", &format!("/senders/{name}"), Some(body))
    };
    let identity = json!({"ca": ca, "client-cert": files.join("client.pem"),
        "client_key": files.join("client-key.pem")});
    let (s, v) = sender("G_K_MTLS01", identity);
    assert_eq!(s, 201, "{v}");
    let rule = json!({"carriers": {"*": [{"sender_group": "G_K_MTLS01", "ratio": 1}]}});
    assert_eq!(server.admin("PUT", "/routes/P1/KKO", Some(rule)).0, 200);
    let ids = crate::harness::send_accepted(&server, &token, vec![crate::transports::kko("m1")]);
    let m = wait_status(&server, &token, &ids[0], |s| s == "delivered");
    assert_eq!(m["sender"], "G_K_MTLS01", "{m}");
    let requests = || provider_requests(&provider, &ca, &files);
    assert_eq!(requests(), 1);

    // The same provider without the client certificate: the handshake
    // fails, nothing is posted, and the message goes back to be retried.
    let (s, v) = sender("G_K_MTLS02", json!({"ca": ca}));
    assert_eq!(s, 201, "{v}");
    let rule = json!({"carriers": {"*": [{"sender_group": "G_K_MTLS02", "ratio": 1}]}});
    assert_eq!(server.admin("PUT", "/routes/P1/KKO", Some(rule)).0, 200);
    let ids = crate::harness::send_accepted(&server, &token, vec![crate::transports::kko("m2")]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, m) = server.call(
            "GET",
            &format!("/v1/messages/{}", ids[0]),
            Some(&token),
            None,
        );
        let failed_attempt = m["events"].as_array().is_some_and(|e| e.len() > 2);
        if failed_attempt {
            assert_ne!(m["status"], "delivered", "{m}");
            break;
        }
        assert!(Instant::now() < deadline, "no attempt seen: {m}");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        requests(),
        1,
        "a request crossed without a client certificate"
    );
    // Settings are checked when written.
    let (s, v) = sender("G_K_BAD01", json!({"client_cert": "/x.pem"}));
    assert_eq!(s, 400, "{v}");
    let (s, v) = sender(
        "G_K_BAD02",
        json!({"url": "http://127.0.0.1:1/send", "ca": ca}),
    );
    assert_eq!(s, 400, "{v}");
}

/// The provider's `requests` counter, read over mutual TLS with curl.
fn provider_requests(provider: &Sim, ca: &Path, files: &Path) -> u64 {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(ca)
        .arg("--cert")
        .arg(files.join("client.pem"))
        .arg("--key")
        .arg(files.join("client-key.pem"))
        .arg(format!("https://{}/stats", provider.addr("provider")))
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stats: Value = serde_json::from_slice(&out.stdout).expect("stats JSON");
    stats["requests"].as_u64().expect("requests")
}
